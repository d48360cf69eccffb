//! loom models of the pool's races: an idle thread claimed by a call while it decides to exit,
//! a call waking a sleeping thread, shutdown against a submission, and a call waiting for room
//! against the slot that frees. Run with
//! `RUSTFLAGS="--cfg async_wrap_loom" cargo test -p async-wrap-runtime --release --lib loom`.
//!
//! loom's `Condvar::wait_timeout` never times out, so a pool with the default `keep_alive` has
//! its idle threads sleep until notified, and one with `keep_alive` 0 has them leave as soon as
//! they are idle: the two ends of the keep-alive race.

use std::sync::Arc;
use std::time::Duration;

use crate::{BlockingPool, QueueFull, block_on, spawn_on};

/// A pool whose shared state already exists: it is built lazily behind a std `OnceLock`, whose
/// synchronisation loom cannot see, so a model that let two threads race to build it would
/// report the race of the `OnceLock`, not of the pool.
fn started(pool: BlockingPool) -> Arc<BlockingPool> {
    let _ = pool.shared();
    Arc::new(pool)
}

fn model(scenario: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_threads = 5;
    builder.preemption_bound.get_or_insert(3);
    builder.check(scenario);
}

#[test]
fn a_call_claims_an_idle_thread_or_starts_one_as_it_leaves() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1).keep_alive(Duration::ZERO));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        // The thread now decides, under the lock, to leave; this call either claims it first or
        // finds it gone and starts another. Either way the job runs, once.
        assert_eq!(block_on(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        let metrics = pool.metrics();
        assert_eq!((metrics.threads, metrics.completed), (0, 2));
    });
}

#[test]
fn a_call_wakes_a_sleeping_thread() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        // The thread is between jobs, spinning, or asleep on the condition variable: the call
        // must reach it in every case (a lost notification deadlocks the model).
        assert_eq!(block_on(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        let metrics = pool.metrics();
        assert_eq!(
            (metrics.threads, metrics.threads_started, metrics.completed),
            (0, 1, 2)
        );
    });
}

#[test]
fn shutdown_races_a_submission_and_nothing_is_lost() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1));
        let caller = {
            let pool = pool.clone();
            loom::thread::spawn(move || block_on(spawn_on(pool, || 7).checked()))
        };
        pool.shutdown();
        assert_eq!(
            pool.metrics().threads,
            0,
            "shutdown returned with a thread alive"
        );
        match caller.join().unwrap() {
            Ok(value) => assert_eq!(value, 7),
            Err(err) => assert!(err.is_shut_down(), "{err}"),
        }
        let metrics = pool.metrics();
        assert_eq!(metrics.completed + metrics.rejected, 1, "{metrics:?}");
        assert_eq!(metrics.threads, 0, "{metrics:?}");
    });
}

#[test]
fn a_call_waiting_for_room_races_the_slot_that_frees() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Wait));
        let first = {
            let pool = pool.clone();
            loom::thread::spawn(move || block_on(spawn_on(pool, || 1)))
        };
        // Finds the only thread busy (and waits) or free; a wake-up lost between its waiting and
        // the thread freeing up deadlocks the model.
        assert_eq!(block_on(spawn_on(pool.clone(), || 2)), 2);
        assert_eq!(first.join().unwrap(), 1);
        pool.shutdown();
        assert_eq!(pool.metrics().completed, 2);
    });
}

#[test]
fn jobs_beyond_the_ring_go_through_the_overflow_and_all_run() {
    model(|| {
        // Under loom the ring holds two jobs: the third call's job overflows while the only
        // thread works through the ring, and refills it.
        let pool = started(BlockingPool::with_max_threads(1));
        let calls: Vec<_> = (0..3).map(|n| spawn_on(pool.clone(), move || n)).collect();
        let results: Vec<i32> = block_on(join_all(calls));
        assert_eq!(results, [0, 1, 2]);
        pool.shutdown();
        assert_eq!(pool.metrics().completed, 3);
    });
}

/// Polls every future once (submitting its job) before waiting for any, without the `futures`
/// crate (whose executor loom cannot see).
async fn join_all<F: std::future::Future + Unpin>(mut calls: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = calls.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (call, output) in calls.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match std::pin::Pin::new(call).poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}
