//! A wrapped call, tested through the public API: what the future does, the per-call-site
//! statistics, the adaptive wait for short calls, slow-call reports, streams, `Unblock`, and
//! the adapters of the cargo features. One test binary, a module per subject:
//! `cargo test --test calls SUBJECT` runs one (`cargo test --test calls adaptive_wait`).
//!
//! Tests that could hang on a regression run under the `within` watchdog; durations are
//! asserted from below or as generous bounds, never as speed measurements.

/// The call-site path of this module's function `name` (`binary::module::name`), as
/// `call_sites()` and slow-call reports name it.
macro_rules! site {
    ($name:literal) => {
        concat!(module_path!(), "::", $name)
    };
}

#[path = "../support/mod.rs"]
mod support;

#[cfg(any(feature = "tokio", feature = "rayon"))]
mod adapters;
mod adaptive_wait;
mod async_io;
mod call_semantics;
mod call_sites;
mod eager_start;
mod slow_calls;
mod streams;
