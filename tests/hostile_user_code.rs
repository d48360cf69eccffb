//! Every call from the pool into user code is hostile: thread hooks, wakers, the
//! `Drop` of results and bodies, and user executors may panic. None of it may kill a worker,
//! skip a count, or leave a lock or the shutdown gate held. (The waiters' wakers are in
//! `pool_defects.rs`.)

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_wrap::{BlockingPool, Executor, Job, Rejected, spawn_on};
use futures::FutureExt;

mod support;
use support::{PanickingWaker, eventually, within};

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

fn poll_noop<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    future.poll_unpin(&mut Context::from_waker(Waker::noop()))
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

/// A waker whose last `drop` blocks until its gate opens, saying first that it is there.
struct BlocksWhenDropped {
    dropping: Arc<Barrier>,
    gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl std::task::Wake for BlocksWhenDropped {
    fn wake(self: Arc<Self>) {}
}

impl Drop for BlocksWhenDropped {
    fn drop(&mut self) {
        self.dropping.wait();
        let _ = self.gate.lock().unwrap().recv();
    }
}

// Before the fix the task cell replaced (so dropped) a future's old waker under its lock: a
// waker whose drop blocks kept the pool's thread, finishing that call, from taking the lock,
// and so from every later job, for as long as the drop blocked.
#[test]
fn a_waker_whose_drop_blocks_does_not_hold_up_the_pool_thread() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("held-by-a-waker"));
        let (go, gate) = support::gate();
        let mut call = spawn_on(pool.clone(), move || {
            let _ = gate.lock().unwrap().recv();
        });
        let dropping = Arc::new(Barrier::new(2));
        let (release, held) = support::gate();
        let blocking = Waker::from(Arc::new(BlocksWhenDropped {
            dropping: dropping.clone(),
            gate: held,
        }));
        assert!(
            call.poll_unpin(&mut Context::from_waker(&blocking))
                .is_pending()
        );
        drop(blocking);
        eventually("the call to run", || pool.metrics().running == 1);
        // Polled with another waker: the call drops the old one, which blocks.
        let poller = std::thread::spawn(move || {
            let _ = call.poll_unpin(&mut Context::from_waker(Waker::noop()));
            call
        });
        dropping.wait();
        // The call's body returns: the pool's thread must be free for the next job.
        go.send(()).unwrap();
        let (done, next) = std::sync::mpsc::channel();
        let later = std::thread::spawn({
            let pool = pool.clone();
            move || {
                futures::executor::block_on(spawn_on(pool, || ()));
                let _ = done.send(());
            }
        });
        let ran = next.recv_timeout(Duration::from_secs(3));
        release.send(()).unwrap();
        assert!(
            ran.is_ok(),
            "a later job did not run while a user's waker blocked in its drop: {:?}",
            pool.metrics()
        );
        let call = poller.join().unwrap();
        futures::executor::block_on(call);
        later.join().unwrap();
    });
}
