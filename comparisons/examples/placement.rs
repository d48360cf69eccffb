//! Why a round-trip latency here has two clusters: it splits each call by whether the job ran on
//! the vCPU its caller was on (Linux only; `sched_getcpu`).
//!
//! ```text
//! cargo run --release --example placement
//! ```
//!
//! Each trial builds fresh pools (async-wrap's with the statistics on, so with the adaptive wait,
//! and off; a 2-thread rayon pool with a oneshot channel) and a fresh tokio runtime, so their
//! threads land wherever Linux starts them, then makes sequential round trips of a trivial closure, under
//! `futures::executor::block_on` and awaited in a task of a multi-thread tokio runtime. The table
//! gives, per system and placement, the share of calls, the median and the share under 10 µs.
//! On the 2-vCPU VM of the README, a round trip that stays on one vCPU takes about 2 µs; one that
//! crosses takes 15–20 µs, the cost of waking a vCPU that halted when its thread parked.

// Counts become `f64` only to print shares.
#![allow(clippy::cast_precision_loss)]

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("this probe reads the current CPU with sched_getcpu, which only Linux has");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::future::Future;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use async_wrap::BlockingPool;

    const TRIALS: usize = 8;
    const CALLS: usize = 2_000;

    /// The vCPU the calling thread runs on.
    fn cpu() -> i32 {
        // SAFETY: `sched_getcpu` takes no arguments and only reads the calling thread's CPU
        // (through the vDSO); it has no preconditions.
        unsafe { libc::sched_getcpu() }
    }

    /// Where the last job ran.
    static JOB_CPU: AtomicI32 = AtomicI32::new(-1);

    fn job() {
        JOB_CPU.store(cpu(), Ordering::Relaxed);
    }

    /// One call's latency and whether its job ran on the caller's vCPU.
    type Sample = (Duration, bool);

    async fn round_trips<F: Future<Output = ()>>(call: impl Fn() -> F, out: &mut Vec<Sample>) {
        for _ in 0..CALLS {
            let start = Instant::now();
            let caller = cpu();
            call().await;
            let elapsed = start.elapsed();
            out.push((elapsed, caller == JOB_CPU.load(Ordering::Relaxed)));
        }
    }

    /// Samples of one system: under `block_on`, and in a tokio task.
    #[derive(Default)]
    struct Samples {
        block_on: Vec<Sample>,
        in_task: Vec<Sample>,
    }

    /// Round trips through `call`: under `block_on` on this thread, then in a task of `harness`.
    fn measure<F>(
        harness: &tokio::runtime::Runtime,
        call: impl Fn() -> F + Clone + Send + 'static,
        samples: &mut Samples,
    ) where
        F: Future<Output = ()> + Send,
    {
        futures::executor::block_on(round_trips(call.clone(), &mut samples.block_on));
        let task = harness.spawn(async move {
            let mut samples = Vec::new();
            round_trips(call, &mut samples).await;
            samples
        });
        samples
            .in_task
            .extend(harness.block_on(task).expect("the task ran"));
    }

    pub(super) fn main() {
        let mut pool = Samples::default();
        let mut pool_off = Samples::default();
        let mut tokio = Samples::default();
        let mut rayon = Samples::default();
        for _ in 0..TRIALS {
            let harness = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let blocking = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            // Leaked so that tasks can take it; shut down at the end of the trial.
            let two: &'static BlockingPool = Box::leak(Box::new(
                BlockingPool::builder()
                    .max_threads(2)
                    .build()
                    .expect("a pool"),
            ));
            measure(&harness, move || async_wrap::spawn_on(two, job), &mut pool);
            // The same pool as it was before the adaptive wait (which needs the statistics).
            async_wrap::set_call_statistics(false);
            measure(
                &harness,
                move || async_wrap::spawn_on(two, job),
                &mut pool_off,
            );
            async_wrap::set_call_statistics(true);
            let threads = std::sync::Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(2)
                    .build()
                    .expect("a rayon pool"),
            );
            let on_rayon = move || {
                let (tx, rx) = futures::channel::oneshot::channel();
                threads.spawn(move || {
                    job();
                    let _ = tx.send(());
                });
                async move { rx.await.expect("the job ran") }
            };
            measure(&harness, on_rayon, &mut rayon);
            let handle = blocking.handle().clone();
            let on_tokio = move || {
                let call = handle.spawn_blocking(job);
                async move { call.await.expect("the job ran") }
            };
            measure(&harness, on_tokio, &mut tokio);
            two.shutdown();
        }

        println!(
            "## Round trips split by placement: {TRIALS} trials × {CALLS} calls, fresh threads each trial\n"
        );
        println!(
            "| system | awaited | same vCPU: share of calls | same vCPU: median, under 10 µs | other vCPU: median, under 10 µs | all: median |"
        );
        println!("|---|---|---|---|---|---|");
        for (name, samples) in [
            ("async-wrap max 2", &pool),
            ("async-wrap max 2, statistics off", &pool_off),
            ("tokio", &tokio),
            ("rayon + oneshot, 2 threads", &rayon),
        ] {
            for (mode, samples) in [
                ("block_on", &samples.block_on),
                ("in a tokio task", &samples.in_task),
            ] {
                let same: Vec<Duration> = samples.iter().filter(|s| s.1).map(|s| s.0).collect();
                let other: Vec<Duration> = samples.iter().filter(|s| !s.1).map(|s| s.0).collect();
                let all: Vec<Duration> = samples.iter().map(|s| s.0).collect();
                println!(
                    "| {name} | {mode} | {:.0}% | {} | {} | {} |",
                    100.0 * same.len() as f64 / samples.len().max(1) as f64,
                    summary(same),
                    summary(other),
                    median(all),
                );
            }
        }
    }

    fn median(mut samples: Vec<Duration>) -> String {
        samples.sort_unstable();
        samples.get(samples.len() / 2).map_or("—".to_owned(), |d| {
            format!("{:.2} µs", d.as_secs_f64() * 1e6)
        })
    }

    fn summary(samples: Vec<Duration>) -> String {
        if samples.is_empty() {
            return "—".to_owned();
        }
        let fast = samples
            .iter()
            .filter(|d| **d < Duration::from_micros(10))
            .count();
        let share = 100.0 * fast as f64 / samples.len() as f64;
        format!("{}, {share:.0}%", median(samples))
    }
}
