//! Criterion benchmarks of one dispatch: async-wrap's pools against tokio's `spawn_blocking`,
//! `blocking::unblock` and a direct call, for a sequential round trip and for a batch of 1,000
//! calls in flight. `examples/compare.rs` prints the fuller side-by-side table.

use std::hint::black_box;

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

criterion_group!(benches, round_trip, batch);
criterion_main!(benches);
