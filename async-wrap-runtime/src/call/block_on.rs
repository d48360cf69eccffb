//! [`block_on`]: waits for a future on the current thread, and may be nested.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicBool, Ordering};

/// Runs `future` to completion on the current thread, parking it while the future is pending.
///
/// For synchronous code, a body of a wrapped function included, that must wait on a wrapped
/// call. Unlike `futures::executor::block_on` it may be nested (a body run by `block_on` may call
/// `block_on` again), and a wrapped call it polls on a worker of a saturated pool runs inline, on
/// that worker, instead of waiting for a thread that will never come free.
///
/// Do not call it on an async runtime's thread: it blocks that thread like any blocking call.
///
/// A short call awaited here may be waited for on this thread for a few microseconds rather
/// than parking it (the adaptive wait: see [`set_adaptive_wait`](crate::set_adaptive_wait)):
/// `futures::executor::block_on`, which the crate cannot tell from a runtime with other tasks,
/// parks at every call.
///
/// ```
/// use async_wrap::{block_on, spawn_on, BlockingPool};
///
/// static ONE: BlockingPool = BlockingPool::with_max_threads(1);
///
/// // A job on the only thread of ONE waits on another job on ONE: it runs inline.
/// let outer = spawn_on(&ONE, || block_on(spawn_on(&ONE, || 20)) + 1);
/// assert_eq!(block_on(outer), 21);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    // Nothing else runs on this thread meanwhile: short calls may be waited for here.
    let _alone = super::adaptive::in_block_on();
    let mut future = pin!(future);
    let signal = Arc::new(Signal {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake between the poll and here leaves `woken` set: no wake is lost, and a spurious
        // unpark only costs one more check.
        while !signal.woken.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

struct Signal {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}
