//! Futures nobody awaits, run to their end by the threads that wake them: what a dropped stream
//! or writer hands to its executor (a job that waits for room, a write that must finish before
//! the next one starts) goes on after the drop has returned, without a thread of its own and
//! without blocking the thread that dropped it.
//!
//! [`spawn`] polls the future once on the calling thread; after that, each wake polls it on the
//! waking thread (a pool's worker finishing a job, a thread making room in a bounded queue). A
//! poll must therefore never block: the futures given here only submit jobs and take results.
//! A panic of a poll (user code: a waker, a `Drop`) ends the future there, caught.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::executor::{self, ExecutorRef, Job, Submit, Waiter};
use crate::panic_guard::{drop_guarded, drop_payload};
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Nobody polls the future, and nobody is about to.
const IDLE: usize = 0;
/// A thread polls the future.
const POLLING: usize = 1;
/// A thread polls the future, and it was woken meanwhile: the poller polls it again.
const NOTIFIED: usize = 2;
/// The future has ended.
const DONE: usize = 3;

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `future` to its end with nobody awaiting it: polled here first, then on whichever
/// thread wakes it. If every waker is dropped unwoken, the future is dropped with the last.
pub(crate) fn spawn<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = Arc::new(Detached {
        state: AtomicUsize::new(IDLE),
        future: Mutex::new(Some(Box::pin(future))),
    });
    task.wake_by_ref();
}

/// Hands `job` to `executor` with nobody awaiting it, waiting (asynchronously) for room if the
/// executor asks the caller to; a refused job is dropped where the refusal is learnt (its body
/// with it), which for a pool that was shut down is the calling thread.
pub(crate) fn submit(executor: ExecutorRef, job: Job) {
    spawn(Submission {
        executor,
        job: Some(job),
        waiter: None,
    });
}

struct Detached {
    state: AtomicUsize,
    /// Locked only by the thread that won the right to poll (`IDLE` to `POLLING`): a wake
    /// during a poll, from that thread or another, never waits for the lock.
    future: Mutex<Option<BoxedFuture>>,
}

impl Wake for Detached {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut seen = self.state.load(Ordering::Acquire);
        loop {
            let (from, to) = match seen {
                IDLE => (IDLE, POLLING),
                POLLING => (POLLING, NOTIFIED),
                // Already to be polled again, or over.
                _ => return,
            };
            match self
                .state
                .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if from == POLLING => return,
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        self.poll_to_rest();
    }
}

impl Detached {
    /// Polls the future until it is pending with no wake-up missed, or ended. Called by the
    /// thread that moved the state from `IDLE` to `POLLING`.
    fn poll_to_rest(self: &Arc<Self>) {
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        loop {
            let mut slot = self.future.lock().unwrap_or_else(PoisonError::into_inner);
            let ended = slot.as_mut().is_none_or(|future| {
                match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
                    Ok(polled) => polled.is_ready(),
                    Err(payload) => {
                        drop_payload(payload);
                        true
                    }
                }
            });
            if ended {
                let future = slot.take();
                self.state.store(DONE, Ordering::Release);
                drop(slot);
                // What the future still owns is user code: dropped outside the lock, caught.
                drop_guarded(future);
                return;
            }
            drop(slot);
            if self
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
            // Woken during the poll: poll again.
            self.state.store(POLLING, Ordering::Release);
        }
    }
}

/// A job on its way to an executor that may ask it to wait for room.
struct Submission {
    executor: ExecutorRef,
    job: Option<Job>,
    waiter: Option<Waiter>,
}

impl Future for Submission {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(job) = self.job.take() else {
            return Poll::Ready(());
        };
        let waiter = *self.waiter.get_or_insert_with(Waiter::new);
        match executor::poll_submit(self.executor.get(), job, cx, waiter) {
            Ok(Submit::Accepted) => {
                self.waiter = None;
                Poll::Ready(())
            }
            Ok(Submit::Full(job)) => {
                self.job = Some(job);
                Poll::Pending
            }
            Err(rejected) => {
                self.waiter = None;
                // Dropped here: the job's body (with what it owns) is dropped, caught.
                drop(rejected.into_job());
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        if let (Some(_), Some(waiter)) = (&self.job, &self.waiter) {
            // Dropped while waiting for room (its wakers were dropped unwoken): give the place
            // up, so that a wake-up meant for it is not lost.
            executor::cancel_wait(self.executor.get(), *waiter);
        }
    }
}
