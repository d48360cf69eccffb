//! Per-call-site statistics: the counters and log-scale histograms each
//! [`CallSite`](crate::CallSite) keeps, written with relaxed atomics and no lock, and their
//! snapshots ([`Counts`], which `CallSite::stats` makes a [`CallStats`](crate::CallStats), and
//! [`Timings`]).
//!
//! A call is counted once it is handed to its executor (its future's first poll), and ends in
//! exactly one of `completed`, `panicked`, `cancelled` (the future was dropped before the body
//! started) or `refused` (the executor refused the job, or dropped it unrun). Every count is
//! written before the future can see the call's result, so a caller that has awaited a call
//! finds it counted.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::site_waits::SiteWaits;

/// Buckets per histogram: four per power of two, from 4 ns to about half an hour (the last one
/// takes everything longer). Bucket bounds are within 25 % of each other.
pub(crate) const BUCKETS: usize = 160;

/// Whether calls are counted, for every call site (on by default).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the per-call-site statistics on or off for the whole process (they are on by
/// default). A call counts, or not, as the switch was when it was submitted: turning it off
/// loses no call half-counted. With statistics off the adaptive wait for short calls (see the
/// crate docs) is off too: it decides from the run times counted here. To turn the wait off
/// and keep the statistics, use [`set_adaptive_wait`](crate::set_adaptive_wait).
///
/// ```
/// use async_wrap::{call_statistics_enabled, set_call_statistics};
///
/// set_call_statistics(false);
/// assert!(!call_statistics_enabled());
/// set_call_statistics(true);
/// ```
pub fn set_call_statistics(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether calls are being counted: see [`set_call_statistics`].
pub fn call_statistics_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The bucket of a duration of `ns` nanoseconds.
fn bucket(ns: u64) -> usize {
    if ns < 4 {
        // Lossless: below 4.
        #[allow(clippy::cast_possible_truncation)]
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros() as usize;
    // The two bits below the leading one: which quarter of the octave.
    let quarter = ((ns >> (octave - 2)) & 3) as usize;
    (4 + (octave - 2) * 4 + quarter).min(BUCKETS - 1)
}

/// The bucket of a duration of `ns` nanoseconds, for the `metrics` feature's tests.
#[cfg(all(test, feature = "metrics"))]
pub(crate) fn bucket_of(ns: u64) -> usize {
    bucket(ns)
}

/// The smallest duration, in nanoseconds, that falls in bucket `index`.
fn lower_bound(index: usize) -> u64 {
    if index < 4 {
        return index as u64;
    }
    let (octave, quarter) = ((index - 4) / 4 + 2, (index - 4) % 4);
    (4 + quarter as u64) << (octave - 2)
}

/// The upper bounds of the buckets that [`Timings::buckets`] counts durations in, and that an
/// exporter's histograms of the call sites' queue waits and run times should use (the
/// `prometheus` example passes them to `PrometheusBuilder::set_buckets`): 0.5 µs, then 1, 2.5
/// and 5 times each
/// power of ten from 1 µs to 5 s, and 10 s (23 bounds; durations above the last one count only
/// in the total). Exporters' defaults start at 5 ms, where a pool's queue wait is a few
/// microseconds: these resolve it.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::DURATION_BUCKETS;
///
/// assert_eq!(DURATION_BUCKETS[1], Duration::from_micros(1));
/// assert!(DURATION_BUCKETS.windows(2).all(|pair| pair[0] < pair[1]));
/// // In seconds, as Prometheus exporters take them:
/// let seconds = DURATION_BUCKETS.map(|bound| bound.as_secs_f64());
/// assert_eq!(seconds[22], 10.0);
/// ```
pub const DURATION_BUCKETS: [Duration; 23] = {
    const fn ns(ns: u64) -> Duration {
        Duration::from_nanos(ns)
    }
    [
        ns(500),
        ns(1_000),
        ns(2_500),
        ns(5_000),
        ns(10_000),
        ns(25_000),
        ns(50_000),
        ns(100_000),
        ns(250_000),
        ns(500_000),
        ns(1_000_000),
        ns(2_500_000),
        ns(5_000_000),
        ns(10_000_000),
        ns(25_000_000),
        ns(50_000_000),
        ns(100_000_000),
        ns(250_000_000),
        ns(500_000_000),
        ns(1_000_000_000),
        ns(2_500_000_000),
        ns(5_000_000_000),
        ns(10_000_000_000),
    ]
};

/// The bounds of bucket `index`, in nanoseconds: the lowest duration in it, and the lowest
/// above it (for the last bucket, which has no upper bound, a quarter above its lowest).
pub(crate) fn bucket_bounds(index: usize) -> (u64, u64) {
    let low = lower_bound(index);
    let high = if index + 1 < BUCKETS {
        lower_bound(index + 1)
    } else {
        low + low / 4
    };
    (low, high)
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A histogram of durations: counts in log-scale buckets, their sum and their maximum.
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    fn record(&self, ns: u64) {
        self.buckets[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    fn snapshot(&self) -> Timings {
        let mut timings = Timings::empty();
        timings.add(self);
        timings.settle();
        timings
    }

    /// Zeroes the histogram, adding what it held to `taken`.
    fn take(&self, taken: &mut Timings) {
        for (sum, bucket) in taken.buckets.iter_mut().zip(&self.buckets) {
            *sum += bucket.swap(0, Ordering::AcqRel);
        }
        taken.sum_ns += self.sum_ns.swap(0, Ordering::Relaxed);
        taken.max_ns = taken.max_ns.max(self.max_ns.swap(0, Ordering::Relaxed));
    }
}

/// Shards per site: a thread counts in one of them (chosen once per thread), so that threads
/// counting calls of the same function at once rarely write the same cache line.
const SHARDS: usize = 4;

/// The next thread's shard.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, once chosen (`usize::MAX` before).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Makes the current thread count in shard `index` (modulo the shards): a pool's thread takes
/// its slot's number, so that the threads of a small pool never share a shard.
pub(crate) fn use_shard(index: usize) {
    SHARD.with(|shard| shard.set(index % SHARDS));
}

/// The current thread's shard: its own, or the next in turn.
fn shard_index() -> usize {
    SHARD.with(|shard| match shard.get() {
        usize::MAX => {
            let index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(index);
            index
        }
        index => index,
    })
}

/// One thread's share of a site's counts (threads may share a shard). Each call's end is one
/// add to one of `completed`, `panicked`, `cancelled` or `refused`, so that a snapshot or a
/// reset sees it whole, on one side or the other.
struct Shard {
    /// What submitting threads write (dropping ones for `cancelled`), on a line of its own: a
    /// caller and a pool thread that count in the same shard do not write the same line.
    submits: CachePadded<Submits>,
    completed: AtomicU64,
    panicked: AtomicU64,
    queue_wait: Histogram,
    run_time: Histogram,
}

struct Submits {
    calls: AtomicU64,
    cancelled: AtomicU64,
    refused: AtomicU64,
}

impl Shard {
    const fn new() -> Self {
        Shard {
            submits: CachePadded::new(Submits {
                calls: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            queue_wait: Histogram::new(),
            run_time: Histogram::new(),
        }
    }
}

/// What a call site counts. Lives in the `CallSite` static: const-constructible, no allocation
/// (about 10 KiB of zeroed memory, touched only by the shards a site's threads use).
pub(crate) struct SiteStats {
    shards: [CachePadded<Shard>; SHARDS],
    /// What the adaptive wait remembers of the site: on a line of its own.
    adaptive: CachePadded<SiteWaits>,
    /// Resets begun and ended, twice the resets done (odd while one runs): a snapshot that
    /// saw it change, or odd, reads again (a sequence lock, for the rare reader and writer
    /// only: calls never look at it).
    resets: AtomicU64,
}

/// Resets run one at a time, so that `resets` is odd exactly while one runs.
static RESETTING: Mutex<()> = Mutex::new(());

/// How a counted call ended, for [`SiteStats::ended`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The future was dropped before the body started.
    Cancelled,
    /// The executor refused the job, or dropped it unrun.
    Refused,
}

impl SiteStats {
    pub(crate) const fn new() -> Self {
        SiteStats {
            shards: [const { CachePadded::new(Shard::new()) }; SHARDS],
            adaptive: CachePadded::new(SiteWaits::new()),
            resets: AtomicU64::new(0),
        }
    }

    /// The current thread's shard.
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// A call was handed to its executor.
    pub(crate) fn submitted(&self) {
        self.shard().submits.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A counted call ended without its body running.
    pub(crate) fn ended(&self, end: End) {
        let shard = self.shard();
        let count = match end {
            End::Cancelled => &shard.submits.cancelled,
            End::Refused => &shard.submits.refused,
        };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// A counted call's body ran: it waited `wait_ns` for a thread and ran for `run_ns`.
    pub(crate) fn ran(&self, panicked: bool, wait_ns: u64, run_ns: u64) {
        let shard = self.shard();
        shard.queue_wait.record(wait_ns);
        shard.run_time.record(run_ns);
        let end = if panicked {
            &shard.panicked
        } else {
            &shard.completed
        };
        end.fetch_add(1, Ordering::Relaxed);
        self.adaptive.ran(run_ns);
    }

    /// What the adaptive wait remembers of the site.
    pub(crate) fn waits(&self) -> &SiteWaits {
        &self.adaptive
    }

    /// The counts, read whole: a reset that runs meanwhile (it moves counts out of every
    /// shard, one after another) makes the snapshot read again.
    pub(crate) fn snapshot(&self) -> Counts {
        loop {
            let before = self.resets.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let stats = self.read();
            // Pairs with the reset's release fence: a count the reset wrote was read only if
            // `resets` now reads as changed.
            fence(Ordering::Acquire);
            if self.resets.load(Ordering::Relaxed) == before {
                return stats;
            }
        }
    }

    /// The counts as they are read, one after another.
    fn read(&self) -> Counts {
        // The ends first (panics before runs), then the calls: a call is counted before it can
        // end, so `calls` read last is never below the ends read first.
        // Wrapping: after a reset, a shard's calls may be below its ends (see `reset`).
        let sum = |count: fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards.iter().fold(0, |total, shard| {
                total.wrapping_add(count(shard).load(Ordering::Acquire))
            })
        };
        let completed = sum(|shard| &shard.completed);
        let panicked = sum(|shard| &shard.panicked);
        let cancelled = sum(|shard| &shard.submits.cancelled);
        let refused = sum(|shard| &shard.submits.refused);
        let mut queue_wait = Timings::empty();
        let mut run_time = Timings::empty();
        for shard in &self.shards {
            queue_wait.add(&shard.queue_wait);
            run_time.add(&shard.run_time);
        }
        queue_wait.settle();
        run_time.settle();
        let calls = sum(|shard| &shard.submits.calls);
        let (waits, waits_paid) = self.adaptive.counts();
        Counts {
            calls,
            in_flight: calls.saturating_sub(completed + panicked + cancelled + refused),
            completed,
            panicked,
            cancelled,
            refused,
            queue_wait,
            run_time,
            waits,
            waits_paid,
        }
    }

    /// Zeroes the counts and timings, and returns what they held (`in_flight` and the
    /// adaptive wait's counts left at zero): the `metrics` feature adds it to the totals it
    /// publishes, which never go down. Calls in flight stay counted as calls, so that they
    /// still balance when they end.
    pub(crate) fn reset(&self) -> Counts {
        let mut taken = Counts::zero();
        let one_at_a_time = RESETTING.lock().unwrap_or_else(PoisonError::into_inner);
        let begun = self.resets.load(Ordering::Relaxed) + 1;
        debug_assert!(begun % 2 == 1, "a reset began while another ran");
        self.resets.store(begun, Ordering::Relaxed);
        // Pairs with the snapshot's acquire fence: a snapshot that reads a count written
        // below sees `resets` odd, or changed, after its reads.
        fence(Ordering::Release);
        for shard in &self.shards {
            // Each end is one add to one count: swapped out whole, here or after.
            let completed = shard.completed.swap(0, Ordering::AcqRel);
            let panicked = shard.panicked.swap(0, Ordering::AcqRel);
            let cancelled = shard.submits.cancelled.swap(0, Ordering::AcqRel);
            let refused = shard.submits.refused.swap(0, Ordering::AcqRel);
            let ended = completed
                .wrapping_add(panicked)
                .wrapping_add(cancelled)
                .wrapping_add(refused);
            // A call may end in another shard than the one it was counted in: a shard's
            // calls may go below its ends, so the subtraction wraps, and the sums stay right.
            shard.submits.calls.fetch_sub(ended, Ordering::AcqRel);
            taken.calls = taken.calls.wrapping_add(ended);
            taken.completed = taken.completed.wrapping_add(completed);
            taken.panicked = taken.panicked.wrapping_add(panicked);
            taken.cancelled = taken.cancelled.wrapping_add(cancelled);
            taken.refused = taken.refused.wrapping_add(refused);
            shard.run_time.take(&mut taken.run_time);
            shard.queue_wait.take(&mut taken.queue_wait);
        }
        taken.queue_wait.settle();
        taken.run_time.settle();
        self.adaptive.reset_counts();
        self.resets.store(begun + 1, Ordering::Release);
        drop(one_at_a_time);
        taken
    }
}

/// One site's counts, read whole: what a [`CallStats`](crate::CallStats) says of its site
/// (see there for each count).
#[derive(Clone, Debug)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) in_flight: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) refused: u64,
    pub(crate) queue_wait: Timings,
    pub(crate) run_time: Timings,
    pub(crate) waits: u64,
    pub(crate) waits_paid: u64,
}

impl Counts {
    /// No call.
    pub(crate) fn zero() -> Self {
        Counts {
            calls: 0,
            in_flight: 0,
            completed: 0,
            panicked: 0,
            cancelled: 0,
            refused: 0,
            queue_wait: Timings::empty(),
            run_time: Timings::empty(),
            waits: 0,
            waits_paid: 0,
        }
    }

    /// Adds `other`'s counts and timings to these (wrapping, as the shards' sums do).
    #[cfg(feature = "metrics")]
    pub(crate) fn add(&mut self, other: &Counts) {
        self.calls = self.calls.wrapping_add(other.calls);
        self.in_flight = self.in_flight.wrapping_add(other.in_flight);
        self.completed = self.completed.wrapping_add(other.completed);
        self.panicked = self.panicked.wrapping_add(other.panicked);
        self.cancelled = self.cancelled.wrapping_add(other.cancelled);
        self.refused = self.refused.wrapping_add(other.refused);
        self.queue_wait.add_timings(&other.queue_wait);
        self.run_time.add_timings(&other.run_time);
        self.waits = self.waits.wrapping_add(other.waits);
        self.waits_paid = self.waits_paid.wrapping_add(other.waits_paid);
    }
}

/// A histogram of durations, in log-scale buckets (four per power of two): from
/// [`CallStats`](crate::CallStats). Percentiles are exact to within the bucket, about 12 %.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::{call_sites, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || std::thread::sleep(Duration::from_millis(2))));
///
/// let sites = call_sites();
/// let run = &sites.get("closure").unwrap().run_time;
/// assert!(run.max() >= Duration::from_millis(2));
/// assert!(run.percentile(1.0) <= run.max());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Timings {
    buckets: Box<[u64]>,
    sum_ns: u64,
    max_ns: u64,
}

impl Timings {
    fn empty() -> Self {
        Timings {
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            sum_ns: 0,
            max_ns: 0,
        }
    }

    /// Adds what `histogram` holds.
    fn add(&mut self, histogram: &Histogram) {
        for (sum, bucket) in self.buckets.iter_mut().zip(&histogram.buckets) {
            *sum += bucket.load(Ordering::Acquire);
        }
        self.sum_ns += histogram.sum_ns.load(Ordering::Relaxed);
        self.max_ns = self.max_ns.max(histogram.max_ns.load(Ordering::Relaxed));
    }

    /// Makes the sum and the maximum agree with the buckets. A duration is recorded as three
    /// relaxed adds (its bucket, the sum, the maximum), read and reset one after another
    /// without a lock: a snapshot taken meanwhile, or a reset that zeroes the sum and the
    /// maximum between a record's adds, could leave a duration counted in its bucket and
    /// missing from the sum or the maximum (or the other way round). Whatever the buckets
    /// hold bounds the sum (between their lower and upper bounds) and the maximum (at least
    /// the lower bound of the highest bucket used; zero if none is).
    fn settle(&mut self) {
        let (mut low, mut high) = (0_u64, 0_u64);
        let mut highest = None;
        for (index, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            highest = Some(index);
            low = low.saturating_add(n.saturating_mul(lower_bound(index)));
            let upper = if index + 1 < BUCKETS {
                lower_bound(index + 1)
            } else {
                u64::MAX
            };
            high = high.saturating_add(n.saturating_mul(upper));
        }
        match highest {
            None => (self.sum_ns, self.max_ns) = (0, 0),
            Some(index) => {
                self.sum_ns = self.sum_ns.clamp(low, high);
                self.max_ns = self.max_ns.max(lower_bound(index));
            }
        }
    }

    /// Adds the durations `other` holds (settled: the sums and maxima of settled timings are
    /// bounded by their buckets, and so are theirs added).
    #[cfg(feature = "metrics")]
    pub(crate) fn add_timings(&mut self, other: &Timings) {
        for (sum, &n) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *sum += n;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The count in each of the fine buckets, by index (see [`bucket_bounds`]).
    #[cfg(feature = "metrics")]
    pub(crate) fn fine_buckets(&self) -> &[u64] {
        &self.buckets
    }

    /// The sum, in nanoseconds.
    #[cfg(feature = "metrics")]
    pub(crate) fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The total of the recorded durations. Read with the counts: it lies between the lower
    /// and upper bounds of the buckets the durations were counted in, so a histogram made of
    /// [`count`](Timings::count), `sum` and [`buckets`](Timings::buckets) holds together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::{call_sites, spawn_on, BlockingPool};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    /// futures::executor::block_on(spawn_on(&POOL, || std::thread::sleep(Duration::from_millis(1))));
    ///
    /// let sites = call_sites();
    /// let run = &sites.get("closure").unwrap().run_time;
    /// assert!(run.sum() >= Duration::from_millis(1));
    /// assert!(run.sum() >= run.max());
    /// ```
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// The histogram as exporters take it: for each bound of [`DURATION_BUCKETS`], the bound
    /// and how many durations were at most that long (cumulative counts, as Prometheus's `le`
    /// buckets; [`count`](Timings::count) is the `+Inf` one). Read from the same snapshot as
    /// the count and the sum.
    ///
    /// The durations are counted in finer buckets (four per power of two) whose edges are not
    /// decimal: a bound that falls inside one counts that fine bucket whole on the side of its
    /// middle. A duration within 12 % of a bound may so be counted on its other side.
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wrap::{call_sites, spawn_on, BlockingPool};
    ///
    /// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    /// futures::executor::block_on(spawn_on(&POOL, || std::thread::sleep(Duration::from_millis(3))));
    ///
    /// let sites = call_sites();
    /// let run = &sites.get("closure").unwrap().run_time;
    /// let buckets: Vec<(Duration, u64)> = run.buckets().collect();
    /// assert_eq!(buckets.len(), async_wrap::DURATION_BUCKETS.len());
    /// // Cumulative: never decreasing, and at most the count.
    /// assert!(buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    /// assert!(buckets.last().unwrap().1 <= run.count());
    /// // The 3 ms run is not under 1 ms.
    /// let under_1ms = buckets.iter().find(|(le, _)| *le == Duration::from_millis(1)).unwrap();
    /// assert!(under_1ms.1 < run.count());
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        let mut fine = self.buckets.iter().enumerate().peekable();
        let mut below = 0_u64;
        DURATION_BUCKETS.iter().map(move |&bound| {
            let bound_ns = nanos(bound);
            while let Some(&(index, &n)) = fine.peek() {
                let (low, high) = bucket_bounds(index);
                if low + (high - low) / 2 > bound_ns {
                    break;
                }
                below += n;
                fine.next();
            }
            (bound, below)
        })
    }

    /// The mean, or zero if none was recorded.
    pub fn mean(&self) -> Duration {
        match self.count() {
            0 => Duration::ZERO,
            n => Duration::from_nanos(self.sum_ns / n),
        }
    }

    /// The longest recorded.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The duration below which a share `q` (0.0 to 1.0) of the recorded ones fall: the middle
    /// of the bucket that holds it, capped at the maximum. Zero if none was recorded.
    ///
    /// # Panics
    ///
    /// If `q` is not within `0.0..=1.0`.
    pub fn percentile(&self, q: f64) -> Duration {
        assert!(
            (0.0..=1.0).contains(&q),
            "Timings::percentile: q must be within 0.0..=1.0, got {q}"
        );
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        // The rank of the wanted duration, 1-based: ceil(q * count), at least 1.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = (lower_bound(index), lower_bound(index + 1));
                let middle = low + (high - low) / 2;
                return Duration::from_nanos(middle.min(self.max_ns));
            }
        }
        self.max()
    }
}

impl fmt::Debug for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timings")
            .field("count", &self.count())
            .field("mean", &self.mean())
            .field("p50", &self.percentile(0.5))
            .field("p99", &self.percentile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

/// A duration the way the tables print it: three significant digits, in ns, µs, ms or s.
pub(crate) struct Short(pub(crate) Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        #[allow(clippy::cast_precision_loss)]
        let value = ns as f64;
        let text = match ns {
            0..1_000 => format!("{ns} ns"),
            1_000..1_000_000 => format!("{:.3} µs", value / 1e3),
            1_000_000..1_000_000_000 => format!("{:.3} ms", value / 1e6),
            _ => format!("{:.3} s", value / 1e9),
        };
        // Three significant digits: "12.3 µs", "1.23 ms".
        let (number, unit) = text.split_once(' ').unwrap_or((&text, ""));
        let digits = number.chars().filter(char::is_ascii_digit).count();
        let number = match number.split_once('.') {
            Some((whole, fraction)) if digits > 3 => {
                let keep = 3usize.saturating_sub(whole.len());
                if keep == 0 {
                    whole.to_owned()
                } else {
                    format!("{whole}.{}", &fraction[..keep])
                }
            }
            _ => number.to_owned(),
        };
        f.pad(&format!("{number} {unit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_counted_in_its_bucket_only_still_bounds_the_sum_and_the_maximum() {
        // As a reset that zeroed the sum and the maximum between a record's adds leaves it.
        let histogram = Histogram::new();
        histogram.record(3_000);
        histogram.sum_ns.store(0, Ordering::Relaxed);
        histogram.max_ns.store(0, Ordering::Relaxed);
        let timings = histogram.snapshot();
        assert_eq!(timings.count(), 1);
        let (low, high) = (lower_bound(bucket(3_000)), lower_bound(bucket(3_000) + 1));
        assert!((low..high).contains(&timings.max_ns), "{timings:?}");
        assert!((low..=high).contains(&timings.sum_ns), "{timings:?}");
        assert!(timings.percentile(1.0) <= timings.max());
        // And the other way: a sum and a maximum with no bucket count are none.
        let histogram = Histogram::new();
        histogram.sum_ns.store(5_000, Ordering::Relaxed);
        histogram.max_ns.store(5_000, Ordering::Relaxed);
        let timings = histogram.snapshot();
        assert_eq!(
            (timings.count(), timings.sum_ns, timings.max()),
            (0, 0, Duration::ZERO)
        );
        // Consistent ones are kept as they are.
        let histogram = Histogram::new();
        histogram.record(3_000);
        histogram.record(70_000);
        let timings = histogram.snapshot();
        assert_eq!((timings.sum_ns, timings.max_ns), (73_000, 70_000));
    }

    #[test]
    fn every_duration_falls_in_the_bucket_whose_bounds_hold_it() {
        for ns in (0..5_000).chain([1 << 20, (1 << 20) + 1, 123_456_789, u64::MAX / 2, u64::MAX]) {
            let index = bucket(ns);
            assert!(lower_bound(index) <= ns, "{ns} in bucket {index}");
            if index < BUCKETS - 1 {
                assert!(ns < lower_bound(index + 1), "{ns} in bucket {index}");
            }
        }
        // Buckets grow by at most a quarter of their lower bound.
        for index in 4..BUCKETS - 1 {
            let (low, high) = (lower_bound(index), lower_bound(index + 1));
            assert!(high > low && (high - low) * 4 <= low, "bucket {index}");
        }
    }

    #[test]
    fn percentiles_come_from_the_bucket_holding_the_rank() {
        let histogram = Histogram::new();
        for ns in [1_000, 1_000, 1_000, 100_000] {
            histogram.record(ns);
        }
        let timings = histogram.snapshot();
        assert_eq!(timings.count(), 4);
        assert_eq!(timings.mean(), Duration::from_nanos(25_750));
        assert_eq!(timings.max(), Duration::from_micros(100));
        let p50 = timings.percentile(0.5);
        assert!(
            p50 >= Duration::from_nanos(896) && p50 <= Duration::from_nanos(1_152),
            "{p50:?}"
        );
        assert_eq!(timings.percentile(1.0), Duration::from_micros(100));
        assert_eq!(Histogram::new().snapshot().percentile(0.5), Duration::ZERO);
    }

    #[test]
    fn buckets_count_each_duration_under_the_first_bound_above_it_and_agree_with_the_count() {
        let histogram = Histogram::new();
        // 300 ns, 3 µs, 30 µs, 3 ms, 3 s and an hour: none within a fine bucket of a bound.
        let durations = [
            300,
            3_000,
            30_000,
            3_000_000,
            3_000_000_000,
            3_600_000_000_000,
        ];
        for ns in durations {
            histogram.record(ns);
        }
        let timings = histogram.snapshot();
        assert_eq!(timings.sum(), Duration::from_nanos(durations.iter().sum()));
        let buckets: Vec<(Duration, u64)> = timings.buckets().collect();
        assert_eq!(buckets.len(), DURATION_BUCKETS.len());
        let under = |bound: Duration| buckets.iter().find(|(le, _)| *le == bound).unwrap().1;
        assert_eq!(under(Duration::from_nanos(500)), 1);
        assert_eq!(under(Duration::from_micros(2_500) / 1_000), 1);
        assert_eq!(under(Duration::from_micros(5)), 2);
        assert_eq!(under(Duration::from_micros(50)), 3);
        assert_eq!(under(Duration::from_millis(5)), 4);
        assert_eq!(under(Duration::from_secs(5)), 5);
        assert_eq!(buckets.last().unwrap().1, 5, "an hour is above every bound");
        assert_eq!(timings.count(), 6, "and in the count: the +Inf bucket");
        assert!(buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        // Every bound is strictly above the one before.
        assert!(DURATION_BUCKETS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn a_reset_returns_what_it_took() {
        let stats = SiteStats::new();
        for _ in 0..3 {
            stats.submitted();
        }
        stats.ran(false, 1_000, 2_000);
        stats.ran(true, 1_000, 2_000);
        stats.ended(End::Refused);
        let taken = stats.reset();
        assert_eq!(
            (
                taken.calls,
                taken.completed,
                taken.panicked,
                taken.refused,
                taken.cancelled
            ),
            (3, 1, 1, 1, 0)
        );
        assert_eq!(taken.run_time.count(), 2);
        assert_eq!(taken.run_time.sum(), Duration::from_micros(4));
        let left = stats.snapshot();
        assert_eq!((left.calls, left.run_time.count()), (0, 0));
        // A call in flight across the reset stays counted where it is.
        stats.submitted();
        let taken = stats.reset();
        assert_eq!(taken.calls, 0);
        assert_eq!(stats.snapshot().in_flight, 1);
    }

    #[test]
    fn short_durations_print_with_three_significant_digits() {
        let cases = [
            (Duration::from_nanos(7), "7 ns"),
            (Duration::from_nanos(999), "999 ns"),
            (Duration::from_nanos(1_234), "1.23 µs"),
            (Duration::from_nanos(12_345), "12.3 µs"),
            (Duration::from_nanos(123_456), "123 µs"),
            (Duration::from_micros(1_500), "1.50 ms"),
            (Duration::from_millis(2_500), "2.50 s"),
        ];
        for (duration, text) in cases {
            assert_eq!(Short(duration).to_string(), text);
        }
    }
}
