//! Per-call-site statistics: each `#[async_wrap]` function's counts balance whatever way its
//! calls end, its timings bound what the bodies did, and the table and the reset work. Also the
//! adaptive wait for short calls: who it waits for, and who it never waits for.
//!
//! Each test uses functions of its own (each function is its own call site), so the tests can
//! run in parallel. Durations are asserted only from below (a body that sleeps 20 ms ran at
//! least that long), never as timings.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, mpsc};
use std::task::Context;
use std::time::Duration;

use async_wrap::{BlockingPool, CallStats, async_wrap, call_sites, reset_call_sites};
use futures::FutureExt;
use futures::executor::block_on;
use support::{eventually, within};

const LIMIT: Duration = Duration::from_secs(30);

/// `reset_call_sites` zeroes every site: the test of it runs alone (a write lock), the others
/// beside each other (read locks).
static RESETS: RwLock<()> = RwLock::new(());

fn beside_others() -> RwLockReadGuard<'static, ()> {
    RESETS.read().unwrap_or_else(PoisonError::into_inner)
}

/// The statistics of the function at `path` (`call_sites::name`).
fn stats(name: &str) -> CallStats {
    let path = format!("call_sites::{name}");
    call_sites()
        .get(&path)
        .unwrap_or_else(|| panic!("no call site `{path}` in\n{}", call_sites()))
        .clone()
}

fn assert_balanced(stats: &CallStats) {
    assert_eq!(
        stats.calls,
        stats.in_flight + stats.completed + stats.panicked + stats.cancelled + stats.refused,
        "{stats:?}"
    );
}

// ---- counts ----

static ONE: BlockingPool = BlockingPool::with_max_threads(1).thread_name("one");
static CLOSED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("closed");

/// Blocks until `gate` says go (or its sender is dropped).
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
fn counts_balance_whichever_way_a_call_ends() {
    let _beside = beside_others();
    within(LIMIT, || {
        // Two that return, one that panics.
        assert_eq!(block_on(ends(0)), 0);
        assert_eq!(block_on(ends(2)), 2);
        let panicked = block_on(std::panic::AssertUnwindSafe(ends(1)).catch_unwind());
        assert!(panicked.is_err());

        // One cancelled: queued behind a blocked call on the one-thread pool, then dropped.
        let (go, gate) = mpsc::channel();
        let blocker = std::thread::spawn({
            let gate = Arc::new(Mutex::new(gate));
            move || block_on(gated(gate))
        });
        eventually("the blocker runs", || ONE.metrics().running == 1);
        let mut queued = ends(3);
        let waker = futures::task::noop_waker();
        let polled = Pin::new(&mut queued).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "queued behind the blocker");
        drop(queued);
        go.send(()).unwrap();
        blocker.join().unwrap();

        // One refused.
        CLOSED.shutdown();
        assert!(block_on(refused().checked()).unwrap_err().is_shut_down());

        let ends = stats("ends");
        assert_eq!(
            (
                ends.calls,
                ends.completed,
                ends.panicked,
                ends.cancelled,
                ends.in_flight
            ),
            (4, 2, 1, 1, 0),
            "{ends:?}"
        );
        assert_eq!(ends.run_time.count(), 3, "the cancelled body never ran");
        assert_balanced(&ends);
        let refused = stats("refused");
        assert_eq!(
            (refused.calls, refused.refused, refused.in_flight),
            (1, 1, 0)
        );
        assert_eq!(refused.run_time.count(), 0);
    });
}

#[test]
fn a_call_not_yet_polled_is_not_counted() {
    #[async_wrap(executor = ONE)]
    fn never_polled() {}

    let _beside = beside_others();
    drop(never_polled());
    block_on(never_polled());
    let stats = stats("never_polled");
    assert_eq!((stats.calls, stats.completed), (1, 1));
}

// ---- timings ----

static TWO: BlockingPool = BlockingPool::with_max_threads(1).thread_name("timed");

#[async_wrap(executor = TWO)]
fn held(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = TWO)]
fn sleeps(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn run_times_and_queue_waits_bound_what_the_calls_did() {
    let _beside = beside_others();
    within(LIMIT, || {
        block_on(sleeps(20));
        // A call queued behind a held one waits at least as long as the test holds it.
        let (go, gate) = mpsc::channel();
        let holder = std::thread::spawn({
            let gate = Arc::new(Mutex::new(gate));
            move || block_on(held(gate))
        });
        eventually("the holder runs", || TWO.metrics().running == 1);
        let queued = std::thread::spawn(|| block_on(sleeps(0)));
        eventually("the second call is queued", || TWO.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(30));
        go.send(()).unwrap();
        holder.join().unwrap();
        queued.join().unwrap();

        let sleeps = stats("sleeps");
        assert_eq!(sleeps.calls, 2);
        let run = &sleeps.run_time;
        assert_eq!(run.count(), 2);
        assert!(run.max() >= Duration::from_millis(20), "{run:?}");
        // The percentile is the middle of a bucket a quarter-octave wide: within 12.5 %.
        assert!(run.percentile(1.0) >= Duration::from_millis(17), "{run:?}");
        let wait = &sleeps.queue_wait;
        assert!(wait.max() >= Duration::from_millis(30), "{wait:?}");
        assert!(wait.mean() >= Duration::from_millis(15), "{wait:?}");
    });
}

// ---- reset, the table, where a site is ----

static RESET: BlockingPool = BlockingPool::with_max_threads(1).thread_name("reset");

#[async_wrap(executor = RESET)]
fn across_a_reset(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[test]
fn a_reset_keeps_calls_in_flight_counted_so_the_counts_still_balance() {
    let _alone = RESETS.write().unwrap_or_else(PoisonError::into_inner);
    within(LIMIT, || {
        let (go, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        go.send(()).unwrap();
        block_on(across_a_reset(gate.clone()));
        let running = std::thread::spawn({
            let gate = gate.clone();
            move || block_on(across_a_reset(gate))
        });
        eventually("the call runs", || RESET.metrics().running == 1);
        reset_call_sites();
        let during = stats("across_a_reset");
        assert_eq!(
            (during.calls, during.in_flight, during.completed),
            (1, 1, 0)
        );
        assert_eq!(during.run_time.count(), 0);
        go.send(()).unwrap();
        running.join().unwrap();
        let after = stats("across_a_reset");
        assert_eq!((after.calls, after.in_flight, after.completed), (1, 0, 1));
        assert_balanced(&after);
    });
}

static RACED: BlockingPool = BlockingPool::with_max_threads(2).thread_name("raced");

/// A trivial call, counted in the caller's shard and ended in a pool thread's.
#[async_wrap(executor = RACED)]
fn raced_by_resets() {}

// Before the fix a snapshot read the ends of every shard, then the calls, while a reset moved
// the ends out of each shard and subtracted them from its calls: 13,702 of 1.09 M snapshots
// read `calls` below the ends (`calls 3 < ends 12`).
#[test]
fn a_snapshot_taken_during_a_reset_still_balances() {
    let _alone = RESETS.write().unwrap_or_else(PoisonError::into_inner);
    within(LIMIT, || {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if worker == 0 {
                            block_on(raced_by_resets());
                        } else {
                            // Counted, then cancelled or run: ends in both kinds of shard.
                            let mut call = raced_by_resets();
                            let _ =
                                call.poll_unpin(&mut Context::from_waker(std::task::Waker::noop()));
                        }
                    }
                })
            })
            .collect();
        let resetter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    reset_call_sites();
                    std::thread::yield_now();
                }
            })
        };
        let started = std::time::Instant::now();
        let (mut snapshots, mut unbalanced) = (0_u64, Vec::new());
        while started.elapsed() < Duration::from_millis(1_500) {
            if let Some(row) = call_sites().get("call_sites::raced_by_resets") {
                snapshots += 1;
                let ended = row.completed + row.panicked + row.cancelled + row.refused;
                if row.calls < ended && unbalanced.len() < 5 {
                    unbalanced.push(row.clone());
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.join().unwrap();
        }
        resetter.join().unwrap();
        assert!(snapshots > 0, "no snapshot listed the site");
        assert!(
            unbalanced.is_empty(),
            "of {snapshots} snapshots taken during resets, these read fewer calls than ends: \
             {unbalanced:#?}"
        );
    });
}

#[async_wrap(executor = ONE)]
fn located() {}
const LOCATED_LINE: u32 = line!() - 1;

#[test]
fn a_site_knows_its_function_its_place_and_its_executor_and_the_table_shows_them() {
    let _beside = beside_others();
    block_on(located());
    let stats = stats("located");
    let site = stats.site;
    assert_eq!(site.function(), "call_sites::located");
    assert_eq!((site.file(), site.line()), (file!(), LOCATED_LINE));
    assert_eq!(site.executor(), "ONE");
    assert_eq!(
        site.to_string(),
        format!("call_sites::located ({}:{LOCATED_LINE})", file!())
    );

    let table = call_sites().to_string();
    let header = table.lines().next().unwrap();
    for column in [
        "function",
        "defined at",
        "calls",
        "in flight",
        "run p50",
        "waited (paid)",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = table
        .lines()
        .find(|line| line.starts_with("call_sites::located "))
        .unwrap_or_else(|| panic!("no row for `located` in\n{table}"));
    assert!(
        row.contains(&format!("{}:{LOCATED_LINE}", file!())),
        "{row}"
    );
    // Every line is as wide as the header: a table, not a list.
    let width = header.chars().count();
    for line in table.lines() {
        assert_eq!(line.chars().count(), width, "{table}");
    }
}

// ---- the adaptive wait ----

static ADAPT: BlockingPool = BlockingPool::with_max_threads(2).thread_name("adapt");

#[async_wrap(executor = ADAPT)]
fn trivial(n: u64) -> u64 {
    n + 1
}

#[async_wrap(executor = ADAPT)]
fn blocks_for_2_ms() {
    std::thread::sleep(Duration::from_millis(2));
}

static TURNS_SLOW: AtomicBool = AtomicBool::new(false);

#[async_wrap(executor = ADAPT)]
fn turns_slow() {
    if TURNS_SLOW.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn short_calls_awaited_one_after_another_are_waited_for_and_get_their_results() {
    let _beside = beside_others();
    within(LIMIT, || {
        for n in 0..500 {
            assert_eq!(block_on(trivial(n)), n + 1);
        }
        let stats = stats("trivial");
        // The first call has no run time to go by; after it the pool's thread is idle and
        // the function short: the wait is tried (a loaded machine may make some waits miss).
        assert!(stats.waits > 0, "{stats:?}");
        assert!(stats.waits_paid <= stats.waits && stats.waits < 500);
        assert_balanced(&stats);
    });
}

#[test]
fn a_function_that_blocks_is_never_waited_for() {
    let _beside = beside_others();
    within(LIMIT, || {
        for _ in 0..30 {
            block_on(blocks_for_2_ms());
        }
        assert_eq!(stats("blocks_for_2_ms").waits, 0);
    });
}

#[test]
fn a_function_that_turns_slow_is_waited_for_at_most_once_more() {
    let _beside = beside_others();
    within(LIMIT, || {
        for _ in 0..200 {
            block_on(turns_slow());
        }
        let before = stats("turns_slow").waits;
        TURNS_SLOW.store(true, Ordering::SeqCst);
        for _ in 0..20 {
            block_on(turns_slow());
        }
        // Only the first slow call can be waited for: its run time then rules the others out.
        let after = stats("turns_slow").waits;
        assert!(after - before <= 1, "waited {} times", after - before);
    });
}

static MANY: BlockingPool = BlockingPool::with_max_threads(2).thread_name("many");

#[async_wrap(executor = MANY)]
fn one_of_many(n: u64) -> u64 {
    n
}

#[test]
fn of_calls_made_together_only_the_first_may_be_waited_for() {
    let _beside = beside_others();
    within(LIMIT, || {
        // Short, and known to be: a few sequential calls first.
        for n in 0..20 {
            block_on(one_of_many(n));
        }
        let before = stats("one_of_many").waits;
        // `join_all` makes its futures before it polls the first: only the first of each batch
        // may be waited for, the other 99 are submitted at once.
        for _ in 0..10 {
            let results = block_on(futures::future::join_all((0..100).map(one_of_many)));
            assert_eq!(results, (0..100).collect::<Vec<u64>>());
        }
        let after = stats("one_of_many");
        assert!(
            after.waits - before <= 10,
            "at most one per batch: {after:?}"
        );
        assert_eq!(after.calls, 1_020);
    });
}

/// A tokio task awaiting call after call: the runtime's worker waits (its waker is the task's,
/// the same for every call), and every result is right.
#[test]
fn a_tokio_task_awaiting_call_after_call_gets_every_result() {
    static SUM: AtomicU64 = AtomicU64::new(0);

    #[async_wrap(executor = ADAPT)]
    fn add(n: u64) -> u64 {
        SUM.fetch_add(n, Ordering::SeqCst) + n
    }

    let _beside = beside_others();
    within(LIMIT, || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let total = runtime.block_on(async {
            tokio::spawn(async {
                let mut last = 0;
                for n in 1..=1_000 {
                    last = add(n).await;
                }
                last
            })
            .await
            .unwrap()
        });
        assert_eq!(total, 500_500);
        let stats = stats("add");
        assert_eq!((stats.calls, stats.completed), (1_000, 1_000));
        assert!(stats.waits > 0, "{stats:?}");
    });
}
