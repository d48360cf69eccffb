//! What a wrapped call is: nothing runs until the first poll, a panic resumes in the awaiting
//! task, the future is `Send + Sync + Unpin + 'static` and runs under any executor, a dropped
//! future cancels its job (or lets its running body see `is_cancelled`), and a call an executor
//! loses or refuses says so.

use crate::support::{eventually, gated_job, poll_noop, within};
use async_wrap::{BlockingFuture, BlockingPool, async_wrap, is_cancelled, spawn_on};
use futures::FutureExt;
use futures::executor::block_on;
use std::any::Any;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use std::{panic, thread};

static ONE: BlockingPool = BlockingPool::with_max_threads(1).thread_name("one");

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_wrap(executor = ONE)]
fn counted() -> usize {
    RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn calling_runs_nothing_until_the_first_poll() {
    let before = RUNS.load(Ordering::SeqCst);
    let future = counted();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        before,
        "nothing ran before the poll"
    );
    drop(future);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        before,
        "a dropped, never-polled future runs nothing"
    );
    assert!(block_on(counted()) > before);
}

#[derive(Debug, PartialEq)]
struct Oops(u32);

#[async_wrap(executor = ONE)]
fn panics_with(payload: u32) -> ThreadId {
    if payload > 0 {
        panic::panic_any(Oops(payload));
    }
    thread::current().id()
}

fn payload(result: Result<ThreadId, Box<dyn Any + Send>>) -> Box<dyn Any + Send> {
    result.expect_err("the call should have panicked")
}

#[test]
fn a_panic_resumes_in_the_awaiting_task_with_its_payload_and_the_worker_lives_on() {
    let first = block_on(panics_with(0));
    let err = payload(block_on(AssertUnwindSafe(panics_with(7)).catch_unwind()));
    assert_eq!(err.downcast_ref::<Oops>(), Some(&Oops(7)));

    // A formatted panic keeps its message too (a `String` payload).
    let disk = std::hint::black_box(3);
    let err = payload(block_on(
        AssertUnwindSafe(async_wrap::spawn_on(&ONE, move || -> ThreadId {
            panic!("disk {disk} on fire")
        }))
        .catch_unwind(),
    ));
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("disk 3 on fire")
    );

    // The single worker survived both panics: the next call runs on the same thread.
    assert_eq!(block_on(panics_with(0)), first);
    assert!(ONE.metrics().panicked >= 2);
}

#[async_wrap]
fn boxed(n: u8) -> Box<u8> {
    Box::new(n)
}

fn assert_spawnable<F: Future + Send + Sync + Unpin + 'static>(_: &F) {}

#[test]
fn the_future_is_send_sync_unpin_and_static() {
    let future: BlockingFuture<Box<u8>> = boxed(1);
    assert_spawnable(&future);
    assert_eq!(*block_on(future), 1);
}

/// The doc comment and the `#[allow]` are kept on the wrapped function.
#[async_wrap]
#[allow(clippy::needless_pass_by_value)]
pub fn documented(v: Vec<u8>) -> usize {
    v.len()
}

#[test]
fn a_public_documented_function_keeps_working() {
    assert_eq!(block_on(documented(vec![1, 2, 3])), 3);
}

/// An executor that loses every job: the awaiting future must not hang.
struct Loses;

impl async_wrap::Executor for Loses {
    fn execute(&self, job: async_wrap::Job) -> Result<(), async_wrap::Rejected> {
        drop(job);
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        Some("lossy")
    }
}

static LOSES: Loses = Loses;

#[async_wrap(executor = LOSES)]
fn never_runs() -> u8 {
    unreachable!("the executor drops the job")
}

#[test]
fn a_job_dropped_by_its_executor_is_reported_not_lost() {
    let (call, line) = (never_runs(), line!());
    let err = payload_of(block_on(AssertUnwindSafe(call).catch_unwind()));
    let message = err.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        &format!(
            "async_wrap: executor `lossy` dropped the job of `{}` without running it (the call at \
             {}:{line}:25)",
            site!("never_runs"),
            file!()
        )
    );
}

static CLOSED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("closed");

#[async_wrap(executor = CLOSED)]
fn on_closed(n: u8) -> u8 {
    n
}

#[test]
fn a_refused_call_panics_naming_the_line_of_the_call() {
    CLOSED.shutdown();
    let (call, line) = (on_closed(1), line!());
    let err = payload_of(block_on(AssertUnwindSafe(call).catch_unwind()));
    let message = err.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with(&format!(
            "async_wrap: cannot run `{}` on executor `closed`: the executor has been shut down \
             (the call at ",
            site!("on_closed")
        )) && message.ends_with(&format!("{}:{line}:25)", file!())),
        "{message}"
    );
    // `checked` gives the same error as a value.
    let err = block_on(on_closed(1).checked()).unwrap_err();
    assert!(err.is_shut_down());
}

fn payload_of<T>(result: Result<T, Box<dyn Any + Send>>) -> Box<dyn Any + Send> {
    match result {
        Ok(_) => panic!("the call should have panicked"),
        Err(payload) => payload,
    }
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
    assert!(poll_noop(&mut first).is_pending());
    eventually("the first body to start", || {
        in_flight.load(Ordering::SeqCst) == 1
    });
    drop(first);
    async_wrap::block_on(job(&pool));
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
    let (blocker, gate) = gated_job(&pool);
    let blocker = thread::spawn(move || async_wrap::block_on(blocker));
    eventually("the blocker to run", || pool.metrics().running == 1);

    let ran = Arc::new(AtomicUsize::new(0));
    let mut queued = spawn_on(pool.clone(), {
        let ran = ran.clone();
        move || ran.fetch_add(1, Ordering::SeqCst)
    });
    assert!(poll_noop(&mut queued).is_pending());
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
    assert!(poll_noop(&mut future).is_pending());
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
    async_wrap::block_on(futures::future::join_all(calls));
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

#[test]
fn a_future_dropped_in_the_window_as_its_thread_takes_it_runs_exactly_zero_or_one_time() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut cancelled_seen = 0_u64;
        for i in 0..2000 {
            let runs2 = runs.clone();
            let mut f: BlockingFuture<()> = spawn_on(pool.clone(), move || {
                runs2.fetch_add(1, Ordering::SeqCst);
            });
            let _ = poll_noop(&mut f);
            if i % 3 == 0 {
                thread::yield_now();
            }
            drop(f);
            cancelled_seen = pool.metrics().cancelled;
        }
        eventually("every job to be accounted for", || {
            let m = pool.metrics();
            m.completed + m.cancelled == 2000 && m.running == 0 && m.queued == 0
        });
        let m = pool.metrics();
        assert_eq!(
            usize::try_from(m.completed).unwrap(),
            runs.load(Ordering::SeqCst),
            "{m:?}"
        );
        let _ = cancelled_seen;
        pool.shutdown();
    });
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
    assert_eq!(block_on(add(4, 5)), 9);
}
