//! A fixed throughput workload for profilers: 200,000 trivial calls, 1,000 at a time, on a
//! two-thread pool. `perf record ./target/release/examples/throughput_probe`.

use std::time::Instant;

use async_wrap::BlockingPool;

static TWO: BlockingPool = BlockingPool::with_max_threads(2);

fn main() {
    let start = Instant::now();
    futures::executor::block_on(async {
        for _ in 0..200 {
            let calls =
                (0..1_000_u64).map(|i| async_wrap::spawn_on(&TWO, move || std::hint::black_box(i)));
            futures::future::join_all(calls).await;
        }
    });
    let elapsed = start.elapsed();
    println!(
        "{:.2} M calls/s; {:?}",
        200_000.0 / elapsed.as_secs_f64() / 1e6,
        TWO.metrics()
    );
}
