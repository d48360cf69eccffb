//! A call's side: where a job goes (an idle thread, a new thread, the queue, the caller's
//! thread, a wait for room, or a refusal), and the growth rule a call applies.
//!
//! # When the pool grows
//!
//! The pool grows when jobs block, not when they are short. A job that finds no idle thread
//! starts one at once only while the pool has fewer threads than cores; beyond that it queues,
//! and the [supervisor](super::supervisor) judges whether the busy threads block and starts
//! threads for the jobs waiting behind them. So 17 calls that sleep 100 ms get 17 threads within
//! a few milliseconds, while a burst of a million microsecond jobs runs on as many threads as
//! there are cores.
//!
//! On Linux the judgment asks the system what each busy thread is doing (`/proc`: its time on
//! a core and waiting for one since the last look, and its state): a thread asleep for most of
//! the last look gets a thread started for a job behind it, even if its jobs are shorter than
//! a look; a thread on a core, or waiting for one because other threads of the process hog the
//! cores, does not, since another thread would only share the same cores, even if a look
//! catches it in a short pause. A job that has wanted a core for 4 ms counts as CPU-bound: the
//! jobs queued behind such jobs get one more thread than there are cores, not one each, so a
//! short call is not stuck behind long computations. A queue that makes no progress for
//! 50 ms gets a thread whatever the judgment (100 ms later another, and so on), for a busy
//! thread that waits for a job queued behind it. Elsewhere the rule is time-only: a job that
//! has run 1 ms counts as blocked, whether it sleeps or computes.
//!
//! A bounded queue adds one rule: a full queue is the evidence that the threads cannot keep
//! up, and the pool grows for the next job at once (`place_bounded`).
//!
//! One rule holds on every path: a worker of the pool that calls its own pool, with no thread
//! ready, gets a thread started for the call while the pool has room for one, and runs the
//! call inline on a saturated pool (no thread ready, `max_threads` reached) rather than
//! deadlock.

use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use super::QueueFull;
use super::shared::{Shared, State};
use crate::call::task::Outcome;
use crate::executor::{Job, RejectReason, Rejected, Submit, Waiter};
use crate::panic_guard::{drop_guarded, wake_guarded};
use crate::stats::call_site::CallSite;
use crate::sync::{Ordering, fence};

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

impl Shared {
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
        let Some(entered) = this.gate.enter(|| this.gate_drained()) else {
            this.lock().metrics.rejected += 1;
            return Err(Rejected::new(job, RejectReason::ShutDown));
        };
        let mut claimed = !Shared::own_waking(this) && this.flags.ready.claim();
        if !claimed && Shared::own_worker(this).is_some() {
            // A worker calling its own pool may wait for the call: a thread for it now, if the
            // pool has room for one; only a saturated pool runs it here.
            claimed = Shared::start_claimed_thread(this, &mut this.lock());
            if !claimed {
                drop(entered);
                this.run_inline(job);
                return Ok(Submit::Accepted);
            }
        }
        let counted = claimed || {
            match Shared::start_thread_for_job(this) {
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

    /// `submit` for a pool with a bounded queue: the check for room and the push happen under
    /// the lock, so that calls racing each other cannot overfill the queue (threads only ever
    /// make room), and no thread can leave at shutdown between the check and the push.
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
        old_waker = waiter.and_then(|waiter| state.waiters.take(&this.flags.has_waiters, waiter));
        match Shared::place_bounded(this, &mut state, waiter, &mut waker) {
            Placement::Queue { counted } => {
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
                if !Shared::own_waking(this) && this.flags.ready.claim() {
                    return Placement::Queue { counted: true };
                }
                if Shared::own_worker(this).is_some() {
                    return if Shared::start_claimed_thread(this, state) {
                        Placement::Queue { counted: true }
                    } else {
                        Placement::Inline
                    };
                }
                return match Shared::start_eager_thread(this, state, true) {
                    Ok(counted) => Placement::Queue { counted },
                    Err(err) => Placement::Refuse(RejectReason::SpawnFailed(err)),
                };
            }
            if Shared::start_claimed_thread(this, state) {
                return Placement::Queue { counted: true };
            }
            if Shared::own_worker(this).is_some() {
                return Placement::Inline;
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
            if !state
                .waiters
                .register(&this.flags.has_waiters, waiter, registered)
            {
                return Placement::Wait;
            }
            // The first waiter: a thread that makes room without the lock looks at
            // `has_waiters` after its pop, so look at the room again after setting it. Room
            // seen now (a thread between its pop and its return to the ready set) means the
            // placement is decided again, from the top: never a refusal for a `Wait` pool.
            // (`register` set the flag and fenced.)
            if !this.has_room(capacity) {
                return Placement::Wait;
            }
            *waker = state.waiters.take(&this.flags.has_waiters, waiter);
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
        queued < self.flags.ready.load().threads().saturating_add(capacity)
    }

    /// After a push that found no idle thread: a thread that went idle meanwhile is woken;
    /// otherwise every thread is busy and will come back to the queue. Starts a thread if the
    /// pool has fewer than cores (also when the last idle ones were leaving, see `work_loop`:
    /// this call sees that in `threads`), else lets the supervisor judge whether the busy
    /// threads block.
    pub(super) fn after_uncounted_push(this: &Arc<Self>) {
        fence(Ordering::SeqCst);
        // A thread that was busy at the claim may have found the queue empty before this push
        // and be going to sleep: it counted itself idle first, so look again (fenced against its
        // look at the queue before it sleeps: one of the two sees the other), and wake it. No
        // claim: another thread may have taken the job already, and a claim without a job
        // would hide a queued job from the supervisor for good.
        if this.flags.ready.load().idle() > 0 {
            this.wake_one();
            return;
        }
        let threads = this.flags.threads.get();
        if threads >= this.eager_threads
            && (threads >= this.config.max_threads || this.flags.armed.is_set())
        {
            return;
        }
        let mut state = this.lock();
        if state.metrics.threads < this.eager_threads {
            // Idle, not claimed: the job may be taken already (by a thread gone idle
            // meanwhile), and a claim must always have a job coming.
            let grown = Shared::start_eager_thread(this, &mut state, false);
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
        Shared::arm_supervisor(this, &mut state);
    }

    /// No thread was idle for a job: starts one if the pool has fewer threads than cores.
    /// `Ok(true)` if it did (the thread counts as claimed), `Err` only if the pool has no thread
    /// at all and cannot start one, so that nothing would ever run the job.
    fn start_thread_for_job(this: &Arc<Self>) -> std::io::Result<bool> {
        if this.flags.threads.get() >= this.eager_threads {
            return Ok(false);
        }
        Shared::start_eager_thread(this, &mut this.lock(), true)
    }

    /// Starts a thread if the pool has fewer threads than cores, with the lock held: claimed
    /// for a job about to be pushed, else idle. A claim is made only right before its job's
    /// push, so that claims never outnumber the jobs queued or being pushed: a claim without
    /// a job would keep an idle thread from ever retiring.
    pub(super) fn start_eager_thread(
        this: &Arc<Self>,
        state: &mut State,
        claimed: bool,
    ) -> std::io::Result<bool> {
        if state.metrics.threads >= this.eager_threads || state.room(this.config.max_threads) == 0 {
            // At the limit with threads still exiting: the last of them to exit starts a
            // thread for what is queued (`work_loop`).
            return Ok(false);
        }
        match Shared::start_thread(this, state, claimed) {
            Ok(()) => Ok(true),
            Err(err) if state.metrics.threads == 0 => Err(err),
            // The threads there are will take the job.
            Err(_) => Ok(false),
        }
    }

    /// Starts a thread counted claimed for a job about to be queued, if the pool has room for
    /// one (true): for a worker's call to its own pool (false: saturated, the call runs on the
    /// worker, or its wait could deadlock), and for a job that finds a bounded queue full.
    /// Called with the lock held.
    fn start_claimed_thread(this: &Arc<Self>, state: &mut State) -> bool {
        state.room(this.config.max_threads) > 0 && Shared::start_thread(this, state, true).is_ok()
    }

    /// Runs a job on the calling thread, counting it as the workers' jobs are counted.
    fn run_inline(&self, job: Job) {
        let (site, start) = (job.site(), std::time::Instant::now());
        let finished = job.run_unwoken(start);
        self.ran_inline(site, finished.outcome, start.elapsed());
        finished.wake();
    }

    /// Counts a job of `site` run on a thread that is not a worker's own loop, for `ran`, and
    /// reports it if it passed the slow-call threshold (no watcher saw it).
    pub(super) fn ran_inline(&self, site: &'static CallSite, outcome: Outcome, ran: Duration) {
        {
            let mut state = self.lock();
            state.metrics.inline += 1;
            state.metrics.count(outcome);
        }
        self.slow.check_inline(site, ran);
    }

    /// Forgets a waiting future; if it had been woken already, wakes the next one instead.
    pub(super) fn cancel_wait(&self, waiter: Waiter) {
        let mut state = self.lock();
        let (own, next) = match state.waiters.take(&self.flags.has_waiters, waiter) {
            Some(own) => (Some(own), None),
            None => (None, state.waiters.pop_oldest()),
        };
        state.waiters.note(&self.flags.has_waiters);
        drop(state);
        drop_guarded(own);
        if let Some(waker) = next {
            wake_guarded(waker);
        }
    }

    /// This thread is a worker of this pool, no thread is idle and none can start: a call it
    /// waits for must run here, or it could wait for ever. (With room, a call queued behind
    /// busy threads gets one: the waiting worker is blocked, and the supervisor grows for it.)
    pub(super) fn saturated_own_worker(self: &Arc<Self>) -> bool {
        Shared::own_worker(self).is_some()
            && self.flags.ready.load().idle() == 0
            && self.flags.threads.get() >= self.config.max_threads
    }

    /// After a push that counted on a ready thread: takes the spinner's turn if a thread spins
    /// (it sees the job on its own), else wakes a sleeping thread. The push and the look at
    /// `sleepers` are fenced against a thread's count in `sleepers` and its look at the queue,
    /// so one of the two sees the other.
    pub(super) fn wake_one(&self) {
        if self.flags.ready.take_spinner() {
            return;
        }
        if self.flags.sleepers.any_after_push() {
            // A thread between its look at the queue and its wait holds the lock: taking it
            // here makes sure the notification finds it waiting.
            drop(self.lock());
            self.work.notify_one();
        }
    }
}
