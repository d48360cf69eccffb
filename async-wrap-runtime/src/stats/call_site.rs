//! [`CallSite`]: who a call is, as one value: the wrapped function, where it is defined, the
//! executor expression it names, and its statistics. `#[async_wrap]` emits one `static` per
//! function; the closures of [`spawn_on`](crate::spawn_on), [`spawn`](crate::spawn), the
//! streams and `Unblock` have one each. Futures, jobs, errors and the pool's running-job records
//! carry a `&'static CallSite`; [`call_sites`] lists the ones that have been called.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::stats::call_stats::{End, Short, SiteStats, Timings};
#[cfg(feature = "metrics")]
use crate::stats::site_export::SiteExport;

/// The identity of a wrapped function's calls, and their statistics: one `static` per
/// `#[async_wrap]` function.
///
/// Its statistics are read with [`stats`](CallSite::stats), or for every site with
/// [`call_sites`]. They take about 10 KiB of zeroed static memory per site (four per-thread
/// shards of two histograms); a page is touched only when a thread counts in it.
///
/// `#[async_wrap]` makes one per wrapped function; [`call_sites`] lists them with their counts.
///
/// ```
/// use async_wrap::async_wrap;
///
/// #[async_wrap]
/// fn query(id: u32) -> u32 {
///     id * 2
/// }
///
/// assert_eq!(futures::executor::block_on(query(21)), 42);
/// let sites = async_wrap::call_sites();
/// let row = sites.iter().find(|row| row.site.function().ends_with("::query"));
/// let site = &row.expect("listed after its first call").site;
/// assert_eq!(site.executor(), "the default pool");
/// assert!(site.line() > 0);
/// ```
pub struct CallSite {
    function: &'static str,
    executor: &'static str,
    file: &'static str,
    line: u32,
    /// Whether the site is in the registry: set once, by its first counted call.
    registered: AtomicBool,
    stats: SiteStats,
    /// What the `metrics` feature published of this site, and what resets took away.
    #[cfg(feature = "metrics")]
    export: SiteExport,
}

impl CallSite {
    /// The call site of `function` (its path, `module::name`) on the executor written as
    /// `executor` (the expression's text, or "the default pool").
    pub(crate) const fn new(function: &'static str, executor: &'static str) -> Self {
        CallSite {
            function,
            executor,
            file: "",
            line: 0,
            registered: AtomicBool::new(false),
            stats: SiteStats::new(),
            #[cfg(feature = "metrics")]
            export: SiteExport::new(),
        }
    }

    /// This call site, defined at `file:line` (where `#[async_wrap]` found the function).
    #[must_use]
    pub(crate) const fn defined_at(mut self, file: &'static str, line: u32) -> Self {
        self.file = file;
        self.line = line;
        self
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

    /// The file the function is defined in, or `""` for the closures of `spawn_on` and the
    /// like.
    pub const fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the function's name in [`file`](CallSite::file), or 0 if not known.
    pub const fn line(&self) -> u32 {
        self.line
    }

    /// A snapshot of this site's statistics.
    pub fn stats(&'static self) -> CallStats {
        let counts = self.stats.snapshot();
        CallStats {
            site: self,
            calls: counts.calls,
            in_flight: counts.in_flight,
            completed: counts.completed,
            panicked: counts.panicked,
            cancelled: counts.cancelled,
            refused: counts.refused,
            queue_wait: counts.queue_wait,
            run_time: counts.run_time,
            waits: counts.waits,
            waits_paid: counts.waits_paid,
        }
    }

    /// Counts a call handed to its executor, registering the site on its first one.
    pub(crate) fn submitted(&'static self) {
        if !self.registered.load(Ordering::Relaxed) {
            self.register();
        }
        self.stats.submitted();
    }

    #[cold]
    fn register(&'static self) {
        if !self.registered.swap(true, Ordering::AcqRel) {
            REGISTRY
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self);
        }
    }

    /// Counts the end of a call whose body did not run.
    pub(crate) fn ended(&self, end: End) {
        self.stats.ended(end);
    }

    /// Counts a call whose body ran.
    pub(crate) fn ran(&self, panicked: bool, wait_ns: u64, run_ns: u64) {
        self.stats.ran(panicked, wait_ns, run_ns);
    }

    /// The statistics, for the adaptive wait.
    pub(crate) fn site_stats(&self) -> &SiteStats {
        &self.stats
    }

    /// What the `metrics` feature keeps of this site.
    #[cfg(feature = "metrics")]
    pub(crate) fn export(&self) -> &SiteExport {
        &self.export
    }
}

/// A snapshot of one call site's statistics: from [`call_sites`](crate::call_sites).
///
/// A call on a process pool (feature `process`) whose worker crashed, or was killed at its
/// deadline, at the drop of its future or at a shutdown, counts as `panicked`; one that never
/// reached a worker counts as `cancelled` or `refused`. The process pool's docs ("Call-site
/// statistics") list each outcome, and its metrics tell them apart.
///
/// ```
/// use async_wrap::{call_sites, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || ()));
///
/// let sites = call_sites();
/// let closures = sites.get("closure").expect("spawn_on's closures have a call site");
/// assert!(closures.calls >= 1);
/// assert!(closures.run_time.count() >= 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallStats {
    /// The call site: the function, where it is defined, and its executor.
    pub site: &'static CallSite,
    /// Calls handed to the executor (first polls of their futures).
    pub calls: u64,
    /// Calls not ended yet: queued, running, or done but not yet counted as ended.
    pub in_flight: u64,
    /// Calls whose body returned.
    pub completed: u64,
    /// Calls whose body panicked.
    pub panicked: u64,
    /// Calls whose future was dropped before the body started (the body never ran).
    pub cancelled: u64,
    /// Calls the executor refused (shut down, full queue under `Reject`) or dropped unrun.
    pub refused: u64,
    /// How long calls waited between their submission and the start of their body.
    pub queue_wait: Timings,
    /// How long the bodies ran.
    pub run_time: Timings,
    /// Calls whose result the polling thread waited for rather than parking (the adaptive wait
    /// for short functions; see the crate docs).
    pub waits: u64,
    /// Those of `waits` whose result came within the wait.
    pub waits_paid: u64,
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite")
            .field("function", &self.function)
            .field("executor", &self.executor)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CallSite {
    /// `function (file:line)`, or the function alone when its place is not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.is_empty() {
            f.write_str(self.function)
        } else {
            write!(f, "{} ({}:{})", self.function, self.file, self.line)
        }
    }
}

/// Every call site with a counted call, in the order of their first calls. Taken only by a
/// site's first call and by [`call_sites`].
static REGISTRY: Mutex<Vec<&'static CallSite>> = Mutex::new(Vec::new());

/// A snapshot of the statistics of every call site with a counted call (see
/// [`set_call_statistics`](crate::set_call_statistics)): one row per `#[async_wrap]` function
/// (and one for all the closures of `spawn_on`, one for those of `spawn`, and so on), sorted
/// by function name. Its `Display` is a table.
///
/// A function is named by its module path and name. A method wrapped through its `impl` block
/// (`#[async_wrap]` on the block) is `module::Type::method`, `module::<Type as Trait>::method`
/// in a trait implementation, `module::<dyn Shape>::method` for a type that is not a path; one
/// wrapped on its own is
/// `module::method` (an attribute on a method does not see its type), so two such methods of
/// the same name in one module have rows of the same name, told apart by their line (`defined
/// at`).
///
/// ```
/// use async_wrap::{call_sites, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || ()));
///
/// let table = call_sites();
/// assert!(table.iter().any(|row| row.site.function() == "closure" && row.completed >= 1));
/// println!("{table}");
/// ```
pub fn call_sites() -> CallSites {
    let sites = REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut rows: Vec<CallStats> = sites.into_iter().map(CallSite::stats).collect();
    rows.sort_by_key(|row| (row.site.function(), row.site.file(), row.site.line()));
    CallSites { rows }
}

/// Zeroes the statistics of every call site. Calls in flight stay counted in `calls` and
/// `in_flight`, so that the counts still balance when they end. What the `metrics` feature
/// publishes is not reset: its counters and histograms only grow.
///
/// ```
/// use async_wrap::{call_sites, reset_call_sites, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || ()));
/// reset_call_sites();
/// // (Other calls in this process may run meanwhile: a doctest cannot assert zero.)
/// let _ = call_sites();
/// ```
pub fn reset_call_sites() {
    let sites = REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for site in sites {
        #[cfg(feature = "metrics")]
        site.export.reset(site.site_stats());
        #[cfg(not(feature = "metrics"))]
        site.stats.reset();
    }
}

/// Every call site with a counted call, in the order of their first calls.
#[cfg(feature = "metrics")]
pub(crate) fn registered() -> Vec<&'static CallSite> {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The statistics of every call site that has been called: from [`call_sites`].
#[derive(Clone, Debug)]
pub struct CallSites {
    rows: Vec<CallStats>,
}

impl CallSites {
    /// The rows, one per call site, sorted by function name.
    pub fn iter(&self) -> std::slice::Iter<'_, CallStats> {
        self.rows.iter()
    }

    /// The row of the function with this path (`module::name`, as [`CallSite::function`]
    /// gives it). Two methods of the same name in one module (of two types) have the same
    /// path: this returns the first; [`iter`](CallSites::iter) and the line tell them apart.
    pub fn get(&self, function: &str) -> Option<&CallStats> {
        self.rows.iter().find(|row| row.site.function() == function)
    }

    /// How many call sites have been called.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no call site has been called.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl<'a> IntoIterator for &'a CallSites {
    type Item = &'a CallStats;
    type IntoIter = std::slice::Iter<'a, CallStats>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

impl IntoIterator for CallSites {
    type Item = CallStats;
    type IntoIter = std::vec::IntoIter<CallStats>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

impl fmt::Display for CallSites {
    /// A table, one line per call site: counts, then the queue wait and the run time (median,
    /// 99th percentile, maximum), then how many calls the adaptive wait waited for (and how
    /// many of those waits paid).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEADER: [&str; 15] = [
            "function",
            "defined at",
            "executor",
            "calls",
            "in flight",
            "ok",
            "panicked",
            "cancelled",
            "refused",
            "wait p50",
            "wait p99",
            "run p50",
            "run p99",
            "run max",
            "waited (paid)",
        ];
        let rows: Vec<[String; 15]> = self
            .rows
            .iter()
            .map(|row| {
                let site = row.site;
                let place = if site.file().is_empty() {
                    "-".to_owned()
                } else {
                    format!("{}:{}", site.file(), site.line())
                };
                [
                    site.function().to_owned(),
                    place,
                    site.executor().to_owned(),
                    row.calls.to_string(),
                    row.in_flight.to_string(),
                    row.completed.to_string(),
                    row.panicked.to_string(),
                    row.cancelled.to_string(),
                    row.refused.to_string(),
                    Short(row.queue_wait.percentile(0.5)).to_string(),
                    Short(row.queue_wait.percentile(0.99)).to_string(),
                    Short(row.run_time.percentile(0.5)).to_string(),
                    Short(row.run_time.percentile(0.99)).to_string(),
                    Short(row.run_time.max()).to_string(),
                    format!("{} ({})", row.waits, row.waits_paid),
                ]
            })
            .collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let gap = if column == 0 { "" } else { "  " };
                // Names to the left, numbers to the right.
                if column < 3 {
                    write!(f, "{gap}{cell:<width$}")?;
                } else {
                    write!(f, "{gap}{cell:>width$}")?;
                }
            }
            writeln!(f)
        };
        line(f, &HEADER)?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(f, &cells)?;
        }
        Ok(())
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
