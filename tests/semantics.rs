//! The contract of a wrapped call: laziness, panics, the future's traits, the pool's threads.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_wrap::{BlockingFuture, BlockingPool, async_wrap};
use futures::FutureExt;
use futures::executor::block_on;

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

#[test]
fn threads_are_named_after_the_pool() {
    static NAMED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("disk-io");
    let name = block_on(async_wrap::spawn_on(&NAMED, || {
        thread::current().name().map(str::to_owned)
    }));
    assert_eq!(name.as_deref(), Some("disk-io-1"));

    let name = block_on(async_wrap::spawn(|| {
        thread::current().name().map(str::to_owned)
    }));
    assert!(name.unwrap().starts_with("async-wrap-"));
}

#[test]
fn idle_threads_exit_after_keep_alive() {
    static SHORT: BlockingPool =
        BlockingPool::with_max_threads(4).keep_alive(Duration::from_millis(50));
    let (a, b) = block_on(async {
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
    block_on(async_wrap::spawn_on(&SHORT, || ()));
    assert_eq!(SHORT.metrics().threads_started, 3);
}

#[test]
fn an_idle_thread_is_reused_rather_than_a_new_one_started() {
    static REUSE: BlockingPool = BlockingPool::with_max_threads(8);
    let first = block_on(async_wrap::spawn_on(&REUSE, || thread::current().id()));
    for _ in 0..100 {
        assert_eq!(
            block_on(async_wrap::spawn_on(&REUSE, || thread::current().id())),
            first
        );
    }
    assert_eq!(REUSE.metrics().threads_started, 1);
    assert_eq!(REUSE.metrics().completed, 101);
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
            "async_wrap: executor `lossy` dropped the job of `semantics::never_runs` without \
             running it (the call at {}:{line}:25)",
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
        message.starts_with(
            "async_wrap: cannot run `semantics::on_closed` on executor `closed`: the executor \
             has been shut down (the call at "
        ) && message.ends_with(&format!("{}:{line}:25)", file!())),
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
