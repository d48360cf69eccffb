//! [`BlockingFuture`]: the future a wrapped call returns.

use std::fmt;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::executor::{ExecutorRef, IntoExecutor, Job};
use crate::task::{Output, Task};

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
///   [`BlockingPool::shutdown`](crate::BlockingPool)), with a message naming the executor and the
///   function.
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
    /// The job and where it goes, until the first poll submits it.
    submit: Option<Submit>,
    /// The result slot, until the result is taken.
    output: Option<Arc<dyn Output<T>>>,
}

struct Submit {
    job: Job,
    executor: ExecutorRef,
    /// How the caller named the executor, for messages when it has no name of its own.
    label: &'static str,
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
        let task = Task::new(name, body);
        BlockingFuture {
            submit: Some(Submit {
                job: Job { task: task.clone() },
                executor,
                label,
            }),
            output: Some(task),
        }
    }
}

impl<T> Future for BlockingFuture<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        if let Some(Submit {
            job,
            executor,
            label,
        }) = this.submit.take()
        {
            let exec = executor.get();
            let name = job.name();
            if let Err(rejected) = exec.execute(job) {
                this.output = None;
                panic!(
                    "async_wrap: cannot run `{name}` on executor `{exec}`: {reason}",
                    exec = exec.name().unwrap_or(label),
                    reason = rejected.reason(),
                );
            }
        }
        let output = this
            .output
            .as_ref()
            .expect("`BlockingFuture` polled after it completed");
        match output.poll_output(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.output = None;
                match result {
                    Ok(value) => Poll::Ready(value),
                    Err(payload) => panic::resume_unwind(payload),
                }
            }
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
        let state = match (&self.submit, &self.output) {
            (Some(_), _) => "not yet submitted",
            (None, Some(_)) => "submitted",
            (None, None) => "completed",
        };
        f.debug_struct("BlockingFuture")
            .field("state", &state)
            .finish()
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
        "default pool",
        "closure",
        body,
    )
}

/// What `#[async_wrap]` expands to. Not public API: the names and signatures may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use crate::executor::IntoExecutor;
    pub use crate::future::BlockingFuture;

    use super::ExecutorRef;

    /// The dispatch every shim makes: `executor` as the attribute evaluated it, `label` the
    /// executor expression as written, `name` the function's path.
    #[inline]
    pub fn call<F, T>(
        executor: ExecutorRef,
        label: &'static str,
        name: &'static str,
        body: F,
    ) -> BlockingFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        BlockingFuture::new(executor, label, name, body)
    }

    /// The default pool, as the executor of a shim without `executor = ...`.
    #[inline]
    pub fn default_executor() -> ExecutorRef {
        ExecutorRef::Static(crate::default_pool())
    }
}
