//! What `#[async_wrap]` expands to. Not public API: the names and signatures may change in any
//! release.

pub use std::borrow::{Borrow, ToOwned};

pub use crate::call::future::BlockingFuture;
pub use crate::executor::IntoExecutor;
pub use crate::io::stream::BlockingStream;
pub use crate::stateful::{StateError, StatefulPool};
pub use crate::stats::call_site::CallSite;

pub use self::executor_forms::executor;

/// The registry of `process` functions.
#[cfg(feature = "process")]
pub use inventory;

use crate::executor::ExecutorRef;
use std::sync::Arc;

/// The dispatch every shim makes: `executor` as the attribute evaluated it, `site` the
/// function's static record (its path, the executor expression as written). The shim is
/// `#[track_caller]`, so the location recorded here is the call of the wrapped function, named
/// if the call is refused.
#[inline]
#[track_caller]
pub fn call<F, T>(executor: ExecutorRef, site: &'static CallSite, body: F) -> BlockingFuture<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    BlockingFuture::new(executor, site, body).called_at(std::panic::Location::caller())
}

/// The dispatch of a `stream` shim whose function returns `Result<impl Iterator, E>`: `open`
/// runs on the pool and makes the iterator, and the future resolves to the stream of its items,
/// or to the error.
#[inline]
#[track_caller]
pub fn try_stream<F, I, E>(
    executor: ExecutorRef,
    site: &'static CallSite,
    batch: usize,
    open: F,
) -> BlockingFuture<Result<BlockingStream<I::Item>, E>>
where
    F: FnOnce() -> Result<I, E> + Send + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
    E: Send + 'static,
{
    let refills = executor.clone();
    BlockingFuture::new(executor, site, move || {
        open().map(|iter| {
            let iter = iter.into_iter();
            BlockingStream::new(refills, site, batch, move || iter)
        })
    })
    .called_at(std::panic::Location::caller())
}

/// The dispatch of a `stream` shim: `iter_fn` makes the iterator in the first refill job.
#[inline]
pub fn stream<F, I>(
    executor: ExecutorRef,
    site: &'static CallSite,
    batch: usize,
    iter_fn: F,
) -> BlockingStream<I::Item>
where
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    BlockingStream::new(executor, site, batch, iter_fn)
}

/// The pool of a `state` shim: `executor = POOL` must name a `&'static StatefulPool`.
#[inline]
pub fn stateful_pool<S, E>(pool: &'static StatefulPool<S, E>) -> &'static StatefulPool<S, E> {
    pool
}

/// What a field of `self` named by `executor = self.FIELD` must be: a handle the call can keep
/// after `self` is moved into the job or dropped. A pool held by value in the field is borrowed
/// from `self` for the call only.
#[diagnostic::on_unimplemented(
    message = "a pool held in a field as `{Self}` cannot be the executor: the call outlives its borrow of `self`",
    label = "borrowed from `self`",
    note = "share the pool: make the field an `Arc<{Self}>` (or a `&'static {Self}` naming a `static` pool), or an `ExecutorRef`"
)]
pub trait SharedField {}

impl<T: ?Sized> SharedField for Arc<T> {}
impl<T: ?Sized> SharedField for &'static T {}
impl SharedField for ExecutorRef {}

/// The check of `executor = self.FIELD`: the field is a [`SharedField`].
#[inline]
pub fn shared_field<T: SharedField + ?Sized>(_field: &T) {}

/// What `executor = EXPR` gave a shim, before `IntoExecutor` converts it: a `ProcessPool`
/// named by a function without `process` is told apart here (autoref specialization: the
/// method of [`GivenProcessPool`], on `Given<X>`, is found before that of [`GivenAny`], on
/// `&Given<X>`, and only for a process pool), so that the one error says to add `process`.
pub struct Given<X>(std::cell::Cell<Option<X>>);

impl<X> Given<X> {
    /// Holds `value`.
    #[inline]
    pub fn new(value: X) -> Self {
        Given(std::cell::Cell::new(Some(value)))
    }
}

/// The form of everything but a process pool: the value itself.
pub trait GivenAny<X> {
    /// The value given.
    fn take(&self) -> X;
}

impl<X> GivenAny<X> for &Given<X> {
    #[inline]
    fn take(&self) -> X {
        self.0.take().expect("a shim takes its executor once")
    }
}

/// A reference to a `ProcessPool` (or a `LazyLock` of one).
pub trait IsProcessPool {}

/// Never implemented: the error a process pool named without `process` gets.
#[diagnostic::on_unimplemented(
    message = "this executor is a `ProcessPool`, which runs `process` functions: add `process` to the attribute",
    label = "a process pool: `#[async_wrap(executor = POOL, process)]`",
    note = "without `process`, the body would run on a thread of this process: name a `BlockingPool` for that"
)]
pub trait UseProcess {}

/// The form of a process pool: refused, by [`UseProcess`].
pub trait GivenProcessPool {
    /// Never returns: the bound is not met.
    fn take(&self) -> ExecutorRef
    where
        Self: UseProcess;
}

impl<X: IsProcessPool> GivenProcessPool for Given<X> {
    fn take(&self) -> ExecutorRef
    where
        Self: UseProcess,
    {
        unreachable!("`UseProcess` has no implementation")
    }
}

#[cfg(feature = "process")]
impl IsProcessPool for &crate::process::ProcessPool {}
#[cfg(feature = "process")]
impl<F> IsProcessPool for &std::sync::LazyLock<crate::process::ProcessPool, F> {}

/// The dispatch of a `state` shim: the body gets its thread's value of `pool`.
#[inline]
#[track_caller]
pub fn call_with_state<S, E, F, T>(
    pool: &'static StatefulPool<S, E>,
    site: &'static CallSite,
    body: F,
) -> BlockingFuture<Result<T, StateError>>
where
    S: 'static,
    E: std::fmt::Display + 'static,
    F: FnOnce(&mut S) -> T + Send + 'static,
    T: Send + 'static,
{
    pool.call_at(site, body)
        .called_at(std::panic::Location::caller())
}

/// The call site of a wrapped function: its path (`module::name`), the executor's expression
/// as written, and where the function is defined.
#[inline]
pub const fn call_site(
    function: &'static str,
    executor: &'static str,
    file: &'static str,
    line: u32,
) -> CallSite {
    CallSite::new(function, executor).defined_at(file, line)
}

/// The batch size of a `stream` shim without `batch = ...`.
pub const DEFAULT_BATCH: usize = crate::io::stream::DEFAULT_BATCH;

/// The default pool, as the executor of a shim without `executor = ...`.
#[inline]
pub fn default_executor() -> ExecutorRef {
    ExecutorRef::default_pool()
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

    /// Implemented when the `process` feature is on.
    #[diagnostic::on_unimplemented(
        message = "`#[async_wrap(process)]` needs the `process` feature of async-wrap",
        label = "process pools are not compiled in",
        note = "enable it in Cargo.toml: `async-wrap = {{ version = \"0.1\", features = [\"process\"] }}` (Linux only)"
    )]
    pub trait ProcessFeature {}

    #[cfg(feature = "tokio")]
    impl TokioFeature for Enabled {}

    #[cfg(feature = "process")]
    impl ProcessFeature for Enabled {}

    /// `process`: checks that the feature is on.
    #[inline]
    pub fn process<F: ProcessFeature>() {}

    #[cfg(feature = "rayon")]
    impl RayonFeature for Enabled {}

    /// `executor = tokio`: the blocking pool of the tokio runtime that polls the future.
    #[inline]
    pub fn tokio<F: TokioFeature>() -> ExecutorRef {
        #[cfg(feature = "tokio")]
        {
            static CURRENT: crate::TokioBlocking = crate::TokioBlocking::current();
            ExecutorRef::fixed(&CURRENT)
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
            ExecutorRef::fixed(&GLOBAL)
        }
        #[cfg(not(feature = "rayon"))]
        unreachable!("`Enabled: RayonFeature` holds only with the `rayon` feature")
    }
}

/// What a `process` shim calls: the pool, the serializability check, the call, and the
/// worker's entry. Without the `process` feature, stand-ins with the same shapes, so that the
/// one error is the missing feature's.
#[cfg(feature = "process")]
pub mod process {
    pub use crate::process::__shim::*;
}

/// Stand-ins for the `process` shim's items when the feature is off: they type-check the
/// expansion (and the caller's `.await`), so the one error is the feature's. Never run.
#[cfg(not(feature = "process"))]
pub mod process {
    use std::marker::PhantomData;

    use crate::stats::call_site::CallSite;

    /// Stands for the pool.
    pub struct Unavailable;
    /// Stands for a frame.
    pub struct Frame;
    /// Stands for the error.
    #[derive(Debug)]
    pub struct ProcessError;
    impl std::fmt::Display for ProcessError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("process pools are not compiled in")
        }
    }
    impl std::error::Error for ProcessError {}

    /// Stands for the future.
    pub struct ProcessFuture<T>(PhantomData<fn() -> T>);
    impl<T> std::future::Future for ProcessFuture<T> {
        type Output = Result<T, ProcessError>;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            unreachable!("`process` shims do not compile without the feature")
        }
    }

    /// Accepts any pool.
    pub fn pool<P: ?Sized>(_: &P) -> Unavailable {
        Unavailable
    }
    /// Stands for a codec.
    pub struct Codec<E: ?Sized, D = E>(PhantomData<fn(&E) -> D>);
    /// Accepts any type.
    pub fn portable<T>() -> Codec<T> {
        Codec(PhantomData)
    }
    /// Accepts any borrowed type.
    pub fn portable_ref<B: ?Sized + ToOwned>() -> Codec<B, B::Owned> {
        Codec(PhantomData)
    }
    /// Stands for a request.
    pub struct Request;
    impl Request {
        /// Never called.
        pub fn new(_: &str) -> Self {
            unreachable!("`process` shims do not compile without the feature")
        }
        /// Never called.
        pub fn push<E: ?Sized, D>(&mut self, _: Codec<E, D>, _: &E) {}
    }
    /// Stands for the arguments.
    pub struct Arguments<'a>(PhantomData<&'a ()>);
    impl Arguments<'_> {
        /// Never called.
        ///
        /// # Errors
        ///
        /// Never.
        pub fn take<E: ?Sized, D>(&mut self, _: Codec<E, D>) -> Result<D, String> {
            unreachable!("`process` shims do not compile without the feature")
        }
        /// Never called.
        ///
        /// # Errors
        ///
        /// Never.
        pub fn finish(&self) -> Result<(), String> {
            unreachable!("`process` shims do not compile without the feature")
        }
    }
    /// Never called: the feature's error stops the build.
    pub fn call<T>(_: Unavailable, _: &CallSite, _: Request, _: Codec<T>) -> ProcessFuture<T> {
        unreachable!("`process` shims do not compile without the feature")
    }
    /// Never called.
    pub fn serve<T>(
        _: &[u8],
        _: Codec<T>,
        _: impl FnOnce(&mut Arguments<'_>) -> Result<T, String>,
    ) -> Frame {
        unreachable!("`process` shims do not compile without the feature")
    }

    /// Uses the entry, registering nothing.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __async_wrap_register_process_entry {
        ($key:expr, $run:expr) => {
            const _: fn(&[u8]) -> $crate::__private::process::Frame = $run;
        };
    }
    pub use crate::__async_wrap_register_process_entry as register;
}

/// `executor = EXPR`: every form of expression that denotes an executor, turned into an
/// [`ExecutorRef`].
///
/// The shim calls [`executor`] with `&EXPR` when `EXPR` is a place (a path, a field, an index,
/// a dereference) and with `EXPR` itself otherwise (a call, a reference, a block). The marker
/// `M` is inferred, and the forms are disjoint, so exactly one impl applies to each type:
///
/// | what the shim passes | for | becomes |
/// |---|---|---|
/// | `&'static P` | a `static` (or an index into one), `&POOL`, `pool()` returning `&'static P` | `Static` |
/// | `&Arc<E>` | a field, a variable, an `Arc` in a static | `Shared`, the `Arc` cloned |
/// | `&&'static P` | an argument or field holding a `&'static` | `Static` |
/// | `Arc<E>`, `Box<E>` | a call returning one | `Shared` |
/// | `ExecutorRef`, `&ExecutorRef` | a handle | itself, cloned |
///
/// where `P` is an executor (sized or `dyn Executor`) or a `LazyLock` or `Box` of one, and
/// inside a `LazyLock`, `Box` or `Arc` reached from a static, any of these or an `Arc` or a
/// `&'static` of one. A place whose borrow is not `'static` (a pool owned by a local or by
/// `self`) is refused by the borrow checker: a job cannot keep it.
pub mod executor_forms {
    use std::sync::{Arc, LazyLock};

    use crate::executor::{Executor, ExecutorRef, IntoExecutor};

    /// The executor a shim uses, from what `executor = EXPR` gave it. See the module docs.
    #[inline]
    pub fn executor<M, X: IntoExecutor<M>>(expr: X) -> ExecutorRef {
        expr.into_executor()
    }

    /// An executor type: sized, or one of the `dyn Executor` types.
    pub trait Target: 'static {
        /// The executor as a `&'static dyn Executor`.
        fn fixed(this: &'static Self) -> &'static dyn Executor;
        /// The executor as an `Arc<dyn Executor>`.
        fn shared(this: Arc<Self>) -> Arc<dyn Executor>;
    }

    #[diagnostic::do_not_recommend]
    impl<E: Executor + 'static> Target for E {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            this
        }
        fn shared(this: Arc<Self>) -> Arc<dyn Executor> {
            this
        }
    }

    macro_rules! dyn_targets {
        ($($ty:ty),*) => {$(
            #[diagnostic::do_not_recommend]
            impl Target for $ty {
                fn fixed(this: &'static Self) -> &'static dyn Executor {
                    this
                }
                fn shared(this: Arc<Self>) -> Arc<dyn Executor> {
                    this
                }
            }
        )*};
    }
    dyn_targets!(
        dyn Executor,
        dyn Executor + Send,
        dyn Executor + Sync,
        dyn Executor + Send + Sync
    );

    /// A type a `&'static` of which reaches an executor, at the top of the expression: an
    /// executor, or a `LazyLock` or `Box` of something that reaches one. (An `Arc` and a
    /// `&'static` are handled by their own forms there, so that the forms stay disjoint.)
    pub trait TopStatic<M>: 'static {
        /// The executor behind `this`.
        fn fixed(this: &'static Self) -> &'static dyn Executor;
    }

    /// Like [`TopStatic`], inside a `LazyLock`, `Box` or `Arc`: also an `Arc` or a `&'static`.
    pub trait Static<M>: 'static {
        /// The executor behind `this`.
        fn fixed(this: &'static Self) -> &'static dyn Executor;
    }

    /// The markers that tell the forms apart.
    pub mod markers {
        /// An executor itself.
        pub struct Direct;
        /// Through a `LazyLock`.
        pub struct Lazy;
        /// Through a `Box`.
        pub struct Boxed;
        /// Through an `Arc`.
        pub struct Counted;
        /// Through a `&'static`.
        pub struct Ref;
        /// Any [`TopStatic`](super::TopStatic) form, inside another.
        pub struct Top;
        /// `&'static P`.
        pub struct StaticPlace;
        /// `&Arc<E>`.
        pub struct ArcPlace;
        /// `&&'static P`.
        pub struct RefPlace;
        /// `Arc<E>`.
        pub struct ArcValue;
        /// `Box<E>`.
        pub struct BoxValue;
        /// `ExecutorRef`.
        pub struct Handle;
        /// `&ExecutorRef`.
        pub struct HandlePlace;
    }
    use markers::{
        ArcPlace, ArcValue, BoxValue, Boxed, Counted, Direct, Handle, HandlePlace, Lazy, Ref,
        RefPlace, StaticPlace, Top,
    };

    #[diagnostic::do_not_recommend]
    impl<T: Target + ?Sized> TopStatic<Direct> for T {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            T::fixed(this)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Static<M>, F: FnOnce() -> T + 'static, M> TopStatic<(Lazy, M)> for LazyLock<T, F> {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            T::fixed(LazyLock::force(this))
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Static<M> + ?Sized, M> TopStatic<(Boxed, M)> for Box<T> {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            T::fixed(&**this)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: TopStatic<M> + ?Sized, M> Static<(Top, M)> for T {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            <T as TopStatic<M>>::fixed(this)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Static<M> + ?Sized, M> Static<(Counted, M)> for Arc<T> {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            T::fixed(&**this)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Static<M> + ?Sized, M> Static<(Ref, M)> for &'static T {
        fn fixed(this: &'static Self) -> &'static dyn Executor {
            T::fixed(*this)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<P: TopStatic<M> + ?Sized, M> IntoExecutor<(StaticPlace, M)> for &'static P {
        fn into_executor(self) -> ExecutorRef {
            ExecutorRef::fixed(P::fixed(self))
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Target + ?Sized> IntoExecutor<ArcPlace> for &Arc<T> {
        fn into_executor(self) -> ExecutorRef {
            ExecutorRef::shared(T::shared(Arc::clone(self)))
        }
    }

    #[diagnostic::do_not_recommend]
    impl<P: Static<M> + ?Sized, M> IntoExecutor<(RefPlace, M)> for &&'static P {
        fn into_executor(self) -> ExecutorRef {
            ExecutorRef::fixed(P::fixed(*self))
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Target + ?Sized> IntoExecutor<ArcValue> for Arc<T> {
        fn into_executor(self) -> ExecutorRef {
            ExecutorRef::shared(T::shared(self))
        }
    }

    #[diagnostic::do_not_recommend]
    impl<T: Target + ?Sized> IntoExecutor<BoxValue> for Box<T> {
        fn into_executor(self) -> ExecutorRef {
            ExecutorRef::shared(T::shared(Arc::from(self)))
        }
    }

    #[diagnostic::do_not_recommend]
    impl IntoExecutor<Handle> for ExecutorRef {
        fn into_executor(self) -> ExecutorRef {
            self
        }
    }

    #[diagnostic::do_not_recommend]
    impl IntoExecutor<HandlePlace> for &ExecutorRef {
        fn into_executor(self) -> ExecutorRef {
            self.clone()
        }
    }
}
