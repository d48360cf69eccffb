//! A stress run that asserts nothing is lost: many calls from tasks on two runtimes at once (tokio
//! and smol), with random sleeps, panics, dropped futures, `is_cancelled` loops, nested calls, and
//! a pool shut down in the middle; then, each round, the patterns in `patterns.rs` that found the
//! pool's defects of issue 13 (bursts then idle, `Wait` pools with drops and timeouts, panicking
//! wakers, slow stop hooks, streams on a pool shut down mid-stream), each under a watchdog.
//!
//! ```text
//! cargo run --release --example stress                      # 200,000 calls (CI runs 60,000)
//! cargo run --release --example stress -- --calls 1000000
//! cargo run --release --example stress -- --minutes 10      # soak: as many rounds as fit
//! cargo run --release --example stress -- --patterns 200     # only the patterns, 200 rounds
//! ```
//!
//! It checks, and exits non-zero otherwise, that:
//! - every awaited call got its own result, or its own panic payload;
//! - every job submitted was completed, panicked, cancelled before it started, or refused,
//!   exactly once, by the pools' own counts against the callers' counts;
//! - no pool thread remains after shutdown;
//! - the resident memory stays flat as the number of calls grows.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, block_on, is_cancelled, spawn_on};
use futures::FutureExt;

mod patterns;

/// The callers' side of the accounting.
#[derive(Default)]
struct Counts {
    /// Futures polled at least once: each one's job was handed to its pool (accepted or refused).
    submitted: AtomicU64,
    /// Awaited calls that returned their own value.
    returned: AtomicU64,
    /// Awaited calls whose own panic payload came back.
    panicked: AtomicU64,
    /// Awaited calls refused with a typed error (the pool had been shut down).
    refused: AtomicU64,
    /// Futures dropped before their first poll: nothing was submitted.
    never_polled: AtomicU64,
    /// Futures dropped after their first poll.
    abandoned: AtomicU64,
}

/// A small, seeded generator per task.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The pools under test.
struct Pools {
    /// Elastic, up to 16 threads.
    wide: Arc<BlockingPool>,
    /// Two threads, bounded queue: callers wait for room.
    narrow: Arc<BlockingPool>,
    /// Shut down halfway through the run.
    doomed: Arc<BlockingPool>,
}

/// One call's body: sleeps, panics, loops until cancelled or nests, as `kind` says; returns a
/// value only this call can produce.
fn body(pool: Arc<BlockingPool>, id: u64, kind: u64, counts: &Counts) -> u64 {
    match kind {
        0 => std::thread::sleep(Duration::from_micros(id % 200)),
        1 => std::panic::panic_any(id),
        2 => {
            // Spins until its future is dropped (or 50 ms), as a long job that checks.
            let start = Instant::now();
            while !is_cancelled() && start.elapsed() < Duration::from_millis(50) {
                std::thread::yield_now();
            }
        }
        3 => {
            // Nested: waits on another call to the same pool (inline if the pool is saturated).
            counts.submitted.fetch_add(1, Ordering::Relaxed);
            let inner = block_on(spawn_on(pool, move || id.wrapping_mul(3)));
            assert_eq!(
                inner,
                id.wrapping_mul(3),
                "a nested call got another call's result"
            );
            counts.returned.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    id.wrapping_mul(7).wrapping_add(1)
}

/// One caller task: `calls` calls with random behaviour.
async fn caller(pools: Arc<Pools>, counts: Arc<Counts>, seed: u64, first_id: u64, calls: u64) {
    let mut rng = Rng(seed | 1);
    for id in first_id..first_id + calls {
        let pool = match rng.below(10) {
            0..=5 => pools.wide.clone(),
            6..=8 => pools.narrow.clone(),
            _ => pools.doomed.clone(),
        };
        let (wide, doomed) = (
            Arc::ptr_eq(&pool, &pools.wide),
            Arc::ptr_eq(&pool, &pools.doomed),
        );
        // Long, cancellable jobs only where a thread can be spared for them; nested calls only on
        // pools that stay up (a call nested in a job of the doomed pool would be refused).
        let kind = match rng.below(100) {
            0..=1 => 1,
            2 if wide => 2,
            3..=5 if !doomed => 3,
            6..=30 => 0,
            _ => 4,
        };
        let job = {
            let (pool, counts) = (pool.clone(), counts.clone());
            move || body(pool, id, kind, &counts)
        };
        // A pool whose queue makes callers wait may leave a first poll unsubmitted; the others
        // take (or refuse) the job at the first poll.
        let submits_at_first_poll = !Arc::ptr_eq(&pool, &pools.narrow);
        let future = spawn_on(pool, job);
        match rng.below(50) {
            0 => {
                drop(future);
                counts.never_polled.fetch_add(1, Ordering::Relaxed);
            }
            1 | 2 if submits_at_first_poll => {
                // Poll once (submitting the job), then drop: the job may never start, or run on.
                let mut future = AssertUnwindSafe(future.checked()).catch_unwind();
                counts.submitted.fetch_add(1, Ordering::Relaxed);
                match futures::poll!(&mut future) {
                    std::task::Poll::Ready(Ok(Err(err))) => {
                        assert!(
                            err.is_shut_down(),
                            "call {id} refused for another reason: {err}"
                        );
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        counts.abandoned.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(future);
            }
            _ => {
                counts.submitted.fetch_add(1, Ordering::Relaxed);
                match AssertUnwindSafe(future.checked()).catch_unwind().await {
                    Ok(Ok(value)) => {
                        assert_eq!(
                            value,
                            id.wrapping_mul(7).wrapping_add(1),
                            "call {id} got another call's result"
                        );
                        counts.returned.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(err)) => {
                        assert!(
                            err.is_shut_down(),
                            "call {id} refused for another reason: {err}"
                        );
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(payload) => {
                        assert_eq!(
                            payload.downcast_ref::<u64>(),
                            Some(&id),
                            "call {id} got another call's panic"
                        );
                        assert_eq!(kind, 1, "call {id} panicked though its body does not");
                        counts.panicked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|a| a == name)?;
    args.get(position + 1)?.parse().ok()
}

/// Caller tasks per round, half on tokio and half on smol.
const TASKS: u64 = 8;
/// A round runs in this many slices, with the resident memory read after each.
const SLICES: u64 = 4;

/// One round of `calls` calls over fresh pools, from 4 tokio tasks and 4 smol tasks at once.
/// Returns the peak resident memory seen at each quarter of the round, in KiB.
fn round(calls: u64, seed: u64, totals: &Counts) -> Vec<u64> {
    let pools = Arc::new(Pools {
        wide: Arc::new(BlockingPool::with_max_threads(16).thread_name("stress-wide")),
        narrow: Arc::new(
            BlockingPool::with_max_threads(2)
                .thread_name("stress-narrow")
                .queue_capacity(16, async_wrap::QueueFull::Wait),
        ),
        doomed: Arc::new(BlockingPool::with_max_threads(4).thread_name("stress-doomed")),
    });
    let counts = Arc::new(Counts::default());
    let per_task = calls / TASKS / SLICES;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut resident = Vec::new();
    for slice in 0..SLICES {
        if slice == SLICES / 2 {
            // Shut one pool down in the middle: its jobs finish, later calls are refused.
            pools.doomed.shutdown();
            assert_eq!(
                pools.doomed.metrics().threads,
                0,
                "a thread survived shutdown"
            );
        }
        let first = move |task: u64| (slice * TASKS + task) * per_task * 2;
        let tokio_side = (0..TASKS / 2)
            .map(|task| {
                tokio.spawn(caller(
                    pools.clone(),
                    counts.clone(),
                    seed ^ first(task),
                    first(task),
                    per_task,
                ))
            })
            .collect::<Vec<_>>();
        let smol_side = std::thread::spawn({
            let (pools, counts) = (pools.clone(), counts.clone());
            move || {
                smol::block_on(async {
                    let tasks: Vec<_> = (TASKS / 2..TASKS)
                        .map(|task| {
                            smol::spawn(caller(
                                pools.clone(),
                                counts.clone(),
                                seed ^ first(task),
                                first(task),
                                per_task,
                            ))
                        })
                        .collect();
                    for task in tasks {
                        task.await;
                    }
                });
            }
        });
        tokio.block_on(async {
            for task in tokio_side {
                task.await.expect("a caller task failed its checks");
            }
        });
        smol_side.join().expect("a caller task failed its checks");
        resident.push(resident_kib());
    }

    settle(&pools, &counts, totals, &resident);
    resident
}

/// Shuts the round's pools down, once every abandoned job has finished, and checks the
/// accounts: the pools' counts against the callers'.
fn settle(pools: &Pools, counts: &Counts, totals: &Counts, resident: &[u64]) {
    for pool in [&pools.wide, &pools.narrow, &pools.doomed] {
        pool.shutdown();
        assert_eq!(pool.metrics().threads, 0, "a thread survived shutdown");
    }
    let metrics: Vec<_> = [&pools.wide, &pools.narrow, &pools.doomed]
        .iter()
        .map(|p| p.metrics())
        .collect();
    let pool_total =
        |field: fn(&async_wrap::Metrics) -> u64| metrics.iter().map(field).sum::<u64>();
    let submitted = counts.submitted.load(Ordering::Relaxed);
    let settled = pool_total(|m| m.completed)
        + pool_total(|m| m.panicked)
        + pool_total(|m| m.cancelled)
        + pool_total(|m| m.rejected);
    assert_eq!(
        submitted, settled,
        "submitted = completed + panicked + cancelled + refused does not hold: {metrics:?}"
    );
    let returned = counts.returned.load(Ordering::Relaxed);
    let panicked = counts.panicked.load(Ordering::Relaxed);
    let refused = counts.refused.load(Ordering::Relaxed);
    assert_eq!(
        refused,
        pool_total(|m| m.rejected),
        "every refusal reached its caller"
    );
    assert!(
        panicked <= pool_total(|m| m.panicked),
        "a panic was reported twice"
    );
    assert!(
        returned <= pool_total(|m| m.completed),
        "a result was delivered twice"
    );
    // The call sites' own counts balance too: every counted call ended exactly once.
    for site in async_wrap::call_sites() {
        assert_eq!(
            (
                site.calls,
                site.completed + site.panicked + site.cancelled + site.refused,
                site.in_flight
            ),
            (site.calls, site.calls, 0),
            "a call site's counts do not balance: {site:?}"
        );
    }
    for (field, value) in [
        (&totals.submitted, submitted),
        (&totals.returned, returned),
        (&totals.panicked, panicked),
        (&totals.refused, refused),
        (
            &totals.never_polled,
            counts.never_polled.load(Ordering::Relaxed),
        ),
        (&totals.abandoned, counts.abandoned.load(Ordering::Relaxed)),
    ] {
        field.fetch_add(value, Ordering::Relaxed);
    }
    println!(
        "round: {submitted} submitted = {} completed + {} panicked + {} cancelled + {} refused; \
         {returned} returned, {panicked} panics resumed, {} abandoned, {} never polled; RSS per quarter {:?} KiB",
        pool_total(|m| m.completed),
        pool_total(|m| m.panicked),
        pool_total(|m| m.cancelled),
        pool_total(|m| m.rejected),
        counts.abandoned.load(Ordering::Relaxed),
        counts.never_polled.load(Ordering::Relaxed),
        resident,
    );
}

fn main() {
    // Panics in bodies are the point; their messages would drown the report.
    // Only those: a failed check still prints its message.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        // Bodies panic with their id; wakers with "a user's ..."; a stream on a pool shut down
        // mid-stream says so once.
        let expected = payload.is::<u64>()
            || payload
                .downcast_ref::<&str>()
                .is_some_and(|message| message.starts_with("a user's"))
            || payload.downcast_ref::<String>().is_some_and(|message| {
                message.starts_with("async_wrap: cannot run `iterator` on executor `stress-stream`")
            });
        if !expected {
            report(info);
        }
    }));
    if let Some(rounds) = arg("--patterns") {
        // Only the patterns, `rounds` times: for hunting a rare failure in one of them.
        println!("{}", patterns::run(rounds));
        return;
    }
    let calls = arg("--calls").unwrap_or(200_000);
    let minutes = arg("--minutes");
    let start = Instant::now();
    let totals = Counts::default();
    let threads_before = std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
    let mut peaks = Vec::new();
    let mut seed = 0x5EED_u64;
    // One round of the patterns per 30,000 calls (at least one).
    let pattern_rounds = (calls / 30_000).max(1);
    loop {
        let resident = round(calls, seed, &totals);
        peaks.push(resident.iter().copied().max().unwrap_or(0));
        println!("{}", patterns::run(pattern_rounds));
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        match minutes {
            Some(minutes) if start.elapsed() < Duration::from_secs(minutes * 60) => {}
            _ => break,
        }
    }
    let _ = std::panic::take_hook();
    // Flat memory: the last round's peak is within 20 MiB of the first's.
    let (first, last) = (peaks[0], *peaks.last().unwrap_or(&0));
    assert!(
        last <= first + 20 * 1024,
        "resident memory grew from {first} KiB to {last} KiB"
    );
    let threads_after = std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
    println!(
        "stress: {} rounds in {:.1} s: {} calls submitted, {} returned, {} panics resumed, {} refused, \
         {} abandoned after a poll, {} never polled; peak RSS per round {:?} KiB; OS threads {} before, {} after",
        peaks.len(),
        start.elapsed().as_secs_f64(),
        totals.submitted.load(Ordering::Relaxed),
        totals.returned.load(Ordering::Relaxed),
        totals.panicked.load(Ordering::Relaxed),
        totals.refused.load(Ordering::Relaxed),
        totals.abandoned.load(Ordering::Relaxed),
        totals.never_polled.load(Ordering::Relaxed),
        peaks,
        threads_before,
        threads_after,
    );
}
