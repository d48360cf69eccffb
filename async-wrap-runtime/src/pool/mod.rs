//! [`BlockingPool`]: an elastic pool of threads for blocking work.

#[cfg(all(test, async_wrap_loom))]
mod loom_models;
mod queue;
mod shared;
mod shutdown;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::task::Context;
use std::time::Duration;

pub use shutdown::{RunningJob, ShutdownReport};

use crate::executor::{Executor, Job, Rejected, Submit, Waiter};
use shared::Shared;

/// An elastic pool of threads on which blocking jobs run.
///
/// # How it schedules
///
/// A job goes to an idle thread if there is one; otherwise, if fewer than `max_threads` threads
/// run, the pool starts a new one; otherwise the job waits in a FIFO queue for the next free
/// thread. A thread idle for `keep_alive` exits, down to `min_threads`. So `N` concurrent
/// blocking calls use `N` threads, up to the limit, and a pool with `max_threads` 2 never runs
/// more than 2 bodies at once, however many calls are in flight. A thread stays taken until its
/// body has really returned, even if the future awaiting it was dropped, and until it has really
/// exited, its `on_thread_stop` hook included: `max_threads` bounds the OS threads alive.
///
/// A thread counts as idle *before* it wakes the caller of the job it just finished, so a caller
/// that makes one call after another reuses one thread instead of starting a new one each time.
///
/// Handing a job over takes no lock: calls push on a lock-free queue and threads pop from it,
/// and who is idle, asleep or spinning is kept in atomics, so that a busy pool's threads and its
/// callers share no cache line but the queue slots. The pool's mutex is taken only to start,
/// wake, park or retire a thread, for a bounded queue, and by `metrics` and `shutdown`.
///
/// # Settings
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `max_threads` | 512 | the most threads (and so the most bodies running at once) |
/// | `min_threads` | 0 | threads started with the pool and kept when idle |
/// | `keep_alive` | 10 s | how long a thread beyond `min_threads` waits idle before it exits |
/// | `thread_name` | `async-wrap` | threads are `NAME-1`, `NAME-2`, ...; messages name the pool by it |
/// | `stack_size` | std's | the threads' stack size in bytes |
/// | `queue_capacity` | unbounded | how many jobs may wait for a thread; see [`QueueFull`] for what a full queue does |
/// | `on_thread_start` / `on_thread_stop` | none | hooks each thread runs first and last ([`Builder`] only) |
///
/// The `const` constructors and setters build a pool in a `static`, which starts its threads
/// on first use; [`BlockingPool::builder`] takes the settings that are not `const` (owned names,
/// hooks) and reports invalid combinations as a [`BuildError`].
///
/// ```
/// use std::time::Duration;
/// use async_wrap_runtime::{spawn_on, BlockingPool, QueueFull};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(4)
///     .min_threads(1)
///     .keep_alive(Duration::from_secs(30))
///     .thread_name("io")
///     .queue_capacity(1_000, QueueFull::Wait);
///
/// let name = futures::executor::block_on(spawn_on(&IO, || {
///     std::thread::current().name().map(str::to_owned)
/// }));
/// assert_eq!(name.as_deref(), Some("io-1"));
/// ```
///
/// # Guarantees
///
/// - **Panics** in a body are caught on the worker, counted in [`Metrics::panicked`], and resumed
///   in the task awaiting the future; the thread lives on.
/// - **Cancellation**: a job whose future is dropped before a thread takes it never runs
///   ([`Metrics::cancelled`]); once started it runs to completion, and
///   [`is_cancelled`](crate::is_cancelled) tells the body nobody waits for it any more.
/// - **Nesting**: a body that waits (with [`block_on`](crate::block_on)) on another call to the
///   same pool while every thread is busy runs that call inline, on its own thread, instead of
///   deadlocking. A cycle across two saturated pools (a job on A waits on B, whose job waits on
///   A) can still deadlock: give each kind of work its own pool and do not wait in a circle.
/// - **Shutdown**: [`shutdown`](BlockingPool::shutdown) stops taking jobs, lets queued and
///   running ones finish and joins the threads; later calls are refused with a message naming
///   the pool. Dropping a pool that is not in a `static` does the same without waiting.
pub struct BlockingPool {
    config: Config,
    extras: Option<Arc<Extras>>,
    shared: OnceLock<Arc<Shared>>,
}

/// The settings that can be changed in a `const` context.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) max_threads: usize,
    pub(crate) min_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) name: Option<&'static str>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) when_full: QueueFull,
}

/// A hook a thread runs when it starts or stops.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

/// The settings only [`Builder`] sets.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) name: Option<String>,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
}

/// What a [`BlockingPool`] with a bounded queue does with a job when the queue is full (every
/// thread busy, `max_threads` reached, `queue_capacity` jobs waiting).
///
/// ```
/// use async_wrap_runtime::{spawn_on, BlockingPool, QueueFull};
///
/// // Two threads and room for 100 waiting jobs; the 103rd call waits for room.
/// static DB: BlockingPool = BlockingPool::with_max_threads(2).queue_capacity(100, QueueFull::Wait);
/// let calls = (0..300).map(|i| spawn_on(&DB, move || i));
/// let done = futures::executor::block_on(futures::future::join_all(calls));
/// assert_eq!(done.len(), 300);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueFull {
    /// The call waits, asynchronously, for room: its future stays pending (the executor thread
    /// is free to run other tasks) and is woken when a job leaves the queue. The default.
    #[default]
    Wait,
    /// The call is refused: the future panics with a message naming the pool, or, through
    /// [`BlockingFuture::checked`](crate::BlockingFuture::checked), returns an error.
    Reject,
    /// The job runs on the thread that polls the future, at once. This blocks that thread, an
    /// async runtime's thread included, for the length of the body: use it only where that is
    /// what you want (back-pressure by slowing the caller down).
    RunOnCaller,
}

impl BlockingPool {
    /// The default `max_threads`: 512, like tokio's blocking pool.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    /// assert_eq!(BlockingPool::new().max_threads(), BlockingPool::DEFAULT_MAX_THREADS);
    /// ```
    pub const DEFAULT_MAX_THREADS: usize = 512;
    /// The default `keep_alive`: 10 seconds.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    /// assert_eq!(BlockingPool::new().keep_alive_duration(), BlockingPool::DEFAULT_KEEP_ALIVE);
    /// ```
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

    /// A pool of at most [`DEFAULT_MAX_THREADS`](Self::DEFAULT_MAX_THREADS) threads with the
    /// default settings.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// static POOL: BlockingPool = BlockingPool::new();
    /// assert_eq!(POOL.max_threads(), 512);
    /// ```
    pub const fn new() -> Self {
        Self::with_max_threads(Self::DEFAULT_MAX_THREADS)
    }

    /// A pool of at most `max_threads` threads, the other settings at their defaults.
    ///
    /// # Panics
    ///
    /// If `max_threads` is 0. In a `static` or `const`, that panic is a compile error:
    ///
    /// ```compile_fail
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// static NONE: BlockingPool = BlockingPool::with_max_threads(0);
    /// ```
    pub const fn with_max_threads(max_threads: usize) -> Self {
        assert!(
            max_threads > 0,
            "BlockingPool::with_max_threads(0): a pool needs at least one thread"
        );
        BlockingPool {
            config: Config {
                max_threads,
                min_threads: 0,
                keep_alive: Self::DEFAULT_KEEP_ALIVE,
                name: None,
                stack_size: None,
                queue_capacity: None,
                when_full: QueueFull::Wait,
            },
            extras: None,
            shared: OnceLock::new(),
        }
    }

    /// A builder for the settings that are not `const` (an owned thread name, hooks), with
    /// validation that reports mistakes as a [`BuildError`] instead of panicking.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// let pool = BlockingPool::builder()
    ///     .max_threads(8)
    ///     .min_threads(2)
    ///     .thread_name(format!("db-{}", 1))
    ///     .on_thread_start(|| println!("a db thread starts"))
    ///     .build()
    ///     .expect("valid settings");
    /// assert_eq!(pool.max_threads(), 8);
    ///
    /// let err = BlockingPool::builder().max_threads(2).min_threads(3).build().unwrap_err();
    /// assert_eq!(err.to_string(), "min_threads (3) is more than max_threads (2)");
    /// ```
    pub fn builder() -> Builder {
        Builder {
            config: Self::new().config,
            extras: Extras::default(),
        }
    }

    /// Keeps `min_threads` threads alive even when idle; they start with the pool (at its first
    /// use) rather than on demand.
    ///
    /// # Panics
    ///
    /// If `min_threads` is more than `max_threads` (a compile error in a `static`).
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// static WARM: BlockingPool = BlockingPool::with_max_threads(4).min_threads(2);
    /// futures::executor::block_on(async_wrap_runtime::spawn_on(&WARM, || ()));
    /// assert_eq!(WARM.metrics().threads_started, 2); // both started with the pool
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn min_threads(mut self, min_threads: usize) -> Self {
        assert!(
            min_threads <= self.config.max_threads,
            "BlockingPool::min_threads: more than max_threads"
        );
        self.config.min_threads = min_threads;
        self
    }

    /// How long a thread beyond `min_threads` waits idle for a job before it exits (default
    /// 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// static POOL: BlockingPool = BlockingPool::new().keep_alive(Duration::from_millis(500));
    /// assert_eq!(POOL.keep_alive_duration(), Duration::from_millis(500));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// Names the pool: its threads are called `name-1`, `name-2`, ..., and error messages name
    /// the pool by it (default: threads `async-wrap-N`, messages use the executor expression).
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// static DISK: BlockingPool = BlockingPool::with_max_threads(1).thread_name("disk");
    /// let name = futures::executor::block_on(async_wrap_runtime::spawn_on(&DISK, || {
    ///     std::thread::current().name().map(str::to_owned)
    /// }));
    /// assert_eq!(name.as_deref(), Some("disk-1"));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn thread_name(mut self, name: &'static str) -> Self {
        self.config.name = Some(name);
        self
    }

    /// The stack size of the pool's threads, in bytes (default: the standard library's, 2 MiB
    /// unless `RUST_MIN_STACK` says otherwise).
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    ///
    /// // Deep recursion in the bodies: give the threads 16 MiB.
    /// static DEEP: BlockingPool = BlockingPool::with_max_threads(1).stack_size(16 << 20);
    /// assert_eq!(futures::executor::block_on(async_wrap_runtime::spawn_on(&DEEP, || 1)), 1);
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// Bounds the queue: at most `capacity` jobs wait for a thread, whatever the pool's growth
    /// state, and `when_full` says what happens to the next one ([`QueueFull`]). A job that
    /// finds an idle thread does not count as waiting. When the queue is full and the pool has
    /// fewer than `max_threads` threads, the pool starts a thread for the next job at once
    /// (rather than waiting for evidence that its threads block), and applies `when_full`
    /// only at `max_threads`: as Java's `ThreadPoolExecutor` does. `capacity` 0 means a job
    /// runs only if a thread is free, or can be started, for it.
    ///
    /// The count is kept without a lock on the threads' side, so it has one blur: a thread
    /// that has just taken a job counts as ready until it has left the ready set, a few
    /// instructions later; a call placed in that moment may see room for one more job. The
    /// queue can so hold `capacity` plus one job per thread caught in that moment (a bounded
    /// pool's stress test sees at most `capacity + 1`), never more.
    ///
    /// ```
    /// use async_wrap_runtime::{spawn_on, BlockingPool, QueueFull};
    ///
    /// static STRICT: BlockingPool = BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Reject);
    ///
    /// let first = spawn_on(&STRICT, || std::thread::sleep(std::time::Duration::from_millis(100)));
    /// let second = spawn_on(&STRICT, || ());
    /// futures::executor::block_on(async {
    ///     let (first, second) = futures::join!(first.checked(), second.checked());
    ///     assert!(first.is_ok());
    ///     assert_eq!(second.unwrap_err().to_string(), "async_wrap: cannot run `closure` on executor `spawn_on`: its queue is full");
    /// });
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn queue_capacity(mut self, capacity: usize, when_full: QueueFull) -> Self {
        self.config.queue_capacity = Some(capacity);
        self.config.when_full = when_full;
        self
    }

    /// The most threads this pool runs at once.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(3);
    /// assert_eq!(POOL.max_threads(), 3);
    /// ```
    pub const fn max_threads(&self) -> usize {
        self.config.max_threads
    }

    /// How long an idle thread waits for work before it exits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap_runtime::BlockingPool;
    /// static POOL: BlockingPool = BlockingPool::new().keep_alive(Duration::from_secs(1));
    /// assert_eq!(POOL.keep_alive_duration(), Duration::from_secs(1));
    /// ```
    pub const fn keep_alive_duration(&self) -> Duration {
        self.config.keep_alive
    }

    /// A snapshot of the pool's counters, cheap enough to read often: no allocation, and the
    /// pool's lock plus one uncontended lock per thread (the threads count their jobs on their
    /// own cache lines, which this sums).
    ///
    /// ```
    /// use async_wrap_runtime::{spawn_on, BlockingPool};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
    ///
    /// futures::executor::block_on(spawn_on(&POOL, || ()));
    /// let metrics = POOL.metrics();
    /// assert_eq!(metrics.completed, 1);
    /// assert_eq!(metrics.threads, 1);
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.shared
            .get()
            .map_or_else(Metrics::default, |shared| shared.metrics())
    }

    /// Stops taking jobs, lets the queued and running ones finish, and joins the threads. Calls
    /// made afterwards are refused: their futures panic with a message naming the pool, or
    /// return an error through [`BlockingFuture::checked`](crate::BlockingFuture::checked).
    ///
    /// Called from one of the pool's own threads, it does not wait for that thread (which is
    /// still running the caller's body).
    ///
    /// ```
    /// use async_wrap_runtime::{spawn_on, BlockingPool};
    ///
    /// let pool = std::sync::Arc::new(BlockingPool::with_max_threads(2).thread_name("batch"));
    /// let job = spawn_on(pool.clone(), || std::thread::sleep(std::time::Duration::from_millis(20)));
    /// let job = std::thread::spawn(move || futures::executor::block_on(job));
    /// # std::thread::sleep(std::time::Duration::from_millis(5));
    /// pool.shutdown();
    /// job.join().unwrap(); // the running job finished
    /// assert_eq!(pool.metrics().threads, 0);
    ///
    /// let refused = futures::executor::block_on(spawn_on(pool, || ()).checked());
    /// assert!(refused.unwrap_err().to_string().ends_with("on executor `batch`: the executor has been shut down"));
    /// ```
    pub fn shutdown(&self) {
        let _ = self.shared().shutdown(None);
    }

    /// Like [`shutdown`](Self::shutdown), waiting at most `timeout` for the threads. The report
    /// says how many jobs finished meanwhile, and names each job still running at the deadline
    /// with how long it has run (those keep running, and queued jobs still run, after this
    /// returns: nothing is dropped).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap_runtime::{spawn_on, BlockingPool};
    ///
    /// let pool = std::sync::Arc::new(BlockingPool::with_max_threads(1));
    /// let slow = spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(300)));
    /// let slow = std::thread::spawn(move || futures::executor::block_on(slow));
    /// # std::thread::sleep(Duration::from_millis(50));
    /// let report = pool.shutdown_timeout(Duration::from_millis(10));
    /// assert!(!report.is_complete());
    /// assert_eq!(report.still_running[0].name, "closure");
    /// slow.join().unwrap();
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        self.shared().shutdown(Some(timeout))
    }

    /// Whether [`shutdown`](Self::shutdown) has been called (or the pool dropped).
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    /// let pool = BlockingPool::with_max_threads(1);
    /// assert!(!pool.is_shut_down());
    /// pool.shutdown();
    /// assert!(pool.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|shared| shared.is_shut_down())
    }

    /// The packed ready word (idle and claimed threads, the spinner's bit), for the loom
    /// models: 0 once every thread has left.
    #[cfg(all(test, async_wrap_loom))]
    fn ready_word(&self) -> u64 {
        self.shared().ready_word()
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared
            .get_or_init(|| Shared::start(self.config, self.extras.as_deref()))
    }
}

impl Default for BlockingPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor for BlockingPool {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        Shared::submit(self.shared(), job, None).map(|_| ())
    }

    fn poll_execute(
        &self,
        job: Job,
        cx: &mut Context<'_>,
        waiter: &Waiter,
    ) -> Result<Submit, Rejected> {
        Shared::submit(self.shared(), job, Some((cx, *waiter)))
    }

    fn cancel_wait(&self, waiter: &Waiter) {
        if let Some(shared) = self.shared.get() {
            shared.cancel_wait(*waiter);
        }
    }

    fn name(&self) -> Option<&str> {
        self.extras
            .as_ref()
            .and_then(|extras| extras.name.as_deref())
            .or(self.config.name)
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.get() {
            shared.close();
        }
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("name", &self.name().unwrap_or(shared::DEFAULT_NAME))
            .field("config", &self.config)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`BlockingPool`], from [`BlockingPool::metrics`].
///
/// ```
/// use async_wrap_runtime::{spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
/// let _ = futures::executor::block_on(futures::FutureExt::catch_unwind(
///     std::panic::AssertUnwindSafe(spawn_on(&POOL, || -> () { panic!("counted") })),
/// ));
/// futures::executor::block_on(spawn_on(&POOL, || ()));
/// let metrics = POOL.metrics();
/// assert_eq!((metrics.completed, metrics.panicked, metrics.queued), (1, 1, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Threads alive now: busy, idle, or exiting (running their `on_thread_stop` hook).
    pub threads: usize,
    /// Threads alive and waiting for a job.
    pub idle_threads: usize,
    /// Jobs waiting in the queue for a thread.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs whose body returned, since the pool started.
    pub completed: u64,
    /// Jobs whose body panicked (the panic went to the awaiting future).
    pub panicked: u64,
    /// Jobs skipped because their future was dropped before they started.
    pub cancelled: u64,
    /// Jobs run inline on the submitting thread: nested calls on a saturated pool, and
    /// [`QueueFull::RunOnCaller`].
    pub inline: u64,
    /// Calls refused (shutdown, or a full queue under [`QueueFull::Reject`]).
    pub rejected: u64,
    /// Threads started since the pool started.
    pub threads_started: u64,
}

/// Builds a [`BlockingPool`] with settings checked at [`build`](Builder::build).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use async_wrap_runtime::BlockingPool;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = started.clone();
/// let pool = BlockingPool::builder()
///     .max_threads(2)
///     .thread_name(String::from("db"))
///     .on_thread_start(move || {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .build()
///     .unwrap();
/// let pool = Arc::new(pool);
/// futures::executor::block_on(async_wrap_runtime::spawn_on(pool.clone(), || ()));
/// assert_eq!(started.load(Ordering::SeqCst), 1);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    config: Config,
    extras: Extras,
}

impl Builder {
    /// The most threads (default 512). Must be at least 1 and at least `min_threads`.
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::builder().max_threads(8).build().unwrap();
    /// assert_eq!(pool.max_threads(), 8);
    /// ```
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.config.max_threads = max_threads;
        self
    }

    /// Threads kept alive when idle, started with the pool (default 0).
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::builder().max_threads(4).min_threads(1).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn min_threads(mut self, min_threads: usize) -> Self {
        self.config.min_threads = min_threads;
        self
    }

    /// How long a thread beyond `min_threads` waits idle before it exits (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = async_wrap_runtime::BlockingPool::builder().keep_alive(Duration::from_secs(60)).build().unwrap();
    /// assert_eq!(pool.keep_alive_duration(), Duration::from_secs(60));
    /// ```
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// The pool's name and its threads' prefix: `name-1`, `name-2`, ...
    ///
    /// ```
    /// use async_wrap_runtime::{BlockingPool, Executor};
    /// let shard = 3;
    /// let pool = BlockingPool::builder().thread_name(format!("shard-{shard}")).build().unwrap();
    /// assert_eq!(pool.name(), Some("shard-3"));
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.extras.name = Some(name.into());
        self
    }

    /// The threads' stack size in bytes. Must not be 0.
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::builder().stack_size(1 << 20).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// At most `capacity` queued jobs; `when_full` for the next one ([`QueueFull`]).
    ///
    /// ```
    /// use async_wrap_runtime::{BlockingPool, QueueFull};
    /// let pool = BlockingPool::builder().queue_capacity(64, QueueFull::Reject).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn queue_capacity(mut self, capacity: usize, when_full: QueueFull) -> Self {
        self.config.queue_capacity = Some(capacity);
        self.config.when_full = when_full;
        self
    }

    /// Runs `hook` on each new thread before its first job. A panic in it is caught, and the
    /// thread goes on.
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::builder()
    ///     .on_thread_start(|| eprintln!("{:?} starts", std::thread::current().name()))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn on_thread_start(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.extras.on_thread_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each thread as it exits. A panic in it is caught.
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::builder()
    ///     .on_thread_stop(|| eprintln!("{:?} stops", std::thread::current().name()))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn on_thread_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.extras.on_thread_stop = Some(Arc::new(hook));
        self
    }

    /// The pool, or what is wrong with the settings.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if `max_threads` is 0, `min_threads` exceeds `max_threads`, or the stack
    /// size is 0.
    ///
    /// ```
    /// use async_wrap_runtime::BlockingPool;
    /// assert!(BlockingPool::builder().max_threads(0).build().is_err());
    /// assert!(BlockingPool::builder().max_threads(2).build().is_ok());
    /// ```
    pub fn build(self) -> Result<BlockingPool, BuildError> {
        let Config {
            max_threads,
            min_threads,
            stack_size,
            ..
        } = self.config;
        if max_threads == 0 {
            return Err(BuildError(
                "max_threads is 0: a pool needs at least one thread".into(),
            ));
        }
        if min_threads > max_threads {
            return Err(BuildError(format!(
                "min_threads ({min_threads}) is more than max_threads ({max_threads})"
            )));
        }
        if stack_size == Some(0) {
            return Err(BuildError("stack_size is 0".into()));
        }
        Ok(BlockingPool {
            config: self.config,
            extras: Some(Arc::new(self.extras)),
            shared: OnceLock::new(),
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("name", &self.extras.name)
            .finish_non_exhaustive()
    }
}

/// Settings given to [`Builder`] that do not make a working pool.
///
/// ```
/// use async_wrap_runtime::{BlockingPool, BuildError};
/// let err: BuildError = BlockingPool::builder().max_threads(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "max_threads is 0: a pool needs at least one thread");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}
