//! The synchronisation primitives the runtime's own state uses: std's, or loom's under
//! `cfg(async_wrap_loom)`, so that the loom models (in `call/task.rs` and `pool/loom_models.rs`)
//! explore every interleaving of the task cell's and the pool's locks, condition variables,
//! flags and threads. (The cfg has the crate's name because plain `cfg(loom)` also switches
//! tokio, a dependency of the tests, into its own loom mode.)
//!
//! `Arc` stays std's in both: loom's cannot coerce to `Arc<dyn Trait>` on stable Rust, and std's
//! reference counting is not what the models check.

#[cfg(async_wrap_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(async_wrap_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(async_wrap_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(async_wrap_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Threads: std's, or loom's.
pub(crate) mod thread {
    #[cfg(async_wrap_loom)]
    pub(crate) use loom::thread::{Builder, JoinHandle, Thread, current, park};
    #[cfg(not(async_wrap_loom))]
    pub(crate) use std::thread::{Builder, JoinHandle, Thread, current, park, yield_now};
}
