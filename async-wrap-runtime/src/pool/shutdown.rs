//! Shutdown: closing the gate, waking every thread and waiter, waiting for the threads to drain
//! the queue and exit, and [`ShutdownReport`], what
//! [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout) found at its
//! deadline.
//!
//! A thread leaves at shutdown only with the queue empty and no call entering the
//! [gate](super::gate), and `shutdown` waits for both, so a call that passed the gate always
//! has its job run, by a thread `shutdown` joins. Nothing queued is dropped.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::sync::Ordering;
use crate::sync::thread::JoinHandle;
use crate::task::wake_guarded;

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

impl Shared {
    /// Stops taking jobs and wakes every thread and waiter, without waiting.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        self.gate.close();
        self.flags.closed.store(true, Ordering::Release);
        let waiters = self.take_all_waiters(&mut state);
        drop(state);
        self.work.notify_all();
        self.supervise.notify_all();
        // Each waiter retries and is refused. Their wakers are user code: one that panics
        // must not keep the others from being woken, nor `shutdown` from returning.
        for waker in waiters {
            wake_guarded(waker);
        }
    }

    /// Closes the pool, then waits (up to `timeout`) for its threads to finish the queued and
    /// running jobs and exit, and joins them.
    pub(super) fn shutdown(self: &Arc<Self>, timeout: Option<Duration>) -> ShutdownReport {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let me = Shared::own_worker(self);
        let finished_before = self.metrics().finished();
        self.close();
        let mut state = self.lock();
        // Called from a worker: that thread is still running the caller's job.
        let own = usize::from(me.is_some());
        // A call past its shutdown check may still start a thread, so wait for it too.
        while state.metrics.threads > own || state.exiting > 0 || self.gate.entering() > 0 {
            state = match deadline {
                None => self
                    .drained
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.drained
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        let exited = std::mem::take(&mut state.exited);
        let handles: Vec<JoinHandle<()>> = exited
            .iter()
            .filter_map(|number| state.workers.remove(number))
            .collect();
        let still_running = state
            .slots
            .iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != me)
            .filter_map(|(_, slot)| *slot.running())
            .map(|(name, since)| RunningJob {
                name,
                running_for: since.elapsed(),
            })
            .collect();
        let threads_left = state.metrics.threads - own;
        drop(state);
        let report = ShutdownReport {
            finished: self.metrics().finished() - finished_before,
            still_running,
            still_queued: self.queue.len(),
            threads_left,
        };
        for handle in handles {
            // The thread has left its loop; joining waits for its last instructions only.
            let _ = handle.join();
        }
        report
    }
}
