//! The [`Executor`] trait: where the jobs of wrapped calls run.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
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

    /// Like [`execute`](Executor::execute), for an executor that may ask the caller to wait
    /// for room: [`Submit::Full`] gives the job back after registering `cx`'s waker under
    /// `waiter`, and the executor wakes it when there may be room. The future then calls this
    /// again with the same `waiter`.
    ///
    /// An implementation that returns `Full` must drop `waiter`'s registration when it later
    /// accepts or rejects the job, and honour [`cancel_wait`](Executor::cancel_wait). The
    /// default never waits: it calls `execute`.
    ///
    /// # Errors
    ///
    /// [`Rejected`], as for `execute`.
    fn poll_execute(
        &self,
        job: Job,
        cx: &mut Context<'_>,
        waiter: &Waiter,
    ) -> Result<Submit, Rejected> {
        let _ = (cx, waiter);
        self.execute(job).map(|()| Submit::Accepted)
    }

    /// The future registered under `waiter` is gone. Forget its registration; if it was already
    /// woken (and so will never retry), wake another waiter in its place, so that no room goes
    /// unused. The default does nothing, which is right for executors that never wait.
    fn cancel_wait(&self, waiter: &Waiter) {
        let _ = waiter;
    }

    /// A short name for the executor, used in error messages. `None` (the default) lets
    /// messages name the executor by the expression the caller wrote.
    fn name(&self) -> Option<&str> {
        None
    }

    /// The crate's own pool behind this executor, if it is one: its futures use it to run a
    /// queued job inline on a worker of that pool that waits for it. Not for other executors
    /// to implement.
    #[doc(hidden)]
    fn as_blocking_pool(&self) -> Option<&crate::BlockingPool> {
        None
    }
}

/// What [`Executor::poll_execute`] did with a job.
///
/// ```
/// use std::collections::VecDeque;
/// use std::sync::Mutex;
/// use std::task::{Context, Waker};
/// use async_wrap::{Executor, Job, Rejected, Submit, Waiter};
///
/// /// Runs one job at a time on its own thread; other callers wait for it, asynchronously.
/// #[derive(Default)]
/// struct OneAtATime {
///     busy: Mutex<bool>,
///     waiting: Mutex<VecDeque<(Waiter, Waker)>>,
/// }
///
/// impl Executor for OneAtATime {
///     fn execute(&self, job: Job) -> Result<(), Rejected> {
///         *self.busy.lock().unwrap() = true;
///         std::thread::spawn(move || job.run());
///         Ok(())
///     }
///
///     fn poll_execute(&self, job: Job, cx: &mut Context<'_>, waiter: &Waiter) -> Result<Submit, Rejected> {
///         let mut busy = self.busy.lock().unwrap();
///         self.waiting.lock().unwrap().retain(|(id, _)| id != waiter);
///         if *busy {
///             self.waiting.lock().unwrap().push_back((*waiter, cx.waker().clone()));
///             return Ok(Submit::Full(job)); // the caller stays pending until woken
///         }
///         *busy = true;
///         let this: &'static OneAtATime = &EXEC;
///         std::thread::spawn(move || {
///             job.run();
///             *this.busy.lock().unwrap() = false;
///             if let Some((_, waker)) = this.waiting.lock().unwrap().pop_front() {
///                 waker.wake();
///             }
///         });
///         Ok(Submit::Accepted)
///     }
/// }
///
/// static EXEC: std::sync::LazyLock<OneAtATime> = std::sync::LazyLock::new(OneAtATime::default);
///
/// let calls = (0..4).map(|i| async_wrap::spawn_on(&EXEC, move || i * 2));
/// let results = futures::executor::block_on(futures::future::join_all(calls));
/// assert_eq!(results, vec![0, 2, 4, 6]);
/// ```
#[derive(Debug)]
pub enum Submit {
    /// The job will run.
    Accepted,
    /// There is no room now. The job is given back, and the caller's waker is registered: it
    /// is woken when there may be room, and then submits the job again.
    Full(Job),
}

/// Identifies one waiting future to an [`Executor`] that applies back-pressure.
///
/// ```
/// use async_wrap::Waiter;
///
/// let (a, b) = (Waiter::new(), Waiter::new());
/// assert_ne!(a, b); // each waiting future has its own identity
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Waiter(u64);

impl Waiter {
    /// A waiter identity no other waiter has.
    ///
    /// ```
    /// let waiter = async_wrap::Waiter::new();
    /// assert_eq!(waiter, waiter);
    /// ```
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Waiter(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for Waiter {
    fn default() -> Self {
        Self::new()
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
///         assert_eq!(job.name(), "closure");
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
    ///         assert_eq!(job.name(), "closure"); // `module::function` for a wrapped function
    ///         job.run();
    ///         Ok(())
    ///     }
    /// }
    /// static NAMES: Names = Names;
    /// futures::executor::block_on(async_wrap::spawn_on(&NAMES, || ()));
    /// ```
    pub fn name(&self) -> &'static str {
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
            .field("name", &self.name())
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
        write!(f, "job `{}` was rejected: {}", self.job.name(), self.reason)
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
/// Built from what `#[async_wrap(executor = EXPR)]` names, or through [`IntoExecutor`]. Cloning it
/// is free for `'static` executors and one reference-count increment for shared ones.
///
/// ```
/// use std::sync::Arc;
/// use async_wrap::{BlockingPool, ExecutorRef, IntoExecutor};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// let shared = Arc::new(BlockingPool::with_max_threads(1));
/// let handles = [(&POOL).into_executor(), shared.into_executor()];
/// assert!(matches!(handles[0], ExecutorRef::Static(_)));
/// assert!(matches!(handles[1], ExecutorRef::Shared(_)));
/// let fut = async_wrap::spawn_on(handles[1].clone(), || 4);
/// assert_eq!(futures::executor::block_on(fut), 4);
/// ```
#[derive(Clone)]
pub enum ExecutorRef {
    /// An executor that lives for the whole program: a `static`, or a leaked value.
    Static(&'static dyn Executor),
    /// An executor shared through an [`Arc`].
    Shared(Arc<dyn Executor>),
}

impl ExecutorRef {
    /// The [default pool](crate::default_pool) (built on first use).
    ///
    /// ```
    /// use async_wrap::{Executor, ExecutorRef};
    ///
    /// assert_eq!(ExecutorRef::default_pool().get().name(), None); // messages say "the default pool"
    /// ```
    pub fn default_pool() -> Self {
        ExecutorRef::Static(crate::default_pool())
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
        match self {
            ExecutorRef::Static(exec) => *exec,
            ExecutorRef::Shared(exec) => &**exec,
        }
    }
}

impl fmt::Debug for ExecutorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            ExecutorRef::Static(_) => "Static",
            ExecutorRef::Shared(_) => "Shared",
        };
        f.debug_tuple(kind)
            .field(&self.get().name().unwrap_or("<unnamed executor>"))
            .finish()
    }
}

/// The values the functions that take an executor accept, turned into an [`ExecutorRef`].
///
/// What [`spawn_on`](crate::spawn_on), [`stream_on`](crate::stream_on) and
/// [`Unblock::with_executor`](crate::Unblock::with_executor) take:
///
/// | value | for |
/// |---|---|
/// | `&'static E` | `&IO` where `static IO: BlockingPool` |
/// | `&'static LazyLock<E>` | `&POOL` where `static POOL: LazyLock<BlockingPool>` |
/// | `Arc<E>`, `&Arc<E>` | a shared pool |
/// | `ExecutorRef`, `&ExecutorRef` | a handle |
///
/// (`#[async_wrap(executor = EXPR)]` accepts more forms, `dyn Executor` and `Box` included; see
/// the attribute's documentation.)
///
/// # Example
///
/// ```
/// use async_wrap::{BlockingPool, IntoExecutor};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(2).thread_name("io");
/// let handle = (&IO).into_executor();
/// assert_eq!(handle.get().name(), Some("io"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an async-wrap executor",
    label = "expected a static executor, a `LazyLock` of one, or an `Arc` of one",
    note = "this takes a `&'static` reference to a type implementing `async_wrap::Executor` \
            (such as `&POOL` for a `static POOL: BlockingPool`), to a `LazyLock` of one, or an `Arc` \
            of one"
)]
pub trait IntoExecutor {
    /// Converts `self` into a handle the future can keep.
    fn into_executor(self) -> ExecutorRef;
}

impl<E: Executor + 'static> IntoExecutor for &'static E {
    fn into_executor(self) -> ExecutorRef {
        ExecutorRef::Static(self)
    }
}

impl<E: Executor + 'static, F: FnOnce() -> E> IntoExecutor for &'static LazyLock<E, F> {
    fn into_executor(self) -> ExecutorRef {
        let executor: &'static E = LazyLock::force(self);
        ExecutorRef::Static(executor)
    }
}

impl<E: Executor + 'static> IntoExecutor for Arc<E> {
    fn into_executor(self) -> ExecutorRef {
        ExecutorRef::Shared(self)
    }
}

impl<E: Executor + 'static> IntoExecutor for &Arc<E> {
    fn into_executor(self) -> ExecutorRef {
        ExecutorRef::Shared(Arc::clone(self) as Arc<dyn Executor>)
    }
}

impl IntoExecutor for ExecutorRef {
    fn into_executor(self) -> ExecutorRef {
        self
    }
}

impl IntoExecutor for &ExecutorRef {
    fn into_executor(self) -> ExecutorRef {
        self.clone()
    }
}
