//! Shutting a pool down from async code: the awaitable forms never
//! block the polling thread, report like the blocking ones, and the default pool refuses them.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, block_on, default_pool, spawn_on};

mod support;
use support::{eventually, within};

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
            move || block_on(pool.shutdown_async())
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
fn the_default_pool_refuses_every_form_of_shutdown_and_keeps_working() {
    let pool = default_pool();
    let refused = |shutdown: &dyn Fn()| std::panic::catch_unwind(AssertUnwindSafe(shutdown));
    let refusals = [
        refused(&|| pool.shutdown()),
        refused(&|| drop(pool.shutdown_timeout(Duration::ZERO))),
        refused(&|| drop(pool.shutdown_async())),
        refused(&|| drop(pool.shutdown_timeout_async(Duration::ZERO))),
    ];
    for refusal in refusals {
        let payload = refusal.expect_err("the default pool refused");
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap();
        assert!(
            message.starts_with("async_wrap: the default pool cannot be shut down")
                && message.contains("a pool of its own"),
            "{message}"
        );
    }
    assert!(!pool.is_shut_down());
    assert_eq!(futures::executor::block_on(async_wrap::spawn(|| 3)), 3);
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
