//! [`StatefulPool`]: a pool whose threads each own a value (a database connection, a parser, a
//! scratch buffer) that the bodies run on that thread get as `&mut S`: Python's
//! `ThreadPoolExecutor(initializer=...)` without a hand-written `thread_local!`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::call::future::BlockingFuture;
use crate::executor::{Executor, ExecutorRef, Job, Rejected, Sealed};
use crate::panic_guard::drop_guarded;
use crate::pool::BlockingPool;
use crate::stats::call_site::CallSite;

/// A [`BlockingPool`] whose threads each build a value of type `S` with `init`, keep it for
/// their whole life, and drop it on that thread when they exit (after `keep_alive` idle, or at
/// shutdown). A body run by [`call`](StatefulPool::call) gets its thread's value as `&mut S`.
///
/// Constructible in a `static`, like the pool it wraps ([`new`](StatefulPool::new),
/// [`fallible`](StatefulPool::fallible), with a function), or at run time with an initializer
/// that captures what only then is known, kept in a `static` `LazyLock` or `OnceLock`
/// ([`with_init`](StatefulPool::with_init), [`with_fallible_init`](StatefulPool::with_fallible_init)).
/// With `max_threads(2)`, a service opens two database connections, whatever the number of
/// calls in flight.
///
/// A value lives as long as its thread: a thread idle for the pool's `keep_alive` exits and
/// drops it (a connection is closed, and the next thread opens a new one). To keep some open
/// while the service is idle, give the pool [`min_threads`](BlockingPool::min_threads): that
/// many threads, and so that many values, stay.
///
/// # When `init` fails
///
/// A thread builds its value when it runs its first call of this pool (so a pool never used
/// builds nothing). A body that panics drops its thread's value (it may be half-changed): the
/// thread's next call builds a new one. If `init` returns `Err`, or panics, that call resolves to a [`StateError`]
/// naming the pool and giving the error's message, its body is not run, and the thread keeps
/// no value: its next call tries `init` again, so a database that was down for a moment does
/// not break the pool for good. The pool and its other threads are not affected.
///
/// # Where the value lives
///
/// On the thread that runs the call. A call run inline on another thread (a nested call on a
/// saturated pool, or [`QueueFull::RunOnCaller`](crate::QueueFull::RunOnCaller)) builds a value
/// on that thread, dropped when that thread exits; a call run inline inside another call of
/// the same pool on the same thread gets a value of its own, dropped when it returns.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use async_wrap::{BlockingPool, StatefulPool};
///
/// static OPENED: AtomicUsize = AtomicUsize::new(0);
///
/// /// A stand-in for `rusqlite::Connection::open`: counts what it opens.
/// fn open() -> Result<Vec<String>, std::io::Error> {
///     OPENED.fetch_add(1, Ordering::SeqCst);
///     Ok(Vec::new())
/// }
///
/// static DB: StatefulPool<Vec<String>, std::io::Error> =
///     StatefulPool::fallible(BlockingPool::with_max_threads(1).thread_name("db"), open);
///
/// futures::executor::block_on(async {
///     for n in 0..3 {
///         let rows = DB.call(move |log: &mut Vec<String>| {
///             log.push(format!("insert {n}"));
///             log.len()
///         });
///         assert_eq!(rows.await.unwrap(), n + 1); // the same value, call after call
///     }
/// });
/// assert_eq!(OPENED.load(Ordering::SeqCst), 1); // one thread, one value
/// ```
pub struct StatefulPool<S: 'static, E: 'static = std::convert::Infallible> {
    pool: BlockingPool,
    init: Init<S, E>,
}

/// How a thread builds its value: a function (for a `static`), or a closure built at run time
/// (capturing a path from the command line, say).
enum Init<S, E> {
    Infallible(fn() -> S),
    Fallible(fn() -> Result<S, E>),
    Captured(Box<dyn Fn() -> Result<S, E> + Send + Sync>),
}

impl<S, E> Init<S, E> {
    fn build(&self) -> Result<S, E> {
        match self {
            Init::Infallible(init) => Ok(init()),
            Init::Fallible(init) => init(),
            Init::Captured(init) => init(),
        }
    }
}

impl<S: 'static> StatefulPool<S> {
    /// A pool running on `pool`'s threads, each of which builds its value with `init`, which
    /// cannot fail (it may still panic: see "When `init` fails"). For an initializer that
    /// returns a `Result`, use [`fallible`](StatefulPool::fallible).
    ///
    /// ```
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// fn scratch() -> Vec<u8> {
    ///     Vec::with_capacity(1 << 20)
    /// }
    /// static HASHERS: StatefulPool<Vec<u8>> = StatefulPool::new(BlockingPool::with_max_threads(4), scratch);
    /// assert_eq!(HASHERS.pool().settings().max_threads, 4);
    /// ```
    pub const fn new(pool: BlockingPool, init: fn() -> S) -> Self {
        StatefulPool {
            pool,
            init: Init::Infallible(init),
        }
    }

    /// A pool whose threads each build their value with `init`, a closure that may capture
    /// what is known only at run time (a database path from the command line). A call needs
    /// the pool for `'static`: keep it in a `static` `LazyLock` or `OnceLock` (or leak it).
    /// For an initializer that can fail, use [`with_fallible_init`](StatefulPool::with_fallible_init).
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// static LOG: OnceLock<StatefulPool<Vec<String>>> = OnceLock::new();
    ///
    /// let prefix = std::env::args().count().to_string(); // known only at run time
    /// let pool = LOG.get_or_init(|| {
    ///     StatefulPool::with_init(BlockingPool::with_max_threads(1), move || vec![prefix.clone()])
    /// });
    /// let lines = futures::executor::block_on(pool.call(|log: &mut Vec<String>| {
    ///     log.push("opened".to_owned());
    ///     log.len()
    /// }));
    /// assert_eq!(lines.unwrap(), 2);
    /// ```
    pub fn with_init(pool: BlockingPool, init: impl Fn() -> S + Send + Sync + 'static) -> Self {
        StatefulPool {
            pool,
            init: Init::Captured(Box::new(move || Ok(init()))),
        }
    }
}

impl<S: 'static, E: fmt::Display + 'static> StatefulPool<S, E> {
    /// A pool running on `pool`'s threads, each of which builds its value with `init`, which
    /// may fail: a call on a thread whose `init` failed resolves to a [`StateError`].
    ///
    /// ```
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// fn connect() -> Result<std::net::TcpStream, std::io::Error> {
    ///     std::net::TcpStream::connect("127.0.0.1:1") // refused: nothing listens there
    /// }
    /// static LINKS: StatefulPool<std::net::TcpStream, std::io::Error> =
    ///     StatefulPool::fallible(BlockingPool::with_max_threads(1).thread_name("links"), connect);
    /// let err = futures::executor::block_on(LINKS.call(|link| link.peer_addr().is_ok())).unwrap_err();
    /// assert_eq!(err.pool(), "links");
    /// ```
    pub const fn fallible(pool: BlockingPool, init: fn() -> Result<S, E>) -> Self {
        StatefulPool {
            pool,
            init: Init::Fallible(init),
        }
    }

    /// A pool whose threads each build their value with `init`, a closure built at run time
    /// that may fail: [`with_init`](StatefulPool::with_init) with the failures of
    /// [`fallible`](StatefulPool::fallible).
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use std::sync::LazyLock;
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// // A path from the environment, read once, when the pool is first used.
    /// static FILES: LazyLock<StatefulPool<std::fs::File, std::io::Error>> = LazyLock::new(|| {
    ///     let path = PathBuf::from(std::env::var_os("NO_SUCH_VAR").unwrap_or("/no/such/file".into()));
    ///     StatefulPool::with_fallible_init(
    ///         BlockingPool::with_max_threads(1).thread_name("files"),
    ///         move || std::fs::File::open(&path),
    ///     )
    /// });
    /// let err = futures::executor::block_on(FILES.call(|file| file.metadata().is_ok())).unwrap_err();
    /// assert_eq!(err.pool(), "files");
    /// ```
    pub fn with_fallible_init(
        pool: BlockingPool,
        init: impl Fn() -> Result<S, E> + Send + Sync + 'static,
    ) -> Self {
        StatefulPool {
            pool,
            init: Init::Captured(Box::new(init)),
        }
    }

    /// The pool underneath: its metrics, its shutdown.
    ///
    /// ```
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// fn unit() {}
    /// let pool = StatefulPool::new(BlockingPool::with_max_threads(1), unit);
    /// pool.pool().shutdown();
    /// assert!(pool.pool().is_shut_down());
    /// ```
    pub fn pool(&self) -> &BlockingPool {
        &self.pool
    }

    /// The pool's name: that of the [`BlockingPool`] it runs on ([`BlockingPool::name`]).
    pub fn name(&self) -> Option<&str> {
        self.pool.name()
    }

    /// Runs `body` on one of the pool's threads with that thread's value, building the value
    /// first if the thread has none. Lazy, like every call: nothing runs until the future is
    /// first polled. A body's panic resumes in the caller; a failed `init` is a
    /// [`StateError`].
    ///
    /// ```
    /// use async_wrap::{BlockingPool, StatefulPool};
    ///
    /// fn failing() -> Result<String, String> {
    ///     Err("the database is down".to_owned())
    /// }
    /// static DB: StatefulPool<String, String> =
    ///     StatefulPool::fallible(BlockingPool::with_max_threads(1).thread_name("db"), failing);
    ///
    /// let err = futures::executor::block_on(DB.call(|conn: &mut String| conn.len())).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "async_wrap: the thread state of pool `db` could not be built: the database is down"
    /// );
    /// ```
    pub fn call<F, T>(&'static self, body: F) -> BlockingFuture<Result<T, StateError>>
    where
        S: 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        static SITE: CallSite = CallSite::new("closure", "StatefulPool::call");
        self.call_at(&SITE, body)
    }

    /// `call`, for the call site `site` (a `#[async_wrap(state)]` function's).
    pub(crate) fn call_at<F, T>(
        &'static self,
        site: &'static CallSite,
        body: F,
    ) -> BlockingFuture<Result<T, StateError>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (key, init) = (self.key(), &self.init);
        let pool_name = self.pool.name().map(str::to_owned);
        BlockingFuture::new(ExecutorRef::fixed(&self.pool), site, move || {
            with_state(key, init, body).map_err(|message| StateError {
                pool: pool_name.unwrap_or_else(|| "StatefulPool".to_owned()),
                message,
            })
        })
    }

    /// This pool's identity among the states a thread holds.
    fn key(&'static self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

/// A thread's value for one pool, dropped with its `Drop`'s panic caught: values left when a
/// thread that is not a pool's worker exits are dropped by its thread-local destructors, where
/// a panic would abort the process.
struct Held(Option<Box<dyn Any>>);

impl Drop for Held {
    fn drop(&mut self) {
        drop_guarded(self.0.take());
    }
}

thread_local! {
    /// The values this thread holds, by pool. A pool's worker holds at most one; a thread that
    /// runs calls of several pools inline may hold one for each. While a call uses the value,
    /// its entry stays, empty: a call of the same pool nested in it gets a value of its own.
    static STATES: RefCell<Vec<(usize, Held)>> = const { RefCell::new(Vec::new()) };
    /// `drop_thread_states` is registered to run at this thread's exit (if it is a pool's
    /// worker), and has not run yet.
    static AT_EXIT: Cell<bool> = const { Cell::new(false) };
}

/// Where a call's value came from, and so where it goes back.
enum Taken {
    /// The thread's value (its entry now empty), or a new one for the thread (its entry made):
    /// it goes back into the entry.
    Owned,
    /// An outer call of the same pool on this thread has the thread's value: this call's value
    /// is its own, and is dropped when it returns.
    Nested,
}

/// Runs `body` with this thread's value for the pool `key`, built with `init` if there is none.
fn with_state<S: 'static, E: fmt::Display, T>(
    key: usize,
    init: &Init<S, E>,
    body: impl FnOnce(&mut S) -> T,
) -> Result<T, String> {
    let (held, taken) = STATES.with(|states| {
        let mut states = states.borrow_mut();
        match states.iter_mut().find(|(owner, _)| *owner == key) {
            Some((_, Held(Some(_)))) | None => {
                let held = states
                    .iter_mut()
                    .find(|(owner, _)| *owner == key)
                    .and_then(|(_, held)| held.0.take());
                if held.is_none() {
                    states.push((key, Held(None)));
                    drop_at_worker_exit();
                }
                (held, Taken::Owned)
            }
            Some((_, Held(None))) => (None, Taken::Nested),
        }
    });
    let built = match held.map(Box::<dyn Any>::downcast::<S>) {
        Some(Ok(state)) => Ok(state),
        // A value of another type under this key cannot be: the key is the pool, whose `S`
        // is fixed. Built anew if it ever were.
        Some(Err(_)) | None => match panic::catch_unwind(AssertUnwindSafe(|| init.build())) {
            Ok(Ok(state)) => Ok(Box::new(state)),
            Ok(Err(err)) => Err(err.to_string()),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                // The payload is the user's: its `Drop` may panic too.
                crate::panic_guard::drop_payload(payload);
                Err(message)
            }
        },
    };
    let mut state = match built {
        Ok(state) => state,
        Err(message) => {
            if let Taken::Owned = taken {
                put_back::<S>(key, None);
            }
            return Err(message);
        }
    };
    // A body that panics may have left the value half-changed: it is dropped (here, its own
    // panic caught), and the thread's next call builds a new one.
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(&mut state)));
    match (result, taken) {
        (Ok(result), Taken::Owned) => {
            put_back(key, Some(state));
            Ok(result)
        }
        (Ok(result), Taken::Nested) => {
            drop_guarded(state);
            Ok(result)
        }
        (Err(payload), taken) => {
            if let Taken::Owned = taken {
                put_back::<S>(key, None);
            }
            drop_guarded(state);
            panic::resume_unwind(payload)
        }
    }
}

/// Gives the entry of `key` its value back, or removes the entry if there is none to give.
fn put_back<S: 'static>(key: usize, state: Option<Box<S>>) {
    let _ = STATES.try_with(|states| {
        let mut states = states.borrow_mut();
        let Some(at) = states.iter().position(|(owner, _)| *owner == key) else {
            return;
        };
        match state {
            Some(state) => states[at].1 = Held(Some(state as Box<dyn Any>)),
            None => {
                states.swap_remove(at);
            }
        }
    });
}

/// Has a pool's worker drop this thread's values as it exits (`drop_thread_states`), once.
fn drop_at_worker_exit() {
    if !AT_EXIT.replace(true) {
        crate::pool::at_worker_exit(drop_thread_states);
    }
}

/// Drops every value this thread holds, each `Drop`'s panic caught: a pool's worker runs it
/// as it exits (registered by `drop_at_worker_exit`), so that the values are dropped on their
/// thread, before its thread-local destructors.
fn drop_thread_states() {
    let _ = AT_EXIT.try_with(|registered| registered.set(false));
    let states = STATES.try_with(|states| std::mem::take(&mut *states.borrow_mut()));
    drop(states);
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map_or_else(
            || "the initializer panicked".to_owned(),
            |text| format!("the initializer panicked: {text}"),
        )
}

impl<S: 'static, E: 'static> Executor for StatefulPool<S, E> {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        self.pool.execute(job)
    }

    fn name(&self) -> Option<&str> {
        self.pool.name()
    }

    fn __blocking_pool(&self, _: Sealed) -> Option<&BlockingPool> {
        Some(&self.pool)
    }
}

impl<S: 'static, E: 'static> fmt::Debug for StatefulPool<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatefulPool")
            .field("state", &std::any::type_name::<S>())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// A thread of a [`StatefulPool`] could not build its value: `init` returned an error or
/// panicked. The call's body did not run; the thread tries again at its next call.
///
/// ```
/// use async_wrap::{BlockingPool, StatefulPool, StateError};
///
/// fn panics() -> u8 {
///     panic!("no config file")
/// }
/// static P: StatefulPool<u8> = StatefulPool::new(BlockingPool::with_max_threads(1).thread_name("p"), panics);
/// let err: StateError = futures::executor::block_on(P.call(|n: &mut u8| *n)).unwrap_err();
/// assert_eq!(err.pool(), "p");
/// assert_eq!(err.message(), "the initializer panicked: no config file");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    pool: String,
    message: String,
}

impl StateError {
    /// The pool's name (its `thread_name`), or `StatefulPool` if it has none.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// What `init` returned or panicked with.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "async_wrap: the thread state of pool `{}` could not be built: {}",
            self.pool, self.message
        )
    }
}

impl std::error::Error for StateError {}
