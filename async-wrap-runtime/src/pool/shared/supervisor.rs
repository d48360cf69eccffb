//! The supervisor: the thread that starts threads for jobs waiting behind blocked ones (see
//! "When the pool grows" in the parent module).

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::{GROW_AFTER, Shared, State, Supervisor};
use crate::sync::Ordering;
use crate::sync::thread;

impl Shared {
    pub(super) fn start_supervisor(this: &Arc<Self>) -> std::io::Result<()> {
        let shared = Arc::clone(this);
        thread::Builder::new()
            .name(format!("{}-supervisor", this.name))
            .spawn(move || shared.supervise())
            .map(drop)
    }

    /// Jobs taken from the queue since the start.
    fn popped(state: &State) -> u64 {
        state
            .slots
            .iter()
            .map(|slot| slot.started.load(Ordering::Acquire))
            .sum()
    }

    /// The supervisor's life: while armed, look every `GROW_AFTER` for jobs that wait behind
    /// blocked threads, and start threads for them; exit after `keep_alive` unarmed.
    fn supervise(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            while state.supervisor != Supervisor::Armed {
                if self.is_shut_down() {
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
            // Every queued job counts, claimed or not: a thread claimed for one has had
            // `GROW_AFTER` to take it, and a count that trusted the claims could hide a job
            // for good if one were ever left over.
            let waiting_before = self.queue.len();
            let popped_before = Shared::popped(&state);
            drop(state);
            std::thread::sleep(GROW_AFTER);
            state = self.lock();
            if self.is_shut_down() {
                state.supervisor = Supervisor::Idle;
                self.flags.armed.store(false, Ordering::Release);
                continue;
            }
            let waiting = self.queue.len();
            let now = Instant::now();
            let blocked = state
                .slots
                .iter()
                .filter(|slot| {
                    slot.running()
                        .is_some_and(|(_, since)| now.duration_since(since) >= GROW_AFTER)
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
                    if Shared::grow(&self, &mut state, true).is_err() {
                        break;
                    }
                    grew += 1;
                }
            }
            if self.queue.is_empty() || state.metrics.threads >= self.config.max_threads {
                state.supervisor = Supervisor::Idle;
                self.flags.armed.store(false, Ordering::Release);
            }
            if grew > 0 {
                // The new threads are claimed for queued jobs and find them on their own; a
                // notification also reaches threads that went to sleep meanwhile.
                self.work.notify_all();
            }
        }
    }
}
