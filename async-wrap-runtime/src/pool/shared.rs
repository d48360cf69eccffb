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
//!
//! The pool grows when jobs block, not when they are short. A job that finds no idle thread
//! starts one at once only while the pool has fewer threads than cores; beyond that it queues,
//! and a supervisor thread (started on demand, gone after `keep_alive` without work) looks
//! every [`GROW_AFTER`]: if a queued job has waited that long and some running jobs have run
//! that long (they block, rather than being short), it starts as many threads as there are such
//! jobs. So 17 calls that sleep 100 ms get 17 threads within a few milliseconds, while a burst of
//! a million microsecond jobs runs on as many threads as there are cores.
//!
//! A thread that has just finished a job spins for up to [`SPIN_FOR`] before it sleeps, so that
//! the next job of a caller making one call after another finds it awake (waking a thread whose
//! vCPU has halted costs 20–65 µs). At most one thread spins at a time.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use super::shutdown::{RunningJob, ShutdownReport};

/// A job a thread runs: its name and when it started.
type Started = (&'static str, Instant);
use super::{Config, Extras, Hook, Metrics, QueueFull};
use crate::executor::{Job, RejectReason, Rejected, Submit, Waiter};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};
use crate::task::Outcome;

/// The thread-name prefix when none is configured.
pub(crate) const DEFAULT_NAME: &str = "async-wrap";

/// How long a queued job waits for a busy thread, and a running job must have run, before the
/// supervisor starts another thread.
const GROW_AFTER: Duration = Duration::from_millis(1);

/// How long a thread that has just finished a job spins, looking for the next one, before it
/// sleeps.
#[cfg(not(async_wrap_loom))]
const SPIN_FOR: Duration = Duration::from_micros(20);

/// The first part of `SPIN_FOR`, spent busy-waiting rather than yielding.
#[cfg(not(async_wrap_loom))]
const SPIN_BUSY_FOR: Duration = Duration::from_micros(2);

#[cfg(not(async_wrap_loom))]
thread_local! {
    /// On a pool's worker thread: the pool's identity and the thread's slot. It lets a call
    /// made from inside a job on the same pool run inline when the pool is saturated.
    static WORKER: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

#[cfg(async_wrap_loom)]
loom::thread_local! {
    static WORKER: Cell<Option<(usize, usize)>> = Cell::new(None);
}

pub(super) struct Shared {
    config: Config,
    /// The thread-name prefix.
    name: String,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    /// Threads started at once, without the supervisor's evidence: one per core.
    eager_threads: usize,
    state: Mutex<State>,
    /// `queue.len()`, readable without the lock, for the spinning thread.
    queued: AtomicUsize,
    /// Idle threads wait here for a job, or for shutdown.
    work: Condvar,
    /// The supervisor waits here to be armed.
    supervise: Condvar,
    /// Signalled when a thread exits, for `shutdown`.
    drained: Condvar,
}

/// The supervisor thread, which starts threads for jobs that wait behind blocked ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Supervisor {
    /// Not running: the next job that waits starts it.
    Absent,
    /// Running, with nothing to watch.
    Idle,
    /// Running, watching jobs that wait.
    Armed,
}

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    notified: usize,
    /// Threads blocked in `Condvar::wait`: only they need a notification.
    sleepers: usize,
    /// A thread spins, looking for work, and no submitter has claimed it yet.
    spinner: bool,
    /// Jobs pushed and popped since the start, for the supervisor's "has a job waited" test.
    pushed: u64,
    popped: u64,
    supervisor: Supervisor,
    shut_down: bool,
    /// Futures waiting for room in a full queue, oldest first.
    waiters: VecDeque<(Waiter, Waker)>,
    /// The job each busy thread runs, with when it started, by the thread's slot.
    running: Vec<Option<Started>>,
    /// Slots of `running` that no thread holds.
    free_slots: Vec<usize>,
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
            eager_threads: std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(config.max_threads),
            queued: AtomicUsize::new(0),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                notified: 0,
                sleepers: 0,
                spinner: false,
                pushed: 0,
                popped: 0,
                supervisor: Supervisor::Absent,
                shut_down: false,
                waiters: VecDeque::new(),
                running: Vec::new(),
                free_slots: Vec::new(),
                workers: HashMap::new(),
                exited: Vec::new(),
                exiting: 0,
                metrics: Metrics::default(),
            }),
            work: Condvar::new(),
            supervise: Condvar::new(),
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

    /// The slot of the current thread if it is one of this pool's.
    fn own_worker(this: &Arc<Self>) -> Option<usize> {
        WORKER
            .with(Cell::get)
            .and_then(|(pool, slot)| (pool == Shared::id(this)).then_some(slot))
    }

    pub(super) fn metrics(&self) -> Metrics {
        let state = self.lock();
        let running = state.running.iter().flatten().count();
        Metrics {
            // Jobs already handed to a thread (claimed) are on their way, not waiting.
            queued: state.queue.len() - state.notified,
            running,
            idle_threads: state.metrics.threads.saturating_sub(running),
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
        if state.idle == 0 && Shared::own_worker(this).is_some() {
            // A job of this pool waits on this call, and no thread is free: run it here rather
            // than deadlock (or wait for the pool to grow).
            drop(state);
            this.run_inline(job);
            return Ok(Submit::Accepted);
        }
        let saturated = state.idle == 0 && state.metrics.threads >= this.config.max_threads;
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
        state.pushed += 1;
        this.queued.store(state.queue.len(), Ordering::Relaxed);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            // The spinning thread, or a thread between jobs, finds the job on its own; only a
            // sleeping one needs waking (and a wake that finds the job taken is harmless).
            let wake = !std::mem::take(&mut state.spinner) && state.sleepers > 0;
            drop(state);
            if wake {
                this.work.notify_one();
            }
        } else if state.metrics.threads < this.eager_threads.max(1) {
            if let Err(err) = Shared::grow(this, &mut state, true) {
                if state.metrics.threads == 0 {
                    // No thread will ever take the job: give it back rather than lose it.
                    if let Some(job) = state.queue.pop_back() {
                        state.pushed -= 1;
                        this.queued.store(state.queue.len(), Ordering::Relaxed);
                        state.metrics.rejected += 1;
                        return Err(Rejected::new(job, RejectReason::SpawnFailed(err)));
                    }
                }
            }
        } else if state.metrics.threads < this.config.max_threads
            && state.supervisor != Supervisor::Armed
        {
            // Every thread is busy: let the supervisor judge whether they block.
            let was = std::mem::replace(&mut state.supervisor, Supervisor::Armed);
            if was == Supervisor::Idle {
                drop(state);
                this.supervise.notify_one();
            } else if Shared::start_supervisor(this).is_err() {
                // Without a supervisor the pool cannot judge: grow at once instead.
                state.supervisor = Supervisor::Absent;
                let _ = Shared::grow(this, &mut state, true);
            }
        }
        Ok(Submit::Accepted)
    }

    fn start_supervisor(this: &Arc<Self>) -> std::io::Result<()> {
        let shared = Arc::clone(this);
        thread::Builder::new()
            .name(format!("{}-supervisor", this.name))
            .spawn(move || shared.supervise())
            .map(drop)
    }

    /// The supervisor's life: while armed, look every `GROW_AFTER` for jobs that wait behind
    /// blocked threads, and start threads for them; exit after `keep_alive` unarmed.
    fn supervise(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            while state.supervisor != Supervisor::Armed {
                if state.shut_down {
                    state.supervisor = Supervisor::Absent;
                    return;
                }
                let (guard, timeout) = self
                    .supervise
                    .wait_timeout(state, self.config.keep_alive)
                    .unwrap_or_else(PoisonError::into_inner);
                state = guard;
                if timeout.timed_out() && state.supervisor != Supervisor::Armed {
                    state.supervisor = Supervisor::Absent;
                    return;
                }
            }
            let (target, popped_before) = (state.pushed, state.popped);
            drop(state);
            std::thread::sleep(GROW_AFTER);
            state = self.lock();
            if state.shut_down {
                state.supervisor = Supervisor::Idle;
                continue;
            }
            let waiting = state.queue.len() - state.notified;
            let now = Instant::now();
            let blocked = state
                .running
                .iter()
                .flatten()
                .filter(|(_, since)| now.duration_since(*since) >= GROW_AFTER)
                .count();
            let room = self
                .config
                .max_threads
                .saturating_sub(state.metrics.threads);
            // A job pushed before the last look is still queued (it waited `GROW_AFTER`), the
            // threads are not getting through the queue (fewer jobs finished than there are
            // threads: they block, rather than being short or merely descheduled), and jobs have
            // run that long: start one thread per such job.
            let progress = state.popped - popped_before;
            if state.popped < target && progress < state.metrics.threads as u64 && blocked > 0 {
                for _ in 0..waiting.min(blocked).min(room) {
                    if Shared::grow(&self, &mut state, true).is_err() {
                        break;
                    }
                }
            }
            if state.queue.len() == state.notified
                || state.metrics.threads >= self.config.max_threads
            {
                state.supervisor = Supervisor::Idle;
            }
        }
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
        let slot = state.free_slots.pop().unwrap_or_else(|| {
            state.running.push(None);
            state.running.len() - 1
        });
        let shared = Arc::clone(this);
        let handle = match builder.spawn(move || shared.work_loop(number, slot)) {
            Ok(handle) => handle,
            Err(err) => {
                state.free_slots.push(slot);
                return Err(err);
            }
        };
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
    fn work_loop(self: Arc<Self>, number: u64, slot: usize) {
        WORKER.with(|worker| worker.set(Some((Shared::id(&self), slot))));
        run_hook(self.on_thread_start.as_ref());
        // `grow` counted this thread as ready (in `idle` or `notified`) already.
        let mut state = self.lock();
        let mut idle_since = Instant::now();
        // The last job run, whose caller is still to be woken.
        let mut previous: Option<crate::task::Finished> = None;
        loop {
            if let Some(job) = state.queue.pop_front() {
                state.popped += 1;
                self.queued.store(state.queue.len(), Ordering::Relaxed);
                if state.notified > 0 {
                    state.notified -= 1;
                } else {
                    state.idle -= 1;
                }
                state.running[slot] = Some((job.name(), Instant::now()));
                // The queue has room for one more.
                let waiter = state.waiters.pop_front();
                drop(state);
                // The previous job's caller hears of it only now, with this thread busy again:
                // one lock per job while the queue is not empty.
                if let Some(finished) = previous.take() {
                    finished.wake();
                }
                if let Some((_, waker)) = waiter {
                    waker.wake();
                }
                let finished = job.run_unwoken();
                state = self.lock();
                state.running[slot] = None;
                state.metrics.count(finished.outcome);
                // Ready for the next job before the caller hears of this one, so that its next
                // call finds this thread idle; and a thread is free for a waiter.
                state.idle += 1;
                if let Some((_, waker)) = state.waiters.pop_front() {
                    drop(state);
                    waker.wake();
                    state = self.lock();
                }
                previous = Some(finished);
                continue;
            }
            if let Some(finished) = previous.take() {
                drop(state);
                finished.wake();
                state = self.lock();
                idle_since = Instant::now();
                if state.queue.is_empty() && !state.spinner && !state.shut_down {
                    state = self.spin(state);
                }
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
        state.free_slots.push(slot);
        if state.shut_down {
            state.exited.push(number);
        } else {
            state.workers.remove(&number);
        }
        drop(state);
        self.drained.notify_all();
    }

    /// Spins for up to `SPIN_FOR`, without the lock, watching for a job; returns with the lock
    /// held and the spinner flag cleared (by this thread, or by the submitter that claimed it).
    fn spin<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.spinner = true;
        drop(state);
        // Under loom, one look stands for the spin: a busy loop has no bound for the model.
        #[cfg(async_wrap_loom)]
        let _ = self.queued.load(Ordering::Relaxed);
        #[cfg(not(async_wrap_loom))]
        self.spin_unlocked();
        let mut state = self.lock();
        state.spinner = false;
        state
    }

    /// The spin itself, without the lock.
    #[cfg(not(async_wrap_loom))]
    fn spin_unlocked(&self) {
        let start = Instant::now();
        // Busy for the first microseconds, which catch a caller on another core; then yielding,
        // so that a caller the scheduler put on this same core can run and submit.
        'spin: loop {
            let elapsed = start.elapsed();
            if elapsed >= SPIN_FOR {
                break;
            }
            let yielding = elapsed >= SPIN_BUSY_FOR;
            for _ in 0..if yielding { 1 } else { 64 } {
                if self.queued.load(Ordering::Relaxed) > 0 {
                    break 'spin;
                }
                if yielding {
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
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
                .enumerate()
                .filter(|(slot, _)| Some(*slot) != me)
                .filter_map(|(_, job)| *job)
                .map(|(name, since)| RunningJob {
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
