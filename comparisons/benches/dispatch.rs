//! Criterion benchmarks of one dispatch: async-wrap's pools against tokio's `spawn_blocking`,
//! `blocking::unblock` and a direct call, for a sequential round trip (under `block_on`, and
//! awaited in a task of a multi-thread tokio runtime, with the adaptive wait and without) and
//! for a batch of 1,000 calls in flight. `examples/compare.rs` prints the fuller side-by-side
//! table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use futures::future::join_all;

static TWO: BlockingPool = BlockingPool::with_max_threads(2);

/// The attribute's shim, to compare with calling the runtime by hand.
#[async_wrap(executor = TWO)]
fn wrapped(n: u64) -> u64 {
    black_box(n)
}

fn round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let handle = runtime.handle().clone();
    let mut group = c.benchmark_group("round trip under block_on");
    group.bench_function("direct call", |b| b.iter(|| black_box(1_u64)));
    group.bench_function("async-wrap default pool", |b| {
        b.iter(|| block_on(async_wrap::spawn(|| black_box(1_u64))));
    });
    group.bench_function("async-wrap max 2 (spawn_on)", |b| {
        b.iter(|| block_on(async_wrap::spawn_on(&TWO, || black_box(1_u64))));
    });
    group.bench_function("async-wrap max 2 (#[async_wrap] shim)", |b| {
        b.iter(|| block_on(wrapped(1)));
    });
    group.bench_function("tokio spawn_blocking", |b| {
        b.iter(|| block_on(handle.spawn_blocking(|| black_box(1_u64))).unwrap());
    });
    group.bench_function("blocking::unblock", |b| {
        b.iter(|| block_on(blocking::unblock(|| black_box(1_u64))));
    });
    group.finish();
}

/// `iters` sequential calls made by `call`, awaited in one task of `runtime`: the time they took.
fn in_task<F>(runtime: &tokio::runtime::Runtime, iters: u64, call: fn() -> F) -> Duration
where
    F: std::future::Future<Output = u64> + Send + 'static,
{
    let task = runtime.spawn(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call().await);
        }
        start.elapsed()
    });
    runtime.block_on(task).unwrap()
}

fn round_trip_in_a_task(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("round trip awaited in a tokio task");
    group.bench_function("short function, adaptive (statistics on)", |b| {
        b.iter_custom(|iters| {
            async_wrap::set_call_statistics(true);
            in_task(&runtime, iters, || wrapped(1))
        });
    });
    group.bench_function("short function, statistics off (no adaptive wait)", |b| {
        b.iter_custom(|iters| {
            async_wrap::set_call_statistics(false);
            let took = in_task(&runtime, iters, || wrapped(1));
            async_wrap::set_call_statistics(true);
            took
        });
    });
    group.bench_function("tokio spawn_blocking", |b| {
        b.iter_custom(|iters| {
            in_task(&runtime, iters, || async {
                tokio::task::spawn_blocking(|| black_box(1_u64))
                    .await
                    .unwrap()
            })
        });
    });
    group.finish();
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let handle = runtime.handle().clone();
    let mut group = c.benchmark_group("1,000 calls in flight");
    group.throughput(criterion::Throughput::Elements(1_000));
    let n = 1_000;
    group.bench_with_input(BenchmarkId::new("async-wrap max 2", n), &n, |b, &n| {
        b.iter(|| {
            block_on(join_all(
                (0..n).map(|i| async_wrap::spawn_on(&TWO, move || black_box(i))),
            ))
        });
    });
    group.bench_with_input(BenchmarkId::new("tokio spawn_blocking", n), &n, |b, &n| {
        b.iter(|| {
            block_on(join_all(
                (0..n).map(|i| handle.spawn_blocking(move || black_box(i))),
            ))
        });
    });
    group.bench_with_input(BenchmarkId::new("blocking::unblock", n), &n, |b, &n| {
        b.iter(|| {
            block_on(join_all(
                (0..n).map(|i| blocking::unblock(move || black_box(i))),
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, round_trip, round_trip_in_a_task, batch);
criterion_main!(benches);
