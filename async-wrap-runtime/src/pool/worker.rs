//! A worker thread's side: taking jobs, going idle, spinning, sleeping and leaving (see
//! [`ready`](super::ready) for who is ready, [`gate`](super::gate) for leaving at shutdown).
//!
//! A thread that has just finished a job spins for up to [`SPIN_FOR`] before it sleeps, so that
//! the next job of a caller making one call after another finds it awake (waking a thread whose
//! vCPU has halted costs 20–65 µs). At most one thread spins at a time.

use std::cell::Cell;
use std::sync::{Arc, PoisonError};
#[cfg(not(async_wrap_loom))]
use std::time::Duration;
use std::time::Instant;

use super::config::Hook;
use super::metrics::{Slot, Started};
use super::shared::{Shared, State};
use super::thread_exit;
use crate::call::task::Finished;
use crate::panic_guard::{drop_guarded, wake_guarded};
#[cfg(not(async_wrap_loom))]
use crate::sync::thread;
use crate::sync::{Ordering, fence};

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
    static WORKER: Cell<Option<OwnWorker>> = const { Cell::new(None) };
}

#[cfg(async_wrap_loom)]
loom::thread_local! {
    static WORKER: Cell<Option<OwnWorker>> = Cell::new(None);
}

/// What a pool's worker thread knows of itself, in the `WORKER` thread-local.
#[derive(Clone, Copy)]
pub(super) struct OwnWorker {
    /// The pool's identity (`Shared::id`).
    pool: usize,
    /// The thread's slot.
    pub(super) slot: usize,
    /// The thread has left the pool's counts and runs its stop hook (it counts in `exiting`,
    /// not in `threads`).
    pub(super) exiting: bool,
    /// The thread, counted idle, is waking the caller of the job it just finished: a call made
    /// from that waker (user code) must not count on this thread, which is busy in the waker,
    /// and runs inline instead (see `Shared::submit`).
    pub(super) waking: bool,
}

/// Runs a thread hook; its panic is caught so that it cannot take the thread down.
fn run_hook(hook: Option<&Hook>) {
    if let Some(hook) = hook {
        crate::panic_guard::guarded(|| hook());
    }
}

impl Shared {
    /// Wakes the previous job's caller from a thread already counted idle, marked as waking
    /// meanwhile: a call the waker makes to this pool must not claim this very thread, or it
    /// would wait for a thread that is waiting for it.
    fn wake_counted_idle(own: OwnWorker, finished: Finished) {
        WORKER.with(|worker| {
            worker.set(Some(OwnWorker {
                waking: true,
                ..own
            }));
        });
        // Its panics are caught inside: the mark is always taken off.
        finished.wake();
        WORKER.with(|worker| worker.set(Some(own)));
    }

    /// The current thread is this pool's, waking a caller while counted idle.
    pub(super) fn own_waking(this: &Arc<Self>) -> bool {
        Shared::own_place(this).is_some_and(|own| own.waking)
    }

    /// The slot of the current thread if it is one of this pool's.
    pub(super) fn own_worker(this: &Arc<Self>) -> Option<usize> {
        Shared::own_place(this).map(|own| own.slot)
    }

    /// The current thread, if it is one of this pool's.
    pub(super) fn own_place(this: &Arc<Self>) -> Option<OwnWorker> {
        WORKER
            .with(Cell::get)
            .filter(|own| own.pool == Shared::id(this))
    }

    /// A worker thread's life: run queued jobs, wait for more, exit after `keep_alive` without
    /// work (beyond `min_threads`), or once the pool is shut down and its queue is drained.
    pub(super) fn work_loop(self: Arc<Self>, number: u64, index: usize, slot: &Slot) {
        let own = OwnWorker {
            pool: Shared::id(&self),
            slot: index,
            exiting: false,
            waking: false,
        };
        WORKER.with(|worker| worker.set(Some(own)));
        slot.held_by(super::os_thread::OsThread::current());
        crate::stats::call_stats::use_shard(index);
        run_hook(self.on_thread_start.as_ref());
        // `start_thread` counted this thread as ready (idle or claimed) already.
        let mut ready = true;
        let mut idle_since = Instant::now();
        // The last job run, whose caller is still to be woken.
        let mut previous: Option<Finished> = None;
        loop {
            if let Some(job) = self.queue.pop() {
                if std::mem::take(&mut ready) {
                    self.flags.ready.take_for_job();
                } else {
                    self.flags.ready.release_claim();
                }
                previous = Some(self.run_job(job, slot, previous.take()));
                continue;
            }
            if !ready {
                // Ready for the next job before the caller hears of this one, so that its next
                // call finds this thread idle; and a thread is free for a waiter.
                self.flags.ready.add_idle();
                ready = true;
                self.wake_waiter();
            }
            if let Some(finished) = previous.take() {
                Shared::wake_counted_idle(own, finished);
                idle_since = Instant::now();
                if !self.flags.closed.is_closed()
                    && self.queue.is_empty()
                    && self.flags.ready.become_spinner()
                {
                    self.spin();
                    self.flags.ready.end_spin();
                }
                continue;
            }
            if self.sleep_or_leave(&mut idle_since) {
                break;
            }
        }
        // A `shutdown` called from the stop hook must not wait for this thread.
        WORKER.with(|worker| {
            worker.set(Some(OwnWorker {
                exiting: true,
                ..own
            }));
        });
        run_hook(self.on_thread_stop.as_ref());
        // What the rest of the runtime left for this thread's exit (the values of
        // `StatefulPool` calls, dropped on this thread), now.
        thread_exit::run_exit_hooks();
        let mut state = self.lock();
        state.threads.exited_slot(index);
        // This thread's handle stays, for `shutdown` (or the next thread to exit) to join: a
        // thread is gone once joined, its thread-local destructors run. Before shutdown, this
        // thread joins those that exited before it, so that at most one is left unjoined.
        let earlier = if self.is_shut_down() {
            Vec::new()
        } else {
            state.threads.take_exited()
        };
        state.threads.exited(number);
        // A call that found the pool at its limit while this thread ran its stop hook could
        // not start a thread for its job: start it now, in this thread's place. At shutdown
        // too: a call that passed the gate has its job run, and the threads still alive drain
        // the queue before they leave, but a pool whose last thread this was has none.
        let unrun = self.start_thread_for_queued(&mut state);
        self.notify_drained(state);
        // Out of the lock: each job's future is woken (user code) to report it lost.
        drop_guarded(unrun);
        for handle in earlier {
            // Past their loops and the lock: only their last instructions are left.
            let _ = handle.join();
        }
    }

    /// After a thread exited: a job queued meanwhile may have found the pool at its limit
    /// (this thread's place still taken) and so started no thread. If queued jobs outnumber the
    /// ready threads, this applies a call's growth rule in its place: below the cores,
    /// start a thread; beyond, arm the supervisor, which starts threads for jobs waiting behind
    /// blocked ones.
    ///
    /// At shutdown, with no thread left to run them, a thread that cannot be started hands the
    /// queued jobs back, to be dropped once the lock is released: no later call or thread will
    /// look, and each future reports its job lost rather than wait for ever.
    #[must_use = "the jobs handed back must be dropped out of the lock"]
    pub(super) fn start_thread_for_queued(self: &Arc<Self>, state: &mut State) -> Vec<crate::Job> {
        let mut unrun = Vec::new();
        if self.waiting(self.flags.ready.load()) == 0 {
            return unrun;
        }
        if state.metrics.threads < self.eager_threads {
            // Before shutdown, a failure leaves the job to the next call or thread that looks.
            let started = Shared::start_eager_thread(self, state, false);
            if self.is_shut_down() && state.metrics.threads + state.threads.exiting() == 0 {
                debug_assert!(started.is_err(), "room for a thread, and none started");
                unrun.extend(std::iter::from_fn(|| self.queue.pop()));
            }
        } else {
            Shared::arm_supervisor(self, state);
        }
        unrun
    }

    /// The queue is empty: sleeps until there may be work (false), or leaves the pool's counts
    /// at shutdown or after `keep_alive` idle (true).
    fn sleep_or_leave(&self, idle_since: &mut Instant) -> bool {
        let mut state = self.lock();
        self.flags.sleepers.lie_down();
        if !self.queue.is_empty() {
            self.flags.sleepers.get_up();
            return false;
        }
        let now = Instant::now();
        let may_exit = state.metrics.threads > self.config.min_threads;
        let timeout = if self.gate.is_closed() {
            if self.gate.entering() == 0 {
                // No job can come any more: any claim left is for a job taken already.
                self.flags.sleepers.get_up();
                self.flags.ready.take_for_job();
                self.leave(&mut state);
                return true;
            }
            // A call is about to push: it notifies when it has.
            None
        } else if may_exit && now >= *idle_since + self.config.keep_alive {
            // Leave the count now, under the lock that decided it: another idle thread
            // deciding at the same time must see this one gone, or both could leave and
            // take the pool below `min_threads`. Only an idle count can go: a claim means
            // a job is on its way to this pool.
            if self.flags.ready.retire_idle() {
                self.leave(&mut state);
                // A call that found no idle thread (this one having left `ready`) and
                // pushed after this look sees the lower `threads` after its push, and
                // starts a thread if need be; one that pushed before is seen here.
                fence(Ordering::SeqCst);
                if self.queue.is_empty() {
                    self.flags.sleepers.get_up();
                    return true;
                }
                self.rejoin(&mut state);
                self.flags.sleepers.get_up();
                return false;
            }
            // Only claims are left: a call is between its claim and its push, and will wake a
            // sleeper after it. Sleep until then (not spin).
            Some(self.config.keep_alive)
        } else {
            if now >= *idle_since + self.config.keep_alive {
                *idle_since = now;
            }
            Some((*idle_since + self.config.keep_alive).saturating_duration_since(now))
        };
        state = match timeout {
            None => self
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
            Some(timeout) => {
                self.work
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        self.flags.sleepers.get_up();
        drop(state);
        false
    }

    /// This thread no longer counts in `threads` (and no longer in `ready`); it runs its stop
    /// hook next.
    fn leave(&self, state: &mut State) {
        state.thread_left(&self.flags.threads);
        state.threads.leaving();
    }

    /// Undoes `leave` (and `leave_idle`): a job came as this thread was leaving.
    fn rejoin(&self, state: &mut State) {
        state.threads.not_exiting();
        state.thread_joined(&self.flags.threads);
        self.flags.ready.add_idle();
    }

    /// Runs a job this thread took from the queue, after waking the previous job's caller:
    /// records it in the slot (before the wakes, so that `metrics` and `shutdown` see the job
    /// taken), counts it, and checks it against the slow-call thresholds.
    fn run_job(&self, job: crate::Job, slot: &Slot, previous: Option<Finished>) -> Finished {
        Slot::bump(&slot.started);
        let site = job.site();
        let mut start = Instant::now();
        // User code may run before the body (wakers, the slow-queue hook): its time is not the
        // body's, neither in its run time nor for the slow-call watcher, which the record hides
        // the job from until the body starts.
        let user_code_first = previous.is_some()
            || self.config.queue_capacity.is_some()
            || self.config.slow_queue_wait.is_some();
        *slot.running() = Some(Started {
            site,
            since: start,
            reported: user_code_first,
        });
        if self.config.slow_call.is_some() {
            self.slow.job_started();
        }
        if user_code_first {
            // The queue has room for one more.
            let mut ran_user_code = self.wake_waiter();
            // The previous job's caller hears of it only now, with this thread busy again: no
            // shared write at all between jobs while the queue is not empty.
            if let Some(finished) = previous {
                finished.wake();
                ran_user_code = true;
            }
            if self.config.slow_queue_wait.is_some() {
                ran_user_code |=
                    self.slow
                        .check_queue_wait(site, job.submitted_at(), Instant::now());
            }
            if ran_user_code {
                start = Instant::now();
            }
            if let Some(started) = slot.running().as_mut() {
                started.since = start;
                started.reported = false;
            }
        }
        let finished = job.run_unwoken(start);
        let ended = slot.running().take();
        if let Some(started) = ended {
            self.slow.check_ended(started);
        }
        slot.count(finished.outcome);
        finished
    }

    /// The queue has room for one more job, or a thread is free: wakes the oldest future that
    /// waits for room, if any; true if it woke one. The waker's panic is caught.
    fn wake_waiter(&self) -> bool {
        if self.config.queue_capacity.is_none() {
            // Only a bounded queue has futures waiting for room.
            return false;
        }
        if self.flags.has_waiters.after_fence() {
            let mut state = self.lock();
            let waker = state.waiters.pop_oldest();
            state.waiters.note(&self.flags.has_waiters);
            drop(state);
            if let Some(waker) = waker {
                wake_guarded(waker);
                return true;
            }
        }
        false
    }

    /// Spins for up to `SPIN_FOR`, watching for a job.
    fn spin(&self) {
        // Under loom, one look stands for the spin: a busy loop has no bound for the model.
        #[cfg(async_wrap_loom)]
        let _ = self.queue.is_empty();
        #[cfg(not(async_wrap_loom))]
        {
            let start = Instant::now();
            // Busy for the first microseconds, which catch a caller on another core; then
            // yielding, so that a caller the scheduler put on this same core can run and submit.
            'spin: loop {
                let elapsed = start.elapsed();
                if elapsed >= SPIN_FOR {
                    break;
                }
                let yielding = elapsed >= SPIN_BUSY_FOR;
                for _ in 0..if yielding { 1 } else { 64 } {
                    if !self.queue.is_empty() {
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
    }
}
