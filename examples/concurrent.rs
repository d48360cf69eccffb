//! Two loops side by side: a blocking one wrapped with `#[async_wrap]`, and a native async one.
//! Both make progress at once, in one process, on two different threads, while the async
//! runtime has a single thread.
//!
//! ```text
//! cargo run --example concurrent
//! ```

use std::thread;
use std::time::{Duration, Instant};

use async_wrap::async_wrap;

const ROUNDS: u32 = 5;

/// A blocking loop: `thread::sleep` would freeze the runtime if called directly.
#[async_wrap]
fn blocking_loop(start: Instant) {
    for round in 1..=ROUNDS {
        thread::sleep(Duration::from_millis(200));
        report("sync ", round, start);
    }
}

async fn async_loop(start: Instant) {
    for round in 1..=ROUNDS {
        tokio::time::sleep(Duration::from_millis(150)).await;
        report("async", round, start);
    }
}

fn report(side: &str, round: u32, start: Instant) {
    println!(
        "{:>5} ms  {side} loop round {round}/{ROUNDS}  pid {}  thread {:?}",
        start.elapsed().as_millis(),
        std::process::id(),
        thread::current().id(),
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let start = Instant::now();
    tokio::join!(blocking_loop(start), async_loop(start));
    println!(
        "both loops done in {} ms (one after the other would take {} ms)",
        start.elapsed().as_millis(),
        ROUNDS * (200 + 150)
    );
}
