//! A fixed throughput workload for profilers: trivial calls, 1,000 at a time, on a two-thread
//! pool, then (interleaved, for a ratio from one run) on tokio's blocking pool capped at two
//! threads. `perf record ./target/release/examples/throughput_probe --only-pool` profiles the
//! pool alone.

// Counts become `f64` only to print rates.
#![allow(clippy::cast_precision_loss)]

use std::time::Instant;

use async_wrap::BlockingPool;

static TWO: BlockingPool = BlockingPool::with_max_threads(2);

const CALLS: u64 = 200_000;

fn rate(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    CALLS as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let only_pool = std::env::args().any(|arg| arg == "--only-pool");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(2)
        .build()
        .expect("a tokio runtime");
    let handle = tokio.handle().clone();
    for round in 0..5 {
        let pool = rate(|| {
            futures::executor::block_on(async {
                for _ in 0..CALLS / 1_000 {
                    let calls = (0..1_000_u64)
                        .map(|i| async_wrap::spawn_on(&TWO, move || std::hint::black_box(i)));
                    futures::future::join_all(calls).await;
                }
            });
        });
        if only_pool {
            println!("round {round}: async-wrap max 2 {pool:.2} M calls/s");
            continue;
        }
        let tokio = rate(|| {
            futures::executor::block_on(async {
                for _ in 0..CALLS / 1_000 {
                    let calls = (0..1_000_u64)
                        .map(|i| handle.spawn_blocking(move || std::hint::black_box(i)));
                    futures::future::join_all(calls).await;
                }
            });
        });
        println!(
            "round {round}: async-wrap max 2 {pool:.2} M calls/s, tokio max 2 {tokio:.2} ({:.2}×)",
            pool / tokio
        );
    }
}
