//! The growth rows: how many threads 1,000 trivial calls in flight grow each pool to, and at what
//! throughput, with 0, 1 and 2 CPU-bound threads (hogs) running elsewhere in the process; and
//! the seed's 17 calls that sleep 100 ms, beside the same hogs. Each sample is a fresh process,
//! so that every pool starts from no threads; systems are interleaved round by round.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::{AwDefault, AwTwo, System, THREADS_SEEN, Unblock, batched, note_thread, prepare};

/// The systems compared: the elastic default pool, a pool capped at 2 (the reference), tokio's
/// blocking pool and the `blocking` crate's.
const SYSTEMS: [&str; 4] = [AwDefault::NAME, AwTwo::NAME, "tokio", Unblock::NAME];
/// Fresh processes per system and load.
const ROUNDS: usize = 5;
/// Batches of 1,000 calls per sample.
const BATCHES: usize = 20;

/// Runs in a child process: `what` is `trivial:N` or `sleepers:N` (N hogs); prints the elapsed
/// nanoseconds and the threads that ran jobs.
pub(crate) fn child_run<S: System>(what: &str, system: &S) -> Option<String> {
    let (kind, hogs) = what.split_once(':')?;
    let hogs: usize = hogs.parse().ok()?;
    let stop = Arc::new(AtomicBool::new(false));
    let spinning: Vec<_> = (0..hogs)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut x = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(
                        x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                    );
                }
            })
        })
        .collect();
    // The hogs on their cores before the calls start.
    thread::sleep(Duration::from_millis(20));
    let elapsed = match kind {
        "trivial" => batched(system, 0, 1_000, BATCHES),
        // The same calls made from tasks of a multi-thread tokio runtime: 1,000 tasks at a
        // time, each awaiting one call.
        "tasks" => {
            prepare(system);
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            let start = Instant::now();
            runtime.block_on(async {
                for _ in 0..BATCHES {
                    let tasks: Vec<_> = (0..1_000)
                        .map(|_| {
                            let call = system.call(|| note_thread(0));
                            tokio::spawn(call)
                        })
                        .collect();
                    for task in tasks {
                        let _ = task.await;
                    }
                }
            });
            start.elapsed()
        }
        "sleepers" => {
            prepare(system);
            let start = Instant::now();
            futures::executor::block_on(join_all((0..17).map(|_| {
                system.call(|| {
                    note_thread(0);
                    thread::sleep(Duration::from_millis(100));
                })
            })));
            start.elapsed()
        }
        "mix" => {
            prepare(system);
            let start = Instant::now();
            futures::executor::block_on(join_all((0..MIXED).map(|job| {
                system.call(move || {
                    note_thread(0);
                    mixed_job(job);
                })
            })));
            start.elapsed()
        }
        // The same jobs on an oracle that knows which job blocks: the CPU-bound ones on a pool
        // of one thread per core, the blocking ones on the default pool.
        "mix-oracle" => {
            let cores = thread::available_parallelism().map_or(1, usize::from);
            let cpu = Arc::new(
                async_wrap::BlockingPool::builder()
                    .max_threads(cores)
                    .build()
                    .expect("the oracle's CPU pool"),
            );
            let start = Instant::now();
            futures::executor::block_on(join_all((0..MIXED).map(|job| {
                let body = move || {
                    note_thread(0);
                    mixed_job(job);
                };
                if job % 2 == 0 {
                    async_wrap::spawn_on(cpu.clone(), body)
                } else {
                    async_wrap::spawn(body)
                }
            })));
            start.elapsed()
        }
        "behind" => return Some(behind(system, &stop, spinning)),
        _ => return None,
    };
    stop.store(true, Ordering::Relaxed);
    for hog in spinning {
        let _ = hog.join();
    }
    Some(format!(
        "{} {}",
        elapsed.as_nanos(),
        THREADS_SEEN[0].load(Ordering::Relaxed)
    ))
}

/// Jobs in the mixed load: every other one CPU-bound.
const MIXED: usize = 32;
/// What each job of the mixed load does: even ones compute for 10 ms of their thread's CPU
/// time (however long that takes on shared cores), odd ones sleep 10 ms.
fn mixed_job(job: usize) {
    if job % 2 == 0 {
        let start = cpu_time::ThreadTime::now();
        while start.elapsed() < Duration::from_millis(10) {
            std::hint::spin_loop();
        }
    } else {
        thread::sleep(Duration::from_millis(10));
    }
}

/// How long a short call waits behind one CPU-bound job per core: five times, the CPU-bound
/// jobs computing for 100 ms each, the short call made 2 ms after them; prints the median wait
/// (submission to the body's start, in nanoseconds) and the threads that ran jobs.
fn behind<S: System>(system: &S, stop: &AtomicBool, hogs: Vec<thread::JoinHandle<()>>) -> String {
    prepare(system);
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let mut waits = Vec::new();
    for _ in 0..5 {
        let computing: Vec<_> = (0..cores)
            .map(|_| {
                system.call(|| {
                    note_thread(0);
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(100) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let computing = thread::spawn(move || futures::executor::block_on(join_all(computing)));
        thread::sleep(Duration::from_millis(2));
        let made = Instant::now();
        let started = futures::executor::block_on(system.call(|| {
            note_thread(0);
            Instant::now()
        }));
        waits.push(started.duration_since(made).as_secs_f64());
        let _ = computing.join();
    }
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        let _ = hog.join();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let wait = (median(&mut waits) * 1e9) as u64;
    format!("{wait} {}", THREADS_SEEN[0].load(Ordering::Relaxed))
}

/// One sample: a fresh process running `what` on `system`.
fn sample(what: &str, system: &str) -> Option<(Duration, usize)> {
    let exe = std::env::current_exe().ok()?;
    let output = Command::new(exe)
        .args(["--child", what, system])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let nanos: u64 = fields.next()?.parse().ok()?;
    let threads: usize = fields.next()?.parse().ok()?;
    Some((Duration::from_nanos(nanos), threads))
}

/// The median of `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the growth tables.
pub(crate) fn growth_rows(scale: usize) {
    let rounds = if scale == 1 { ROUNDS } else { 2 };
    let cores = thread::available_parallelism().map_or(1, usize::from);
    println!(
        "\n### Growth beside CPU hogs: fresh processes, {rounds} rounds interleaved, {cores} cores\n"
    );
    println!(
        "Trivial calls, 1,000 in flight, {BATCHES} batches per sample: calls/s (median of \
         rounds; the ratio to the capped pool in the same rounds), and threads that ran jobs \
         (median / max). Then the seed's 17 calls sleeping 100 ms: wall time and threads.\n"
    );
    println!("| load | {} |", SYSTEMS.join(" | "));
    println!("|---|{}", "---|".repeat(SYSTEMS.len()));
    for hogs in [0, 1, 2] {
        for (kind, label) in [
            ("trivial", "1,000 trivial in flight"),
            ("tasks", "1,000 trivial in flight, from tokio tasks"),
            ("sleepers", "17 × 100 ms sleeps"),
        ] {
            let what = format!("{kind}:{hogs}");
            // samples[system][round]
            let mut samples: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); SYSTEMS.len()];
            for _ in 0..rounds {
                for (index, name) in SYSTEMS.iter().enumerate() {
                    if let Some(sample) = sample(&what, name) {
                        samples[index].push(sample);
                    }
                }
            }
            let capped = SYSTEMS
                .iter()
                .position(|name| *name == AwTwo::NAME)
                .unwrap_or(1);
            let cells: Vec<String> = samples
                .iter()
                .map(|runs| {
                    if runs.is_empty() {
                        return "failed".to_owned();
                    }
                    let mut threads: Vec<f64> = runs.iter().map(|(_, t)| *t as f64).collect();
                    let most = threads.iter().copied().fold(0.0, f64::max);
                    let threads = format!("{:.0} / {most:.0} threads", median(&mut threads));
                    if kind == "sleepers" {
                        let mut wall: Vec<f64> =
                            runs.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect();
                        return format!("{:.0} ms, {threads}", median(&mut wall));
                    }
                    let calls = (BATCHES * 1_000) as f64;
                    let mut rate: Vec<f64> =
                        runs.iter().map(|(d, _)| calls / d.as_secs_f64()).collect();
                    // The ratio round by round, against the capped pool's run of that round.
                    let mut ratio: Vec<f64> = runs
                        .iter()
                        .zip(&samples[capped])
                        .map(|((mine, _), (theirs, _))| theirs.as_secs_f64() / mine.as_secs_f64())
                        .collect();
                    format!(
                        "{:.2} M/s ({:.2}×), {threads}",
                        median(&mut rate) / 1e6,
                        median(&mut ratio)
                    )
                })
                .collect();
            println!("| {hogs} hog(s): {label} | {} |", cells.join(" | "));
        }
    }
    mixed_rows(rounds);
}

/// The mixed load against its oracle, and the short call behind CPU-bound jobs.
fn mixed_rows(rounds: usize) {
    println!(
        "\n{MIXED} jobs of 10 ms at once, every other one computing and the others sleeping: wall \
         time (median of rounds; the oracle's time divided by the system's, round by round) \
         and threads. The oracle runs the computing jobs on a pool of one thread per core and \
         the sleeping ones on the default pool. Then a short call made 2 ms after one 100 ms \
         computing job per core: its wait for a thread (median of 5 per process, median of \
         rounds) and threads.\n"
    );
    let mut columns: Vec<&str> = SYSTEMS.to_vec();
    columns.push("oracle");
    println!("| load | {} |", columns.join(" | "));
    println!("|---|{}", "---|".repeat(columns.len()));
    let mut mix: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); columns.len()];
    let mut waits: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); SYSTEMS.len()];
    for _ in 0..rounds {
        for (index, name) in SYSTEMS.iter().enumerate() {
            if let Some(sample) = sample("mix:0", name) {
                mix[index].push(sample);
            }
            if let Some(sample) = sample("behind:0", name) {
                waits[index].push(sample);
            }
        }
        if let Some(sample) = sample("mix-oracle:0", AwDefault::NAME) {
            mix[SYSTEMS.len()].push(sample);
        }
    }
    let oracle = mix[SYSTEMS.len()].clone();
    let cells: Vec<String> = mix
        .iter()
        .map(|runs| {
            if runs.is_empty() {
                return "failed".to_owned();
            }
            let mut wall: Vec<f64> = runs.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect();
            // The oracle's time over the system's: above 1, the system was faster.
            let mut ratio: Vec<f64> = runs
                .iter()
                .zip(&oracle)
                .map(|((mine, _), (theirs, _))| theirs.as_secs_f64() / mine.as_secs_f64())
                .collect();
            format!(
                "{:.0} ms ({:.2}×), {}",
                median(&mut wall),
                median(&mut ratio),
                thread_cell(runs)
            )
        })
        .collect();
    println!("| computing and sleeping, mixed | {} |", cells.join(" | "));
    let cells: Vec<String> = waits
        .iter()
        .map(|runs| {
            if runs.is_empty() {
                return "failed".to_owned();
            }
            let mut wait: Vec<f64> = runs.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect();
            format!("{:.2} ms, {}", median(&mut wait), thread_cell(runs))
        })
        .collect();
    println!(
        "| a short call behind one computing job per core | {} | — |",
        cells.join(" | ")
    );
}

/// Threads that ran jobs: median / max over the runs.
fn thread_cell(runs: &[(Duration, usize)]) -> String {
    let mut threads: Vec<f64> = runs.iter().map(|(_, t)| *t as f64).collect();
    let most = threads.iter().copied().fold(0.0, f64::max);
    format!("{:.0} / {most:.0} threads", median(&mut threads))
}
