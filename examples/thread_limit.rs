//! The seed's main demo: how many threads `N` concurrent blocking calls use, on the default pool
//! (one per call) and on a pool limited to two threads (never more than two).
//!
//! ```text
//! cargo run --example thread_limit
//! ```

use std::collections::HashSet;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};

/// A pool of at most two threads, like Python's `ThreadPoolExecutor(max_workers=2)`.
static TWO: BlockingPool = BlockingPool::with_max_threads(2).thread_name("two");

/// Blocks for 100 ms on the default pool; says which thread ran it.
#[async_wrap]
fn work_default() -> ThreadId {
    thread::sleep(Duration::from_millis(100));
    thread::current().id()
}

/// Blocks for 100 ms on the two-thread pool; says which thread ran it.
#[async_wrap(executor = TWO)]
fn work_limited() -> ThreadId {
    thread::sleep(Duration::from_millis(100));
    thread::current().id()
}

async fn round<F: Future<Output = ThreadId>>(title: &str, call: impl Fn() -> F) {
    println!("{title}");
    for n in [1, 5, 9, 13, 17] {
        let start = Instant::now();
        let ids = futures::future::join_all((0..n).map(|_| call())).await;
        let threads: HashSet<ThreadId> = ids.into_iter().collect();
        println!(
            "  Dispatched {n:>2} tasks, used {:>2} threads, in {:>4} ms",
            threads.len(),
            start.elapsed().as_millis()
        );
    }
}

#[tokio::main]
async fn main() {
    round("Default pool (max_threads 512):", work_default).await;
    round("Pool with max_threads 2:", work_limited).await;
}
