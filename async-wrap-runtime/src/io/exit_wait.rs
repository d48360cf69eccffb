//! The process's exit waits, for a bounded time, for the writes that dropped [`Unblock`]
//! writers handed to their pools: the bytes a write accepted reach the writer even when the
//! process exits right after the drop (`std::process::exit`, or `main` returning: both end in
//! C's `exit`, which runs the handlers registered with `atexit`).
//!
//! Each such write is counted while it is under way ([`PendingWrite`]); the handler, registered
//! once with the first, waits until the count is 0 or [`EXIT_WAIT`] has passed, and then says
//! on standard error how many writes it gave up on. A process that ends otherwise (a signal,
//! `abort`, `_exit`) does not wait.
//!
//! [`Unblock`]: crate::Unblock

use std::io::Write as _;
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long the exit waits for the writes of dropped writers.
pub(crate) const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The writes under way.
static PENDING: Mutex<usize> = Mutex::new(0);
/// Notified when a write ends.
static ENDED: Condvar = Condvar::new();
static REGISTER: Once = Once::new();
/// The process that registered the handler: a child forked from it inherits the handler, and
/// the count, but not the threads that would end its writes.
static REGISTERED_BY: OnceLock<u32> = OnceLock::new();

fn pending() -> MutexGuard<'static, usize> {
    // Never held while user code runs: a poisoned count is still right.
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One write of a dropped writer, counted until it is dropped (written, or reported lost).
pub(crate) struct PendingWrite(());

impl PendingWrite {
    pub(crate) fn new() -> Self {
        REGISTER.call_once(|| {
            let _ = REGISTERED_BY.set(std::process::id());
            register();
        });
        *pending() += 1;
        PendingWrite(())
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        let mut count = pending();
        *count -= 1;
        drop(count);
        ENDED.notify_all();
    }
}

#[cfg(any(unix, windows))]
fn register() {
    // SAFETY: the declaration is C's `int atexit(void (*)(void))`, from the C library every
    // Rust program on these targets links; the callback is an `extern "C" fn` with no
    // arguments that never unwinds (`wait_at_exit` catches every panic).
    unsafe extern "C" {
        /// C's `atexit`: `callback` runs in the thread that calls `exit`, before the process
        /// ends, while the other threads (the pools' too) still run.
        safe fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    }
    // Refused (the table is full: 32 entries at least), the exit does not wait.
    let _ = atexit(wait_at_exit);
}

#[cfg(not(any(unix, windows)))]
fn register() {}

#[cfg(any(unix, windows))]
extern "C" fn wait_at_exit() {
    // Must not unwind into C.
    let _ = std::panic::catch_unwind(|| {
        if REGISTERED_BY.get() != Some(&std::process::id()) {
            return;
        }
        let left = wait_for_writes(EXIT_WAIT);
        if left > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "async_wrap::Unblock: the process exits with {left} write(s) of dropped writers \
                 not finished after {EXIT_WAIT:?}: their bytes may be lost (close writers with \
                 `close().await` before exiting)"
            );
        }
    });
}

/// Waits until no write is under way, or `limit` has passed: the writes left.
fn wait_for_writes(limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut count = pending();
    while *count > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        count = ENDED
            .wait_timeout(count, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    *count
}
