//! The [`Executor`] trait: where the jobs of wrapped calls run.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Context;

use crate::call::task::{Finished, Run};
use crate::stats::call_site::{self, CallSite};

/// A place that runs jobs: a thread pool, an adapter to another crate's pool, or your own.
///
/// Every `#[async_wrap]` function hands its body to an `Executor` as a [`Job`] the first time its
/// future is polled. The executor must call [`Job::run`] exactly once, on a thread where blocking
/// is acceptable, or give the job back in a [`Rejected`] so that the caller learns it will not run.
/// Dropping a job without running it is allowed (the awaiting future then panics with a message
/// saying so), but an executor that wants to refuse work should return [`Rejected`] instead.
///
/// [`Job::run`] never unwinds: a panic in the body is caught and handed to the awaiting future,
/// so an executor's threads survive panicking jobs without any work on its part.
///
/// # Example
///
/// A toy executor that starts one thread per job:
///
/// ```
/// use async_wrap::{Executor, Job, Rejected};
///
/// struct ThreadPerJob;
///
/// impl Executor for ThreadPerJob {
///     fn execute(&self, job: Job) -> Result<(), Rejected> {
///         std::thread::spawn(move || job.run());
///         Ok(())
///     }
/// }
///
/// static EXEC: ThreadPerJob = ThreadPerJob;
///
/// let answer = futures::executor::block_on(async_wrap::spawn_on(&EXEC, || 6 * 7));
/// assert_eq!(answer, 42);
/// ```
pub trait Executor: Send + Sync {
    /// Takes `job` and arranges for [`Job::run`] to be called once, or returns it in a
    /// [`Rejected`] explaining why it will not run.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the executor does not accept the job (for example after shutdown).
    fn execute(&self, job: Job) -> Result<(), Rejected>;

    /// A short name for the executor, used in error messages. `None` (the default) lets
    /// messages name the executor by the expression the caller wrote.
    fn name(&self) -> Option<&str> {
        None
    }

    /// Not public API: the crate's own pools answer with the [`BlockingPool`](crate::BlockingPool)
    /// they run on, so that their futures can wait for room (back-pressure), wait briefly for
    /// short results, and run a queued job inline on a worker of that pool that waits for it.
    /// Other executors cannot implement or call it: its argument's type cannot be named outside
    /// this crate.
    #[doc(hidden)]
    fn __blocking_pool(&self, _: Sealed) -> Option<&crate::BlockingPool> {
        None
    }
}

/// What a submission that may wait for room did with a job ([`poll_submit`]).
#[derive(Debug)]
pub(crate) enum Submit {
    /// The job will run.
    Accepted,
    /// There is no room now. The job is given back, and the caller's waker is registered: it
    /// is woken when there may be room, and then submits the job again.
    Full(Job),
}

/// Identifies one future waiting for room in a pool that applies back-pressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Waiter(u64);

impl Waiter {
    /// A waiter identity no other waiter has.
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Waiter(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The argument of [`Executor::__blocking_pool`]: a type no other crate can name, so that only
/// this crate's pools implement that method and only this crate calls it.
pub struct Sealed(());

/// The crate's own pool behind `executor`, if it is one.
pub(crate) fn blocking_pool(executor: &dyn Executor) -> Option<&crate::BlockingPool> {
    executor.__blocking_pool(Sealed(()))
}

/// Submits `job` to `executor`; on one of the crate's pools with a full bounded queue, the job
/// is given back ([`Submit::Full`]) with `cx`'s waker registered under `waiter`, to be woken
/// when there may be room. Other executors take it or refuse it at once.
pub(crate) fn poll_submit(
    executor: &dyn Executor,
    job: Job,
    cx: &mut Context<'_>,
    waiter: Waiter,
) -> Result<Submit, Rejected> {
    match blocking_pool(executor) {
        Some(pool) => pool.poll_submit(job, cx, waiter),
        None => executor.execute(job).map(|()| Submit::Accepted),
    }
}

/// The future registered under `waiter` is gone: forgets its registration (and, if it was woken
/// already, wakes another waiter in its place, so that no room goes unused).
pub(crate) fn cancel_wait(executor: &dyn Executor, waiter: Waiter) {
    if let Some(pool) = blocking_pool(executor) {
        pool.cancel_wait(waiter);
    }
}

/// The body of one wrapped call, ready to run: what an [`Executor`] receives.
///
/// Holds the moved arguments and, after [`run`](Job::run), nothing: the result goes straight to
/// the future that awaits it. If the future was dropped before the job started, `run` returns at
/// once without calling the body.
///
/// A job dropped without being run is not lost silently: the awaiting future wakes and panics
/// with a message naming the function and the executor.
///
/// ```
/// use async_wrap::{Executor, Job, Rejected};
///
/// /// Logs each job's name, then runs it on a new thread.
/// struct Logged;
///
/// impl Executor for Logged {
///     fn execute(&self, job: Job) -> Result<(), Rejected> {
///         assert_eq!(job.function(), "closure");
///         assert!(!job.is_cancelled());
///         std::thread::spawn(move || job.run());
///         Ok(())
///     }
/// }
///
/// static LOGGED: Logged = Logged;
/// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&LOGGED, || 5)), 5);
/// ```
pub struct Job {
    /// Always `Some` until `run` or `drop` takes it.
    task: Option<Arc<dyn Run>>,
}

impl Job {
    pub(crate) fn new(task: Arc<dyn Run>) -> Self {
        Job { task: Some(task) }
    }

    /// Runs the body on the current thread and hands its result (or its panic) to the awaiting
    /// future. Never unwinds.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, Rejected};
    ///
    /// struct Inline; // runs each job on the thread that submits it
    /// impl Executor for Inline {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         job.run(); // the body's panic, if any, goes to the future, not here
    ///         Ok(())
    ///     }
    /// }
    /// static INLINE: Inline = Inline;
    /// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&INLINE, || 3)), 3);
    /// ```
    pub fn run(mut self) {
        if let Some(task) = self.task.take() {
            task.run(std::time::Instant::now()).wake();
        }
    }

    /// Runs the body, leaving the waking of the future to the caller (the pool marks its
    /// thread idle first). `start` is now.
    pub(crate) fn run_unwoken(mut self, start: std::time::Instant) -> Finished {
        self.task
            .take()
            .map_or(Finished::NOTHING, |task| task.run(start))
    }

    /// When the call was handed to its executor, if it is known.
    pub(crate) fn submitted_at(&self) -> Option<std::time::Instant> {
        self.task.as_ref().and_then(|task| task.submitted_at())
    }

    /// The name of the wrapped function (`module::path::name`), or `"closure"` for
    /// [`spawn_on`](crate::spawn_on).
    ///
    /// ```
    /// use async_wrap::{Executor, Job, Rejected};
    ///
    /// struct Names;
    /// impl Executor for Names {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         assert_eq!(job.function(), "closure"); // `module::function` for a wrapped function
    ///         job.run();
    ///         Ok(())
    ///     }
    /// }
    /// static NAMES: Names = Names;
    /// futures::executor::block_on(async_wrap::spawn_on(&NAMES, || ()));
    /// ```
    pub fn function(&self) -> &'static str {
        self.site().function()
    }

    /// Who the call is (the function, and how its executor was named).
    pub(crate) fn site(&self) -> &'static CallSite {
        self.task
            .as_ref()
            .map_or(&call_site::RUN, |task| task.site())
    }

    /// Whether the awaiting future has been dropped. A job cancelled before it starts is
    /// skipped by [`run`](Job::run) without calling the body.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, Rejected};
    ///
    /// /// Skips jobs nobody waits for any more, instead of handing them to `run`.
    /// struct SkipsDropped;
    /// impl Executor for SkipsDropped {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         if !job.is_cancelled() {
    ///             job.run();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// static EXEC: SkipsDropped = SkipsDropped;
    /// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&EXEC, || 1)), 1);
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.task.as_ref().is_some_and(|task| task.is_cancelled())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.lose();
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("function", &self.function())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A job an [`Executor`] refused, handed back with the reason.
///
/// Nothing is lost: the job is inside, and [`into_job`](Rejected::into_job) returns it, so the
/// caller can run it elsewhere.
///
/// ```
/// use async_wrap::{Executor, Job, RejectReason, Rejected};
///
/// /// Refuses every job, saying why.
/// struct Closed;
/// impl Executor for Closed {
///     fn execute(&self, job: Job) -> Result<(), Rejected> {
///         Err(Rejected::new(job, RejectReason::Other("closed for maintenance".into())))
///     }
/// }
/// static CLOSED: Closed = Closed;
/// let err = futures::executor::block_on(async_wrap::spawn_on(&CLOSED, || 1).checked()).unwrap_err();
/// assert!(err.to_string().ends_with("closed for maintenance"));
/// ```
pub struct Rejected {
    job: Job,
    reason: RejectReason,
}

impl Rejected {
    /// Gives `job` back with the reason it was refused.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, RejectReason, Rejected};
    ///
    /// struct Full;
    /// impl Executor for Full {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         Err(Rejected::new(job, RejectReason::QueueFull))
    ///     }
    /// }
    /// static FULL: Full = Full;
    /// let err = futures::executor::block_on(async_wrap::spawn_on(&FULL, || 1).checked()).unwrap_err();
    /// assert!(matches!(err.reject_reason(), Some(RejectReason::QueueFull)));
    /// ```
    pub fn new(job: Job, reason: RejectReason) -> Self {
        Rejected { job, reason }
    }

    /// Why the job was refused.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, RejectReason, Rejected};
    ///
    /// /// Tries a first executor, and on a refusal for a full queue, a second one.
    /// struct Overflow<A, B>(A, B);
    /// impl<A: Executor, B: Executor> Executor for Overflow<A, B> {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         match self.0.execute(job) {
    ///             Err(rejected) if matches!(rejected.reason(), RejectReason::QueueFull) => {
    ///                 self.1.execute(rejected.into_job())
    ///             }
    ///             other => other,
    ///         }
    ///     }
    /// }
    /// ```
    pub fn reason(&self) -> &RejectReason {
        &self.reason
    }

    /// The refused job, to run elsewhere or to drop.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, RejectReason, Rejected};
    ///
    /// struct Refuses;
    /// impl Executor for Refuses {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         Err(Rejected::new(job, RejectReason::ShutDown))
    ///     }
    /// }
    /// /// Runs a refused job on the caller instead: nothing is lost.
    /// struct OrInline;
    /// impl Executor for OrInline {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         if let Err(rejected) = Refuses.execute(job) {
    ///             rejected.into_job().run();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// static EXEC: OrInline = OrInline;
    /// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&EXEC, || 9)), 9);
    /// ```
    pub fn into_job(self) -> Job {
        self.job
    }

    /// The refused job and the reason.
    ///
    /// ```
    /// use async_wrap::{Executor, Job, RejectReason, Rejected};
    ///
    /// struct Refuses;
    /// impl Executor for Refuses {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         Err(Rejected::new(job, RejectReason::ShutDown))
    ///     }
    /// }
    /// struct Logs;
    /// impl Executor for Logs {
    ///     fn execute(&self, job: Job) -> Result<(), Rejected> {
    ///         let (job, reason) = Refuses.execute(job).unwrap_err().into_parts();
    ///         assert_eq!(reason.to_string(), "the executor has been shut down");
    ///         job.run();
    ///         Ok(())
    ///     }
    /// }
    /// static LOGS: Logs = Logs;
    /// assert_eq!(futures::executor::block_on(async_wrap::spawn_on(&LOGS, || 2)), 2);
    /// ```
    pub fn into_parts(self) -> (Job, RejectReason) {
        (self.job, self.reason)
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("job", &self.job)
            .field("reason", &self.reason)
            .finish()
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job `{}` was rejected: {}",
            self.job.function(),
            self.reason
        )
    }
}

impl std::error::Error for Rejected {}

/// Why an [`Executor`] refused a job.
///
/// ```
/// use async_wrap::{BlockingPool, RejectReason};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// POOL.shutdown();
/// let err = futures::executor::block_on(async_wrap::spawn_on(&POOL, || ()).checked()).unwrap_err();
/// assert!(matches!(err.reject_reason(), Some(RejectReason::ShutDown)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RejectReason {
    /// The executor has been shut down and takes no new jobs.
    ShutDown,
    /// The executor could not start a thread to run the job, and has none running.
    SpawnFailed(std::io::Error),
    /// The executor's queue is full and its policy is to refuse more
    /// ([`QueueFull::Reject`](crate::QueueFull::Reject)).
    QueueFull,
    /// Any other reason, in words.
    Other(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::ShutDown => f.write_str("the executor has been shut down"),
            RejectReason::QueueFull => f.write_str("its queue is full"),
            RejectReason::SpawnFailed(err) => write!(f, "no worker thread could be started: {err}"),
            RejectReason::Other(why) => f.write_str(why),
        }
    }
}

/// A handle on an [`Executor`] that a `'static` future can keep until its first poll.
///
/// Made by [`IntoExecutor::into_executor`] from whatever names an executor (`&POOL`, an `Arc`,
/// a `LazyLock`): functions that take an executor and return a future keep one. Cloning it is
/// free for `'static` executors and one reference-count increment for shared ones.
///
/// ```
/// use std::sync::Arc;
/// use async_wrap::{BlockingPool, ExecutorRef, IntoExecutor};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("io");
/// let shared = Arc::new(BlockingPool::with_max_threads(1));
/// let handles: [ExecutorRef; 2] = [(&POOL).into_executor(), shared.into_executor()];
/// assert_eq!(handles[0].get().name(), Some("io"));
/// let fut = async_wrap::spawn_on(handles[1].clone(), || 4);
/// assert_eq!(futures::executor::block_on(fut), 4);
/// ```
#[derive(Clone)]
pub struct ExecutorRef(Handle);

/// How an [`ExecutorRef`] holds its executor.
#[derive(Clone)]
enum Handle {
    /// An executor that lives for the whole program: a `static`, or a leaked value.
    Static(&'static dyn Executor),
    /// An executor shared through an [`Arc`].
    Shared(Arc<dyn Executor>),
}

impl ExecutorRef {
    /// A handle on an executor that lives for the whole program.
    pub(crate) fn fixed(executor: &'static dyn Executor) -> Self {
        ExecutorRef(Handle::Static(executor))
    }

    /// A handle sharing an executor through an [`Arc`].
    pub(crate) fn shared(executor: Arc<dyn Executor>) -> Self {
        ExecutorRef(Handle::Shared(executor))
    }

    /// The [default pool](crate::default_pool) (built on first use).
    pub(crate) fn default_pool() -> Self {
        Self::fixed(crate::default_pool())
    }

    /// The executor this handle points to.
    ///
    /// ```
    /// use async_wrap::{BlockingPool, IntoExecutor};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("io");
    /// assert_eq!((&POOL).into_executor().get().name(), Some("io"));
    /// ```
    pub fn get(&self) -> &dyn Executor {
        match &self.0 {
            Handle::Static(executor) => *executor,
            Handle::Shared(executor) => &**executor,
        }
    }
}

impl fmt::Debug for ExecutorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ExecutorRef")
            .field(&self.get().name().unwrap_or("<unnamed executor>"))
            .finish()
    }
}

/// What names an executor: the one conversion behind `#[async_wrap(executor = EXPR)]`,
/// [`spawn_on`](crate::spawn_on), [`stream_on`](crate::stream_on) and
/// [`Unblock::with_executor`](crate::Unblock::with_executor).
///
/// `E` below is a type implementing [`Executor`] (such as [`BlockingPool`](crate::BlockingPool)),
/// or `dyn Executor`:
///
/// | value | for | the handle |
/// |---|---|---|
/// | `&'static E`, `&'static LazyLock<E>`, `&'static Box<E>` | `&IO` where `static IO: BlockingPool` | the `static` itself |
/// | `Arc<E>`, `&Arc<E>`, `Box<E>` | a pool shared or made at run time | the `Arc` (cloned), or the `Box` moved into one |
/// | `&&'static E` | a field or argument holding a `&'static` | the `static` |
/// | [`ExecutorRef`], `&ExecutorRef` | a handle | itself (cloned) |
///
/// and, inside a `LazyLock`, `Box` or `Arc` reached from a `static`, any of these or an `Arc` or
/// a `&'static` of one. `#[async_wrap(executor = EXPR)]` passes `&EXPR` when `EXPR` is a place
/// (a path, a field, an index): `executor = IO` for a `static IO`, `executor = self.pool` for
/// an `Arc` field. An executor value (a `const`, or a call returning a pool by value) is
/// refused: each use would build a new pool.
///
/// The parameter `M` tells the forms apart; it is always inferred (its types are not public
/// API). Implement [`Executor`] for your own pools; this trait has all the impls it needs.
///
/// ```
/// use std::sync::{Arc, LazyLock};
/// use async_wrap::{BlockingPool, IntoExecutor};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(2).thread_name("io");
/// static LAZY: LazyLock<BlockingPool> = LazyLock::new(|| BlockingPool::with_max_threads(1));
/// let shared = Arc::new(BlockingPool::with_max_threads(1).thread_name("shared"));
/// assert_eq!((&IO).into_executor().get().name(), Some("io"));
/// assert_eq!((&shared).into_executor().get().name(), Some("shared"));
/// let lazy = async_wrap::spawn_on(&LAZY, || 1);
/// assert_eq!(futures::executor::block_on(lazy), 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not name an executor async-wrap can use",
    label = "not an executor, nor a `static`, `LazyLock`, `&'static`, `Arc` or `Box` of one",
    note = "an executor is a `static` of a type implementing `async_wrap::Executor` (such as \
            `BlockingPool`), an index into a static array of them, or a `&'static`, `LazyLock`, \
            `Arc` or `Box` of one, sized or `dyn Executor`",
    note = "an executor value (a `const` item, or a call returning a pool by value) is not \
            accepted: each use would build a new pool; make it a `static`"
)]
pub trait IntoExecutor<M> {
    /// The handle a future keeps.
    fn into_executor(self) -> ExecutorRef;
}
