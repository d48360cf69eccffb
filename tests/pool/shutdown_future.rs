//! The awaitable shutdown (`shutdown_async`, `shutdown_timeout_async`, `ShutdownFuture`): it
//! never blocks the polling thread, resolves only once every thread and stop hook is done (or
//! at its deadline, reporting what still runs), does not wait for the thread it is polled on,
//! keeps only its latest waker, and no waker of its own can deadlock it.

use crate::support::{
    Census, CountingWaker, all_at_once, eventually, gate, held_job, hold_the_only_thread,
    poll_noop, poll_with, within,
};
use async_wrap::{BlockingPool, spawn_on};
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `shutdown` on a current-thread runtime beside a task that ticks every 2 ms, while a
/// 200 ms job finishes on `pool`; returns the longest gap between two ticks.
fn longest_tick_gap(
    pool: &Arc<BlockingPool>,
    shutdown: impl AsyncFnOnce(Arc<BlockingPool>) + 'static,
) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = pool.clone();
    runtime.block_on(async move {
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let done = done.clone();
            async move {
                let (mut last, mut longest) = (Instant::now(), Duration::ZERO);
                while !done.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
                longest
            }
        });
        let mut job = spawn_on(pool.clone(), || {
            std::thread::sleep(Duration::from_millis(200));
        });
        assert!(futures::poll!(&mut job).is_pending(), "the job runs");
        eventually("the job to start", || pool.metrics().running == 1);
        // Let the ticker run a few turns first: what follows is measured from its last tick.
        tokio::time::sleep(Duration::from_millis(10)).await;
        shutdown(pool.clone()).await;
        done.store(true, Ordering::SeqCst);
        job.await;
        ticker.await.unwrap()
    })
}

#[test]
fn the_async_shutdown_keeps_a_current_thread_runtime_ticking() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("ticking"));
        let gap = longest_tick_gap(&pool, async |pool| {
            let report = pool.shutdown_async().await;
            assert!(report.is_complete(), "{report:?}");
            assert_eq!(report.finished, 1);
        });
        assert_eq!(pool.metrics().threads, 0);
        // The ticker sleeps 2 ms a turn; a blocked runtime thread would show the job's 200 ms.
        assert!(
            gap < Duration::from_millis(50),
            "the runtime stalled for {gap:?}"
        );

        // The blocking form, in the same place, stalls the runtime for the job's length.
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let gap = longest_tick_gap(&pool, async |pool| pool.shutdown());
        assert!(
            gap >= Duration::from_millis(100),
            "expected a stall, saw {gap:?}"
        );
    });
}

#[test]
fn the_async_shutdown_with_a_deadline_reports_what_still_runs() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("deadline"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut slow = spawn_on(pool.clone(), || {
                std::thread::sleep(Duration::from_millis(300));
            });
            assert!(futures::poll!(&mut slow).is_pending());
            eventually("the job to start", || pool.metrics().running == 1);
            let started = Instant::now();
            let report = pool.shutdown_timeout_async(Duration::from_millis(30)).await;
            assert!(
                started.elapsed() < Duration::from_millis(250),
                "it waited for the job"
            );
            assert!(!report.is_complete());
            assert_eq!(report.still_running.len(), 1, "{report:?}");
            assert_eq!(report.still_running[0].function, "closure");
            // Nothing is dropped: the job still finishes, and its future still gets it.
            slow.await;
        });
        eventually("the thread to exit", || pool.metrics().threads == 0);
    });
}

#[test]
fn the_async_shutdown_awaited_on_a_thread_of_the_pool_does_not_wait_for_itself() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2));
        let report = futures::executor::block_on(spawn_on(pool.clone(), {
            let pool = pool.clone();
            move || async_wrap::block_on(pool.shutdown_async())
        }));
        assert!(report.is_complete(), "{report:?}");
        eventually("the last thread to exit", || pool.metrics().threads == 0);
    });
}

#[test]
fn a_dropped_shutdown_future_still_shuts_the_pool_down() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 1)), 1);
        drop(pool.shutdown_async());
        assert!(pool.is_shut_down());
        eventually("the thread to exit", || pool.metrics().threads == 0);
        let refused = futures::executor::block_on(spawn_on(pool.clone(), || 2).checked());
        assert!(refused.unwrap_err().is_shut_down());
    });
}

#[test]
fn a_timeout_too_long_to_add_means_no_deadline() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 1)), 1);
        assert!(pool.shutdown_timeout(Duration::MAX).is_complete());
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 1)), 1);
        let report = futures::executor::block_on(pool.shutdown_timeout_async(Duration::MAX));
        assert!(report.is_complete(), "{report:?}");
    });
}

/// A thread-local whose destructor, user code run as a pool thread exits, takes 300 ms.
struct SlowToDrop;

impl Drop for SlowToDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
    }
}

thread_local! {
    static SLOW: std::cell::RefCell<Option<SlowToDrop>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn the_async_shutdown_does_not_wait_for_thread_local_destructors() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        futures::executor::block_on(spawn_on(pool.clone(), || {
            SLOW.with(|slow| *slow.borrow_mut() = Some(SlowToDrop));
        }));
        let gap = longest_tick_gap(&pool, async |pool| {
            assert!(pool.shutdown_async().await.is_complete());
        });
        // The job runs 200 ms (in `longest_tick_gap`); the destructor's 300 ms must not stall.
        assert!(
            gap < Duration::from_millis(100),
            "the runtime stalled for {gap:?}"
        );
    });
}

#[cfg(target_os = "linux")]
#[test]
fn the_deadline_alarm_ends_with_its_future() {
    within(Duration::from_secs(30), || {
        let alarms = || {
            std::fs::read_dir("/proc/self/task").map_or(0, |tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                    .filter(|name| name.starts_with("async-wrap-shut"))
                    .count()
            })
        };
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        futures::executor::block_on(async {
            let mut job = spawn_on(pool.clone(), || {
                std::thread::sleep(Duration::from_millis(50));
            });
            assert!(futures::poll!(&mut job).is_pending());
            let report = pool.shutdown_timeout_async(Duration::from_secs(3600)).await;
            assert!(report.is_complete(), "{report:?}");
            job.await;
        });
        // Other tests' alarms have deadlines under a second: only this one's could stay.
        eventually("every alarm thread to end", || alarms() == 0);
    });
}

#[test]
fn the_async_shutdown_resolves_only_after_every_stop_hook_has_run() {
    within(Duration::from_secs(20), || {
        let (builder, census) = Census::hooks(BlockingPool::builder().max_threads(2), || {
            thread::sleep(Duration::from_millis(100));
        });
        let pool = Arc::new(builder.build().unwrap());
        all_at_once(&pool, 2);
        let report = async_wrap::block_on(pool.shutdown_async());
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(
            census.stopped.load(Ordering::SeqCst),
            2,
            "the async shutdown resolved while stop hooks still ran"
        );
        assert_eq!(pool.metrics().threads, 0);
    });
}

#[test]
fn a_deadline_shutdown_returns_at_its_deadline_while_a_stop_hook_is_slow() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(1)
                .on_thread_stop(|| thread::sleep(Duration::from_secs(2)))
                .build()
                .unwrap(),
        );
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 1)), 1);
        let started = Instant::now();
        let report = async_wrap::block_on(pool.shutdown_timeout_async(Duration::from_millis(100)));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        assert_eq!(report.threads_left, 1, "{report:?}");
        let started = Instant::now();
        let report = pool.shutdown_timeout(Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert!(!report.is_complete() || started.elapsed() >= Duration::from_millis(50));
        pool.shutdown();
        assert_eq!(pool.metrics().threads, 0);
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
        let (go, gate) = crate::support::gate();
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
        let (go, gate) = crate::support::gate();
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

#[test]
fn a_shutdown_future_polled_with_many_wakers_keeps_only_the_last() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (go, job) = hold_the_only_thread(&pool);
        let mut shutdown = pool.shutdown_async();
        let recorders: Vec<Arc<CountingWaker>> = (0..50)
            .map(|_| {
                let (rec, waker) = CountingWaker::new();
                assert!(poll_with(&mut shutdown, &waker).is_pending());
                rec
            })
            .collect();
        for (i, rec) in recorders.iter().enumerate().take(49) {
            assert_eq!(
                Arc::strong_count(rec),
                1,
                "waker {i} still held after a later poll"
            );
        }
        go.send(()).unwrap();
        async_wrap::block_on(job);
        eventually("the last waker to be woken", || {
            recorders[49].wakes.load(Ordering::SeqCst) > 0
        });
        assert!(poll_noop(&mut shutdown).is_ready());
        drop(shutdown);
        assert_eq!(
            Arc::strong_count(&recorders[49]),
            1,
            "waker kept after the future ended"
        );
        for rec in &recorders[..49] {
            assert_eq!(
                rec.wakes.load(Ordering::SeqCst),
                0,
                "a stale waker was woken"
            );
        }
    });
}

#[test]
fn a_shutdown_future_with_a_deadline_polled_with_many_wakers_keeps_only_the_last() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (go, job) = hold_the_only_thread(&pool);
        let mut shutdown = pool.shutdown_timeout_async(Duration::from_millis(300));
        let recorders: Vec<Arc<CountingWaker>> = (0..20)
            .map(|_| {
                let (rec, waker) = CountingWaker::new();
                assert!(poll_with(&mut shutdown, &waker).is_pending());
                rec
            })
            .collect();
        for (i, rec) in recorders.iter().enumerate().take(19) {
            assert_eq!(Arc::strong_count(rec), 1, "waker {i} still held");
        }
        eventually("the alarm to wake the last waker", || {
            recorders[19].wakes.load(Ordering::SeqCst) > 0
        });
        let Poll::Ready(report) = poll_noop(&mut shutdown) else {
            panic!("not ready at the deadline")
        };
        assert_eq!(report.still_running.len(), 1);
        drop(shutdown);
        eventually("the alarm thread to let go of the waker", || {
            Arc::strong_count(&recorders[19]) == 1
        });
        go.send(()).unwrap();
        async_wrap::block_on(job);
    });
}

// Open (ignored): one `ShutdownFuture` whose waker blocks keeps a second one (polled on another thread)
// from ever being woken: the exiting worker wakes the drain wakers one after another, on its
// own thread, and is stuck in the first. 100 %.
#[test]
#[ignore = "open: the exiting worker wakes every drain waker in turn, and a blocking one stalls the rest"]
fn a_shutdown_future_whose_waker_blocks_does_not_stall_other_calls_or_shutdowns() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2));
        let (go, job) = hold_the_only_thread(&pool);
        let (release, waker_gate) = gate();
        let (rec, waker) = CountingWaker::new();
        *rec.block.lock().unwrap() = Some(waker_gate);
        let mut blocked = pool.shutdown_async();
        assert!(poll_with(&mut blocked, &waker).is_pending());
        // Another shutdown future on another thread must still resolve.
        let other = {
            let pool = pool.clone();
            thread::spawn(move || async_wrap::block_on(pool.shutdown_async()))
        };
        go.send(()).unwrap();
        async_wrap::block_on(job);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(other.join().unwrap());
        });
        let report = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a shutdown future whose waker blocks stalled another one");
        assert!(report.is_complete());
        let _ = pool.metrics();
        release.send(()).unwrap();
        assert!(poll_noop(&mut blocked).is_ready());
    });
}

#[test]
fn a_shutdown_future_dropped_inside_its_own_waker_on_the_worker_does_not_deadlock() {
    struct Dropper(Mutex<Option<async_wrap::ShutdownFuture>>, AtomicUsize);
    impl Wake for Dropper {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            let taken = self.0.lock().unwrap().take();
            drop(taken);
        }
    }
    within(Duration::from_secs(20), || {
        for _ in 0..30 {
            let pool = Arc::new(BlockingPool::with_max_threads(1));
            let mut job = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(3)));
            assert!(poll_noop(&mut job).is_pending());
            let dropper = Arc::new(Dropper(Mutex::new(None), AtomicUsize::new(0)));
            let waker = Waker::from(dropper.clone());
            let mut shutdown = pool.shutdown_async();
            if poll_with(&mut shutdown, &waker).is_pending() {
                *dropper.0.lock().unwrap() = Some(shutdown);
                eventually("the shutdown future's waker to be woken", || {
                    dropper.1.load(Ordering::SeqCst) > 0
                });
            }
            async_wrap::block_on(job);
            eventually("the pool to empty", || pool.metrics().threads == 0);
            assert!(pool.shutdown_timeout(Duration::from_secs(2)).is_complete());
        }
    });
}

// `ShutdownFuture::poll` cloned the task's waker under the pool's lock: a waker whose `clone`
// looks at the pool deadlocked.
#[test]
fn a_waker_that_calls_into_the_pool_cannot_deadlock_the_async_shutdown() {
    use std::task::{RawWaker, RawWakerVTable};

    static POOL: std::sync::OnceLock<Arc<BlockingPool>> = std::sync::OnceLock::new();
    fn clone(data: *const ()) -> RawWaker {
        let _ = POOL.get().unwrap().metrics();
        RawWaker::new(data, &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);

    within(Duration::from_secs(20), || {
        let pool = POOL.get_or_init(|| Arc::new(BlockingPool::with_max_threads(1)));
        let (mut job, gate) = held_job(pool);
        let job_waker = Waker::noop();
        assert!(poll_with(&mut job, job_waker).is_pending());
        gate.wait();
        // SAFETY: the vtable's functions ignore the data pointer, which is never read.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let mut shutdown = pool.shutdown_async();
        assert!(poll_with(&mut shutdown, &waker).is_pending());
        gate.wait();
        let report = futures::executor::block_on(shutdown);
        assert!(report.is_complete(), "{report:?}");
    });
}
