//! The thread pools behind [`async-wrap`](https://docs.rs/async-wrap): where the bodies of
//! `#[async_wrap]` functions run.
//!
//! Use it through the `async-wrap` crate, which re-exports everything here. The pieces:
//!
//! - [`BlockingPool`]: an elastic pool of threads (a new thread only when none is idle, up to
//!   `max_threads`; idle threads exit after `keep_alive`), constructible in a `static`.
//! - [`default_pool`]: the pool used when no executor is named, built lazily on first use.
//! - [`Executor`]: the trait every pool implements, so that your own pools can run wrapped calls.
//! - [`BlockingFuture`]: the future of one call, resolving to the body's result; [`spawn`] and
//!   [`spawn_on`] make one from a closure.
//!
//! Behind cargo features: `tokio` adds `TokioBlocking` (tokio's blocking
//! pool), `rayon` adds `RayonPool` (CPU-bound work), `tracing` enters the
//! caller's current span around each job on the worker, `process` (Linux) adds
//! `process::ProcessPool`, which runs calls in worker processes, and `metrics` publishes the
//! call sites' statistics and the pools' counters through the `metrics` facade.
//!
//! The futures use nothing but [`std::task::Waker`]: they work under any async runtime (tokio,
//! async-std, smol) and under `futures::executor::block_on`.
//!
//! ```
//! use async_wrap::{spawn_on, BlockingPool};
//!
//! static DISK: BlockingPool = BlockingPool::with_max_threads(2).thread_name("disk");
//!
//! let len = futures::executor::block_on(spawn_on(&DISK, || {
//!     std::fs::read_to_string("Cargo.toml").map(|text| text.len())
//! }));
//! assert!(len.unwrap() > 0);
//! ```

mod adapters;
mod call;
mod default_pool;
mod executor;
mod io;
mod panic_guard;
mod pool;
#[cfg(feature = "process")]
pub mod process;
mod stateful;
mod stats;
mod sync;

#[cfg(feature = "rayon")]
pub use adapters::rayon::RayonPool;
#[cfg(feature = "tokio")]
pub use adapters::tokio::TokioBlocking;
pub use call::adaptive::{adaptive_wait_enabled, set_adaptive_wait};
pub use call::block_on::block_on;
pub use call::future::{BlockingFuture, CallError, Checked, spawn, spawn_on};
pub use call::task::is_cancelled;
pub use default_pool::{InstallError, default_pool, install_default};
pub use executor::{Executor, ExecutorRef, IntoExecutor, Job, RejectReason, Rejected};
pub use io::stream::{BlockingStream, stream, stream_on};
pub use io::unblock::Unblock;
pub use pool::{
    BlockingPool, BuildError, Builder, Metrics, QueueFull, RunningJob, Settings, ShutdownFuture,
    ShutdownReport, SlowCall, Slowness,
};
pub use stateful::{StateError, StatefulPool};
pub use stats::call_site::{CallSite, CallSites, CallStats, call_sites, reset_call_sites};
pub use stats::call_stats::{
    DURATION_BUCKETS, Timings, call_statistics_enabled, set_call_statistics,
};
#[cfg(feature = "metrics")]
pub use stats::export::{
    describe_metrics, publish_call_site_counters, publish_call_site_metrics,
    render_call_site_histograms, render_call_site_histograms_labelled,
};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The items behind cargo features, for the facade to re-export as this crate's features
/// have them. Not public API: use the items at the crate root.
#[doc(hidden)]
pub mod __feature_gated {
    #[cfg(feature = "rayon")]
    pub use crate::adapters::rayon::RayonPool;
    #[cfg(feature = "tokio")]
    pub use crate::adapters::tokio::TokioBlocking;
    #[cfg(feature = "process")]
    pub use crate::process;
    #[cfg(feature = "metrics")]
    pub use crate::stats::export::{
        describe_metrics, publish_call_site_counters, publish_call_site_metrics,
        render_call_site_histograms, render_call_site_histograms_labelled,
    };
}
