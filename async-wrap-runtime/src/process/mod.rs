//! Process pools (feature `process`, Linux): run a wrapped function in a worker process, where
//! a crash (a segfault, an abort, an `exit`) fails only that call, and a call that hangs can be
//! killed. Threads can give neither: a crash takes the whole program down, and a thread cannot
//! be stopped.
//!
//! ```ignore
//! // Not run as a doctest: it needs the `async-wrap` facade (for the attribute), and it spawns
//! // worker processes, which a doctest's `main` (without `init()`) cannot serve.
//! use std::time::Duration;
//! use async_wrap::async_wrap;
//! use async_wrap::process::ProcessPool;
//!
//! static PARSERS: ProcessPool = ProcessPool::with_max_workers(4)
//!     .named("parsers")
//!     .deadline(Duration::from_secs(5));
//!
//! /// Calls into a C library that may crash on hostile input.
//! #[async_wrap(executor = PARSERS, process)]
//! fn parse(document: Vec<u8>) -> Result<String, String> {
//!     Ok(String::from_utf8_lossy(&document).into_owned())
//! }
//!
//! fn main() {
//!     async_wrap::process::init(); // first: in a worker process, this serves calls
//!     futures::executor::block_on(async {
//!         match parse(b"<doc/>".to_vec()).await {
//!             Ok(parsed) => println!("{parsed:?}"),
//!             Err(err) => eprintln!("{err}"), // the worker crashed or timed out
//!         }
//!     });
//! }
//! ```
//!
//! # How it works
//!
//! - **Workers** are this program run again (`/proc/self/exe`, never a `fork` of the running,
//!   multi-threaded process) with [`WORKER_ENV`] set; [`init`], the first line of `main`,
//!   makes such a process serve calls instead of running the program.
//! - **Functions** are found by a key the attribute makes from the module path, the name, where
//!   the name is written (file, line, column) and a hash of the signature, registered before
//!   `main` (with the `inventory` crate), never by address. A worker of another build, or one
//!   without the key, fails the call with a [`ProcessError`], never a hang.
//! - **Arguments and results** cross as postcard (a compact serde format), in length-prefixed
//!   frames over the worker's stdin and stdout; the worker's own stdin and stdout become
//!   `/dev/null` and its stderr (`/dev/null` too if its stderr is a pipe whose reader has gone;
//!   the pool's own stderr by default, see [`ProcessPool::worker_stderr`]),
//!   so a body that prints cannot corrupt them. Bytes left unread after decoding them fail the
//!   call with [`ProcessErrorKind::Serialization`]: postcard is not self-describing, so
//!   format-dependent serde attributes (`skip_serializing_if`) cannot be used. They must implement
//!   `serde::Serialize` and `serde::Deserialize`: the compiler says so at the type, not a
//!   run-time error.
//! - **One driver thread per worker**, in the pool's process, sends the call, waits for the
//!   reply and completes the future with a waker: the futures work on any async runtime.
//!
//! # Guarantees
//!
//! - **Results and panics** come back as with threads: the value, or the panic resumed in the
//!   caller with its message and location.
//! - **A worker that dies** fails only the call it ran, with
//!   [`ProcessErrorKind::Crashed`] naming the signal or exit code; the next call gets a new
//!   worker. Its death is seen when its process exits (a pidfd, Linux 5.3), even if a process
//!   it forked keeps its pipes open; one that dies idle is reaped at once. In a program that
//!   ignores `SIGCHLD`, the kernel reaps the workers itself, and a crash's signal and exit
//!   code are unknown (`None`).
//! - **Workers run in a process group of their own**: a terminal's Ctrl-C (`SIGINT` to the
//!   foreground group) is the program's to handle, and does not kill the running calls.
//! - **Dropping a running call's future, or passing its deadline, kills its worker** and the
//!   processes its body started (`SIGTERM`, then `SIGKILL` after
//!   [`kill_grace`](ProcessPool::kill_grace), to the worker's process group) and frees its
//!   place: true cancellation, even of a worker that is stopped (`SIGSTOP`) or does not read
//!   its arguments: every write to a worker, like every read, waits in `poll` with the
//!   deadline, the drop and the shutdown. See [`ProcessPool`], "Killed workers", for what
//!   survives.
//! - **Shutdown** ends every worker, and its report names the calls still running at its
//!   deadline.
//! - **A worker that cannot start** (no descriptor free, no memory, a program that cannot run)
//!   fails the call with [`ProcessErrorKind::Start`], never leaves it without an outcome;
//!   the next call tries again.
//! - **No zombie, no orphan**: every worker is reaped by its driver; a worker exits as soon as
//!   the pipe from its pool closes, even in the middle of a call, so when the pool's process
//!   exits, panics or is killed, its workers go too.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "the `process` feature of async-wrap supports Linux only (it re-executes /proc/self/exe and \
     uses poll(2)); build without it on this platform"
);

mod call;
mod codec;
mod error;
mod shared;
mod wire;
mod worker;
mod worker_process;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use call::ProcessFuture;
pub use error::{ProcessError, ProcessErrorKind};
pub use worker::{WORKER_ENV, init, init_with};
pub use worker_process::WorkerStderr;

use crate::pool::ShutdownReport;
use crate::stats::call_site::CallSite;
use shared::Shared;

/// A pool of worker processes running `#[async_wrap(executor = POOL, process)]` functions.
///
/// Elastic, like [`BlockingPool`](crate::BlockingPool): a call goes to an idle worker, or
/// starts one if fewer than `max_workers` run, or waits its turn. A worker idle for
/// `keep_alive` exits. Constructible in a `static`; nothing starts before the first call.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `max_workers` | 4 | the most worker processes (and calls running at once) |
/// | `keep_alive` | 10 s | how long a worker waits idle for a call before it exits |
/// | `max_tasks_per_child` | none | a worker exits after this many calls (a leaky library) |
/// | `deadline` | none | each call's limit: past it, the worker is killed and the call fails |
/// | `kill_grace` | 100 ms | how long a worker being killed gets between `SIGTERM` and `SIGKILL` |
/// | `start_timeout` | 10 s | how long a new worker may take to greet the pool |
/// | `name` | the executor expression | names the pool in errors |
///
/// # Killed workers
///
/// A worker killed for a call's deadline, its dropped future or a shutdown's deadline is killed
/// with its process group: each worker leads a group of its own, and the processes its
/// bodies start (`Command::spawn`, `fork`) are in it. They get `SIGTERM` with the worker, and
/// `SIGKILL` once it has exited or the grace period has passed. What survives:
///
/// - a process that left the group: one that called `setsid` or `setpgid` (a daemon, a
///   program run with `setsid`), and what it starts;
/// - the processes left by a worker that was not killed: one that crashed, or one retired
///   (idle, `max_tasks_per_child`, a shutdown that let its calls finish), which closes its
///   pipe and lets it exit;
/// - the workers of a process pool used in a body (in groups of their own): they exit when
///   their pool's pipe closes, as the killed worker dies.
///
/// # Call-site statistics
///
/// A process call counts in [`call_sites`](crate::call_sites) as any call does, in one of
/// the four ends [`CallStats`](crate::CallStats) has:
///
/// | end | the process call |
/// |---|---|
/// | `completed` | its body returned a value (even if the caller then fails to decode it) |
/// | `panicked` | it reached a worker and no value came back: the body panicked (resumed, or [`Panicked`](ProcessErrorKind::Panicked) under [`panics_as_errors`](ProcessPool::panics_as_errors)), or the worker crashed ([`Crashed`](ProcessErrorKind::Crashed)), was killed at the deadline ([`DeadlineExceeded`](ProcessErrorKind::DeadlineExceeded)), at the drop of the future or at a shutdown's deadline ([`ShutDown`](ProcessErrorKind::ShutDown)), its pipe failed ([`Io`](ProcessErrorKind::Io)), or it could not find the function or decode the arguments or encode the result ([`UnknownFunction`](ProcessErrorKind::UnknownFunction), [`Serialization`](ProcessErrorKind::Serialization)) |
/// | `cancelled` | its future was dropped before it reached a worker (queued, or while its worker started) |
/// | `refused` | it never reached a worker otherwise: the pool was shut down, or no driver thread or worker could be started ([`Start`](ProcessErrorKind::Start), [`NotAWorker`](ProcessErrorKind::NotAWorker), [`OtherBuild`](ProcessErrorKind::OtherBuild)) |
///
/// The run time is recorded for `completed` and `panicked` (from the moment its driver took
/// the call, a worker's start included); [`metrics`](Self::metrics) tells a panic, a crash
/// and a kill apart. A call whose arguments cannot be encoded fails at its first poll and is
/// not counted.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::process::ProcessPool;
///
/// static SANDBOX: ProcessPool = ProcessPool::with_max_workers(2)
///     .keep_alive(Duration::from_secs(30))
///     .max_tasks_per_child(1_000)
///     .deadline(Duration::from_secs(2))
///     .named("sandbox");
/// assert_eq!(SANDBOX.settings().max_workers, 2);
/// assert_eq!(SANDBOX.name(), Some("sandbox"));
/// assert_eq!(SANDBOX.metrics().workers, 0); // nothing started yet
/// ```
pub struct ProcessPool {
    config: Config,
    shared: OnceLock<Arc<Shared>>,
}

/// The settings, all `const`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    max_workers: usize,
    keep_alive: Duration,
    max_tasks_per_child: Option<u64>,
    deadline: Option<Duration>,
    kill_grace: Duration,
    start_timeout: Duration,
    name: Option<&'static str>,
    /// A body's panic is an `Err(Panicked)` rather than resumed in the caller.
    panics_as_errors: bool,
    /// Where the workers' standard error goes.
    stderr: WorkerStderr,
    /// The program to start, for tests of a program that is not a worker.
    program: Option<&'static str>,
}

/// A [`ProcessPool`]'s settings, from [`ProcessPool::settings`]: each field is named as the
/// setter that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The most workers the pool runs at once ([`ProcessPool::with_max_workers`]).
    pub max_workers: usize,
    /// How long an idle worker waits for a call before it exits ([`ProcessPool::keep_alive`]).
    pub keep_alive: Duration,
    /// Calls a worker serves before it is replaced, if bounded
    /// ([`ProcessPool::max_tasks_per_child`]).
    pub max_tasks_per_child: Option<u64>,
    /// How long a call may run before its worker is killed, if bounded
    /// ([`ProcessPool::deadline`]).
    pub deadline: Option<Duration>,
    /// How long a worker asked to stop has before it is killed ([`ProcessPool::kill_grace`]).
    pub kill_grace: Duration,
    /// How long a worker may take to start ([`ProcessPool::start_timeout`]).
    pub start_timeout: Duration,
    /// A body's panic is an error rather than resumed in the caller
    /// ([`ProcessPool::panics_as_errors`]).
    pub panics_as_errors: bool,
    /// Where the workers' standard error goes ([`ProcessPool::worker_stderr`]).
    pub worker_stderr: WorkerStderr,
}

/// A process pool's counters.
///
/// ```
/// use async_wrap::process::{Metrics, ProcessPool};
///
/// static POOL: ProcessPool = ProcessPool::with_max_workers(1);
/// let metrics: Metrics = POOL.metrics();
/// assert_eq!((metrics.workers, metrics.completed), (0, 0));
/// assert_eq!(metrics.mean_worker_start(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Workers alive (with their driver threads).
    pub workers: usize,
    /// Workers waiting for a call.
    pub idle_workers: usize,
    /// Calls waiting for a worker.
    pub queued: usize,
    /// Calls running.
    pub running: usize,
    /// Calls that returned a value.
    pub completed: u64,
    /// Calls whose body panicked.
    pub panicked: u64,
    /// Calls whose worker died under them.
    pub crashed: u64,
    /// Calls whose worker was killed: their deadline passed, their future was dropped, or the
    /// pool shut down.
    pub killed: u64,
    /// Calls that failed otherwise (a worker could not start, a serialization error).
    pub failed: u64,
    /// Calls whose future was dropped while they ran: their workers were killed, unless the
    /// call ended first (it then counts as what it ended as, too).
    pub abandoned: u64,
    /// Calls whose future was dropped before a worker took them: they never ran.
    pub cancelled: u64,
    /// Worker processes started.
    pub workers_started: u64,
    /// The time they took to start (from spawning the program to its greeting), added up.
    pub worker_start_total: Duration,
}

impl Metrics {
    /// How long a worker took to start, on average.
    pub fn mean_worker_start(&self) -> Option<Duration> {
        let started = u32::try_from(self.workers_started)
            .ok()
            .filter(|n| *n > 0)?;
        Some(self.worker_start_total / started)
    }

    /// Calls that ended, whatever the outcome.
    fn finished(&self) -> u64 {
        self.completed + self.panicked + self.crashed + self.killed + self.failed
    }
}

impl ProcessPool {
    /// The default `max_workers`: 4.
    pub const DEFAULT_MAX_WORKERS: usize = 4;

    /// A pool of at most [`DEFAULT_MAX_WORKERS`](Self::DEFAULT_MAX_WORKERS) workers.
    ///
    /// ```
    /// use async_wrap::process::ProcessPool;
    /// static PROCS: ProcessPool = ProcessPool::new();
    /// assert_eq!(PROCS.settings().max_workers, 4);
    /// ```
    pub const fn new() -> Self {
        Self::with_max_workers(Self::DEFAULT_MAX_WORKERS)
    }

    /// A pool of at most `max_workers` worker processes.
    ///
    /// # Panics
    ///
    /// If `max_workers` is 0 (a compile error in a `static`):
    ///
    /// ```compile_fail
    /// use async_wrap::process::ProcessPool;
    /// static NONE: ProcessPool = ProcessPool::with_max_workers(0);
    /// ```
    pub const fn with_max_workers(max_workers: usize) -> Self {
        assert!(
            max_workers > 0,
            "ProcessPool::with_max_workers(0): a pool needs at least one worker"
        );
        ProcessPool {
            config: Config {
                max_workers,
                keep_alive: Duration::from_secs(10),
                max_tasks_per_child: None,
                deadline: None,
                kill_grace: Duration::from_millis(100),
                start_timeout: Duration::from_secs(10),
                name: None,
                panics_as_errors: false,
                stderr: WorkerStderr::Inherit,
                program: None,
            },
            shared: OnceLock::new(),
        }
    }

    /// How long a worker waits idle for a call before it exits (default 10 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().keep_alive(Duration::from_secs(60));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// A worker exits after running `calls` calls, and the next call starts a new one: for
    /// native code that leaks or fragments memory. Python's `max_tasks_per_child`.
    ///
    /// # Panics
    ///
    /// If `calls` is 0.
    ///
    /// ```
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().max_tasks_per_child(100);
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn max_tasks_per_child(mut self, calls: u64) -> Self {
        assert!(
            calls > 0,
            "ProcessPool::max_tasks_per_child(0): a worker runs at least one call"
        );
        self.config.max_tasks_per_child = Some(calls);
        self
    }

    /// Each call's deadline, counted from the moment a worker starts it: past it, the worker is
    /// killed and the call fails with [`ProcessErrorKind::DeadlineExceeded`].
    /// [`ProcessFuture::deadline`] sets one call's.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().deadline(Duration::from_secs(30));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = Some(deadline);
        self
    }

    /// How long a worker being killed (deadline, dropped future, shutdown) gets between
    /// `SIGTERM` and `SIGKILL` (default 100 ms), with its process group (see "Killed workers"
    /// above): the group gets `SIGKILL` once the worker has exited, or the grace has passed.
    /// Zero sends `SIGKILL` at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().kill_grace(Duration::ZERO);
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn kill_grace(mut self, grace: Duration) -> Self {
        self.config.kill_grace = grace;
        self
    }

    /// How long a new worker may take to start and greet the pool (default 10 s): past it, the
    /// call fails with [`ProcessErrorKind::NotAWorker`]. A shutdown's deadline, or the call's
    /// future dropped, stops the wait at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().start_timeout(Duration::from_secs(2));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn start_timeout(mut self, timeout: Duration) -> Self {
        self.config.start_timeout = timeout;
        self
    }

    /// Names the pool in errors, in its driver threads' names, and for the workers'
    /// initializer ([`init_with`] is given it). Read it back with
    /// [`name`](ProcessPool::name).
    ///
    /// ```
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().named("sandbox");
    /// assert_eq!(P.name(), Some("sandbox"));
    /// ```
    ///
    /// # Panics
    ///
    /// If `name` contains a NUL byte, which a thread's name cannot (a compile error in a
    /// `static`):
    ///
    /// ```compile_fail
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new().named("nul\0name");
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn named(mut self, name: &'static str) -> Self {
        assert!(
            !crate::pool::contains_nul(name),
            "ProcessPool::named: a pool's name cannot contain a NUL byte"
        );
        self.config.name = Some(name);
        self
    }

    /// The pool's name, as [`named`](ProcessPool::named) set it; `None` if it has none (errors
    /// then name it by the executor expression the caller wrote).
    pub const fn name(&self) -> Option<&'static str> {
        self.config.name
    }

    /// Makes a body's panic an error, [`ProcessErrorKind::Panicked`] with its message and
    /// location, instead of resuming it in the caller (the default, as with threads): for a
    /// program that runs untrusted input through its workers and treats any failure there as
    /// that input's.
    ///
    /// ```
    /// # use async_wrap::process::ProcessPool;
    /// static PARSERS: ProcessPool = ProcessPool::with_max_workers(2).panics_as_errors();
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn panics_as_errors(mut self) -> Self {
        self.config.panics_as_errors = true;
        self
    }

    /// Where the workers' standard error goes: the pool's own (the default), nowhere, or
    /// appended to a file. A body's panic message (and its backtrace, with `RUST_BACKTRACE`)
    /// and whatever a body prints are written there, so a program that draws a progress bar on
    /// its terminal can keep them off it.
    ///
    /// ```
    /// use async_wrap::process::{ProcessPool, WorkerStderr};
    ///
    /// static QUIET: ProcessPool = ProcessPool::with_max_workers(2).worker_stderr(WorkerStderr::Null);
    /// static LOGGED: ProcessPool =
    ///     ProcessPool::with_max_workers(2).worker_stderr(WorkerStderr::AppendTo("/tmp/workers.log"));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn worker_stderr(mut self, stderr: WorkerStderr) -> Self {
        self.config.stderr = stderr;
        self
    }

    /// Whether a body's panic is an error ([`panics_as_errors`](Self::panics_as_errors)).
    pub(crate) const fn has_panics_as_errors(&self) -> bool {
        self.config.panics_as_errors
    }

    /// Starts `program` as the workers instead of this program: only for checking what a
    /// program that is not a worker does to the pool (it fails the calls with
    /// [`ProcessErrorKind::NotAWorker`]).
    #[doc(hidden)]
    #[must_use = "the builder methods return the configured pool"]
    pub const fn program(mut self, program: &'static str) -> Self {
        self.config.program = Some(program);
        self
    }

    /// The pool's settings, as its constructors and setters made them (its name is
    /// [`name`](Self::name)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::process::ProcessPool;
    ///
    /// static POOL: ProcessPool = ProcessPool::with_max_workers(2).deadline(Duration::from_secs(5));
    /// let settings = POOL.settings();
    /// assert_eq!(settings.max_workers, 2);
    /// assert_eq!(settings.deadline, Some(Duration::from_secs(5)));
    /// assert!(!settings.panics_as_errors);
    /// ```
    pub const fn settings(&self) -> Settings {
        let config = &self.config;
        Settings {
            max_workers: config.max_workers,
            keep_alive: config.keep_alive,
            max_tasks_per_child: config.max_tasks_per_child,
            deadline: config.deadline,
            kill_grace: config.kill_grace,
            start_timeout: config.start_timeout,
            panics_as_errors: config.panics_as_errors,
            worker_stderr: config.stderr,
        }
    }

    /// The pool's counters.
    pub fn metrics(&self) -> Metrics {
        self.shared
            .get()
            .map_or_else(Metrics::default, |shared| shared.metrics())
    }

    /// Stops taking calls, lets the queued and running ones finish, and ends every worker
    /// (each exits when its pipe closes, and is reaped). Blocks the calling thread. Later calls
    /// fail with [`ProcessErrorKind::ShutDown`]. Called on one of the pool's own driver threads
    /// (a waker that a call's completion runs), it does not wait for that driver, which ends its
    /// worker once the waker returns; the report's `threads_left` counts it.
    ///
    /// ```
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new();
    /// P.shutdown();
    /// assert!(P.is_shut_down());
    /// ```
    pub fn shutdown(&self) {
        let _ = self.shared().shutdown(None);
    }

    /// Like [`shutdown`](Self::shutdown), waiting at most `timeout` for the running and queued
    /// calls; then the workers still running calls are killed (`SIGTERM`, then `SIGKILL` after
    /// the grace period), those calls and the queued ones fail with
    /// [`ProcessErrorKind::ShutDown`], and the report names the calls that were still running.
    /// When it returns, no worker is left.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new();
    /// let report = P.shutdown_timeout(Duration::from_secs(1));
    /// assert!(report.is_complete());
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        self.shared().shutdown(Some(timeout))
    }

    /// [`shutdown`](Self::shutdown) for async code: the pool stops taking calls at once, and
    /// the future resolves when every worker has ended, without blocking the thread that polls
    /// it (a helper thread waits). Works on any runtime.
    ///
    /// ```
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new();
    /// let report = futures::executor::block_on(P.shutdown_async());
    /// assert!(report.is_complete() && P.is_shut_down());
    /// ```
    pub fn shutdown_async(&self) -> ShutdownFuture {
        ShutdownFuture::start(self.shared(), None)
    }

    /// [`shutdown_timeout`](Self::shutdown_timeout) for async code, as
    /// [`shutdown_async`](Self::shutdown_async): at `timeout`, the workers still running calls
    /// are killed, and the report names those calls.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use async_wrap::process::ProcessPool;
    /// static P: ProcessPool = ProcessPool::new();
    /// let report = futures::executor::block_on(P.shutdown_timeout_async(Duration::from_secs(1)));
    /// assert!(report.still_running.is_empty());
    /// ```
    pub fn shutdown_timeout_async(&self, timeout: Duration) -> ShutdownFuture {
        ShutdownFuture::start(self.shared(), Some(timeout))
    }

    /// Whether the pool has been shut down.
    pub fn is_shut_down(&self) -> bool {
        self.shared.get().is_some_and(|shared| shared.is_closed())
    }

    /// The pool's name in messages: its own, else the executor expression of `site`.
    fn name_for(&self, site: &CallSite) -> String {
        self.config.name.unwrap_or(site.executor()).to_owned()
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared
            .get_or_init(|| Arc::new(Shared::new(self.config)))
    }
}

impl Default for ProcessPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ProcessPool {
    /// A pool dropped (one not in a `static`) shuts down: it waits for its calls, and ends its
    /// workers.
    fn drop(&mut self) {
        if let Some(shared) = self.shared.get() {
            let _ = shared.shutdown(None);
        }
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("config", &self.config)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// The future of [`ProcessPool::shutdown_async`] and
/// [`shutdown_timeout_async`](ProcessPool::shutdown_timeout_async): resolves to the report once
/// every worker has ended. The pool stopped taking calls when the future was made; dropping it
/// stops only the waiting, never the shutdown.
#[must_use = "the pool is shut down already; the future only waits for its workers"]
pub struct ShutdownFuture {
    done: Arc<Mutex<(Option<ShutdownReport>, Option<Waker>)>>,
}

impl ShutdownFuture {
    fn start(shared: &Arc<Shared>, timeout: Option<Duration>) -> Self {
        shared.close();
        let done = Arc::new(Mutex::new((None, None)));
        let (shared, report_to) = (Arc::clone(shared), Arc::clone(&done));
        let deliver = move || {
            let report = shared.shutdown(timeout);
            let mut done = report_to.lock().unwrap_or_else(PoisonError::into_inner);
            done.0 = Some(report);
            let waker: Option<Waker> = done.1.take();
            drop(done);
            if let Some(waker) = waker {
                crate::panic_guard::wake_guarded(waker);
            }
        };
        let spawned = std::thread::Builder::new()
            .name("async-wrap-process-shutdown".into())
            .spawn(deliver);
        if let Err(err) = spawned {
            // No thread to wait on: the report says so, and the pool is closed regardless.
            let report = ShutdownReport {
                finished: 0,
                still_running: Vec::new(),
                still_queued: 0,
                threads_left: usize::MAX,
            };
            drop(err);
            done.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(report);
        }
        ShutdownFuture { done }
    }
}

impl Future for ShutdownFuture {
    type Output = ShutdownReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReport> {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(report) = done.0.take() {
            return Poll::Ready(report);
        }
        let old = done.1.replace(cx.waker().clone());
        drop(done);
        crate::panic_guard::drop_guarded(old);
        Poll::Pending
    }
}

impl fmt::Debug for ShutdownFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownFuture").finish_non_exhaustive()
    }
}

/// What the expansion of `#[async_wrap(process)]` calls. Not public API.
#[doc(hidden)]
pub mod __shim {
    pub use super::call::call;
    pub use super::codec::{Arguments, Codec, Portable, Request, portable, portable_ref};
    pub use super::wire::Frame;
    pub use super::worker::{Entry, serve};
    pub use super::{ProcessFuture, ProcessPool};

    /// The pool named by `executor = POOL` under `process`: a `&'static ProcessPool`.
    #[inline]
    pub fn pool(pool: &'static ProcessPool) -> &'static ProcessPool {
        pool
    }

    /// Registers a `process` function's entry, run in workers.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __async_wrap_register_process_entry {
        ($key:expr, $run:expr) => {
            $crate::__private::inventory::submit! {
                $crate::process::__shim::Entry::new($key, $run)
            }
        };
    }
    pub use crate::__async_wrap_register_process_entry as register;
}
