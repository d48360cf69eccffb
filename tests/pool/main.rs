//! The pool, tested through the public API: how many threads it runs, its bounded queue,
//! shutdown in every form, nested calls, per-thread state, the default pool, and user code
//! (hooks, wakers, `Drop`) that panics, blocks or calls back in. One test binary, a module per
//! subject: `cargo test --test pool SUBJECT` runs one (`cargo test --test pool pool_shutdown`).
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

mod default_pool;
mod nested_calls;
mod pool_backpressure;
mod pool_growth;
mod pool_shutdown;
mod shutdown_future;
mod thread_state;
mod user_code_panics;
mod user_code_reentry;
