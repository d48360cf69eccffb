//! Shutdown: closing the gate, waking every thread and waiter, waiting for the threads to drain
//! the queue and exit, and [`ShutdownReport`], what
//! [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout) found at its
//! deadline.
//!
//! A thread leaves at shutdown only with the queue empty and no call entering the
//! [gate](super::gate), and `shutdown` waits for both, so a call that passed the gate always
//! has its job run, by a thread `shutdown` joins. Nothing queued is dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::shared::{Shared, State};
use crate::panic_guard::wake_guarded;
use crate::sync::MutexGuard;

/// The outcome of [`BlockingPool::shutdown_timeout`](super::BlockingPool::shutdown_timeout).
///
/// Jobs still running or queued at the deadline are not dropped: the pool's threads keep running
/// them after the call returns, and their futures still get their results.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::BlockingPool;
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
    /// let pool = async_wrap::BlockingPool::with_max_threads(1);
    /// futures::executor::block_on(async_wrap::spawn(|| ())); // another pool's work
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
/// use async_wrap::{spawn_on, BlockingPool};
///
/// let pool = Arc::new(BlockingPool::with_max_threads(1));
/// let job = spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(200)));
/// let waiter = std::thread::spawn(move || futures::executor::block_on(job));
/// while pool.metrics().running == 0 {
///     std::thread::yield_now();
/// }
/// let report = pool.shutdown_timeout(Duration::ZERO);
/// let running = &report.still_running[0];
/// assert_eq!(running.function, "closure");
/// assert!(running.running_for < Duration::from_secs(10));
/// waiter.join().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningJob {
    /// The wrapped function's path (`crate::module::name`), or `"closure"`.
    pub function: &'static str,
    /// How long it had run.
    pub running_for: Duration,
}

impl Shared {
    /// Stops taking jobs and wakes every thread and waiter, without waiting.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        self.gate.close();
        self.flags.closed.close();
        let waiters = state.waiters.take_all(&self.flags.has_waiters);
        drop(state);
        self.work.notify_all();
        self.supervise.notify_all();
        self.slow.nudge_watcher();
        // Each waiter retries and is refused. Their wakers are user code: one that panics
        // must not keep the others from being woken, nor `shutdown` from returning.
        for waker in waiters {
            wake_guarded(waker);
        }
    }

    /// A thread exited, or a call left the closed gate: wakes the blocking `shutdown` and the
    /// futures of `shutdown_async` that wait for it. Called with the lock held (given back
    /// dropped), so that a waiter between its check and its wait cannot miss it.
    pub(super) fn notify_drained(&self, mut state: MutexGuard<'_, State>) {
        let wakers = state.drain_wakers.take_all();
        drop(state);
        self.drained.notify_all();
        if self.is_shut_down() {
            self.slow.nudge_watcher();
        }
        for waker in wakers {
            wake_guarded(waker);
        }
    }

    /// Closes the pool, then waits (up to `timeout`) for its threads to finish the queued and
    /// running jobs and exit, and joins them. Blocks the calling thread.
    pub(super) fn shutdown(self: &Arc<Self>, timeout: Option<Duration>) -> ShutdownReport {
        let started = ShutdownStart::new(self, timeout);
        // The calling thread stays the waiting one: it does not wait for itself.
        let own = Own::of(self);
        let mut state = self.lock();
        while !started.is_over(self, own, &state) {
            state = match started.deadline {
                None => self
                    .drained
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        // Passed since `is_over` looked: never a wait without a timeout left
                        // (loom's `wait_timeout` does not time out).
                        break;
                    }
                    self.drained
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        started.report(self, own, state, true)
    }
}

/// The core both forms of a shutdown wait through, the blocking one (`Shared::shutdown`) and
/// the async one (`ShutdownFuture`): what a shutdown knows from its start (the jobs finished
/// until then, its deadline), when it is over (`is_over`), and what it reports (`report`).
/// Making it closes the pool.
struct ShutdownStart {
    finished_before: u64,
    deadline: Option<Instant>,
}

impl ShutdownStart {
    fn new(shared: &Arc<Shared>, timeout: Option<Duration>) -> Self {
        // A timeout too long to add (`Duration::MAX`) is no deadline.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let start = ShutdownStart {
            finished_before: shared.metrics().finished(),
            deadline,
        };
        shared.close();
        start
    }

    /// The shutdown is over for the thread `own` waiting for it: the pool has drained (see
    /// `Own::drained`), or the deadline has passed. Called with the lock held.
    fn is_over(&self, shared: &Shared, own: Own, state: &State) -> bool {
        own.drained(shared, state)
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Joins the threads that have exited, and says what is left.
    /// `join`: the blocking forms join the exited threads (waiting for their thread-local
    /// destructors, which are user code); the async form must not wait, and leaves them.
    fn report(
        &self,
        shared: &Shared,
        own: Own,
        mut state: MutexGuard<'_, State>,
        join: bool,
    ) -> ShutdownReport {
        let handles = state.threads.take_exited();
        let still_running = state
            .threads
            .slots()
            .iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != own.me)
            .filter_map(|(_, slot)| *slot.running())
            .map(|started| RunningJob {
                function: started.site.function(),
                running_for: started.since.elapsed(),
            })
            .collect();
        let threads_left = (state.metrics.threads + state.threads.exiting())
            .saturating_sub(own.threads + own.exiting);
        drop(state);
        let report = ShutdownReport {
            finished: shared.metrics().finished() - self.finished_before,
            still_running,
            still_queued: shared.queue.len(),
            threads_left,
        };
        if !join {
            // Detached: each finishes on its own.
            return report;
        }
        for handle in handles {
            // The thread has left its loop and the lock: joining waits for its last
            // instructions only, never for a job.
            let _ = handle.join();
        }
        report
    }
}

/// The thread that waits for a shutdown, if it is one of the pool's: it does not wait for
/// itself. Known where the waiting happens (the blocking call, or each poll of the future),
/// never where the shutdown was made: a future made in a job and awaited elsewhere waits for
/// that job.
#[derive(Clone, Copy)]
struct Own {
    /// The waiting thread's slot, if it is one of the pool's.
    me: Option<usize>,
    /// The waiting thread counts in `threads` (it runs a job), or in `exiting` (it runs its
    /// stop hook).
    threads: usize,
    exiting: usize,
}

impl Own {
    /// The current thread.
    fn of(shared: &Arc<Shared>) -> Self {
        let own = Shared::own_place(shared);
        let exiting = own.is_some_and(|own| own.exiting);
        Own {
            me: own.map(|own| own.slot),
            threads: usize::from(own.is_some() && !exiting),
            exiting: usize::from(exiting),
        }
    }

    /// Every thread but the waiting one has exited, no call is entering (a call past its check
    /// may still start a thread), and, unless the waiting thread is the pool's (it comes back
    /// to the queue when its job returns), nothing is queued: a report that the pool is done
    /// while a call still waits for a thread would be a call lost.
    fn drained(self, shared: &Shared, state: &State) -> bool {
        state.metrics.threads <= self.threads
            && state.threads.exiting() <= self.exiting
            && shared.gate.entering() == 0
            && (self.me.is_some() || shared.queue.is_empty())
    }
}

/// The future of [`BlockingPool::shutdown_async`](super::BlockingPool::shutdown_async) and
/// [`shutdown_timeout_async`](super::BlockingPool::shutdown_timeout_async): waits for the
/// pool's threads to drain the queue and exit without blocking the thread that polls it.
///
/// The pool stops taking jobs when the future is made, not when it is first polled: dropping
/// the future stops only the waiting, never the shutdown. It resolves when every thread has
/// left the pool; unlike the blocking forms it does not join them, since a thread's
/// thread-local destructors (user code) may still run after that, and waiting for them could
/// block the polling thread.
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool};
///
/// let pool = std::sync::Arc::new(BlockingPool::with_max_threads(2));
/// futures::executor::block_on(async {
///     let mut job = spawn_on(pool.clone(), || std::thread::sleep(std::time::Duration::from_millis(20)));
///     let _ = futures::poll!(&mut job); // submitted (a call's job is submitted at its first poll)
///     let shutdown = pool.shutdown_async(); // no new job is taken from here on
///     let ((), report) = futures::join!(job, shutdown);
///     assert!(report.is_complete());
///     assert_eq!(report.finished, 1);
/// });
/// ```
#[must_use = "the pool is shut down already; the future only waits for its threads"]
pub struct ShutdownFuture {
    shared: Option<Arc<Shared>>,
    start: ShutdownStart,
    /// This future's number, for its one entry in `drain_wakers`.
    number: u64,
    /// Wakes the task at the deadline: a thread that sleeps until then, started at the first
    /// poll that has to wait (the crate has no timer of any runtime), and told to stop when
    /// the future completes or is dropped.
    alarm: Option<(Arc<Alarm>, std::thread::Thread)>,
}

/// What the alarm thread shares with its future.
struct Alarm {
    waker: Mutex<Option<Waker>>,
    /// The future completed or was dropped: the thread exits.
    done: std::sync::atomic::AtomicBool,
}

impl ShutdownFuture {
    pub(super) fn new(shared: &Arc<Shared>, timeout: Option<Duration>) -> Self {
        /// The next future's number.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ShutdownFuture {
            start: ShutdownStart::new(shared, timeout),
            shared: Some(Arc::clone(shared)),
            number: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            alarm: None,
        }
    }

    /// Arms (or re-arms with the current waker) the deadline's alarm.
    fn arm(&mut self, deadline: Instant, waker: &Waker) {
        let waker = waker.clone();
        if let Some((alarm, _)) = &self.alarm {
            let old = alarm
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(waker);
            drop(old);
            return;
        }
        let alarm = Arc::new(Alarm {
            waker: Mutex::new(Some(waker)),
            done: std::sync::atomic::AtomicBool::new(false),
        });
        let ringing = Arc::clone(&alarm);
        let spawned = std::thread::Builder::new()
            .name("async-wrap-shutdown-alarm".into())
            .spawn(move || {
                loop {
                    if ringing.done.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::park_timeout(left);
                }
                ringing.ring();
            });
        match spawned {
            Ok(handle) => self.alarm = Some((alarm, handle.thread().clone())),
            // No alarm: be polled again at once, until the deadline.
            Err(_) => alarm.ring(),
        }
    }

    /// Tells the alarm thread, if any, to stop.
    fn disarm(&mut self) {
        if let Some((alarm, thread)) = self.alarm.take() {
            alarm.done.store(true, std::sync::atomic::Ordering::Release);
            thread.unpark();
        }
    }
}

impl Alarm {
    /// Wakes the task: at the deadline, or at once when no alarm thread could be started (it
    /// then polls again until the deadline). The waker is user code: its panic is caught.
    fn ring(&self) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            wake_guarded(waker);
        }
    }
}

impl Drop for ShutdownFuture {
    fn drop(&mut self) {
        self.disarm();
        if let Some(shared) = self.shared.take() {
            // Taken out under the lock, dropped after it: a waker is user code.
            let mut state = shared.lock();
            let entry = state.drain_wakers.take(self.number);
            drop(state);
            drop(entry);
        }
    }
}

impl Future for ShutdownFuture {
    type Output = ShutdownReport;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReport> {
        let this = &mut *self;
        let shared = Arc::clone(
            this.shared
                .as_ref()
                .expect("`ShutdownFuture` polled after it completed"),
        );
        // Cloned before the lock is taken, and dropped after it if unused: a waker is user
        // code, and may call back into the pool.
        let waker = cx.waker().clone();
        let own = Own::of(&shared);
        let mut state = shared.lock();
        if this.start.is_over(&shared, own, &state) {
            // Its waker is not needed any more: taken out, dropped after the lock.
            let unneeded = state.drain_wakers.take(this.number);
            this.shared = None;
            let report = this.start.report(&shared, own, state, false);
            this.disarm();
            drop(waker);
            drop(unneeded);
            return Poll::Ready(report);
        }
        // Only the latest waker is kept: the one before it is dropped after the lock.
        let replaced = state.drain_wakers.keep(this.number, waker);
        drop(state);
        drop(replaced);
        if let Some(deadline) = this.start.deadline {
            this.arm(deadline, cx.waker());
        }
        Poll::Pending
    }
}

impl fmt::Debug for ShutdownFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownFuture")
            .field("done", &self.shared.is_none())
            .field("deadline", &self.start.deadline)
            .finish_non_exhaustive()
    }
}
