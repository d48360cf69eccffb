//! CPU-bound work on the `rayon` adapter against the same work on the async thread: the
//! measured speed-up, and how responsive the runtime stays meanwhile.
//!
//! ```text
//! cargo run --release --features rayon --example cpu_bound
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_wrap::async_wrap;

/// Counts the primes below `limit`: pure computation.
fn count_primes(limit: u64) -> u64 {
    (2..limit)
        .filter(|&n| (2..=n.isqrt()).all(|d| n % d != 0))
        .count() as u64
}

/// The same, on rayon's pool: one thread per core, meant for computation.
#[async_wrap(executor = rayon)]
fn count_primes_on_rayon(limit: u64) -> u64 {
    count_primes(limit)
}

/// Runs `work` on a current-thread runtime next to a 1 ms ticker; returns the wall time and how
/// many ticks the runtime managed meanwhile.
fn measure<F: Future<Output = Vec<u64>>>(work: impl FnOnce() -> F) -> (Duration, Vec<u64>, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let start = Instant::now();
        let results = work().await;
        let elapsed = start.elapsed();
        ticker.abort();
        (elapsed, results, ticks.load(Ordering::Relaxed))
    })
}

fn main() {
    const LIMITS: [u64; 4] = [150_000, 150_001, 150_002, 150_003];
    let (inline, expected, inline_ticks) =
        measure(|| async { LIMITS.iter().map(|&limit| count_primes(limit)).collect() });
    let (wrapped, results, wrapped_ticks) = measure(|| {
        futures::future::join_all(LIMITS.iter().map(|&limit| count_primes_on_rayon(limit)))
    });
    assert_eq!(results, expected);
    println!(
        "4 prime counts below 150,000 ({} primes each):",
        expected[0]
    );
    println!(
        "  on the async thread: {:>7.1} ms, the runtime ticked {inline_ticks} times",
        inline.as_secs_f64() * 1e3
    );
    println!(
        "  on rayon's pool:     {:>7.1} ms, the runtime ticked {wrapped_ticks} times",
        wrapped.as_secs_f64() * 1e3
    );
    println!(
        "  speed-up {:.2}x on {} cores",
        inline.as_secs_f64() / wrapped.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
}
