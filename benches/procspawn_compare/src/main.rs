//! The warm round trip of a trivial call and of a 1 MiB argument on async-wrap's `ProcessPool`
//! and on `procspawn` (synchronous: a `procspawn::Pool` of two processes, `pool.spawn(..).join()`),
//! interleaved in one run. Median / median of the fastest half / mean, in microseconds.

use std::time::{Duration, Instant};

use async_wrap::async_wrap;
use async_wrap::process::ProcessPool;

static PROCS: ProcessPool = ProcessPool::with_max_workers(2);

#[async_wrap(executor = PROCS, process)]
fn trivial(n: u64) -> u64 {
    n + 1
}

#[async_wrap(executor = PROCS, process)]
fn weigh(data: serde_bytes::ByteBuf) -> usize {
    data.len()
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    format!(
        "{:9.1} / {:9.1} / {:9.1} µs",
        micros(samples[samples.len() / 2]),
        micros(samples[samples.len() / 4]),
        micros(samples.iter().sum::<Duration>() / count)
    )
}

fn time(calls: usize, mut call: impl FnMut()) -> Vec<Duration> {
    (0..calls)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect()
}

fn main() {
    async_wrap::process::init();
    procspawn::init();
    let pool = procspawn::Pool::new(2).expect("a procspawn pool");
    let data = vec![7u8; 1 << 20];
    let rounds = 5;
    let (mut ours_trivial, mut theirs_trivial, mut ours_mib, mut theirs_mib) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Warm-up.
    let _ = time(200, || {
        futures::executor::block_on(trivial(1)).unwrap();
    });
    let _ = time(200, || {
        pool.spawn(1u64, |n| n + 1).join().unwrap();
    });
    for _ in 0..rounds {
        ours_trivial.extend(time(2_000, || {
            futures::executor::block_on(trivial(1)).unwrap();
        }));
        theirs_trivial.extend(time(2_000, || {
            pool.spawn(1u64, |n| n + 1).join().unwrap();
        }));
        ours_mib.extend(time(40, || {
            futures::executor::block_on(weigh(serde_bytes::ByteBuf::from(data.clone()))).unwrap();
        }));
        theirs_mib.extend(time(40, || {
            pool.spawn(serde_bytes::ByteBuf::from(data.clone()), |d| d.len())
                .join()
                .unwrap();
        }));
    }
    println!(
        "| warm round trip (median / fastest half's median / mean) | async-wrap `ProcessPool` | procspawn `Pool` |"
    );
    println!("|---|---|---|");
    println!(
        "| trivial call | {} | {} |",
        summary(&mut ours_trivial),
        summary(&mut theirs_trivial)
    );
    println!(
        "| 1 MiB `ByteBuf` argument | {} | {} |",
        summary(&mut ours_mib),
        summary(&mut theirs_mib)
    );
    pool.shutdown();
    PROCS.shutdown();
}
