//! The pool's counters: [`Metrics`], the per-thread [`Slot`]s the workers count their jobs in,
//! and the summing `metrics()` does (`Metrics::with_slots`). To add a metric: a field here,
//! counted in a slot (per job, written by one thread) or in `State::metrics` (under the lock),
//! and summed in `with_slots` (or in `Shared::metrics`).

// The thread's id is a hint for the supervisor, outside every protocol: a plain atomic, not
// one loom models.
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use crossbeam_utils::CachePadded;

use super::os_thread::OsThread;
use crate::call::task::Outcome;
use crate::stats::call_site::CallSite;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};

/// A job a thread runs: who it is, when it started, and whether the slow-call watcher must
/// pass it by (reported already, or its body not started yet).
#[derive(Clone, Copy)]
pub(super) struct Started {
    pub(super) site: &'static CallSite,
    pub(super) since: Instant,
    pub(super) reported: bool,
}

/// Counters of a [`BlockingPool`](super::BlockingPool), from
/// [`BlockingPool::metrics`](super::BlockingPool::metrics).
///
/// ```
/// use async_wrap::{spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
/// let _ = futures::executor::block_on(futures::FutureExt::catch_unwind(
///     std::panic::AssertUnwindSafe(spawn_on(&POOL, || -> () { panic!("counted") })),
/// ));
/// futures::executor::block_on(spawn_on(&POOL, || ()));
/// let metrics = POOL.metrics();
/// assert_eq!((metrics.completed, metrics.panicked, metrics.queued), (1, 1, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Threads alive now: busy, idle, or exiting (running their `on_thread_stop` hook).
    pub threads: usize,
    /// Threads alive and waiting for a job.
    pub idle_threads: usize,
    /// Jobs waiting in the queue for a thread.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs whose body returned, since the pool started.
    pub completed: u64,
    /// Jobs whose body panicked (the panic went to the awaiting future).
    pub panicked: u64,
    /// Jobs skipped because their future was dropped before they started.
    pub cancelled: u64,
    /// Jobs run inline on the submitting thread: nested calls on a saturated pool, and
    /// [`QueueFull::RunOnCaller`](super::QueueFull::RunOnCaller).
    pub inline: u64,
    /// Calls refused (shutdown, or a full queue under [`QueueFull::Reject`](super::QueueFull::Reject)).
    pub rejected: u64,
    /// Threads started since the pool started.
    pub threads_started: u64,
}

impl Metrics {
    pub(super) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Panicked => self.panicked += 1,
            Outcome::Cancelled => self.cancelled += 1,
            // Counted where it ran.
            Outcome::Elsewhere => {}
        }
    }

    /// These counts (the pool's own, kept under its lock) with the slots' added, and the jobs
    /// running now: what `metrics` reports of the threads' work.
    pub(super) fn with_slots(mut self, slots: &[Arc<CachePadded<Slot>>]) -> (Metrics, usize) {
        let mut running = 0;
        for slot in slots {
            running += usize::from(slot.running().is_some());
            self.completed += slot.completed.load(Ordering::Relaxed);
            self.panicked += slot.panicked.load(Ordering::Relaxed);
            self.cancelled += slot.cancelled.load(Ordering::Relaxed);
        }
        (self, running)
    }

    pub(super) fn finished(&self) -> u64 {
        self.completed + self.panicked + self.cancelled
    }
}

/// What a worker thread writes for every job, on cache lines of its own; read by `metrics`, the
/// supervisor and `shutdown`. A slot outlives its thread and is reused by a later one, its
/// counts carrying on.
pub(super) struct Slot {
    /// The job running now, with when it started.
    running: Mutex<Option<Started>>,
    /// Jobs this slot's threads took from the queue.
    pub(super) started: AtomicU64,
    /// The operating system's id of the thread holding the slot ([`OsThread`]'s word), for
    /// the supervisor to read what the thread is doing.
    os_thread: AtomicU32,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
}

impl Slot {
    pub(super) fn new() -> Self {
        Slot {
            running: Mutex::new(None),
            started: AtomicU64::new(0),
            os_thread: AtomicU32::new(0),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }

    /// The thread taking the slot says who it is to the operating system.
    pub(super) fn held_by(&self, thread: OsThread) {
        self.os_thread.store(thread.to_word(), Ordering::Relaxed);
    }

    /// The thread holding the slot (or, between threads, the last one).
    pub(super) fn os_thread(&self) -> OsThread {
        OsThread::from_word(self.os_thread.load(Ordering::Relaxed))
    }

    pub(super) fn running(&self) -> MutexGuard<'_, Option<Started>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one to a count only this slot's thread writes: no read-modify-write needed.
    pub(super) fn bump(count: &AtomicU64) {
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(super) fn count(&self, outcome: Outcome) {
        Slot::bump(match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Panicked => &self.panicked,
            Outcome::Cancelled => &self.cancelled,
            // Counted where it ran.
            Outcome::Elsewhere => return,
        });
    }
}
