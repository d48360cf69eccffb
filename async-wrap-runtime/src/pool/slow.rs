//! Slow-call warnings: [`SlowCall`], how one is reported (the pool's hook, else `tracing`, else
//! standard error), and the watcher thread that finds jobs running past the pool's threshold.
//!
//! A pool with [`slow_call`](super::BlockingPool::slow_call) set starts one watcher thread with
//! its first thread. While jobs run, every quarter of the threshold (at least 1 ms, at most
//! 1 s) it looks at the job each thread runs, and reports a job that has run past the
//! threshold, once; with no job running it sleeps until a thread starts one (or a second has
//! passed). A job that ends past the threshold before the watcher saw it is reported by its
//! thread as it ends, so every job that ran past the threshold is reported exactly once; so is
//! a job run inline (`QueueFull::RunOnCaller`, a nested call on a saturated pool), which no
//! watcher sees. Queue waits past [`slow_queue_wait`](super::BlockingPool::slow_queue_wait) are
//! reported by the thread that takes the job, before the body starts (the hook's time is not
//! counted as the body's); a job whose body never starts (its future was dropped) is not.

use std::fmt;
use std::sync::Arc;
#[cfg(not(async_wrap_loom))]
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::metrics::Started;
use crate::stats::call_site::CallSite;
use crate::stats::call_stats::Short;

/// What the pool calls with each slow call: [`Builder::on_slow_call`](super::Builder::on_slow_call).
pub(crate) type SlowHook = Arc<dyn Fn(&SlowCall) + Send + Sync>;

/// A call past one of its pool's thresholds: reported once per call and threshold, to the
/// pool's [`on_slow_call`](super::Builder::on_slow_call) hook, else (with the `tracing`
/// feature) as a `tracing` warning with target `async_wrap`, else as one line on standard error.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use async_wrap::{spawn_on, BlockingPool, SlowCall};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let pool = BlockingPool::builder()
///     .thread_name("db")
///     .slow_call(Duration::from_millis(20))
///     .on_slow_call(move |slow: &SlowCall| log.lock().unwrap().push(slow.to_string()))
///     .build()
///     .unwrap();
/// let pool = Arc::new(pool);
/// futures::executor::block_on(spawn_on(pool.clone(), || std::thread::sleep(Duration::from_millis(60))));
/// let seen = seen.lock().unwrap();
/// assert_eq!(seen.len(), 1);
/// assert!(seen[0].starts_with("async-wrap: `closure` on pool `db` has run for "), "{}", seen[0]);
/// ```
#[derive(Clone, Debug)]
pub struct SlowCall {
    site: &'static CallSite,
    pool: Arc<str>,
    kind: Slowness,
    elapsed: Duration,
    threshold: Duration,
}

/// Which threshold a [`SlowCall`] passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slowness {
    /// The body has run longer than the pool's `slow_call` threshold, and is still running
    /// (or has just ended).
    Running,
    /// The call waited longer than the pool's `slow_queue_wait` threshold before its body
    /// started.
    Queued,
}

impl SlowCall {
    /// The call site: the wrapped function's path, where it is defined, and how the caller
    /// named the executor.
    pub fn site(&self) -> &'static CallSite {
        self.site
    }

    /// The wrapped function's path, or `closure` for `spawn_on`.
    pub fn function(&self) -> &'static str {
        self.site.function()
    }

    /// The pool's name (its thread-name prefix).
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Which threshold the call passed.
    pub fn kind(&self) -> Slowness {
        self.kind
    }

    /// How long the body had run, or the call had waited, when it was reported.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The threshold it passed.
    pub fn threshold(&self) -> Duration {
        self.threshold
    }
}

impl fmt::Display for SlowCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let site = self.site;
        write!(f, "async-wrap: `{}`", site.function())?;
        if !site.file().is_empty() {
            write!(f, " ({}:{})", site.file(), site.line())?;
        }
        write!(f, " on pool `{}`", self.pool)?;
        if site.executor() != &*self.pool && !site.file().is_empty() {
            write!(f, " (executor = {})", site.executor())?;
        }
        match self.kind {
            Slowness::Running => write!(
                f,
                " has run for {}, past the pool's slow_call threshold of {}",
                Short(self.elapsed),
                Short(self.threshold)
            ),
            Slowness::Queued => write!(
                f,
                " waited {} for a thread before it started, past the pool's slow_queue_wait \
                 threshold of {}",
                Short(self.elapsed),
                Short(self.threshold)
            ),
        }
    }
}

/// The slow-call part of a pool's shared state: the thresholds, where reports go, and the
/// watcher thread's handle and idle flag (the watcher's loop is in
/// [`watcher`](super::watcher)). Its methods are the only way to its fields.
pub(super) struct SlowCalls {
    /// The pool's `slow_call` threshold.
    running: Option<Duration>,
    /// The pool's `slow_queue_wait` threshold.
    queued: Option<Duration>,
    hook: Option<SlowHook>,
    /// The pool's name, as reports give it.
    pool: Arc<str>,
    /// The slow-call watcher thread, if the pool has one: unparked at shutdown.
    #[cfg(not(async_wrap_loom))]
    watcher: std::sync::Mutex<Option<std::thread::Thread>>,
    /// The watcher sleeps for want of running jobs: the next job to start wakes it.
    #[cfg(not(async_wrap_loom))]
    watcher_idle: std::sync::atomic::AtomicBool,
}

impl SlowCalls {
    pub(super) fn new(
        running: Option<Duration>,
        queued: Option<Duration>,
        hook: Option<SlowHook>,
        pool: Arc<str>,
    ) -> Self {
        SlowCalls {
            running,
            queued,
            hook,
            pool,
            #[cfg(not(async_wrap_loom))]
            watcher: std::sync::Mutex::new(None),
            #[cfg(not(async_wrap_loom))]
            watcher_idle: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The `slow_call` threshold, which the watcher looks for.
    #[cfg(not(async_wrap_loom))]
    pub(super) fn threshold(&self) -> Option<Duration> {
        self.running
    }

    /// Reports `slow`: the hook, else `tracing`, else standard error. The hook is user code: its
    /// panic is caught.
    pub(super) fn report(&self, slow: &SlowCall) {
        if let Some(hook) = &self.hook {
            crate::panic_guard::guarded(|| hook(slow));
            return;
        }
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "async_wrap",
            function = slow.function(),
            file = slow.site.file(),
            line = slow.site.line(),
            pool = slow.pool(),
            elapsed_ms = u64::try_from(slow.elapsed.as_millis()).unwrap_or(u64::MAX),
            threshold_ms = u64::try_from(slow.threshold.as_millis()).unwrap_or(u64::MAX),
            "{slow}"
        );
        #[cfg(not(feature = "tracing"))]
        eprintln!("{slow}");
    }

    pub(super) fn slow(
        &self,
        site: &'static CallSite,
        kind: Slowness,
        elapsed: Duration,
    ) -> SlowCall {
        let threshold = match kind {
            Slowness::Running => self.running,
            Slowness::Queued => self.queued,
        };
        SlowCall {
            site,
            pool: Arc::clone(&self.pool),
            kind,
            elapsed,
            threshold: threshold.unwrap_or_default(),
        }
    }

    /// On a thread about to run a job that was submitted at `submitted`: reports its queue wait
    /// if it passed the threshold. True if it reported (the hook took time of its own).
    pub(super) fn check_queue_wait(
        &self,
        site: &'static CallSite,
        submitted: Option<Instant>,
        start: Instant,
    ) -> bool {
        let (Some(threshold), Some(submitted)) = (self.queued, submitted) else {
            return false;
        };
        let waited = start.saturating_duration_since(submitted);
        if waited <= threshold {
            return false;
        }
        self.report(&self.slow(site, Slowness::Queued, waited));
        true
    }

    /// A job run inline (`QueueFull::RunOnCaller`, a nested call on a saturated pool) took
    /// `ran`: no watcher saw it, so it is reported now if it passed the threshold.
    pub(super) fn check_inline(&self, site: &'static CallSite, ran: Duration) {
        if self.running.is_some_and(|threshold| ran > threshold) {
            self.report(&self.slow(site, Slowness::Running, ran));
        }
    }

    /// On a thread whose job has just ended: reports it if it ran past the threshold and the
    /// watcher has not reported it yet.
    pub(super) fn check_ended(&self, started: Started) {
        let Some(threshold) = self.running else {
            return;
        };
        let ran = started.since.elapsed();
        if !started.reported && ran > threshold {
            self.report(&self.slow(started.site, Slowness::Running, ran));
        }
    }

    /// The watcher thread has started: `nudge_watcher` unparks it from now on.
    #[cfg(not(async_wrap_loom))]
    pub(super) fn set_watcher(&self, thread: std::thread::Thread) {
        *self
            .watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(thread);
    }

    /// A thread has just recorded its job in its slot: wakes the watcher if it sleeps idle.
    /// One load per job, and only for a pool with a `slow_call` threshold.
    #[cfg_attr(async_wrap_loom, allow(clippy::unused_self))]
    pub(super) fn job_started(&self) {
        #[cfg(not(async_wrap_loom))]
        {
            fence(Ordering::SeqCst);
            if self.watcher_idle.load(Ordering::Relaxed)
                && self.watcher_idle.swap(false, Ordering::SeqCst)
            {
                self.nudge_watcher();
            }
        }
    }

    /// The watcher found no job running: says so (the next job to start wakes it), fenced
    /// against that job's `job_started`. The watcher then looks at the slots again.
    #[cfg(not(async_wrap_loom))]
    pub(super) fn watcher_going_idle(&self) {
        self.watcher_idle.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// The watcher's second look found a job: it stays awake.
    #[cfg(not(async_wrap_loom))]
    pub(super) fn watcher_stays_awake(&self) {
        self.watcher_idle.store(false, Ordering::SeqCst);
    }

    /// Tells the watcher to look at the pool now (it leaves once the pool is shut down).
    #[cfg_attr(async_wrap_loom, allow(clippy::unused_self))]
    pub(super) fn nudge_watcher(&self) {
        #[cfg(not(async_wrap_loom))]
        if let Some(watcher) = &*self
            .watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            watcher.unpark();
        }
    }
}
