//! What `#[async_wrap]` expands to. Not public API: the names and signatures may change in any
//! release.

pub use std::borrow::{Borrow, ToOwned};

pub use crate::executor::IntoExecutor;
pub use crate::future::BlockingFuture;
pub use crate::stream::BlockingStream;

use crate::executor::ExecutorRef;

/// The dispatch every shim makes: `executor` as the attribute evaluated it, `label` the
/// executor expression as written, `name` the function's path.
#[inline]
pub fn call<F, T>(
    executor: ExecutorRef,
    label: &'static str,
    name: &'static str,
    body: F,
) -> BlockingFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(executor, label, name, body)
}

/// The dispatch of a `stream` shim: `iter_fn` makes the iterator in the first refill job.
#[inline]
pub fn stream<F, I>(
    executor: ExecutorRef,
    label: &'static str,
    name: &'static str,
    batch: usize,
    iter_fn: F,
) -> BlockingStream<I::Item>
where
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    BlockingStream::new(executor, label, name, batch, iter_fn)
}

/// The batch size of a `stream` shim without `batch = ...`.
pub const DEFAULT_BATCH: usize = crate::stream::DEFAULT_BATCH;

/// The default pool, as the executor of a shim without `executor = ...`.
#[inline]
pub fn default_executor() -> ExecutorRef {
    ExecutorRef::Static(crate::default_pool())
}

/// The adapters named by `executor = tokio` and `executor = rayon`. The shim calls
/// `adapters::tokio::<adapters::Enabled>()`; without the cargo feature, `Enabled` lacks the
/// trait and the error says which feature to turn on.
pub mod adapters {
    use crate::executor::ExecutorRef;

    /// The marker that implements the trait of each adapter compiled in.
    pub struct Enabled;

    /// Implemented when the `tokio` feature is on.
    #[diagnostic::on_unimplemented(
        message = "`executor = tokio` needs the `tokio` feature of async-wrap",
        label = "the tokio adapter is not compiled in",
        note = "enable it in Cargo.toml: `async-wrap = {{ version = \"0.1\", features = [\"tokio\"] }}`"
    )]
    pub trait TokioFeature {}

    /// Implemented when the `rayon` feature is on.
    #[diagnostic::on_unimplemented(
        message = "`executor = rayon` needs the `rayon` feature of async-wrap",
        label = "the rayon adapter is not compiled in",
        note = "enable it in Cargo.toml: `async-wrap = {{ version = \"0.1\", features = [\"rayon\"] }}`"
    )]
    pub trait RayonFeature {}

    #[cfg(feature = "tokio")]
    impl TokioFeature for Enabled {}

    #[cfg(feature = "rayon")]
    impl RayonFeature for Enabled {}

    /// `executor = tokio`: the blocking pool of the tokio runtime that polls the future.
    #[inline]
    pub fn tokio<F: TokioFeature>() -> ExecutorRef {
        #[cfg(feature = "tokio")]
        {
            static CURRENT: crate::TokioBlocking = crate::TokioBlocking::current();
            ExecutorRef::Static(&CURRENT)
        }
        #[cfg(not(feature = "tokio"))]
        unreachable!("`Enabled: TokioFeature` holds only with the `tokio` feature")
    }

    /// `executor = rayon`: rayon's global pool.
    #[inline]
    pub fn rayon<F: RayonFeature>() -> ExecutorRef {
        #[cfg(feature = "rayon")]
        {
            static GLOBAL: crate::RayonPool = crate::RayonPool::global();
            ExecutorRef::Static(&GLOBAL)
        }
        #[cfg(not(feature = "rayon"))]
        unreachable!("`Enabled: RayonFeature` holds only with the `rayon` feature")
    }
}
