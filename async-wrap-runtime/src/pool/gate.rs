//! The shutdown gate: one word holding the shutdown flag and the count of calls entering, so
//! that no call can slip a job in after `shutdown` unseen.
//!
//! A call enters with one `fetch_add` that also tells it whether the pool is shut down, and
//! leaves when its job is queued (the [`Entered`] guard's drop, on every path out, a panic
//! included). A thread leaves at shutdown only with the queue empty and no call entering, and
//! `shutdown` waits for them too, so a call that passed the check always has its job run, by a
//! thread `shutdown` joins. The word sits on cache lines of its own: only calls write it.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Ordering};

/// The flag bit: the pool is shut down.
const SHUT_DOWN: usize = 1 << (usize::BITS - 1);

pub(super) struct Gate(CachePadded<AtomicUsize>);

impl Gate {
    pub(super) fn new() -> Self {
        Gate(CachePadded::new(AtomicUsize::new(0)))
    }

    /// Enters, unless the pool is shut down; `on_leave_closed` runs when a call leaves a gate
    /// closed meanwhile (to wake whoever waits for the calls entering).
    pub(super) fn enter<F: Fn()>(&self, on_leave_closed: F) -> Option<Entered<'_, F>> {
        let entered = Entered {
            gate: self,
            on_leave_closed,
        };
        (self.0.fetch_add(1, Ordering::SeqCst) & SHUT_DOWN == 0).then_some(entered)
    }

    /// Closes the gate: every later `enter` fails.
    pub(super) fn close(&self) {
        self.0.fetch_or(SHUT_DOWN, Ordering::SeqCst);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.0.load(Ordering::SeqCst) & SHUT_DOWN != 0
    }

    /// Calls between their check and the end of their submission.
    pub(super) fn entering(&self) -> usize {
        self.0.load(Ordering::SeqCst) & !SHUT_DOWN
    }
}

/// A call inside the gate; dropping it leaves.
pub(super) struct Entered<'a, F: Fn()> {
    gate: &'a Gate,
    on_leave_closed: F,
}

impl<F: Fn()> Drop for Entered<'_, F> {
    fn drop(&mut self) {
        let before = self.gate.0.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before & !SHUT_DOWN > 0, "left the gate without entering");
        if before & SHUT_DOWN != 0 {
            (self.on_leave_closed)();
        }
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use std::cell::Cell;

    use super::Gate;

    #[test]
    fn a_call_enters_an_open_gate_and_leaves_on_drop() {
        let gate = Gate::new();
        let woken = Cell::new(0);
        let entered = gate.enter(|| woken.set(woken.get() + 1));
        assert!(entered.is_some());
        assert_eq!(gate.entering(), 1);
        gate.close();
        assert!(gate.is_closed());
        drop(entered);
        assert_eq!(
            (gate.entering(), woken.get()),
            (0, 1),
            "left a closed gate: wakes"
        );
        assert!(gate.enter(|| woken.set(woken.get() + 1)).is_none());
        assert_eq!(
            (gate.entering(), woken.get()),
            (0, 2),
            "a refused call leaves too"
        );
    }
}
