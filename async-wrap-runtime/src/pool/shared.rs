//! The state a pool's threads share: the queue, who is idle, who waits for room, and the
//! worker loop.
//!
//! Everything sits behind one mutex, taken a few times per job and never while user code runs.
//! The accounting rests on two invariants, both kept under that lock:
//!
//! - `idle + notified` is the number of threads ready for work (between jobs, or waiting). A
//!   submitter that finds `idle > 0` claims one (`idle -= 1; notified += 1`), so two submitters
//!   never count on the same thread; a thread that takes a job takes a claim if there is one,
//!   else removes itself from `idle`.
//! - Claims are made only with a push and taken only with a pop, so there are never more claims
//!   than queued jobs: a thread that finds the queue empty holds no claim.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::shutdown::{RunningJob, ShutdownReport};

/// A job a thread runs: its name and when it started.
type Started = (&'static str, Instant);
use super::{Config, Extras, Hook, Metrics, QueueFull};
use crate::executor::{Job, RejectReason, Rejected, Submit, Waiter};
use crate::task::Outcome;

/// The thread-name prefix when none is configured.
pub(crate) const DEFAULT_NAME: &str = "async-wrap";

thread_local! {
    /// On a pool's worker thread: the pool's identity and the thread's number. It lets a call
    /// made from inside a job on the same pool run inline when the pool is saturated.
    static WORKER: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

pub(super) struct Shared {
    config: Config,
    /// The thread-name prefix.
    name: String,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    state: Mutex<State>,
    /// Idle threads wait here for a job, or for shutdown.
    work: Condvar,
    /// Signalled when a thread exits, for `shutdown`.
    drained: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    notified: usize,
    /// Threads blocked in `Condvar::wait`: only they need a notification.
    sleepers: usize,
    shut_down: bool,
    /// Futures waiting for room in a full queue, oldest first.
    waiters: VecDeque<(Waiter, Waker)>,
    /// The job each busy thread runs, by thread number, with when it started.
    running: HashMap<u64, Started>,
    /// Join handles of the threads, by number. A thread that exits before shutdown drops its
    /// own; during shutdown it leaves it, and its number in `exited`, for `shutdown` to join.
    workers: HashMap<u64, JoinHandle<()>>,
    exited: Vec<u64>,
    /// Threads that have decided to leave (and no longer count in `metrics.threads`) but are
    /// still running their stop hook.
    exiting: usize,
    metrics: Metrics,
}

impl Shared {
    /// The shared state of a pool, with its `min_threads` threads started.
    pub(super) fn start(config: Config, extras: Option<&Extras>) -> Arc<Self> {
        let extras = extras.unwrap_or(&Extras {
            name: None,
            on_thread_start: None,
            on_thread_stop: None,
        });
        let shared = Arc::new(Shared {
            config,
            name: extras
                .name
                .clone()
                .or_else(|| config.name.map(str::to_owned))
                .unwrap_or_else(|| DEFAULT_NAME.to_owned()),
            on_thread_start: extras.on_thread_start.clone(),
            on_thread_stop: extras.on_thread_stop.clone(),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                notified: 0,
                sleepers: 0,
                shut_down: false,
                waiters: VecDeque::new(),
                running: HashMap::new(),
                workers: HashMap::new(),
                exited: Vec::new(),
                exiting: 0,
                metrics: Metrics::default(),
            }),
            work: Condvar::new(),
            drained: Condvar::new(),
        });
        for _ in 0..config.min_threads {
            let mut state = shared.lock();
            // A failure here leaves the pool to start threads on demand instead.
            let _ = Shared::grow(&shared, &mut state, false);
        }
        shared
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This pool's identity, for the `WORKER` thread-local.
    fn id(this: &Arc<Self>) -> usize {
        Arc::as_ptr(this).addr()
    }

    /// The number of the current thread if it is one of this pool's.
    fn own_worker(this: &Arc<Self>) -> Option<u64> {
        WORKER
            .get()
            .and_then(|(pool, number)| (pool == Shared::id(this)).then_some(number))
    }

    pub(super) fn metrics(&self) -> Metrics {
        let state = self.lock();
        Metrics {
            // Jobs already handed to a thread (claimed) are on their way, not waiting.
            queued: state.queue.len() - state.notified,
            running: state.running.len(),
            idle_threads: state.metrics.threads.saturating_sub(state.running.len()),
            ..state.metrics
        }
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    /// Hands `job` to a thread, queues it, or applies the full-queue policy. `wait` is the
    /// caller's context when it can wait for room (`poll_execute`).
    pub(super) fn submit(
        this: &Arc<Self>,
        job: Job,
        wait: Option<(&mut Context<'_>, Waiter)>,
    ) -> Result<Submit, Rejected> {
        let mut state = this.lock();
        if let Some((_, waiter)) = &wait {
            // A retry: whatever registration this waiter had is settled by this call.
            if !state.waiters.is_empty() {
                state.waiters.retain(|(id, _)| id != waiter);
            }
        }
        if state.shut_down {
            state.metrics.rejected += 1;
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        let saturated = state.idle == 0 && state.metrics.threads >= this.config.max_threads;
        if saturated && Shared::own_worker(this).is_some() {
            // A job of this pool waits on this call, and no thread is free: run it here rather
            // than deadlock.
            drop(state);
            this.run_inline(job);
            return Ok(Submit::Accepted);
        }
        if saturated
            && this
                .config
                .queue_capacity
                .is_some_and(|cap| state.queue.len() - state.notified >= cap)
        {
            match (this.config.when_full, wait) {
                (QueueFull::Wait, Some((cx, waiter))) => {
                    state.waiters.push_back((waiter, cx.waker().clone()));
                    return Ok(Submit::Full(job));
                }
                (QueueFull::Wait | QueueFull::Reject, _) => {
                    state.metrics.rejected += 1;
                    return Err(Rejected::new(job, RejectReason::QueueFull));
                }
                (QueueFull::RunOnCaller, _) => {
                    drop(state);
                    this.run_inline(job);
                    return Ok(Submit::Accepted);
                }
            }
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            // A thread that is between jobs finds the job on its own; only a sleeping one needs
            // waking (and a wake that finds the job taken is harmless).
            let wake = state.sleepers > 0;
            drop(state);
            if wake {
                this.work.notify_one();
            }
        } else if state.metrics.threads < this.config.max_threads {
            if let Err(err) = Shared::grow(this, &mut state, true) {
                if state.metrics.threads == 0 {
                    // No thread will ever take the job: give it back rather than lose it.
                    if let Some(job) = state.queue.pop_back() {
                        state.metrics.rejected += 1;
                        return Err(Rejected::new(job, RejectReason::SpawnFailed(err)));
                    }
                }
            }
        }
        Ok(Submit::Accepted)
    }

    /// Runs a job on the calling thread, counting it as the workers' jobs are counted.
    fn run_inline(&self, job: Job) {
        let finished = job.run_unwoken();
        let mut state = self.lock();
        state.metrics.inline += 1;
        state.metrics.count(finished.outcome);
        drop(state);
        finished.wake();
    }

    /// Starts one more thread, counted as ready for work at once (claimed, if it is started for
    /// a queued job), so that a call made while it starts does not start another. Called with
    /// the lock held; the thread waits for it.
    fn grow(this: &Arc<Self>, state: &mut State, claimed: bool) -> std::io::Result<()> {
        let number = state.metrics.threads_started + 1;
        let mut builder = thread::Builder::new().name(format!("{}-{number}", this.name));
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let shared = Arc::clone(this);
        let handle = builder.spawn(move || shared.work_loop(number))?;
        state.metrics.threads += 1;
        state.metrics.threads_started = number;
        state.workers.insert(number, handle);
        if claimed {
            state.notified += 1;
        } else {
            state.idle += 1;
        }
        Ok(())
    }

    /// A worker thread's life: run queued jobs, wait for more, exit after `keep_alive` without
    /// work (beyond `min_threads`), or once the pool is shut down and its queue is drained.
    fn work_loop(self: Arc<Self>, number: u64) {
        WORKER.set(Some((Shared::id(&self), number)));
        run_hook(self.on_thread_start.as_ref());
        // `grow` counted this thread as ready (in `idle` or `notified`) already.
        let mut state = self.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = state.queue.pop_front() {
                if state.notified > 0 {
                    state.notified -= 1;
                } else {
                    state.idle -= 1;
                }
                state.running.insert(number, (job.name(), Instant::now()));
                // The queue has room for one more.
                let waiter = state.waiters.pop_front();
                drop(state);
                if let Some((_, waker)) = waiter {
                    waker.wake();
                }
                let finished = job.run_unwoken();
                state = self.lock();
                state.running.remove(&number);
                state.metrics.count(finished.outcome);
                // Ready for the next job before the caller hears of this one, so that its next
                // call finds this thread idle; and a thread is free for a waiter.
                state.idle += 1;
                let waiter = state.waiters.pop_front();
                if finished.waker.is_some() || waiter.is_some() {
                    drop(state);
                    finished.wake();
                    if let Some((_, waker)) = waiter {
                        waker.wake();
                    }
                    state = self.lock();
                }
                idle_since = Instant::now();
                continue;
            }
            // The queue is empty, so this thread holds no claim, and `idle` counts it.
            let now = Instant::now();
            let may_exit = state.metrics.threads > self.config.min_threads;
            if state.shut_down || (may_exit && now >= idle_since + self.config.keep_alive) {
                // Leave the count now, under the lock that decided it: another idle thread
                // deciding at the same time must see this one gone, or both could leave and
                // take the pool below `min_threads`.
                state.idle -= 1;
                state.metrics.threads -= 1;
                state.exiting += 1;
                break;
            }
            if !may_exit && now >= idle_since + self.config.keep_alive {
                idle_since = now;
            }
            state.sleepers += 1;
            let timeout = (idle_since + self.config.keep_alive).saturating_duration_since(now);
            state = self
                .work
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.sleepers -= 1;
        }
        drop(state);
        run_hook(self.on_thread_stop.as_ref());
        let mut state = self.lock();
        state.exiting -= 1;
        if state.shut_down {
            state.exited.push(number);
        } else {
            state.workers.remove(&number);
        }
        drop(state);
        self.drained.notify_all();
    }

    /// Forgets a waiting future; if it had been woken already, wakes the next one instead.
    pub(super) fn cancel_wait(&self, waiter: Waiter) {
        let mut state = self.lock();
        let before = state.waiters.len();
        state.waiters.retain(|(id, _)| *id != waiter);
        let next = if state.waiters.len() == before {
            state.waiters.pop_front()
        } else {
            None
        };
        drop(state);
        if let Some((_, waker)) = next {
            waker.wake();
        }
    }

    /// Stops taking jobs and wakes every thread and waiter, without waiting.
    pub(super) fn close(&self) -> Vec<Waker> {
        let mut state = self.lock();
        state.shut_down = true;
        let waiters = state
            .waiters
            .drain(..)
            .map(|(_, waker)| waker)
            .collect::<Vec<_>>();
        drop(state);
        self.work.notify_all();
        waiters
    }

    /// Closes the pool, then waits (up to `timeout`) for its threads to finish the queued and
    /// running jobs and exit, and joins them.
    pub(super) fn shutdown(self: &Arc<Self>, timeout: Option<Duration>) -> ShutdownReport {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let me = Shared::own_worker(self);
        let finished_before = self.lock().metrics.finished();
        for waker in self.close() {
            waker.wake();
        }
        let mut state = self.lock();
        // Called from a worker: that thread is still running the caller's job.
        let own = usize::from(me.is_some());
        while state.metrics.threads > own || state.exiting > 0 {
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
        let report = ShutdownReport {
            finished: state.metrics.finished() - finished_before,
            still_running: state
                .running
                .iter()
                .filter(|(number, _)| Some(**number) != me)
                .map(|(_, &(name, since))| RunningJob {
                    name,
                    running_for: since.elapsed(),
                })
                .collect(),
            still_queued: state.queue.len(),
            threads_left: state.metrics.threads - own,
        };
        drop(state);
        for handle in handles {
            // The thread has left its loop; joining waits for its last instructions only.
            let _ = handle.join();
        }
        report
    }
}

impl Metrics {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Panicked => self.panicked += 1,
            Outcome::Cancelled => self.cancelled += 1,
        }
    }

    fn finished(&self) -> u64 {
        self.completed + self.panicked + self.cancelled
    }
}

/// Runs a thread hook; its panic is caught so that it cannot take the thread down.
fn run_hook(hook: Option<&Hook>) {
    if let Some(hook) = hook {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| hook()));
    }
}
