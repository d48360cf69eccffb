//! [`BlockingPool`]: an elastic pool of threads for blocking work.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::executor::{Executor, Job, RejectReason, Rejected};
use crate::task::Outcome;

/// The thread-name prefix and pool name when none is configured.
const DEFAULT_NAME: &str = "async-wrap";

/// An elastic pool of threads on which blocking jobs run.
///
/// A job goes to an idle thread if there is one; otherwise, if fewer than
/// [`max_threads`](BlockingPool::with_max_threads) threads run, the pool starts a new one;
/// otherwise the job waits in a FIFO queue for the next free thread. A thread that has been idle
/// for [`keep_alive`](BlockingPool::keep_alive) exits. So `N` concurrent blocking calls use `N`
/// threads, up to the limit, and a pool with `max_threads` 2 never runs more than 2 threads
/// however many calls are in flight.
///
/// The constructors are `const`: a pool can live in a `static`, and starts its first thread
/// when its first job arrives.
///
/// ```
/// use std::time::Duration;
/// use async_wrap_runtime::{spawn_on, BlockingPool};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(4)
///     .keep_alive(Duration::from_secs(30))
///     .thread_name("io");
///
/// let name = futures::executor::block_on(spawn_on(&IO, || {
///     std::thread::current().name().map(str::to_owned)
/// }));
/// assert_eq!(name.as_deref(), Some("io-1"));
/// ```
///
/// A pool that is dropped (rather than living in a `static`) stops taking jobs and lets its
/// threads finish the jobs already queued, then exit; the drop does not wait for them.
pub struct BlockingPool {
    config: Config,
    shared: OnceLock<Arc<Shared>>,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    max_threads: usize,
    keep_alive: Duration,
    name: Option<&'static str>,
    stack_size: Option<usize>,
}

impl BlockingPool {
    /// The default `max_threads`: 512, like tokio's blocking pool.
    pub const DEFAULT_MAX_THREADS: usize = 512;
    /// The default `keep_alive`: 10 seconds.
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

    /// A pool of at most `max_threads` threads, the others settings at their defaults.
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
                keep_alive: Self::DEFAULT_KEEP_ALIVE,
                name: None,
                stack_size: None,
            },
            shared: OnceLock::new(),
        }
    }

    /// How long a thread waits idle for a job before it exits (default 10 s).
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
    #[must_use = "the builder methods return the configured pool"]
    pub const fn thread_name(mut self, name: &'static str) -> Self {
        self.config.name = Some(name);
        self
    }

    /// The stack size of the pool's threads, in bytes (default: the standard library's, 2 MiB
    /// unless `RUST_MIN_STACK` says otherwise).
    #[must_use = "the builder methods return the configured pool"]
    pub const fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// The most threads this pool runs at once.
    pub const fn max_threads(&self) -> usize {
        self.config.max_threads
    }

    /// How long an idle thread waits for work before it exits.
    pub const fn keep_alive_duration(&self) -> Duration {
        self.config.keep_alive
    }

    /// A snapshot of the pool's counters. Reading them takes the pool's lock once; the pool
    /// keeps them up to date at no extra cost.
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
        match self.shared.get() {
            Some(shared) => shared.lock().metrics,
            None => Metrics::default(),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared
            .get_or_init(|| Arc::new(Shared::new(self.config)))
    }
}

impl Default for BlockingPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor for BlockingPool {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        Shared::submit(self.shared(), job)
    }

    fn name(&self) -> Option<&str> {
        self.config.name
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.get() {
            shared.lock().shut_down = true;
            shared.work.notify_all();
        }
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("name", &self.config.name.unwrap_or(DEFAULT_NAME))
            .field("max_threads", &self.config.max_threads)
            .field("keep_alive", &self.config.keep_alive)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`BlockingPool`], from [`BlockingPool::metrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Threads alive now, busy or idle.
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
    /// Threads started since the pool started.
    pub threads_started: u64,
}

/// The state every thread of a pool shares.
struct Shared {
    config: Config,
    state: Mutex<State>,
    /// Idle threads wait here for a job (or for shutdown).
    work: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads ready for a job (between jobs, or waiting) that no submitter has claimed yet.
    /// A submitter that finds one claims it (`idle -= 1; notified += 1`) before waking it, so
    /// two submitters never count on the same thread.
    idle: usize,
    /// Claims not yet taken. A thread that takes a job from the queue takes a claim if there is
    /// one, else removes itself from `idle`. Claims are only made with a push and taken with a
    /// pop, so there are never more claims than queued jobs.
    notified: usize,
    /// Threads blocked in `Condvar::wait`: only they need a notification.
    sleepers: usize,
    shut_down: bool,
    metrics: Metrics,
}

impl Shared {
    fn new(config: Config) -> Self {
        Shared {
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                notified: 0,
                sleepers: 0,
                shut_down: false,
                metrics: Metrics::default(),
            }),
            work: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn submit(this: &Arc<Self>, job: Job) -> Result<(), Rejected> {
        let mut state = this.lock();
        if state.shut_down {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        state.queue.push_back(job);
        state.metrics.queued += 1;
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            // A thread that is between jobs finds the job on its own; only a sleeping one needs
            // waking (and a wake that finds the job taken is harmless).
            let wake = state.sleepers > 0;
            drop(state);
            if wake {
                this.work.notify_one();
            }
        } else if state.metrics.threads < this.config.max_threads {
            state.metrics.threads += 1;
            state.metrics.threads_started += 1;
            let number = state.metrics.threads_started;
            drop(state);
            if let Err(err) = Shared::spawn_worker(this, number) {
                let mut state = this.lock();
                state.metrics.threads -= 1;
                if state.metrics.threads == 0 {
                    // No thread will ever take the job: give it back rather than lose it.
                    if let Some(job) = state.queue.pop_back() {
                        state.metrics.queued -= 1;
                        return Err(Rejected::new(job, RejectReason::SpawnFailed(err)));
                    }
                }
            }
        }
        Ok(())
    }

    fn spawn_worker(this: &Arc<Self>, number: u64) -> std::io::Result<()> {
        let mut builder = thread::Builder::new().name(format!(
            "{}-{number}",
            this.config.name.unwrap_or(DEFAULT_NAME)
        ));
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let shared = Arc::clone(this);
        builder.spawn(move || shared.work_loop()).map(drop)
    }

    /// A worker thread's life: run queued jobs, wait for more, exit after `keep_alive` without
    /// work, or once the pool is shut down and its queue is drained.
    fn work_loop(&self) {
        let mut state = self.lock();
        state.idle += 1;
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = state.queue.pop_front() {
                if state.notified > 0 {
                    state.notified -= 1;
                } else {
                    state.idle -= 1;
                }
                state.metrics.queued -= 1;
                state.metrics.running += 1;
                drop(state);
                let finished = job.run_unwoken();
                state = self.lock();
                state.metrics.running -= 1;
                match finished.outcome {
                    Outcome::Completed => state.metrics.completed += 1,
                    Outcome::Panicked => state.metrics.panicked += 1,
                    Outcome::Cancelled => state.metrics.cancelled += 1,
                }
                // Ready for the next job before the caller hears of this one.
                state.idle += 1;
                if finished.waker.is_some() {
                    drop(state);
                    finished.wake();
                    state = self.lock();
                }
                idle_since = Instant::now();
                continue;
            }
            // The queue is empty, so there is no claim (claims never outnumber queued jobs)
            // and `idle` counts this thread.
            let deadline = idle_since + self.config.keep_alive;
            let now = Instant::now();
            if state.shut_down || now >= deadline {
                state.idle -= 1;
                break;
            }
            state.sleepers += 1;
            state.metrics.idle_threads += 1;
            state = self
                .work
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.sleepers -= 1;
            state.metrics.idle_threads -= 1;
        }
        state.metrics.threads -= 1;
    }
}
