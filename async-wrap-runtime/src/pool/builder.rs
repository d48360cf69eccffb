//! [`Builder`]: the settings a `const` pool cannot take (an owned name, hooks), checked at
//! [`build`](Builder::build), and [`BuildError`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::config::{Config, Extras};
use super::{BlockingPool, QueueFull};

impl BlockingPool {
    /// A builder for the settings that are not `const` (an owned thread name, hooks), with
    /// validation that reports mistakes as a [`BuildError`] instead of panicking.
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    ///
    /// let pool = BlockingPool::builder()
    ///     .max_threads(8)
    ///     .min_threads(2)
    ///     .thread_name(format!("db-{}", 1))
    ///     .on_thread_start(|| println!("a db thread starts"))
    ///     .build()
    ///     .expect("valid settings");
    /// assert_eq!(pool.settings().max_threads, 8);
    ///
    /// let err = BlockingPool::builder().max_threads(2).min_threads(3).build().unwrap_err();
    /// assert_eq!(err.to_string(), "min_threads (3) is more than max_threads (2)");
    /// ```
    pub fn builder() -> Builder {
        Builder {
            config: Self::new().config,
            extras: Extras::default(),
        }
    }
}

/// Builds a [`BlockingPool`] with settings checked at [`build`](Builder::build).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use async_wrap::BlockingPool;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = started.clone();
/// let pool = BlockingPool::builder()
///     .max_threads(2)
///     .thread_name(String::from("db"))
///     .on_thread_start(move || {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .build()
///     .unwrap();
/// let pool = Arc::new(pool);
/// futures::executor::block_on(async_wrap::spawn_on(pool.clone(), || ()));
/// assert_eq!(started.load(Ordering::SeqCst), 1);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    config: Config,
    extras: Extras,
}

impl Builder {
    /// The most threads (default 512). Must be at least 1 and at least `min_threads`.
    ///
    /// ```
    /// let pool = async_wrap::BlockingPool::builder().max_threads(8).build().unwrap();
    /// assert_eq!(pool.settings().max_threads, 8);
    /// ```
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.config.max_threads = max_threads;
        self
    }

    /// Threads kept alive when idle, started with the pool (default 0).
    ///
    /// ```
    /// let pool = async_wrap::BlockingPool::builder().max_threads(4).min_threads(1).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn min_threads(mut self, min_threads: usize) -> Self {
        self.config.min_threads = min_threads;
        self
    }

    /// How long a thread beyond `min_threads` waits idle before it exits (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = async_wrap::BlockingPool::builder().keep_alive(Duration::from_secs(60)).build().unwrap();
    /// assert_eq!(pool.settings().keep_alive, Duration::from_secs(60));
    /// ```
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// The pool's name and its threads' prefix: `name-1`, `name-2`, ... A name with a NUL byte
    /// is refused by [`build`](Self::build).
    ///
    /// ```
    /// use async_wrap::{BlockingPool, Executor};
    /// let shard = 3;
    /// let pool = BlockingPool::builder().thread_name(format!("shard-{shard}")).build().unwrap();
    /// assert_eq!(pool.name(), Some("shard-3"));
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.extras.name = Some(name.into());
        self
    }

    /// The threads' stack size in bytes. Must not be 0.
    ///
    /// ```
    /// let pool = async_wrap::BlockingPool::builder().stack_size(1 << 20).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// At most `capacity` queued jobs; `when_full` for the next one ([`QueueFull`]).
    ///
    /// ```
    /// use async_wrap::{BlockingPool, QueueFull};
    /// let pool = BlockingPool::builder().queue_capacity(64, QueueFull::Reject).build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn queue_capacity(mut self, capacity: usize, when_full: QueueFull) -> Self {
        self.config.queue_capacity = Some(capacity);
        self.config.when_full = when_full;
        self
    }

    /// Runs `hook` on each new thread before its first job. A panic in it is caught, and the
    /// thread goes on.
    ///
    /// ```
    /// let pool = async_wrap::BlockingPool::builder()
    ///     .on_thread_start(|| eprintln!("{:?} starts", std::thread::current().name()))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn on_thread_start(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.extras.on_thread_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each thread as it exits. A panic in it is caught.
    ///
    /// ```
    /// let pool = async_wrap::BlockingPool::builder()
    ///     .on_thread_stop(|| eprintln!("{:?} stops", std::thread::current().name()))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn on_thread_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.extras.on_thread_stop = Some(Arc::new(hook));
        self
    }

    /// Reports jobs that run longer than `threshold`: see
    /// [`BlockingPool::slow_call`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = async_wrap::BlockingPool::builder().slow_call(Duration::from_secs(1)).build().unwrap();
    /// assert_eq!(pool.settings().slow_call, Some(Duration::from_secs(1)));
    /// ```
    pub fn slow_call(mut self, threshold: Duration) -> Self {
        self.config.slow_call = Some(threshold);
        self
    }

    /// Reports jobs that wait longer than `threshold` for a thread: see
    /// [`BlockingPool::slow_queue_wait`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = async_wrap::BlockingPool::builder().slow_queue_wait(Duration::from_millis(50)).build().unwrap();
    /// assert_eq!(pool.settings().slow_queue_wait, Some(Duration::from_millis(50)));
    /// ```
    pub fn slow_queue_wait(mut self, threshold: Duration) -> Self {
        self.config.slow_queue_wait = Some(threshold);
        self
    }

    /// Where slow calls are reported (instead of `tracing` or standard error): `hook` is called
    /// once per slow call and threshold, from the pool's watcher thread or from the thread that
    /// ran or took the job. A panic in it is caught. See [`SlowCall`](crate::SlowCall).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = async_wrap::BlockingPool::builder()
    ///     .slow_call(Duration::from_millis(500))
    ///     .on_slow_call(|slow| eprintln!("{slow}"))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn on_slow_call(mut self, hook: impl Fn(&crate::SlowCall) + Send + Sync + 'static) -> Self {
        self.extras.on_slow_call = Some(Arc::new(hook));
        self
    }

    /// The pool, or what is wrong with the settings.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if `max_threads` is 0, `min_threads` exceeds `max_threads`, or the stack
    /// size is 0.
    ///
    /// ```
    /// use async_wrap::BlockingPool;
    /// assert!(BlockingPool::builder().max_threads(0).build().is_err());
    /// assert!(BlockingPool::builder().max_threads(2).build().is_ok());
    /// ```
    pub fn build(self) -> Result<BlockingPool, BuildError> {
        let Config {
            max_threads,
            min_threads,
            stack_size,
            ..
        } = self.config;
        if max_threads == 0 {
            return Err(BuildError(
                "max_threads is 0: a pool needs at least one thread".into(),
            ));
        }
        if min_threads > max_threads {
            return Err(BuildError(format!(
                "min_threads ({min_threads}) is more than max_threads ({max_threads})"
            )));
        }
        if stack_size == Some(0) {
            return Err(BuildError("stack_size is 0".into()));
        }
        if let Some(name) = self
            .extras
            .name
            .as_deref()
            .filter(|name| name.contains('\0'))
        {
            return Err(BuildError(format!(
                "thread_name {name:?} contains a NUL byte, which no thread name may hold"
            )));
        }
        Ok(BlockingPool {
            config: self.config,
            extras: Some(Arc::new(self.extras)),
            shared: OnceLock::new(),
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("name", &self.extras.name)
            .finish_non_exhaustive()
    }
}

/// Settings given to [`Builder`] that do not make a working pool.
///
/// ```
/// use async_wrap::{BlockingPool, BuildError};
/// let err: BuildError = BlockingPool::builder().max_threads(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "max_threads is 0: a pool needs at least one thread");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}
