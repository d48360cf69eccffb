//! The waiters' part of a pool's shared state: futures waiting for room in a full bounded queue
//! (`QueueFull::Wait`), oldest first ([`Waiters`], under the pool's mutex), and whether any
//! waits, readable without the lock ([`Waiting`], among the pool's flags). Their methods are
//! the only way to either, and each change of the list is mirrored in the flag.
//!
//! Registered by `place_bounded` (`submit.rs`), woken oldest first by a thread that makes room
//! (`wake_waiter`, `worker.rs`), given up by a future that is dropped (`cancel_wait`,
//! `submit.rs`). Their wakers are user code: each is woken or dropped by the caller outside the
//! pool's lock, and its panic is caught.

use std::collections::VecDeque;
use std::task::Waker;

use crate::executor::Waiter;
use crate::sync::{AtomicBool, Ordering, fence};

/// Futures waiting for room, oldest first: in the pool's `State`, so every method has its lock.
pub(super) struct Waiters {
    list: VecDeque<(Waiter, Waker)>,
}

/// `Waiters` is not empty: the copy threads read without the lock.
pub(super) struct Waiting(AtomicBool);

impl Waiting {
    pub(super) fn new() -> Self {
        Waiting(AtomicBool::new(false))
    }

    /// Whether a future waits, looked at after a fence, without the lock: a thread that has just
    /// made room (F4, against `Waiters::register`).
    pub(super) fn after_fence(&self) -> bool {
        fence(Ordering::SeqCst);
        self.0.load(Ordering::SeqCst)
    }
}

impl Waiters {
    pub(super) fn new() -> Self {
        Waiters {
            list: VecDeque::new(),
        }
    }

    /// Mirrors the list being non-empty in `waiting`.
    pub(super) fn note(&self, waiting: &Waiting) {
        waiting.0.store(!self.list.is_empty(), Ordering::SeqCst);
    }

    /// Registers `waiter` with its waker, at the back. True if it is the first (no future was
    /// waiting): the flag is then set and fenced (F4), and the caller must look at the room
    /// again, since a thread that made room without the lock may not have seen the flag.
    pub(super) fn register(&mut self, waiting: &Waiting, waiter: Waiter, waker: Waker) -> bool {
        let first = !waiting.0.load(Ordering::SeqCst);
        self.list.push_back((waiter, waker));
        if first {
            waiting.0.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
        first
    }

    /// Removes `waiter`'s registration, if it has one, and gives its waker back, for the caller
    /// to drop or wake after the lock.
    pub(super) fn take(&mut self, waiting: &Waiting, waiter: Waiter) -> Option<Waker> {
        let at = self.list.iter().position(|(id, _)| *id == waiter)?;
        let (_, waker) = self.list.remove(at)?;
        self.note(waiting);
        Some(waker)
    }

    /// Takes the oldest waiter's waker out, for the caller to wake after the lock. The flag is
    /// left to the caller (`note`).
    pub(super) fn pop_oldest(&mut self) -> Option<Waker> {
        self.list.pop_front().map(|(_, waker)| waker)
    }

    /// Takes every waiter out, at shutdown: each retries and is refused.
    pub(super) fn take_all(&mut self, waiting: &Waiting) -> Vec<Waker> {
        let waiters = std::mem::take(&mut self.list);
        self.note(waiting);
        waiters.into_iter().map(|(_, waker)| waker).collect()
    }
}
