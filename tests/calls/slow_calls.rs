//! Slow-call reports: a job past the pool's `slow_call` threshold is reported once, while it
//! runs (inline and on-caller runs too); a queue wait past `slow_queue_wait` is reported as the
//! job starts, and only for a job that did start; quick calls never; a hook's own time is not
//! the body's; the watcher thread sleeps while there is nothing to watch and leaves with the pool.

use crate::support::{
    INSTANT, LIMIT, eventually, gate, gated_on, instant, poll_noop, pool_reporting, reports_of,
    statistics_shared, stats_of, thread_ids_named, threads_named, voluntary_switches, within,
};
use async_wrap::{BlockingPool, QueueFull, SlowCall, Slowness, async_wrap, spawn_on};
use futures::executor::block_on;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

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
        assert_eq!(slow.function(), site!("wait_for"));
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
                "async-wrap: `{}` ({}:{WAIT_FOR_LINE}) on pool `slowrun` (executor = pool) has \
                 run for ",
                site!("wait_for"),
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

#[async_wrap(executor = pool)]
fn sleeps_on(pool: Arc<BlockingPool>, ms: u64) {
    let _ = pool;
    std::thread::sleep(Duration::from_millis(ms));
}

/// Before the fix: the worker takes the job's start time, *then* runs the `slow_queue_wait` report (the
/// user's hook) and only then the body: the hook's time counts as the body's run time. A body
/// that returns at once, queued behind another job, whose queue-wait report takes 300 ms, is
/// reported as having *run* past the 100 ms `slow_call` threshold, and its call-site run time
/// says 300 ms. A quick call reported as slow, and a run-time histogram that lies.
#[test]
fn a_slow_queue_wait_report_does_not_make_a_quick_call_slow() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        // Log every report; take 300 ms over a queue-wait report.
        let (pool, seen) = {
            let seen = Arc::new(Mutex::new(Vec::<SlowCall>::new()));
            let log = seen.clone();
            let pool = BlockingPool::builder()
                .thread_name("qhook")
                .max_threads(1)
                .slow_queue_wait(Duration::from_millis(5))
                .slow_call(Duration::from_millis(100))
                .on_slow_call(move |slow| {
                    log.lock().unwrap().push(slow.clone());
                    if slow.kind() == Slowness::Queued {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                })
                .build()
                .unwrap();
            (Arc::new(pool), seen)
        };
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let quick = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(instant(pool))
        });
        eventually("the quick call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        blocker.join().unwrap();
        assert_eq!(quick.join().unwrap(), 7);

        let reports = reports_of(&seen, INSTANT);
        let kinds: Vec<Slowness> = reports.iter().map(SlowCall::kind).collect();
        let run = stats_of(INSTANT)
            .expect("the quick call is counted")
            .run_time;
        assert_eq!(
            kinds,
            vec![Slowness::Queued],
            "a body that returns at once: {reports:#?}\nits run time as counted: {run:?}"
        );
    });
}

/// Before the fix: a job run inline is never reported, however long it runs: `run_inline` (the
/// `QueueFull::RunOnCaller` policy, and a nested call on a saturated pool) runs the body
/// without the running-job record the watcher reads and without the end-of-job check. The docs
/// promise the pool "reports each job that runs past the threshold".
#[test]
fn a_call_run_on_the_caller_past_the_threshold_is_reported() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("inline", |b| {
            b.max_threads(1)
                .queue_capacity(0, QueueFull::RunOnCaller)
                .slow_call(Duration::from_millis(10))
        });
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        // The queue is full (capacity 0, the only thread busy): this runs here, for 80 ms.
        block_on(sleeps_on(pool.clone(), 80));
        assert_eq!(pool.metrics().inline, 1, "it ran on the caller");
        go.send(()).unwrap();
        blocker.join().unwrap();
        let reports = reports_of(&seen, site!("sleeps_on"));
        assert_eq!(
            reports.len(),
            1,
            "a call that ran 80 ms on a pool with a 10 ms threshold: all reports: {:#?}",
            seen.lock().unwrap()
        );
    });
}

/// Before the fix: the nested form: a job on a one-thread pool waits on a call to the same pool, which
/// runs inline for 80 ms; only the outer job is ever reported.
#[test]
fn a_nested_call_run_inline_past_the_threshold_is_reported() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("nest", |b| {
            b.max_threads(1).slow_call(Duration::from_millis(10))
        });
        let inner_pool = pool.clone();
        block_on(spawn_on(pool.clone(), move || {
            async_wrap::block_on(sleeps_on(inner_pool, 80));
        }));
        assert_eq!(pool.metrics().inline, 1, "the nested call ran inline");
        let reports = reports_of(&seen, site!("sleeps_on"));
        assert_eq!(
            reports.len(),
            1,
            "the nested call ran 80 ms; all reports: {:#?}",
            seen.lock().unwrap()
        );
    });
}

/// Before the fix: a job first polled elsewhere and then run inline by a worker of its pool (the
/// "Nesting" rule, `run_waiting_here`) stays in the queue as an empty entry; when a thread pops
/// that entry later, `check_queue_wait` reports the call as having waited for a thread from its
/// submission to that pop, though its body ran long before (within a millisecond of its
/// submission here). A quick call reported, with a made-up wait.
#[test]
fn a_call_already_run_inline_is_not_reported_as_queued_when_its_stale_entry_is_popped() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("stale", |b| {
            b.max_threads(1).slow_queue_wait(Duration::from_millis(50))
        });
        let (send, receive) = mpsc::channel::<async_wrap::BlockingFuture<u8>>();
        let receive = Mutex::new(receive);
        let outer = std::thread::spawn({
            let pool = pool.clone();
            move || {
                block_on(spawn_on(pool, move || {
                    let call = receive.lock().unwrap().recv().unwrap();
                    let value = async_wrap::block_on(call);
                    // The thread stays busy: the stale queue entry is popped only after this.
                    std::thread::sleep(Duration::from_millis(300));
                    value
                }))
            }
        });
        eventually("the outer job runs", || pool.metrics().running == 1);
        let mut call = instant(pool.clone());
        assert!(poll_noop(&mut call).is_pending());
        assert_eq!(pool.metrics().queued, 1);
        send.send(call).unwrap();
        assert_eq!(outer.join().unwrap(), 7);
        eventually("the pool is idle", || {
            let m = pool.metrics();
            m.queued == 0 && m.running == 0
        });
        let reports = reports_of(&seen, INSTANT);
        assert!(
            reports.is_empty(),
            "a call run inline within a millisecond of its submission: {reports:#?}"
        );
    });
}

/// Before the fix (debatable): a call whose future was dropped while it was queued never starts, yet it
/// is reported as `Slowness::Queued`, "waited ... for a thread before it started".
#[test]
fn a_call_dropped_while_queued_is_not_reported_as_started() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("cancel", |b| {
            b.max_threads(1).slow_queue_wait(Duration::from_millis(20))
        });
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let mut call = instant(pool.clone());
        assert!(poll_noop(&mut call).is_pending());
        drop(call);
        std::thread::sleep(Duration::from_millis(60));
        go.send(()).unwrap();
        blocker.join().unwrap();
        // (The blocker's caller is woken once its thread has taken the next job: wait for that
        // job's end, not for an idle-looking pool.)
        eventually("the dropped call is skipped", || {
            pool.metrics().cancelled == 1
        });
        let reports = reports_of(&seen, INSTANT);
        assert!(
            reports.is_empty(),
            "a call whose body never started: {reports:#?}"
        );
    });
}

/// Before the fix (CPU): the watcher of a pool with `slow_call` wakes every quarter of the threshold
/// (at least every millisecond) for as long as the pool exists, even when the pool has no
/// thread left and nothing to watch: an idle `static` pool with `slow_call(4 ms)` wakes a
/// thread 1,000 times a second for ever.
#[test]
fn the_watcher_of_an_idle_pool_without_threads_sleeps() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, _seen) = pool_reporting("idle", |b| {
            b.slow_call(Duration::from_millis(4))
                .keep_alive(Duration::from_millis(20))
        });
        block_on(spawn_on(pool.clone(), || ()));
        eventually("the pool's threads have left", || {
            pool.metrics().threads == 0
        });
        let watcher = thread_ids_named("idle-watcher");
        assert_eq!(watcher.len(), 1, "the watcher thread");
        let before = voluntary_switches(&watcher[0]);
        std::thread::sleep(Duration::from_millis(500));
        let woken = voluntary_switches(&watcher[0]) - before;
        assert_eq!(pool.metrics().threads, 0);
        assert!(
            woken < 20,
            "the watcher of a pool with no thread woke {woken} times in 500 ms"
        );
    });
}

/// The watcher of a pool dropped without a shutdown (its threads still alive, one of them
/// running a slow job when the pool is dropped) leaves once that job has ended; the job is
/// reported once.
#[test]
fn the_watcher_of_a_pool_dropped_without_shutdown_leaves() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("dropw", |b| b.slow_call(Duration::from_millis(10)));
        let (go, gate) = gate();
        let call = gated_on(pool.clone(), gate);
        let caller = std::thread::spawn(move || block_on(call));
        eventually("the watcher runs", || {
            thread_ids_named("dropw-watcher").len() == 1
        });
        eventually("the report", || seen.lock().unwrap().len() == 1);
        drop(pool);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        caller.join().unwrap();
        eventually("the watcher leaves", || {
            thread_ids_named("dropw-watcher").is_empty()
        });
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}
