//! [`ShutdownReport`]: what [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout)
//! found at its deadline.

use std::time::Duration;

/// The outcome of [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout).
///
/// Jobs still running or queued at the deadline are not dropped: the pool's threads keep running
/// them after the call returns, and their futures still get their results.
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
    pub fn is_complete(&self) -> bool {
        self.still_running.is_empty() && self.still_queued == 0 && self.threads_left == 0
    }
}

/// A job that was running when a [`ShutdownReport`] was made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningJob {
    /// The wrapped function's path (`crate::module::name`), or `"closure"`.
    pub name: &'static str,
    /// How long it had run.
    pub running_for: Duration,
}
