//! The pool's job queue: a lock-free ring for the common case, and a locked overflow behind it.
//!
//! Calls push and threads pop without any lock while fewer than [`RING`] jobs wait, so a call
//! and a thread touch no cache line in common but the ring's slot they hand a job through. A
//! burst beyond the ring goes to the overflow, in order: once the overflow holds a job, pushes go
//! there too, and a thread that finds the ring empty refills it from the overflow's front, so
//! that jobs leave in the order they came (between calls on different threads there is no order
//! to keep). The ring is allocated once, with the pool; the overflow grows as needed.

use std::collections::VecDeque;
use std::sync::PoisonError;

use crate::executor::Job;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};

/// Jobs the ring holds: 24 KiB per pool.
pub(super) const RING: usize = 1024;

pub(super) struct Queue {
    ring: Ring,
    overflow: Mutex<VecDeque<Job>>,
    /// The overflow holds jobs: pushes go there, and pops look there once the ring is empty.
    overflowing: AtomicBool,
    /// `overflow.len()`, readable without the lock.
    overflow_len: AtomicUsize,
}

impl Queue {
    pub(super) fn new() -> Self {
        Queue {
            ring: Ring::new(RING),
            overflow: Mutex::new(VecDeque::new()),
            overflowing: AtomicBool::new(false),
            overflow_len: AtomicUsize::new(0),
        }
    }

    pub(super) fn push(&self, job: Job) {
        let job = if self.overflowing.load(Ordering::Acquire) {
            job
        } else {
            match self.ring.push(job) {
                Ok(()) => return,
                Err(job) => job,
            }
        };
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        // The overflow may have drained while this call waited for the lock.
        let job = if overflow.is_empty() {
            match self.ring.push(job) {
                Ok(()) => return,
                Err(job) => job,
            }
        } else {
            job
        };
        overflow.push_back(job);
        self.overflow_len.store(overflow.len(), Ordering::Relaxed);
        self.overflowing.store(true, Ordering::SeqCst);
    }

    pub(super) fn pop(&self) -> Option<Job> {
        if let Some(job) = self.ring.pop() {
            return Some(job);
        }
        if !self.overflowing.load(Ordering::SeqCst) {
            return None;
        }
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have refilled the ring meanwhile: its jobs are older.
        if let Some(job) = self.ring.pop() {
            return Some(job);
        }
        let job = overflow.pop_front();
        while let Some(next) = overflow.pop_front() {
            if let Err(next) = self.ring.push(next) {
                overflow.push_front(next);
                break;
            }
        }
        self.overflow_len.store(overflow.len(), Ordering::Relaxed);
        if overflow.is_empty() {
            self.overflowing.store(false, Ordering::SeqCst);
        }
        job
    }

    pub(super) fn len(&self) -> usize {
        self.ring.len() + self.overflow_len.load(Ordering::Relaxed)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ring.is_empty() && !self.overflowing.load(Ordering::SeqCst)
    }
}

/// crossbeam's bounded lock-free MPMC queue (Vyukov's design).
#[cfg(not(async_wrap_loom))]
struct Ring(crossbeam_queue::ArrayQueue<Job>);

#[cfg(not(async_wrap_loom))]
impl Ring {
    fn new(capacity: usize) -> Self {
        Ring(crossbeam_queue::ArrayQueue::new(capacity))
    }

    fn push(&self, job: Job) -> Result<(), Job> {
        self.0.push(job)
    }

    fn pop(&self) -> Option<Job> {
        self.0.pop()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Under loom, a locked ring of two jobs stands in for crossbeam's (which loom cannot see into),
/// so that the models also take the overflow's paths.
#[cfg(async_wrap_loom)]
struct Ring(Mutex<VecDeque<Job>>);

#[cfg(async_wrap_loom)]
impl Ring {
    fn new(_capacity: usize) -> Self {
        Ring(Mutex::new(VecDeque::new()))
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, VecDeque<Job>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: Job) -> Result<(), Job> {
        let mut ring = self.lock();
        if ring.len() >= 2 {
            return Err(job);
        }
        ring.push_back(job);
        Ok(())
    }

    fn pop(&self) -> Option<Job> {
        self.lock().pop_front()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
