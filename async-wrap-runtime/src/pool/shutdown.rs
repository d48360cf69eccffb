//! [`ShutdownReport`]: what [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout)
//! found at its deadline.

use std::time::Duration;

/// The outcome of [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout).
///
/// Jobs still running or queued at the deadline are not dropped: the pool's threads keep running
/// them after the call returns, and their futures still get their results.
///
/// ```
/// use std::time::Duration;
/// use async_wrap_runtime::BlockingPool;
///
/// let pool = BlockingPool::with_max_threads(2);
/// let report = pool.shutdown_timeout(Duration::from_secs(1));
/// assert!(report.is_complete());
/// assert_eq!((report.finished, report.still_queued, report.threads_left), (0, 0, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Jobs that finished (returned, panicked, or were skipped as cancelled) while shutting down.
    pub finished: u64,
    /// The jobs still running at the deadline, with how long each had run. A call from one of
    /// the pool's own threads does not list its own job.
    pub still_running: Vec<RunningJob>,
    /// Jobs still waiting in the queue at the deadline.
    pub still_queued: usize,
    /// Threads still alive at the deadline (not counting the calling thread).
    pub threads_left: usize,
}

impl ShutdownReport {
    /// Whether everything finished in time: no job running or queued, no thread left.
    ///
    /// ```
    /// let pool = async_wrap_runtime::BlockingPool::with_max_threads(1);
    /// futures::executor::block_on(async_wrap_runtime::spawn(|| ())); // another pool's work
    /// assert!(pool.shutdown_timeout(std::time::Duration::from_secs(1)).is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.still_running.is_empty() && self.still_queued == 0 && self.threads_left == 0
    }
}

/// A job that was running when a [`ShutdownReport`] was made.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use async_wrap_runtime::{spawn_on, BlockingPool};
///
/// let pool = Arc::new(BlockingPool::with_max_threads(1));
/// let job = spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(200)));
/// let waiter = std::thread::spawn(move || futures::executor::block_on(job));
/// while pool.metrics().running == 0 {
///     std::thread::yield_now();
/// }
/// let report = pool.shutdown_timeout(Duration::ZERO);
/// let running = &report.still_running[0];
/// assert_eq!(running.name, "closure");
/// assert!(running.running_for < Duration::from_secs(10));
/// waiter.join().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningJob {
    /// The wrapped function's path (`crate::module::name`), or `"closure"`.
    pub name: &'static str,
    /// How long it had run.
    pub running_for: Duration,
}
