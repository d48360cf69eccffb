//! A service that calls native code it cannot trust, on a process pool: one function aborts the
//! process on a poisoned input (as a C library's `assert` would), one hangs on another; both
//! run in worker processes, so the service stays up, the hung call is killed at its deadline,
//! and the other calls are served meanwhile. Then the costs: the warm round trip of a trivial
//! call and of a 1 MiB argument, against the thread pool, and the time a worker takes to start.
//!
//! ```text
//! cargo run --release --features process --example process_pool             # quick
//! cargo run --release --features process --example process_pool -- --bench  # more samples
//! ```

use std::time::{Duration, Instant};

use async_wrap::process::{ProcessError, ProcessPool};
use async_wrap::{BlockingPool, async_wrap};

/// The untrusted native code: two workers, each call limited to 500 ms.
static SANDBOX: ProcessPool = ProcessPool::with_max_workers(2)
    .named("sandbox")
    .deadline(Duration::from_millis(500));

/// Threads, for the comparison.
static THREADS: BlockingPool = BlockingPool::with_max_threads(2).thread_name("threads");

/// Stands for a C parser that `abort()`s on the input it cannot handle.
#[async_wrap(executor = SANDBOX, process)]
fn parse(input: String) -> usize {
    if input.contains("POISON") {
        std::process::abort();
    }
    input.split_whitespace().count()
}

/// Stands for a call that never returns on some inputs (a deadlock in a library).
#[async_wrap(executor = SANDBOX, process)]
fn resolve(name: String) -> String {
    if name == "loop.example" {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    format!("{name} -> 10.0.0.1")
}

#[async_wrap(executor = SANDBOX, process)]
fn trivial(n: u64) -> u64 {
    n + 1
}

#[async_wrap(executor = SANDBOX, process)]
fn weigh(data: Vec<u8>) -> usize {
    data.len()
}

/// A pool recycling its worker after every call: each call starts a worker.
static FRESH: ProcessPool = ProcessPool::with_max_workers(1).max_tasks_per_child(1);

#[async_wrap(executor = FRESH, process)]
fn fresh() -> u32 {
    std::process::id()
}

/// The same with the bytes as a `serde_bytes::ByteBuf`: encoded as one byte string, not as a
/// sequence of a million `u8`s.
#[async_wrap(executor = SANDBOX, process)]
fn weigh_bytes(data: serde_bytes::ByteBuf) -> usize {
    data.len()
}

#[async_wrap(executor = THREADS)]
fn trivial_on_threads(n: u64) -> u64 {
    n + 1
}

#[async_wrap(executor = THREADS)]
fn weigh_on_threads(data: Vec<u8>) -> usize {
    data.len()
}

/// Median, median of the fastest half ("fast cluster": what a call costs when nothing else
/// on the machine interferes), and mean, in microseconds.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let median = micros(samples[samples.len() / 2]);
    let fast = micros(samples[samples.len() / 4]);
    let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let mean = micros(samples.iter().sum::<Duration>() / count);
    format!("median {median:8.1} µs   fast-cluster median {fast:8.1} µs   mean {mean:8.1} µs")
}

/// Times `calls` calls made one after another by `call`.
fn time<F, Fut>(calls: usize, mut call: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    futures::executor::block_on(async {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            call().await;
            samples.push(started.elapsed());
        }
        samples
    })
}

fn describe(outcome: &Result<impl std::fmt::Debug, ProcessError>) -> String {
    match outcome {
        Ok(value) => format!("ok: {value:?}"),
        Err(err) => format!("FAILED: {err}"),
    }
}

fn main() {
    async_wrap::process::init(); // in a worker, this serves calls and never returns
    let bench = std::env::args().any(|arg| arg == "--bench");

    println!("== a service calling untrusted native code on a process pool");
    let started = Instant::now();
    let outcomes = futures::executor::block_on(async {
        let (doc, poisoned, db, looping, other, cache) = futures::join!(
            parse("a normal document".into()),
            parse("a POISON document".into()),
            resolve("db.example".into()),
            resolve("loop.example".into()),
            parse("another normal one".into()),
            resolve("cache.example".into()),
        );
        [
            ("parse(\"a normal document\")", describe(&doc), doc.is_ok()),
            (
                "parse(\"a POISON document\")",
                describe(&poisoned),
                poisoned.is_ok(),
            ),
            ("resolve(\"db.example\")", describe(&db), db.is_ok()),
            (
                "resolve(\"loop.example\")",
                describe(&looping),
                looping.is_ok(),
            ),
            (
                "parse(\"another normal one\")",
                describe(&other),
                other.is_ok(),
            ),
            (
                "resolve(\"cache.example\")",
                describe(&cache),
                cache.is_ok(),
            ),
        ]
    });
    for (call, outcome, _) in &outcomes {
        println!("  {call:<30} {outcome}");
    }
    let failed = outcomes.iter().filter(|(_, _, ok)| !ok).count();
    assert_eq!(
        failed, 2,
        "the poisoned and the hung call fail, and only they"
    );
    // Still serving: the crashed and the killed workers were replaced.
    let after = futures::executor::block_on(parse("still up".into())).expect("the service is up");
    assert_eq!(after, 2);
    let metrics = SANDBOX.metrics();
    println!(
        "  the service stayed up: {} calls ok, {} crashed, {} killed at the deadline, in {:?}; \
         {} workers started",
        metrics.completed,
        metrics.crashed,
        metrics.killed,
        started.elapsed(),
        metrics.workers_started
    );

    let (trivial_calls, mib_calls) = if bench { (20_000, 300) } else { (2_000, 40) };
    println!(
        "\n== costs (warm workers; {trivial_calls} trivial calls, {mib_calls} calls with 1 MiB)"
    );
    // Warm both pools up.
    let _ = time(200, || trivial(1));
    let _ = time(200, || trivial_on_threads(1));
    let mut samples = time(trivial_calls, || trivial(1));
    println!("  trivial call, process pool: {}", summary(&mut samples));
    let mut samples = time(trivial_calls, || trivial_on_threads(1));
    println!("  trivial call, thread pool:  {}", summary(&mut samples));
    let data = vec![7u8; 1 << 20];
    let mut samples = time(mib_calls, || weigh(data.clone()));
    println!("  1 MiB argument, process:    {}", summary(&mut samples));
    let mut samples = time(mib_calls, || {
        weigh_bytes(serde_bytes::ByteBuf::from(data.clone()))
    });
    println!("  1 MiB as ByteBuf, process:  {}", summary(&mut samples));
    let mut samples = time(mib_calls, || weigh_on_threads(data.clone()));
    println!("  1 MiB argument, threads:    {}", summary(&mut samples));

    // Worker start: a pool recycling its worker after every call starts one per call.
    let starts = if bench { 100 } else { 20 };
    let mut samples = time(starts, fresh);
    println!("  call on a new worker:       {}", summary(&mut samples));
    let metrics = FRESH.metrics();
    println!(
        "  worker start (spawn to greeting), mean of {}: {:?}",
        metrics.workers_started,
        metrics.mean_worker_start().unwrap_or_default()
    );
    FRESH.shutdown();
    SANDBOX.shutdown();
    println!("\nall workers ended; the service shut down cleanly");
}
