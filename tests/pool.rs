//! The pool's contract: configuration, back-pressure, cancellation, shutdown,
//! nesting, metrics. Each test fails without the behaviour it names.
//!
//! Tests that could hang on a regression (a deadlock, a lost wake-up) run their scenario on a
//! separate thread and fail after a generous timeout instead.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use async_wrap::{
    BlockingPool, QueueFull, RejectReason, async_wrap, block_on, is_cancelled, spawn_on,
};
use futures::FutureExt;
use futures::task::ArcWake;

mod support;
use support::{eventually, within};

/// A job that runs until its gate opens.
fn gated(pool: &Arc<BlockingPool>) -> (async_wrap::BlockingFuture<()>, Arc<Barrier>) {
    let gate = Arc::new(Barrier::new(2));
    let inside = gate.clone();
    (
        spawn_on(pool.clone(), move || {
            inside.wait();
        }),
        gate,
    )
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(this: &Arc<Self>) {
        this.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Arc<CountingWaker>) -> Poll<F::Output> {
    let waker = futures::task::waker(waker.clone());
    future.poll_unpin(&mut Context::from_waker(&waker))
}

#[test]
fn builder_refuses_settings_that_make_no_pool() {
    let err = |builder: async_wrap::Builder| builder.build().unwrap_err().to_string();
    assert_eq!(
        err(BlockingPool::builder().max_threads(0)),
        "max_threads is 0: a pool needs at least one thread"
    );
    assert_eq!(
        err(BlockingPool::builder().max_threads(2).min_threads(3)),
        "min_threads (3) is more than max_threads (2)"
    );
    assert_eq!(
        err(BlockingPool::builder().stack_size(0)),
        "stack_size is 0"
    );
    let pool = BlockingPool::builder()
        .max_threads(3)
        .min_threads(3)
        .stack_size(256 * 1024)
        .keep_alive(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(pool.max_threads(), 3);
}

#[test]
fn min_threads_start_with_the_pool_and_stay_while_others_leave() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (on_start, on_stop) = (started.clone(), stopped.clone());
    let pool = Arc::new(
        BlockingPool::builder()
            .max_threads(4)
            .min_threads(2)
            .keep_alive(Duration::from_millis(30))
            .thread_name("warm")
            .on_thread_start(move || {
                on_start.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                stopped.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap(),
    );
    let busy = (0..4).map(|_| spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(50))));
    block_on(futures::future::join_all(busy));
    assert_eq!(pool.metrics().threads_started, 4);
    eventually("the two extra threads to leave", || {
        pool.metrics().threads == 2
    });
    thread::sleep(Duration::from_millis(150));
    let metrics = pool.metrics();
    assert_eq!(metrics.threads, 2, "min_threads stay: {metrics:?}");
    assert_eq!(metrics.idle_threads, 2);
    assert_eq!(started.load(Ordering::SeqCst), 4);
    assert_eq!(on_stop.load(Ordering::SeqCst), 2);
}

#[test]
fn a_full_queue_makes_callers_wait_without_blocking_the_runtime() {
    let pool = Arc::new(BlockingPool::with_max_threads(1).queue_capacity(1, QueueFull::Wait));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let worst_queue = Arc::new(AtomicUsize::new(0));
    let results = runtime.block_on({
        let (pool, ticks, worst_queue) = (pool.clone(), ticks.clone(), worst_queue.clone());
        async move {
            let done = Arc::new(AtomicBool::new(false));
            let ticker = tokio::spawn({
                let (pool, done) = (pool.clone(), done.clone());
                async move {
                    while !done.load(Ordering::SeqCst) {
                        worst_queue.fetch_max(pool.metrics().queued, Ordering::SeqCst);
                        ticks.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            });
            let calls = (0..6).map(|i| {
                spawn_on(pool.clone(), move || {
                    thread::sleep(Duration::from_millis(40));
                    i * 10
                })
            });
            let results = futures::future::join_all(calls).await;
            done.store(true, Ordering::SeqCst);
            ticker.await.unwrap();
            results
        }
    });
    assert_eq!(
        results,
        vec![0, 10, 20, 30, 40, 50],
        "every waiting call ran, with its own result"
    );
    // Six 40 ms jobs on one thread take 240 ms; a blocked runtime thread would not tick.
    assert!(
        ticks.load(Ordering::SeqCst) >= 20,
        "the runtime kept running: {ticks:?}"
    );
    assert!(
        worst_queue.load(Ordering::SeqCst) <= 1,
        "the queue never held more than its capacity"
    );
    assert_eq!(pool.metrics().completed, 6);
}

#[test]
fn a_full_queue_rejects_with_a_typed_error_under_reject() {
    let pool = Arc::new(
        BlockingPool::with_max_threads(1)
            .thread_name("strict")
            .queue_capacity(0, QueueFull::Reject),
    );
    let (blocker, gate) = gated(&pool);
    let blocker = thread::spawn(move || block_on(blocker));
    eventually("the blocker to run", || pool.metrics().running == 1);

    let err = block_on(spawn_on(pool.clone(), || 1).checked()).unwrap_err();
    assert!(
        matches!(err.reject_reason(), Some(RejectReason::QueueFull)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "async_wrap: cannot run `closure` on executor `strict`: its queue is full"
    );
    // Unchecked, the same refusal is a panic with that message.
    let panic =
        block_on(AssertUnwindSafe(spawn_on(pool.clone(), || 1)).catch_unwind()).unwrap_err();
    assert_eq!(panic.downcast_ref::<String>(), Some(&err.to_string()));
    assert_eq!(pool.metrics().rejected, 2);

    gate.wait();
    blocker.join().unwrap();
    assert_eq!(
        block_on(spawn_on(pool.clone(), || 2)),
        2,
        "room again once the thread is free"
    );
}

#[test]
fn a_full_queue_runs_the_job_on_the_caller_under_run_on_caller() {
    let pool =
        Arc::new(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::RunOnCaller));
    let (blocker, gate) = gated(&pool);
    let blocker = thread::spawn(move || block_on(blocker));
    eventually("the blocker to run", || pool.metrics().running == 1);

    let caller = thread::current().id();
    assert_eq!(
        block_on(spawn_on(pool.clone(), || thread::current().id())),
        caller
    );
    assert_eq!(pool.metrics().inline, 1);
    gate.wait();
    blocker.join().unwrap();
}

#[test]
fn a_dropped_waiter_passes_its_wake_up_on() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Wait));
        let (blocker, gate) = gated(&pool);
        let blocker = thread::spawn(move || block_on(blocker));
        eventually("the blocker to run", || pool.metrics().running == 1);

        let (wake_a, wake_b) = (
            Arc::new(CountingWaker::default()),
            Arc::new(CountingWaker::default()),
        );
        let mut a = spawn_on(pool.clone(), || 'a');
        let mut b = spawn_on(pool.clone(), || 'b');
        assert!(poll_once(&mut a, &wake_a).is_pending());
        assert!(poll_once(&mut b, &wake_b).is_pending());

        gate.wait(); // the thread frees up and wakes the first waiter, `a`...
        blocker.join().unwrap();
        eventually("`a` to be woken", || wake_a.0.load(Ordering::SeqCst) == 1);
        assert_eq!(wake_b.0.load(Ordering::SeqCst), 0);
        drop(a); // ...which gives up without retrying: `b` must get the wake instead.
        assert_eq!(wake_b.0.load(Ordering::SeqCst), 1);
        assert_eq!(block_on(b), 'b');
    });
}

#[test]
fn a_thread_stays_taken_until_its_body_returns_even_if_the_future_is_dropped() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let worst = Arc::new(AtomicUsize::new(0));
    let job = |pool: &Arc<BlockingPool>| {
        let (in_flight, worst) = (in_flight.clone(), worst.clone());
        spawn_on(pool.clone(), move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            worst.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(60));
            in_flight.fetch_sub(1, Ordering::SeqCst);
        })
    };
    let mut first = job(&pool);
    assert!(poll_once(&mut first, &Arc::new(CountingWaker::default())).is_pending());
    eventually("the first body to start", || {
        in_flight.load(Ordering::SeqCst) == 1
    });
    drop(first);
    block_on(job(&pool));
    assert_eq!(
        worst.load(Ordering::SeqCst),
        1,
        "never two bodies at once on max_threads 1"
    );
    assert_eq!(
        pool.metrics().completed,
        2,
        "the dropped future's body ran to completion"
    );
}

#[test]
fn a_future_dropped_before_its_job_starts_never_runs() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let (blocker, gate) = gated(&pool);
    let blocker = thread::spawn(move || block_on(blocker));
    eventually("the blocker to run", || pool.metrics().running == 1);

    let ran = Arc::new(AtomicUsize::new(0));
    let mut queued = spawn_on(pool.clone(), {
        let ran = ran.clone();
        move || ran.fetch_add(1, Ordering::SeqCst)
    });
    assert!(poll_once(&mut queued, &Arc::new(CountingWaker::default())).is_pending());
    assert_eq!(pool.metrics().queued, 1);
    drop(queued);

    gate.wait();
    blocker.join().unwrap();
    eventually("the queue to drain", || {
        pool.metrics().queued == 0 && pool.metrics().running == 0
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the body never ran");
    assert_eq!(pool.metrics().cancelled, 1);
}

#[test]
fn is_cancelled_lets_a_running_body_stop_once_its_future_is_dropped() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let mut future = spawn_on(pool.clone(), move || {
        started_tx.send(()).unwrap();
        let start = Instant::now();
        let mut rounds = 0_u64;
        while !is_cancelled() && start.elapsed() < Duration::from_secs(30) {
            rounds += 1;
            thread::sleep(Duration::from_millis(1));
        }
        done_tx.send((is_cancelled(), start.elapsed())).unwrap();
        rounds
    });
    assert!(poll_once(&mut future, &Arc::new(CountingWaker::default())).is_pending());
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!is_cancelled(), "outside a job it is false");
    drop(future);
    let (cancelled, ran_for) = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the loop stopped");
    assert!(cancelled);
    assert!(
        ran_for < Duration::from_secs(10),
        "stopped early: {ran_for:?}"
    );
}

#[test]
fn shutdown_finishes_queued_and_running_jobs_then_refuses_calls_by_name() {
    let pool = Arc::new(BlockingPool::with_max_threads(2).thread_name("closing"));
    let finished = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let finished = finished.clone();
            spawn_on(pool.clone(), move || {
                thread::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::SeqCst)
            })
        })
        .collect();
    let waiting = thread::spawn(move || block_on(futures::future::join_all(calls)));
    eventually("jobs to be queued and running", || {
        pool.metrics().running == 2
    });

    pool.shutdown();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        6,
        "queued jobs ran before shutdown returned"
    );
    assert_eq!(pool.metrics().threads, 0, "the threads were joined");
    assert!(pool.is_shut_down());
    assert_eq!(waiting.join().unwrap().len(), 6);

    let err = block_on(spawn_on(pool.clone(), || ()).checked()).unwrap_err();
    assert!(err.is_shut_down());
    let panic =
        block_on(AssertUnwindSafe(spawn_on(pool.clone(), || ())).catch_unwind()).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<String>().map(String::as_str),
        Some(
            "async_wrap: cannot run `closure` on executor `closing`: the executor has been shut down"
        )
    );
}

static WRAPPED_POOL: BlockingPool = BlockingPool::with_max_threads(1);

#[async_wrap(executor = WRAPPED_POOL)]
fn slow_report() {
    thread::sleep(Duration::from_millis(300));
}

#[test]
fn shutdown_timeout_reports_what_still_runs_with_its_name_and_age() {
    let slow = thread::spawn(|| block_on(slow_report()));
    eventually("the slow job to run", || {
        WRAPPED_POOL.metrics().running == 1
    });
    thread::sleep(Duration::from_millis(20));
    let report = WRAPPED_POOL.shutdown_timeout(Duration::from_millis(30));
    assert!(!report.is_complete());
    assert_eq!(report.still_running.len(), 1);
    assert_eq!(report.still_running[0].function, "pool::slow_report");
    assert!(report.still_running[0].running_for >= Duration::from_millis(40));
    assert_eq!(report.threads_left, 1);
    // Nothing was dropped: the job finishes and its caller gets its result.
    slow.join().unwrap();
    eventually("the last thread to leave", || {
        WRAPPED_POOL.metrics().threads == 0
    });
}

#[test]
fn shutdown_from_a_job_of_the_same_pool_does_not_wait_for_itself() {
    let report = within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2));
        let inner = pool.clone();
        block_on(spawn_on(pool.clone(), move || {
            inner.shutdown_timeout(Duration::from_secs(10))
        }))
    });
    assert!(report.is_complete(), "{report:?}");
}

#[test]
fn a_job_waiting_on_its_own_saturated_pool_runs_the_inner_call_inline() {
    let (depth, inline) = within(Duration::from_secs(20), || {
        static ONE: BlockingPool = BlockingPool::with_max_threads(1);
        fn nest(level: u32) -> u32 {
            if level == 0 {
                0
            } else {
                1 + block_on(spawn_on(&ONE, move || nest(level - 1)))
            }
        }
        let depth = block_on(spawn_on(&ONE, || nest(4)));
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
        block_on(spawn_on(pool.clone(), move || {
            let outer = thread::current().id();
            let inner = block_on(spawn_on(inner, || thread::current().id()));
            (outer, inner)
        }))
    });
    assert_ne!(threads.0, threads.1);
}

#[test]
fn a_dropped_pool_still_runs_what_was_queued() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let results = Arc::new(Mutex::new(Vec::new()));
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let results = results.clone();
            spawn_on(pool.clone(), move || results.lock().unwrap().push(i))
        })
        .collect();
    drop(pool); // the futures still hold it; the last one to finish frees it
    block_on(futures::future::join_all(calls));
    assert_eq!(*results.lock().unwrap(), vec![0, 1, 2, 3]);
}

#[async_wrap]
fn square(n: u64) -> u64 {
    n * n
}

#[test]
fn the_same_calls_run_under_smol() {
    let results = smol::block_on(async {
        let tasks: Vec<_> = (0..8).map(|n| smol::spawn(square(n))).collect();
        futures::future::join_all(tasks).await
    });
    assert_eq!(results, vec![0, 1, 4, 9, 16, 25, 36, 49]);
}

/// The pool's accounting of idle and claimed threads must come out of any burst exact: a claim
/// left over would hide a queued job from the supervisor, which then never starts a thread for
/// it (the 17th call below would wait for one of the 16 to free up, and run on it).
#[test]
fn after_bursts_of_short_calls_blocking_calls_still_get_a_thread_each() {
    let pool = Arc::new(BlockingPool::new().thread_name("after-bursts"));
    within(Duration::from_secs(60), move || {
        for round in 0..3 {
            futures::executor::block_on(async {
                for _ in 0..20 {
                    let calls = (0..1_000_u64)
                        .map(|i| spawn_on(pool.clone(), move || std::hint::black_box(i)));
                    futures::future::join_all(calls).await;
                }
                for i in 0..2_000_u64 {
                    spawn_on(pool.clone(), move || std::hint::black_box(i)).await;
                }
            });
            let ids = Arc::new(Mutex::new(std::collections::HashSet::new()));
            futures::executor::block_on(futures::future::join_all((0..17).map(|_| {
                let ids = ids.clone();
                spawn_on(pool.clone(), move || {
                    thread::sleep(Duration::from_millis(100));
                    ids.lock().unwrap().insert(thread::current().id());
                })
            })));
            assert_eq!(
                ids.lock().unwrap().len(),
                17,
                "round {round}: {:?}",
                pool.metrics()
            );
        }
    });
}
