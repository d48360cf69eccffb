//! [`BlockingFuture`]: the future a wrapped call returns, and [`Checked`], its form that
//! reports a refused call as an error.

use std::fmt;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::call::adaptive;
use crate::call::detached;
use crate::call::task::{Ended, Output, Task};
use crate::executor::{self, ExecutorRef, IntoExecutor, Job, RejectReason, Submit, Waiter};
use crate::panic_guard::drop_guarded;
use crate::stats::call_site::{self, CallSite};
use crate::stats::call_stats::{self, End};

/// The future of one blocking call: resolves to the body's return value.
///
/// Returned by every `#[async_wrap]` function and by [`spawn_on`]. It is lazy, like an
/// `async fn`: nothing runs until it is first polled, at which point the body is handed to its
/// executor as a [`Job`]. It is `Send`, `Sync`, `Unpin` and `'static` for any `T` it can carry
/// (`T: Send + 'static`), so it can be spawned, stored, raced and selected on.
///
/// - **Panics** in the body are caught on the worker and resumed here, when the future is polled,
///   with the original payload; the worker thread lives on.
/// - **Dropping** the future before the job starts means the body never runs. Once it has
///   started it runs to completion and its result is dropped; the body can call
///   [`is_cancelled`](crate::is_cancelled) to stop early.
/// - **Back-pressure**: if the executor's queue is full and its policy is to wait, the future
///   stays pending until there is room, without blocking the thread that polls it.
/// - **Refusal**: if the executor refuses the job (after [`BlockingPool::shutdown`], or a full
///   queue under [`QueueFull::Reject`]) or drops it unrun, polling panics with a message naming
///   the function and the executor. [`checked`](BlockingFuture::checked) returns a
///   [`CallError`] instead.
///
/// [`BlockingPool::shutdown`]: crate::BlockingPool::shutdown
/// [`QueueFull::Reject`]: crate::QueueFull::Reject
///
/// # Example
///
/// ```
/// use async_wrap::{spawn_on, BlockingFuture, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
///
/// let fut: BlockingFuture<u64> = spawn_on(&POOL, || (1..=20).product());
/// assert_eq!(futures::executor::block_on(fut), 2_432_902_008_176_640_000);
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct BlockingFuture<T> {
    /// The job, until an executor accepts it.
    job: Option<Job>,
    /// Where the job goes; kept for messages.
    executor: ExecutorRef,
    /// Set once the executor has asked this future to wait for room.
    waiter: Option<Waiter>,
    /// Who the call is: the function, and how the caller named the executor.
    site: &'static CallSite,
    /// The result slot, until the result is taken.
    output: Option<Arc<dyn Output<T>>>,
    /// Where the call was made, when known: named in the panic of a refused call.
    caller: Option<&'static panic::Location<'static>>,
    /// `None` until the job is first handed to the executor; then whether the call is counted
    /// in its site's statistics.
    counted: Option<bool>,
    /// How many calls this thread had submitted when the future was made: for the adaptive
    /// wait, which waits only for a future submitted before any other call made after it.
    born: u64,
    /// Why the executor refused the job at [`start`](Self::start): the first poll reports it
    /// (the job, refused once, is not submitted again).
    refused: Option<RejectReason>,
}

impl<T: Send + 'static> BlockingFuture<T> {
    /// A future that will run `body` on `executor` when first polled. `site` names the job (in
    /// shutdown reports and error messages), and the executor when it has no name of its own.
    pub(crate) fn new<F>(executor: ExecutorRef, site: &'static CallSite, body: F) -> Self
    where
        F: FnOnce() -> T + Send + 'static,
    {
        // With `tracing`, the caller's span at the call is entered around the body.
        #[cfg(feature = "tracing")]
        let body = {
            let span = tracing::Span::current();
            move || span.in_scope(body)
        };
        let task = Task::new(site, body);
        BlockingFuture {
            job: Some(Job::new(task.clone())),
            executor,
            waiter: None,
            site,
            output: Some(task),
            caller: None,
            counted: None,
            born: adaptive::submits(),
            refused: None,
        }
    }
}

impl<T> BlockingFuture<T> {
    /// This future, remembering that it was made by the call at `caller`.
    pub(crate) fn called_at(mut self, caller: &'static panic::Location<'static>) -> Self {
        self.caller = Some(caller);
        self
    }

    /// This future, with a refused or lost job reported as an `Err` rather than a panic. A panic
    /// in the body is still resumed: it is the body's, not the dispatch's.
    ///
    /// ```
    /// use async_wrap::{spawn_on, BlockingPool, CallError};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("reports");
    /// POOL.shutdown();
    ///
    /// let result = futures::executor::block_on(spawn_on(&POOL, || 42).checked());
    /// let err: CallError = result.unwrap_err();
    /// assert_eq!(err.function(), "closure");
    /// assert_eq!(err.executor(), "reports");
    /// assert!(err.is_shut_down());
    /// ```
    pub fn checked(self) -> Checked<T> {
        Checked(self)
    }

    /// Starts the call now: hands the job to the executor at once, as
    /// `tokio::task::spawn_blocking` does, instead of at the first poll. The future still
    /// resolves to the body's result; awaiting it later waits only for what is left.
    ///
    /// A call is lazy like an `async fn`: code that makes a call, does other work, then awaits
    /// it runs the two one after the other unless the call is started. Where the executor has
    /// no room now (a full queue under [`QueueFull::Wait`]), nothing is lost: the job stays
    /// with the future, and its first poll submits it (waiting for room) as without `start`.
    /// Where the executor refuses the job, the body is dropped here, where the refusal is
    /// learnt, and the first poll reports the refusal (counted once, in the pool's
    /// `rejected` and the call site's `refused`). A started call is never waited for on
    /// this thread (the adaptive wait applies to calls submitted by their first poll), and a
    /// started call whose future is dropped before its job began is cancelled as usual.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use async_wrap::{spawn_on, BlockingPool};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
    ///
    /// let (ran, seen) = mpsc::channel();
    /// let call = spawn_on(&POOL, move || {
    ///     ran.send(()).unwrap();
    ///     6 * 7
    /// })
    /// .start();
    /// // The body runs while this thread does other work, before the future is ever polled.
    /// seen.recv_timeout(Duration::from_secs(10)).expect("the call started");
    /// assert_eq!(futures::executor::block_on(call), 42);
    /// ```
    ///
    /// [`QueueFull::Wait`]: crate::QueueFull::Wait
    pub fn start(mut self) -> Self {
        let Some(job) = self.job.take() else {
            return self;
        };
        if self.counted.is_some() {
            // Polled before, and waiting for room: its next poll goes on waiting.
            self.job = Some(job);
            return self;
        }
        let counted = call_stats::call_statistics_enabled();
        self.counted = Some(counted);
        if counted {
            self.site.submitted();
        }
        if let Some(output) = &self.output {
            // No waker yet: the first poll registers the task's.
            output.submit(None, Instant::now(), counted);
        }
        let waiter = Waiter::new();
        let mut cx = Context::from_waker(Waker::noop());
        match executor::poll_submit(self.executor.get(), job, &mut cx, waiter) {
            Ok(Submit::Accepted) => {}
            Ok(Submit::Full(job)) => {
                // No room: no waker here to wake, so the place is given up, and the first poll
                // asks again with the task's waker.
                executor::cancel_wait(self.executor.get(), waiter);
                self.job = Some(job);
            }
            Err(rejected) => {
                let (job, reason) = rejected.into_parts();
                // Dropped unrun: the call ends `refused` now, and its first poll says why.
                drop(job);
                self.refused = Some(reason);
            }
        }
        self
    }

    /// The executor's own name, else the expression that named it.
    fn executor_name(&self) -> &str {
        self.executor.get().name().unwrap_or(self.site.executor())
    }

    fn error(&self, kind: CallErrorKind) -> CallError {
        CallError {
            site: self.site,
            executor: self.executor_name().to_owned(),
            kind,
        }
    }

    pub(crate) fn poll_checked(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, CallError>> {
        let polled = self.poll_inner(cx);
        if polled.is_pending() {
            adaptive::pending();
        }
        polled
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, CallError>> {
        if let Some(reason) = self.refused.take() {
            self.output = None;
            return Poll::Ready(Err(self.error(CallErrorKind::Rejected(reason))));
        }
        if let Some(job) = self.job.take() {
            let mut wait_for = None;
            let counted = if let Some(counted) = self.counted {
                counted
            } else {
                // The first submission: the call counts from here (or not at all).
                let counted = call_stats::call_statistics_enabled();
                self.counted = Some(counted);
                let alone = adaptive::submitting(self.born, cx.waker());
                if counted {
                    self.site.submitted();
                    if alone {
                        wait_for = adaptive::budget(self.site, self.executor.get());
                    }
                }
                counted
            };
            if let Some(output) = &self.output {
                // Before the job can finish: the future looks at the task again only when woken.
                // A call whose result this thread waits for registers its waker only if the
                // wait does not pay (by `poll_output` below, which sees a result that came).
                let waker = if wait_for.is_none() {
                    Some(cx.waker())
                } else {
                    None
                };
                output.submit(waker, Instant::now(), counted);
            }
            let waiter = *self.waiter.get_or_insert_with(Waiter::new);
            match executor::poll_submit(self.executor.get(), job, cx, waiter) {
                Ok(Submit::Accepted) => {
                    self.waiter = None;
                    let (Some(budget), Some(output)) = (wait_for, &self.output) else {
                        return Poll::Pending;
                    };
                    let outcome = adaptive::wait(budget, || output.is_done());
                    self.site.site_stats().waits().waited(outcome);
                }
                Ok(Submit::Full(job)) => {
                    self.job = Some(job);
                    if wait_for.is_some() {
                        // Not submitted: register the waker now, as a retry does.
                        if let Some(output) = &self.output {
                            output.submit(Some(cx.waker()), Instant::now(), counted);
                        }
                    }
                    return Poll::Pending;
                }
                Err(rejected) => {
                    self.waiter = None;
                    self.output = None;
                    let (job, reason) = rejected.into_parts();
                    // The job is not lost: this future reports it.
                    drop(job);
                    return Poll::Ready(Err(self.error(CallErrorKind::Rejected(reason))));
                }
            }
        }
        let output = self
            .output
            .as_ref()
            .expect("`BlockingFuture` polled after it completed");
        let mut polled = output.poll_output(cx);
        if polled.is_pending() {
            // A job queued on the pool whose worker polls this future, with every thread busy:
            // it runs here rather than wait for a thread that this one may be keeping busy.
            if let Some(pool) = executor::blocking_pool(self.executor.get()) {
                let task = Arc::clone(output);
                if pool.run_waiting_here(self.site, move || task.run_here()) {
                    polled = output.poll_output(cx);
                }
            }
        }
        let Poll::Ready(ended) = polled else {
            return Poll::Pending;
        };
        self.output = None;
        match ended {
            Ended::Returned(value) => Poll::Ready(Ok(value)),
            Ended::Panicked(payload) => panic::resume_unwind(payload),
            Ended::Lost => Poll::Ready(Err(self.error(CallErrorKind::Lost))),
        }
    }
}

impl<T> BlockingFuture<T> {
    /// Drops this future, but lets its job run (if it was submitted) with
    /// [`is_cancelled`](crate::is_cancelled) true, so that what the body owns, and what it
    /// returns, are dropped on the executor's thread rather than here.
    ///
    /// - A job queued or running finishes there, and its result is dropped there.
    /// - A result already there, not collected, is handed to the executor in a job of its own,
    ///   to be dropped there.
    /// - A job not yet accepted (waiting for room, or never polled) is handed to the executor
    ///   now, and goes on waiting for room, asynchronously, if it must.
    ///
    /// Only an executor that refuses those jobs (shut down) has them dropped elsewhere: where
    /// the refusal is learnt, this thread for a pool that was shut down before the drop.
    pub(crate) fn abandon_running(mut self)
    where
        T: Send + 'static,
    {
        if let Some(output) = self.output.take() {
            if let Some(result) = output.abandon_running() {
                detach(&self.executor, self.site, move || drop_guarded(result));
            }
        }
        if let Some(job) = self.job.take() {
            if let Some(waiter) = self.waiter.take() {
                // A new registration, with a waker of its own, replaces this one.
                executor::cancel_wait(self.executor.get(), waiter);
            }
            detached::submit(self.executor.clone(), job);
        }
    }
}

impl<T> Future for BlockingFuture<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.poll_checked(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(value),
            // The poll is not where the call was made: name the call's own location.
            Poll::Ready(Err(err)) => match self.caller {
                Some(caller) => panic!("{err} (the call at {caller})"),
                None => panic!("{err}"),
            },
        }
    }
}

impl<T> Drop for BlockingFuture<T> {
    fn drop(&mut self) {
        let mut panicked = None;
        if let Some(output) = self.output.take() {
            // A counted call whose body will never run ends here.
            let (unstarted, payload) = output.abandon();
            if unstarted && self.counted == Some(true) {
                self.site.ended(End::Cancelled);
            }
            panicked = payload;
        }
        if let (Some(_), Some(waiter)) = (&self.job, &self.waiter) {
            // Waiting for room: give the place up, so that a wake-up meant for it is not lost.
            executor::cancel_wait(self.executor.get(), *waiter);
        }
        // A `Drop` of the user's (an argument, the result) panicked: resumed here, once the
        // call is counted, as dropping those values directly would have panicked. Not while
        // this thread is already unwinding, where a second panic would abort.
        if let Some(payload) = panicked {
            if std::thread::panicking() {
                crate::panic_guard::drop_payload(payload);
            } else {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl<T> fmt::Debug for BlockingFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.job, &self.waiter, &self.output) {
            _ if self.refused.is_some() => "refused",
            (Some(_), None, _) => "not yet submitted",
            (Some(_), Some(_), _) => "waiting for room",
            (None, _, Some(_)) => "submitted",
            (None, _, None) => "completed",
        };
        f.debug_struct("BlockingFuture")
            .field("function", &self.site.function())
            .field("executor", &self.executor_name())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// A [`BlockingFuture`] whose refused or lost job is an `Err(CallError)` instead of a panic:
/// from [`BlockingFuture::checked`].
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool, Checked};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// let checked: Checked<u8> = spawn_on(&POOL, || 8).checked();
/// assert_eq!(futures::executor::block_on(checked).unwrap(), 8);
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Checked<T>(BlockingFuture<T>);

impl<T> Future for Checked<T> {
    type Output = Result<T, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_checked(cx)
    }
}

/// A call whose job did not run: refused by its executor, or dropped by it unrun.
///
/// Its `Display` is the message an unchecked [`BlockingFuture`] panics with.
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("archive");
/// POOL.shutdown();
/// let err = futures::executor::block_on(spawn_on(&POOL, || ()).checked()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "async_wrap: cannot run `closure` on executor `archive`: the executor has been shut down"
/// );
/// ```
#[derive(Debug)]
pub struct CallError {
    /// Who the call was.
    site: &'static CallSite,
    /// The executor's own name, else how the call named it.
    executor: String,
    kind: CallErrorKind,
}

#[derive(Debug)]
enum CallErrorKind {
    Rejected(RejectReason),
    Lost,
}

impl CallError {
    /// The wrapped function's path, or `"closure"`.
    ///
    /// ```
    /// static POOL: async_wrap::BlockingPool = async_wrap::BlockingPool::with_max_threads(1);
    /// POOL.shutdown();
    /// let err = futures::executor::block_on(async_wrap::spawn_on(&POOL, || ()).checked()).unwrap_err();
    /// assert_eq!(err.function(), "closure");
    /// ```
    pub fn function(&self) -> &'static str {
        self.site.function()
    }

    /// The executor's name, or the expression that named it.
    ///
    /// ```
    /// static POOL: async_wrap::BlockingPool = async_wrap::BlockingPool::with_max_threads(1);
    /// POOL.shutdown();
    /// let err = futures::executor::block_on(async_wrap::spawn_on(&POOL, || ()).checked()).unwrap_err();
    /// assert_eq!(err.executor(), "spawn_on"); // the pool has no name: the expression that named it
    /// ```
    pub fn executor(&self) -> &str {
        &self.executor
    }

    /// Why the executor refused the job; `None` if it took the job and dropped it unrun.
    ///
    /// ```
    /// use async_wrap::{BlockingPool, RejectReason};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    /// POOL.shutdown();
    /// let err = futures::executor::block_on(async_wrap::spawn_on(&POOL, || ()).checked()).unwrap_err();
    /// assert!(matches!(err.reject_reason(), Some(RejectReason::ShutDown)));
    /// ```
    pub fn reject_reason(&self) -> Option<&RejectReason> {
        match &self.kind {
            CallErrorKind::Rejected(reason) => Some(reason),
            CallErrorKind::Lost => None,
        }
    }

    /// Whether the executor had been shut down.
    ///
    /// ```
    /// static POOL: async_wrap::BlockingPool = async_wrap::BlockingPool::with_max_threads(1);
    /// POOL.shutdown();
    /// let err = futures::executor::block_on(async_wrap::spawn_on(&POOL, || ()).checked()).unwrap_err();
    /// assert!(err.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self.kind, CallErrorKind::Rejected(RejectReason::ShutDown))
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (function, executor) = (self.site.function(), &self.executor);
        match &self.kind {
            CallErrorKind::Rejected(reason) => {
                write!(
                    f,
                    "async_wrap: cannot run `{function}` on executor `{executor}`: {reason}"
                )
            }
            CallErrorKind::Lost => {
                write!(
                    f,
                    "async_wrap: executor `{executor}` dropped the job of `{function}` without running it"
                )
            }
        }
    }
}

impl std::error::Error for CallError {}

/// Runs `body` on `executor` with nobody awaiting it (its result is dropped on the executor's
/// thread), waiting asynchronously for room if the executor asks; if the executor refuses it,
/// `body` is dropped unrun where the refusal is learnt (here, for a pool already shut down).
pub(crate) fn detach<F>(executor: &ExecutorRef, site: &'static CallSite, body: F)
where
    F: FnOnce() + Send + 'static,
{
    detached::submit(executor.clone(), Job::new(Task::new(site, body)));
}

/// Runs `body` on `executor` and returns a future of its result: the function form of
/// `#[async_wrap(executor = ...)]`.
///
/// `executor` is anything [`IntoExecutor`] accepts: `&POOL` for a `static`, a `&'static` or
/// `Arc` executor. Like the attribute's future, nothing runs until the future is first polled.
///
/// # Example
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
///
/// let text = futures::executor::block_on(spawn_on(&POOL, || "read from disk".to_uppercase()));
/// assert_eq!(text, "READ FROM DISK");
/// ```
pub fn spawn_on<M, E, F, T>(executor: E, body: F) -> BlockingFuture<T>
where
    E: IntoExecutor<M>,
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(executor.into_executor(), &call_site::SPAWN_ON, body)
}

/// Runs `body` on the [default pool](crate::default_pool): the function form of `#[async_wrap]`.
///
/// # Example
///
/// ```
/// let sum = futures::executor::block_on(async_wrap::spawn(|| (1..=100).sum::<u32>()));
/// assert_eq!(sum, 5050);
/// ```
pub fn spawn<F, T>(body: F) -> BlockingFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(ExecutorRef::default_pool(), &call_site::SPAWN, body)
}
