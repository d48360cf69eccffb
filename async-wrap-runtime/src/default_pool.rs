//! The process-wide default pool that `#[async_wrap]` uses when no executor is named.

use std::fmt;
use std::sync::OnceLock;

use crate::BlockingPool;

/// The environment variable that sets the default pool's `max_threads`
/// (`ASYNC_WRAP_MAX_THREADS=64 ./my-service`).
pub(crate) const MAX_THREADS_ENV: &str = "ASYNC_WRAP_MAX_THREADS";

static DEFAULT: OnceLock<BlockingPool> = OnceLock::new();

/// The pool that `#[async_wrap]` without `executor = ...` (and [`spawn`](crate::spawn)) uses.
///
/// Built on first use, unless [`install_default`] put one there before: `max_threads` is read
/// from the environment variable `ASYNC_WRAP_MAX_THREADS`, else 512; a value that does not parse
/// as a whole number in `1..=10000` falls back to 512. Threads are named `async-wrap-N` and exit
/// after 10 s idle.
///
/// It cannot be shut down: every `#[async_wrap]` without an `executor`, in every crate of the
/// process, depends on it, so `shutdown` and its variants panic on it with a message that says
/// so. Work you want to stop belongs on a pool of its own.
///
/// ```
/// let pool = async_wrap::default_pool();
/// assert!(pool.settings().max_threads >= 1);
///
/// let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.shutdown()));
/// assert!(refused.is_err());
/// assert!(!pool.is_shut_down());
/// ```
pub fn default_pool() -> &'static BlockingPool {
    DEFAULT.get_or_init(|| {
        let mut pool = BlockingPool::with_max_threads(max_threads_from(
            std::env::var(MAX_THREADS_ENV).ok().as_deref(),
        ));
        pool.set_default(true);
        pool
    })
}

/// Makes `pool` the default pool. Call it once, before the first wrapped call that uses the
/// default pool.
///
/// # Errors
///
/// [`InstallError`], holding `pool`, when the default pool already exists: installed by an
/// earlier call, or built by a first use. The pool in place is not replaced.
///
/// ```
/// use async_wrap::{default_pool, install_default, BlockingPool};
///
/// install_default(BlockingPool::with_max_threads(8).thread_name("blocking"))
///     .expect("installed before first use");
/// assert_eq!(default_pool().settings().max_threads, 8);
///
/// let again = install_default(BlockingPool::with_max_threads(2));
/// assert!(again.is_err());
/// ```
pub fn install_default(mut pool: BlockingPool) -> Result<(), InstallError> {
    pool.set_default(true);
    DEFAULT.set(pool).map_err(|mut pool| {
        // Given back as it came: a pool of the caller's own, which may be shut down.
        pool.set_default(false);
        InstallError {
            pool: Box::new(pool),
        }
    })
}

/// The default pool was already set when [`install_default`] was called.
///
/// ```
/// use async_wrap::{default_pool, install_default, BlockingPool};
///
/// let _ = default_pool(); // the default pool now exists
/// let err = install_default(BlockingPool::with_max_threads(4)).unwrap_err();
/// assert!(err.to_string().starts_with("the default pool is already set"));
/// ```
pub struct InstallError {
    /// Boxed: an error is passed around, and a pool's settings are large.
    pool: Box<BlockingPool>,
}

impl InstallError {
    /// The pool that was not installed.
    ///
    /// ```
    /// use async_wrap::{default_pool, install_default, BlockingPool};
    ///
    /// let _ = default_pool();
    /// let pool = install_default(BlockingPool::with_max_threads(4)).unwrap_err().into_pool();
    /// assert_eq!(pool.settings().max_threads, 4); // not lost: use it as a pool of its own
    /// ```
    pub fn into_pool(self) -> BlockingPool {
        *self.pool
    }
}

impl fmt::Debug for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallError").finish_non_exhaustive()
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the default pool is already set (installed earlier, or built by a first use); \
             call install_default once, before any call that uses the default pool",
        )
    }
}

impl std::error::Error for InstallError {}

/// `max_threads` for the default pool from the variable's value, if any.
fn max_threads_from(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .unwrap_or(BlockingPool::DEFAULT_MAX_THREADS)
}

#[cfg(test)]
mod tests {
    use super::max_threads_from;

    #[test]
    fn env_value_is_parsed_within_bounds() {
        assert_eq!(max_threads_from(None), 512);
        assert_eq!(max_threads_from(Some("16")), 16);
        assert_eq!(max_threads_from(Some(" 3 ")), 3);
        assert_eq!(max_threads_from(Some("1")), 1);
        assert_eq!(max_threads_from(Some("10000")), 10_000);
        assert_eq!(max_threads_from(Some("0")), 512);
        assert_eq!(max_threads_from(Some("10001")), 512);
        assert_eq!(max_threads_from(Some("-4")), 512);
        assert_eq!(max_threads_from(Some("many")), 512);
        assert_eq!(max_threads_from(Some("")), 512);
    }
}
