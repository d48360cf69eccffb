//! [`BlockingFuture`]: the future a wrapped call returns.

use std::fmt;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::executor::{ExecutorRef, IntoExecutor, Job};
use crate::task::{Ended, Output, Task};

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
/// - **Polling** it panics if its executor refuses the job (for example after
///   [`BlockingPool::shutdown`](crate::BlockingPool)) or drops it without running it, with a
///   message naming the function and the executor.
///
/// # Example
///
/// ```
/// use async_wrap_runtime::{spawn_on, BlockingFuture, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
///
/// let fut: BlockingFuture<u64> = spawn_on(&POOL, || (1..=20).product());
/// assert_eq!(futures::executor::block_on(fut), 2_432_902_008_176_640_000);
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct BlockingFuture<T> {
    /// The job, until the first poll submits it.
    job: Option<Job>,
    /// Where the job goes; kept for messages.
    executor: ExecutorRef,
    /// How the caller named the executor, for messages when it has no name of its own.
    label: &'static str,
    /// The function's path, for messages.
    name: &'static str,
    /// The result slot, until the result is taken.
    output: Option<Arc<dyn Output<T>>>,
}

impl<T: Send + 'static> BlockingFuture<T> {
    /// A future that will run `body` on `executor` when first polled. `name` names the job (in
    /// shutdown reports and error messages), `label` names the executor when it has no name.
    pub(crate) fn new<F>(
        executor: ExecutorRef,
        label: &'static str,
        name: &'static str,
        body: F,
    ) -> Self
    where
        F: FnOnce() -> T + Send + 'static,
    {
        // With `tracing`, the caller's span at the call is entered around the body.
        #[cfg(feature = "tracing")]
        let body = {
            let span = tracing::Span::current();
            move || span.in_scope(body)
        };
        let task = Task::new(name, body);
        BlockingFuture {
            job: Some(Job::new(task.clone())),
            executor,
            label,
            name,
            output: Some(task),
        }
    }
}

impl<T> BlockingFuture<T> {
    fn executor_name(&self) -> &str {
        self.executor.get().name().unwrap_or(self.label)
    }
}

impl<T> Future for BlockingFuture<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        if let Some(job) = this.job.take() {
            if let Err(rejected) = this.executor.get().execute(job) {
                this.output = None;
                panic!(
                    "async_wrap: cannot run `{}` on executor `{}`: {}",
                    this.name,
                    this.executor_name(),
                    rejected.reason(),
                );
            }
        }
        let output = this
            .output
            .as_ref()
            .expect("`BlockingFuture` polled after it completed");
        let Poll::Ready(ended) = output.poll_output(cx) else {
            return Poll::Pending;
        };
        this.output = None;
        match ended {
            Ended::Returned(value) => Poll::Ready(value),
            Ended::Panicked(payload) => panic::resume_unwind(payload),
            Ended::Lost => panic!(
                "async_wrap: executor `{}` dropped the job of `{}` without running it",
                this.executor_name(),
                this.name,
            ),
        }
    }
}

impl<T> Drop for BlockingFuture<T> {
    fn drop(&mut self) {
        if let Some(output) = self.output.take() {
            output.abandon();
        }
    }
}

impl<T> fmt::Debug for BlockingFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.job, &self.output) {
            (Some(_), _) => "not yet submitted",
            (None, Some(_)) => "submitted",
            (None, None) => "completed",
        };
        f.debug_struct("BlockingFuture")
            .field("function", &self.name)
            .field("executor", &self.executor_name())
            .field("state", &state)
            .finish_non_exhaustive()
    }
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
/// use async_wrap_runtime::{spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
///
/// let text = futures::executor::block_on(spawn_on(&POOL, || "read from disk".to_uppercase()));
/// assert_eq!(text, "READ FROM DISK");
/// ```
pub fn spawn_on<E, F, T>(executor: E, body: F) -> BlockingFuture<T>
where
    E: IntoExecutor,
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(executor.into_executor(), "spawn_on", "closure", body)
}

/// Runs `body` on the [default pool](crate::default_pool): the function form of `#[async_wrap]`.
///
/// # Example
///
/// ```
/// let sum = futures::executor::block_on(async_wrap_runtime::spawn(|| (1..=100).sum::<u32>()));
/// assert_eq!(sum, 5050);
/// ```
pub fn spawn<F, T>(body: F) -> BlockingFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(
        ExecutorRef::Static(crate::default_pool()),
        "the default pool",
        "closure",
        body,
    )
}
