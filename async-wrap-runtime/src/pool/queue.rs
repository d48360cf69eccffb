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

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Queue, RING};
    use crate::call::task::Task;
    use crate::executor::Job;
    use crate::stats::call_site::CallSite;

    static NUMBERED: CallSite = CallSite::new("numbered", "queue");

    /// A job that records its number in `log` when it runs.
    fn job(log: &Arc<Mutex<Vec<usize>>>, number: usize) -> Job {
        let log = Arc::clone(log);
        Job::new(Task::new(&NUMBERED, move || {
            log.lock().unwrap().push(number);
        }))
    }

    #[test]
    fn jobs_leave_in_the_order_they_came_through_the_overflow() {
        let queue = Queue::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let total = 3 * RING + 7;
        // Fill past the ring, take some out (which refills the ring from the overflow), push
        // more while the overflow still holds jobs, then drain.
        for number in 0..2 * RING {
            queue.push(job(&log, number));
        }
        assert_eq!(queue.len(), 2 * RING);
        for _ in 0..RING / 2 {
            queue.pop().expect("a queued job").run();
        }
        for number in 2 * RING..total {
            queue.push(job(&log, number));
        }
        assert_eq!(queue.len(), total - RING / 2);
        while let Some(job) = queue.pop() {
            job.run();
        }
        assert!(queue.is_empty());
        assert_eq!(queue.len(), 0);
        assert_eq!(*log.lock().unwrap(), (0..total).collect::<Vec<_>>());
        // Once drained, the ring takes jobs again (the overflow is out of the way).
        queue.push(job(&log, total));
        assert!(!queue.overflowing.load(super::Ordering::SeqCst));
        queue.pop().expect("the job").run();
        assert_eq!(log.lock().unwrap().last(), Some(&total));
    }

    #[test]
    fn threads_popping_while_a_caller_overflows_lose_and_repeat_nothing() {
        let queue = Arc::new(Queue::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let total = 20 * RING;
        let poppers: Vec<_> = (0..2)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let mut ran = 0;
                    let mut idle_rounds = 0;
                    while idle_rounds < 10_000 {
                        if let Some(job) = queue.pop() {
                            job.run();
                            ran += 1;
                            idle_rounds = 0;
                        } else {
                            idle_rounds += 1;
                            std::thread::yield_now();
                        }
                    }
                    ran
                })
            })
            .collect();
        for number in 0..total {
            queue.push(job(&log, number));
        }
        let mut ran: usize = poppers.into_iter().map(|p| p.join().unwrap()).sum();
        while let Some(job) = queue.pop() {
            job.run();
            ran += 1;
        }
        assert_eq!(ran, total);
        let mut seen = log.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..total).collect::<Vec<_>>());
    }
}
