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
//!
//! # What runs where
//!
//! Calling `count_lines(path)` runs nothing: it moves `path` into a job and returns a
//! [`BlockingFuture`]. The first poll hands the job to the function's executor (the
//! [`default_pool`] here), whose thread runs the body while the async task that awaits is
//! suspended and its runtime thread runs other tasks. When the body returns, the pool thread wakes
//! the task, which resumes with the value.
//!
//! # The pieces
//!
//! - [`macro@async_wrap`]: the attribute, with its options.
//! - [`BlockingPool`]: an elastic pool; put one in a `static` to cap the threads a kind of work
//!   may use. [`default_pool`] is the one used when no executor is named.
//! - [`Executor`]: the trait a pool implements; implement it to run wrapped calls on your own.
//! - [`spawn`] and [`spawn_on`]: the same dispatch for a closure, without the attribute.
//! - [`is_cancelled`]: lets a long-running body stop once nobody awaits its result.

/// Turns a blocking function into one that returns a `Send + 'static` future that runs the
/// body on a blocking thread pool.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::{async_wrap, BlockingPool};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(2);
///
/// /// Doubles `n`, slowly.
/// #[async_wrap(executor = IO)]
/// pub fn slow_double(n: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(10));
///     n * 2
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(slow_double(21).await, 42);
/// # });
/// ```
///
/// # What it generates
///
/// The function above becomes, in effect:
///
/// ```
/// # use async_wrap::{BlockingFuture, BlockingPool};
/// # static IO: BlockingPool = BlockingPool::with_max_threads(2);
/// /// Doubles `n`, slowly.
/// pub fn slow_double(n: u64) -> BlockingFuture<u64> {
///     async_wrap::spawn_on(&IO, move || {
///         std::thread::sleep(std::time::Duration::from_millis(10));
///         n * 2
///     })
/// }
/// # assert_eq!(futures::executor::block_on(slow_double(21)), 42);
/// ```
///
/// Name, visibility, generics, where-clause, doc comments and other attributes are kept; only
/// the return type changes, from `T` to [`BlockingFuture<T>`]. The body is not rewritten.
///
/// # The rules
///
/// - **Arguments move into the job**, which runs on another thread after the call returns, so
///   they must be `Send + 'static`. A borrowed argument (`&str`, `&mut Vec<u8>`, `Cow<'a, str>`,
///   `impl Trait + 'a`) is a compile error at that argument, naming the owned type to use.
///   `&'static T` is fine.
/// - **The return type must be `Send + 'static`**; if it is not, the error points at it.
/// - **Methods** take `self` by value or `self: Arc<Self>`; `&self` and `&mut self` are refused
///   (the job cannot borrow from the caller).
/// - **Recursion**: in a free function, a call to the function itself inside the body stays a
///   plain synchronous call. In a method, `self.method()` and `Self::method()` reach the wrapped
///   (async) form; use `sync = NAME` and call `Self::NAME` for the synchronous one.
/// - **Refused**: `async fn` (already async), `const fn`, `extern` ABIs, C variadics, anything
///   but a function. The original item is still emitted next to the error, so the rest of the
///   crate keeps type-checking.
///
/// ```compile_fail
/// #[async_wrap::async_wrap]
/// fn shout(text: &str) -> String { // error: borrowed argument: `&str` ...; take an owned `String`
///     text.to_uppercase()
/// }
/// ```
///
/// # Options
///
/// Each option may be given once, in any order.
///
/// ## `executor = EXPR`
///
/// Where the jobs run; the default is the [`default_pool`]. The expression is evaluated on each
/// call. A place expression (a `static`, a variable, a field) is borrowed, any other expression
/// (a call, `&POOL`) is used as it is; the result may be a `static` of an [`Executor`], a
/// `LazyLock` of one, a `&'static` reference or an [`Arc`](std::sync::Arc) (see
/// [`IntoExecutor`]).
///
/// ```
/// use std::sync::{Arc, LazyLock};
/// use async_wrap::{async_wrap, BlockingPool};
///
/// static DISK: LazyLock<BlockingPool> = LazyLock::new(|| BlockingPool::with_max_threads(2));
///
/// #[async_wrap(executor = DISK)]
/// fn read_config() -> String {
///     String::from("threads = 2")
/// }
///
/// struct Service {
///     pool: Arc<BlockingPool>,
/// }
///
/// impl Service {
///     #[async_wrap(executor = self.pool)]
///     fn lookup(self: Arc<Self>, key: String) -> usize {
///         key.len()
///     }
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(read_config().await, "threads = 2");
/// let service = Arc::new(Service { pool: Arc::new(BlockingPool::with_max_threads(1)) });
/// assert_eq!(service.lookup("four".into()).await, 4);
/// # });
/// ```
///
/// ## `sync = NAME`
///
/// Also emits the original, blocking function under `NAME`, with the same visibility and docs:
/// for synchronous callers, tests, and bodies that want to call the function without going
/// through a pool.
///
/// ```
/// use async_wrap::async_wrap;
///
/// #[async_wrap(sync = checksum_blocking)]
/// pub fn checksum(data: Vec<u8>) -> u32 {
///     data.iter().map(|&b| u32::from(b)).sum()
/// }
///
/// assert_eq!(checksum_blocking(vec![1, 2, 3]), 6);
/// # assert_eq!(futures::executor::block_on(checksum(vec![1, 2, 3])), 6);
/// ```
///
/// ## `crate = PATH`
///
/// The path of this crate when it is renamed or re-exported (the expansion otherwise names
/// `::async_wrap`).
///
/// ```
/// mod reexported {
///     pub(crate) use async_wrap as aw;
/// }
///
/// #[async_wrap::async_wrap(crate = crate::reexported::aw)]
/// fn one() -> u8 {
///     1
/// }
/// # fn main() { assert_eq!(futures::executor::block_on(one()), 1); }
/// ```
#[doc(inline)]
pub use async_wrap_macros::async_wrap;

pub use async_wrap_runtime::{
    BlockingFuture, BlockingPool, BuildError, Builder, CallError, Checked, Executor, ExecutorRef,
    InstallError, IntoExecutor, Job, MAX_THREADS_ENV, Metrics, QueueFull, RejectReason, Rejected,
    RunningJob, ShutdownReport, Submit, Waiter, block_on, default_pool, install_default,
    is_cancelled, spawn, spawn_on,
};

#[cfg(feature = "rayon")]
pub use async_wrap_runtime::RayonPool;
#[cfg(feature = "tokio")]
pub use async_wrap_runtime::TokioBlocking;

/// What the `#[async_wrap]` expansion refers to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use async_wrap_runtime::__private::*;
}
