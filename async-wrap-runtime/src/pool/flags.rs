//! The pool's flags: what calls and threads read without the pool's lock, on cache lines of
//! their own ([`Flags`]). Each flag is a small type whose methods are the only way to it; those
//! kept with the protocol they serve live in its file (the ready word in
//! [`ready`](super::ready), [`Armed`] in [`supervisor_state`](super::supervisor_state),
//! [`Waiting`] in [`waiters`](super::waiters)), and the three below are the threads' own:
//! who sleeps ([`Sleepers`]), how many threads there are ([`ThreadCount`]), and whether the
//! pool has closed ([`Closed`]).

use super::ready::ReadySet;
use super::supervisor_state::Armed;
use super::waiters::Waiting;
use crate::sync::{AtomicBool, AtomicUsize, Ordering, fence};

/// What calls read on every submission and threads write only when they go idle or busy.
pub(super) struct Flags {
    /// Idle and claimed threads, and the spinner's turn.
    pub(super) ready: ReadySet,
    /// Threads asleep on `work` (or about to be): only they need a notification.
    pub(super) sleepers: Sleepers,
    /// `state.metrics.threads`, readable without the lock.
    pub(super) threads: ThreadCount,
    /// The supervisor is armed, watching queued jobs.
    pub(super) armed: Armed,
    /// `state.waiters` is not empty.
    pub(super) has_waiters: Waiting,
    /// The gate is closed: a copy the threads read between jobs, off the line calls write.
    pub(super) closed: Closed,
}

impl Flags {
    pub(super) fn new() -> Self {
        Flags {
            ready: ReadySet::new(),
            sleepers: Sleepers(AtomicUsize::new(0)),
            threads: ThreadCount(AtomicUsize::new(0)),
            armed: Armed::new(),
            has_waiters: Waiting::new(),
            closed: Closed(AtomicBool::new(false)),
        }
    }
}

/// Threads asleep on the pool's `work` condition variable, or about to be. A thread counts
/// itself before its last look at the queue ([`lie_down`](Self::lie_down)), and a call looks at
/// the count after its push ([`any_after_push`](Self::any_after_push)): both fenced, so either
/// the thread sees the job or the call sees the sleeper and notifies.
pub(super) struct Sleepers(AtomicUsize);

impl Sleepers {
    /// This thread is going to sleep: counted, then fenced before its look at the queue.
    pub(super) fn lie_down(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// This thread is awake again (or did not sleep after all).
    pub(super) fn get_up(&self) {
        let was = self.0.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(was > 0, "a thread got up that never lay down");
    }

    /// After a push (fenced here): whether a thread may be asleep and need a notification.
    pub(super) fn any_after_push(&self) -> bool {
        fence(Ordering::SeqCst);
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// The pool's thread count (`state.metrics.threads`), readable without the lock: written only
/// under the lock, each time the count changes.
pub(super) struct ThreadCount(AtomicUsize);

impl ThreadCount {
    /// The count is now `threads` (under the lock).
    pub(super) fn set(&self, threads: usize) {
        self.0.store(threads, Ordering::SeqCst);
    }

    /// The latest count, without the lock.
    pub(super) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The pool's gate has closed: a copy of the gate's closed bit that threads read between jobs,
/// off the cache line calls write on every submission. Set once, at shutdown.
pub(super) struct Closed(AtomicBool);

impl Closed {
    /// The pool closes (after its gate has).
    pub(super) fn close(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the pool has closed, as a hint (a thread deciding whether to spin): the gate is
    /// what decides.
    pub(super) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
