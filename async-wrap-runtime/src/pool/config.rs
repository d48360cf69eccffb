//! The settings of a [`BlockingPool`]: the `const` constructors and setters (a pool in a
//! `static`), the [`Builder`] for the rest, [`QueueFull`], and [`BuildError`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::BlockingPool;
use super::slow::SlowHook;

/// The thread-name prefix when none is configured.
pub(crate) const DEFAULT_NAME: &str = "async-wrap";

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
    /// This pool is the process's default pool, which refuses to be shut down.
    pub(crate) is_default: bool,
    /// Report jobs that run longer than this.
    pub(crate) slow_call: Option<Duration>,
    /// Report jobs that wait longer than this for a thread.
    pub(crate) slow_queue_wait: Option<Duration>,
}

/// A hook a thread runs when it starts or stops.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

/// The settings only [`Builder`] sets.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) name: Option<String>,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
    pub(crate) on_slow_call: Option<SlowHook>,
}

/// What a [`BlockingPool`] with a bounded queue does with a job when the queue is full (every
/// thread busy, `max_threads` reached, `queue_capacity` jobs waiting).
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool, QueueFull};
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
    /// use async_wrap::BlockingPool;
    /// assert_eq!(BlockingPool::new().settings().max_threads, BlockingPool::DEFAULT_MAX_THREADS);
    /// ```
    pub const DEFAULT_MAX_THREADS: usize = 512;
    /// The default `keep_alive`: 10 seconds.
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    /// assert_eq!(BlockingPool::new().settings().keep_alive, BlockingPool::DEFAULT_KEEP_ALIVE);
    /// ```
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

    /// A pool of at most [`DEFAULT_MAX_THREADS`](Self::DEFAULT_MAX_THREADS) threads with the
    /// default settings.
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    ///
    /// static POOL: BlockingPool = BlockingPool::new();
    /// assert_eq!(POOL.settings().max_threads, 512);
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
    /// use async_wrap::BlockingPool;
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
                is_default: false,
                slow_call: None,
                slow_queue_wait: None,
            },
            extras: None,
            shared: OnceLock::new(),
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
    /// use async_wrap::BlockingPool;
    ///
    /// static WARM: BlockingPool = BlockingPool::with_max_threads(4).min_threads(2);
    /// futures::executor::block_on(async_wrap::spawn_on(&WARM, || ()));
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
    /// use async_wrap::BlockingPool;
    ///
    /// static POOL: BlockingPool = BlockingPool::new().keep_alive(Duration::from_millis(500));
    /// assert_eq!(POOL.settings().keep_alive, Duration::from_millis(500));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// Names the pool: its threads are called `name-1`, `name-2`, ..., and error messages name
    /// the pool by it (default: threads `async-wrap-N`, messages use the executor expression).
    ///
    /// # Panics
    ///
    /// If `name` contains a NUL byte, which no thread name may hold (in a `static`, the const
    /// panic is a compile error).
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    ///
    /// static DISK: BlockingPool = BlockingPool::with_max_threads(1).thread_name("disk");
    /// let name = futures::executor::block_on(async_wrap::spawn_on(&DISK, || {
    ///     std::thread::current().name().map(str::to_owned)
    /// }));
    /// assert_eq!(name.as_deref(), Some("disk-1"));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn thread_name(mut self, name: &'static str) -> Self {
        assert!(
            !contains_nul(name),
            "BlockingPool::thread_name: a thread name cannot contain a NUL byte"
        );
        self.config.name = Some(name);
        self
    }

    /// The stack size of the pool's threads, in bytes (default: the standard library's, 2 MiB
    /// unless `RUST_MIN_STACK` says otherwise).
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    ///
    /// // Deep recursion in the bodies: give the threads 16 MiB.
    /// static DEEP: BlockingPool = BlockingPool::with_max_threads(1).stack_size(16 << 20);
    /// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&DEEP, || 1)), 1);
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
    /// use async_wrap::{spawn_on, BlockingPool, QueueFull};
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

    /// Reports each job that runs longer than `threshold`, once, while it runs: naming the
    /// function, where it is defined, the pool and how long it has run (see [`SlowCall`]). Off
    /// by default. The report goes to the hook set with
    /// [`Builder::on_slow_call`](super::Builder::on_slow_call), else (with the `tracing`
    /// feature) to a `tracing` warning with target `async_wrap`, else to standard error.
    ///
    /// The pool starts one watcher thread for it, which looks every quarter of the threshold
    /// (at least every millisecond, at most every second) while jobs run, and sleeps while none
    /// does; a job that ends past the threshold before the watcher saw it, or that ran inline
    /// (`QueueFull::RunOnCaller`, a nested call), is reported as it ends.
    ///
    /// [`SlowCall`]: super::SlowCall
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::BlockingPool;
    ///
    /// // Warn (on standard error, or through `tracing`) about any query past 2 seconds.
    /// static DB: BlockingPool = BlockingPool::with_max_threads(4).slow_call(Duration::from_secs(2));
    /// assert_eq!(DB.settings().slow_call, Some(Duration::from_secs(2)));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn slow_call(mut self, threshold: Duration) -> Self {
        self.config.slow_call = Some(threshold);
        self
    }

    /// Reports each job that waits longer than `threshold` between its submission and the
    /// start of its body (queued behind busy threads, or waiting for room), once, as it starts;
    /// reported as [`slow_call`](BlockingPool::slow_call) reports. Off by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::BlockingPool;
    ///
    /// static DB: BlockingPool = BlockingPool::with_max_threads(4).slow_queue_wait(Duration::from_millis(100));
    /// assert_eq!(DB.settings().slow_queue_wait, Some(Duration::from_millis(100)));
    /// ```
    #[must_use = "the builder methods return the configured pool"]
    pub const fn slow_queue_wait(mut self, threshold: Duration) -> Self {
        self.config.slow_queue_wait = Some(threshold);
        self
    }

    /// The pool's settings, as its constructors, setters and [`Builder`](super::Builder) made
    /// them (its name is [`name`](BlockingPool::name)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::{BlockingPool, QueueFull};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(3)
    ///     .keep_alive(Duration::from_secs(1))
    ///     .queue_capacity(10, QueueFull::Reject);
    /// let settings = POOL.settings();
    /// assert_eq!(settings.max_threads, 3);
    /// assert_eq!(settings.keep_alive, Duration::from_secs(1));
    /// assert_eq!((settings.queue_capacity, settings.when_full), (Some(10), QueueFull::Reject));
    /// assert_eq!(settings.slow_call, None);
    /// ```
    pub const fn settings(&self) -> Settings {
        let config = &self.config;
        Settings {
            max_threads: config.max_threads,
            min_threads: config.min_threads,
            keep_alive: config.keep_alive,
            stack_size: config.stack_size,
            queue_capacity: config.queue_capacity,
            when_full: config.when_full,
            slow_call: config.slow_call,
            slow_queue_wait: config.slow_queue_wait,
        }
    }
}

/// A [`BlockingPool`]'s settings, from [`BlockingPool::settings`]: each field is named as the
/// setter that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The most threads the pool runs at once ([`BlockingPool::with_max_threads`]).
    pub max_threads: usize,
    /// Threads started with the pool and kept when idle ([`BlockingPool::min_threads`]).
    pub min_threads: usize,
    /// How long a thread beyond `min_threads` waits idle before it exits
    /// ([`BlockingPool::keep_alive`]).
    pub keep_alive: Duration,
    /// The threads' stack size in bytes, if set ([`BlockingPool::stack_size`]).
    pub stack_size: Option<usize>,
    /// How many jobs may wait for a thread, if bounded ([`BlockingPool::queue_capacity`]).
    pub queue_capacity: Option<usize>,
    /// What a full queue does with a job ([`BlockingPool::queue_capacity`]).
    pub when_full: QueueFull,
    /// The slow-call threshold, if set ([`BlockingPool::slow_call`]).
    pub slow_call: Option<Duration>,
    /// The slow-queue-wait threshold, if set ([`BlockingPool::slow_queue_wait`]).
    pub slow_queue_wait: Option<Duration>,
}

/// Whether `name` holds a NUL byte, which no thread name may: for the `const` setters of the
/// pools' names, where `str::contains` cannot be called.
pub(crate) const fn contains_nul(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == 0 {
            return true;
        }
        at += 1;
    }
    false
}
