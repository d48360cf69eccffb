//! Futures waiting for room in a full bounded queue (`QueueFull::Wait`): registered by
//! `place_bounded`, woken oldest first by a thread that makes room, given up by a future that
//! is dropped. Their wakers are user code: each is woken or dropped outside the pool's lock, and
//! its panic is caught.

use super::shared::{Shared, State};
use crate::executor::Waiter;
use crate::panic_guard::{drop_guarded, wake_guarded};
use crate::sync::{Ordering, fence};
use std::task::Waker;

impl Shared {
    /// Removes `waiter`'s registration, if it has one, and gives its waker back, for the caller
    /// to drop or wake after the lock.
    pub(super) fn take_waiter(&self, state: &mut State, waiter: Waiter) -> Option<Waker> {
        let at = state.waiters.iter().position(|(id, _)| *id == waiter)?;
        let (_, waker) = state.waiters.remove(at)?;
        self.note_waiters(state);
        Some(waker)
    }

    /// Mirrors `state.waiters` being non-empty in `has_waiters`, which threads read without the
    /// lock.
    fn note_waiters(&self, state: &State) {
        self.flags
            .has_waiters
            .store(!state.waiters.is_empty(), Ordering::SeqCst);
    }

    /// The queue has room for one more job, or a thread is free: wakes the oldest future that
    /// waits for room, if any; true if it woke one. Called by workers: the waker's panic is
    /// caught.
    pub(super) fn wake_waiter(&self) -> bool {
        if self.config.queue_capacity.is_none() {
            // Only a bounded queue has futures waiting for room.
            return false;
        }
        fence(Ordering::SeqCst);
        if self.flags.has_waiters.load(Ordering::SeqCst) {
            let mut state = self.lock();
            let waiter = state.waiters.pop_front();
            self.note_waiters(&state);
            drop(state);
            if let Some((_, waker)) = waiter {
                wake_guarded(waker);
                return true;
            }
        }
        false
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

    /// Takes every waiter out, at shutdown: each retries and is refused.
    pub(super) fn take_all_waiters(&self, state: &mut State) -> Vec<Waker> {
        let waiters = std::mem::take(&mut state.waiters);
        self.note_waiters(state);
        waiters.into_iter().map(|(_, waker)| waker).collect()
    }
}
