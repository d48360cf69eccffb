//! The `metrics` feature: the call sites' statistics and the pools' counters published through
//! the [`metrics`] facade, for whatever recorder the application installed (Prometheus,
//! an OpenTelemetry bridge ...).
//!
//! Nothing here runs per call: the calls are counted as they always are (`call_stats.rs`, on
//! per-thread shards), and [`publish_call_site_metrics`] turns those counts into the facade's
//! counters, gauges and histograms when it is called (before a scrape, or every few seconds).
//! With no recorder installed, publishing costs only the snapshots. The counters and histograms
//! published only grow: what [`reset_call_sites`](crate::reset_call_sites) takes away is carried
//! here, per site, and added back.
//!
//! A histogram is published by replaying, per publication, the durations counted since the
//! last one: each fine bucket's new count is recorded at one value inside that bucket, the
//! same fraction of the way through every bucket, chosen so that the recorded values add up
//! to the counted sum. An exporter that uses [`DURATION_BUCKETS`](crate::DURATION_BUCKETS) so
//! gets the counts, the sum and (to within a fine bucket) the bucket counts of
//! [`Timings`](crate::Timings). The facade takes no counts already bucketed, so the recorder is
//! handed every duration: that is the one cost here that grows with the calls
//! ([`publish_call_site_counters`] leaves the histograms out).
//!
//! For Prometheus there is a way around it: [`render_call_site_histograms`] writes the two
//! histograms as text itself (a *const histogram*, as Prometheus's client libraries write data
//! already bucketed), from the same counts and carried resets, at a cost per page that does
//! not grow with the calls, and exact. An application publishes the counters with
//! [`publish_call_site_counters`] and appends these to the exporter's page; it must not also
//! publish the histograms through the facade, or the page would have each family twice.

use std::fmt::Write as _;
use std::sync::MutexGuard;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};

use crate::stats::call_site::{self, CallSite};
use crate::stats::call_stats::{self, Timings, bucket_bounds};
use crate::stats::site_export::{Published, Replayed, SiteExport};

/// Calls handed to their executor.
const CALLS: &str = "async_wrap.calls.total";
/// Calls whose body returned.
const COMPLETED: &str = "async_wrap.calls.completed.total";
/// Calls whose body panicked.
const PANICKED: &str = "async_wrap.calls.panicked.total";
/// Calls whose future was dropped before the body started.
const CANCELLED: &str = "async_wrap.calls.cancelled.total";
/// Calls the executor refused or dropped unrun.
const REFUSED: &str = "async_wrap.calls.refused.total";
/// Calls not ended yet.
const IN_FLIGHT: &str = "async_wrap.calls.in_flight";
/// From submission to the start of the body.
const QUEUE_WAIT: &str = "async_wrap.calls.queue_wait.seconds";
/// The body's run.
const RUN_TIME: &str = "async_wrap.calls.run_time.seconds";

/// The help text of [`QUEUE_WAIT`], for `describe_metrics` and the rendered page.
const QUEUE_WAIT_HELP: &str = "Time from a call's submission to the start of its body.";
/// The help text of [`RUN_TIME`].
const RUN_TIME_HELP: &str = "Time a call's body ran.";

/// A pool's threads alive.
const THREADS: &str = "async_wrap.pool.threads.alive";
/// A pool's threads waiting for a job.
const IDLE: &str = "async_wrap.pool.threads.idle";
/// A pool's jobs waiting for a thread.
const QUEUED: &str = "async_wrap.pool.jobs.queued";
/// A pool's jobs running.
const RUNNING: &str = "async_wrap.pool.jobs.running";
/// A pool's jobs whose body returned.
const JOBS_COMPLETED: &str = "async_wrap.pool.jobs.completed.total";
/// A pool's refused calls.
const REJECTED: &str = "async_wrap.pool.jobs.rejected.total";

/// The label of a call site's function: its module path and name.
const FUNCTION: &str = "code.function.name";
/// The label of the file it is defined in.
const FILE: &str = "code.file.path";
/// The label of its line.
const LINE: &str = "code.line.number";
/// The label of the executor it names.
const EXECUTOR: &str = "async_wrap.executor";
/// The label of a pool's name.
const POOL: &str = "async_wrap.pool.name";

/// Where the metrics come from, for recorders that filter by target or level.
const METADATA: Metadata<'static> = Metadata::new("async_wrap", Level::INFO, Some(module_path!()));

impl SiteExport {
    /// The site's published state, its labels made at its first publication.
    fn published(&self, site: &CallSite) -> MappedPublished<'_> {
        let mut state = self.lock();
        let published = state.get_or_insert_with(Published::empty);
        if published.labels.is_empty() {
            published.labels = vec![
                Label::from_static_parts(FUNCTION, site.function()),
                Label::from_static_parts(FILE, site.file()),
                Label::new(LINE, site.line().to_string()),
                Label::from_static_parts(EXECUTOR, site.executor()),
            ];
        }
        MappedPublished(state)
    }

    /// Publishes `site`'s totals to `recorder`, and its histograms if `histograms`.
    fn publish(&self, site: &CallSite, recorder: &dyn Recorder, histograms: bool) {
        let mut state = self.published(site);
        let published = state.get();
        let mut total = site.site_stats().snapshot();
        let in_flight = total.in_flight;
        total.add(&published.carried);
        let labels = &published.labels;
        counter(recorder, CALLS, labels).absolute(total.calls);
        counter(recorder, COMPLETED, labels).absolute(total.completed);
        counter(recorder, PANICKED, labels).absolute(total.panicked);
        counter(recorder, CANCELLED, labels).absolute(total.cancelled);
        counter(recorder, REFUSED, labels).absolute(total.refused);
        gauge(recorder, IN_FLIGHT, labels).set(as_f64(in_flight));
        if !histograms {
            return;
        }
        let queue_wait = histogram(recorder, QUEUE_WAIT, labels);
        published.queue_wait.replay(&total.queue_wait, &queue_wait);
        let run_time = histogram(recorder, RUN_TIME, labels);
        published.run_time.replay(&total.run_time, &run_time);
    }

    /// Writes `site`'s two histograms as Prometheus text: its `_bucket`, `_sum` and `_count`
    /// lines of the queue wait to `queue_wait` and of the run time to `run_time`, labelled
    /// `extra` (rendered labels, `key="value"` joined by commas, or empty) then the site's.
    fn render(&self, site: &CallSite, extra: &str, queue_wait: &mut String, run_time: &mut String) {
        let mut state = self.published(site);
        let published = state.get();
        // One snapshot for both, read whole (see `SiteStats::snapshot`): in each, the count is
        // the buckets' total and the sum lies within their bounds. The lock keeps a reset
        // from moving counts into `carried` meanwhile.
        let mut total = site.site_stats().snapshot();
        total.add(&published.carried);
        let mut labels = String::from(extra);
        for label in &published.labels {
            if !labels.is_empty() {
                labels.push(',');
            }
            push_label(
                &mut labels,
                &prometheus_name(label.key(), false),
                label.value(),
            );
        }
        let [wait_floor, run_floor] = &mut published.rendered_sum_ns;
        for (timings, floor, out, family) in [
            (&total.queue_wait, wait_floor, queue_wait, QUEUE_WAIT),
            (&total.run_time, run_floor, run_time, RUN_TIME),
        ] {
            *floor = (*floor).max(timings.sum_ns());
            write_series(
                out,
                &prometheus_name(family, true),
                &labels,
                timings,
                *floor,
            );
        }
    }
}

/// A site's published state, locked, made if it was not.
struct MappedPublished<'a>(MutexGuard<'a, Option<Box<Published>>>);

impl MappedPublished<'_> {
    fn get(&mut self) -> &mut Published {
        self.0.get_or_insert_with(Published::empty)
    }
}

impl Replayed {
    /// Records into `histogram` the durations `total` holds beyond those recorded already:
    /// each fine bucket's new ones at one value in that bucket, the same fraction of the way
    /// through each, so that they add up to the new part of the sum (as nearly as the buckets
    /// allow: a sum read across a record is bounded by its buckets, see `Timings::settle`).
    fn replay(&mut self, total: &Timings, histogram: &Histogram) {
        let (mut low, mut width) = (0_u128, 0_u128);
        let mut any = false;
        for (index, (&now, &done)) in total.fine_buckets().iter().zip(&self.buckets).enumerate() {
            let new = u128::from(now.saturating_sub(done));
            if new > 0 {
                let (from, to) = bucket_bounds(index);
                low += new * u128::from(from);
                width += new * u128::from(to - from);
                any = true;
            }
        }
        if !any {
            return;
        }
        let wanted = u128::from(total.sum_ns().saturating_sub(self.sum_ns));
        #[allow(clippy::cast_precision_loss)]
        let share = if width == 0 {
            0.0
        } else {
            (wanted.saturating_sub(low) as f64 / width as f64).min(1.0)
        };
        let mut recorded = 0.0;
        for (index, (&now, done)) in total
            .fine_buckets()
            .iter()
            .zip(self.buckets.iter_mut())
            .enumerate()
        {
            if now <= *done {
                continue;
            }
            let new = now - *done;
            *done = now;
            let (from, to) = bucket_bounds(index);
            let value_ns = as_f64(from) + share * as_f64(to - from);
            histogram.record_many(value_ns / 1e9, usize::try_from(new).unwrap_or(usize::MAX));
            recorded += value_ns * as_f64(new);
        }
        // Saturating, and exact enough: the sum is only ever compared with the next reading's.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let recorded = recorded.round() as u64;
        self.sum_ns = self.sum_ns.saturating_add(recorded);
    }
}

/// A count as the facade's gauges and histograms take it (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn as_f64(n: u64) -> f64 {
    n as f64
}

fn counter(recorder: &dyn Recorder, name: &'static str, labels: &[Label]) -> Counter {
    recorder.register_counter(&Key::from_parts(name, labels.to_vec()), &METADATA)
}

fn gauge(recorder: &dyn Recorder, name: &'static str, labels: &[Label]) -> Gauge {
    recorder.register_gauge(&Key::from_parts(name, labels.to_vec()), &METADATA)
}

fn histogram(recorder: &dyn Recorder, name: &'static str, labels: &[Label]) -> Histogram {
    recorder.register_histogram(&Key::from_parts(name, labels.to_vec()), &METADATA)
}

/// Publishes the statistics of every call site with a counted call through the [`metrics`]
/// facade, to the recorder installed (the global one, or a thread's local one): counters of
/// calls and of each way they end, a gauge of calls in flight, and histograms of the queue
/// wait and the run time in seconds, labelled with the function, its file and line, and its
/// executor (the README's "Metrics" section has the table). Nothing is published while the
/// statistics are off ([`set_call_statistics`](crate::set_call_statistics)`(false)`).
///
/// Calls are counted as always, without touching the recorder; this reads those counts and
/// hands the recorder what changed. Call it where the exporter reads: before rendering a
/// scrape, or from a thread every few seconds. The counters and histograms never go down,
/// whatever [`reset_call_sites`](crate::reset_call_sites) does. For the histograms' buckets,
/// give the exporter [`DURATION_BUCKETS`](crate::DURATION_BUCKETS).
///
/// ```
/// use async_wrap::{async_wrap, publish_call_site_metrics};
///
/// #[async_wrap]
/// fn lookup(id: u32) -> u32 {
///     id + 1
/// }
///
/// // An application installs its exporter's recorder first (`metrics::set_global_recorder`,
/// // or its exporter's `install`); with none, publishing does nothing.
/// futures::executor::block_on(lookup(1));
/// publish_call_site_metrics();
/// ```
///
/// # Cost
///
/// Counters and gauges cost a few lookups in the recorder per call site and publication. A
/// histogram costs what the recorder spends on each duration given to it: the `metrics`
/// facade has no way to hand over counts already bucketed, so each call's queue wait and run
/// time are recorded once each, in batches of equal values (`Histogram::record_many`), which
/// Prometheus's exporter takes one by one, at about 30 ns each on the publishing thread. That
/// is nothing beside calls that do real work, and 9–15 % of the throughput of two saturated
/// cores doing nothing but trivial calls (2 M a second; the README's "Metrics" section has the
/// figures). [`publish_call_site_counters`] publishes all but the histograms; with Prometheus,
/// [`render_call_site_histograms`] writes them onto the page instead, at a cost that does not
/// grow with the calls (use one or the other for the histograms, never both).
pub fn publish_call_site_metrics() {
    publish(true);
}

/// [`publish_call_site_metrics`] without the histograms: the counters and the in-flight gauge,
/// at a cost per publication that does not grow with the calls made. The histograms' counts
/// are kept meanwhile: a later [`publish_call_site_metrics`] hands over every duration since
/// their last publication. With Prometheus, [`render_call_site_histograms`] appends the
/// histograms to the exporter's page: the two together give the whole set.
///
/// ```
/// use async_wrap::{publish_call_site_counters, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || ()));
/// publish_call_site_counters();
/// ```
pub fn publish_call_site_counters() {
    publish(false);
}

fn publish(histograms: bool) {
    if !call_stats::call_statistics_enabled() {
        return;
    }
    let sites = call_site::registered();
    metrics::with_recorder(|recorder| {
        for site in sites {
            site.export().publish(site, recorder, histograms);
        }
    });
}

/// What [`publish_pool`] publishes of a pool (from its `Metrics`: the pool fills it, so that
/// publishing needs nothing of the pool's types).
pub(crate) struct PoolNumbers {
    pub(crate) threads: usize,
    pub(crate) idle_threads: usize,
    pub(crate) queued: usize,
    pub(crate) running: usize,
    pub(crate) completed: u64,
    pub(crate) rejected: u64,
}

/// Publishes a pool's counters, labelled with its name: what `BlockingPool::publish_metrics`
/// does.
pub(crate) fn publish_pool(name: &str, counts: &PoolNumbers) {
    let labels = [Label::new(POOL, name.to_owned())];
    metrics::with_recorder(|recorder| {
        let set = |metric, value: usize| {
            gauge(recorder, metric, &labels).set(as_f64(value as u64));
        };
        set(THREADS, counts.threads);
        set(IDLE, counts.idle_threads);
        set(QUEUED, counts.queued);
        set(RUNNING, counts.running);
        counter(recorder, JOBS_COMPLETED, &labels).absolute(counts.completed);
        counter(recorder, REJECTED, &labels).absolute(counts.rejected);
    });
}

/// Appends the call sites' two histograms to `page` in Prometheus's text exposition format, as
/// *const histograms*: the `_bucket`, `_sum` and `_count` lines written from the counts the
/// call sites keep, which is what Prometheus client libraries do for data that is already
/// bucketed (the Go client's `MustNewConstHistogram`, a Python custom collector's
/// `HistogramMetricFamily`). Exact, and at a cost per page that does not grow with the calls;
/// the way to have the histograms where [`publish_call_site_metrics`] would cost too much.
///
/// Written: the families `async_wrap_calls_queue_wait_seconds` and
/// `async_wrap_calls_run_time_seconds` (the README's "Metrics" names, dots as underscores),
/// each with its `# HELP` and `# TYPE ... histogram` once and then a series per call site with
/// a counted call (sorted as [`call_sites`](crate::call_sites) sorts them), labelled as
/// metrics-exporter-prometheus renders the counters that [`publish_call_site_counters`]
/// publishes: `code_function_name`, `code_file_path`, `code_line_number` and
/// `async_wrap_executor`, so that a dashboard joins them on one series set. The buckets are
/// [`DURATION_BUCKETS`](crate::DURATION_BUCKETS), in seconds, cumulative as
/// [`Timings::buckets`](crate::Timings::buckets) counts them, then `+Inf`; `_sum` is in
/// seconds and `_count` is the `+Inf` bucket. Like the published counters they never go down,
/// whatever [`reset_call_sites`](crate::reset_call_sites) does (what a reset takes is carried
/// and added back, as for the facade's). Label values are escaped as the format wants
/// (backslash, double quote, line feed; metrics-exporter-prometheus 0.18 differs only for a
/// value that already holds `\\` or `\"`, which it writes unchanged, taking them as escaped:
/// a call site whose executor expression holds such a string literal has its counters and its
/// histograms under two spellings of that label). A page that does not end in a line feed
/// gets one first. While the statistics are off
/// ([`set_call_statistics`](crate::set_call_statistics)`(false)`), and before any call, nothing
/// is written.
///
/// With metrics-exporter-prometheus, publish the counters with [`publish_call_site_counters`]
/// and append these to the exporter's page. **Use one histogram path, not both:** a process
/// that has called [`publish_call_site_metrics`] even once has handed the recorder these
/// histograms, which the exporter then renders on every page, and the page would have each
/// family twice (Prometheus refuses such a scrape). The exporter's global labels
/// (`PrometheusBuilder::add_global_label`) are not seen here: give them to
/// [`render_call_site_histograms_labelled`].
///
/// ```
/// use async_wrap::{async_wrap, publish_call_site_counters, render_call_site_histograms};
///
/// #[async_wrap]
/// fn lookup(id: u32) -> u32 {
///     id + 1
/// }
///
/// futures::executor::block_on(lookup(1));
/// // At each scrape, with an exporter's recorder installed (here none):
/// publish_call_site_counters();
/// let mut page = String::new(); // `handle.render()`, from metrics-exporter-prometheus
/// render_call_site_histograms(&mut page);
///
/// assert_eq!(page.matches("# TYPE async_wrap_calls_run_time_seconds histogram").count(), 1);
/// let count = page
///     .lines()
///     .find(|line| {
///         line.starts_with("async_wrap_calls_run_time_seconds_count{")
///             && line.contains(r#"::lookup",code_file_path=""#)
///     })
///     .expect("lookup's run-time histogram");
/// assert!(count.ends_with("} 1"), "{count}");
/// assert!(page.contains(r#",le="+Inf"} 1"#));
/// ```
///
/// # Cost
///
/// Per call site and page: one snapshot of its counts (what [`call_sites`](crate::call_sites)
/// reads) and 52 lines of text, whatever the number of calls: about 6 µs a call site on the
/// 2-vCPU machine of the README's figures (release build, 4 sites). Rendering every 100 ms
/// beside [`publish_call_site_counters`] cost the throughput probe no more than the counters
/// alone (the README's "Metrics" section has the figures).
pub fn render_call_site_histograms(page: &mut String) {
    render_call_site_histograms_labelled(page, &[]);
}

/// [`render_call_site_histograms`] with `labels` added to every series, before the call
/// site's: the exporter's global labels (those of `PrometheusBuilder::add_global_label`, in
/// the same order), so that the histograms carry them as the exporter's own metrics do. Label
/// names are made valid as the exporter makes them (every character outside `[a-zA-Z0-9_]`,
/// and a leading digit, an underscore); one that names a call-site label, or `le`, or a label
/// given before it, is left out.
///
/// ```
/// use async_wrap::{render_call_site_histograms_labelled, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
/// futures::executor::block_on(spawn_on(&POOL, || ()));
///
/// let mut page = String::new();
/// render_call_site_histograms_labelled(&mut page, &[("service", "billing \"eu\"")]);
/// let line = page.lines().find(|line| line.contains("_count{")).unwrap();
/// let labels = r#"{service="billing \"eu\"",code_function_name=""#;
/// assert!(line.starts_with(&format!("async_wrap_calls_queue_wait_seconds_count{labels}")));
/// ```
pub fn render_call_site_histograms_labelled(page: &mut String, labels: &[(&str, &str)]) {
    if !call_stats::call_statistics_enabled() {
        return;
    }
    let mut sites = call_site::registered();
    if sites.is_empty() {
        return;
    }
    sites.sort_by_key(|site| (site.function(), site.file(), site.line()));
    // Names taken: the site's, `le`, and each label given (the first of two of one name).
    let mut taken: Vec<String> = [FUNCTION, FILE, LINE, EXECUTOR]
        .iter()
        .map(|key| prometheus_name(key, false))
        .chain(["le".to_owned()])
        .collect();
    let mut extra = String::new();
    for &(key, value) in labels {
        let key = prometheus_name(key, false);
        if taken.contains(&key) {
            continue;
        }
        if !extra.is_empty() {
            extra.push(',');
        }
        push_label(&mut extra, &key, value);
        taken.push(key);
    }
    let mut queue_wait = String::new();
    let mut run_time = String::new();
    for site in sites {
        site.export()
            .render(site, &extra, &mut queue_wait, &mut run_time);
    }
    if !page.is_empty() && !page.ends_with('\n') {
        page.push('\n');
    }
    for (family, help, series) in [
        (QUEUE_WAIT, QUEUE_WAIT_HELP, queue_wait),
        (RUN_TIME, RUN_TIME_HELP, run_time),
    ] {
        let name = prometheus_name(family, true);
        let _ = writeln!(page, "# HELP {name} {help}");
        let _ = writeln!(page, "# TYPE {name} histogram");
        page.push_str(&series);
        page.push('\n');
    }
}

/// A metric's name (`colon`) or a label's as Prometheus takes it, made as
/// metrics-exporter-prometheus makes it: every character outside `[a-zA-Z0-9_]` (and `:` in a
/// metric's name) an underscore, and the first one too if it is a digit.
fn prometheus_name(name: &str, colon: bool) -> String {
    name.chars()
        .enumerate()
        .map(|(at, c)| {
            let valid = c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (at > 0 && c.is_ascii_digit());
            if valid { c } else { '_' }
        })
        .collect()
}

/// Appends `key="value"`, the value escaped as the text format wants: `\\`, `\"` and `\n`.
fn push_label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes one site's histogram of `family`: a `_bucket` line per bound of
/// [`DURATION_BUCKETS`](crate::DURATION_BUCKETS) (its `le` written as the exporter writes the
/// bounds it is given in seconds, so that the series are the same), `+Inf`, `_sum` (`sum_ns`,
/// in seconds, exact) and `_count`.
fn write_series(out: &mut String, family: &str, labels: &str, timings: &Timings, sum_ns: u64) {
    let comma = if labels.is_empty() { "" } else { "," };
    for (bound, below) in timings.buckets() {
        let le = bound.as_secs_f64();
        let _ = writeln!(out, "{family}_bucket{{{labels}{comma}le=\"{le}\"}} {below}");
    }
    let count = timings.count();
    let _ = writeln!(out, "{family}_bucket{{{labels}{comma}le=\"+Inf\"}} {count}");
    let (seconds, ns) = (sum_ns / 1_000_000_000, sum_ns % 1_000_000_000);
    let _ = if ns == 0 {
        writeln!(out, "{family}_sum{{{labels}}} {seconds}")
    } else {
        let fraction = format!("{ns:09}");
        writeln!(
            out,
            "{family}_sum{{{labels}}} {seconds}.{}",
            fraction.trim_end_matches('0')
        )
    };
    let _ = writeln!(out, "{family}_count{{{labels}}} {count}");
}

/// Describes every metric that [`publish_call_site_metrics`] and
/// [`BlockingPool::publish_metrics`](crate::BlockingPool::publish_metrics) publish to the
/// installed recorder: its help text and its unit. Call it once, after installing the
/// recorder; exporters print the descriptions (Prometheus's `# HELP`).
///
/// ```
/// use async_wrap::{describe_metrics, publish_call_site_metrics, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(2);
///
/// // After installing the exporter's recorder (here none: each call does nothing).
/// describe_metrics();
/// futures::executor::block_on(spawn_on(&POOL, || ()));
/// publish_call_site_metrics();
/// POOL.publish_metrics();
/// ```
pub fn describe_metrics() {
    metrics::with_recorder(|recorder| {
        let counter = |name: &'static str, text: &'static str| {
            recorder.describe_counter(name.into(), Some(Unit::Count), text.into());
        };
        counter(CALLS, "Calls of a wrapped function handed to its executor.");
        counter(COMPLETED, "Calls whose body returned.");
        counter(PANICKED, "Calls whose body panicked.");
        counter(
            CANCELLED,
            "Calls whose future was dropped before the body started.",
        );
        counter(
            REFUSED,
            "Calls the executor refused (shut down, full queue) or dropped unrun.",
        );
        counter(JOBS_COMPLETED, "Jobs of the pool whose body returned.");
        counter(
            REJECTED,
            "Calls the pool refused (shut down, or a full queue under QueueFull::Reject).",
        );
        let gauge = |name: &'static str, text: &'static str| {
            recorder.describe_gauge(name.into(), Some(Unit::Count), text.into());
        };
        gauge(
            IN_FLIGHT,
            "Calls queued, running, or done but not yet ended.",
        );
        gauge(THREADS, "Threads of the pool alive: busy, idle or exiting.");
        gauge(IDLE, "Threads of the pool waiting for a job.");
        gauge(QUEUED, "Jobs waiting in the pool's queue for a thread.");
        gauge(RUNNING, "Jobs the pool's threads are running.");
        let histogram = |name: &'static str, text: &'static str| {
            recorder.describe_histogram(name.into(), Some(Unit::Seconds), text.into());
        };
        histogram(QUEUE_WAIT, QUEUE_WAIT_HELP);
        histogram(RUN_TIME, RUN_TIME_HELP);
    });
}

#[cfg(test)]
// Small counts and durations, which f64 holds exactly.
#[allow(clippy::cast_precision_loss)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use metrics::{Histogram, HistogramFn};

    use super::{Replayed, prometheus_name, push_label, write_series};
    use crate::stats::call_stats::{SiteStats, bucket_bounds};

    /// The values a histogram was given, each with its count.
    #[derive(Default)]
    struct Values(Mutex<Vec<(f64, usize)>>);

    impl HistogramFn for Values {
        fn record(&self, value: f64) {
            self.record_many(value, 1);
        }

        fn record_many(&self, value: f64, count: usize) {
            self.0.lock().unwrap().push((value, count));
        }
    }

    #[test]
    fn a_replay_gives_each_new_duration_once_within_its_bucket_adding_up_to_the_sum() {
        let stats = SiteStats::new();
        let durations_ns = [700_u64, 3_000, 3_100, 40_000, 2_000_000];
        for &ns in &durations_ns {
            stats.submitted();
            stats.ran(false, 0, ns);
        }
        let values = Arc::new(Values::default());
        let histogram = Histogram::from_arc(values.clone());
        let mut replayed = Replayed::new();
        replayed.replay(&stats.snapshot().run_time, &histogram);
        let given = values.0.lock().unwrap().clone();
        let count: usize = given.iter().map(|&(_, n)| n).sum();
        assert_eq!(count, durations_ns.len());
        let sum: f64 = given.iter().map(|&(value, n)| value * n as f64).sum();
        let wanted = Duration::from_nanos(durations_ns.iter().sum()).as_secs_f64();
        assert!((sum - wanted).abs() < wanted * 1e-9, "{sum} for {wanted}");
        for &ns in &durations_ns {
            let index = crate::stats::call_stats::bucket_of(ns);
            let (from, to) = bucket_bounds(index);
            assert!(
                given
                    .iter()
                    .any(|&(value, _)| { (from as f64 / 1e9..=to as f64 / 1e9).contains(&value) }),
                "{ns} ns not given in its bucket: {given:?}"
            );
        }

        // The next replay gives only what is new.
        values.0.lock().unwrap().clear();
        replayed.replay(&stats.snapshot().run_time, &histogram);
        assert!(values.0.lock().unwrap().is_empty());
        stats.submitted();
        stats.ran(false, 0, 5_000);
        replayed.replay(&stats.snapshot().run_time, &histogram);
        let given = values.0.lock().unwrap().clone();
        assert_eq!(given.len(), 1);
        assert_eq!(given[0].1, 1);
        assert!((given[0].0 - 5e-6).abs() < 1e-12, "{given:?}");
    }

    #[test]
    fn a_rendered_series_counts_known_durations_in_their_buckets_with_the_exact_sum() {
        let stats = SiteStats::new();
        // None within a fine bucket of a bound: 300 ns, 3 µs (twice), 30 µs, 3 ms, 3 s and
        // an hour (above every bound: in `+Inf` only).
        let durations_ns = [
            300_u64,
            3_000,
            3_000,
            30_000,
            3_000_000,
            3_000_000_000,
            3_600_000_000_000,
        ];
        for &ns in &durations_ns {
            stats.submitted();
            stats.ran(false, 0, ns);
        }
        let timings = stats.snapshot().run_time;
        let mut out = String::new();
        let sum_ns = timings.sum_ns();
        write_series(&mut out, "f", "a=\"b\"", &timings, sum_ns);
        let wanted = [
            ("0.0000005", 1),
            ("0.000001", 1),
            ("0.0000025", 1),
            ("0.000005", 3),
            ("0.00001", 3),
            ("0.000025", 3),
            ("0.00005", 4),
            ("0.0001", 4),
            ("0.00025", 4),
            ("0.0005", 4),
            ("0.001", 4),
            ("0.0025", 4),
            ("0.005", 5),
            ("0.01", 5),
            ("0.025", 5),
            ("0.05", 5),
            ("0.1", 5),
            ("0.25", 5),
            ("0.5", 5),
            ("1", 5),
            ("2.5", 5),
            ("5", 6),
            ("10", 6),
            ("+Inf", 7),
        ];
        let mut expected = String::new();
        for (le, n) in wanted {
            let _ = writeln!(expected, "f_bucket{{a=\"b\",le=\"{le}\"}} {n}");
        }
        // 3,603,003,036,300 ns.
        expected.push_str("f_sum{a=\"b\"} 3603.0030363\n");
        expected.push_str("f_count{a=\"b\"} 7\n");
        assert_eq!(out, expected);
        assert_eq!(sum_ns, durations_ns.iter().sum::<u64>());

        // A whole number of seconds has no fraction; none is `0`.
        let mut out = String::new();
        write_series(&mut out, "g", "", &timings, 2_000_000_000);
        assert!(out.contains("\ng_sum{} 2\n"), "{out}");
        let mut out = String::new();
        write_series(&mut out, "g", "", &SiteStats::new().snapshot().run_time, 0);
        assert!(
            out.contains("g_bucket{le=\"+Inf\"} 0\ng_sum{} 0\ng_count{} 0\n"),
            "{out}"
        );
    }

    #[test]
    fn names_are_made_as_the_exporter_makes_them_and_label_values_are_escaped() {
        assert_eq!(
            prometheus_name("async_wrap.calls.run_time.seconds", true),
            "async_wrap_calls_run_time_seconds"
        );
        assert_eq!(
            prometheus_name("code.function.name", false),
            "code_function_name"
        );
        assert_eq!(prometheus_name("1a:b-c", false), "_a_b_c");
        assert_eq!(prometheus_name("a:b", true), "a:b");
        let mut out = String::new();
        push_label(&mut out, "k", "a\\b \"c\"\nd\\\\");
        assert_eq!(out, r#"k="a\\b \"c\"\nd\\\\""#);
    }
}
