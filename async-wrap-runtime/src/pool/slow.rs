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
use std::sync::Weak;
#[cfg(not(async_wrap_loom))]
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::metrics::Started;
use super::shared::Shared;
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

impl Shared {
    /// Reports `slow`: the hook, else `tracing`, else standard error. The hook is user code: its
    /// panic is caught.
    fn report_slow(&self, slow: &SlowCall) {
        if let Some(hook) = &self.on_slow_call {
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

    fn slow(&self, site: &'static CallSite, kind: Slowness, elapsed: Duration) -> SlowCall {
        let threshold = match kind {
            Slowness::Running => self.config.slow_call,
            Slowness::Queued => self.config.slow_queue_wait,
        };
        SlowCall {
            site,
            pool: Arc::clone(&self.pool_name),
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
        let (Some(threshold), Some(submitted)) = (self.config.slow_queue_wait, submitted) else {
            return false;
        };
        let waited = start.saturating_duration_since(submitted);
        if waited <= threshold {
            return false;
        }
        self.report_slow(&self.slow(site, Slowness::Queued, waited));
        true
    }

    /// A job run inline (`QueueFull::RunOnCaller`, a nested call on a saturated pool) took
    /// `ran`: no watcher saw it, so it is reported now if it passed the threshold.
    pub(super) fn check_inline(&self, site: &'static CallSite, ran: Duration) {
        if self
            .config
            .slow_call
            .is_some_and(|threshold| ran > threshold)
        {
            self.report_slow(&self.slow(site, Slowness::Running, ran));
        }
    }

    /// On a thread whose job has just ended: reports it if it ran past the threshold and the
    /// watcher has not reported it yet.
    pub(super) fn check_ended(&self, started: Started) {
        let Some(threshold) = self.config.slow_call else {
            return;
        };
        let ran = started.since.elapsed();
        if !started.reported && ran > threshold {
            self.report_slow(&self.slow(started.site, Slowness::Running, ran));
        }
    }

    /// Starts the watcher, if the pool has a `slow_call` threshold. Called once, with the first
    /// thread.
    #[cfg(not(async_wrap_loom))]
    pub(super) fn start_watcher(this: &Arc<Self>) {
        let Some(threshold) = this.config.slow_call else {
            return;
        };
        let tick = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let shared = Arc::downgrade(this);
        let started = std::thread::Builder::new()
            .name(format!("{}-watcher", this.name))
            .spawn(move || watch(&shared, threshold, tick));
        if let Ok(handle) = started {
            *this
                .watcher
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle.thread().clone());
        }
        // Without a watcher, jobs are still reported as they end.
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

/// The watcher's life: every `tick`, report the jobs that have run past `threshold`; leave
/// when the pool is shut down and its threads are gone, or dropped.
#[cfg(not(async_wrap_loom))]
fn watch(shared: &Weak<Shared>, threshold: Duration, tick: Duration) {
    let mut idle = false;
    loop {
        // Idle (no job running at the last look), it sleeps up to a second: a thread that
        // starts a job wakes it (`job_started`); the second bounds how long it takes to see
        // that its pool is gone.
        std::thread::park_timeout(if idle { IDLE_LOOK } else { tick });
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (slow, running) = {
            let state = shared.lock();
            if shared.is_shut_down() && state.metrics.threads + state.exiting == 0 {
                return;
            }
            let mut running = false;
            let now = Instant::now();
            let slow: Vec<SlowCall> = state
                .slots
                .iter()
                .filter_map(|slot| {
                    let mut guard = slot.running();
                    let started = guard.as_mut()?;
                    running = true;
                    let ran = now.saturating_duration_since(started.since);
                    if started.reported || ran <= threshold {
                        return None;
                    }
                    started.reported = true;
                    Some(shared.slow(started.site, Slowness::Running, ran))
                })
                .collect();
            (slow, running)
        };
        idle = !running && {
            // Say so, then look again: a thread that set its job before this store sees the
            // flag after its own fence, or this look sees its job (the two fences pair).
            shared.watcher_idle.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let started = shared
                .lock()
                .slots
                .iter()
                .any(|slot| slot.running().is_some());
            if started {
                shared.watcher_idle.store(false, Ordering::SeqCst);
            }
            !started
        };
        // Outside the pool's lock: the hook is user code.
        for slow in &slow {
            shared.report_slow(slow);
        }
    }
}

/// How long an idle watcher sleeps at most.
#[cfg(not(async_wrap_loom))]
const IDLE_LOOK: Duration = Duration::from_secs(1);
