//! How many threads a pool runs: one per concurrent call up to `max_threads` (never more, even
//! while threads retire), `min_threads` kept warm, idle threads reused and retired after
//! `keep_alive`, named after the pool; the builder refuses settings that make no pool, and a
//! pool whose threads cannot start fails its calls instead of hanging.

use crate::support::{
    Census, all_at_once, eventually, gate, on_a_thread, panic_text, quiet_panics, within,
};
use async_wrap::{BlockingPool, async_wrap, spawn_on};
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

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
    assert_eq!(pool.settings().max_threads, 3);
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
    async_wrap::block_on(futures::future::join_all(busy));
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

#[test]
fn threads_are_named_after_the_pool() {
    static NAMED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("disk-io");
    let name = futures::executor::block_on(async_wrap::spawn_on(&NAMED, || {
        thread::current().name().map(str::to_owned)
    }));
    assert_eq!(name.as_deref(), Some("disk-io-1"));

    let name = futures::executor::block_on(async_wrap::spawn(|| {
        thread::current().name().map(str::to_owned)
    }));
    assert!(name.unwrap().starts_with("async-wrap-"));
}

#[test]
fn idle_threads_exit_after_keep_alive() {
    static SHORT: BlockingPool =
        BlockingPool::with_max_threads(4).keep_alive(Duration::from_millis(50));
    let (a, b) = futures::executor::block_on(async {
        futures::join!(
            async_wrap::spawn_on(&SHORT, || thread::sleep(Duration::from_millis(30))),
            async_wrap::spawn_on(&SHORT, || thread::sleep(Duration::from_millis(30))),
        )
    });
    let _ = (a, b);
    assert_eq!(SHORT.metrics().threads_started, 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while SHORT.metrics().threads > 0 {
        assert!(
            Instant::now() < deadline,
            "threads still alive: {:?}",
            SHORT.metrics()
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(SHORT.metrics().idle_threads, 0);
    // The pool starts a thread again on demand.
    futures::executor::block_on(async_wrap::spawn_on(&SHORT, || ()));
    assert_eq!(SHORT.metrics().threads_started, 3);
}

#[test]
fn an_idle_thread_is_reused_rather_than_a_new_one_started() {
    static REUSE: BlockingPool = BlockingPool::with_max_threads(8);
    let first =
        futures::executor::block_on(async_wrap::spawn_on(&REUSE, || thread::current().id()));
    for _ in 0..100 {
        assert_eq!(
            futures::executor::block_on(async_wrap::spawn_on(&REUSE, || thread::current().id())),
            first
        );
    }
    assert_eq!(REUSE.metrics().threads_started, 1);
    assert_eq!(REUSE.metrics().completed, 101);
}

// Before the fix (a thread counted in the ready set only after it was spawned), the
// final call hung in 17 of 30 runs of this scenario, or 4-6 idle threads never retired.
#[test]
fn after_bursts_and_an_idle_spell_a_call_still_runs_and_idle_threads_retire() {
    for round in 0..4 {
        within(Duration::from_secs(30), move || {
            let pool = Arc::new(
                BlockingPool::builder()
                    .max_threads(64)
                    .keep_alive(Duration::from_millis(50))
                    .build()
                    .unwrap(),
            );
            for _ in 0..20 {
                let callers: Vec<_> = (0..4)
                    .map(|_| {
                        let pool = pool.clone();
                        thread::spawn(move || {
                            let calls = (0..32).map(|_| {
                                spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(2)))
                            });
                            futures::executor::block_on(futures::future::join_all(calls));
                        })
                    })
                    .collect();
                for caller in callers {
                    caller.join().unwrap();
                }
            }
            eventually("every thread to retire after keep_alive", || {
                pool.metrics().threads == 0
            });
            let (tx, rx) = mpsc::channel();
            let call = {
                let pool = pool.clone();
                thread::spawn(move || {
                    let _ = tx.send(futures::executor::block_on(spawn_on(pool, || 7)));
                })
            };
            let value = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
                panic!(
                    "round {round}: a call on an idle pool never completed: {:?}",
                    pool.metrics()
                )
            });
            assert_eq!(value, 7);
            call.join().unwrap();
            eventually("the thread of the last call to retire", || {
                pool.metrics().threads == 0
            });
            pool.shutdown();
        });
    }
}

// Before the fix up to 10 threads of a `max_threads(2)` pool were alive at once while
// retiring threads ran a slow stop hook.
#[test]
fn max_threads_holds_while_retiring_threads_run_their_stop_hook() {
    within(Duration::from_secs(60), || {
        let alive = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(2)
                .keep_alive(Duration::from_millis(5))
                .on_thread_start({
                    let (alive, peak) = (alive.clone(), peak.clone());
                    move || {
                        let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                    }
                })
                .on_thread_stop({
                    let alive = alive.clone();
                    move || {
                        thread::sleep(Duration::from_millis(100));
                        alive.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .build()
                .unwrap(),
        );
        for burst in 0..8_u32 {
            let calls = (0..4).map(|n| spawn_on(pool.clone(), move || burst * 4 + n));
            let done = futures::executor::block_on(futures::future::join_all(calls));
            assert_eq!(done, (0..4).map(|n| burst * 4 + n).collect::<Vec<_>>());
            let metrics = pool.metrics();
            assert!(metrics.threads <= 2, "{metrics:?}");
            // Long enough for the threads to retire and be in their stop hook.
            thread::sleep(Duration::from_millis(20));
        }
        pool.shutdown();
        assert_eq!(alive.load(Ordering::SeqCst), 0);
        assert!(
            peak.load(Ordering::SeqCst) <= 2,
            "{} threads were alive at once",
            peak.load(Ordering::SeqCst)
        );
    });
}

// Calls that needed the pool to grow while all its old threads ran a slow stop hook: the pool
// grew to the core count and no further, and the calls (which wait for each other) hung.
#[test]
fn a_pool_grows_past_the_cores_for_jobs_queued_while_its_threads_retired() {
    within(Duration::from_secs(30), || {
        let n = 4;
        let pool = Arc::new(
            BlockingPool::builder()
                .max_threads(n)
                .keep_alive(Duration::from_millis(50))
                .on_thread_stop(|| thread::sleep(Duration::from_millis(300)))
                .build()
                .unwrap(),
        );
        all_at_once(&pool, n);
        // Every thread retires after 50 ms and sits in its 300 ms stop hook.
        thread::sleep(Duration::from_millis(150));
        all_at_once(&pool, n);
        assert!(pool.metrics().threads_started <= 2 * n as u64);
        pool.shutdown();
    });
}

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

#[test]
fn a_call_made_while_the_only_thread_runs_a_slow_stop_hook_runs_within_max_threads() {
    within(Duration::from_secs(20), || {
        let (go, hook_gate) = gate();
        let in_stop = Arc::new(AtomicBool::new(false));
        let (builder, census) = Census::hooks(
            BlockingPool::builder()
                .max_threads(1)
                .keep_alive(Duration::from_millis(5)),
            {
                let in_stop = in_stop.clone();
                move || {
                    if !in_stop.swap(true, Ordering::SeqCst) {
                        let _ = hook_gate.lock().unwrap().recv();
                    }
                }
            },
        );
        let pool = Arc::new(builder.build().unwrap());
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 1)), 1);
        eventually("the thread to retire into its stop hook", || {
            in_stop.load(Ordering::SeqCst)
        });
        // The only slot is taken by the retiring thread: the call waits, then runs.
        let rx = on_a_thread({
            let pool = pool.clone();
            move || async_wrap::block_on(spawn_on(pool, || 2))
        });
        thread::sleep(Duration::from_millis(30));
        assert_eq!(census.most.load(Ordering::SeqCst), 1);
        go.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 2);
        assert_eq!(
            census.most.load(Ordering::SeqCst),
            1,
            "max_threads(1) exceeded"
        );
        pool.shutdown();
        assert_eq!(
            census.started.load(Ordering::SeqCst),
            census.stopped.load(Ordering::SeqCst)
        );
    });
}

#[test]
fn max_threads_holds_under_churn_of_retiring_threads_and_bursts() {
    within(Duration::from_secs(30), || {
        let (builder, census) = Census::hooks(
            BlockingPool::builder()
                .max_threads(3)
                .keep_alive(Duration::from_micros(200)),
            || thread::sleep(Duration::from_micros(300)),
        );
        let pool = Arc::new(builder.build().unwrap());
        let callers: Vec<_> = (0..4)
            .map(|k| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for i in 0..150_u64 {
                        let calls: Vec<_> = (0..=(i % 5))
                            .map(|_| {
                                spawn_on(pool.clone(), || thread::sleep(Duration::from_micros(50)))
                            })
                            .collect();
                        async_wrap::block_on(futures::future::join_all(calls));
                        if (i + k) % 7 == 0 {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        pool.shutdown();
        assert!(
            census.most.load(Ordering::SeqCst) <= 3,
            "{} threads alive at once on a pool of max_threads(3)",
            census.most.load(Ordering::SeqCst)
        );
        assert_eq!(
            census.started.load(Ordering::SeqCst),
            census.stopped.load(Ordering::SeqCst)
        );
    });
}

#[test]
fn min_threads_stay_warm_after_a_burst_and_all_leave_at_shutdown() {
    within(Duration::from_secs(20), || {
        let (builder, census) = Census::hooks(
            BlockingPool::builder()
                .max_threads(4)
                .min_threads(2)
                .keep_alive(Duration::from_millis(5)),
            || (),
        );
        let pool = Arc::new(builder.build().unwrap());
        all_at_once(&pool, 4);
        eventually("the extra threads to retire", || {
            pool.metrics().threads == 2
        });
        thread::sleep(Duration::from_millis(100));
        assert_eq!(pool.metrics().threads, 2, "min_threads not kept warm");
        assert_eq!(census.alive.load(Ordering::SeqCst), 2);
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 5)), 5);
        pool.shutdown();
        assert_eq!(census.alive.load(Ordering::SeqCst), 0);
        assert_eq!(pool.metrics().threads, 0);
    });
}

/// Calls `spawn_on(pool, || value)` on a thread of its own: the value, or the error or the
/// panic's message.
fn call_on_a_thread(pool: &Arc<BlockingPool>, value: u32) -> mpsc::Receiver<Result<u32, String>> {
    let pool = pool.clone();
    on_a_thread(move || {
        let got = std::panic::catch_unwind(AssertUnwindSafe(|| {
            async_wrap::block_on(spawn_on(pool, move || value).checked())
        }));
        match got {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(err)) => Err(err.to_string()),
            Err(payload) => Err(panic_text(&*payload)),
        }
    })
}

#[test]
fn a_pool_whose_threads_cannot_start_fails_its_calls_naming_the_pool() {
    within(Duration::from_secs(20), || {
        let Ok(pool) = BlockingPool::builder()
            .max_threads(2)
            .thread_name("nostack")
            .stack_size(1 << 46)
            .build()
        else {
            return; // refused up front: fine
        };
        let pool = Arc::new(pool);
        for n in 0..5 {
            match call_on_a_thread(&pool, n).recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(v)) => assert_eq!(v, n), // the stack was granted after all
                Ok(Err(message)) => assert!(message.contains("nostack"), "call {n}: {message}"),
                Err(timeout) => {
                    panic!("call {n} on a pool whose threads cannot start hangs: {timeout}")
                }
            }
        }
        let report = pool.shutdown_timeout(Duration::from_secs(5));
        assert!(report.is_complete(), "{report:?}");
    });
}

// Before the fix: `thread_name("nul\0name")` is accepted by `build()`; the first call then panics on
// the caller's thread inside `std::thread::Builder::spawn` ("thread name may not contain
// interior null bytes": std's message, not the pool's), and the pool is left counting a thread
// that never started: the second call hangs, and `shutdown_timeout` never completes
// (`threads_left: 1`). 100 %.
#[test]
fn a_thread_name_with_a_nul_byte_fails_calls_or_the_build_but_never_hangs() {
    quiet_panics();
    within(Duration::from_secs(30), || {
        let Ok(pool) = BlockingPool::builder()
            .max_threads(1)
            .thread_name("nul\0name")
            .build()
        else {
            return; // refused up front: fine
        };
        let pool = Arc::new(pool);
        for n in 0..2 {
            match call_on_a_thread(&pool, 1).recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(v)) => assert_eq!(v, 1),
                Ok(Err(message)) => assert!(
                    message.starts_with("async_wrap"),
                    "call {n}: not refused by the pool but by std: {message}"
                ),
                Err(timeout) => {
                    panic!("call {n} on a pool whose thread name has a NUL byte hangs: {timeout}")
                }
            }
        }
        let report = pool.shutdown_timeout(Duration::from_secs(5));
        assert!(report.is_complete(), "{report:?}");
    });
}

/// Keeps a core busy until `stop` is set, or for `limit` at most.
fn spin_until(stop: &AtomicBool, limit: Duration) {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
        std::hint::spin_loop();
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// `cores` jobs on a pool, each keeping a core busy until the value is dropped (or for 20 s).
struct CoresOccupied {
    stop: Arc<AtomicBool>,
    calls: Option<thread::JoinHandle<()>>,
}

impl CoresOccupied {
    /// Starts the jobs on `pool` and waits until they all run.
    fn on(pool: &Arc<BlockingPool>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..cores())
            .map(|_| {
                let stop = stop.clone();
                spawn_on(pool.clone(), move || {
                    spin_until(&stop, Duration::from_secs(20));
                })
            })
            .collect();
        let calls = thread::spawn(move || {
            futures::executor::block_on(futures::future::join_all(spinners));
        });
        eventually("the CPU-bound jobs all run", || {
            pool.metrics().running == cores()
        });
        CoresOccupied {
            stop,
            calls: Some(calls),
        }
    }
}

impl Drop for CoresOccupied {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(calls) = self.calls.take() {
            let _ = calls.join();
        }
    }
}

/// CPU-bound jobs share the cores: beyond the cores the pool starts one thread for the jobs
/// queued behind them, not one per job (the time-only rule started one per job that had run a
/// millisecond, whether it blocked or used its core).
#[cfg(target_os = "linux")]
#[test]
fn cpu_bound_jobs_grow_the_pool_by_one_thread_beyond_the_cores_at_most() {
    let cores = cores();
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let jobs = 2 * cores + 4;
    let calls: Vec<_> = (0..jobs)
        .map(|_| spawn_on(pool.clone(), || crate::support::spin_for(30_000)))
        .collect();
    within(Duration::from_secs(20), move || {
        futures::executor::block_on(futures::future::join_all(calls));
    });
    let started = pool.metrics().threads_started;
    assert!(
        started <= cores as u64 + 1,
        "{jobs} CPU-bound jobs of 30 ms on {cores} cores started {started} threads"
    );
}

/// A short call queued behind as many CPU-bound jobs as there are cores gets a thread of its
/// own, and runs while they still spin.
#[test]
fn a_short_call_behind_cpu_bound_jobs_runs_while_they_still_run() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let occupied = CoresOccupied::on(&pool);
    let short = spawn_on(pool.clone(), || 7);
    let ran = within(Duration::from_secs(10), move || {
        futures::executor::block_on(short)
    });
    assert_eq!(ran, 7);
    assert_eq!(
        pool.metrics().running,
        cores(),
        "the CPU-bound jobs still run"
    );
    drop(occupied);
}

/// Jobs that block still get a thread each while CPU-bound jobs hold every core: four jobs
/// that can only return together (a barrier) all run.
#[test]
fn blocking_jobs_behind_cpu_bound_jobs_get_a_thread_each() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let occupied = CoresOccupied::on(&pool);
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let blocking: Vec<_> = (0..4)
        .map(|_| {
            let barrier = barrier.clone();
            spawn_on(pool.clone(), move || {
                barrier.wait();
            })
        })
        .collect();
    within(Duration::from_secs(10), move || {
        futures::executor::block_on(futures::future::join_all(blocking));
    });
    assert_eq!(
        pool.metrics().running,
        cores(),
        "the CPU-bound jobs still run"
    );
    drop(occupied);
}

/// Busy threads that wait (spinning) for a job queued behind them: the judgment starts no
/// thread for CPU-bound jobs beyond the cores, but a queue that makes no progress gets one
/// after a while, and the job runs.
#[test]
fn busy_threads_spinning_for_a_job_queued_behind_them_get_it_run() {
    let pool = Arc::new(BlockingPool::builder().max_threads(16).build().unwrap());
    let flag = Arc::new(AtomicBool::new(false));
    let waiters: Vec<_> = (0..=cores())
        .map(|_| {
            let flag = flag.clone();
            spawn_on(pool.clone(), move || {
                let start = Instant::now();
                while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(30) {
                    thread::yield_now();
                }
                flag.load(Ordering::Acquire)
            })
        })
        .collect();
    let setter = spawn_on(pool.clone(), move || flag.store(true, Ordering::Release));
    let set = within(Duration::from_secs(20), move || {
        futures::executor::block_on(async {
            let (set, ()) = futures::join!(futures::future::join_all(waiters), setter);
            set
        })
    });
    assert!(set.iter().all(|seen| *seen), "{set:?}");
}

/// Jobs that compute nearly all the time, with short pauses (a log write, a poll): a look may
/// catch a thread in a pause, but the thread's times say it is busy, and the pool stays near
/// the cores (it grew to 15-40 threads for 40 such jobs when a look at the state alone
/// decided).
#[cfg(target_os = "linux")]
#[test]
fn jobs_that_mostly_compute_with_short_pauses_stay_near_the_cores() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let calls: Vec<_> = (0..16)
        .map(|_| {
            spawn_on(pool.clone(), || {
                for _ in 0..8 {
                    crate::support::spin_for(4_000);
                    thread::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    within(Duration::from_secs(60), move || {
        futures::executor::block_on(futures::future::join_all(calls));
    });
    let started = pool.metrics().threads_started;
    assert!(
        started <= cores() as u64 + 3,
        "16 jobs computing 95 % of the time on {} cores started {started} threads",
        cores()
    );
}

/// Jobs asleep in calls shorter than the supervisor's look (700 us round trips): no job ever
/// runs a millisecond, but the threads are asleep nearly all the time, and the pool grows for
/// the jobs queued behind them (it stayed on one thread per core).
#[cfg(target_os = "linux")]
#[test]
fn jobs_asleep_in_calls_shorter_than_a_look_get_threads() {
    let pool = Arc::new(BlockingPool::builder().max_threads(64).build().unwrap());
    let calls: Vec<_> = (0..600)
        .map(|_| spawn_on(pool.clone(), || thread::sleep(Duration::from_micros(700))))
        .collect();
    within(Duration::from_secs(60), move || {
        futures::executor::block_on(futures::future::join_all(calls));
    });
    let started = pool.metrics().threads_started;
    assert!(
        started > cores() as u64 + 1,
        "600 jobs asleep 700 us each ran on {started} threads ({} cores)",
        cores()
    );
}
