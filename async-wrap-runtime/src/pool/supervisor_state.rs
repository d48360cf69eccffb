//! The supervisor's part of a pool's shared state: whether its thread runs and watches
//! ([`Supervision`], under the pool's mutex), and whether it is armed, readable without the lock
//! ([`Armed`], among the pool's flags). Their methods are the only way to either, and keep the
//! two in step: whenever the pool's mutex is free, `Armed` is set exactly when the supervisor
//! is armed. The thread's loop is in [`supervisor`](super::supervisor).

use crate::sync::{AtomicBool, Ordering, fence};

/// The supervisor thread's state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Supervisor {
    /// Not running: the next job that waits starts it.
    Absent,
    /// Running, with nothing to watch.
    Idle,
    /// Running, watching jobs that wait.
    Armed,
}

/// The supervisor thread's state, under the pool's mutex.
pub(super) struct Supervision {
    thread: Supervisor,
}

/// The supervisor is armed, watching queued jobs: the copy calls read without the lock.
pub(super) struct Armed(AtomicBool);

impl Armed {
    pub(super) fn new() -> Self {
        Armed(AtomicBool::new(false))
    }

    /// Read without the lock (`after_uncounted_push`).
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Supervision {
    pub(super) fn new() -> Self {
        Supervision {
            thread: Supervisor::Absent,
        }
    }

    pub(super) fn is_armed(&self) -> bool {
        self.thread == Supervisor::Armed
    }

    /// Arms the supervisor; says what it was (`Idle`: to be notified; `Absent`: to be started).
    pub(super) fn arm(&mut self, armed: &Armed) -> Supervisor {
        let was = std::mem::replace(&mut self.thread, Supervisor::Armed);
        armed.0.store(true, Ordering::Release);
        was
    }

    /// Its thread could not be started: no supervisor, not armed.
    pub(super) fn failed_to_start(&mut self, armed: &Armed) {
        self.thread = Supervisor::Absent;
        armed.0.store(false, Ordering::Release);
    }

    /// Its thread, not armed, returns.
    pub(super) fn leave(&mut self) {
        self.thread = Supervisor::Absent;
    }

    /// Its thread stays, with nothing to watch.
    pub(super) fn idle(&mut self, armed: &Armed) {
        self.thread = Supervisor::Idle;
        armed.0.store(false, Ordering::Release);
    }

    /// The queue looked empty: disarms, then looks again with `queued` (fenced against a call's
    /// push and its look at `Armed`: one of the two sees the other), and stays armed if a job
    /// came.
    pub(super) fn disarm_unless_queued(&mut self, armed: &Armed, queued: impl FnOnce() -> bool) {
        armed.0.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if queued() {
            armed.0.store(true, Ordering::SeqCst);
        } else {
            self.thread = Supervisor::Idle;
        }
    }
}
