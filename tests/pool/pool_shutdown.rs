//! Shutting a pool down (`shutdown`, `shutdown_timeout`): queued and running jobs finish,
//! later calls are refused naming the pool, the report names what still runs, and no state a
//! thread or a call can be in (starting, retiring in a slow stop hook, dropping its thread
//! value, waiting for room, racing the shutdown) loses a call or hangs the shutdown.

use crate::support::{
    Census, CountingWaker, all_at_once, eventually, gate, hold_the_only_thread, poll_noop,
    poll_with, within,
};
use async_wrap::{BlockingPool, QueueFull, ShutdownReport, async_wrap, spawn_on};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Waker};
use std::thread;
use std::time::Duration;

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
    let waiting = thread::spawn(move || async_wrap::block_on(futures::future::join_all(calls)));
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

    let err = async_wrap::block_on(spawn_on(pool.clone(), || ()).checked()).unwrap_err();
    assert!(err.is_shut_down());
    let panic =
        async_wrap::block_on(AssertUnwindSafe(spawn_on(pool.clone(), || ())).catch_unwind())
            .unwrap_err();
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
    let slow = thread::spawn(|| async_wrap::block_on(slow_report()));
    eventually("the slow job to run", || {
        WRAPPED_POOL.metrics().running == 1
    });
    thread::sleep(Duration::from_millis(20));
    let report = WRAPPED_POOL.shutdown_timeout(Duration::from_millis(30));
    assert!(!report.is_complete());
    assert_eq!(report.still_running.len(), 1);
    assert_eq!(report.still_running[0].function, site!("slow_report"));
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
        async_wrap::block_on(spawn_on(pool.clone(), move || {
            inner.shutdown_timeout(Duration::from_secs(10))
        }))
    });
    assert!(report.is_complete(), "{report:?}");
}

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

#[test]
fn calls_racing_a_shutdown_each_run_or_are_refused_naming_the_pool() {
    within(Duration::from_secs(40), || {
        for round in 0..150 {
            let pool = Arc::new(
                BlockingPool::builder()
                    .max_threads(2)
                    .thread_name("racing")
                    .keep_alive(Duration::from_millis(1))
                    .build()
                    .unwrap(),
            );
            let ran = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Barrier::new(4));
            let callers: Vec<_> = (0..3)
                .map(|_| {
                    let (pool, ran, start) = (pool.clone(), ran.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        let (mut ok, mut refused) = (0, 0);
                        for _ in 0..20 {
                            let ran = ran.clone();
                            match async_wrap::block_on(
                                spawn_on(pool.clone(), move || {
                                    ran.fetch_add(1, Ordering::SeqCst);
                                })
                                .checked(),
                            ) {
                                Ok(()) => ok += 1,
                                Err(err) => {
                                    assert!(err.is_shut_down(), "{err}");
                                    assert_eq!(err.executor(), "racing");
                                    refused += 1;
                                }
                            }
                        }
                        (ok, refused)
                    })
                })
                .collect();
            start.wait();
            if round % 2 == 0 {
                thread::yield_now();
            }
            pool.shutdown();
            let mut ok = 0;
            for caller in callers {
                let (o, r) = caller.join().unwrap();
                assert_eq!(o + r, 20);
                ok += o;
            }
            assert_eq!(ok, ran.load(Ordering::SeqCst), "round {round}");
            assert_eq!(pool.metrics().threads, 0, "round {round}");
        }
    });
}

#[test]
fn a_shutdown_while_a_thread_runs_its_start_hook_still_runs_the_queued_call() {
    within(Duration::from_secs(20), || {
        let (go, hook_gate) = gate();
        let entered = Arc::new(AtomicUsize::new(0));
        let pool = {
            let entered = entered.clone();
            Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .on_thread_start(move || {
                        entered.fetch_add(1, Ordering::SeqCst);
                        let _ = hook_gate.lock().unwrap().recv();
                    })
                    .build()
                    .unwrap(),
            )
        };
        let mut call = spawn_on(pool.clone(), || 5);
        assert!(poll_noop(&mut call).is_pending());
        eventually("the thread to enter its start hook", || {
            entered.load(Ordering::SeqCst) == 1
        });
        let shutter = {
            let pool = pool.clone();
            thread::spawn(move || pool.shutdown())
        };
        thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        assert_eq!(async_wrap::block_on(call), 5);
        shutter.join().unwrap();
        assert_eq!(pool.metrics().threads, 0);
    });
}

#[test]
fn shutdown_waits_for_slow_stop_hooks_before_it_returns() {
    within(Duration::from_secs(20), || {
        let (builder, census) = Census::hooks(BlockingPool::builder().max_threads(3), || {
            thread::sleep(Duration::from_millis(100));
        });
        let pool = Arc::new(builder.build().unwrap());
        all_at_once(&pool, 3);
        pool.shutdown();
        assert_eq!(census.started.load(Ordering::SeqCst), 3);
        assert_eq!(
            census.stopped.load(Ordering::SeqCst),
            3,
            "shutdown returned before the stop hooks ran"
        );
        assert_eq!(pool.metrics().threads, 0);
    });
}

#[test]
fn a_call_waiting_for_room_when_the_pool_shuts_down_runs_or_is_refused() {
    within(Duration::from_secs(20), || {
        for policy_round in 0..40 {
            let pool = Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .thread_name("room")
                    .queue_capacity(1, QueueFull::Wait)
                    .build()
                    .unwrap(),
            );
            let (go, holder) = hold_the_only_thread(&pool);
            let mut queued = spawn_on(pool.clone(), || 1).checked();
            assert!(poll_noop(&mut queued).is_pending());
            let mut waiting = spawn_on(pool.clone(), || 2).checked();
            let (rec, waker) = CountingWaker::new();
            assert!(poll_with(&mut waiting, &waker).is_pending());
            let shutter = {
                let pool = pool.clone();
                thread::spawn(move || pool.shutdown())
            };
            if policy_round % 2 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
            go.send(()).unwrap();
            let _ = rec;
            let waiting = async_wrap::block_on(waiting);
            match waiting {
                Ok(v) => assert_eq!(v, 2),
                Err(err) => assert!(err.is_shut_down() && err.executor() == "room", "{err}"),
            }
            assert_eq!(async_wrap::block_on(queued).unwrap(), 1);
            async_wrap::block_on(holder);
            shutter.join().unwrap();
        }
    });
}

#[test]
fn concurrent_shutdowns_of_every_form_all_return() {
    within(Duration::from_secs(30), || {
        for _ in 0..50 {
            let pool = Arc::new(BlockingPool::with_max_threads(2));
            let mut job = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(5)));
            assert!(poll_noop(&mut job).is_pending());
            let a = {
                let pool = pool.clone();
                thread::spawn(move || pool.shutdown())
            };
            let b = {
                let pool = pool.clone();
                thread::spawn(move || pool.shutdown_timeout(Duration::from_secs(5)))
            };
            let c = {
                let pool = pool.clone();
                thread::spawn(move || async_wrap::block_on(pool.shutdown_async()))
            };
            let d = {
                let pool = pool.clone();
                thread::spawn(move || {
                    async_wrap::block_on(pool.shutdown_timeout_async(Duration::from_secs(5)))
                })
            };
            a.join().unwrap();
            assert!(b.join().unwrap().is_complete());
            assert!(c.join().unwrap().is_complete());
            assert!(d.join().unwrap().is_complete());
            async_wrap::block_on(job);
            assert_eq!(pool.metrics().threads, 0);
        }
    });
}

#[test]
fn a_zero_timeout_shutdown_then_a_full_shutdown_waits_for_what_still_runs() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let done = Arc::new(AtomicBool::new(false));
        let mut job = {
            let done = done.clone();
            spawn_on(pool.clone(), move || {
                thread::sleep(Duration::from_millis(150));
                done.store(true, Ordering::SeqCst);
            })
        };
        assert!(poll_noop(&mut job).is_pending());
        eventually("the job to run", || pool.metrics().running == 1);
        let report = pool.shutdown_timeout(Duration::ZERO);
        assert_eq!(report.still_running.len(), 1, "{report:?}");
        pool.shutdown();
        assert!(
            done.load(Ordering::SeqCst),
            "the second shutdown did not wait"
        );
        assert_eq!(pool.metrics().threads, 0);
        async_wrap::block_on(job);
    });
}

#[async_wrap(executor = pool)]
fn reported(pool: Arc<BlockingPool>, gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = &pool;
    let _ = gate.lock().unwrap().recv();
}

#[test]
fn a_shutdown_report_names_the_running_function_and_counts_the_queued_jobs() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (go, g) = gate();
        let mut running = reported(pool.clone(), g);
        assert!(poll_noop(&mut running).is_pending());
        eventually("the job to run", || pool.metrics().running == 1);
        let mut queued: Vec<_> = (0..3).map(|n| spawn_on(pool.clone(), move || n)).collect();
        for q in &mut queued {
            assert!(poll_noop(q).is_pending());
        }
        let report = pool.shutdown_timeout(Duration::from_millis(20));
        assert_eq!(report.still_running.len(), 1, "{report:?}");
        assert_eq!(report.still_running[0].function, site!("reported"));
        assert_eq!(report.still_queued, 3, "{report:?}");
        assert_eq!(report.threads_left, 1, "{report:?}");
        go.send(()).unwrap();
        async_wrap::block_on(running);
        for (n, q) in queued.into_iter().enumerate() {
            assert_eq!(async_wrap::block_on(q), n);
        }
        let report = pool.shutdown_timeout(Duration::from_secs(5));
        assert!(report.is_complete(), "{report:?}");
    });
}

// `shutdown` from the pool's own stop hook waited for its own thread for ever, and
// `shutdown_timeout` there reported `threads_left` as 0 - 1, wrapped.
#[test]
fn shutdown_from_a_stop_hook_does_not_wait_for_its_own_thread() {
    for timeout in [None, Some(Duration::from_millis(500))] {
        within(Duration::from_secs(20), move || {
            let pool: Arc<std::sync::OnceLock<Arc<BlockingPool>>> = Arc::default();
            let report = Arc::new(Mutex::new(None));
            let built = Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .keep_alive(Duration::from_millis(20))
                    .on_thread_stop({
                        let (pool, report) = (pool.clone(), report.clone());
                        move || {
                            let pool = pool.get().unwrap();
                            if !pool.is_shut_down() {
                                let made = match timeout {
                                    None => {
                                        pool.shutdown();
                                        None
                                    }
                                    Some(timeout) => Some(pool.shutdown_timeout(timeout)),
                                };
                                *report.lock().unwrap() = Some(made);
                            }
                        }
                    })
                    .build()
                    .unwrap(),
            );
            pool.set(built.clone()).unwrap();
            assert_eq!(
                futures::executor::block_on(spawn_on(built.clone(), || 1)),
                1
            );
            eventually("the stop hook's shutdown to return", || {
                report.lock().unwrap().is_some()
            });
            if let Some(Some(report)) = report.lock().unwrap().take() {
                assert_eq!(report.threads_left, 0, "{report:?}");
                assert!(report.is_complete(), "{report:?}");
            }
            eventually("the thread to exit", || built.metrics().threads == 0);
        });
    }
}

/// A shutdown right after a job is queued behind threads asleep waiting for it (a barrier):
/// the queued job still gets a thread, and the shutdown returns with every job finished (the
/// supervisor stopped growing the pool at the close, and the shutdown waited for ever).
#[test]
fn a_shutdown_still_grows_the_pool_for_a_job_queued_behind_blocked_ones() {
    let parties = thread::available_parallelism().map_or(1, usize::from) + 1;
    for _ in 0..10 {
        let pool = Arc::new(BlockingPool::builder().max_threads(8).build().unwrap());
        let barrier = Arc::new(Barrier::new(parties));
        let mut calls: Vec<_> = (0..parties)
            .map(|_| {
                let barrier = barrier.clone();
                spawn_on(pool.clone(), move || {
                    barrier.wait();
                })
            })
            .collect();
        // Submitted here, and the pool shut down at once: the last job is queued behind the
        // others (one thread per core) when the pool closes.
        for call in &mut calls {
            assert!(poll_noop(call).is_pending());
        }
        let report = within(Duration::from_secs(10), {
            let pool = pool.clone();
            move || pool.shutdown_timeout(Duration::from_secs(8))
        });
        assert_eq!(report.still_queued, 0, "{report:?}");
        let done = within(Duration::from_secs(10), move || {
            futures::executor::block_on(futures::future::join_all(calls))
        });
        assert_eq!(done.len(), parties);
        assert_eq!(pool.metrics().completed, parties as u64);
    }
}
