//! The supervisor: the thread that starts threads for jobs waiting behind blocked ones (see
//! "When the pool grows" in [`submit`](super::submit)).
//!
//! Started on demand, gone after `keep_alive` without work, it looks every [`GROW_AFTER`]
//! while armed: if a queued job has waited that long and some running jobs have run that long
//! (they block, rather than being short), it starts as many threads as there are such jobs.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::shared::{Shared, State};
use super::supervisor_state::Supervisor;
use crate::sync::Ordering;
use crate::sync::thread;

/// How long a queued job waits for a busy thread, and a running job must have run, before the
/// supervisor starts another thread.
const GROW_AFTER: Duration = Duration::from_millis(1);

impl Shared {
    /// A job waits behind busy threads, and the pool has at least as many threads as cores but
    /// fewer than `max_threads`: arms the supervisor (starting it if need be) to judge whether
    /// they block. Called with the lock held.
    pub(super) fn arm_supervisor(this: &Arc<Self>, state: &mut State) {
        if state.supervisor.is_armed() || state.room(this.config.max_threads) == 0 {
            return;
        }
        let was = state.supervisor.arm(&this.flags.armed);
        if was == Supervisor::Idle {
            this.supervise.notify_one();
        } else if Shared::start_supervisor(this).is_err() {
            // Without a supervisor the pool cannot judge: grow at once instead (idle: the job
            // may be taken already, and a claim must always have a job coming). The new thread
            // finds the job on its own.
            state.supervisor.failed_to_start(&this.flags.armed);
            let _ = Shared::start_thread(this, state, false);
        }
    }

    fn start_supervisor(this: &Arc<Self>) -> std::io::Result<()> {
        let shared = Arc::clone(this);
        thread::Builder::new()
            .name(format!("{}-supervisor", this.name))
            .spawn(move || shared.supervise())
            .map(drop)
    }

    /// Jobs taken from the queue since the start.
    fn popped(state: &State) -> u64 {
        state
            .threads
            .slots()
            .iter()
            .map(|slot| slot.started.load(Ordering::Acquire))
            .sum()
    }

    /// The supervisor's life: while armed, look every `GROW_AFTER` for jobs that wait behind
    /// blocked threads, and start threads for them; exit after `keep_alive` unarmed.
    fn supervise(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            while !state.supervisor.is_armed() {
                if self.is_shut_down() {
                    state.supervisor.leave();
                    return;
                }
                let (guard, timeout) = self
                    .supervise
                    .wait_timeout(state, self.config.keep_alive)
                    .unwrap_or_else(PoisonError::into_inner);
                state = guard;
                if timeout.timed_out() && !state.supervisor.is_armed() {
                    state.supervisor.leave();
                    return;
                }
            }
            // Every queued job counts, claimed or not: a thread claimed for one has had
            // `GROW_AFTER` to take it, and a count that trusted the claims could hide a job
            // for good if one were ever left over.
            let waiting_before = self.queue.len();
            let popped_before = Shared::popped(&state);
            drop(state);
            std::thread::sleep(GROW_AFTER);
            state = self.lock();
            if self.is_shut_down() {
                state.supervisor.idle(&self.flags.armed);
                continue;
            }
            let waiting = self.queue.len();
            let now = Instant::now();
            let blocked = state
                .threads
                .slots()
                .iter()
                .filter(|slot| {
                    slot.running()
                        .is_some_and(|started| now.duration_since(started.since) >= GROW_AFTER)
                })
                .count();
            let room = state.room(self.config.max_threads);
            // A job queued at the last look is still queued (it waited `GROW_AFTER`: the queue
            // is FIFO, so fewer jobs started than were waiting then), the threads are not getting
            // through the queue (fewer jobs started than there are threads: they block, rather
            // than being short or merely descheduled), and jobs have run that long: start one
            // thread per such job.
            let progress = Shared::popped(&state) - popped_before;
            let mut grew = 0;
            if progress < waiting_before as u64
                && progress < state.metrics.threads as u64
                && blocked > 0
            {
                for _ in 0..waiting.min(blocked).min(room) {
                    if Shared::start_thread(&self, &mut state, false).is_err() {
                        break;
                    }
                    grew += 1;
                }
            }
            if state.metrics.threads >= self.config.max_threads {
                state.supervisor.idle(&self.flags.armed);
            } else if self.queue.is_empty() {
                // A call that pushed after this look, found the supervisor armed and so did not
                // arm it (`after_uncounted_push` reads `armed` without the lock), would leave
                // its job with no supervisor watching. Disarm, then look at the queue again
                // (fenced against the call's push and its look at `armed`: one of the two sees
                // the other), and stay armed if a job came.
                state
                    .supervisor
                    .disarm_unless_queued(&self.flags.armed, || !self.queue.is_empty());
            }
            if grew > 0 {
                // The new threads find the queued jobs on their own (FIFO: the oldest first).
                // They count as idle, not claimed: a job may be popped by a busy thread before
                // they start, and a claim without a job would keep a thread from ever
                // retiring. A notification also reaches threads that went to sleep meanwhile.
                self.work.notify_all();
            }
        }
    }
}
