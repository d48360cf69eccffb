//! The seed's scenarios, end to end: what the Python decorator showed, asserted.
//!
//! Timings here are semantic checks with wide margins (17 sleeps of 100 ms on 2 threads cannot
//! take less than 900 ms), never speed measurements: those live in `benches/`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};

static LIMITED: BlockingPool = BlockingPool::with_max_threads(2).thread_name("limited");

/// Sleeps 100 ms on the default pool and says where it ran.
#[async_wrap]
fn sleep_default() -> ThreadId {
    thread::sleep(Duration::from_millis(100));
    thread::current().id()
}

/// Sleeps 100 ms on a pool of at most two threads and says where it ran.
#[async_wrap(executor = LIMITED)]
fn sleep_limited() -> ThreadId {
    thread::sleep(Duration::from_millis(100));
    thread::current().id()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Sync,
    Async,
}

type Log = Arc<Mutex<Vec<(Side, u32, ThreadId)>>>;

/// A blocking loop: five rounds of a 20 ms blocking sleep.
#[async_wrap]
fn blocking_loop(log: Log) -> u32 {
    for round in 0..5 {
        thread::sleep(Duration::from_millis(20));
        log.lock()
            .unwrap()
            .push((Side::Sync, round, thread::current().id()));
    }
    std::process::id()
}

async fn async_loop(log: Log) -> u32 {
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        log.lock()
            .unwrap()
            .push((Side::Async, round, thread::current().id()));
    }
    std::process::id()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sync_and_async_loops_progress_together_in_one_process_on_two_threads() {
    let log = Log::default();
    let (sync_pid, async_pid) = current_thread_runtime()
        .block_on(async { futures::join!(blocking_loop(log.clone()), async_loop(log.clone())) });
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 10);
    assert_eq!(sync_pid, std::process::id());
    assert_eq!(async_pid, std::process::id());

    let threads = |side| {
        log.iter()
            .filter(|e| e.0 == side)
            .map(|e| e.2)
            .collect::<HashSet<_>>()
    };
    let (sync_threads, async_threads) = (threads(Side::Sync), threads(Side::Async));
    assert_eq!(
        sync_threads.len(),
        1,
        "the blocking loop ran on one pool thread"
    );
    assert_eq!(async_threads, HashSet::from([thread::current().id()]));
    assert!(sync_threads.is_disjoint(&async_threads));

    // Concurrent progress: each loop logged a round before the other finished. Had the blocking
    // loop blocked the runtime's only thread, all its rounds would come first.
    let position = |side, round| {
        log.iter()
            .position(|e| e.0 == side && e.1 == round)
            .unwrap()
    };
    assert!(
        position(Side::Async, 0) < position(Side::Sync, 4),
        "{log:?}"
    );
    assert!(
        position(Side::Sync, 0) < position(Side::Async, 4),
        "{log:?}"
    );
}

/// Runs `n` calls at once and returns the distinct threads they ran on, and the wall time.
fn gather<F: Future<Output = ThreadId>>(calls: impl Iterator<Item = F>) -> (usize, Duration) {
    let start = Instant::now();
    let ids = futures::executor::block_on(futures::future::join_all(calls));
    let distinct: HashSet<ThreadId> = ids.into_iter().collect();
    (distinct.len(), start.elapsed())
}

#[test]
fn default_pool_uses_one_thread_per_concurrent_blocking_call() {
    for n in [1, 5, 9, 13, 17] {
        let (threads, _) = gather((0..n).map(|_| sleep_default()));
        assert_eq!(threads, n, "{n} concurrent calls on the default pool");
    }
}

#[test]
fn limited_pool_never_uses_more_than_its_max_threads() {
    for n in [1, 5, 9, 13, 17] {
        let (threads, _) = gather((0..n).map(|_| sleep_limited()));
        assert_eq!(threads, n.min(2), "{n} concurrent calls on max_threads 2");
    }
    assert!(LIMITED.metrics().threads <= 2);
    assert_eq!(LIMITED.metrics().threads_started, 2);
}

#[test]
fn native_async_tasks_share_the_one_runtime_thread() {
    for n in [1, 5, 9, 13, 17] {
        let ids = current_thread_runtime().block_on(async {
            let tasks = (0..n).map(|_| {
                tokio::spawn(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    thread::current().id()
                })
            });
            futures::future::try_join_all(tasks).await.unwrap()
        });
        let distinct: HashSet<ThreadId> = ids.into_iter().collect();
        assert_eq!(distinct.len(), 1, "{n} native tasks");
    }
}

#[test]
fn seventeen_sleeps_overlap_on_the_default_pool_and_queue_on_two_threads() {
    let (_, elapsed) = gather((0..17).map(|_| sleep_default()));
    assert!(
        elapsed < Duration::from_millis(800),
        "default pool: {elapsed:?}"
    );

    let (_, elapsed) = gather((0..17).map(|_| sleep_limited()));
    assert!(
        elapsed >= Duration::from_millis(800),
        "max_threads 2: {elapsed:?}"
    );
}

#[async_wrap]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn the_same_future_runs_under_tokio_both_flavours_and_block_on() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    assert_eq!(multi.block_on(add(1, 2)), 3);
    assert_eq!(
        multi.block_on(async { tokio::spawn(add(2, 3)).await.unwrap() }),
        5
    );
    assert_eq!(current_thread_runtime().block_on(add(3, 4)), 7);
    assert_eq!(futures::executor::block_on(add(4, 5)), 9);
}
