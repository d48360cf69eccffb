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
    publish_call_site_metrics, reset_call_sites, set_call_statistics,
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
