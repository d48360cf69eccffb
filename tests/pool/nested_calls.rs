//! A call made from inside a job (a nested call): it takes a free thread when there is one,
//! runs inline when its own pool is saturated (however its queue is configured, and however the
//! inner call was first polled), and is refused once the pool is shut down; it never hangs.

use crate::support::{eventually, gate, one_thread_pool, poll_noop, poll_with, within};
use async_wrap::{BlockingPool, QueueFull, spawn_on};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Waker;
use std::thread;
use std::time::Duration;

#[test]
fn a_job_waiting_on_its_own_saturated_pool_runs_the_inner_call_inline() {
    let (depth, inline) = within(Duration::from_secs(20), || {
        static ONE: BlockingPool = BlockingPool::with_max_threads(1);
        fn nest(level: u32) -> u32 {
            if level == 0 {
                0
            } else {
                1 + async_wrap::block_on(spawn_on(&ONE, move || nest(level - 1)))
            }
        }
        let depth = async_wrap::block_on(spawn_on(&ONE, || nest(4)));
        (depth, ONE.metrics().inline)
    });
    assert_eq!(depth, 4);
    assert_eq!(inline, 4, "each nested call ran inline on the only thread");
}

#[test]
fn a_nested_call_uses_a_free_thread_when_there_is_one() {
    let threads = within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2).min_threads(2));
        let inner = pool.clone();
        async_wrap::block_on(spawn_on(pool.clone(), move || {
            let outer = thread::current().id();
            let inner = async_wrap::block_on(spawn_on(inner, || thread::current().id()));
            (outer, inner)
        }))
    });
    assert_ne!(threads.0, threads.1);
}

// A job waiting (with `block_on`) on a call to its own saturated pool ran it inline only if
// the call was first polled there; polled once elsewhere (its job queued behind the waiting
// one), it hung.
#[test]
fn a_nested_wait_on_a_call_queued_from_elsewhere_runs_it_inline() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (send, receive) = mpsc::channel::<async_wrap::BlockingFuture<u32>>();
        let outer = spawn_on(pool.clone(), move || {
            let inner = receive.recv().unwrap();
            async_wrap::block_on(inner) + 1
        });
        let outer = thread::spawn(move || futures::executor::block_on(outer));
        eventually("the outer job to hold the only thread", || {
            pool.metrics().running == 1
        });
        let mut inner = spawn_on(pool.clone(), || 41_u32);
        assert!(poll_with(&mut inner, Waker::noop()).is_pending(), "queued");
        send.send(inner).unwrap();
        assert_eq!(outer.join().unwrap(), 42);
        eventually("the skipped queued copy to be taken", || {
            pool.metrics().queued == 0
        });
        let metrics = pool.metrics();
        assert_eq!(
            (metrics.completed, metrics.inline, metrics.cancelled),
            (2, 1, 0),
            "{metrics:?}"
        );
        pool.shutdown();
    });
}

#[test]
fn a_nested_call_on_a_saturated_pool_with_a_full_wait_queue_runs_inline() {
    within(Duration::from_secs(20), || {
        let pool = one_thread_pool(1, QueueFull::Wait);
        let (filled_tx, filled_rx) = mpsc::channel::<()>();
        let filled_rx = Arc::new(Mutex::new(filled_rx));
        let outer = {
            let pool = pool.clone();
            spawn_on(pool.clone(), move || {
                // Wait until another call fills the queue, then wait on a nested call.
                let _ = filled_rx.lock().unwrap().recv();
                async_wrap::block_on(spawn_on(pool, || 40)) + 2
            })
        };
        let outer = thread::spawn(move || async_wrap::block_on(outer));
        eventually("the outer body to run", || pool.metrics().running == 1);
        let mut filler = spawn_on(pool.clone(), || 0);
        assert!(poll_noop(&mut filler).is_pending());
        assert_eq!(pool.metrics().queued, 1);
        filled_tx.send(()).unwrap();
        assert_eq!(outer.join().unwrap(), 42);
        assert_eq!(async_wrap::block_on(filler), 0);
    });
}

#[test]
fn a_nested_call_on_a_saturated_pool_with_a_full_reject_queue_does_not_hang() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(1)
                .thread_name("nest-reject")
                .queue_capacity(0, QueueFull::Reject)
                .build()
                .unwrap(),
        );
        let inner = {
            let pool = pool.clone();
            spawn_on(pool.clone(), move || {
                async_wrap::block_on(spawn_on(pool, || 40).checked())
            })
        };
        match async_wrap::block_on(inner) {
            Ok(v) => assert_eq!(v, 40),
            Err(err) => assert_eq!(err.executor(), "nest-reject"),
        }
    });
}

#[test]
fn a_body_that_shuts_its_own_pool_down_then_makes_a_nested_call_is_refused() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(2)
                .thread_name("self-shut")
                .build()
                .unwrap(),
        );
        let queued_ran = Arc::new(AtomicBool::new(false));
        let (go, body_gate) = gate();
        let mut other = {
            let queued_ran = queued_ran.clone();
            spawn_on(pool.clone(), move || {
                let _ = body_gate.lock().unwrap().recv();
                queued_ran.store(true, Ordering::SeqCst);
            })
        };
        assert!(poll_noop(&mut other).is_pending());
        let body = {
            let pool = pool.clone();
            spawn_on(pool.clone(), move || {
                let report = pool.shutdown_timeout(Duration::from_millis(50));
                let nested = async_wrap::block_on(spawn_on(pool.clone(), || 1).checked());
                (
                    report,
                    nested.map_err(|e| (e.is_shut_down(), e.executor().to_owned())),
                )
            })
        };
        let body = thread::spawn(move || async_wrap::block_on(body));
        thread::sleep(Duration::from_millis(100));
        go.send(()).unwrap();
        let (report, nested) = body.join().unwrap();
        assert!(!report.is_complete());
        assert_eq!(nested, Err((true, "self-shut".to_owned())));
        async_wrap::block_on(other);
        assert!(queued_ran.load(Ordering::SeqCst));
        eventually("the threads to leave", || pool.metrics().threads == 0);
    });
}

/// A body's nested calls on a pool with room get threads of their own: a fan-out runs in
/// parallel (it ran every call inline, one after the other, when no thread was idle).
#[test]
fn nested_calls_on_a_pool_with_room_get_threads_and_run_in_parallel() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let inner = pool.clone();
    let threads = within(Duration::from_secs(20), move || {
        async_wrap::block_on(spawn_on(pool.clone(), move || {
            let outer = thread::current().id();
            let calls = (0..8).map(|_| {
                spawn_on(inner.clone(), || {
                    thread::sleep(Duration::from_millis(20));
                    thread::current().id()
                })
            });
            let ran_on = async_wrap::block_on(futures::future::join_all(calls));
            (outer, ran_on, inner.metrics().inline)
        }))
    });
    let (outer, ran_on, inline) = threads;
    assert_eq!(inline, 0, "no nested call ran inline");
    assert!(ran_on.iter().all(|id| *id != outer));
    let distinct: std::collections::HashSet<_> = ran_on.into_iter().collect();
    assert!(distinct.len() > 1, "the fan-out ran on one thread");
}

/// Two nested calls that wait for each other (the first receives what the second sends) on a
/// pool with room: both get threads (the first ran inline, blocked in its receive, and the
/// second was never submitted).
#[test]
fn nested_calls_that_wait_for_each_other_on_a_pool_with_room_do_not_deadlock() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let inner = pool.clone();
    let got = within(Duration::from_secs(20), move || {
        async_wrap::block_on(spawn_on(pool.clone(), move || {
            let (send, receive) = mpsc::channel::<u32>();
            let receiving = spawn_on(inner.clone(), move || receive.recv().unwrap());
            let sending = spawn_on(inner.clone(), move || send.send(7).unwrap());
            async_wrap::block_on(async { futures::join!(receiving, sending).0 })
        }))
    });
    assert_eq!(got, 7);
}
