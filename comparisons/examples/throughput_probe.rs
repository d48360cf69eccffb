//! A fixed throughput workload for profilers: trivial calls, 1,000 at a time, on a two-thread
//! pool, then (interleaved, for a ratio from one run) on tokio's blocking pool capped at two
//! threads. `perf record ./target/release/examples/throughput_probe --only-pool` profiles the
//! pool alone; `--statistics` interleaves the pool with its per-call-site statistics on and off
//! (20 rounds each) and prints the median ratio: what the statistics cost. `--rounds N` prints N
//! rounds' rates on the pool alone; built with the `metrics` feature, it first installs a
//! Prometheus recorder and publishes and renders every 100 ms meanwhile (`PROBE_PUBLISH_MS`
//! sets the interval, 0 for none; `PROBE_PUBLISH=counters` leaves the histograms out;
//! `PROBE_PUBLISH=rendered` publishes the counters and appends the histograms to the page with
//! `render_call_site_histograms`).
//! `metrics_cost.sh` interleaves that build with one without the feature: what it costs.

// Counts become `f64` only to print rates.
#![allow(clippy::cast_precision_loss)]

use std::time::Instant;

use async_wrap::BlockingPool;

static TWO: BlockingPool = BlockingPool::with_max_threads(2);

const CALLS: u64 = 200_000;

fn rate(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    CALLS as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// One round of the workload on the pool.
fn pool_round() -> f64 {
    rate(|| {
        futures::executor::block_on(async {
            for _ in 0..CALLS / 1_000 {
                let calls = (0..1_000_u64)
                    .map(|i| async_wrap::spawn_on(&TWO, move || std::hint::black_box(i)));
                futures::future::join_all(calls).await;
            }
        });
    })
}

/// The pool with the statistics on, then off, interleaved: per-round rates and the median
/// ratio (on / off).
fn statistics_cost() {
    let mut ratios = Vec::new();
    let (mut on_rates, mut off_rates) = (Vec::new(), Vec::new());
    for round in 0..20 {
        // Alternate which goes first, so that neither always follows the other.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        let mut on = 0.0;
        let mut off = 0.0;
        for statistics in order {
            async_wrap::set_call_statistics(statistics);
            let rate = pool_round();
            if statistics { on = rate } else { off = rate }
        }
        println!(
            "round {round}: statistics on {on:.2} M calls/s, off {off:.2} ({:.3}×)",
            on / off
        );
        ratios.push(on / off);
        on_rates.push(on);
        off_rates.push(off);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    println!(
        "median ratio on/off {:.3}, mean ratio {:.3}; median rates: on {:.2}, off {:.2} M calls/s",
        median(&mut ratios.clone()),
        mean(&ratios),
        median(&mut on_rates),
        median(&mut off_rates)
    );
}

/// With the `metrics` feature: a Prometheus recorder, published to and rendered every 100 ms by
/// a thread of its own, as a scrape far more frequent than usual would (`PROBE_PUBLISH`: what
/// is published, see the file's docs).
#[cfg(feature = "metrics")]
fn publish_meanwhile() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&async_wrap::DURATION_BUCKETS.map(|bound| bound.as_secs_f64()))
        .expect("buckets")
        .install_recorder()
        .expect("the only recorder");
    async_wrap::describe_metrics();
    // PROBE_PUBLISH_MS: how often to publish (0: never, the recorder alone).
    let every: u64 = std::env::var("PROBE_PUBLISH_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(100);
    if every == 0 {
        return;
    }
    // PROBE_PUBLISH=counters: all but the histograms; =rendered: the counters through the
    // recorder, the histograms rendered by async-wrap onto the page.
    let what = std::env::var("PROBE_PUBLISH").unwrap_or_default();
    let (histograms, rendered) = match what.as_str() {
        "counters" => (false, false),
        "rendered" => (false, true),
        "" | "all" => (true, false),
        other => panic!("PROBE_PUBLISH={other}: all, counters or rendered"),
    };
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(every));
            if histograms {
                async_wrap::publish_call_site_metrics();
            } else {
                async_wrap::publish_call_site_counters();
            }
            TWO.publish_metrics();
            let mut page = handle.render();
            if rendered {
                async_wrap::render_call_site_histograms(&mut page);
            }
            std::hint::black_box(page);
        }
    });
}

/// `--rounds N`: N rounds on the pool, one rate per line.
fn rounds(n: usize) {
    #[cfg(feature = "metrics")]
    publish_meanwhile();
    for _ in 0..n {
        println!("{:.4}", pool_round());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--rounds") {
        let n = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .expect("--rounds takes a number");
        rounds(n);
        return;
    }
    if std::env::args().any(|arg| arg == "--statistics") {
        statistics_cost();
        return;
    }
    let only_pool = std::env::args().any(|arg| arg == "--only-pool");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(2)
        .build()
        .expect("a tokio runtime");
    let handle = tokio.handle().clone();
    for round in 0..5 {
        let pool = pool_round();
        if only_pool {
            println!("round {round}: async-wrap max 2 {pool:.2} M calls/s");
            continue;
        }
        let tokio = rate(|| {
            futures::executor::block_on(async {
                for _ in 0..CALLS / 1_000 {
                    let calls = (0..1_000_u64)
                        .map(|i| handle.spawn_blocking(move || std::hint::black_box(i)));
                    futures::future::join_all(calls).await;
                }
            });
        });
        println!(
            "round {round}: async-wrap max 2 {pool:.2} M calls/s, tokio max 2 {tokio:.2} ({:.2}×)",
            pool / tokio
        );
    }
}
