//! [`TokioBlocking`]: wrapped calls on tokio's own blocking pool (feature `tokio`).

use tokio::runtime::Handle;

use crate::executor::{Executor, Job, RejectReason, Rejected};

/// Runs jobs on the blocking pool of a tokio runtime, with `tokio::task::spawn_blocking`:
/// `#[async_wrap(executor = tokio)]`.
///
/// [`current`](TokioBlocking::current) uses the runtime of the thread that first polls the
/// future; outside a tokio runtime that poll panics with a message saying so.
/// [`with_handle`](TokioBlocking::with_handle) uses a given runtime from anywhere.
///
/// ```
/// use async_wrap::{spawn_on, TokioBlocking};
///
/// static TOKIO: TokioBlocking = TokioBlocking::current();
///
/// let rt = tokio::runtime::Builder::new_multi_thread().thread_name("rt").build().unwrap();
/// let name = rt.block_on(spawn_on(&TOKIO, || std::thread::current().name().map(str::to_owned)));
/// assert_eq!(name.as_deref(), Some("rt")); // a thread of that runtime's blocking pool
/// ```
#[derive(Clone, Debug, Default)]
pub struct TokioBlocking {
    handle: Option<Handle>,
}

impl TokioBlocking {
    /// The blocking pool of whichever runtime polls the future.
    ///
    /// ```
    /// use async_wrap::{spawn_on, TokioBlocking};
    ///
    /// static TOKIO: TokioBlocking = TokioBlocking::current();
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(runtime.block_on(spawn_on(&TOKIO, || 1 + 1)), 2);
    /// ```
    pub const fn current() -> Self {
        TokioBlocking { handle: None }
    }

    /// The blocking pool of the runtime behind `handle`, wherever the future is polled.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use async_wrap::{spawn_on, TokioBlocking};
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let executor = Arc::new(TokioBlocking::with_handle(runtime.handle().clone()));
    /// // Polled outside the runtime, it still runs on that runtime's blocking pool.
    /// assert_eq!(futures::executor::block_on(spawn_on(executor, || 40 + 2)), 42);
    /// ```
    pub fn with_handle(handle: Handle) -> Self {
        TokioBlocking {
            handle: Some(handle),
        }
    }
}

impl Executor for TokioBlocking {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        let handle = match &self.handle {
            Some(handle) => handle.clone(),
            None => match Handle::try_current() {
                Ok(handle) => handle,
                Err(_) => {
                    return Err(Rejected::new(
                        job,
                        RejectReason::Other(
                            "there is no tokio runtime on this thread; poll the future inside a tokio \
                             runtime, or use `TokioBlocking::with_handle`"
                                .to_owned(),
                        ),
                    ));
                }
            },
        };
        // The join handle is not needed: the job reports to its own future. A runtime that is
        // shutting down drops the closure, and the job's `Drop` tells the future.
        drop(handle.spawn_blocking(move || job.run()));
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        Some("tokio")
    }
}
