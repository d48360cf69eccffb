//! [`BlockingPool`]: an elastic pool of threads for blocking work, and the handle's operations
//! (metrics, shutdown, the `Executor` impl).
//!
//! Where a change starts:
//!
//! | to change | start in |
//! |---|---|
//! | a setting, `QueueFull` | `config.rs` (and `builder.rs`) |
//! | where a call's job goes, the growth rule | `submit.rs` (and `supervisor.rs`, `supervisor_state.rs` beyond the cores; `os_thread.rs` for what a running job's thread is doing) |
//! | who counts as ready for work | `ready.rs` |
//! | what a thread does between jobs, spinning, retiring | `worker.rs` |
//! | what a thread runs at its exit for the rest of the runtime | `thread_exit.rs` |
//! | waiting for room in a bounded queue | `waiters.rs` (and `place_bounded` in `submit.rs`) |
//! | the threads' slots and handles, the threads exiting | `threads.rs` |
//! | shutdown and its report | `shutdown.rs` (and `gate.rs`; `drain_wakers.rs` for the futures' wakers) |
//! | a metric | `metrics.rs` |
//! | slow-call reports, the watcher | `slow.rs`, `watcher.rs` |
//! | the shared state, starting a thread | `shared.rs` |
//! | a flag read without the lock (sleepers, the thread count, closed) | `flags.rs` |

mod builder;
mod config;
mod drain_wakers;
mod flags;
mod gate;
#[cfg(all(test, async_wrap_loom))]
mod loom_models;
mod metrics;
mod os_thread;
mod queue;
mod ready;
mod shared;
mod shutdown;
mod slow;
mod submit;
mod supervisor;
mod supervisor_state;
mod thread_exit;
mod threads;
mod waiters;
#[cfg(not(async_wrap_loom))]
mod watcher;
mod worker;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::task::Context;
use std::time::Duration;

pub use builder::{BuildError, Builder};
#[cfg(feature = "process")]
pub(crate) use config::contains_nul;
pub use config::{QueueFull, Settings};
pub use metrics::Metrics;
pub use shutdown::{RunningJob, ShutdownFuture, ShutdownReport};
pub use slow::{SlowCall, Slowness};
pub(crate) use thread_exit::at_worker_exit;

use crate::call::task::Finished;
use crate::executor::{Executor, Job, Rejected, Sealed, Submit, Waiter};
use config::{Config, Extras};
use shared::Shared;

/// An elastic pool of threads on which blocking jobs run.
///
/// # How it schedules
///
/// A job goes to an idle thread if there is one; otherwise, while the pool has fewer threads
/// than cores (and than `max_threads`), it starts a new one; otherwise the job waits in a FIFO
/// queue, and the pool grows when its busy threads block: every millisecond that jobs wait, a
/// supervisor thread starts one thread for each busy thread that was asleep in blocking calls
/// for most of that millisecond (on Linux it reads the threads' times and states in `/proc`;
/// elsewhere every job that has run 1 ms counts), up to `max_threads`. A thread busy on a core,
/// or waiting for one while other threads of the process hog the cores, is not blocked: jobs
/// that have computed for 4 ms share the cores with one more thread than there are cores, so a
/// short call behind them still runs soon, and a flood of short jobs stays on about as many
/// threads as cores. A queue that makes no progress for 50 ms gets one more thread whatever the
/// judgment (then after 100 ms, 200 ms ...: a busy thread may be waiting for a job queued
/// behind it), and queued jobs keep getting threads after a shutdown. A thread idle for
/// `keep_alive` exits, down to `min_threads`. So `N` concurrent blocking calls use `N` threads,
/// up to the limit, and a pool with `max_threads` 2 never runs more than 2 bodies at once,
/// however many calls are in flight. A thread stays taken until its body has really returned,
/// even if the future awaiting it was dropped, and until its `on_thread_stop` hook has run:
/// `max_threads` bounds the threads running bodies and hooks. (A retiring thread's last
/// instants after its hook, where its `thread_local!` destructors run, may overlap the start of
/// its replacement: the OS can show one thread more for that moment.)
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
/// use async_wrap::{spawn_on, BlockingPool, QueueFull};
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
/// - **Nesting**: a body's call to its own pool gets a thread started for it while the pool has
///   room for one (nested calls run in parallel, and may wait for each other); a body that
///   waits (with [`block_on`](crate::block_on)) on another call to the same pool while every
///   thread is busy and `max_threads` are running runs that call inline, on its own thread,
///   instead of deadlocking. A cycle across two saturated pools (a job on A waits on B, whose job waits on
///   A) can still deadlock: give each kind of work its own pool and do not wait in a circle.
/// - **Shutdown**: [`shutdown`](BlockingPool::shutdown) stops taking jobs, lets queued and
///   running ones finish and joins the threads; later calls are refused with a message naming
///   the pool. Dropping a pool that is not in a `static` does the same without waiting.
pub struct BlockingPool {
    config: Config,
    extras: Option<Arc<Extras>>,
    shared: OnceLock<Arc<Shared>>,
}

impl BlockingPool {
    /// A snapshot of the pool's counters, cheap enough to read often: no allocation, and the
    /// pool's lock plus one uncontended lock per thread (the threads count their jobs on their
    /// own cache lines, which this sums).
    ///
    /// ```
    /// use async_wrap::{spawn_on, BlockingPool};
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

    /// Publishes [`metrics`](Self::metrics) through the `metrics` facade (feature `metrics`), to
    /// the recorder installed: gauges of the threads alive and idle and of the jobs queued and
    /// running, counters of the jobs completed and of the calls rejected, labelled
    /// `async_wrap.pool.name` with the pool's [`thread_name`](Self::thread_name) (for a pool
    /// without one, `default` for the [default pool](crate::default_pool) and `unnamed` for
    /// another: name each pool you publish). The README's "Metrics" section has the table. Call it where the exporter reads, as
    /// [`publish_call_site_metrics`](crate::publish_call_site_metrics).
    ///
    /// ```
    /// use async_wrap::{spawn_on, BlockingPool};
    ///
    /// static IO: BlockingPool = BlockingPool::with_max_threads(2).thread_name("io");
    ///
    /// futures::executor::block_on(spawn_on(&IO, || ()));
    /// // With a recorder installed, this sets `async_wrap.pool.threads.alive{async_wrap.pool.name="io"}`
    /// // and the others; with none, it does nothing.
    /// IO.publish_metrics();
    /// ```
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        let fallback = if self.config.is_default {
            "default"
        } else {
            "unnamed"
        };
        let name = Executor::name(self).unwrap_or(fallback);
        let metrics = self.metrics();
        crate::stats::export::publish_pool(
            name,
            &crate::stats::export::PoolNumbers {
                threads: metrics.threads,
                idle_threads: metrics.idle_threads,
                queued: metrics.queued,
                running: metrics.running,
                completed: metrics.completed,
                rejected: metrics.rejected,
            },
        );
    }

    /// Stops taking jobs, lets the queued and running ones finish, and joins the threads. Calls
    /// made afterwards are refused: their futures panic with a message naming the pool, or
    /// return an error through [`BlockingFuture::checked`](crate::BlockingFuture::checked).
    ///
    /// This **blocks the calling thread** until the running jobs have finished: do not call it
    /// on an async runtime's thread (in an `async fn`, a task, `main` under `#[tokio::main]`),
    /// where it stops every other task for as long. There, `.await`
    /// [`shutdown_async`](Self::shutdown_async) instead. Which to call where:
    ///
    /// | from | call |
    /// |---|---|
    /// | synchronous code, a pool's own job, the end of a sync `main` | `shutdown()` / `shutdown_timeout(d)` |
    /// | async code (a task, an `async fn`, async `main`) | `shutdown_async().await` / `shutdown_timeout_async(d).await` |
    ///
    /// Called from one of the pool's own threads, it does not wait for that thread (which is
    /// still running the caller's body).
    ///
    /// # Panics
    ///
    /// On the [default pool](crate::default_pool): it is shared by every `#[async_wrap]`
    /// without an `executor` in the process, and is not one caller's to stop.
    ///
    /// ```
    /// use async_wrap::{spawn_on, BlockingPool};
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
        let _ = self.shared_to_shut_down().shutdown(None);
    }

    /// Like [`shutdown`](Self::shutdown), waiting at most `timeout` for the threads. The report
    /// says how many jobs finished meanwhile, and names each job still running at the deadline
    /// with how long it has run (those keep running, and queued jobs still run, after this
    /// returns: nothing is dropped). Blocks the calling thread for up to `timeout`; in async
    /// code, use [`shutdown_timeout_async`](Self::shutdown_timeout_async).
    ///
    /// # Panics
    ///
    /// On the [default pool](crate::default_pool), as [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::{spawn_on, BlockingPool};
    ///
    /// let pool = std::sync::Arc::new(BlockingPool::with_max_threads(1));
    /// let slow = spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(300)));
    /// let slow = std::thread::spawn(move || futures::executor::block_on(slow));
    /// # std::thread::sleep(Duration::from_millis(50));
    /// let report = pool.shutdown_timeout(Duration::from_millis(10));
    /// assert!(!report.is_complete());
    /// assert_eq!(report.still_running[0].function, "closure");
    /// slow.join().unwrap();
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        self.shared_to_shut_down().shutdown(Some(timeout))
    }

    /// [`shutdown`](Self::shutdown) for async code: the pool stops taking jobs at once (at this
    /// call), and the returned future waits for the queued and running jobs and the threads
    /// without ever blocking the thread that polls it, so the runtime's other tasks keep
    /// running meanwhile. Its report is complete. Works on any runtime.
    ///
    /// # Panics
    ///
    /// On the [default pool](crate::default_pool), as [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// use async_wrap::{spawn_on, BlockingPool};
    ///
    /// static DB: BlockingPool = BlockingPool::with_max_threads(2).thread_name("db");
    ///
    /// futures::executor::block_on(async {
    ///     assert_eq!(spawn_on(&DB, || 1 + 1).await, 2);
    ///     let report = DB.shutdown_async().await;
    ///     assert!(report.is_complete());
    ///     assert!(DB.is_shut_down());
    /// });
    /// ```
    pub fn shutdown_async(&self) -> ShutdownFuture {
        ShutdownFuture::new(self.shared_to_shut_down(), None)
    }

    /// [`shutdown_timeout`](Self::shutdown_timeout) for async code: like
    /// [`shutdown_async`](Self::shutdown_async), resolving at the latest at `timeout` with a
    /// report of what still runs (which keeps running: nothing is dropped).
    ///
    /// # Panics
    ///
    /// On the [default pool](crate::default_pool), as [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::{spawn_on, BlockingPool};
    ///
    /// let pool = std::sync::Arc::new(BlockingPool::with_max_threads(1));
    /// futures::executor::block_on(async {
    ///     let mut slow = spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(200)));
    ///     let _ = futures::poll!(&mut slow); // submitted
    ///     let report = pool.shutdown_timeout_async(Duration::from_millis(20)).await;
    ///     assert_eq!(report.still_running.len() + report.still_queued, 1);
    ///     slow.await; // it still finishes
    /// });
    /// ```
    pub fn shutdown_timeout_async(&self, timeout: Duration) -> ShutdownFuture {
        ShutdownFuture::new(self.shared_to_shut_down(), Some(timeout))
    }

    /// The shared state, for a shutdown: refused on the default pool.
    fn shared_to_shut_down(&self) -> &Arc<Shared> {
        assert!(
            !self.config.is_default,
            "async_wrap: the default pool cannot be shut down: every #[async_wrap] function \
             without an `executor` uses it, in every crate of the process. Give the work you \
             want to stop a pool of its own (`static POOL: BlockingPool = ...;` with \
             `#[async_wrap(executor = POOL)]`) and shut that one down"
        );
        self.shared()
    }

    /// Whether [`shutdown`](Self::shutdown) has been called (or the pool dropped).
    ///
    /// ```
    /// use async_wrap::BlockingPool;
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

    /// The pool's name: its threads' name, as [`thread_name`](BlockingPool::thread_name) (or
    /// the builder's) set it; `None` if it has none (errors then name it by the executor
    /// expression the caller wrote). The same as [`Executor::name`], without the trait.
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    /// static DB: BlockingPool = BlockingPool::with_max_threads(2).thread_name("db");
    /// assert_eq!(DB.name(), Some("db"));
    /// assert_eq!(BlockingPool::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.extras
            .as_ref()
            .and_then(|extras| extras.name.as_deref())
            .or(self.config.name)
    }

    /// The packed ready word (idle and claimed threads, the spinner's bit), for the loom
    /// models: 0 once every thread has left.
    #[cfg(all(test, async_wrap_loom))]
    fn ready_word(&self) -> ready::Ready {
        self.shared().ready_word()
    }

    /// A call waiting on this thread for its job, queued on this pool, should run the job here:
    /// this is a worker of the pool and no thread is idle, so waiting could deadlock (the
    /// "Nesting" rule, for a call first polled elsewhere). Counts the job as run inline.
    pub(crate) fn run_waiting_here(
        &self,
        site: &'static crate::stats::call_site::CallSite,
        run: impl FnOnce() -> Option<Finished>,
    ) -> bool {
        let Some(shared) = self.shared.get() else {
            return false;
        };
        if !shared.saturated_own_worker() {
            return false;
        }
        let start = std::time::Instant::now();
        let Some(finished) = run() else {
            return false;
        };
        shared.ran_inline(site, finished.outcome, start.elapsed());
        // The future that ran it is the one to be woken, and it polls the result next.
        drop(finished);
        true
    }

    /// Whether a job submitted now would be taken by an idle thread, with nothing queued ahead
    /// of it, from a caller that is not one of this pool's threads: `Some(true)` if a thread
    /// spins for work (it takes the job at once), `Some(false)` if it must be woken. The
    /// adaptive wait (see `adaptive`) waits only then.
    pub(crate) fn idle_thread(&self) -> Option<bool> {
        let shared = self.shared.get()?;
        let ready = shared.flags.ready.load();
        (ready.idle() > 0 && shared.queue.is_empty() && Shared::own_worker(shared).is_none())
            .then_some(ready.spinning())
    }

    /// Marks (or unmarks) this pool as the process's default pool, which refuses shutdown.
    pub(crate) fn set_default(&mut self, is_default: bool) {
        self.config.is_default = is_default;
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

/// The back-pressure protocol, for this crate's futures ([`crate::executor::poll_submit`]).
impl BlockingPool {
    /// Submits `job`; with a full bounded queue under [`QueueFull::Wait`], gives it back with
    /// `cx`'s waker registered under `waiter`, woken when there may be room.
    pub(crate) fn poll_submit(
        &self,
        job: Job,
        cx: &mut Context<'_>,
        waiter: Waiter,
    ) -> Result<Submit, Rejected> {
        Shared::submit(self.shared(), job, Some((cx, waiter)))
    }

    /// The future registered under `waiter` is gone: forgets it, and passes a wake-up it was
    /// given on to the next waiter.
    pub(crate) fn cancel_wait(&self, waiter: Waiter) {
        if let Some(shared) = self.shared.get() {
            shared.cancel_wait(waiter);
        }
    }
}

impl Executor for BlockingPool {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        Shared::submit(self.shared(), job, None).map(|_| ())
    }

    fn __blocking_pool(&self, _: Sealed) -> Option<&BlockingPool> {
        Some(self)
    }

    fn name(&self) -> Option<&str> {
        BlockingPool::name(self)
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
            .field("name", &self.name().unwrap_or(config::DEFAULT_NAME))
            .field("config", &self.config)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}
