//! The state a pool's threads share: the queue, who is ready for work, who waits for room; and
//! the calls' side of it. The threads' side is in [`worker`], the supervisor in [`supervisor`].
//!
//! # The hot path takes no lock
//!
//! A call pushes its job on a lock-free queue ([`Queue`]), and a thread that has just finished a
//! job pops the next one the same way; while jobs keep coming, the two share no cache line but
//! the queue slot they hand the job through. What a thread writes for every job (the job it
//! runs and since when, its counts) sits on its own cache lines ([`Slot`]). The pool's mutex is
//! taken only to start, wake, put to sleep or retire a thread, to wait for room in a bounded
//! queue, and by the supervisor, `metrics` and `shutdown`.
//!
//! # Who is ready
//!
//! `ready` packs two counts: threads *idle* (between jobs, spinning or asleep) and idle threads
//! *claimed* by a call. A call that finds an idle thread claims it (idle − 1, claimed + 1), so
//! two calls never count on the same thread and the second one starts another; a thread leaving
//! the ready set with a job takes a claim if there is one, else its idle count. A thread that
//! goes from job to job without finding the queue empty touches neither. A busy thread may pop a
//! job another thread was claimed for; that thread finds the queue empty and turns the claim
//! back into an idle count, so a claim only ever delays growth, never loses a job: every ready
//! thread looks at the queue again, under the lock, before it sleeps, and a call that counted
//! on a thread wakes a sleeper after its push (the two sides fenced, so one sees the other).
//!
//! # When the pool grows
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
//!
//! # Shutdown
//!
//! `gate` holds the shutdown flag and the count of calls past their shutdown check that have
//! not finished submitting, in one word: a call enters with one `fetch_add` that also tells it
//! whether the pool is shut down, so no call can slip in after `close` unseen. A thread leaves at
//! shutdown only with the queue empty and no call entering, and `shutdown` waits for them too,
//! so a call that passed the check always has its job run, by a thread `shutdown` joins.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

mod supervisor;
mod worker;

use super::queue::Queue;
use super::shutdown::{RunningJob, ShutdownReport};
use super::{Config, Extras, Hook, Metrics, QueueFull};
use crate::executor::{Job, RejectReason, Rejected, Submit, Waiter};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, fence,
};
use crate::task::{Outcome, drop_guarded, wake_guarded};

/// A job a thread runs: its name and when it started.
type Started = (&'static str, Instant);

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

/// One idle thread in `Shared::ready`.
const IDLE: u64 = 1;
/// One claimed thread in `Shared::ready`.
const CLAIMED: u64 = 1 << 32;
/// In `Shared::ready`: a thread spins, looking for work, and no call has counted on it yet.
const SPINNER: u64 = 1 << 63;

fn idle(ready: u64) -> u64 {
    ready & (CLAIMED - 1)
}

fn claimed(ready: u64) -> u64 {
    (ready & !SPINNER) >> 32
}

/// In `Shared::gate`: the pool is shut down.
const SHUT_DOWN: usize = 1 << (usize::BITS - 1);

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

/// A value on cache lines of its own (two, against the adjacent-line prefetcher), so that what
/// one thread writes often does not slow down what others read.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a worker thread writes for every job, on cache lines of its own; read by `metrics`, the
/// supervisor and `shutdown`. A slot outlives its thread and is reused by a later one, its
/// counts carrying on.
struct Slot {
    /// The job running now, with when it started.
    running: Mutex<Option<Started>>,
    /// Jobs this slot's threads took from the queue.
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
}

impl Slot {
    fn new() -> Self {
        Slot {
            running: Mutex::new(None),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }

    fn running(&self) -> MutexGuard<'_, Option<Started>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one to a count only this slot's thread writes: no read-modify-write needed.
    fn bump(count: &AtomicU64) {
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn count(&self, outcome: Outcome) {
        Slot::bump(match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Panicked => &self.panicked,
            Outcome::Cancelled => &self.cancelled,
        });
    }
}

pub(super) struct Shared {
    config: Config,
    /// The thread-name prefix.
    name: String,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    /// Threads started at once, without the supervisor's evidence: one per core.
    eager_threads: usize,
    queue: Queue,
    /// `SHUT_DOWN`, and the calls past their shutdown check that have not finished submitting
    /// (see the module's documentation). Written by calls, on a line of its own.
    gate: Padded<AtomicUsize>,
    /// What calls read on every submission and threads write only when they go idle or busy.
    flags: Padded<Flags>,
    state: Padded<Mutex<State>>,
    /// Idle threads wait here for a job, or for shutdown.
    work: Condvar,
    /// The supervisor waits here to be armed.
    supervise: Condvar,
    /// Signalled when a thread exits, for `shutdown`.
    drained: Condvar,
}

struct Flags {
    /// Idle and claimed threads, and `SPINNER`: see the module's documentation.
    ready: AtomicU64,
    /// Threads asleep on `work` (or about to be): only they need a notification.
    sleepers: AtomicUsize,
    /// `state.metrics.threads`, readable without the lock.
    threads: AtomicUsize,
    /// The supervisor is armed, watching queued jobs.
    armed: AtomicBool,
    /// `state.waiters` is not empty.
    has_waiters: AtomicBool,
    /// `SHUT_DOWN` is set in `gate`: a copy the threads read between jobs, off the line calls
    /// write.
    closed: AtomicBool,
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

/// Where `submit_bounded` puts a job (see `place_bounded`).
enum Placement {
    /// Into the queue; `counted` if a thread was claimed or started for it.
    Queue { counted: bool },
    /// Run on the calling thread.
    Inline,
    /// Registered as a waiter: the future keeps the job and is woken when there may be room.
    Wait,
    /// Refused.
    Refuse(RejectReason),
}

struct State {
    supervisor: Supervisor,
    /// Futures waiting for room in a full queue, oldest first.
    waiters: VecDeque<(Waiter, Waker)>,
    /// The threads' slots, by number; a slot is held by one thread at a time.
    slots: Vec<Arc<Padded<Slot>>>,
    /// Slots no thread holds.
    free_slots: Vec<usize>,
    /// Join handles of the threads, by number. A thread that exits before shutdown drops its
    /// own; during shutdown it leaves it, and its number in `exited`, for `shutdown` to join.
    workers: HashMap<u64, JoinHandle<()>>,
    exited: Vec<u64>,
    /// Threads that have decided to leave (and no longer count in `metrics.threads`) but are
    /// still running their stop hook.
    exiting: usize,
    /// `threads`, `threads_started`, `inline`, `rejected`, and the outcomes of inline jobs; the
    /// workers' outcomes are in their slots.
    metrics: Metrics,
}

impl State {
    /// Threads that may still start under `max_threads`. A thread that has left the counts but
    /// is still running its stop hook holds its place until it has exited, so that the limit
    /// holds for the OS threads, not only for those taking jobs.
    fn room(&self, max_threads: usize) -> usize {
        max_threads.saturating_sub(self.metrics.threads + self.exiting)
    }
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
                .min(config.max_threads)
                .max(1),
            queue: Queue::new(),
            gate: Padded(AtomicUsize::new(0)),
            flags: Padded(Flags {
                ready: AtomicU64::new(0),
                sleepers: AtomicUsize::new(0),
                threads: AtomicUsize::new(0),
                armed: AtomicBool::new(false),
                has_waiters: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
            state: Padded(Mutex::new(State {
                supervisor: Supervisor::Absent,
                waiters: VecDeque::new(),
                slots: Vec::new(),
                free_slots: Vec::new(),
                workers: HashMap::new(),
                exited: Vec::new(),
                exiting: 0,
                metrics: Metrics::default(),
            })),
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
        let mut metrics = state.metrics;
        let mut running = 0;
        for slot in &state.slots {
            running += usize::from(slot.running().is_some());
            metrics.completed += slot.completed.load(Ordering::Relaxed);
            metrics.panicked += slot.panicked.load(Ordering::Relaxed);
            metrics.cancelled += slot.cancelled.load(Ordering::Relaxed);
        }
        let ready = self.flags.ready.load(Ordering::Acquire);
        Metrics {
            // A thread running its stop hook is still alive, and still holds its place.
            threads: metrics.threads + state.exiting,
            // Jobs a ready thread is on its way to take are not waiting.
            queued: self.waiting(ready),
            running,
            idle_threads: metrics.threads.saturating_sub(running),
            ..metrics
        }
    }

    /// Queued jobs beyond the threads ready to take them (claimed for a job, or idle), as
    /// the ready word `ready` counts them. A ready thread may take any job, not the one it was
    /// claimed for, so claims alone can undercount the threads on their way by one for a
    /// moment; counting every ready thread keeps this exact whenever the word is. The word
    /// must be read before the queue: a pop in between then lowers the count, never raises it.
    fn waiting(&self, ready: u64) -> usize {
        let ready = usize::try_from(idle(ready) + claimed(ready)).unwrap_or(usize::MAX);
        self.queue.len().saturating_sub(ready)
    }

    #[cfg(all(test, async_wrap_loom))]
    pub(super) fn ready_word(&self) -> u64 {
        self.flags.ready.load(Ordering::SeqCst)
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.gate.load(Ordering::SeqCst) & SHUT_DOWN != 0
    }

    /// Calls between their shutdown check and the end of their submission.
    fn entering(&self) -> usize {
        self.gate.load(Ordering::SeqCst) & !SHUT_DOWN
    }

    /// Counts on an idle thread for a job: true if there was one. Done before the push, so that
    /// the thread cannot take the job as an unclaimed one and leave this call to start another;
    /// the spinner's turn is taken only after the push (`wake_one`), or the spinner could
    /// stop looking before the job is there, and sleep with nobody to wake it.
    fn claim(&self) -> bool {
        self.flags
            .ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ready| {
                (idle(ready) > 0).then(|| ready - IDLE + CLAIMED)
            })
            .is_ok()
    }

    /// After a push that counted on a ready thread: takes the spinner's turn if a thread spins
    /// (it sees the job on its own), else wakes a sleeping thread. The push and the look at
    /// `sleepers` are fenced against a thread's count in `sleepers` and its look at the queue,
    /// so one of the two sees the other.
    fn wake_one(&self) {
        if self.flags.ready.fetch_and(!SPINNER, Ordering::AcqRel) & SPINNER != 0 {
            return;
        }
        fence(Ordering::SeqCst);
        if self.flags.sleepers.load(Ordering::SeqCst) > 0 {
            // A thread between its look at the queue and its wait holds the lock: taking it
            // here makes sure the notification finds it waiting.
            drop(self.lock());
            self.work.notify_one();
        }
    }

    /// Hands `job` to a thread, queues it, or applies the full-queue policy. `wait` is the
    /// caller's context when it can wait for room (`poll_execute`).
    pub(super) fn submit(
        this: &Arc<Self>,
        job: Job,
        wait: Option<(&mut Context<'_>, Waiter)>,
    ) -> Result<Submit, Rejected> {
        if this.config.queue_capacity.is_some() {
            return Shared::submit_bounded(this, job, wait);
        }
        let Some(entered) = Entered::enter(this) else {
            this.lock().metrics.rejected += 1;
            return Err(Rejected::new(job, RejectReason::ShutDown));
        };
        let claimed = this.claim();
        if !claimed && Shared::own_worker(this).is_some() {
            // A job of this pool waits on this call, and no thread is free: run it here rather
            // than deadlock (or wait for the pool to grow).
            drop(entered);
            this.run_inline(job);
            return Ok(Submit::Accepted);
        }
        let counted = claimed || {
            match Shared::grow_for_job(this) {
                Ok(grew) => grew,
                Err(err) => {
                    drop(entered);
                    this.lock().metrics.rejected += 1;
                    return Err(Rejected::new(job, RejectReason::SpawnFailed(err)));
                }
            }
        };
        this.queue.push(job);
        if counted {
            this.wake_one();
        } else {
            Shared::after_uncounted_push(this);
        }
        drop(entered);
        Ok(Submit::Accepted)
    }

    /// After a push that found no idle thread: a thread that went idle meanwhile is woken;
    /// otherwise every thread is busy and will come back to the queue. Starts a thread if the pool has fewer than cores (also when the last idle ones
    /// were leaving, see `work_loop`: this call sees that in `threads`), else lets the
    /// supervisor judge whether the busy threads block.
    fn after_uncounted_push(this: &Arc<Self>) {
        fence(Ordering::SeqCst);
        // A thread that was busy at the claim may have found the queue empty before this push
        // and be going to sleep: it counted itself idle first, so look again (fenced against its
        // look at the queue before it sleeps: one of the two sees the other), and wake it. No
        // claim: another thread may have taken the job already, and a claim without a job
        // would hide a queued job from the supervisor for good.
        if idle(this.flags.ready.load(Ordering::SeqCst)) > 0 {
            this.wake_one();
            return;
        }
        let threads = this.flags.threads.load(Ordering::SeqCst);
        if threads >= this.eager_threads
            && (threads >= this.config.max_threads || this.flags.armed.load(Ordering::Acquire))
        {
            return;
        }
        let mut state = this.lock();
        if state.metrics.threads < this.eager_threads {
            let grown = Shared::grow_eager(this, &mut state);
            drop(state);
            match grown {
                Ok(true) => this.wake_one(),
                Ok(false) => {}
                Err(_) => {
                    // No thread will ever take what is queued: hand it back rather than leave
                    // it waiting for ever (each future reports its job lost).
                    while let Some(job) = this.queue.pop() {
                        drop_guarded(job);
                    }
                }
            }
            return;
        }
        if state.supervisor == Supervisor::Armed || state.room(this.config.max_threads) == 0 {
            return;
        }
        let was = std::mem::replace(&mut state.supervisor, Supervisor::Armed);
        this.flags.armed.store(true, Ordering::Release);
        if was == Supervisor::Idle {
            drop(state);
            this.supervise.notify_one();
        } else if Shared::start_supervisor(this).is_err() {
            // Without a supervisor the pool cannot judge: grow at once instead.
            state.supervisor = Supervisor::Absent;
            this.flags.armed.store(false, Ordering::Release);
            if Shared::grow(this, &mut state, true).is_ok() {
                drop(state);
                this.wake_one();
            }
        }
    }

    /// No thread was idle for a job: starts one if the pool has fewer threads than cores.
    /// `Ok(true)` if it did (the thread counts as claimed), `Err` only if the pool has no thread
    /// at all and cannot start one, so that nothing would ever run the job.
    fn grow_for_job(this: &Arc<Self>) -> std::io::Result<bool> {
        if this.flags.threads.load(Ordering::Acquire) >= this.eager_threads {
            return Ok(false);
        }
        Shared::grow_eager(this, &mut this.lock())
    }

    /// `grow_for_job` with the lock held.
    fn grow_eager(this: &Arc<Self>, state: &mut State) -> std::io::Result<bool> {
        if state.metrics.threads >= this.eager_threads || state.room(this.config.max_threads) == 0 {
            // At the limit with threads still exiting: the last of them to exit starts a
            // thread for what is queued (`work_loop`).
            return Ok(false);
        }
        match Shared::grow(this, state, true) {
            Ok(()) => Ok(true),
            Err(err) if state.metrics.threads == 0 => Err(err),
            // The threads there are will take the job.
            Err(_) => Ok(false),
        }
    }

    /// `submit` for a pool with a bounded queue: the check for room and the push happen under
    /// the lock, so that calls racing each other cannot overfill the queue (threads only ever
    /// make room).
    fn submit_bounded(
        this: &Arc<Self>,
        job: Job,
        wait: Option<(&mut Context<'_>, Waiter)>,
    ) -> Result<Submit, Rejected> {
        // The waker a waiting call leaves, cloned before the lock is taken: it is user code.
        let mut waker = match (&wait, this.config.when_full) {
            (Some((cx, _)), QueueFull::Wait) => Some(cx.waker().clone()),
            _ => None,
        };
        let waiter = wait.map(|(_, waiter)| waiter);
        // Declared before the guard, so dropped after it: a waker is user code.
        let old_waker: Option<Waker>;
        let mut state = this.lock();
        // A retry: whatever registration this waiter had is settled by this call.
        old_waker = waiter.and_then(|waiter| this.take_waiter(&mut state, waiter));
        match Shared::place_bounded(this, &mut state, waiter, &mut waker) {
            Placement::Queue { counted } => {
                // Under the lock, so no thread can leave at shutdown between the check and
                // the push.
                this.queue.push(job);
                drop(state);
                if counted {
                    this.wake_one();
                } else {
                    Shared::after_uncounted_push(this);
                }
                Ok(Submit::Accepted)
            }
            Placement::Inline => {
                drop(state);
                this.run_inline(job);
                Ok(Submit::Accepted)
            }
            Placement::Wait => {
                drop(state);
                drop(old_waker);
                Ok(Submit::Full(job))
            }
            Placement::Refuse(reason) => {
                state.metrics.rejected += 1;
                drop(state);
                drop(old_waker);
                Err(Rejected::new(job, reason))
            }
        }
    }

    /// Where a job goes in a bounded pool. While fewer than `queue_capacity` jobs wait beyond
    /// the threads ready to take them, it is queued (with a claim on an idle thread if there is
    /// one, or a thread started for it while the pool has fewer than cores). Past that, the
    /// queue is full: a worker of the pool waiting on its own saturated pool runs it inline; a
    /// pool under `max_threads` starts a thread for it (a full queue is the evidence that the
    /// threads there are cannot keep up); else the full-queue policy applies. So the capacity
    /// bounds the jobs waiting whatever the pool's growth state, and `Wait` only ever waits.
    fn place_bounded(
        this: &Arc<Self>,
        state: &mut State,
        waiter: Option<Waiter>,
        waker: &mut Option<Waker>,
    ) -> Placement {
        let capacity = this.config.queue_capacity.unwrap_or(usize::MAX);
        loop {
            if this.is_shut_down() {
                return Placement::Refuse(RejectReason::ShutDown);
            }
            if this.has_room(capacity) {
                if this.claim() {
                    return Placement::Queue { counted: true };
                }
                if Shared::own_worker(this).is_some() {
                    return Placement::Inline;
                }
                return match Shared::grow_eager(this, state) {
                    Ok(counted) => Placement::Queue { counted },
                    Err(err) => Placement::Refuse(RejectReason::SpawnFailed(err)),
                };
            }
            if Shared::own_worker(this).is_some() {
                return Placement::Inline;
            }
            if state.room(this.config.max_threads) > 0 && Shared::grow(this, state, true).is_ok() {
                return Placement::Queue { counted: true };
            }
            match this.config.when_full {
                QueueFull::Reject => return Placement::Refuse(RejectReason::QueueFull),
                QueueFull::RunOnCaller => return Placement::Inline,
                QueueFull::Wait => {}
            }
            let (Some(waiter), Some(registered)) = (waiter, waker.take()) else {
                // `execute`, with no context to wake: it cannot wait.
                return Placement::Refuse(RejectReason::QueueFull);
            };
            let first = !this.flags.has_waiters.load(Ordering::SeqCst);
            state.waiters.push_back((waiter, registered));
            if !first {
                return Placement::Wait;
            }
            // The first waiter: a thread that makes room without the lock looks at
            // `has_waiters` after its pop, so look at the room again after setting it. Room
            // seen now (a thread between its pop and its return to the ready set) means the
            // placement is decided again, from the top: never a refusal for a `Wait` pool.
            this.flags.has_waiters.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !this.has_room(capacity) {
                return Placement::Wait;
            }
            *waker = this.take_waiter(state, waiter);
        }
    }

    /// One more job would leave at most `capacity` jobs waiting beyond the threads ready to
    /// take them (idle, or claimed for a job). Called with the lock held, so no job is pushed
    /// meanwhile; threads pop and leave the ready set without it.
    fn has_room(&self, capacity: usize) -> bool {
        // The queue first, then the ready word: a pop in between is then seen in both, or only
        // in the word (less room). A thread between its pop (before both reads) and leaving
        // the ready set (after both) still counts as ready for that moment: the one place the
        // bound can be passed, by one job per such thread, for a few instructions (see
        // `BlockingPool::queue_capacity`).
        let queued = self.queue.len();
        let ready = self.flags.ready.load(Ordering::SeqCst);
        let ready = usize::try_from(idle(ready) + claimed(ready)).unwrap_or(usize::MAX);
        queued < ready.saturating_add(capacity)
    }

    /// Removes `waiter`'s registration, if it has one, and gives its waker back, for the caller
    /// to drop or wake after the lock: a waker is user code.
    fn take_waiter(&self, state: &mut State, waiter: Waiter) -> Option<Waker> {
        let at = state.waiters.iter().position(|(id, _)| *id == waiter)?;
        let (_, waker) = state.waiters.remove(at)?;
        self.note_waiters(state);
        Some(waker)
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
    /// a job), so that a call made while it starts does not start another. Called with the lock
    /// held, and only with room under `max_threads` (`State::room`).
    ///
    /// The thread is counted (in `ready` and `threads`) *before* it is spawned: it may pop a
    /// job and leave the ready set before this function returns, and leaving must find the
    /// unit it takes. Counted after, the unit would outlive the thread: an idle unit that a
    /// call claims with nobody to wake, or a claim that keeps idle threads from ever retiring.
    fn grow(this: &Arc<Self>, state: &mut State, claimed: bool) -> std::io::Result<()> {
        debug_assert!(
            state.room(this.config.max_threads) > 0,
            "grow past max_threads: {} threads and {} exiting, max {}",
            state.metrics.threads,
            state.exiting,
            this.config.max_threads
        );
        let number = state.metrics.threads_started + 1;
        let mut builder = thread::Builder::new().name(format!("{}-{number}", this.name));
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let index = state.free_slots.pop().unwrap_or_else(|| {
            state.slots.push(Arc::new(Padded(Slot::new())));
            state.slots.len() - 1
        });
        let slot = Arc::clone(&state.slots[index]);
        let shared = Arc::clone(this);
        let unit = if claimed { CLAIMED } else { IDLE };
        state.metrics.threads += 1;
        this.flags
            .threads
            .store(state.metrics.threads, Ordering::Release);
        this.flags.ready.fetch_add(unit, Ordering::AcqRel);
        match builder.spawn(move || shared.work_loop(number, index, &slot)) {
            Ok(handle) => {
                state.metrics.threads_started = number;
                state.workers.insert(number, handle);
                Ok(())
            }
            Err(err) => {
                // Nothing ran: the unit is still there to take back.
                this.flags.ready.fetch_sub(unit, Ordering::AcqRel);
                state.metrics.threads -= 1;
                this.flags
                    .threads
                    .store(state.metrics.threads, Ordering::Release);
                state.free_slots.push(index);
                Err(err)
            }
        }
    }

    /// Mirrors `state.waiters` being non-empty in `has_waiters`, which threads read without the
    /// lock.
    fn note_waiters(&self, state: &State) {
        self.flags
            .has_waiters
            .store(!state.waiters.is_empty(), Ordering::SeqCst);
    }

    /// The queue has room for one more job, or a thread is free: wakes the oldest future that
    /// waits for room, if any. Called by workers: the waker's panic is caught.
    fn wake_waiter(&self) {
        if self.config.queue_capacity.is_none() {
            // Only a bounded queue has futures waiting for room.
            return;
        }
        fence(Ordering::SeqCst);
        if self.flags.has_waiters.load(Ordering::SeqCst) {
            let mut state = self.lock();
            let waiter = state.waiters.pop_front();
            self.note_waiters(&state);
            drop(state);
            if let Some((_, waker)) = waiter {
                wake_guarded(waker);
            }
        }
    }

    /// Forgets a waiting future; if it had been woken already, wakes the next one instead.
    pub(super) fn cancel_wait(&self, waiter: Waiter) {
        let mut state = self.lock();
        let (own, next) = match self.take_waiter(&mut state, waiter) {
            Some(own) => (Some(own), None),
            None => (None, state.waiters.pop_front().map(|(_, waker)| waker)),
        };
        self.note_waiters(&state);
        drop(state);
        drop_guarded(own);
        if let Some(waker) = next {
            wake_guarded(waker);
        }
    }

    /// Stops taking jobs and wakes every thread and waiter, without waiting.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        self.gate.fetch_or(SHUT_DOWN, Ordering::SeqCst);
        self.flags.closed.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut state.waiters);
        self.flags.has_waiters.store(false, Ordering::SeqCst);
        drop(state);
        self.work.notify_all();
        self.supervise.notify_all();
        // Each waiter retries and is refused. Their wakers are user code: one that panics
        // must not keep the others from being woken, nor `shutdown` from returning.
        for (_, waker) in waiters {
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
        while state.metrics.threads > own || state.exiting > 0 || self.entering() > 0 {
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

/// A call inside the shutdown gate: between its check that the pool takes jobs and the end of
/// its submission. Leaving, by drop, happens on every path out of `submit`, a panic in user code
/// (a job's `Drop`) included, so that `shutdown` never waits for a call that is gone.
struct Entered<'a>(&'a Arc<Shared>);

impl<'a> Entered<'a> {
    /// Enters the gate, unless the pool is shut down. One read-modify-write both enters and
    /// checks: `close` sets its flag in the same word, so no call slips in after it unseen.
    fn enter(shared: &'a Arc<Shared>) -> Option<Self> {
        let entered = Entered(shared);
        (shared.gate.fetch_add(1, Ordering::SeqCst) & SHUT_DOWN == 0).then_some(entered)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        let before = shared.gate.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before & !SHUT_DOWN > 0, "left the gate without entering");
        if before & SHUT_DOWN != 0 {
            // Threads waiting to leave, and `shutdown`, wait for the calls entering.
            drop(shared.lock());
            shared.work.notify_all();
            shared.drained.notify_all();
        }
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
