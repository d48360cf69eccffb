//! Containing the panics of user code that runs on threads which must go on (a pool's worker,
//! the slow-call watcher, a thread holding a count others wait for): wakers, hooks, and the
//! `Drop` of user values and of panic payloads.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

/// A panic payload, as `std::panic::catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Runs user code (a waker, a hook, a value's `Drop`) on a thread that must go on (a pool's
/// worker, the slow-call watcher, one holding a count that others wait for), catching its
/// panic, and a panic of that panic's payload as it is dropped. True if `f` returned.
pub(crate) fn guarded(f: impl FnOnce()) -> bool {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            drop_payload(payload);
            false
        }
    }
}

/// Drops a panic payload, catching a panic of its own `Drop`. The payload of that second
/// panic is leaked, not dropped: its `Drop` could panic in turn, for ever.
pub(crate) fn drop_payload(payload: Payload) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Wakes a user's waker, catching its panic: a waker is user code, and the thread calling it
/// (a pool's worker, or one holding a count that others wait for) must go on.
pub(crate) fn wake_guarded(waker: Waker) {
    guarded(|| waker.wake());
}

/// Drops a user's value (a waker, a body never run, a result), catching a panic of its
/// `Drop`.
pub(crate) fn drop_guarded<T>(value: T) {
    guarded(move || drop(value));
}
