//! Calls on a process pool (`#[async_wrap(process)]`): results, arguments and panics come back
//! as with threads (large values, values that do not round-trip, odd panic payloads, panics in
//! helper threads and while encoding the result included); a worker that dies, passes its
//! deadline or whose future is dropped fails only its call, with a typed error naming the
//! function and the cause; a body may call a process function; each outcome counts in the
//! call-site statistics as documented; no child is left.
//!
//! A test target without the libtest harness: the pool re-executes this binary as its workers,
//! so `main` calls `async_wrap::process::init()` first, then runs the scenarios one by one, each
//! under a watchdog. The oversized cases allocate about 2 GiB each, in this process and in a
//! worker.

// Test code: casts of pids and of small, known values, and a `main` that lists every case.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::similar_names,
    clippy::too_many_lines
)]

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_wrap::async_wrap;
use async_wrap::process::{ProcessErrorKind, ProcessPool, WorkerStderr};
use futures::executor::block_on;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

mod support;
use support::eventually;

static PROCS: ProcessPool = ProcessPool::with_max_workers(2).named("procs");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    label: String,
}

#[async_wrap(executor = PROCS, process)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}
const ADD_LINE: u32 = line!() - 3;

#[async_wrap(executor = PROCS, process)]
fn moved((x, y): (i64, i64), mut point: Point) -> Point {
    point.x += x * y;
    point.label.push('!');
    point
}

#[async_wrap(executor = PROCS, process)]
fn checksum(data: Vec<u8>) -> (usize, u64) {
    (data.len(), data.iter().map(|b| u64::from(*b)).sum())
}

// Borrowed arguments: serialized at the call, so the future borrows nothing.
#[async_wrap(executor = PROCS, process)]
fn describe(name: &str, bytes: &[u8], path: &Path, point: &Point) -> String {
    let (len, path, pid) = (bytes.len(), path.display(), std::process::id());
    format!("{name}:{len}:{path}:{}{}:{pid}", point.label, point.x)
}

// An output just short of clippy's `type_complexity` (`cargo clippy --all-targets` lints this
// file): the wrapper must not tip it over.
#[async_wrap(executor = PROCS, process)]
fn tally(words: Vec<String>) -> Result<Vec<(String, usize)>, Option<(u32, String)>> {
    match words.first() {
        None => Err(None),
        Some(_) => Ok(words
            .into_iter()
            .map(|word| {
                let n = word.len();
                (word, n)
            })
            .collect()),
    }
}

#[async_wrap(executor = PROCS, process)]
fn pid() -> u32 {
    // A body that prints must not corrupt the pipe to the pool.
    println!("a worker's stdout is its stderr");
    std::process::id()
}

#[async_wrap(executor = PROCS, process)]
fn factorial(n: u64) -> u64 {
    if n <= 1 { 1 } else { n * factorial(n - 1) }
}

#[async_wrap(executor = PROCS, process)]
fn boom(what: String) -> u32 {
    panic!("boom: {what}")
}

/// Dies the way it is told to.
#[async_wrap(executor = PROCS, process)]
fn die(how: String) -> u32 {
    match how.as_str() {
        "abort" => std::process::abort(),
        // Rust's stack-overflow handler catches a raised SIGSEGV and returns: the default
        // action is restored first, as for a real fault outside the guard page.
        // SAFETY: `signal` and `raise` read no memory of ours.
        "segv" => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
            0
        },
        "exit" => std::process::exit(3),
        _ => 7,
    }
}

/// Writes its pid to `path`, then hangs.
#[async_wrap(executor = PROCS, process)]
fn hang(path: PathBuf) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(600));
    1
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("async-wrap-{}-{name}", std::process::id()))
}

/// The pid `hang` wrote to `path`, once it has.
fn pid_in(path: &PathBuf) -> u32 {
    let mut pid = None;
    eventually("the hanging body writes its pid", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

/// Whether process `pid` is gone (or a zombie whose parent is not us: init reaps it).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap_or("");
            let parent: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            state == "Z" && parent != std::process::id()
        }
    }
}

/// The children of this process, from /proc: zombies included.
fn children() -> Vec<(u32, String)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, after) = stat.rsplit_once(')')?;
            let mut fields = after.split_whitespace();
            let state = fields.next()?.to_owned();
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == me).then_some((pid, state))
        })
        .collect()
}

fn results_come_back() {
    async_wrap::set_call_statistics(true);
    block_on(async {
        assert_eq!(add(2, 3).await.unwrap(), 5);
        let point = Point {
            x: 1,
            label: "p".into(),
        };
        let moved_point = moved((2, 3), point).await.unwrap();
        assert_eq!(
            moved_point,
            Point {
                x: 7,
                label: "p!".into()
            }
        );
        let big = vec![1u8; 1 << 20];
        assert_eq!(checksum(big).await.unwrap(), (1 << 20, 1 << 20));
        assert_ne!(pid().await.unwrap(), std::process::id());
        assert_eq!(
            tally(vec!["ab".into()]).await.unwrap(),
            Ok(vec![("ab".into(), 2)])
        );
        assert_eq!(tally(vec![]).await.unwrap(), Err(None));
        // Recursion inside the body stays a plain call, in the worker.
        assert_eq!(factorial(10).await.unwrap(), 3_628_800);
    });
    // The call-site statistics count process calls like any other.
    let stats = async_wrap::call_sites()
        .get(concat!(module_path!(), "::add"))
        .cloned()
        .expect("add's call site is registered");
    assert_eq!((stats.calls, stats.completed), (1, 1));
    assert_eq!(stats.site.line(), ADD_LINE);
}

fn any_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(add(40, 2)).unwrap(), 42);
    assert_eq!(smol::block_on(add(1, 1)).unwrap(), 2);
    let spawned = runtime.block_on(async { tokio::spawn(add(5, 5)).await.unwrap() });
    assert_eq!(spawned.unwrap(), 10);
}

fn panics_resume_with_message_and_location() {
    let payload = panic::catch_unwind(AssertUnwindSafe(|| block_on(boom("bad input".into()))))
        .expect_err("the body's panic is resumed in the caller");
    let message = payload.downcast_ref::<String>().expect("a String payload");
    assert!(
        message.starts_with("boom: bad input (at tests/process_calls.rs:"),
        "{message}"
    );
    assert!(message.contains("of pool `procs`"), "{message}");
    // The worker lives on.
    assert_eq!(block_on(die("no".into())).unwrap(), 7);
    assert!(PROCS.metrics().panicked >= 1);
}

fn a_crash_fails_only_its_call() {
    for (how, signal, code) in [
        ("abort", Some(6), None),
        ("segv", Some(11), None),
        ("exit", None, Some(3)),
    ] {
        let crashed_before = PROCS.metrics().crashed;
        let err = block_on(die(how.into())).expect_err("the worker died");
        assert_eq!(err.function(), concat!(module_path!(), "::die"));
        assert_eq!(err.pool(), "procs");
        match err.kind() {
            ProcessErrorKind::Crashed {
                signal: got_signal,
                exit_code,
                ..
            } => assert_eq!((*got_signal, *exit_code), (signal, code), "{how}: {err}"),
            other => panic!("{how}: {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "async_wrap: `{}::die` failed on process pool `procs`",
                module_path!()
            )),
            "{text}"
        );
        if let Some(signal) = signal {
            assert!(text.contains(&format!("signal {signal}")), "{text}");
        }
        assert_eq!(PROCS.metrics().crashed, crashed_before + 1);
        // The pool replaced it: the next calls run.
        assert_eq!(block_on(add(1, 2)).unwrap(), 3);
    }
    // Calls running beside a crash are not affected.
    block_on(async {
        let (crash, fine) = futures::join!(die("abort".into()), checksum(vec![2; 1000]));
        assert!(crash.is_err());
        assert_eq!(fine.unwrap(), (1000, 2000));
    });
}

fn a_deadline_kills_the_worker() {
    let path = temp_path("deadline");
    let started = Instant::now();
    let err = block_on(hang(path.clone()).deadline(Duration::from_millis(300)))
        .expect_err("past its deadline");
    assert_eq!(
        err.kind(),
        &ProcessErrorKind::DeadlineExceeded(Duration::from_millis(300))
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let worker = pid_in(&path);
    eventually("the hung worker is killed and reaped", || gone(worker));
    let _ = std::fs::remove_file(&path);
    assert_eq!(block_on(add(2, 2)).unwrap(), 4);
}

fn dropping_a_running_call_kills_its_worker() {
    let path = temp_path("drop");
    let mut call = Box::pin(hang(path.clone()));
    let waker = futures::task::noop_waker();
    assert!(
        std::future::Future::poll(call.as_mut(), &mut std::task::Context::from_waker(&waker))
            .is_pending()
    );
    let worker = pid_in(&path);
    let killed_before = PROCS.metrics().killed;
    drop(call);
    eventually(
        "the worker of the dropped call is killed and reaped",
        || gone(worker),
    );
    eventually("the call is counted as killed", || {
        PROCS.metrics().killed > killed_before && PROCS.metrics().running == 0
    });
    let _ = std::fs::remove_file(&path);
    // Its place is free: two calls can run at once again (the pool has two workers).
    block_on(async {
        let (a, b) = futures::join!(add(1, 1), add(2, 2));
        assert_eq!((a.unwrap(), b.unwrap()), (2, 4));
    });
}

fn a_future_dropped_before_its_first_poll_runs_nothing() {
    let path = temp_path("never");
    drop(hang(path.clone()));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!path.exists());
}

/// Calls `add` from inside a worker: the worker starts workers of its own.
#[async_wrap(executor = PROCS, process)]
fn nested(a: u64) -> (u32, u64) {
    (std::process::id(), block_on(add(a, 1)).unwrap())
}

fn a_body_may_call_a_process_function() {
    let (worker, sum) = block_on(nested(41)).unwrap();
    assert_ne!(worker, std::process::id());
    assert_eq!(sum, 42);
}

fn an_unknown_function_is_an_error() {
    static SITE: async_wrap::__private::CallSite =
        async_wrap::__private::call_site(concat!(module_path!(), "::nothing"), "PROCS", "", 0);
    use async_wrap::__private::process::{Request, call, portable};
    let call = call(&PROCS, &SITE, Request::new("nothing#0"), portable::<u32>());
    let err = block_on(call).expect_err("no such function in the worker");
    assert_eq!(
        err.kind(),
        &ProcessErrorKind::UnknownFunction("nothing#0".into())
    );
}

/// One worker: consecutive calls reach the same worker process.
static SOLO: ProcessPool = ProcessPool::with_max_workers(1).named("solo");

#[async_wrap(executor = SOLO, process)]
fn solo_pid() -> u32 {
    std::process::id()
}

fn scope_a() -> u32 {
    #[async_wrap(executor = PROCS, process)]
    fn twin(x: u32) -> u32 {
        x + 1
    }
    block_on(twin(10)).unwrap()
}

fn scope_b() -> u32 {
    #[async_wrap(executor = PROCS, process)]
    fn twin(x: u32) -> u32 {
        x + 2
    }
    block_on(twin(10)).unwrap()
}

/// Before the fix (fixed by: the key now holds the file, line and column of the name): two
/// `process` functions with the same name and signature, each inside a different
/// function of the same module (the attribute accepts both), get the same key (module path,
/// name, signature hash): the worker runs one of them for both calls. A silently wrong result.
fn same_name_in_two_scopes_runs_the_right_body() {
    assert_eq!(
        (scope_a(), scope_b()),
        (11, 12),
        "one call ran the other function's body"
    );
}

#[async_wrap(executor = SOLO, process)]
fn rethrow(what: String) -> u32 {
    // A panic caught inside the body (a library that recovers from its own panics) ...
    let _ = panic::catch_unwind(|| panic!("stale inner panic"));
    // ... then the body's real panic, re-raised without the hook (as `futures` and `rayon` do
    // when they propagate a child task's panic).
    panic::resume_unwind(Box::new(what))
}

#[async_wrap(executor = SOLO, process)]
fn recover_quietly() -> u32 {
    let _ = panic::catch_unwind(|| panic!("an old, recovered panic"));
    5
}

#[async_wrap(executor = SOLO, process)]
fn resume(what: String) -> u32 {
    panic::resume_unwind(Box::new(what))
}

fn panic_message(f: impl FnOnce() + panic::UnwindSafe) -> String {
    let payload = panic::catch_unwind(f).expect_err("the body panicked");
    payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a String payload")
}

/// Before the fix (fixed by: the records are cleared before each call, and the message is the
/// payload's): the resumed panic carried the message and location of an earlier panic that the body
/// caught itself, not the payload it really panicked with (`resume_unwind` skips the hook, and
/// the hook's thread-local is never cleared). Across calls too: a panic recovered in one call
/// becomes the message of the next call's `resume_unwind`.
fn resume_unwind_reports_its_own_payload() {
    let message = panic_message(|| {
        block_on(rethrow("the real failure".into())).unwrap();
    });
    let same_call_ok = message.starts_with("the real failure");
    assert_eq!(block_on(recover_quietly()).unwrap(), 5);
    let message2 = panic_message(|| {
        block_on(resume("second call's failure".into())).unwrap();
    });
    let next_call_ok = message2.starts_with("second call's failure");
    assert!(
        same_call_ok && next_call_ok,
        "same call: {message:?}\nnext call: {message2:?}"
    );
}

static BIG: ProcessPool = ProcessPool::with_max_workers(1).named("big");

#[async_wrap(executor = BIG, process)]
fn big_len(data: ByteBuf) -> u64 {
    data.len() as u64
}

#[async_wrap(executor = BIG, process)]
fn big_result(n: u64) -> ByteBuf {
    ByteBuf::from(vec![7u8; n as usize])
}

const OVER_LIMIT: usize = (1 << 30) + 16;

/// Before the fix (fixed by: a `Serialization` error, before any worker is asked): an argument
/// over the 1 GiB frame limit is reported as `Crashed` (the worker "exited
/// with code 0 while running it", which it never ran): the pool's `send` fails with
/// `InvalidInput` and the driver treats every send error as a death.
fn an_oversized_argument_is_not_a_crash() {
    let err = block_on(big_len(ByteBuf::from(vec![1u8; OVER_LIMIT]))).expect_err("too large");
    assert!(
        !matches!(err.kind(), ProcessErrorKind::Crashed { .. }),
        "wrong kind: {err}"
    );
}

/// Before the fix (fixed by: the worker replies with a `Serialization` error naming the size): a
/// result over the limit: the worker cannot send it, exits with code 0, and the call
/// fails as `Crashed` (exit code 0) instead of a serialization error naming the size.
fn an_oversized_result_is_not_a_crash() {
    let err = block_on(big_result(OVER_LIMIT as u64)).expect_err("too large");
    assert!(
        !matches!(err.kind(), ProcessErrorKind::Crashed { .. }),
        "wrong kind: {err}"
    );
}

/// 200 MiB each way.
fn large_values_round_trip() {
    let n = 200 << 20;
    assert_eq!(
        block_on(big_len(ByteBuf::from(vec![3u8; n]))).unwrap(),
        n as u64
    );
    let back = block_on(big_result(n as u64)).unwrap();
    assert!(back.len() == n && back.iter().all(|b| *b == 7));
}

static HOSTILE: ProcessPool = ProcessPool::with_max_workers(1)
    .named("hostile")
    .kill_grace(Duration::from_millis(100));

#[derive(Debug)]
struct BadDrop;

impl Drop for BadDrop {
    fn drop(&mut self) {
        panic!("a payload whose Drop panics");
    }
}

#[async_wrap(executor = HOSTILE, process)]
fn odd_panic(kind: u8) -> u32 {
    match kind {
        0 => std::panic::panic_any(42u8),
        1 => std::panic::panic_any(BadDrop),
        2 => panic!("{}", "é".repeat(1 << 20)),
        _ => 0,
    }
}

/// Non-string payloads, a payload whose Drop panics, a 2 MiB message.
fn odd_panic_payloads() {
    let m = panic_message(|| {
        block_on(odd_panic(0)).unwrap();
    });
    assert!(m.starts_with("Box<dyn Any>"), "{m}");
    let m = panic_message(|| {
        block_on(odd_panic(1)).unwrap();
    });
    assert!(m.starts_with("Box<dyn Any>"), "{m}");
    let m = panic_message(|| {
        block_on(odd_panic(2)).unwrap();
    });
    assert!(m.starts_with(&"é".repeat(1 << 20)), "{}", &m[..40]);
    assert_eq!(block_on(odd_panic(9)).unwrap(), 0);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Sparse {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    a: Option<u8>,
    b: u8,
}

#[async_wrap(executor = PROCS, process)]
fn sparse(s: Sparse, tail: Vec<u8>) -> (u8, usize) {
    (s.b, tail.len())
}

/// Before the fix (fixed by: unread argument or result bytes are a `Serialization` error): a serde
/// type that postcard cannot carry (`skip_serializing_if`, accepted by the type
/// check) gives a silently wrong result: the worker decodes the arguments shifted and nothing
/// checks that it consumed all their bytes. `(0, 3)` expected, `(3, 0)` returned.
fn arguments_that_do_not_round_trip_are_an_error() {
    let got = block_on(sparse(Sparse { a: None, b: 0 }, vec![0, 0, 0]));
    assert!(
        matches!(got, Ok((0, 3)) | Err(_)),
        "a silently wrong result: {got:?} (expected (0, 3) or an error)"
    );
}

#[async_wrap(executor = SOLO, process)]
fn helper_thread_panics() -> u32 {
    match std::thread::spawn(|| -> u32 { panic!("in a helper thread") }).join() {
        Ok(n) => n,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Before the fix (fixed by: the hook's record of the last panic on any thread is used when its
/// message matches): a panic propagated from a helper thread (`join` then `resume_unwind`, what
/// `thread::scope`-less code and rayon do) comes back with "an unknown location": the hook
/// recorded the location on the helper thread.
fn a_panic_from_a_helper_thread_keeps_its_location() {
    let message = panic_message(|| {
        block_on(helper_thread_panics()).unwrap();
    });
    assert!(
        message.starts_with("in a helper thread (at tests/process_calls.rs:"),
        "{message}"
    );
}

#[derive(Debug)]
struct PanicsWhenSent;

impl serde::Serialize for PanicsWhenSent {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Serialize panicked")
    }
}

impl<'de> serde::Deserialize<'de> for PanicsWhenSent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| PanicsWhenSent)
    }
}

#[async_wrap(executor = SOLO, process)]
fn result_panics_when_sent() -> PanicsWhenSent {
    PanicsWhenSent
}

/// Before the fix (fixed by: the result is encoded inside the `catch_unwind`): user code that
/// panics while the worker encodes the result (a `Serialize` impl) is
/// outside the shim's `catch_unwind`: the worker's main thread dies (exit code 101) and the
/// call fails as `Crashed` instead of resuming the panic (a panicking `Deserialize` of the
/// arguments is resumed, the same user code one step earlier).
fn a_panic_while_encoding_the_result_is_resumed() {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| block_on(result_panics_when_sent())));
    match outcome {
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(message.starts_with("Serialize panicked"), "{message}");
        }
        Ok(result) => panic!("not resumed as a panic: {result:?}"),
    }
    assert_eq!(block_on(solo_pid()).map(|_| ()), Ok(()));
}

/// The future's auto traits, whatever `T`.
fn the_future_is_send_sync_unpin_static() {
    fn check<T: Send + Sync + Unpin + 'static>() {}
    check::<async_wrap::process::ProcessFuture<std::cell::Cell<u8>>>();
    check::<async_wrap::process::ProcessFuture<*const u8>>();
}

static NO_PROGRAM: ProcessPool = ProcessPool::with_max_workers(1)
    .named("no-program")
    .program("/nonexistent/async-wrap-worker")
    .kill_grace(Duration::ZERO);

static COUNTED: ProcessPool = ProcessPool::with_max_workers(1).named("counted");

#[async_wrap(executor = NO_PROGRAM, process)]
fn never_starts() -> u32 {
    1
}

#[async_wrap(executor = COUNTED, process)]
fn counted_abort() -> u32 {
    std::process::abort()
}

#[async_wrap(executor = COUNTED, process)]
fn counted_hang() -> u32 {
    std::thread::sleep(Duration::from_secs(600));
    1
}

/// The statistics of the call site of this binary's function `name`.
fn site(name: &str) -> async_wrap::CallStats {
    async_wrap::call_sites()
        .get(&format!("{}::{name}", module_path!()))
        .cloned()
        .unwrap_or_else(|| panic!("no call site {name}"))
}

/// Before the fix (fixed by: a call that never reached a worker counts as refused): a call whose
/// worker could not start counted in the call-site statistics as `panicked`, with a run time,
/// though no body ran. Also pins what is documented (`ProcessPool`, "Call-site statistics"): a
/// crash and a kill at the deadline count as `panicked`.
fn process_outcomes_count_in_call_site_statistics_as_documented() {
    let err = block_on(never_starts()).expect_err("no such program");
    assert!(matches!(err.kind(), ProcessErrorKind::Start(_)), "{err}");
    let stats = site("never_starts");
    assert_eq!(
        (stats.calls, stats.in_flight, stats.refused, stats.panicked),
        (1, 0, 1, 0),
        "{stats:?}"
    );
    assert_eq!(stats.run_time.count(), 0);

    let err = block_on(counted_abort()).expect_err("it aborts");
    assert!(
        matches!(err.kind(), ProcessErrorKind::Crashed { .. }),
        "{err}"
    );
    let err = block_on(counted_hang().deadline(Duration::from_millis(200))).expect_err("hangs");
    assert!(
        matches!(err.kind(), ProcessErrorKind::DeadlineExceeded(_)),
        "{err}"
    );
    for name in ["counted_abort", "counted_hang"] {
        let stats = site(name);
        assert_eq!(
            (
                stats.calls,
                stats.in_flight,
                stats.panicked,
                stats.run_time.count()
            ),
            (1, 0, 1, 1),
            "{name}: {stats:?}"
        );
    }
}

fn no_child_is_left() {
    for pool in [&PROCS, &SOLO, &HOSTILE, &BIG, &NO_PROGRAM, &COUNTED] {
        pool.shutdown();
    }
    assert_eq!(children(), Vec::new(), "every worker was reaped");
}

/// A pool built at run time: its settings read when it is first used.
static LAZY_PROCS: std::sync::LazyLock<ProcessPool> = std::sync::LazyLock::new(|| {
    let workers = std::env::var("NO_SUCH_SETTING").map_or(1, |v| v.parse().unwrap_or(1));
    ProcessPool::with_max_workers(workers).named("lazy-procs")
});

#[async_wrap(executor = LAZY_PROCS, process)]
fn doubled_elsewhere(n: u64) -> (u64, u32) {
    (n * 2, std::process::id())
}

fn a_lazy_lock_pool_runs_calls_in_its_workers() {
    let (doubled, worker) = block_on(doubled_elsewhere(21)).expect("the call ran");
    assert_eq!(doubled, 42);
    assert_ne!(worker, std::process::id(), "it ran in a worker process");
    assert_eq!(LAZY_PROCS.metrics().completed, 1);
    LAZY_PROCS.shutdown();
}

static LENIENT: ProcessPool = ProcessPool::with_max_workers(1)
    .named("lenient")
    .panics_as_errors()
    .worker_stderr(WorkerStderr::Null);

#[async_wrap(executor = LENIENT, process)]
fn panics_into_an_error(input: String) -> usize {
    assert!(input.is_ascii(), "not ascii: {input}");
    input.len()
}

fn a_pool_with_panics_as_errors_returns_the_panic_as_an_error() {
    assert_eq!(block_on(panics_into_an_error("abc".into())).unwrap(), 3);
    let err = block_on(panics_into_an_error("é".into())).expect_err("the body panicked");
    let ProcessErrorKind::Panicked {
        message,
        location,
        pid,
    } = err.kind()
    else {
        panic!("not a Panicked error: {err:?}");
    };
    assert_eq!(message, "not ascii: é");
    assert!(
        location.starts_with("tests/process_calls.rs:"),
        "{location}"
    );
    assert_ne!(*pid, std::process::id());
    assert!(
        err.to_string().contains("panicked in worker process"),
        "{err}"
    );
    // The worker survives its body's panic: the next call runs in the same process.
    assert_eq!(block_on(panics_into_an_error("de".into())).unwrap(), 2);
    let metrics = LENIENT.metrics();
    assert_eq!((metrics.completed, metrics.panicked), (2, 1), "{metrics:?}");
    assert_eq!(metrics.workers_started, 1, "{metrics:?}");
    LENIENT.shutdown();
}

const STDERR_LOG: &str = "/tmp/async-wrap-process-calls-worker-stderr.log";

static LOGGED: ProcessPool = ProcessPool::with_max_workers(1)
    .named("logged")
    .worker_stderr(WorkerStderr::AppendTo(STDERR_LOG));

static UNLOGGABLE: ProcessPool = ProcessPool::with_max_workers(1)
    .named("unloggable")
    .worker_stderr(WorkerStderr::AppendTo("/no/such/dir/workers.log"));

#[async_wrap(executor = LOGGED, process)]
fn writes_to_stderr(marker: String) -> u32 {
    eprintln!("{marker}");
    panic!("a panic for the log: {marker}");
}

#[async_wrap(executor = UNLOGGABLE, process)]
fn cannot_open_its_log() -> u32 {
    1
}

fn a_workers_stderr_goes_where_the_pool_says() {
    let _ = std::fs::remove_file(STDERR_LOG);
    let marker = format!("marker {}", std::process::id());
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(writes_to_stderr(marker.clone()))
    }));
    assert!(caught.is_err(), "the body panicked");
    LOGGED.shutdown();
    let log = std::fs::read_to_string(STDERR_LOG).expect("the workers' log");
    assert!(log.contains(&marker), "what the body printed: {log:?}");
    assert!(
        log.contains(&format!("a panic for the log: {marker}")),
        "the panic's message: {log:?}"
    );
    let _ = std::fs::remove_file(STDERR_LOG);
    let err = block_on(cannot_open_its_log()).expect_err("no log, no worker");
    assert!(
        matches!(err.kind(), ProcessErrorKind::Start(why) if why.contains("/no/such/dir/workers.log")),
        "{err}"
    );
}

/// A `process` function taking `&str`, `&[u8]`, `&Path` and `&u32` runs in a worker with
/// the values the caller lent, and its future outlives the borrows (it is `'static`).
fn borrowed_arguments_are_serialized_at_the_call() {
    fn is_static<T: 'static>(_: &T) {}
    let future = {
        let name = String::from("report");
        let bytes = vec![7_u8; 3];
        let path = PathBuf::from("/tmp/in.txt");
        let point = Point {
            x: 5,
            label: "p".into(),
        };
        describe(&name, &bytes, &path, &point)
        // The borrowed values are dropped here; the future holds none of them.
    };
    is_static(&future);
    let text = block_on(future).unwrap();
    let (described, pid) = text.rsplit_once(':').unwrap();
    assert_eq!(described, "report:3:/tmp/in.txt:p5");
    assert_ne!(pid, std::process::id().to_string(), "ran in a worker");
}

/// What `init_with`'s initializer was given, in a worker; unset in this process.
static INITIALIZED_FOR: OnceLock<Option<String>> = OnceLock::new();

static UNNAMED: ProcessPool = ProcessPool::with_max_workers(1);
static DOOMED_INIT: ProcessPool = ProcessPool::with_max_workers(1)
    .named("doomed-init")
    .worker_stderr(WorkerStderr::Null);

/// What the worker's initializer was given, as text.
fn initializer_record() -> String {
    match INITIALIZED_FOR.get() {
        None => "not initialized".to_owned(),
        Some(None) => "a pool without a name".to_owned(),
        Some(Some(name)) => format!("pool {name}"),
    }
}

#[async_wrap(executor = PROCS, process)]
fn initialized_for() -> String {
    initializer_record()
}

#[async_wrap(executor = UNNAMED, process)]
fn initialized_for_unnamed() -> String {
    initializer_record()
}

#[async_wrap(executor = DOOMED_INIT, process)]
fn never_served() -> u32 {
    1
}

/// `init_with`'s initializer runs once in each worker, given its pool's name, before the
/// worker serves; never in this process; and a panic in it fails the call with `Start`.
fn the_initializer_runs_in_each_worker_with_its_pools_name() {
    assert_eq!(
        INITIALIZED_FOR.get(),
        None,
        "the initializer ran in the program itself"
    );
    block_on(async {
        assert_eq!(initialized_for().await.unwrap(), "pool procs");
        assert_eq!(
            initialized_for_unnamed().await.unwrap(),
            "a pool without a name"
        );
        let err = never_served().await.unwrap_err();
        assert!(
            matches!(err.kind(), ProcessErrorKind::Start(why) if why.contains("init_with")),
            "{err}"
        );
    });
}

fn main() {
    async_wrap::process::init_with(|pool| {
        INITIALIZED_FOR
            .set(pool.map(str::to_owned))
            .expect("the initializer runs once per worker");
        assert_ne!(pool, Some("doomed-init"), "cannot load the model");
    });
    support::run_test_groups(&[
        (
            &[
                ("results_come_back", results_come_back),
                (
                    "the_initializer_runs_in_each_worker_with_its_pools_name",
                    the_initializer_runs_in_each_worker_with_its_pools_name,
                ),
                (
                    "borrowed_arguments_are_serialized_at_the_call",
                    borrowed_arguments_are_serialized_at_the_call,
                ),
                (
                    "a_pool_with_panics_as_errors_returns_the_panic_as_an_error",
                    a_pool_with_panics_as_errors_returns_the_panic_as_an_error,
                ),
                (
                    "a_workers_stderr_goes_where_the_pool_says",
                    a_workers_stderr_goes_where_the_pool_says,
                ),
                (
                    "a_lazy_lock_pool_runs_calls_in_its_workers",
                    a_lazy_lock_pool_runs_calls_in_its_workers,
                ),
                ("any_runtime", any_runtime),
                (
                    "panics_resume_with_message_and_location",
                    panics_resume_with_message_and_location,
                ),
                ("a_crash_fails_only_its_call", a_crash_fails_only_its_call),
                ("a_deadline_kills_the_worker", a_deadline_kills_the_worker),
                (
                    "dropping_a_running_call_kills_its_worker",
                    dropping_a_running_call_kills_its_worker,
                ),
                (
                    "a_future_dropped_before_its_first_poll_runs_nothing",
                    a_future_dropped_before_its_first_poll_runs_nothing,
                ),
                (
                    "a_body_may_call_a_process_function",
                    a_body_may_call_a_process_function,
                ),
                (
                    "an_unknown_function_is_an_error",
                    an_unknown_function_is_an_error,
                ),
            ],
            Duration::from_secs(60),
        ),
        (
            &[
                (
                    "same_name_in_two_scopes_runs_the_right_body",
                    same_name_in_two_scopes_runs_the_right_body,
                ),
                (
                    "resume_unwind_reports_its_own_payload",
                    resume_unwind_reports_its_own_payload,
                ),
                (
                    "an_oversized_argument_is_not_a_crash",
                    an_oversized_argument_is_not_a_crash,
                ),
                (
                    "an_oversized_result_is_not_a_crash",
                    an_oversized_result_is_not_a_crash,
                ),
                ("large_values_round_trip", large_values_round_trip),
                ("odd_panic_payloads", odd_panic_payloads),
                (
                    "arguments_that_do_not_round_trip_are_an_error",
                    arguments_that_do_not_round_trip_are_an_error,
                ),
                (
                    "a_panic_from_a_helper_thread_keeps_its_location",
                    a_panic_from_a_helper_thread_keeps_its_location,
                ),
                (
                    "a_panic_while_encoding_the_result_is_resumed",
                    a_panic_while_encoding_the_result_is_resumed,
                ),
                (
                    "the_future_is_send_sync_unpin_static",
                    the_future_is_send_sync_unpin_static,
                ),
                (
                    "process_outcomes_count_in_call_site_statistics_as_documented",
                    process_outcomes_count_in_call_site_statistics_as_documented,
                ),
                ("no_child_is_left", no_child_is_left),
            ],
            Duration::from_secs(120),
        ),
    ]);
}
