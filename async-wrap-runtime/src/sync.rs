//! The synchronisation primitives of the task cell: std's, or loom's under
//! `cfg(async_wrap_loom)`, so that the loom models in `task.rs` explore every interleaving of the
//! cell's lock and flag. (The cfg has the crate's name because plain `cfg(loom)` also switches
//! tokio, a dependency of the tests, into its own loom mode.)
//!
//! `Arc` stays std's in both: loom's cannot coerce to `Arc<dyn Trait>` on stable Rust, and std's
//! reference counting is not what the models check.

#[cfg(async_wrap_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(async_wrap_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(async_wrap_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(async_wrap_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
