//! With the `metrics` feature, what `publish_call_site_metrics` and
//! `BlockingPool::publish_metrics` hand a recorder: the names and labels of the README's table,
//! counts that match the calls made, counters that survive `reset_call_sites`, histograms whose
//! sum is the counted sum, and nothing at all while the statistics are off.

#![cfg(feature = "metrics")]
// The gauges hold small counts, which f64 holds exactly.
#![allow(clippy::float_cmp)]

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::task::Context;
use std::time::{Duration, Instant};

use async_wrap::{
    BlockingPool, async_wrap, call_sites, describe_metrics, publish_call_site_counters,
    publish_call_site_metrics, render_call_site_histograms, render_call_site_histograms_labelled,
    reset_call_sites, set_call_statistics,
};
use futures::FutureExt;
use futures::executor::block_on;
use metrics::Unit;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// One test at a time: they switch the statistics off, reset them, and read what one
/// publication hands over since the last.
fn alone() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One metric as a recorder saw it.
#[derive(Debug)]
struct Seen {
    kind: MetricKind,
    name: String,
    labels: Vec<(String, String)>,
    unit: Option<Unit>,
    description: Option<String>,
    value: DebugValue,
}

impl Seen {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What `publish` hands a fresh recorder.
fn published(publish: impl FnOnce()) -> Vec<Seen> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, publish);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, description, value)| {
            let (kind, key) = key.into_parts();
            let (name, labels) = key.into_parts();
            Seen {
                kind,
                name: name.as_str().to_owned(),
                labels: labels
                    .into_iter()
                    .map(|label| (label.key().to_owned(), label.value().to_owned()))
                    .collect(),
                unit,
                description: description.map(|text| text.to_string()),
                value,
            }
        })
        .collect()
}

/// The metric `name` of this file's function `function`.
fn of<'a>(seen: &'a [Seen], name: &str, function: &str) -> &'a Seen {
    let path = format!("{}::{function}", module_path!());
    seen.iter()
        .find(|m| m.name == name && m.label("code.function.name") == Some(&path))
        .unwrap_or_else(|| panic!("no {name} for {path} in {seen:#?}"))
}

fn counter(seen: &[Seen], name: &str, function: &str) -> u64 {
    match of(seen, name, function).value {
        DebugValue::Counter(n) => n,
        ref other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(seen: &[Seen], name: &str, function: &str) -> f64 {
    match of(seen, name, function).value {
        DebugValue::Gauge(value) => value.into_inner(),
        ref other => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn histogram(seen: &[Seen], name: &str, function: &str) -> Vec<f64> {
    match &of(seen, name, function).value {
        DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

static ONE: BlockingPool = BlockingPool::with_max_threads(1).thread_name("metrics-one");
static CLOSED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("metrics-closed");

const LABELLED_LINE: u32 = line!() + 2;
#[async_wrap]
fn labelled(n: u32) -> u32 {
    n + 1
}

#[test]
fn a_call_site_is_published_under_the_tables_names_and_labels() {
    let _alone = alone();
    for n in 0..3 {
        assert_eq!(block_on(labelled(n)), n + 1);
    }
    let seen = published(publish_call_site_metrics);
    let calls = of(&seen, "async_wrap.calls.total", "labelled");
    assert_eq!(calls.kind, MetricKind::Counter);
    assert_eq!(calls.label("code.file.path"), Some("tests/metrics.rs"));
    assert_eq!(
        calls.label("code.line.number"),
        Some(LABELLED_LINE.to_string().as_str())
    );
    assert_eq!(calls.label("async_wrap.executor"), Some("the default pool"));
    assert_eq!(calls.labels.len(), 4, "{calls:?}");
    assert_eq!(counter(&seen, "async_wrap.calls.total", "labelled"), 3);
    assert_eq!(
        counter(&seen, "async_wrap.calls.completed.total", "labelled"),
        3
    );
    for name in [
        "async_wrap.calls.panicked.total",
        "async_wrap.calls.cancelled.total",
        "async_wrap.calls.refused.total",
    ] {
        assert_eq!(counter(&seen, name, "labelled"), 0, "{name}");
    }
    assert_eq!(gauge(&seen, "async_wrap.calls.in_flight", "labelled"), 0.0);
    assert_eq!(
        of(&seen, "async_wrap.calls.in_flight", "labelled").kind,
        MetricKind::Gauge
    );
    for name in [
        "async_wrap.calls.queue_wait.seconds",
        "async_wrap.calls.run_time.seconds",
    ] {
        let values = histogram(&seen, name, "labelled");
        assert_eq!(values.len(), 3, "{name}: {values:?}");
        assert!(
            values.iter().all(|&s| (0.0..1.0).contains(&s)),
            "{values:?}"
        );
    }
}

#[async_wrap(executor = ONE)]
fn gated(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = ONE)]
fn ends(how: u8) -> u8 {
    assert!(how != 1, "the body panics");
    how
}

#[async_wrap(executor = CLOSED)]
fn refused() {}

#[test]
fn each_way_a_call_ends_has_its_counter() {
    let _alone = alone();
    assert_eq!(block_on(ends(0)), 0);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = block_on(AssertUnwindSafe(ends(1)).catch_unwind());
    std::panic::set_hook(hook);
    assert!(panicked.is_err());

    // Cancelled: queued behind a blocked call on the one-thread pool, then dropped.
    let (go, gate) = mpsc::channel();
    let blocker = std::thread::spawn({
        let gate = Arc::new(Mutex::new(gate));
        move || block_on(gated(gate))
    });
    let start = Instant::now();
    while ONE.metrics().running != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the blocker runs"
        );
        std::thread::yield_now();
    }
    let mut queued = ends(3);
    let waker = futures::task::noop_waker();
    let polled = Pin::new(&mut queued).poll(&mut Context::from_waker(&waker));
    assert!(polled.is_pending(), "queued behind the blocker");
    // Published while queued: in flight.
    let seen = published(publish_call_site_metrics);
    assert_eq!(gauge(&seen, "async_wrap.calls.in_flight", "ends"), 1.0);
    drop(queued);
    go.send(()).unwrap();
    blocker.join().unwrap();

    CLOSED.shutdown();
    assert!(block_on(refused().checked()).unwrap_err().is_shut_down());

    let seen = published(publish_call_site_metrics);
    let ends: Vec<u64> = [
        "async_wrap.calls.total",
        "async_wrap.calls.completed.total",
        "async_wrap.calls.panicked.total",
        "async_wrap.calls.cancelled.total",
        "async_wrap.calls.refused.total",
    ]
    .iter()
    .map(|name| counter(&seen, name, "ends"))
    .collect();
    assert_eq!(ends, [3, 1, 1, 1, 0]);
    assert_eq!(gauge(&seen, "async_wrap.calls.in_flight", "ends"), 0.0);
    assert_eq!(
        counter(&seen, "async_wrap.calls.refused.total", "refused"),
        1
    );
    assert_eq!(counter(&seen, "async_wrap.calls.total", "refused"), 1);

    // The pool's own: the closed pool rejected one call.
    let seen = published(|| {
        ONE.publish_metrics();
        CLOSED.publish_metrics();
    });
    let pool = |name: &str, pool: &str| {
        seen.iter()
            .find(|m| m.name == name && m.label("async_wrap.pool.name") == Some(pool))
            .unwrap_or_else(|| panic!("no {name} for pool {pool} in {seen:#?}"))
    };
    assert!(matches!(
        pool("async_wrap.pool.jobs.rejected.total", "metrics-closed").value,
        DebugValue::Counter(1)
    ));
    assert!(matches!(
        pool("async_wrap.pool.jobs.completed.total", "metrics-one").value,
        DebugValue::Counter(2)
    ));
    for gauge in [
        "async_wrap.pool.threads.alive",
        "async_wrap.pool.threads.idle",
        "async_wrap.pool.jobs.queued",
        "async_wrap.pool.jobs.running",
    ] {
        assert_eq!(
            pool(gauge, "metrics-one").kind,
            MetricKind::Gauge,
            "{gauge}"
        );
    }
    assert_eq!(
        pool("async_wrap.pool.threads.alive", "metrics-one").value,
        DebugValue::Gauge(f64::from(u32::try_from(ONE.metrics().threads).unwrap()).into())
    );
    assert_eq!(
        pool("async_wrap.pool.jobs.queued", "metrics-one").value,
        DebugValue::Gauge(0.0.into())
    );

    // The default pool, unnamed, goes by `default`.
    let seen = published(|| async_wrap::default_pool().publish_metrics());
    assert!(
        seen.iter()
            .all(|m| m.label("async_wrap.pool.name") == Some("default")),
        "{seen:#?}"
    );
    assert_eq!(seen.len(), 6, "{seen:#?}");
}

#[async_wrap]
fn survives_resets() {}

#[test]
fn counters_and_histograms_only_grow_across_resets() {
    let _alone = alone();
    block_on(survives_resets());
    block_on(survives_resets());
    let seen = published(publish_call_site_metrics);
    assert_eq!(
        counter(&seen, "async_wrap.calls.total", "survives_resets"),
        2
    );

    reset_call_sites();
    block_on(survives_resets());
    let path = format!("{}::survives_resets", module_path!());
    assert_eq!(
        call_sites().get(&path).unwrap().calls,
        1,
        "the table was reset"
    );
    let seen = published(publish_call_site_metrics);
    assert_eq!(
        counter(&seen, "async_wrap.calls.total", "survives_resets"),
        3
    );
    assert_eq!(
        counter(&seen, "async_wrap.calls.completed.total", "survives_resets"),
        3
    );
    // The histograms get the one call made since the last publication, not the reset's loss.
    assert_eq!(
        histogram(
            &seen,
            "async_wrap.calls.run_time.seconds",
            "survives_resets"
        )
        .len(),
        1
    );

    // A reset between two publications loses nothing either.
    block_on(survives_resets());
    reset_call_sites();
    let seen = published(publish_call_site_metrics);
    assert_eq!(
        counter(&seen, "async_wrap.calls.total", "survives_resets"),
        4
    );
    assert_eq!(
        histogram(
            &seen,
            "async_wrap.calls.run_time.seconds",
            "survives_resets"
        )
        .len(),
        1
    );
}

#[async_wrap]
fn sleeps(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn a_histogram_adds_up_to_the_counted_sum_in_seconds() {
    let _alone = alone();
    for ms in [1, 2, 4] {
        block_on(sleeps(ms));
    }
    let seen = published(publish_call_site_metrics);
    let values = histogram(&seen, "async_wrap.calls.run_time.seconds", "sleeps");
    assert_eq!(values.len(), 3);
    let path = format!("{}::sleeps", module_path!());
    let run = call_sites().get(&path).unwrap().run_time.clone();
    let sum: f64 = values.iter().sum();
    let counted = run.sum().as_secs_f64();
    assert!(
        (sum - counted).abs() <= counted * 1e-6,
        "published {sum} s, counted {counted} s"
    );
    let mut values = values;
    values.sort_by(f64::total_cmp);
    // Each within its fine bucket (a quarter wide) of what it stands for: the sum is exact,
    // a value only to within its bucket.
    assert!(
        values[0] >= 0.001 * 0.75 && values[2] >= 0.004 * 0.75,
        "{values:?}"
    );
    assert!(values[2] < 0.004 * 1.25 + 0.002, "{values:?}");
    // A second publication with no new call adds no value.
    let seen = published(publish_call_site_metrics);
    assert!(histogram(&seen, "async_wrap.calls.run_time.seconds", "sleeps").is_empty());
}

#[async_wrap]
fn uncounted() {}

#[test]
fn nothing_is_published_while_the_statistics_are_off() {
    let _alone = alone();
    block_on(uncounted());
    set_call_statistics(false);
    block_on(uncounted());
    let off = published(|| {
        describe_metrics();
        publish_call_site_metrics();
    });
    set_call_statistics(true);
    assert!(
        off.iter()
            .all(|m| m.kind != MetricKind::Counter || !m.name.starts_with("async_wrap.calls")),
        "{off:#?}"
    );
    assert!(
        !off.iter().any(|m| m.label("code.function.name").is_some()),
        "{off:#?}"
    );
    // On again, the call made while off was never counted.
    let seen = published(publish_call_site_metrics);
    assert_eq!(counter(&seen, "async_wrap.calls.total", "uncounted"), 1);
}

#[test]
fn the_descriptions_carry_units() {
    let _alone = alone();
    block_on(labelled(0));
    let seen = published(|| {
        describe_metrics();
        publish_call_site_metrics();
    });
    let wait = of(&seen, "async_wrap.calls.queue_wait.seconds", "labelled");
    assert_eq!(wait.unit, Some(Unit::Seconds));
    assert!(wait.description.as_deref().unwrap().contains("submission"));
    let calls = of(&seen, "async_wrap.calls.total", "labelled");
    assert_eq!(calls.unit, Some(Unit::Count));
    assert!(calls.description.is_some());
}

#[async_wrap]
fn counted_only() {}

#[test]
fn the_counters_alone_leave_the_histograms_for_later() {
    let _alone = alone();
    block_on(counted_only());
    block_on(counted_only());
    let seen = published(publish_call_site_counters);
    assert_eq!(counter(&seen, "async_wrap.calls.total", "counted_only"), 2);
    assert_eq!(
        gauge(&seen, "async_wrap.calls.in_flight", "counted_only"),
        0.0
    );
    assert!(
        !seen.iter().any(|m| m.kind == MetricKind::Histogram),
        "{seen:#?}"
    );
    block_on(counted_only());
    let seen = published(publish_call_site_metrics);
    assert_eq!(counter(&seen, "async_wrap.calls.total", "counted_only"), 3);
    assert_eq!(
        histogram(&seen, "async_wrap.calls.run_time.seconds", "counted_only").len(),
        3,
        "every duration since the last publication of the histograms"
    );
}

// ---------------------------------------------------------------------------------------------
// `render_call_site_histograms`: the two histograms written as Prometheus text.

/// One sample line of a text exposition.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    /// The value as written.
    value: String,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The labels but `le`: the series a bucket line belongs to.
    fn series(&self) -> Vec<(String, String)> {
        self.labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect()
    }

    fn count(&self) -> u64 {
        self.value
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {self:?}"))
    }
}

/// A page read as Prometheus's text format (version 0.0.4): its families, in order, each with
/// its help text, its type and its samples. Panics, naming the line, at anything the grammar
/// does not allow: a bad metric or label name, a bad escape or an unquoted value, a value that
/// is not a number, a second `# HELP` or `# TYPE` for one family, a `# TYPE` after the family's
/// samples, a family's samples not all together, or a sample of another family's name.
#[derive(Debug, Default)]
struct Page {
    families: Vec<Family>,
}

#[derive(Debug, Default)]
struct Family {
    name: String,
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<Sample>,
}

fn is_name(name: &str, colon: bool) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// The family a sample of `name` belongs to, given the family's type.
fn family_of<'a>(name: &'a str, families: &[Family]) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families
                .iter()
                .any(|f| f.name == base && f.kind.as_deref() == Some("histogram"))
            {
                return base;
            }
        }
    }
    name
}

fn parse_sample(line: &str) -> Sample {
    let fail = |why: &str| -> ! { panic!("{why}: {line:?}") };
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("no value"));
    let name = &line[..name_end];
    if !is_name(name, true) {
        fail("a bad metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let start = chars.peek().map_or(after.len(), |&(at, _)| at);
            if after[start..].starts_with('}') {
                chars.next();
                break;
            }
            let Some(eq) = after[start..].find('=') else {
                fail("a label without `=`")
            };
            let key = &after[start..start + eq];
            if !is_name(key, false) {
                fail("a bad label name");
            }
            while chars.next_if(|&(at, _)| at <= start + eq).is_some() {}
            if chars.next().map(|(_, c)| c) != Some('"') {
                fail("an unquoted label value");
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => fail("a bad escape"),
                    },
                    Some((_, '\n')) | None => fail("an unterminated label value"),
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.iter().any(|(k, _): &(String, String)| k == key) {
                fail("a label twice");
            }
            labels.push((key.to_owned(), value));
            match chars.next() {
                Some((_, ',')) => {}
                Some((_, '}')) => break,
                _ => fail("no `,` or `}` after a label"),
            }
        }
        let end = chars.peek().map_or(after.len(), |&(at, _)| at);
        rest = &after[end..];
    }
    let Some(value) = rest.strip_prefix(' ') else {
        fail("no space before the value")
    };
    let mut parts = value.split(' ');
    let value = parts.next().unwrap_or_default();
    let number = matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok();
    if !number || value.starts_with("inf") || value.contains("in") {
        fail("a value that is not a number");
    }
    if let Some(timestamp) = parts.next() {
        if timestamp.parse::<i64>().is_err() || parts.next().is_some() {
            fail("junk after the value");
        }
    }
    Sample {
        name: name.to_owned(),
        labels,
        value: value.to_owned(),
    }
}

fn parse(text: &str) -> Page {
    let mut page = Page::default();
    let family = |page: &mut Page, name: &str, line: &str| -> usize {
        if let Some(at) = page.families.iter().position(|f| f.name == name) {
            assert!(
                at + 1 == page.families.len(),
                "family {name} again, after another: {line:?}"
            );
            at
        } else {
            page.families.push(Family {
                name: name.to_owned(),
                ..Family::default()
            });
            page.families.len() - 1
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let keyword = words.next().unwrap_or_default();
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let name = words.next().unwrap_or_default();
            assert!(is_name(name, true), "a bad name: {line:?}");
            let rest = words.next().unwrap_or_default().to_owned();
            let at = family(&mut page, name, line);
            let family = &mut page.families[at];
            if keyword == "HELP" {
                assert!(family.help.is_none(), "a second HELP: {line:?}");
                family.help = Some(rest);
            } else {
                assert!(family.kind.is_none(), "a second TYPE: {line:?}");
                assert!(family.samples.is_empty(), "TYPE after samples: {line:?}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&&*rest),
                    "a bad type: {line:?}"
                );
                family.kind = Some(rest);
            }
            continue;
        }
        let sample = parse_sample(line);
        let name = family_of(&sample.name, &page.families).to_owned();
        let at = family(&mut page, &name, line);
        page.families[at].samples.push(sample);
    }
    page
}

impl Page {
    fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name} in {self:#?}"))
    }
}

/// One series of a histogram family: its buckets (`le` as written, cumulative count), its sum
/// as written, and its count. Checks that it holds together: `le` ascending to `+Inf`, counts
/// never decreasing, `+Inf` equal to `_count`.
#[derive(Debug)]
struct Series {
    buckets: Vec<(String, u64)>,
    sum: String,
    count: u64,
}

impl Family {
    /// The series of this histogram family whose function is this file's `function`.
    fn series_of(&self, function: &str) -> Series {
        assert_eq!(self.kind.as_deref(), Some("histogram"), "{}", self.name);
        let path = format!("{}::{function}", module_path!());
        let samples: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.label("code_function_name") == Some(&path))
            .collect();
        assert!(!samples.is_empty(), "no series of {path} in {}", self.name);
        let series = samples[0].series();
        assert!(
            samples.iter().all(|s| s.series() == series),
            "two series of {path}: {samples:#?}"
        );
        let named = |suffix: &str| -> Vec<&Sample> {
            let name = format!("{}{suffix}", self.name);
            samples.iter().copied().filter(|s| s.name == name).collect()
        };
        let buckets: Vec<(String, u64)> = named("_bucket")
            .iter()
            .map(|s| (s.label("le").expect("le").to_owned(), s.count()))
            .collect();
        let (sum, count) = (named("_sum"), named("_count"));
        assert_eq!((sum.len(), count.len()), (1, 1), "{samples:#?}");
        let count = count[0].count();
        let les: Vec<f64> = buckets
            .iter()
            .map(|(le, _)| {
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                }
            })
            .collect();
        assert!(les.windows(2).all(|pair| pair[0] < pair[1]), "{buckets:?}");
        assert_eq!(les.last(), Some(&f64::INFINITY), "{buckets:?}");
        assert!(
            buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{buckets:?}"
        );
        assert_eq!(buckets.last().unwrap().1, count, "+Inf is the count");
        Series {
            buckets,
            sum: sum[0].value.clone(),
            count,
        }
    }
}

/// Seconds as the page writes a sum, in nanoseconds (exactly: at most nine decimals).
fn nanos(seconds: &str) -> u64 {
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    assert!(fraction.len() <= 9, "{seconds}");
    whole.parse::<u64>().unwrap() * 1_000_000_000
        + format!("{fraction:0<9}").parse::<u64>().unwrap()
}

const WAIT: &str = "async_wrap_calls_queue_wait_seconds";
const RUN: &str = "async_wrap_calls_run_time_seconds";

fn rendered() -> Page {
    let mut page = String::new();
    render_call_site_histograms(&mut page);
    parse(&page)
}

#[async_wrap]
fn rendered_sleeps(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn the_rendered_histograms_are_the_counted_ones_bucket_by_bucket() {
    let _alone = alone();
    for _ in 0..3 {
        block_on(rendered_sleeps(2));
    }
    let page = rendered();
    let path = format!("{}::rendered_sleeps", module_path!());
    let stats = call_sites().get(&path).unwrap().clone();
    for (family, timings) in [(WAIT, &stats.queue_wait), (RUN, &stats.run_time)] {
        let family = page.family(family);
        assert!(family.help.as_deref().unwrap().starts_with("Time "));
        let series = family.series_of("rendered_sleeps");
        assert_eq!(series.count, 3, "{series:?}");
        assert_eq!(series.count, timings.count());
        assert_eq!(
            nanos(&series.sum),
            u64::try_from(timings.sum().as_nanos()).unwrap()
        );
        // Every bound of DURATION_BUCKETS, in seconds as the exporter writes them, with
        // exactly the counts of `Timings::buckets`.
        let wanted: Vec<(String, u64)> = timings
            .buckets()
            .map(|(bound, n)| (bound.as_secs_f64().to_string(), n))
            .chain([("+Inf".to_owned(), timings.count())])
            .collect();
        assert_eq!(series.buckets, wanted);
        assert_eq!(series.buckets.len(), async_wrap::DURATION_BUCKETS.len() + 1);
        assert_eq!(series.buckets[0].0, "0.0000005");
    }
    // The runs slept 2 ms: none at or under 1 ms, and the sum at least 6 ms.
    let run = page.family(RUN).series_of("rendered_sleeps");
    let under = |le: &str| run.buckets.iter().find(|(b, _)| b == le).unwrap().1;
    assert_eq!(under("0.001"), 0, "{run:?}");
    assert!(nanos(&run.sum) >= 6_000_000, "{run:?}");
}

#[async_wrap]
fn rendered_across_resets() {}

#[test]
fn the_rendered_histograms_only_grow_across_resets() {
    let _alone = alone();
    block_on(rendered_across_resets());
    block_on(rendered_across_resets());
    let before = rendered().family(RUN).series_of("rendered_across_resets");
    assert_eq!(before.count, 2);

    reset_call_sites();
    block_on(rendered_across_resets());
    let path = format!("{}::rendered_across_resets", module_path!());
    assert_eq!(
        call_sites().get(&path).unwrap().run_time.count(),
        1,
        "reset"
    );
    let after = rendered().family(RUN).series_of("rendered_across_resets");
    assert_eq!(after.count, 3, "{after:?}");
    assert!(
        nanos(&after.sum) >= nanos(&before.sum),
        "{before:?} {after:?}"
    );
    for ((le, was), (same, now)) in before.buckets.iter().zip(&after.buckets) {
        assert_eq!(le, same);
        assert!(now >= was, "le {le}: {was} then {now}");
    }

    // A reset right before a page loses nothing either, and a page with no new call is the
    // same page.
    block_on(rendered_across_resets());
    reset_call_sites();
    let page = rendered();
    let last = page.family(RUN).series_of("rendered_across_resets");
    assert_eq!(last.count, 4);
    assert_eq!(
        page.family(WAIT).series_of("rendered_across_resets").count,
        4
    );
    let again = rendered().family(RUN).series_of("rendered_across_resets");
    assert_eq!(
        (again.count, &again.sum, &again.buckets),
        (4, &last.sum, &last.buckets)
    );
}

/// An executor named by an expression whose text has a backslash, double quotes and a line
/// feed: the call site's `async_wrap.executor` label.
fn pool_named(_name: &str) -> &'static BlockingPool {
    &ONE
}

#[async_wrap(executor = pool_named("a\\b \"quoted\"
next line"))]
fn escaped_executor() {}

#[test]
fn label_values_are_escaped_and_read_back_as_they_are() {
    let _alone = alone();
    block_on(escaped_executor());
    let path = format!("{}::escaped_executor", module_path!());
    let executor = call_sites().get(&path).unwrap().site.executor();
    assert!(
        executor.contains('\\') && executor.contains('"') && executor.contains('\n'),
        "{executor:?}"
    );
    let mut text = String::new();
    render_call_site_histograms(&mut text);
    // Escaped on the page: no raw line feed inside a sample, `\\`, `\"` and `\n` instead.
    let line = text
        .lines()
        .find(|line| line.starts_with(RUN) && line.contains("escaped_executor"))
        .unwrap();
    assert!(
        line.contains(r#"async_wrap_executor="pool_named(\"a\\\\b \\\"quoted\\\"\nnext line\")""#),
        "{line}"
    );
    // And read back by the parser, the same text as the call site's.
    let page = parse(&text);
    for family in [WAIT, RUN] {
        let samples = &page.family(family).samples;
        let sample = samples
            .iter()
            .find(|s| s.label("code_function_name") == Some(&path))
            .unwrap();
        assert_eq!(sample.label("async_wrap_executor"), Some(executor));
    }
}

#[async_wrap]
fn on_the_exporters_page() {}

#[test]
fn on_the_exporters_page_the_histograms_join_the_counters_series_and_no_family_is_twice() {
    let _alone = alone();
    block_on(on_the_exporters_page());
    block_on(labelled(1));
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .add_global_label("service", "billing")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe_metrics();
        publish_call_site_counters();
    });
    let mut text = handle.render();
    let exporters = text.len();
    // A label given twice, or named as a call site's, is written once, the site's own kept.
    render_call_site_histograms_labelled(
        &mut text,
        &[
            ("service", "billing"),
            ("service", "again"),
            ("code.function.name", "not this"),
        ],
    );
    assert!(text.len() > exporters);
    // `parse` refuses a family's HELP or TYPE twice, or its lines apart.
    let page = parse(&text);
    let path = format!("{}::on_the_exporters_page", module_path!());
    let calls = page.family("async_wrap_calls_total");
    assert_eq!(calls.kind.as_deref(), Some("counter"));
    let counter = calls
        .samples
        .iter()
        .find(|s| s.label("code_function_name") == Some(&path))
        .expect("the exporter's counter");
    assert_eq!(counter.label("service"), Some("billing"));
    for family in [WAIT, RUN] {
        let family = page.family(family);
        assert_eq!(family.kind.as_deref(), Some("histogram"));
        // One series per call site, each with 23 bounds, +Inf, a sum and a count.
        let series: Vec<Vec<(String, String)>> =
            family
                .samples
                .iter()
                .map(Sample::series)
                .fold(Vec::new(), |mut all, series| {
                    if !all.contains(&series) {
                        all.push(series);
                    }
                    all
                });
        assert_eq!(family.samples.len(), series.len() * 26);
        assert_eq!(series.len(), call_sites().len(), "a series per call site");
        let mine = family
            .samples
            .iter()
            .find(|s| s.label("code_function_name") == Some(&path))
            .unwrap();
        // The very label set of the exporter's counter: names, values, order.
        assert_eq!(mine.series(), counter.labels, "{}", family.name);
    }
    // The facade's path, to an exporter given DURATION_BUCKETS, names the same series with
    // the same bounds: the one path can replace the other under a dashboard.
    let buckets = async_wrap::DURATION_BUCKETS.map(|bound| bound.as_secs_f64());
    let facade = metrics_exporter_prometheus::PrometheusBuilder::new()
        .add_global_label("service", "billing")
        .set_buckets(&buckets)
        .unwrap()
        .build_recorder();
    metrics::with_local_recorder(&facade, || {
        describe_metrics();
        publish_call_site_metrics();
    });
    let mut both = facade.handle().render();
    let theirs = parse(&both);
    for family in [WAIT, RUN] {
        let (ours, theirs) = (page.family(family), theirs.family(family));
        assert_eq!(theirs.kind.as_deref(), Some("histogram"));
        let of = |family: &Family| -> Vec<Vec<(String, String)>> {
            family
                .samples
                .iter()
                .filter(|s| s.label("code_function_name") == Some(&path))
                .map(|s| s.labels.clone())
                .collect()
        };
        assert_eq!(of(ours), of(theirs), "{family}");
        assert_eq!(ours.help, theirs.help, "{family}");
    }
    // Both histogram paths at once put each family on the page twice, which `parse` (and
    // Prometheus) refuses: what the docs warn of.
    render_call_site_histograms(&mut both);
    for family in [WAIT, RUN] {
        let types = format!("# TYPE {family} histogram");
        assert_eq!(
            both.lines().filter(|line| *line == types).count(),
            2,
            "{both}"
        );
    }
}

#[async_wrap]
fn rendered_while_off() {}

#[test]
fn nothing_is_rendered_while_the_statistics_are_off() {
    let _alone = alone();
    block_on(rendered_while_off());
    set_call_statistics(false);
    let mut page = String::from("# a page without a final line feed");
    render_call_site_histograms(&mut page);
    render_call_site_histograms_labelled(&mut page, &[("service", "x")]);
    set_call_statistics(true);
    assert_eq!(page, "# a page without a final line feed");
    // On again: the page gets its line feed, then the families.
    render_call_site_histograms(&mut page);
    assert!(
        page.starts_with(
            "# a page without a final line feed\n# HELP async_wrap_calls_queue_wait_seconds "
        ),
        "{page}"
    );
    parse(&page).family(RUN).series_of("rendered_while_off");
}
