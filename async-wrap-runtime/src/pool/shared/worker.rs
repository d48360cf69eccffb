//! A worker thread's side: taking jobs, going idle, spinning, sleeping and leaving (see "Who is
//! ready" and "Shutdown" in the parent module).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::{
    CLAIMED, IDLE, SHUT_DOWN, SPINNER, Shared, Slot, State, WORKER, claimed, idle, run_hook,
};
#[cfg(not(async_wrap_loom))]
use super::{SPIN_BUSY_FOR, SPIN_FOR};
#[cfg(not(async_wrap_loom))]
use crate::sync::thread;
use crate::sync::{Ordering, fence};
use crate::task::Finished;

impl Shared {
    /// A ready thread takes a job: it leaves the ready set, with a claim if there is one.
    fn leave_ready(&self) {
        let left = self
            .flags
            .ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ready| {
                if claimed(ready) > 0 {
                    Some(ready - CLAIMED)
                } else {
                    // Counted since the thread went idle (or by `grow`, before it started).
                    idle(ready).checked_sub(1).map(|_| ready - IDLE)
                }
            });
        debug_assert!(
            left.is_ok(),
            "a ready thread found no unit of its own in the ready word: {:#x}",
            self.flags.ready.load(Ordering::SeqCst)
        );
    }

    /// A busy thread took a job: if a thread was claimed, count it idle again, since there is
    /// one job fewer for it (claims never outnumber the jobs queued or being pushed).
    fn release_claim(&self) {
        let ready = self.flags.ready.load(Ordering::Acquire);
        if claimed(ready) > 0 {
            let _ = self
                .flags
                .ready
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ready| {
                    (claimed(ready) > 0).then(|| ready - CLAIMED + IDLE)
                });
        }
    }

    /// An idle thread leaves the ready set to exit; false if only claims are left, a job being
    /// on its way.
    fn leave_idle(&self) -> bool {
        self.flags
            .ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ready| {
                (idle(ready) > 0).then(|| ready - IDLE)
            })
            .is_ok()
    }

    /// A worker thread's life: run queued jobs, wait for more, exit after `keep_alive` without
    /// work (beyond `min_threads`), or once the pool is shut down and its queue is drained.
    pub(super) fn work_loop(self: Arc<Self>, number: u64, index: usize, slot: &Slot) {
        WORKER.with(|worker| worker.set(Some((Shared::id(&self), index))));
        run_hook(self.on_thread_start.as_ref());
        // `grow` counted this thread as ready (idle or claimed) already.
        let mut ready = true;
        let mut idle_since = Instant::now();
        // The last job run, whose caller is still to be woken.
        let mut previous: Option<Finished> = None;
        loop {
            if let Some(job) = self.queue.pop() {
                if std::mem::take(&mut ready) {
                    self.leave_ready();
                } else {
                    self.release_claim();
                }
                Slot::bump(&slot.started);
                *slot.running() = Some((job.name(), Instant::now()));
                // The queue has room for one more.
                self.wake_waiter();
                // The previous job's caller hears of it only now, with this thread busy again:
                // no shared write at all between jobs while the queue is not empty.
                if let Some(finished) = previous.take() {
                    finished.wake();
                }
                let finished = job.run_unwoken();
                *slot.running() = None;
                slot.count(finished.outcome);
                previous = Some(finished);
                continue;
            }
            if !ready {
                // Ready for the next job before the caller hears of this one, so that its next
                // call finds this thread idle; and a thread is free for a waiter.
                self.flags.ready.fetch_add(IDLE, Ordering::AcqRel);
                ready = true;
                self.wake_waiter();
            }
            if let Some(finished) = previous.take() {
                finished.wake();
                idle_since = Instant::now();
                if !self.flags.closed.load(Ordering::Relaxed)
                    && self.queue.is_empty()
                    && self.become_spinner()
                {
                    self.spin();
                    self.flags.ready.fetch_and(!SPINNER, Ordering::AcqRel);
                }
                continue;
            }
            if self.sleep_or_leave(&mut idle_since) {
                break;
            }
        }
        run_hook(self.on_thread_stop.as_ref());
        let mut state = self.lock();
        state.exiting -= 1;
        state.free_slots.push(index);
        if self.is_shut_down() {
            state.exited.push(number);
        } else {
            state.workers.remove(&number);
            // A call that found the pool at its limit while this thread ran its stop hook
            // could not start a thread for its job: start it now, in this thread's place.
            self.grow_for_queued(&mut state);
        }
        drop(state);
        self.drained.notify_all();
    }

    /// After a thread exited: if a queued job has no thread that will take it (none idle, none
    /// claimed for it, fewer threads than cores, so no busy one counted on) and there is room,
    /// starts one for it.
    fn grow_for_queued(self: &Arc<Self>, state: &mut State) {
        let ready = self.flags.ready.load(Ordering::SeqCst);
        if idle(ready) == 0 && self.waiting(ready) > 0 {
            // A failure leaves the job to the next call or thread that looks.
            let _ = Shared::grow_eager(self, state);
        }
    }

    /// The queue is empty: sleeps until there may be work (false), or leaves the pool's counts
    /// at shutdown or after `keep_alive` idle (true).
    fn sleep_or_leave(&self, idle_since: &mut Instant) -> bool {
        let mut state = self.lock();
        self.flags.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() {
            self.flags.sleepers.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let now = Instant::now();
        let may_exit = state.metrics.threads > self.config.min_threads;
        let gate = self.gate.load(Ordering::SeqCst);
        let timeout = if gate & SHUT_DOWN != 0 {
            if gate & !SHUT_DOWN == 0 {
                // No job can come any more: any claim left is for a job taken already.
                self.flags.sleepers.fetch_sub(1, Ordering::SeqCst);
                self.leave_ready();
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
            if self.leave_idle() {
                self.leave(&mut state);
                // A call that found no idle thread (this one having left `ready`) and
                // pushed after this look sees the lower `threads` after its push, and
                // starts a thread if need be; one that pushed before is seen here.
                fence(Ordering::SeqCst);
                if self.queue.is_empty() {
                    self.flags.sleepers.fetch_sub(1, Ordering::SeqCst);
                    return true;
                }
                self.rejoin(&mut state);
                self.flags.sleepers.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            Some(Duration::ZERO)
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
        self.flags.sleepers.fetch_sub(1, Ordering::SeqCst);
        drop(state);
        false
    }

    /// This thread no longer counts in `threads` (and no longer in `ready`); it runs its stop
    /// hook next.
    fn leave(&self, state: &mut State) {
        state.metrics.threads -= 1;
        self.flags
            .threads
            .store(state.metrics.threads, Ordering::SeqCst);
        state.exiting += 1;
    }

    /// Undoes `leave` (and `leave_idle`): a job came as this thread was leaving.
    fn rejoin(&self, state: &mut State) {
        state.exiting -= 1;
        state.metrics.threads += 1;
        self.flags
            .threads
            .store(state.metrics.threads, Ordering::SeqCst);
        self.flags.ready.fetch_add(IDLE, Ordering::AcqRel);
    }

    /// Takes the spinner's turn, unless another thread has it.
    fn become_spinner(&self) -> bool {
        self.flags
            .ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ready| {
                (ready & SPINNER == 0).then_some(ready | SPINNER)
            })
            .is_ok()
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
