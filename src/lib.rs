//! Call blocking code from async code without blocking the executor: `#[async_wrap]` turns a
//! blocking function into one that returns a future, and awaiting that future runs the body on a
//! thread pool built for blocking work.
//!
//! ```
//! use async_wrap::async_wrap;
//!
//! /// Counts the lines of a file, with blocking I/O.
//! #[async_wrap]
//! fn count_lines(path: std::path::PathBuf) -> std::io::Result<usize> {
//!     Ok(std::fs::read_to_string(path)?.lines().count())
//! }
//!
//! # futures::executor::block_on(async {
//! let lines = count_lines("Cargo.toml".into()).await?;
//! assert!(lines > 10);
//! # std::io::Result::Ok(()) }).unwrap();
//! ```

pub use async_wrap_macros::async_wrap;
pub use async_wrap_runtime::{
    BlockingFuture, BlockingPool, Executor, ExecutorRef, InstallError, IntoExecutor, Job,
    MAX_THREADS_ENV, Metrics, RejectReason, Rejected, default_pool, install_default, is_cancelled,
    spawn, spawn_on,
};

/// What the `#[async_wrap]` expansion refers to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use async_wrap_runtime::__private::*;
}
