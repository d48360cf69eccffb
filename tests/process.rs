//! Process pools: results and panics come back as with threads; a
//! worker that dies fails only its call, with a typed error naming the function and the cause,
//! and is replaced; a dropped future or a passed deadline kills the worker; shutdown ends every
//! worker and names the calls still running; no zombie or orphan is left, even when the pool's
//! process panics or is killed.
//!
//! A test target without the libtest harness: the pool re-executes this binary as its workers,
//! so `main` calls `async_wrap::process::init()` first, then runs the tests one by one, each
//! under a watchdog. The last test checks that no child of this process is left.

use std::io::BufRead;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_wrap::async_wrap;
use async_wrap::process::{ProcessErrorKind, ProcessPool};
use futures::executor::block_on;
use serde::{Deserialize, Serialize};

mod support;
use support::eventually;

static PROCS: ProcessPool = ProcessPool::with_max_workers(2).name("procs");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    label: String,
}

#[async_wrap(executor = PROCS, process)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

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
        // Recursion inside the body stays a plain call, in the worker.
        assert_eq!(factorial(10).await.unwrap(), 3_628_800);
    });
    // The call-site statistics count process calls like any other.
    let stats = async_wrap::call_sites()
        .get("process::add")
        .cloned()
        .expect("add's call site is registered");
    assert_eq!((stats.calls, stats.completed), (1, 1));
    assert_eq!(stats.site.line(), 34);
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
        message.starts_with("boom: bad input (at tests/process.rs:"),
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
        assert_eq!(err.function(), "process::die");
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
            text.starts_with("async_wrap: `process::die` failed on process pool `procs`"),
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

static RECYCLED: ProcessPool = ProcessPool::with_max_workers(1).max_tasks_per_child(2);

#[async_wrap(executor = RECYCLED, process)]
fn recycled_pid() -> u32 {
    std::process::id()
}

fn workers_are_recycled_after_n_calls() {
    let pids: Vec<u32> = (0..6).map(|_| block_on(recycled_pid()).unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
    assert_eq!(pids[2], pids[3]);
    assert_ne!(pids[3], pids[4]);
    assert_eq!(RECYCLED.metrics().workers_started, 3);
    RECYCLED.shutdown();
}

static IDLE: ProcessPool = ProcessPool::with_max_workers(1).keep_alive(Duration::from_millis(100));

#[async_wrap(executor = IDLE, process)]
fn idle_pid() -> u32 {
    std::process::id()
}

fn idle_workers_exit() {
    let worker = block_on(idle_pid()).unwrap();
    eventually("the idle worker exits and is reaped", || {
        IDLE.metrics().workers == 0 && gone(worker)
    });
    assert_ne!(block_on(idle_pid()).unwrap(), worker);
}

static DOOMED: ProcessPool = ProcessPool::with_max_workers(2)
    .name("doomed")
    .kill_grace(Duration::from_millis(50));

#[async_wrap(executor = DOOMED, process)]
fn doomed_hang(path: PathBuf) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(600));
    1
}

#[async_wrap(executor = DOOMED, process)]
fn doomed_add(a: u32, b: u32) -> u32 {
    a + b
}

fn shutdown_ends_every_worker_and_names_running_calls() {
    let path = temp_path("shutdown");
    assert_eq!(block_on(doomed_add(1, 1)).unwrap(), 2);
    let hung = std::thread::spawn({
        let path = path.clone();
        move || block_on(doomed_hang(path))
    });
    let worker = pid_in(&path);
    let report = DOOMED.shutdown_timeout(Duration::from_millis(100));
    assert_eq!(report.still_running.len(), 1, "{report:?}");
    assert_eq!(report.still_running[0].function, "process::doomed_hang");
    assert_eq!(DOOMED.metrics().workers, 0);
    assert!(gone(worker));
    let err = hung.join().unwrap().expect_err("killed by the shutdown");
    assert_eq!(err.kind(), &ProcessErrorKind::ShutDown);
    let refused = block_on(doomed_add(1, 1)).expect_err("the pool is shut down");
    assert_eq!(refused.kind(), &ProcessErrorKind::ShutDown);
    let _ = std::fs::remove_file(&path);
}

static ASYNC_DOOMED: ProcessPool = ProcessPool::with_max_workers(1).kill_grace(Duration::ZERO);

#[async_wrap(executor = ASYNC_DOOMED, process)]
fn async_doomed_hang(path: PathBuf) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(600));
    1
}

fn async_shutdown_never_blocks_the_polling_thread() {
    let path = temp_path("async-shutdown");
    let hung = std::thread::spawn({
        let path = path.clone();
        move || block_on(async_doomed_hang(path))
    });
    let worker = pid_in(&path);
    let mut shutdown = ASYNC_DOOMED.shutdown_timeout_async(Duration::from_millis(100));
    let waker = futures::task::noop_waker();
    // The first poll returns at once: a helper thread waits for the workers.
    assert!(
        std::future::Future::poll(
            std::pin::Pin::new(&mut shutdown),
            &mut std::task::Context::from_waker(&waker)
        )
        .is_pending()
    );
    assert!(ASYNC_DOOMED.is_shut_down());
    let report = block_on(shutdown);
    assert_eq!(report.still_running.len(), 1, "{report:?}");
    assert_eq!(
        report.still_running[0].function,
        "process::async_doomed_hang"
    );
    assert!(gone(worker));
    let err = hung.join().unwrap().expect_err("killed by the shutdown");
    assert_eq!(err.kind(), &ProcessErrorKind::ShutDown);
    let _ = std::fs::remove_file(&path);
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

fn a_program_without_init_starts_no_worker() {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("ASYNC_WRAP_TEST_ROLE", "no-init")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("`async_wrap::process::init()` was not called"),
        "{stdout}"
    );
}

fn an_unknown_function_is_an_error() {
    static SITE: async_wrap::__private::CallSite =
        async_wrap::__private::call_site("process::nothing", "PROCS", "", 0);
    use async_wrap::__private::process::{Request, call, portable};
    let call = call(&PROCS, &SITE, Request::new("nothing#0"), portable::<u32>());
    let err = block_on(call).expect_err("no such function in the worker");
    assert_eq!(
        err.kind(),
        &ProcessErrorKind::UnknownFunction("nothing#0".into())
    );
}

static ECHO: ProcessPool = ProcessPool::with_max_workers(1).program("/bin/echo");
static CAT: ProcessPool = ProcessPool::with_max_workers(1)
    .program("/bin/cat")
    .start_timeout(Duration::from_millis(300));

#[async_wrap(executor = ECHO, process)]
fn on_echo() -> u32 {
    1
}

#[async_wrap(executor = CAT, process)]
fn on_cat() -> u32 {
    1
}

fn a_program_that_is_not_a_worker_fails_the_call() {
    let err = block_on(on_echo()).expect_err("echo is not a worker");
    assert!(
        matches!(err.kind(), ProcessErrorKind::NotAWorker(_)),
        "{err}"
    );
    assert!(err.to_string().contains("init()"), "{err}");
    let err = block_on(on_cat()).expect_err("cat never greets");
    assert!(
        matches!(err.kind(), ProcessErrorKind::NotAWorker(why) if why.contains("did not greet")),
        "{err}"
    );
}

/// Starts this binary as a pool's process in `role`; it prints its worker's pid.
fn pool_process(role: &str) -> (std::process::Child, u32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("ASYNC_WRAP_TEST_ROLE", role)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let worker = line
        .trim()
        .parse()
        .expect("the pool's process prints its worker's pid");
    (child, worker)
}

fn no_orphan_when_the_pool_process_is_killed_or_panics() {
    let (mut killed, worker) = pool_process("killed");
    killed.kill().unwrap();
    killed.wait().unwrap();
    eventually("the worker of a killed pool exits", || gone(worker));

    let (mut panicking, worker) = pool_process("panics");
    let status = panicking.wait().unwrap();
    assert_eq!(status.code(), Some(101));
    eventually("the worker of a panicked pool exits", || gone(worker));
}

/// The pool's side of `no_orphan_...`: a call that hangs, its worker's pid printed, then
/// killed by the test or panics.
fn play(role: &str) {
    let path = temp_path(&format!("role-{role}"));
    let mut call = Box::pin(hang(path.clone()));
    let waker = futures::task::noop_waker();
    let _ = std::future::Future::poll(call.as_mut(), &mut std::task::Context::from_waker(&waker));
    let worker = pid_in(&path);
    let _ = std::fs::remove_file(&path);
    println!("{worker}");
    if role == "panics" {
        std::mem::forget(call);
        panic!("the pool's process panics with a call running");
    }
    std::thread::sleep(Duration::from_secs(600));
}

fn no_child_is_left() {
    PROCS.shutdown();
    IDLE.shutdown();
    ECHO.shutdown();
    CAT.shutdown();
    assert_eq!(children(), Vec::new(), "every worker was reaped");
}

fn main() {
    if std::env::var("ASYNC_WRAP_TEST_ROLE").as_deref() == Ok("no-init") {
        // A program that forgot `init()`: the call fails before any worker starts.
        let err = block_on(add(1, 1)).expect_err("no worker without init()");
        println!("{err}");
        assert!(matches!(err.kind(), ProcessErrorKind::Start(_)));
        assert_eq!(children(), Vec::new());
        return;
    }
    async_wrap::process::init();
    if let Ok(role) = std::env::var("ASYNC_WRAP_TEST_ROLE") {
        play(&role);
        return;
    }
    let tests: &[(&str, fn())] = &[
        ("results_come_back", results_come_back),
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
            "workers_are_recycled_after_n_calls",
            workers_are_recycled_after_n_calls,
        ),
        ("idle_workers_exit", idle_workers_exit),
        (
            "shutdown_ends_every_worker_and_names_running_calls",
            shutdown_ends_every_worker_and_names_running_calls,
        ),
        (
            "async_shutdown_never_blocks_the_polling_thread",
            async_shutdown_never_blocks_the_polling_thread,
        ),
        (
            "a_body_may_call_a_process_function",
            a_body_may_call_a_process_function,
        ),
        (
            "a_program_without_init_starts_no_worker",
            a_program_without_init_starts_no_worker,
        ),
        (
            "an_unknown_function_is_an_error",
            an_unknown_function_is_an_error,
        ),
        (
            "a_program_that_is_not_a_worker_fails_the_call",
            a_program_that_is_not_a_worker_fails_the_call,
        ),
        (
            "no_orphan_when_the_pool_process_is_killed_or_panics",
            no_orphan_when_the_pool_process_is_killed_or_panics,
        ),
        ("no_child_is_left", no_child_is_left),
    ];
    support::run_tests(tests, Duration::from_secs(60));
}
