//! [`CallSite`]: who a call is, as one value: the wrapped function and the executor expression
//! it names. `#[async_wrap]` emits one `static` per function; the closures of
//! [`spawn_on`](crate::spawn_on), [`spawn`](crate::spawn), the streams and `Unblock` have one
//! each. Futures, jobs, errors and the pool's running-job records carry a `&'static CallSite`.

/// The identity of a wrapped function's calls: its path and the executor expression it names.
///
/// ```
/// use async_wrap_runtime::__private::CallSite;
///
/// static SITE: CallSite = CallSite::new("app::db::query", "DB");
/// assert_eq!((SITE.function(), SITE.executor()), ("app::db::query", "DB"));
/// ```
#[derive(Debug)]
pub struct CallSite {
    function: &'static str,
    executor: &'static str,
}

impl CallSite {
    /// The call site of `function` (its path, `module::name`) on the executor written as
    /// `executor` (the expression's text, or "the default pool").
    pub const fn new(function: &'static str, executor: &'static str) -> Self {
        CallSite { function, executor }
    }

    /// The wrapped function's path, or `closure` for a closure passed to `spawn_on`.
    pub const fn function(&self) -> &'static str {
        self.function
    }

    /// How the caller named the executor: messages use it when the executor has no name of its
    /// own.
    pub const fn executor(&self) -> &'static str {
        self.executor
    }
}

/// A closure passed to `spawn_on`.
pub(crate) static SPAWN_ON: CallSite = CallSite::new("closure", "spawn_on");
/// A closure passed to `spawn`.
pub(crate) static SPAWN: CallSite = CallSite::new("closure", "the default pool");
/// A blocking iterator passed to `stream_on`.
pub(crate) static STREAM_ON: CallSite = CallSite::new("iterator", "stream_on");
/// A blocking iterator passed to `stream`.
pub(crate) static STREAM: CallSite = CallSite::new("iterator", "the default pool");
/// A job already run (or dropped): it has no body left to name.
pub(crate) static RUN: CallSite = CallSite::new("", "");
/// The calls of an `Unblock`.
pub(crate) static UNBLOCK: CallSite = CallSite::new("Unblock", "Unblock");
