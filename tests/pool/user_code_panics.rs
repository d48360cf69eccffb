//! User code the pool calls panics: thread hooks, slow-call hooks, wakers, the `Drop` of
//! arguments, results, bodies, thread values and panic payloads (a payload whose own `Drop`
//! panics too), user executors and initializers. None of it kills a worker or the watcher,
//! skips a count, strands a waiter, or leaves a lock or the shutdown held.

use crate::support::{
    CountingWaker, LIMIT, PanickingWaker, assert_a_later_call_runs, eventually, gate, gated_on,
    held_job, hold_the_only_thread, instant, one_thread_pool, poll_noop, poll_with, quiet_panics,
    statistics_alone, statistics_shared, stats_of, thread_ids_named, within,
};
use async_wrap::{
    BlockingPool, Executor, Job, QueueFull, Rejected, StatefulPool, async_wrap, spawn_on,
};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use std::{panic, thread};

/// A value whose `Drop` panics, counting its drops.
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a user's Drop panics");
    }
}

#[test]
fn thread_hooks_that_panic_kill_no_thread_and_skip_no_count() {
    within(Duration::from_secs(20), || {
        let (starts, stops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(2)
                .keep_alive(Duration::from_millis(10))
                .on_thread_start({
                    let starts = starts.clone();
                    move || {
                        starts.fetch_add(1, Ordering::SeqCst);
                        panic!("start hook");
                    }
                })
                .on_thread_stop({
                    let stops = stops.clone();
                    move || {
                        stops.fetch_add(1, Ordering::SeqCst);
                        panic!("stop hook");
                    }
                })
                .build()
                .unwrap(),
        );
        for round in 0..3_u32 {
            let calls = (0..4).map(|n| spawn_on(pool.clone(), move || round * 4 + n));
            let done = futures::executor::block_on(futures::future::join_all(calls));
            assert_eq!(done, (0..4).map(|n| round * 4 + n).collect::<Vec<_>>());
            eventually(
                "the threads to retire through their panicking stop hook",
                || pool.metrics().threads == 0,
            );
        }
        let metrics = pool.metrics();
        assert_eq!(metrics.completed, 12, "{metrics:?}");
        assert_eq!(
            starts.load(Ordering::SeqCst) as u64,
            metrics.threads_started,
            "every thread ran its start hook"
        );
        assert_eq!(
            stops.load(Ordering::SeqCst),
            starts.load(Ordering::SeqCst),
            "every thread ran its stop hook"
        );
        pool.shutdown();
    });
}

#[test]
fn a_waker_that_panics_when_the_result_is_ready_kills_no_worker() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let waker = Arc::new(PanickingWaker::default());
        let mut call = spawn_on(pool.clone(), || 5);
        assert!(
            call.poll_unpin(&mut Context::from_waker(&Waker::from(waker.clone())))
                .is_pending()
        );
        eventually("the worker to wake the caller", || {
            waker.0.load(Ordering::SeqCst) == 1
        });
        assert_eq!(futures::executor::block_on(call), 5);
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 6)), 6);
        let metrics = pool.metrics();
        assert_eq!(
            (metrics.threads_started, metrics.completed),
            (1, 2),
            "the same thread ran both: {metrics:?}"
        );
        pool.shutdown();
    });
}

#[test]
fn a_result_whose_drop_panics_after_its_future_is_gone_kills_no_worker() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let drops = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Barrier::new(2));
        let mut call = spawn_on(pool.clone(), {
            let (drops, gate) = (drops.clone(), gate.clone());
            move || {
                gate.wait();
                gate.wait();
                PanicsOnDrop(drops)
            }
        });
        assert!(poll_noop(&mut call).is_pending());
        gate.wait();
        // The body runs; its future goes away: the worker must drop the result itself.
        drop(call);
        gate.wait();
        eventually("the worker to drop the result", || {
            drops.load(Ordering::SeqCst) == 1
        });
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 6)), 6);
        let metrics = pool.metrics();
        assert_eq!(
            (metrics.threads_started, metrics.completed),
            (1, 2),
            "{metrics:?}"
        );
        pool.shutdown();
    });
}

/// An executor that drops every job without running it.
struct Drops;

impl Executor for Drops {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        drop(job);
        Ok(())
    }
}

#[test]
fn a_body_whose_drop_panics_when_its_job_is_dropped_unrun_is_reported_lost() {
    static DROPS: Drops = Drops;
    let drops = Arc::new(AtomicUsize::new(0));
    let owned = PanicsOnDrop(drops.clone());
    let call = spawn_on(&DROPS, move || {
        let _owned = &owned;
    });
    // The executor's `drop(job)` must not unwind into it: the body's panicking `Drop` is caught.
    let result = futures::executor::block_on(call.checked());
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the body was dropped once");
    let err = result.expect_err("a lost job is reported");
    assert!(err.to_string().contains("dropped"), "{err}");
}

/// An executor whose `execute` panics.
struct Explodes;

impl Executor for Explodes {
    fn execute(&self, _job: Job) -> Result<(), Rejected> {
        panic!("the user's executor panics");
    }
}

#[test]
fn a_user_executor_that_panics_fails_only_its_call() {
    static EXPLODES: Explodes = Explodes;
    static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    let mut call = spawn_on(&EXPLODES, || 1).checked();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| poll_noop(&mut call)));
    let payload = panicked.expect_err("the executor's panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the user's executor panics")
    );
    // The job it held was dropped while unwinding: the call is reported lost, not left hanging.
    match poll_noop(&mut call) {
        Poll::Ready(Err(err)) => assert!(err.to_string().contains("dropped"), "{err}"),
        other => panic!("the call after its executor panicked: {other:?}"),
    }
    // Nothing of the crate's is left held: a pool call runs.
    assert_eq!(futures::executor::block_on(spawn_on(&POOL, || 2)), 2);
}

// The worker's side. Before the fix the worker died in `wake_waiter`; the next call got
// nothing and `shutdown` never returned.
#[test]
fn a_waker_that_panics_when_room_frees_does_not_kill_the_worker() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Wait));
        let (first, gate) = held_job(&pool);
        let first = thread::spawn(move || futures::executor::block_on(first));
        gate.wait();
        let waker = Arc::new(PanickingWaker::default());
        let mut second = spawn_on(pool.clone(), || 2);
        assert!(poll_with(&mut second, &Waker::from(waker.clone())).is_pending());
        gate.wait();
        first.join().unwrap();
        eventually("the worker to wake the waiting call", || {
            waker.0.load(Ordering::SeqCst) > 0
        });
        // The worker lives on: the waiting call and a new one run, and shutdown returns.
        assert_eq!(futures::executor::block_on(second), 2);
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 3)), 3);
        let metrics = pool.metrics();
        assert_eq!((metrics.threads, metrics.completed), (1, 3), "{metrics:?}");
        pool.shutdown();
        assert_eq!(pool.metrics().threads, 0);
    });
}

// The other paths into a waiting future's waker: a waiter dropped after it was woken
// passes the wake-up on (`cancel_wait`), and `shutdown` wakes every waiter (`close`).
#[test]
fn a_panicking_waker_of_a_waiting_call_cannot_break_cancel_or_shutdown() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Wait));
        let (first, gate) = held_job(&pool);
        let first = thread::spawn(move || futures::executor::block_on(first));
        gate.wait();
        let (a, b, c) = (
            Arc::new(PanickingWaker::default()),
            Arc::new(PanickingWaker::default()),
            Arc::new(PanickingWaker::default()),
        );
        let mut waiting: Vec<_> = (0..3).map(|n| spawn_on(pool.clone(), move || n)).collect();
        for (future, waker) in waiting.iter_mut().zip([&a, &b, &c]) {
            assert!(poll_with(future, &Waker::from((*waker).clone())).is_pending());
        }
        // Dropping a waiter that was not woken wakes nobody; the room it held was never given.
        // Now free the thread: the worker wakes the oldest waiter (its waker panics).
        gate.wait();
        first.join().unwrap();
        eventually("the oldest waiter to be woken", || {
            a.0.load(Ordering::SeqCst) > 0
        });
        // The woken waiter is dropped without retrying: its wake-up passes to the next, whose
        // waker panics in the dropping thread's `cancel_wait`.
        let mut waiting = waiting.into_iter();
        drop(waiting.next());
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "the wake-up passed on");
        // Shutdown wakes the last waiter (its waker panics too) and still returns.
        pool.shutdown();
        assert_eq!(
            c.0.load(Ordering::SeqCst),
            1,
            "shutdown woke the last waiter"
        );
        let rest: Vec<_> = waiting
            .map(|future| futures::executor::block_on(future.checked()))
            .collect();
        assert!(
            rest.iter()
                .all(|r| r.as_ref().is_err_and(async_wrap::CallError::is_shut_down))
        );
        let metrics = pool.metrics();
        assert_eq!((metrics.threads, metrics.completed), (0, 1), "{metrics:?}");
    });
}

/// A panic payload whose own `Drop` panics: what `let _ = catch_unwind(..)` drops unguarded.
struct PayloadPanicsOnDrop;

impl Drop for PayloadPanicsOnDrop {
    fn drop(&mut self) {
        panic!("a panic payload whose Drop panics");
    }
}

/// Before the fix: `report_slow` catches the hook's panic with `let _ = catch_unwind(..)` and drops the
/// payload unguarded: a payload whose `Drop` panics escapes. From the watcher thread, it kills
/// the watcher: later slow calls are no longer reported while they run (the docs: "reports each
/// job that runs past the threshold, once, while it still runs").
#[test]
fn a_hook_panic_with_a_payload_that_panics_on_drop_leaves_the_watcher_alive() {
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let reports = Arc::new(AtomicUsize::new(0));
        let counted = reports.clone();
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("wkill")
                .max_threads(2)
                .slow_call(Duration::from_millis(10))
                .on_slow_call(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    panic::panic_any(PayloadPanicsOnDrop);
                })
                .build()
                .unwrap(),
        );
        let (go, gate1) = gate();
        let first = std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(gated_on(pool, gate1))
        });
        eventually("the first slow call is reported while it runs", || {
            reports.load(Ordering::SeqCst) == 1
        });
        go.send(()).unwrap();
        first.join().unwrap();
        assert_eq!(
            thread_ids_named("wkill-watcher").len(),
            1,
            "the watcher thread died of the hook's payload"
        );
        // A second slow call: reported while it runs only if the watcher lives. (Left running
        // on a detached thread: its end would be reported by its worker, which the same
        // payload kills, see the next test.)
        let (_go2, gate2) = gate();
        std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(gated_on(pool, gate2))
        });
        eventually("the second slow call is reported while it runs", || {
            reports.load(Ordering::SeqCst) == 2
        });
    });
}

/// Before the fix: the same payload from a `slow_queue_wait` report, which runs on the worker: it
/// unwinds out of the worker's loop and kills the thread. The queued job is dropped unrun (its
/// caller's future panics "dropped the job ... without running it"), the pool still counts the
/// dead thread, and with `max_threads(1)` every later call hangs. The contract: "User code
/// called by the pool (wakers, hooks, `Drop` of user values, user executors) may panic: that
/// never kills a worker, skips a count, or leaves a lock held."
#[test]
fn a_queue_wait_hook_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("qkill")
                .max_threads(1)
                .slow_queue_wait(Duration::from_millis(5))
                .on_slow_call(|_| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let queued = std::thread::spawn({
            let pool = pool.clone();
            move || {
                futures::executor::block_on(instant(pool).checked()).map_err(|err| err.to_string())
            }
        });
        eventually("the second call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        blocker.join().unwrap();
        let queued = queued.join().unwrap();
        assert_eq!(queued, Ok(7), "the queued call");
        // The pool goes on.
        assert_a_later_call_runs(&pool);
    });
}

/// Before the fix: the same for a waker (`wake_guarded` also drops the caught payload unguarded): a
/// waker whose `wake` panics with such a payload kills the worker that wakes it; the pool
/// (`max_threads` 1) still counts the dead thread and the next call hangs.
#[test]
fn a_waker_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    struct Hostile;
    impl Wake for Hostile {
        fn wake(self: Arc<Self>) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("wakr")
                .max_threads(1)
                .build()
                .unwrap(),
        );
        let hostile = Waker::from(Arc::new(Hostile));
        let mut call = spawn_on(pool.clone(), || {
            std::thread::sleep(Duration::from_millis(20));
            3
        });
        assert!(poll_with(&mut call, &hostile).is_pending());
        // The worker wakes `hostile` when the body returns.
        eventually("the job ran", || pool.metrics().completed == 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(poll_noop(&mut call), Poll::Ready(3));
        assert_a_later_call_runs(&pool);
    });
}

/// Before the fix: the same for `on_thread_start` (`run_hook` drops the caught payload unguarded).
#[test]
fn a_start_hook_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("start")
                .max_threads(1)
                .on_thread_start(|| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn({
            let pool = pool.clone();
            move || {
                let _ = tx.send(futures::executor::block_on(spawn_on(pool, || 5)));
            }
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).ok(),
            Some(5),
            "the call hangs: {:?}",
            pool.metrics()
        );
    });
}

/// Before the fix: the same for a result dropped on the worker after its future is gone
/// (`drop_guarded` drops the caught payload unguarded): the worker dies inside `run`, leaving
/// its slot marked as running a job for ever, and the next call hangs.
#[test]
fn a_result_whose_drop_panics_with_such_a_payload_kills_no_worker() {
    struct ResultPanicsOnDrop;
    impl Drop for ResultPanicsOnDrop {
        fn drop(&mut self) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("rdrop")
                .max_threads(1)
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let mut call = spawn_on(pool.clone(), move || {
            let _ = gate.lock().unwrap().recv();
            ResultPanicsOnDrop
        });
        assert!(poll_noop(&mut call).is_pending());
        eventually("the job runs", || pool.metrics().running == 1);
        drop(call);
        go.send(()).unwrap();
        assert_a_later_call_runs(&pool);
    });
}

/// Before the fix: the stop hook with such a payload (`run_hook` again): the thread dies after leaving
/// the pool's thread count but before its exit is recorded (`exiting` stays 1), so
/// `shutdown` waits for it for ever (here: `shutdown_timeout` reports it incomplete long after
/// the last thread is gone), and the watcher, if any, never leaves.
#[test]
fn a_stop_hook_panic_with_a_payload_that_panics_on_drop_does_not_wedge_shutdown() {
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("stop")
                .max_threads(1)
                .on_thread_stop(|| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 5)), 5);
        let report = pool.shutdown_timeout(Duration::from_secs(5));
        assert!(
            report.is_complete(),
            "shutdown did not complete in 5 s with no job left: {report:?}; {:?}",
            pool.metrics()
        );
    });
}

/// Before the fix: `close` (shutdown) wakes the futures waiting for room with `wake_guarded`, which lets
/// such a payload escape: `shutdown` itself panics half-way, and the waiters after the hostile
/// one are never woken: their futures hang instead of being refused.
#[test]
fn a_waiting_waker_panic_with_such_a_payload_does_not_strand_the_other_waiters() {
    struct Hostile;
    impl Wake for Hostile {
        fn wake(self: Arc<Self>) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("wait")
                .max_threads(1)
                .queue_capacity(0, QueueFull::Wait)
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        // First waiter: a hostile waker.
        let hostile = Waker::from(Arc::new(Hostile));
        let mut first = spawn_on(pool.clone(), || 1_u8).checked();
        assert!(poll_with(&mut first, &hostile).is_pending());
        // Second waiter: an honest caller.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn({
            let pool = pool.clone();
            move || {
                let _ = tx.send(
                    futures::executor::block_on(spawn_on(pool, || 2_u8).checked())
                        .map_err(|e| e.to_string()),
                );
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let shutdown = std::thread::spawn({
            let pool = pool.clone();
            move || panic::catch_unwind(AssertUnwindSafe(|| pool.shutdown())).is_ok()
        });
        std::thread::sleep(Duration::from_millis(50));
        go.send(()).unwrap();
        blocker.join().unwrap();
        let second = rx.recv_timeout(Duration::from_secs(5));
        let shutdown_returned = shutdown.join().unwrap();
        assert!(
            matches!(&second, Ok(Err(message)) if message.contains("shut down")),
            "the honest waiter: {second:?} (shutdown returned normally: {shutdown_returned})"
        );
        assert!(shutdown_returned, "shutdown panicked");
    });
}

/// An argument whose `Drop` panics (when not already unwinding).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        assert!(thread::panicking(), "on purpose: a bomb's drop");
    }
}

static BOMB_POOL: BlockingPool = BlockingPool::with_max_threads(1)
    .thread_name("bombs")
    .queue_capacity(1, QueueFull::Wait);

#[async_wrap(executor = BOMB_POOL)]
fn holds_the_bomb_pool(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = BOMB_POOL)]
fn carries_a_bomb(bomb: Bomb) -> u8 {
    drop(bomb);
    0
}

#[async_wrap(executor = BOMB_POOL)]
fn on_the_bomb_pool(n: u8) -> u8 {
    n
}

// Before the fix: a queued call whose argument's `Drop` panics, dropped before it starts, stays
// `in_flight` in its call site for ever (`calls` 1, `in_flight` 1, `cancelled` 0): the panic
// escapes `Task::abandon` before `BlockingFuture::drop` counts `End::Cancelled`. 100 %.
#[test]
fn a_cancelled_call_whose_argument_drop_panics_is_still_counted_cancelled() {
    quiet_panics();
    let _stats = statistics_alone();
    within(Duration::from_secs(20), || {
        let (go, g) = gate();
        let mut holder = holds_the_bomb_pool(g);
        assert!(poll_noop(&mut holder).is_pending());
        eventually("the holder to run", || BOMB_POOL.metrics().running == 1);
        let mut queued = carries_a_bomb(Bomb);
        assert!(poll_noop(&mut queued).is_pending());
        // Where the bomb goes off is not the point; that the call is counted is.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(queued)));
        go.send(()).unwrap();
        async_wrap::block_on(holder);
        assert_eq!(async_wrap::block_on(on_the_bomb_pool(3)), 3);
        let s = stats_of(site!("carries_a_bomb")).expect("counted");
        assert_eq!(
            (s.calls, s.in_flight, s.cancelled),
            (1, 0, 1),
            "a cancelled call is left in flight: {s:?}"
        );
    });
}

// Even with `cancel_wait` skipped by the panic, the room reaches the next waiter.
#[test]
fn a_waiter_whose_argument_drop_panics_when_dropped_does_not_strand_the_next_waiter() {
    quiet_panics();
    within(Duration::from_secs(20), || {
        let pool = one_thread_pool(1, QueueFull::Wait);
        let (go, holder) = hold_the_only_thread(&pool);
        let mut queued = spawn_on(pool.clone(), || 1);
        assert!(poll_noop(&mut queued).is_pending());
        let bomb = Bomb;
        let mut first = spawn_on(pool.clone(), move || {
            drop(bomb);
            2
        });
        assert!(poll_noop(&mut first).is_pending(), "waits for room");
        let mut second = spawn_on(pool.clone(), || 3);
        let (_rec, waker) = CountingWaker::new();
        assert!(
            poll_with(&mut second, &waker).is_pending(),
            "waits for room"
        );
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(first)));
        go.send(()).unwrap();
        async_wrap::block_on(holder);
        assert_eq!(async_wrap::block_on(queued), 1);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(async_wrap::block_on(second));
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5))
                .expect("the second waiter was never given the room"),
            3
        );
        pool.shutdown();
    });
}

static REFUSE_POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("refuse");

#[async_wrap(executor = REFUSE_POOL)]
fn refused_with_a_bomb(bomb: Bomb) {
    drop(bomb);
}

// The refusal path counts before it drops the body.
#[test]
fn a_refused_call_whose_argument_drop_panics_is_still_counted_refused() {
    quiet_panics();
    let _stats = statistics_alone();
    within(Duration::from_secs(20), || {
        REFUSE_POOL.shutdown();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            async_wrap::block_on(refused_with_a_bomb(Bomb).checked())
        }));
        if let Ok(result) = &outcome {
            assert!(
                result
                    .as_ref()
                    .is_err_and(async_wrap::CallError::is_shut_down)
            );
        }
        let s = stats_of(site!("refused_with_a_bomb")).expect("counted");
        assert_eq!(
            (s.calls, s.in_flight, s.refused),
            (1, 0, 1),
            "a refused call is left in flight: {s:?}"
        );
    });
}

static REJECT_BOMB_POOL: BlockingPool = BlockingPool::with_max_threads(1)
    .thread_name("reject-bomb")
    .queue_capacity(0, QueueFull::Reject);

#[async_wrap(executor = REJECT_BOMB_POOL)]
fn holds_the_reject_pool(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = REJECT_BOMB_POOL)]
fn rejected_with_a_bomb(bomb: Bomb) {
    drop(bomb);
}

#[test]
fn a_call_rejected_by_a_full_queue_whose_argument_drop_panics_is_still_counted_refused() {
    quiet_panics();
    let _stats = statistics_alone();
    within(Duration::from_secs(20), || {
        let (go, g) = gate();
        let mut holder = holds_the_reject_pool(g);
        assert!(poll_noop(&mut holder).is_pending());
        eventually("the holder to run", || {
            REJECT_BOMB_POOL.metrics().running == 1
        });
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut f = rejected_with_a_bomb(Bomb).checked();
            poll_noop(&mut f).map(|r| r.map_err(|e| e.to_string()))
        }));
        if let Ok(poll) = &outcome {
            assert!(matches!(poll, Poll::Ready(Err(_))), "{poll:?}");
        }
        go.send(()).unwrap();
        async_wrap::block_on(holder);
        let s = stats_of(site!("rejected_with_a_bomb")).expect("counted");
        assert_eq!(
            (s.calls, s.in_flight, s.refused),
            (1, 0, 1),
            "a rejected call is left in flight: {s:?}"
        );
    });
}

/// A panic payload whose own `Drop` panics.
struct NastyPayload;

impl Drop for NastyPayload {
    fn drop(&mut self) {
        if !thread::panicking() {
            std::panic::panic_any("on purpose: the payload's drop panics too");
        }
    }
}

static NASTY_INIT_CALLS: AtomicUsize = AtomicUsize::new(0);

fn nasty_init() -> u32 {
    if NASTY_INIT_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        std::panic::panic_any(NastyPayload);
    }
    7
}

static NASTY_INIT_POOL: StatefulPool<u32> = StatefulPool::new(
    BlockingPool::with_max_threads(1).thread_name("nasty-init"),
    nasty_init,
);

#[test]
fn an_initializer_panicking_with_a_payload_whose_drop_panics_is_a_state_error_and_kills_nothing() {
    quiet_panics();
    within(Duration::from_secs(20), || {
        let first = async_wrap::block_on(NASTY_INIT_POOL.call(|s: &mut u32| *s).checked());
        match first {
            Ok(Err(err)) => assert_eq!(err.pool(), "nasty-init"),
            other => panic!("expected a StateError, got {other:?}"),
        }
        assert_eq!(
            async_wrap::block_on(NASTY_INIT_POOL.call(|s: &mut u32| *s)).unwrap(),
            7
        );
        assert_eq!(
            NASTY_INIT_POOL.pool().metrics().threads_started,
            1,
            "a worker died"
        );
    });
}

struct NastyState;

static NASTY_STATES_DROPPED: AtomicUsize = AtomicUsize::new(0);

impl Drop for NastyState {
    fn drop(&mut self) {
        NASTY_STATES_DROPPED.fetch_add(1, Ordering::SeqCst);
        std::panic::panic_any(NastyPayload);
    }
}

fn nasty_state() -> NastyState {
    NastyState
}

static NASTY_STATE_POOL: StatefulPool<NastyState> = StatefulPool::new(
    BlockingPool::with_max_threads(2).thread_name("nasty-state"),
    nasty_state,
);

#[test]
fn thread_values_whose_drop_panics_with_a_panicking_payload_do_not_wedge_shutdown() {
    quiet_panics();
    within(Duration::from_secs(20), || {
        let barrier = Arc::new(Barrier::new(2));
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                NASTY_STATE_POOL.call(move |_: &mut NastyState| {
                    barrier.wait();
                })
            })
            .collect();
        for r in async_wrap::block_on(futures::future::join_all(calls)) {
            r.unwrap();
        }
        let report = NASTY_STATE_POOL
            .pool()
            .shutdown_timeout(Duration::from_secs(5));
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(NASTY_STATES_DROPPED.load(Ordering::SeqCst), 2);
        assert_eq!(NASTY_STATE_POOL.pool().metrics().threads, 0);
    });
}
