//! Per-thread state (`StatefulPool`): each thread builds its value once, a body gets its own
//! thread's value, values are dropped on their thread when it exits (and before a shutdown
//! resolves), and a failing initializer reaches the caller as a typed error naming the pool.

use crate::support::{eventually, within};
use async_wrap::{BlockingPool, StatefulPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::thread::ThreadId;
use std::time::Duration;

/// A stand-in for a database connection: where it was opened, and where it was closed.
struct Conn {
    opened_on: ThreadId,
    queries: usize,
    closed: &'static Mutex<Vec<(ThreadId, ThreadId)>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closed
            .lock()
            .unwrap()
            .push((self.opened_on, thread::current().id()));
    }
}

static OPENED: AtomicUsize = AtomicUsize::new(0);

static CLOSED: Mutex<Vec<(ThreadId, ThreadId)>> = Mutex::new(Vec::new());

fn open() -> Conn {
    OPENED.fetch_add(1, Ordering::SeqCst);
    Conn {
        opened_on: thread::current().id(),
        queries: 0,
        closed: &CLOSED,
    }
}

static DB: StatefulPool<Conn> = StatefulPool::new(
    BlockingPool::with_max_threads(2)
        .thread_name("db")
        .keep_alive(Duration::from_millis(50)),
    open,
);

#[test]
fn each_thread_builds_its_value_once_uses_it_on_that_thread_and_drops_it_there() {
    within(Duration::from_secs(30), || {
        let calls = (0..200).map(|_| {
            DB.call(|conn: &mut Conn| {
                assert_eq!(
                    conn.opened_on,
                    thread::current().id(),
                    "another thread's value"
                );
                conn.queries += 1;
                thread::sleep(Duration::from_micros(200));
            })
        });
        let done = futures::executor::block_on(futures::future::join_all(calls));
        assert!(done.iter().all(Result::is_ok));
        let opened = OPENED.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&opened),
            "{opened} values for a 2-thread pool"
        );
        // keep_alive: the threads exit, each dropping its value on itself.
        eventually("the threads to retire", || DB.pool().metrics().threads == 0);
        let closed = CLOSED.lock().unwrap().clone();
        assert_eq!(closed.len(), opened, "every value was dropped");
        assert!(
            closed
                .iter()
                .all(|(opened_on, dropped_on)| opened_on == dropped_on),
            "a value was dropped on another thread: {closed:?}"
        );
    });
}

static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

/// Fails twice (an error, then a panic), then succeeds.
fn flaky() -> Result<u32, String> {
    match ATTEMPTS.fetch_add(1, Ordering::SeqCst) {
        0 => Err("connection refused".to_owned()),
        1 => panic!("no such file"),
        n => Ok(u32::try_from(n).unwrap()),
    }
}

static FLAKY: StatefulPool<u32, String> = StatefulPool::fallible(
    BlockingPool::with_max_threads(1).thread_name("flaky"),
    flaky,
);

#[test]
fn a_failing_initializer_is_a_typed_error_naming_the_pool_and_is_tried_again() {
    within(Duration::from_secs(30), || {
        let call = || futures::executor::block_on(FLAKY.call(|n: &mut u32| *n));
        let first = call().unwrap_err();
        assert_eq!(
            (first.pool(), first.message()),
            ("flaky", "connection refused")
        );
        let second = call().unwrap_err();
        assert_eq!(second.message(), "the initializer panicked: no such file");
        assert_eq!(
            second.to_string(),
            "async_wrap: the thread state of pool `flaky` could not be built: the initializer panicked: no such file"
        );
        // The third attempt succeeds, on the same thread: the panic did not kill it.
        assert_eq!(call().unwrap(), 2);
        assert_eq!(call().unwrap(), 2, "the value is kept once built");
        let metrics = FLAKY.pool().metrics();
        assert_eq!(
            (metrics.threads_started, metrics.completed),
            (1, 4),
            "{metrics:?}"
        );
    });
}

static BUILT: AtomicUsize = AtomicUsize::new(0);

fn counter() -> Vec<u8> {
    BUILT.fetch_add(1, Ordering::SeqCst);
    Vec::new()
}

static SCRATCH: StatefulPool<Vec<u8>> =
    StatefulPool::new(BlockingPool::with_max_threads(1), counter);

#[test]
fn a_body_that_panics_resumes_in_the_caller_and_its_value_is_built_anew() {
    within(Duration::from_secs(30), || {
        let push = |byte: u8| {
            futures::executor::block_on(SCRATCH.call(move |buffer: &mut Vec<u8>| {
                buffer.push(byte);
                buffer.len()
            }))
            .unwrap()
        };
        assert_eq!(push(1), 1);
        assert_eq!(push(2), 2);
        let panicked = std::panic::catch_unwind(|| {
            futures::executor::block_on(SCRATCH.call(|buffer: &mut Vec<u8>| {
                buffer.push(3);
                panic!("half-written");
            }))
        });
        assert_eq!(
            panicked.unwrap_err().downcast_ref::<&str>(),
            Some(&"half-written")
        );
        // The half-changed value was dropped: the next call starts from a new one.
        assert_eq!(push(4), 1);
        assert_eq!(BUILT.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn shutdown_drops_every_value_on_its_thread_before_it_returns() {
    within(Duration::from_secs(30), || {
        static DROPPED: Mutex<Vec<(ThreadId, ThreadId)>> = Mutex::new(Vec::new());
        fn open_here() -> Conn {
            Conn {
                opened_on: thread::current().id(),
                queries: 0,
                closed: &DROPPED,
            }
        }
        let pool = Box::leak(Box::new(StatefulPool::new(
            BlockingPool::with_max_threads(2),
            open_here,
        )));
        let gate = Arc::new(std::sync::Barrier::new(2));
        let calls = (0..2).map(|_| {
            let gate = gate.clone();
            pool.call(move |conn: &mut Conn| {
                gate.wait();
                conn.queries
            })
        });
        futures::executor::block_on(futures::future::join_all(calls));
        pool.pool().shutdown();
        let dropped = DROPPED.lock().unwrap().clone();
        assert_eq!(dropped.len(), 2, "{dropped:?}");
        assert!(dropped.iter().all(|(a, b)| a == b));
    });
}

/// A connection of the attribute form's pool: its thread, and its queries so far.
struct Session {
    thread: ThreadId,
    queries: u32,
}

fn session() -> Session {
    Session {
        thread: thread::current().id(),
        queries: 0,
    }
}

static SESSIONS: StatefulPool<Session> = StatefulPool::new(
    BlockingPool::with_max_threads(1).thread_name("sessions"),
    session,
);

/// Counts this thread's queries: the caller passes `step` only, the pool gives `session`.
#[async_wrap::async_wrap(executor = SESSIONS, state)]
fn count(session: &mut Session, step: u32) -> (ThreadId, u32) {
    session.queries += step;
    (session.thread, session.queries)
}

#[test]
fn the_attribute_form_gives_the_body_its_threads_value() {
    within(Duration::from_secs(30), || {
        futures::executor::block_on(async {
            let (thread, first) = count(1).await.unwrap();
            let (same, second) = count(10).await.unwrap();
            assert_eq!((first, second), (1, 11), "one value, kept between calls");
            assert_eq!(thread, same);
            assert_ne!(thread, thread::current().id(), "it ran on the pool");
        });
        assert_eq!(SESSIONS.pool().metrics().threads_started, 1);
    });
}

/// A value that records which build it is, and what was done with it.
struct Numbered {
    number: usize,
    log: Vec<&'static str>,
}

static NUMBERED: AtomicUsize = AtomicUsize::new(0);

fn numbered() -> Numbered {
    Numbered {
        number: NUMBERED.fetch_add(1, Ordering::SeqCst),
        log: Vec::new(),
    }
}

static NESTING: StatefulPool<Numbered> = StatefulPool::new(
    BlockingPool::with_max_threads(1).thread_name("nesting"),
    numbered,
);

// A call nested in another call of the same pool, on the same thread, gets a value of its own;
// the outer call's value stays the thread's (it was replaced by the nested one's before).
#[test]
fn a_nested_call_of_the_same_pool_does_not_replace_the_outer_value() {
    within(Duration::from_secs(30), || {
        let call = |f: fn(&mut Numbered) -> usize| futures::executor::block_on(NESTING.call(f));
        assert_eq!(
            call(|v| {
                v.log.push("warm");
                v.number
            })
            .unwrap(),
            0
        );
        let inner = call(|v| {
            v.log.push("outer-before");
            let inner = async_wrap::block_on(NESTING.call(|v| {
                v.log.push("inner");
                v.number
            }));
            v.log.push("outer-after");
            inner.unwrap()
        });
        assert_eq!(
            inner.unwrap(),
            1,
            "the nested call built a value of its own"
        );
        let (number, log) =
            futures::executor::block_on(NESTING.call(|v| (v.number, v.log.clone()))).unwrap();
        assert_eq!(
            (number, log),
            (0, vec!["warm", "outer-before", "outer-after"])
        );
    });
}

/// A value whose `Drop` panics.
struct Explodes;

impl Drop for Explodes {
    fn drop(&mut self) {
        panic!("a user's Drop panics");
    }
}

fn explodes() -> Explodes {
    Explodes
}

static EXPLODING: StatefulPool<Explodes> = StatefulPool::new(
    BlockingPool::with_max_threads(1)
        .thread_name("exploding")
        .queue_capacity(0, async_wrap::QueueFull::RunOnCaller),
    explodes,
);

// A value built on a thread that is not the pool's (a call run on the caller) is dropped by that
// thread's thread-local destructors when it exits, where a panic would abort the process.
#[test]
fn a_panicking_drop_of_a_value_on_another_thread_does_not_abort() {
    within(Duration::from_secs(30), || {
        let gate = Arc::new(std::sync::Barrier::new(2));
        let busy = EXPLODING.call({
            let gate = gate.clone();
            move |_: &mut Explodes| {
                gate.wait();
                gate.wait();
            }
        });
        let busy = thread::spawn(move || futures::executor::block_on(busy));
        gate.wait();
        // The only thread is busy and the queue holds nothing: this call runs on `caller`.
        let caller = thread::spawn(|| {
            let here = thread::current().id();
            futures::executor::block_on(
                EXPLODING.call(move |_: &mut Explodes| thread::current().id() == here),
            )
        });
        assert_eq!(caller.join().unwrap().ok(), Some(true), "ran on the caller");
        gate.wait();
        assert!(busy.join().unwrap().is_ok());
        // Reaching here means `caller`'s exit, which dropped its value, did not abort.
        EXPLODING.pool().shutdown();
    });
}

/// State whose drop is slow and counted.
struct SlowState;

static STATE_BUILT: AtomicUsize = AtomicUsize::new(0);

static STATE_DROPPED: AtomicUsize = AtomicUsize::new(0);

impl Drop for SlowState {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(100));
        STATE_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

fn slow_state() -> SlowState {
    STATE_BUILT.fetch_add(1, Ordering::SeqCst);
    SlowState
}

static SLOW_STATES: StatefulPool<SlowState> = StatefulPool::new(
    BlockingPool::with_max_threads(2).thread_name("slow-states"),
    slow_state,
);

#[test]
fn the_async_shutdown_of_a_stateful_pool_resolves_after_every_value_is_dropped() {
    within(Duration::from_secs(20), || {
        let barrier = Arc::new(Barrier::new(2));
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                SLOW_STATES.call(move |_state: &mut SlowState| {
                    barrier.wait();
                })
            })
            .collect();
        for r in async_wrap::block_on(futures::future::join_all(calls)) {
            r.unwrap();
        }
        assert_eq!(STATE_BUILT.load(Ordering::SeqCst), 2);
        let report = async_wrap::block_on(SLOW_STATES.pool().shutdown_async());
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(
            STATE_DROPPED.load(Ordering::SeqCst),
            2,
            "the pool is reported drained while its thread values are still being dropped"
        );
        let refused = async_wrap::block_on(SLOW_STATES.call(|_: &mut SlowState| ()).checked());
        assert!(refused.unwrap_err().to_string().contains("slow-states"));
    });
}

/// What the run-time pool's threads build from: set before its first use, as a path read from
/// the command line would be.
static DATABASE_PATH: Mutex<Option<String>> = Mutex::new(None);

/// A pool built at run time, in a `LazyLock`: its initializer captures a value read when the
/// pool is first used, and fails while that value is missing.
static RUNTIME_BUILT: std::sync::LazyLock<StatefulPool<String, String>> =
    std::sync::LazyLock::new(|| {
        let path = DATABASE_PATH.lock().unwrap().clone();
        let opened = Arc::new(AtomicUsize::new(0));
        StatefulPool::with_fallible_init(
            BlockingPool::with_max_threads(1).thread_name("runtime-built"),
            move || {
                let n = opened.fetch_add(1, Ordering::SeqCst);
                match &path {
                    Some(path) if n > 0 => Ok(format!("{path} (open {n})")),
                    Some(_) => Err("the first open fails".to_owned()),
                    None => Err("no path".to_owned()),
                }
            },
        )
    });

#[async_wrap::async_wrap(executor = RUNTIME_BUILT, state)]
fn connection_name(connection: &mut String) -> String {
    connection.clone()
}

#[test]
fn a_pool_built_at_run_time_captures_its_initializer_and_works_with_the_attribute() {
    within(Duration::from_secs(30), || {
        *DATABASE_PATH.lock().unwrap() = Some("/tmp/db.sqlite".to_owned());
        futures::executor::block_on(async {
            let err = connection_name().await.unwrap_err();
            assert_eq!(err.pool(), "runtime-built");
            assert_eq!(err.message(), "the first open fails");
            // Tried again, and kept: the same value for the next calls.
            assert_eq!(connection_name().await.unwrap(), "/tmp/db.sqlite (open 1)");
            assert_eq!(connection_name().await.unwrap(), "/tmp/db.sqlite (open 1)");
            let direct = RUNTIME_BUILT.call(|connection: &mut String| connection.len());
            assert_eq!(direct.await.unwrap(), "/tmp/db.sqlite (open 1)".len());
        });
    });
}

#[test]
fn an_infallible_initializer_built_at_run_time_runs_once_per_thread() {
    within(Duration::from_secs(30), || {
        let base = thread::current().name().map(str::len).unwrap_or_default();
        let built = Arc::new(AtomicUsize::new(0));
        let counting = built.clone();
        let pool: &'static StatefulPool<Vec<usize>> = Box::leak(Box::new(StatefulPool::with_init(
            BlockingPool::with_max_threads(1),
            move || {
                counting.fetch_add(1, Ordering::SeqCst);
                vec![base]
            },
        )));
        futures::executor::block_on(async {
            for n in 1..=3 {
                let len = pool.call(move |seen: &mut Vec<usize>| {
                    seen.push(n);
                    seen.len()
                });
                assert_eq!(len.await.unwrap(), n + 1);
            }
        });
        assert_eq!(built.load(Ordering::SeqCst), 1);
        pool.pool().shutdown();
    });
}
