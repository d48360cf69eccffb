//! Slow-call warnings: a job past the pool's `slow_call` threshold is reported once, while it
//! runs; a queue wait past `slow_queue_wait` is reported as the job starts; quick calls are
//! never reported; a panicking hook harms nothing; the watcher thread leaves at shutdown.
//!
//! The "slow" jobs wait on a gate the test opens, so what is reported does not depend on how
//! fast the machine is; durations are asserted only from below.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_wrap::{BlockingPool, SlowCall, Slowness, async_wrap, spawn_on};
use futures::executor::block_on;
use support::{eventually, gate, pool_reporting, within};

const LIMIT: Duration = Duration::from_secs(30);

#[async_wrap(executor = pool)]
fn wait_for(pool: Arc<BlockingPool>, gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}
const WAIT_FOR_LINE: u32 = line!() - 3;

#[test]
fn a_call_past_the_threshold_is_reported_once_while_it_runs() {
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("slowrun", |b| b.slow_call(Duration::from_millis(30)));
        let (go, gate) = gate();
        let call = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(wait_for(pool, gate))
        });
        // Reported while it still runs: the gate is still closed.
        eventually("the report", || !seen.lock().unwrap().is_empty());
        assert_eq!(pool.metrics().running, 1);
        std::thread::sleep(Duration::from_millis(100));
        go.send(()).unwrap();
        call.join().unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "reported once: {seen:?}");
        let slow = &seen[0];
        assert_eq!(slow.kind(), Slowness::Running);
        assert_eq!(slow.function(), "slow_calls::wait_for");
        assert_eq!(
            (slow.site().file(), slow.site().line()),
            (file!(), WAIT_FOR_LINE)
        );
        assert_eq!(slow.pool(), "slowrun");
        assert_eq!(slow.threshold(), Duration::from_millis(30));
        assert!(slow.elapsed() > Duration::from_millis(30), "{slow:?}");
        let text = slow.to_string();
        assert!(
            text.starts_with(&format!(
                "async-wrap: `slow_calls::wait_for` ({}:{WAIT_FOR_LINE}) on pool `slowrun` \
                 (executor = pool) has run for ",
                file!()
            )),
            "{text}"
        );
        assert!(
            text.ends_with("past the pool's slow_call threshold of 30.0 ms"),
            "{text}"
        );
    });
}

#[test]
fn every_call_past_the_threshold_is_reported_exactly_once_and_quick_ones_never() {
    within(LIMIT, || {
        // Quick calls, on a pool whose threshold no quick call reaches even on a loaded machine.
        let (quick, quiet) = pool_reporting("slowquick", |b| b.slow_call(Duration::from_secs(2)));
        for _ in 0..200 {
            block_on(spawn_on(quick.clone(), || ()));
        }
        assert!(quiet.lock().unwrap().is_empty(), "quick calls are not slow");
        // A threshold of 40 ms: the watcher looks every 10 ms, so some of these calls end
        // before it has seen them past the threshold (their thread reports them), others not.
        let (pool, seen) = pool_reporting("slowonce", |b| b.slow_call(Duration::from_millis(40)));
        for _ in 0..6 {
            block_on(spawn_on(pool.clone(), || {
                std::thread::sleep(Duration::from_millis(45));
            }));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert!(
            seen.iter()
                .all(|slow| slow.function() == "closure"
                    && slow.elapsed() > Duration::from_millis(40))
        );
    });
}

#[test]
fn a_queue_wait_past_the_threshold_is_reported_as_the_job_starts() {
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("slowqueue", |b| {
            b.max_threads(1).slow_queue_wait(Duration::from_millis(20))
        });
        let (go, gate) = gate();
        let holder = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(wait_for(pool, gate))
        });
        eventually("the holder runs", || pool.metrics().running == 1);
        let queued = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(spawn_on(pool, || ()))
        });
        eventually("the call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(40));
        let closures = |seen: &[SlowCall]| -> Vec<SlowCall> {
            // The holder's own queue wait (a thread's start) is not what this test is about.
            seen.iter()
                .filter(|slow| slow.function() == "closure")
                .cloned()
                .collect()
        };
        assert!(
            closures(&seen.lock().unwrap()).is_empty(),
            "not before it starts"
        );
        go.send(()).unwrap();
        holder.join().unwrap();
        queued.join().unwrap();
        let seen = closures(&seen.lock().unwrap());
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].kind(), Slowness::Queued);
        assert_eq!(seen[0].function(), "closure");
        assert!(
            seen[0].elapsed() >= Duration::from_millis(40),
            "{:?}",
            seen[0]
        );
        assert!(
            seen[0]
                .to_string()
                .contains("for a thread before it started, past the pool's slow_queue_wait threshold of 20.0 ms"),
            "{}",
            seen[0]
        );
    });
}

#[test]
fn a_panicking_hook_harms_neither_the_call_nor_the_pool() {
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(1)
                .slow_call(Duration::from_millis(5))
                .slow_queue_wait(Duration::from_millis(5))
                .on_slow_call(|_| panic!("a user's hook panics"))
                .build()
                .unwrap(),
        );
        for round in 0..3 {
            let calls = (0..3).map(|i| {
                spawn_on(pool.clone(), move || {
                    std::thread::sleep(Duration::from_millis(15));
                    i
                })
            });
            let results = block_on(futures::future::join_all(calls));
            assert_eq!(results, vec![0, 1, 2], "round {round}");
        }
        let metrics = pool.metrics();
        assert_eq!((metrics.completed, metrics.panicked), (9, 0));
        assert_eq!(metrics.threads, 1, "the thread survived the hook");
    });
}

/// The OS threads of this process whose name starts with `prefix`.
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_watcher_thread_leaves_when_the_pool_shuts_down() {
    within(LIMIT, || {
        let (pool, _seen) = pool_reporting("wleave", |b| b.slow_call(Duration::from_secs(10)));
        block_on(spawn_on(pool.clone(), || ()));
        // (A new thread names itself once it runs.)
        eventually("the watcher runs", || threads_named("wleave-watcher") == 1);
        let report = pool.shutdown_timeout(Duration::from_secs(10));
        assert!(report.is_complete());
        eventually("the watcher leaves", || {
            threads_named("wleave-watcher") == 0
        });

        // A pool without a threshold has no watcher.
        let plain = Arc::new(
            BlockingPool::builder()
                .thread_name("wnone")
                .build()
                .unwrap(),
        );
        block_on(spawn_on(plain.clone(), || ()));
        assert_eq!(threads_named("wnone-watcher"), 0);
    });
}
