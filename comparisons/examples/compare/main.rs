//! async-wrap against the other ways to run blocking code from async code, measured side by side
//! in one run, interleaved round by round so that the machine's noise hits every system alike.
//!
//! ```text
//! cargo run --release --example compare            # the full table (about a minute)
//! cargo run --release --example compare -- --quick # a tenth of the calls
//! cargo run --release --example compare -- --only throughput # one table: latency,
//!                                      # throughput, sleepers, neighbours, fresh, seed or growth
//! ```
//!
//! Latencies on a VM have two clusters (a wake of an awake thread costs ~2 µs, of a halted vCPU
//! 20–65 µs), so each latency row gives the median, the median of the fast cluster (samples under
//! 10 µs), the share of samples in it, and the mean.

// Counts and durations become `f64` only to print rates: the precision lost is far below the
// noise of the measurement.
#![allow(clippy::cast_precision_loss)]

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_wrap::{BlockingFuture, BlockingPool};

mod growth;
mod neighbours;
use futures::FutureExt;
use futures::future::{Map, join_all};

/// A pool of two threads, the counterpart of tokio's `max_blocking_threads(2)`.
static TWO: BlockingPool = BlockingPool::with_max_threads(2).thread_name("aw-two");

/// One way to run a closure off the async thread.
trait System: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    type Fut<R: Send + 'static>: Future<Output = R> + Send + 'static;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R>;
    /// Whether async-wrap counts calls (and so waits adaptively for short ones) while this
    /// system runs.
    fn statistics(&self) -> bool {
        true
    }
}

/// Sets async-wrap's statistics switch for `system`'s run.
fn prepare<S: System>(system: &S) {
    async_wrap::set_call_statistics(system.statistics());
}

#[derive(Clone)]
struct AwDefault;
impl System for AwDefault {
    const NAME: &'static str = "async-wrap default";
    type Fut<R: Send + 'static> = BlockingFuture<R>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        async_wrap::spawn(f)
    }
}

/// The default pool with the per-call-site statistics off: the pool as it was before them, so
/// without the adaptive wait either.
#[derive(Clone)]
struct AwNoStats;
impl System for AwNoStats {
    const NAME: &'static str = "async-wrap, statistics off";
    type Fut<R: Send + 'static> = BlockingFuture<R>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        async_wrap::spawn(f)
    }
    fn statistics(&self) -> bool {
        false
    }
}

#[derive(Clone)]
struct AwTwo;
impl System for AwTwo {
    const NAME: &'static str = "async-wrap max 2";
    type Fut<R: Send + 'static> = BlockingFuture<R>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        async_wrap::spawn_on(&TWO, f)
    }
}

type Unwrap<R, E> = fn(Result<R, E>) -> R;

fn unwrap<R, E: std::fmt::Debug>(result: Result<R, E>) -> R {
    result.expect("the job ran")
}

/// `tokio::task::spawn_blocking` on a runtime's blocking pool.
#[derive(Clone)]
struct Tokio(tokio::runtime::Handle);
impl System for Tokio {
    const NAME: &'static str = "tokio";
    type Fut<R: Send + 'static> =
        Map<tokio::task::JoinHandle<R>, Unwrap<R, tokio::task::JoinError>>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        self.0.spawn_blocking(f).map(unwrap as Unwrap<R, _>)
    }
}

#[derive(Clone)]
struct Unblock;
impl System for Unblock {
    const NAME: &'static str = "blocking::unblock";
    type Fut<R: Send + 'static> = blocking::Task<R>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        blocking::unblock(f)
    }
}

#[derive(Clone)]
struct RayonOneshot;
impl System for RayonOneshot {
    const NAME: &'static str = "rayon + oneshot";
    type Fut<R: Send + 'static> =
        Map<futures::channel::oneshot::Receiver<R>, Unwrap<R, futures::channel::oneshot::Canceled>>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        let (tx, rx) = futures::channel::oneshot::channel();
        rayon::spawn(move || {
            let _ = tx.send(f());
        });
        rx.map(unwrap as Unwrap<R, _>)
    }
}

#[derive(Clone)]
struct Direct;
impl System for Direct {
    const NAME: &'static str = "direct call";
    type Fut<R: Send + 'static> = std::future::Ready<R>;
    fn call<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Self::Fut<R> {
        std::future::ready(f())
    }
}

/// The column order of every table.
const NAMES: [&str; 8] = [
    AwDefault::NAME,
    AwNoStats::NAME,
    AwTwo::NAME,
    "tokio",
    "tokio max 2",
    Unblock::NAME,
    RayonOneshot::NAME,
    Direct::NAME,
];

/// Everything the systems need: the two tokio runtimes, and the harness runtime.
struct Rig {
    /// The runtime whose tasks await the calls (multi-thread, one worker per core).
    harness: tokio::runtime::Runtime,
    tokio: Tokio,
    tokio_two: Tokio,
    _runtimes: (tokio::runtime::Runtime, tokio::runtime::Runtime),
}

impl Rig {
    fn new() -> Self {
        let default = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let two = tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Rig {
            harness: tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
            tokio: Tokio(default.handle().clone()),
            tokio_two: Tokio(two.handle().clone()),
            _runtimes: (default, two),
        }
    }
}

/// Runs `body` once per system, in `NAMES` order, through a generic function.
macro_rules! for_each_system {
    ($rig:expr, $index:ident, $system:ident => $body:expr) => {{
        let rig = $rig;
        let mut out = Vec::new();
        {
            let ($index, $system) = (0, &AwDefault);
            out.push($body);
        }
        {
            let ($index, $system) = (1, &AwNoStats);
            out.push($body);
        }
        {
            let ($index, $system) = (2, &AwTwo);
            out.push($body);
        }
        {
            let ($index, $system) = (3, &rig.tokio);
            out.push($body);
        }
        {
            let ($index, $system) = (4, &rig.tokio_two);
            out.push($body);
        }
        {
            let ($index, $system) = (5, &Unblock);
            out.push($body);
        }
        {
            let ($index, $system) = (6, &RayonOneshot);
            out.push($body);
        }
        {
            let ($index, $system) = (7, &Direct);
            out.push($body);
        }
        out
    }};
}

// ---- thread accounting: which threads ran jobs, per (system, workload), at ~1 ns a job ----

const WORKLOADS: usize = 4;
static THREADS_SEEN: [AtomicUsize; NAMES.len() * WORKLOADS] =
    [const { AtomicUsize::new(0) }; NAMES.len() * WORKLOADS];

thread_local! {
    static SEEN_HERE: Cell<u64> = const { Cell::new(0) };
}

/// Counts the current thread once for `slot` (a system and a workload).
fn note_thread(slot: usize) {
    SEEN_HERE.with(|seen| {
        let bit = 1 << slot;
        if seen.get() & bit == 0 {
            seen.set(seen.get() | bit);
            THREADS_SEEN[slot].fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// CPU time of the whole process so far (every thread, user and system), in nanoseconds.
fn process_cpu() -> Duration {
    cpu_time::ProcessTime::now().as_duration()
}

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

// ---- the workloads ----

/// `calls` sequential round trips of a trivial closure, awaited in a task spawned on the harness
/// runtime (so polled by one of its worker threads); returns each call's latency.
fn sequential_in_tokio<S: System>(
    rig: &Rig,
    system: &S,
    slot: usize,
    calls: usize,
) -> Vec<Duration> {
    let system = system.clone();
    prepare(&system);
    let task = rig.harness.spawn(async move {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let start = Instant::now();
            system.call(move || note_thread(slot)).await;
            samples.push(start.elapsed());
        }
        samples
    });
    rig.harness.block_on(task).expect("the harness task ran")
}

/// The same, under `async_wrap::block_on` on this thread (where the adaptive wait applies;
/// under `futures::executor::block_on`, which it cannot tell from a runtime with other tasks,
/// it does not).
fn sequential_block_on<S: System>(system: &S, slot: usize, calls: usize) -> Vec<Duration> {
    prepare(system);
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        async_wrap::block_on(system.call(move || note_thread(slot)));
        samples.push(start.elapsed());
    }
    samples
}

/// `batches` batches of `batch` trivial calls in flight at once; returns the elapsed time.
fn batched<S: System>(system: &S, slot: usize, batch: usize, batches: usize) -> Duration {
    prepare(system);
    // One batch untimed: the system's threads awake, whichever system ran before.
    futures::executor::block_on(join_all(
        (0..batch).map(|_| system.call(move || note_thread(slot))),
    ));
    let start = Instant::now();
    futures::executor::block_on(async {
        for _ in 0..batches {
            let calls = (0..batch).map(|_| system.call(move || note_thread(slot)));
            black_box(join_all(calls).await);
        }
    });
    start.elapsed()
}

struct Latency {
    samples: Vec<Duration>,
    cpu: Duration,
}

impl Latency {
    fn empty() -> Self {
        Latency {
            samples: Vec::new(),
            cpu: Duration::ZERO,
        }
    }

    fn summary(&mut self) -> [String; 5] {
        self.samples.sort_unstable();
        let n = self.samples.len().max(1);
        let median = self.samples[n / 2];
        let fast: Vec<&Duration> = self
            .samples
            .iter()
            .filter(|d| **d < Duration::from_micros(10))
            .collect();
        let fast_median = fast
            .get(fast.len() / 2)
            .map_or("—".to_owned(), |d| micros(**d));
        let mean = self.samples.iter().sum::<Duration>() / u32::try_from(n).unwrap_or(u32::MAX);
        let cpu = self.cpu / u32::try_from(n).unwrap_or(u32::MAX);
        [
            micros(median),
            fast_median,
            format!("{:.0}%", 100.0 * fast.len() as f64 / n as f64),
            micros(mean),
            micros(cpu),
        ]
    }
}

fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn print_table(title: &str, rows: &[(&str, Vec<String>)]) {
    println!("\n### {title}\n");
    println!("| | {} |", NAMES.join(" | "));
    println!("|---|{}", "---|".repeat(NAMES.len()));
    for (label, cells) in rows {
        println!("| {label} | {} |", cells.join(" | "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--child") {
        child(&args[position + 1], &args[position + 2]);
        return;
    }
    let scale = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    let rig = Rig::new();
    println!(
        "## async-wrap compare: {} cores, {}",
        thread::available_parallelism().map_or(0, usize::from),
        if scale == 1 {
            "full run"
        } else {
            "quick run (--quick)"
        }
    );

    // `--only latency|throughput|sleepers|neighbours|fresh|seed|growth`: one table, for a quicker
    // comparison.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1));
    let wanted = |table: &str| only.is_none_or(|only| only == table);
    if wanted("latency") {
        latency_rows(&rig, scale);
        println!(
            "\nasync-wrap's call sites after the latency rows:\n\n```text\n{}```",
            async_wrap::call_sites()
        );
    }
    if wanted("throughput") {
        let before = async_wrap::call_sites();
        throughput_rows(&rig, scale);
        // The throughput rows poll 1,000 and 10,000 calls at a time: the adaptive wait should
        // (all but) never apply there.
        let waits = |sites: &async_wrap::CallSites| sites.iter().map(|s| s.waits).sum::<u64>();
        println!(
            "\nadaptive waits during the throughput rows: {}",
            waits(&async_wrap::call_sites()) - waits(&before)
        );
    }
    if wanted("sleepers") {
        sleeper_rows(&rig, scale);
    }
    if wanted("neighbours") {
        neighbours::neighbour_rows(scale);
    }
    if wanted("fresh") {
        fresh_process_rows();
    }
    if wanted("seed") {
        seed_rows(&rig);
    }
    if wanted("growth") {
        growth::growth_rows(scale);
    }
}

/// Sequential round trips, inside a tokio task and under `block_on`, interleaved by round.
fn latency_rows(rig: &Rig, scale: usize) {
    const ROUNDS: usize = 10;
    let calls = 4_000 / scale;
    let mut in_tokio: Vec<Latency> = (0..NAMES.len()).map(|_| Latency::empty()).collect();
    let mut block_on: Vec<Latency> = (0..NAMES.len()).map(|_| Latency::empty()).collect();
    for _round in 0..ROUNDS {
        for_each_system!(rig, index, system => {
            let cpu = process_cpu();
            let samples = sequential_in_tokio(rig, system, index * WORKLOADS, calls);
            in_tokio[index].cpu += process_cpu().saturating_sub(cpu);
            in_tokio[index].samples.extend(samples);
            let cpu = process_cpu();
            let samples = sequential_block_on(system, index * WORKLOADS + 1, calls);
            block_on[index].cpu += process_cpu().saturating_sub(cpu);
            block_on[index].samples.extend(samples);
        });
    }
    for (title, mut results, workload) in [
        (
            "Sequential round trip, awaited in a tokio task (multi-thread runtime)",
            in_tokio,
            0,
        ),
        (
            "Sequential round trip, under async_wrap::block_on",
            block_on,
            1,
        ),
    ] {
        let summaries: Vec<[String; 5]> = results.iter_mut().map(Latency::summary).collect();
        let column = |i: usize| summaries.iter().map(|s| s[i].clone()).collect::<Vec<_>>();
        let threads = (0..NAMES.len())
            .map(|s| {
                THREADS_SEEN[s * WORKLOADS + workload]
                    .load(Ordering::Relaxed)
                    .to_string()
            })
            .collect();
        print_table(
            &format!("{title}, {} calls each", ROUNDS * calls),
            &[
                ("median", column(0)),
                ("fast-cluster median (< 10 µs)", column(1)),
                ("share in fast cluster", column(2)),
                ("mean", column(3)),
                ("CPU per call (whole process)", column(4)),
                ("threads that ran jobs", threads),
            ],
        );
    }
}

/// Trivial calls 1,000 and 10,000 at a time, interleaved by round.
fn throughput_rows(rig: &Rig, scale: usize) {
    const ROUNDS: usize = 10;
    let calls_per_round = 100_000 / scale;
    let mut rows = Vec::new();
    for (label, batch, workload) in [
        ("1,000 at a time", 1_000, 2),
        ("10,000 at a time", 10_000, 3),
    ] {
        let mut elapsed = vec![Duration::ZERO; NAMES.len()];
        let mut cpu = vec![Duration::ZERO; NAMES.len()];
        for _round in 0..ROUNDS {
            let times = for_each_system!(rig, index, system => {
                let before = process_cpu();
                let took = batched(system, index * WORKLOADS + workload, batch, calls_per_round / batch);
                (took, process_cpu().saturating_sub(before))
            });
            for (index, (took, used)) in times.into_iter().enumerate() {
                elapsed[index] += took;
                cpu[index] += used;
            }
        }
        let total = (ROUNDS * calls_per_round) as f64;
        rows.push((
            format!("{label}: M calls/s"),
            elapsed
                .iter()
                .map(|e| format!("{:.2}", total / e.as_secs_f64() / 1e6))
                .collect::<Vec<String>>(),
        ));
        rows.push((
            format!("{label}: CPU per call"),
            cpu.iter()
                .map(|c| format!("{:.0} ns", c.as_secs_f64() * 1e9 / total))
                .collect(),
        ));
        rows.push((
            format!("{label}: threads that ran jobs"),
            (0..NAMES.len())
                .map(|s| {
                    THREADS_SEEN[s * WORKLOADS + workload]
                        .load(Ordering::Relaxed)
                        .to_string()
                })
                .collect(),
        ));
    }
    let rows: Vec<(&str, Vec<String>)> =
        rows.iter().map(|(l, c)| (l.as_str(), c.clone())).collect();
    print_table(
        &format!(
            "Throughput, {} trivial calls per system",
            ROUNDS * calls_per_round
        ),
        &rows,
    );
    println!(
        "\nOS threads in this process after the runs: {}",
        os_threads()
    );
}

/// Sequential calls of a function that sleeps 1 ms, awaited in a tokio task: what the adaptive
/// wait must not make dearer (it never waits for a function that long).
fn sleeper_rows(rig: &Rig, scale: usize) {
    const ROUNDS: usize = 5;
    let calls = 200 / scale.min(10);
    let mut results: Vec<Latency> = (0..NAMES.len()).map(|_| Latency::empty()).collect();
    for _round in 0..ROUNDS {
        for_each_system!(rig, index, system => {
            if NAMES[index] != Direct::NAME {
                prepare(system);
                let system = system.clone();
                let cpu = process_cpu();
                let task = rig.harness.spawn(async move {
                    let mut samples = Vec::with_capacity(calls);
                    for _ in 0..calls {
                        let start = Instant::now();
                        system.call(|| thread::sleep(Duration::from_millis(1))).await;
                        samples.push(start.elapsed());
                    }
                    samples
                });
                let samples = rig.harness.block_on(task).expect("the harness task ran");
                results[index].cpu += process_cpu().saturating_sub(cpu);
                results[index].samples.extend(samples);
            }
        });
    }
    let summaries: Vec<[String; 5]> = results
        .iter_mut()
        .zip(NAMES)
        .map(|(latency, name)| {
            if name == Direct::NAME {
                std::array::from_fn(|_| "—".to_owned())
            } else {
                latency.summary()
            }
        })
        .collect();
    let column = |i: usize| summaries.iter().map(|s| s[i].clone()).collect::<Vec<_>>();
    print_table(
        &format!(
            "Sequential calls of a function that sleeps 1 ms, awaited in a tokio task, {} calls each",
            ROUNDS * calls
        ),
        &[
            ("median", column(0)),
            ("mean", column(3)),
            ("CPU per call (whole process)", column(4)),
        ],
    );
}

/// Fresh processes per system for the first call's latency.
const FIRST_CALLS: usize = 9;

/// Peak memory with 10,000 sleeping calls in flight, and the first call's latency, each in a
/// fresh child process.
fn fresh_process_rows() {
    let exe = std::env::current_exe().unwrap();
    let run = |what: &str, system: &str| -> String {
        let output = std::process::Command::new(&exe)
            .args(["--child", what, system])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let rss: Vec<String> = NAMES
        .iter()
        .map(|name| {
            if *name == Direct::NAME {
                "—".to_owned()
            } else {
                run("rss", name)
            }
        })
        .collect();
    // One fresh process per sample: the median of `FIRST_CALLS`, interleaved across systems.
    let mut first_samples: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    for _ in 0..FIRST_CALLS {
        for (samples, name) in first_samples.iter_mut().zip(NAMES) {
            let micros: f64 = run("first", name)
                .trim_end_matches(" µs")
                .parse()
                .unwrap_or(f64::NAN);
            samples.push(micros);
        }
    }
    let first: Vec<String> = first_samples
        .iter_mut()
        .map(|samples| {
            samples.sort_by(f64::total_cmp);
            format!("{:.0} µs", samples[samples.len() / 2])
        })
        .collect();
    print_table(
        "Fresh process",
        &[
            ("peak RSS with 10,000 sleeping calls in flight", rss),
            (
                "first call (pool start included), median of 9 processes",
                first,
            ),
        ],
    );
}

/// What a child process measures: `rss` or `first`, for the system named.
fn child(what: &str, name: &str) {
    let rig = Rig::new();
    let result = for_each_system!(&rig, index, system => {
        if NAMES[index] == name { Some(child_run(what, system)) } else { None }
    });
    println!(
        "{}",
        result.into_iter().flatten().next().unwrap_or_default()
    );
}

fn child_run<S: System>(what: &str, system: &S) -> String {
    if let Some(out) = growth::child_run(what, system) {
        return out;
    }
    prepare(system);
    if what == "first" {
        let start = Instant::now();
        futures::executor::block_on(system.call(|| black_box(1)));
        return micros(start.elapsed());
    }
    // 10,000 calls that each sleep 200 ms, all in flight; the peak RSS half a second in.
    let calls: Vec<_> = (0..10_000)
        .map(|_| system.call(|| thread::sleep(Duration::from_millis(200))))
        .collect();
    let poller = thread::spawn(move || futures::executor::block_on(join_all(calls)));
    thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    drop(poller);
    // Leave without waiting for the sleepers.
    print!("{:.1} MiB", peak as f64 / 1024.0);
    std::process::exit(0)
}

/// The seed's scenario: 17 calls that each block for 100 ms, on every system.
fn seed_rows(rig: &Rig) {
    let results = for_each_system!(rig, index, system => {
        if NAMES[index] == Direct::NAME {
            ("—".to_owned(), "—".to_owned())
        } else {
            prepare(system);
            let ids = Arc::new(Mutex::new(HashSet::<ThreadId>::new()));
            let start = Instant::now();
            futures::executor::block_on(join_all((0..17).map(|_| {
                let ids = ids.clone();
                system.call(move || {
                    thread::sleep(Duration::from_millis(100));
                    ids.lock().unwrap().insert(thread::current().id());
                })
            })));
            let elapsed = start.elapsed();
            (format!("{} ms", elapsed.as_millis()), ids.lock().unwrap().len().to_string())
        }
    });
    let (wall, threads): (Vec<String>, Vec<String>) = results.into_iter().unzip();
    print_table(
        "The seed's scenario: 17 concurrent calls that block for 100 ms",
        &[("wall time", wall), ("threads used", threads)],
    );
}
