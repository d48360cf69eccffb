//! Shutdown against every state a thread or a call can be in: a call queued while the only
//! thread is retiring (its stop hook or a thread's state still running), a shutdown future
//! polled with a new waker each time, and a shutdown future made on a pool thread but awaited
//! elsewhere. Each scenario runs under a watchdog: a hang fails the test.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use async_wrap::{BlockingPool, ShutdownReport, spawn_on};
use futures::FutureExt;

mod support;
use support::{eventually, within};

/// How the scenario shuts the pool down.
#[derive(Clone, Copy, Debug)]
enum Shutdown {
    Blocking,
    WithTimeout,
    Async,
}

impl Shutdown {
    /// The report, for the forms that give one.
    fn run(self, pool: &BlockingPool) -> Option<ShutdownReport> {
        match self {
            Shutdown::Blocking => {
                pool.shutdown();
                None
            }
            Shutdown::WithTimeout => Some(pool.shutdown_timeout(Duration::from_secs(5))),
            Shutdown::Async => Some(futures::executor::block_on(pool.shutdown_async())),
        }
    }
}

/// A one-thread pool whose first thread, retiring after `keep_alive`, is held in its stop hook
/// until the returned barrier is passed twice (once to know it is there, once to let it go).
fn pool_with_a_slow_stop_hook() -> (Arc<BlockingPool>, Arc<Barrier>) {
    let stopping = Arc::new(Barrier::new(2));
    let hook = stopping.clone();
    let first = AtomicBool::new(true);
    let pool = BlockingPool::builder()
        .max_threads(1)
        .keep_alive(Duration::from_millis(10))
        .thread_name("retiring")
        .on_thread_stop(move || {
            if first.swap(false, Ordering::SeqCst) {
                hook.wait();
                hook.wait();
            }
        })
        .build()
        .unwrap();
    (Arc::new(pool), stopping)
}

/// The scenario of a call lost at shutdown: the only thread retires and is held in its stop
/// hook; a call made then queues behind its slot (the pool is at its limit); the pool is shut
/// down; the stop hook returns. The call must still run, and the shutdown report say so.
fn a_call_queued_behind_a_retiring_thread_runs(shutdown: Shutdown) {
    within(Duration::from_secs(20), move || {
        let (pool, stopping) = pool_with_a_slow_stop_hook();
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 1)), 1);
        // The thread retires after its keep_alive and runs its stop hook.
        stopping.wait();
        assert_eq!(pool.metrics().idle_threads, 0, "{:?}", pool.metrics());
        let (tx, rx) = mpsc::channel();
        let caller = {
            let pool = pool.clone();
            thread::spawn(move || {
                let _ = tx.send(futures::executor::block_on(spawn_on(pool, || 2)));
            })
        };
        eventually("the call to queue", || pool.metrics().queued == 1);
        let shutting = {
            let pool = pool.clone();
            thread::spawn(move || shutdown.run(&pool))
        };
        eventually("the pool to close", || pool.is_shut_down());
        // The stop hook returns.
        stopping.wait();
        let report = shutting.join().unwrap();
        let result = rx.recv_timeout(Duration::from_secs(5));
        assert_eq!(
            result,
            Ok(2),
            "{shutdown:?}: the call queued behind a retiring thread never ran; report \
             {report:?}, metrics {:?}",
            pool.metrics()
        );
        caller.join().unwrap();
        if let Some(report) = report {
            assert!(report.is_complete(), "{shutdown:?}: {report:?}");
            assert_eq!(report.finished, 1, "{shutdown:?}: {report:?}");
        }
        assert_eq!(pool.metrics().threads, 0);
    });
}

// Before the fix the leaving thread started a replacement only when the pool was not shut
// down, and the shutdown's drained check never looked at the queue: every form of shutdown
// returned with `still_queued: 1` and the call's future never resolved.
#[test]
fn shutdown_runs_a_call_queued_behind_a_retiring_thread() {
    for _ in 0..5 {
        a_call_queued_behind_a_retiring_thread_runs(Shutdown::Blocking);
    }
}

#[test]
fn shutdown_timeout_runs_a_call_queued_behind_a_retiring_thread() {
    for _ in 0..5 {
        a_call_queued_behind_a_retiring_thread_runs(Shutdown::WithTimeout);
    }
}

#[test]
fn shutdown_async_runs_a_call_queued_behind_a_retiring_thread() {
    for _ in 0..5 {
        a_call_queued_behind_a_retiring_thread_runs(Shutdown::Async);
    }
}

/// A thread whose per-thread state takes a while to drop (a connection closing) is in the
/// same window as one with a slow stop hook: a call queued then, and a shutdown, must still
/// run it.
#[test]
fn shutdown_runs_a_call_queued_while_a_thread_state_drops() {
    static CLOSING: AtomicBool = AtomicBool::new(false);
    struct SlowToClose;
    impl Drop for SlowToClose {
        fn drop(&mut self) {
            if !CLOSING.swap(true, Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    static STATEFUL: async_wrap::StatefulPool<SlowToClose> = async_wrap::StatefulPool::new(
        BlockingPool::with_max_threads(1).keep_alive(Duration::from_millis(5)),
        || SlowToClose,
    );
    within(Duration::from_secs(20), || {
        futures::executor::block_on(STATEFUL.call(|_| ())).unwrap();
        // The thread retires and drops its state: a call made now queues behind it.
        eventually("the thread to drop its state", || {
            CLOSING.load(Ordering::SeqCst)
        });
        let mut call = STATEFUL.call(|_| 3);
        let waker = Waker::noop();
        assert!(
            call.poll_unpin(&mut Context::from_waker(waker))
                .is_pending()
        );
        let report = STATEFUL.pool().shutdown_timeout(Duration::from_secs(5));
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(futures::executor::block_on(call).unwrap(), 3);
    });
}

/// Counts the wakers made from it that are still alive.
#[derive(Default)]
struct Live(AtomicUsize);

struct CountedWaker(Arc<Live>);

impl Wake for CountedWaker {
    fn wake(self: Arc<Self>) {}
}

impl Drop for CountedWaker {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn counted_waker(live: &Arc<Live>) -> Waker {
    live.0.fetch_add(1, Ordering::SeqCst);
    Waker::from(Arc::new(CountedWaker(live.clone())))
}

// Before the fix the future kept every waker it was ever polled with (2,001 of 2,001 over
// 2,001 polls): a task that moves between threads, or a `select!` loop, grew the pool's list
// for as long as the shutdown took.
#[test]
fn a_shutdown_future_keeps_only_its_latest_waker() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (go, gate) = support::gate();
        let mut held = spawn_on(pool.clone(), move || {
            let _ = gate.lock().unwrap().recv();
        });
        assert!(
            held.poll_unpin(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        eventually("the job to run", || pool.metrics().running == 1);
        let live = Arc::new(Live::default());
        let mut shutdown = pool.shutdown_async();
        for _ in 0..2_000 {
            let waker = counted_waker(&live);
            assert!(
                shutdown
                    .poll_unpin(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        let kept = live.0.load(Ordering::SeqCst);
        assert!(
            kept <= 1,
            "{kept} stale wakers kept by one pending shutdown"
        );
        go.send(()).unwrap();
        let report = futures::executor::block_on(shutdown);
        assert!(report.is_complete(), "{report:?}");
        futures::executor::block_on(held);
        assert_eq!(
            live.0.load(Ordering::SeqCst),
            0,
            "a waker outlived the shutdown"
        );
    });
}

// Before the fix the future decided at its making whose thread it need not wait for: made
// inside a job, and awaited elsewhere, it resolved "complete" while that job still ran.
#[test]
fn a_shutdown_future_made_in_a_job_and_awaited_elsewhere_waits_for_that_job() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2));
        let (made, shutdown) = mpsc::channel();
        let (go, gate) = support::gate();
        let job = spawn_on(pool.clone(), {
            let pool = pool.clone();
            move || {
                made.send(pool.shutdown_async()).unwrap();
                let _ = gate.lock().unwrap().recv();
            }
        });
        let job = thread::spawn(move || futures::executor::block_on(job));
        let mut shutdown = shutdown.recv().unwrap();
        let context = &mut Context::from_waker(Waker::noop());
        for _ in 0..20 {
            assert!(
                shutdown.poll_unpin(context).is_pending(),
                "resolved while the job it was made in still runs: {:?}",
                pool.metrics()
            );
            thread::sleep(Duration::from_millis(1));
        }
        go.send(()).unwrap();
        job.join().unwrap();
        let report = futures::executor::block_on(shutdown);
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.finished, 1, "{report:?}");
    });
}

/// Polled on the pool's own thread, the same future does not wait for that thread.
#[test]
fn a_shutdown_future_polled_on_a_pool_thread_does_not_wait_for_it() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let report = futures::executor::block_on(spawn_on(pool.clone(), {
            let pool = pool.clone();
            move || futures::executor::block_on(pool.shutdown_async())
        }));
        assert!(report.is_complete(), "{report:?}");
        eventually("the thread to leave", || pool.metrics().threads == 0);
        assert!(matches!(
            pool.shutdown_async()
                .poll_unpin(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(_)
        ));
    });
}
