//! Who is ready for work: the packed word of idle and claimed threads and the spinner's turn,
//! with one named transition for each step of the protocol.
//!
//! # Who is ready
//!
//! The word packs two counts: threads *idle* (between jobs, spinning or asleep) and idle
//! threads *claimed* by a call. A call that finds an idle thread claims it (idle − 1,
//! claimed + 1), so two calls never count on the same thread and the second one starts another;
//! a thread leaving the ready set with a job takes a claim if there is one, else its idle
//! count. A thread that goes from job to job without finding the queue empty touches neither.
//! A busy thread may pop a job another thread was claimed for; that thread finds the queue
//! empty and turns the claim back into an idle count, so a claim only ever delays growth, never
//! loses a job: every ready thread looks at the queue again, under the pool's lock, before it
//! sleeps, and a call that counted on a thread wakes a sleeper after its push (the two sides
//! fenced, so one sees the other).
//!
//! A thread is counted in the word *before* it is spawned (claimed, if it is started for a
//! job): it may pop a job and leave the ready set at once, and leaving must find its unit.
//!
//! The top bit is the spinner's turn: a thread that has just finished a job spins for a few
//! microseconds, watching the queue, and at most one does; a call that counted on a ready
//! thread takes the turn after its push, and then need not wake anyone.

use std::fmt;

use crate::sync::{AtomicU64, Ordering};

/// One idle thread.
const IDLE: u64 = 1;
/// One claimed thread.
const CLAIMED: u64 = 1 << 32;
/// A thread spins, looking for work, and no call has counted on it yet.
const SPINNER: u64 = 1 << 63;
/// The most threads either count can hold (the claimed count has 31 bits, below the spinner).
const MAX_COUNT: u64 = (1 << 31) - 1;

/// A snapshot of the ready word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Ready(u64);

impl Ready {
    /// Threads between jobs that no call has claimed.
    pub(super) fn idle(self) -> u64 {
        self.0 & (CLAIMED - 1)
    }

    /// Idle threads a call has counted on for its job.
    pub(super) fn claimed(self) -> u64 {
        (self.0 & !SPINNER) >> 32
    }

    /// Threads that will take a queued job without being started: idle or claimed.
    pub(super) fn threads(self) -> usize {
        usize::try_from(self.idle() + self.claimed()).unwrap_or(usize::MAX)
    }

    /// A thread has the spinner's turn.
    pub(super) fn spinning(self) -> bool {
        self.0 & SPINNER != 0
    }

    fn check(self) -> Self {
        debug_assert!(
            self.idle() <= MAX_COUNT && self.claimed() <= MAX_COUNT,
            "the ready word over- or underflowed: {self:?}"
        );
        self
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("idle", &self.idle())
            .field("claimed", &self.claimed())
            .field("spinning", &self.spinning())
            .finish()
    }
}

/// The ready word, changed only through the transitions below.
pub(super) struct ReadySet(AtomicU64);

impl ReadySet {
    pub(super) fn new() -> Self {
        ReadySet(AtomicU64::new(0))
    }

    /// The word now.
    pub(super) fn load(&self) -> Ready {
        Ready(self.0.load(Ordering::SeqCst))
    }

    /// A call counts on an idle thread for its job: true if there was one (idle → claimed).
    /// Done before the push, so that the thread cannot take the job as an unclaimed one and
    /// leave the call to start another.
    pub(super) fn claim(&self) -> bool {
        self.update(|ready| (ready.idle() > 0).then(|| ready.0 - IDLE + CLAIMED))
    }

    /// A ready thread took a job: it leaves the ready set, with a claim if there is one, else
    /// its idle count. The thread was counted (when it went idle, or by `start_thread`), so a
    /// unit is always there to take.
    pub(super) fn take_for_job(&self) {
        let took = self.update(|ready| {
            if ready.claimed() > 0 {
                Some(ready.0 - CLAIMED)
            } else {
                (ready.idle() > 0).then(|| ready.0 - IDLE)
            }
        });
        debug_assert!(
            took,
            "a ready thread found no unit of its own: {:?}",
            self.load()
        );
    }

    /// A busy thread took a job: if a thread was claimed, count it idle again, since there is
    /// one job fewer for it (claims never outnumber the jobs queued or being pushed).
    pub(super) fn release_claim(&self) {
        if self.load().claimed() > 0 {
            self.update(|ready| (ready.claimed() > 0).then(|| ready.0 - CLAIMED + IDLE));
        }
    }

    /// A busy thread found the queue empty, or a leaving thread came back: one more idle.
    pub(super) fn add_idle(&self) {
        Ready(self.0.fetch_add(IDLE, Ordering::AcqRel) + IDLE).check();
    }

    /// A thread about to be spawned is counted: claimed for a job, or idle.
    pub(super) fn add_started(&self, claimed: bool) {
        let unit = if claimed { CLAIMED } else { IDLE };
        Ready(self.0.fetch_add(unit, Ordering::AcqRel) + unit).check();
    }

    /// Undoes `add_started` for a thread that could not be spawned (nothing ran, so its unit
    /// is still there).
    pub(super) fn remove_started(&self, claimed: bool) {
        let unit = if claimed { CLAIMED } else { IDLE };
        let before = Ready(self.0.fetch_sub(unit, Ordering::AcqRel));
        debug_assert!(
            if claimed {
                before.claimed()
            } else {
                before.idle()
            } > 0,
            "took back a unit that was not there: {before:?}"
        );
    }

    /// An idle thread leaves the ready set to exit; false if only claims are left, a job being
    /// on its way.
    pub(super) fn retire_idle(&self) -> bool {
        self.update(|ready| (ready.idle() > 0).then(|| ready.0 - IDLE))
    }

    /// Takes the spinner's turn, unless another thread has it.
    pub(super) fn become_spinner(&self) -> bool {
        self.update(|ready| (!ready.spinning()).then_some(ready.0 | SPINNER))
    }

    /// The spinner stops spinning (its turn may have been taken by a call already).
    pub(super) fn end_spin(&self) {
        self.0.fetch_and(!SPINNER, Ordering::AcqRel);
    }

    /// A call that pushed a job for a ready thread takes the spinner's turn: true if a thread
    /// was spinning (it sees the job on its own, and no one needs waking).
    pub(super) fn take_spinner(&self) -> bool {
        Ready(self.0.fetch_and(!SPINNER, Ordering::AcqRel)).spinning()
    }

    /// Applies `step` until it succeeds; false if `step` declined.
    fn update(&self, step: impl Fn(Ready) -> Option<u64>) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                step(Ready(word)).map(|next| Ready(next).check().0)
            })
            .is_ok()
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use super::ReadySet;

    #[test]
    fn transitions_keep_the_counts() {
        let ready = ReadySet::new();
        assert!(!ready.claim(), "no idle thread to claim");
        ready.add_started(false);
        ready.add_started(true);
        assert_eq!((ready.load().idle(), ready.load().claimed()), (1, 1));
        assert!(ready.claim());
        assert_eq!((ready.load().idle(), ready.load().claimed()), (0, 2));
        ready.take_for_job();
        ready.release_claim();
        assert_eq!((ready.load().idle(), ready.load().claimed()), (1, 0));
        assert!(ready.become_spinner());
        assert!(!ready.become_spinner(), "one spinner at a time");
        assert!(ready.take_spinner());
        assert!(!ready.load().spinning());
        assert!(ready.retire_idle());
        assert!(!ready.retire_idle());
        assert_eq!(ready.load().threads(), 0);
        assert_eq!(
            format!("{:?}", ready.load()),
            "Ready { idle: 0, claimed: 0, spinning: false }"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a ready thread found no unit of its own")]
    fn taking_a_unit_that_is_not_there_is_caught_in_debug_builds() {
        ReadySet::new().take_for_job();
    }
}
