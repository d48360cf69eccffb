//! An independent attack on the call-site statistics, the adaptive wait for short calls and
//! the slow-call reports, and on the pool's promise that hostile user code (hooks, wakers,
//! `Drop`) never kills a worker, written from the docs and the public API.
//!
//! Tests whose comment says `FAILS:` showed a defect: 20 of these 26 failed on commit 36ba86b.
//! All pass now; the comment still describes the defect each one caught (three of them now
//! pin what the docs were changed to say, as their own comments explain). Those marked
//! `Held:` held from the start and are kept as regression guards. Hangs fail through the
//! `within` watchdog; durations are used only as watchdogs or lower bounds.

mod support;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock, RwLockReadGuard, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_wrap::{
    BlockingPool, CallStats, QueueFull, SlowCall, Slowness, async_wrap, call_sites,
    reset_call_sites, set_call_statistics, spawn_on,
};
use futures::FutureExt;
use futures::executor::block_on;
use support::{eventually, gate, pool_reporting, within};

const LIMIT: Duration = Duration::from_secs(30);

/// `reset_call_sites` and `set_call_statistics` are process-wide: the tests that call them run
/// alone (a write lock), the others beside each other (read locks).
static GLOBAL: RwLock<()> = RwLock::new(());

fn beside_others() -> RwLockReadGuard<'static, ()> {
    GLOBAL.read().unwrap_or_else(PoisonError::into_inner)
}

/// The statistics of `call_sites_attacks::name`.
fn stats(name: &str) -> CallStats {
    let path = format!("call_sites_attacks::{name}");
    call_sites()
        .get(&path)
        .unwrap_or_else(|| panic!("no call site `{path}` in\n{}", call_sites()))
        .clone()
}

fn balanced(stats: &CallStats) -> bool {
    stats.calls
        == stats.in_flight + stats.completed + stats.panicked + stats.cancelled + stats.refused
}

/// Busy for at least `us` microseconds (a run time bounded from below, not a sleep).
fn spin_for(us: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Silences the panics this file provokes on purpose (their messages start with "attack17:"),
/// leaving every other panic's message to the default hook.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if text.is_some_and(|text| text.starts_with("attack17: quiet")) {
                return;
            }
            default(info);
        }));
    });
}

/// A panic payload whose own `Drop` panics: what `let _ = catch_unwind(..)` drops unguarded.
struct PayloadPanicsOnDrop;

impl Drop for PayloadPanicsOnDrop {
    fn drop(&mut self) {
        panic!("attack17: a panic payload whose Drop panics");
    }
}

/// A call made now on `pool` returns (within 5 s): the pool goes on.
fn assert_a_later_call_runs(pool: &Arc<BlockingPool>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn({
        let pool = pool.clone();
        move || {
            let _ = tx.send(block_on(spawn_on(pool, || 5)));
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).ok(),
        Some(5),
        "a later call on the pool hangs: {:?}",
        pool.metrics()
    );
}

fn reports_of(seen: &Mutex<Vec<SlowCall>>, function: &str) -> Vec<SlowCall> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|slow| slow.function() == function)
        .cloned()
        .collect()
}

fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// The OS threads of this process whose name is `name` (as `/proc` shows it: 15 bytes at most).
fn thread_ids_named(name: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name).then(|| task.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// How many times the thread `tid` of this process has gone to sleep and been woken.
fn voluntary_switches(tid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// ======================================================================================
// The adaptive wait
// ======================================================================================

static ADAPT: BlockingPool = BlockingPool::with_max_threads(4).thread_name("a17adapt");

#[async_wrap(executor = ADAPT)]
fn a17_short(n: u64) -> u64 {
    n + 1
}

/// FAILS: the docs (crate docs "Short calls", adaptive.rs) promise that a thread polling many
/// calls at once, `join_all` named first, "never waits, since each of its calls has its own
/// waker". `futures::future::join_all` of up to 30 futures polls them all with the caller's own
/// waker, so every call of the batch looks like "the next call of the same task": the polling
/// thread waits for the first call's result before it even submits the second, and so on (the
/// batch runs one call at a time). The existing test only tries `join_all` of 100 futures.
#[test]
fn join_all_of_a_few_short_calls_never_waits() {
    let _beside = beside_others();
    within(LIMIT, || {
        for n in 0..300 {
            assert_eq!(block_on(a17_short(n)), n + 1);
        }
        let warm = stats("a17_short");
        assert!(
            warm.waits > 0,
            "control: sequential short calls are waited for: {warm:?}"
        );
        let before = warm.waits;
        for _ in 0..50 {
            let results = block_on(futures::future::join_all((0..8).map(a17_short)));
            assert_eq!(results, (1..9).collect::<Vec<u64>>());
        }
        let after = stats("a17_short");
        // Fixed: all eight futures are made before the first ends, so only the first of each
        // batch may be waited for; the other seven are submitted at once.
        assert!(
            after.waits - before <= 50,
            "join_all of 8 calls (8 in flight on one thread) was waited for {} times in 400 \
             calls: {after:?}",
            after.waits - before
        );
    });
}

static STICKY: BlockingPool = BlockingPool::with_max_threads(2).thread_name("a17sticky");

#[async_wrap(executor = STICKY)]
fn a17_spins(us: u64) {
    spin_for(us);
}

#[async_wrap(executor = STICKY)]
fn a17_spins_control(us: u64) {
    spin_for(us);
}

/// FAILS: "a function with one long call is not waited for until its calls are short again"
/// (crate docs) and "one long run counts at once, and is forgotten a quarter of the way per
/// call" (adaptive.rs). The estimate is written only when it moves by more than an eighth
/// (`call_stats.rs` `ran`): a quarter of the way moves it by more than an eighth only while the
/// run is below half the estimate. So calls of 10 µs (short: at most 14 µs) bring a 400 µs
/// estimate down to about 2 x 10 = 17..20 µs and no further: past the 14 µs limit for good.
/// The function is never waited for again, though every call since the long one was short.
/// No forced long call is needed: any one blip above 20 µs (a preemption, the first call's
/// cold caches) has the same effect on a function of 11..20 µs; run alone, 400 calls of 15 µs
/// (p99 18 µs, one call of 86 µs) got 0 waits.
#[test]
fn a_short_function_is_waited_for_again_after_one_long_call() {
    let _beside = beside_others();
    within(LIMIT, || {
        block_on(a17_spins(400)); // the one long call
        let (before, control_before) = (
            stats_or_zero("a17_spins"),
            stats_or_zero("a17_spins_control"),
        );
        for _ in 0..3_000 {
            block_on(a17_spins(10));
            block_on(a17_spins_control(3));
        }
        let after = stats("a17_spins");
        let control = stats("a17_spins_control").waits - control_before;
        assert!(
            control > 0,
            "control: the 3 µs function beside it is waited for"
        );
        assert!(
            after.waits > before,
            "3,000 calls of 10 µs after one long call, none waited for (run time p50 {:?}, \
             p99 {:?}; the 3 µs function called beside them: {control} waits): {after:?}",
            after.run_time.percentile(0.5),
            after.run_time.percentile(0.99),
        );
    });
}

/// FAILS (hazard): a task awaiting short calls one after another gets each result within its
/// first poll (the adaptive wait), so it never returns `Pending`: on a current-thread runtime
/// the other tasks are not polled at all until its loop ends. Without the wait each call
/// yields to them; tokio's own `spawn_blocking` handle counts against tokio's coop budget (a
/// task yields after 128 ready polls). Here a task doing 3,000 calls starves a task that
/// only yields and counts for hundreds of calls in a row.
#[test]
fn a_task_awaiting_short_calls_in_a_loop_lets_other_tasks_run() {
    let _beside = beside_others();
    within(LIMIT, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (longest, waits) = runtime.block_on(async {
            let polls = Arc::new(AtomicU64::new(0));
            let other = tokio::spawn({
                let polls = polls.clone();
                async move {
                    loop {
                        polls.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                }
            });
            let before = stats_or_zero("a17_short");
            let (mut streak, mut longest) = (0_u64, 0_u64);
            for n in 0..3_000 {
                let seen = polls.load(Ordering::Relaxed);
                assert_eq!(a17_short(n).await, n + 1);
                if polls.load(Ordering::Relaxed) == seen {
                    streak += 1;
                    longest = longest.max(streak);
                } else {
                    streak = 0;
                }
            }
            other.abort();
            (longest, stats_or_zero("a17_short") - before)
        });
        assert!(
            longest <= 128,
            "the other task of the runtime was not polled during {longest} calls in a row \
             ({waits} calls waited for in all)"
        );
    });
}

fn stats_or_zero(name: &str) -> u64 {
    call_sites()
        .get(&format!("call_sites_attacks::{name}"))
        .map_or(0, |stats| stats.waits)
}

/// Held: a function that blocks after many short calls is waited for a bounded number of
/// times, and every caller gets its result (no hang, no lost wake-up).
#[test]
fn a_short_function_that_starts_to_block_costs_few_waits_and_loses_nothing() {
    static BLOCKS: AtomicBool = AtomicBool::new(false);

    #[async_wrap(executor = ADAPT)]
    fn a17_turns_blocking(n: u64) -> u64 {
        if BLOCKS.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(3));
        }
        n
    }

    let _beside = beside_others();
    within(LIMIT, || {
        for n in 0..300 {
            assert_eq!(block_on(a17_turns_blocking(n)), n);
        }
        let before = stats("a17_turns_blocking").waits;
        BLOCKS.store(true, Ordering::SeqCst);
        for n in 0..50 {
            assert_eq!(block_on(a17_turns_blocking(n)), n);
        }
        let after = stats("a17_turns_blocking");
        assert!(after.waits - before <= 1, "{after:?}");
        assert!(balanced(&after) && after.in_flight == 0, "{after:?}");
    });
}

static OTHER: BlockingPool = BlockingPool::with_max_threads(2).thread_name("a17other");

/// Held: short calls waited for from inside a job of another pool, nested `block_on`s, and from
/// a worker of the target pool itself (never waited for there) all return their results.
#[test]
fn short_calls_from_pool_threads_and_nested_block_on_get_their_results() {
    let _beside = beside_others();
    within(LIMIT, || {
        let total = block_on(spawn_on(&OTHER, || {
            let mut total = 0;
            for n in 0..500 {
                total += async_wrap::block_on(a17_short(n));
                total += async_wrap::block_on(async {
                    async_wrap::block_on(a17_short(n)) + a17_short(n).await
                });
            }
            total
        }));
        assert_eq!(total, 3 * (1..=500).sum::<u64>());
        let inside = block_on(spawn_on(&ADAPT, || {
            (0..200)
                .map(|n| async_wrap::block_on(a17_short(n)))
                .sum::<u64>()
        }));
        assert_eq!(inside, (1..=200).sum::<u64>());
    });
}

// ======================================================================================
// Slow-call reports
// ======================================================================================

#[async_wrap(executor = pool)]
fn a17_instant(pool: Arc<BlockingPool>) -> u8 {
    let _ = pool;
    7
}

#[async_wrap(executor = pool)]
fn a17_gated(pool: Arc<BlockingPool>, gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = pool;
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = pool)]
fn a17_sleeps(pool: Arc<BlockingPool>, ms: u64) {
    let _ = pool;
    std::thread::sleep(Duration::from_millis(ms));
}

/// FAILS: the worker takes the job's start time, *then* runs the `slow_queue_wait` report (the
/// user's hook) and only then the body: the hook's time counts as the body's run time. A body
/// that returns at once, queued behind another job, whose queue-wait report takes 300 ms, is
/// reported as having *run* past the 100 ms `slow_call` threshold, and its call-site run time
/// says 300 ms. A quick call reported as slow, and a run-time histogram that lies.
#[test]
fn a_slow_queue_wait_report_does_not_make_a_quick_call_slow() {
    let _beside = beside_others();
    within(LIMIT, || {
        // Log every report; take 300 ms over a queue-wait report.
        let (pool, seen) = {
            let seen = Arc::new(Mutex::new(Vec::<SlowCall>::new()));
            let log = seen.clone();
            let pool = BlockingPool::builder()
                .thread_name("a17qhook")
                .max_threads(1)
                .slow_queue_wait(Duration::from_millis(5))
                .slow_call(Duration::from_millis(100))
                .on_slow_call(move |slow| {
                    log.lock().unwrap().push(slow.clone());
                    if slow.kind() == Slowness::Queued {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                })
                .build()
                .unwrap();
            (Arc::new(pool), seen)
        };
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let quick = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_instant(pool))
        });
        eventually("the quick call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        blocker.join().unwrap();
        assert_eq!(quick.join().unwrap(), 7);

        let reports = reports_of(&seen, "call_sites_attacks::a17_instant");
        let kinds: Vec<Slowness> = reports.iter().map(SlowCall::kind).collect();
        let run = stats("a17_instant").run_time;
        assert_eq!(
            kinds,
            vec![Slowness::Queued],
            "a body that returns at once: {reports:#?}\nits run time as counted: {run:?}"
        );
    });
}

/// FAILS: `report_slow` catches the hook's panic with `let _ = catch_unwind(..)` and drops the
/// payload unguarded: a payload whose `Drop` panics escapes. From the watcher thread, it kills
/// the watcher: later slow calls are no longer reported while they run (the docs: "reports each
/// job that runs past the threshold, once, while it still runs").
#[test]
fn a_hook_panic_with_a_payload_that_panics_on_drop_leaves_the_watcher_alive() {
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let reports = Arc::new(AtomicUsize::new(0));
        let counted = reports.clone();
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17wkill")
                .max_threads(2)
                .slow_call(Duration::from_millis(10))
                .on_slow_call(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    panic::panic_any(PayloadPanicsOnDrop);
                })
                .build()
                .unwrap(),
        );
        let (go, gate1) = gate();
        let first = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate1))
        });
        eventually("the first slow call is reported while it runs", || {
            reports.load(Ordering::SeqCst) == 1
        });
        go.send(()).unwrap();
        first.join().unwrap();
        assert_eq!(
            thread_ids_named("a17wkill-watche").len(),
            1,
            "the watcher thread died of the hook's payload"
        );
        // A second slow call: reported while it runs only if the watcher lives. (Left running
        // on a detached thread: its end would be reported by its worker, which the same
        // payload kills, see the next test.)
        let (_go2, gate2) = gate();
        std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate2))
        });
        eventually("the second slow call is reported while it runs", || {
            reports.load(Ordering::SeqCst) == 2
        });
    });
}

/// FAILS: the same payload from a `slow_queue_wait` report, which runs on the worker: it
/// unwinds out of the worker's loop and kills the thread. The queued job is dropped unrun (its
/// caller's future panics "dropped the job ... without running it"), the pool still counts the
/// dead thread, and with `max_threads(1)` every later call hangs. The contract: "User code
/// called by the pool (wakers, hooks, `Drop` of user values, user executors) may panic: that
/// never kills a worker, skips a count, or leaves a lock held."
#[test]
fn a_queue_wait_hook_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17qkill")
                .max_threads(1)
                .slow_queue_wait(Duration::from_millis(5))
                .on_slow_call(|_| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let queued = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_instant(pool).checked()).map_err(|err| err.to_string())
        });
        eventually("the second call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        blocker.join().unwrap();
        let queued = queued.join().unwrap();
        assert_eq!(queued, Ok(7), "the queued call");
        // The pool goes on.
        assert_a_later_call_runs(&pool);
    });
}

/// FAILS: the same for a waker (`wake_guarded` also drops the caught payload unguarded): a
/// waker whose `wake` panics with such a payload kills the worker that wakes it; the pool
/// (`max_threads` 1) still counts the dead thread and the next call hangs.
#[test]
fn a_waker_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    struct Hostile;
    impl Wake for Hostile {
        fn wake(self: Arc<Self>) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17wakr")
                .max_threads(1)
                .build()
                .unwrap(),
        );
        let hostile = Waker::from(Arc::new(Hostile));
        let mut call = spawn_on(pool.clone(), || {
            std::thread::sleep(Duration::from_millis(20));
            3
        });
        assert!(poll_once(&mut call, &hostile).is_pending());
        // The worker wakes `hostile` when the body returns.
        eventually("the job ran", || pool.metrics().completed == 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(poll_once(&mut call, &noop_waker()), Poll::Ready(3));
        assert_a_later_call_runs(&pool);
    });
}

/// FAILS: the same for `on_thread_start` (`run_hook` drops the caught payload unguarded).
#[test]
fn a_start_hook_panic_with_a_payload_that_panics_on_drop_kills_no_worker() {
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17start")
                .max_threads(1)
                .on_thread_start(|| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn({
            let pool = pool.clone();
            move || {
                let _ = tx.send(block_on(spawn_on(pool, || 5)));
            }
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).ok(),
            Some(5),
            "the call hangs: {:?}",
            pool.metrics()
        );
    });
}

/// FAILS: the same for a result dropped on the worker after its future is gone
/// (`drop_guarded` drops the caught payload unguarded): the worker dies inside `run`, leaving
/// its slot marked as running a job for ever, and the next call hangs.
#[test]
fn a_result_whose_drop_panics_with_such_a_payload_kills_no_worker() {
    struct ResultPanicsOnDrop;
    impl Drop for ResultPanicsOnDrop {
        fn drop(&mut self) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17rdrop")
                .max_threads(1)
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let mut call = spawn_on(pool.clone(), move || {
            let _ = gate.lock().unwrap().recv();
            ResultPanicsOnDrop
        });
        assert!(poll_once(&mut call, &noop_waker()).is_pending());
        eventually("the job runs", || pool.metrics().running == 1);
        drop(call);
        go.send(()).unwrap();
        assert_a_later_call_runs(&pool);
    });
}

/// FAILS: a job run inline is never reported, however long it runs: `run_inline` (the
/// `QueueFull::RunOnCaller` policy, and a nested call on a saturated pool) runs the body
/// without the running-job record the watcher reads and without the end-of-job check. The docs
/// promise the pool "reports each job that runs past the threshold".
#[test]
fn a_call_run_on_the_caller_past_the_threshold_is_reported() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("a17inline", |b| {
            b.max_threads(1)
                .queue_capacity(0, QueueFull::RunOnCaller)
                .slow_call(Duration::from_millis(10))
        });
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        // The queue is full (capacity 0, the only thread busy): this runs here, for 80 ms.
        block_on(a17_sleeps(pool.clone(), 80));
        assert_eq!(pool.metrics().inline, 1, "it ran on the caller");
        go.send(()).unwrap();
        blocker.join().unwrap();
        let reports = reports_of(&seen, "call_sites_attacks::a17_sleeps");
        assert_eq!(
            reports.len(),
            1,
            "a call that ran 80 ms on a pool with a 10 ms threshold: all reports: {:#?}",
            seen.lock().unwrap()
        );
    });
}

/// FAILS: the nested form: a job on a one-thread pool waits on a call to the same pool, which
/// runs inline for 80 ms; only the outer job is ever reported.
#[test]
fn a_nested_call_run_inline_past_the_threshold_is_reported() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("a17nest", |b| {
            b.max_threads(1).slow_call(Duration::from_millis(10))
        });
        let inner_pool = pool.clone();
        block_on(spawn_on(pool.clone(), move || {
            async_wrap::block_on(a17_sleeps(inner_pool, 80));
        }));
        assert_eq!(pool.metrics().inline, 1, "the nested call ran inline");
        let reports = reports_of(&seen, "call_sites_attacks::a17_sleeps");
        assert_eq!(
            reports.len(),
            1,
            "the nested call ran 80 ms; all reports: {:#?}",
            seen.lock().unwrap()
        );
    });
}

/// FAILS: a job first polled elsewhere and then run inline by a worker of its pool (the
/// "Nesting" rule, `run_waiting_here`) stays in the queue as an empty entry; when a thread pops
/// that entry later, `check_queue_wait` reports the call as having waited for a thread from its
/// submission to that pop, though its body ran long before (within a millisecond of its
/// submission here). A quick call reported, with a made-up wait.
#[test]
fn a_call_already_run_inline_is_not_reported_as_queued_when_its_stale_entry_is_popped() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("a17stale", |b| {
            b.max_threads(1).slow_queue_wait(Duration::from_millis(50))
        });
        let (send, receive) = mpsc::channel::<async_wrap::BlockingFuture<u8>>();
        let receive = Mutex::new(receive);
        let outer = std::thread::spawn({
            let pool = pool.clone();
            move || {
                block_on(spawn_on(pool, move || {
                    let call = receive.lock().unwrap().recv().unwrap();
                    let value = async_wrap::block_on(call);
                    // The thread stays busy: the stale queue entry is popped only after this.
                    std::thread::sleep(Duration::from_millis(300));
                    value
                }))
            }
        });
        eventually("the outer job runs", || pool.metrics().running == 1);
        let mut call = a17_instant(pool.clone());
        assert!(poll_once(&mut call, &noop_waker()).is_pending());
        assert_eq!(pool.metrics().queued, 1);
        send.send(call).unwrap();
        assert_eq!(outer.join().unwrap(), 7);
        eventually("the pool is idle", || {
            let m = pool.metrics();
            m.queued == 0 && m.running == 0
        });
        let reports = reports_of(&seen, "call_sites_attacks::a17_instant");
        assert!(
            reports.is_empty(),
            "a call run inline within a millisecond of its submission: {reports:#?}"
        );
    });
}

/// FAILS (debatable): a call whose future was dropped while it was queued never starts, yet it
/// is reported as `Slowness::Queued`, "waited ... for a thread before it started".
#[test]
fn a_call_dropped_while_queued_is_not_reported_as_started() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("a17cancel", |b| {
            b.max_threads(1).slow_queue_wait(Duration::from_millis(20))
        });
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let mut call = a17_instant(pool.clone());
        assert!(poll_once(&mut call, &noop_waker()).is_pending());
        drop(call);
        std::thread::sleep(Duration::from_millis(60));
        go.send(()).unwrap();
        blocker.join().unwrap();
        // (The blocker's caller is woken once its thread has taken the next job: wait for that
        // job's end, not for an idle-looking pool.)
        eventually("the dropped call is skipped", || {
            pool.metrics().cancelled == 1
        });
        let reports = reports_of(&seen, "call_sites_attacks::a17_instant");
        assert!(
            reports.is_empty(),
            "a call whose body never started: {reports:#?}"
        );
    });
}

/// FAILS (CPU): the watcher of a pool with `slow_call` wakes every quarter of the threshold
/// (at least every millisecond) for as long as the pool exists, even when the pool has no
/// thread left and nothing to watch: an idle `static` pool with `slow_call(4 ms)` wakes a
/// thread 1,000 times a second for ever.
#[test]
fn the_watcher_of_an_idle_pool_without_threads_sleeps() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, _seen) = pool_reporting("a17idle", |b| {
            b.slow_call(Duration::from_millis(4))
                .keep_alive(Duration::from_millis(20))
        });
        block_on(spawn_on(pool.clone(), || ()));
        eventually("the pool's threads have left", || {
            pool.metrics().threads == 0
        });
        let watcher = thread_ids_named("a17idle-watcher");
        assert_eq!(watcher.len(), 1, "the watcher thread");
        let before = voluntary_switches(&watcher[0]);
        std::thread::sleep(Duration::from_millis(500));
        let woken = voluntary_switches(&watcher[0]) - before;
        assert_eq!(pool.metrics().threads, 0);
        assert!(
            woken < 20,
            "the watcher of a pool with no thread woke {woken} times in 500 ms"
        );
    });
}

/// Held: a hook that shuts the pool down, from the watcher thread and from a worker (the end
/// of a job the watcher did not see), neither deadlocks nor loses a call.
#[test]
fn a_hook_that_shuts_the_pool_down_neither_deadlocks_nor_loses_a_call() {
    let _beside = beside_others();
    within(LIMIT, || {
        for from_worker in [false, true] {
            let me: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
            let hook_pool = me.clone();
            let reports = Arc::new(AtomicUsize::new(0));
            let counted = reports.clone();
            let threshold = Duration::from_millis(10);
            let mut builder = BlockingPool::builder()
                .thread_name("a17hookdown")
                .max_threads(1)
                .on_slow_call(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let pool = hook_pool.lock().unwrap().clone();
                    if let Some(pool) = pool.and_then(|weak| weak.upgrade()) {
                        pool.shutdown();
                    }
                });
            builder = if from_worker {
                builder.slow_queue_wait(threshold)
            } else {
                builder.slow_call(threshold)
            };
            let pool = Arc::new(builder.build().unwrap());
            *me.lock().unwrap() = Some(Arc::downgrade(&pool));
            let (go, gate) = gate();
            let blocker = std::thread::spawn({
                let pool = pool.clone();
                move || block_on(a17_gated(pool, gate))
            });
            eventually("the blocker runs", || pool.metrics().running == 1);
            let queued = std::thread::spawn({
                let pool = pool.clone();
                move || block_on(a17_instant(pool).checked()).map_err(|e| e.to_string())
            });
            eventually("the second call is queued", || pool.metrics().queued == 1);
            std::thread::sleep(Duration::from_millis(40));
            go.send(()).unwrap();
            blocker.join().unwrap();
            assert_eq!(queued.join().unwrap(), Ok(7), "from_worker: {from_worker}");
            eventually("shut down", || pool.is_shut_down());
            assert!(reports.load(Ordering::SeqCst) >= 1);
        }
    });
}

// ======================================================================================
// Counts under races
// ======================================================================================

static RACE: BlockingPool = BlockingPool::with_max_threads(3).thread_name("a17race");

#[async_wrap(executor = RACE)]
fn a17_always_panics() {
    spin_for(1);
    panic!("attack17: quiet, the body always panics");
}

/// One call of `a17_always_panics`, its panic caught.
fn panicking_call() {
    let caught = block_on(AssertUnwindSafe(a17_always_panics()).catch_unwind());
    assert!(caught.is_err());
}

/// FAILS (racy): `reset_call_sites` racing calls that end. The run-time histogram is zeroed
/// first and `panicked` only after the whole sweep, while a call's end adds its run and then
/// its panic: a panicking call whose run is counted after its bucket was swept and whose panic
/// is counted before `panicked` is zeroed stays counted as *completed* (completed = runs -
/// panicked), though the function only ever panics; the same sweep zeroes `max` and `sum` after
/// the buckets, which can leave a run counted with a maximum of 0 (checked too); a reset
/// between a wait's `waits` and `waits_paid` adds leaves more waits paid than made (checked).
/// A reset thread preempted inside its sweep turns a whole batch of panics into completions.
#[test]
fn reset_racing_the_ends_of_panicking_calls_keeps_the_counts_right() {
    quiet_panics();
    let _alone = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    within(Duration::from_secs(120), || {
        let mut wrong = Vec::new();
        for round in 0..1_000_u64 {
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    std::thread::spawn(|| {
                        for _ in 0..40 {
                            panicking_call();
                        }
                    })
                })
                .collect();
            spin_for(round % 97 * 10);
            reset_call_sites();
            for caller in callers {
                caller.join().unwrap();
            }
            let row = stats("a17_always_panics");
            let run = &row.run_time;
            if row.completed != 0
                || !balanced(&row)
                || row.in_flight != 0
                || (run.count() > 0 && run.max() < Duration::from_micros(1))
                || row.waits_paid > row.waits
            {
                wrong.push((round, row));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} rounds of 1,000 ended with wrong counts (calls, completed, panicked, in flight, \
             runs, run max): {:?}\nthe first: {:#?}",
            wrong.len(),
            wrong
                .iter()
                .map(|(_, row)| (
                    row.calls,
                    row.completed,
                    row.panicked,
                    row.in_flight,
                    row.run_time.count(),
                    row.run_time.max()
                ))
                .collect::<Vec<_>>(),
            wrong.first()
        );
    });
}

#[async_wrap(executor = RACE)]
fn a17_panics_too() {
    panic!("attack17: quiet, this body panics too");
}

/// FAILS (transient): without any reset, a snapshot taken while calls of a function that always
/// panics end can show one of them as *completed*: a call's end writes its run and then its
/// panic, and `completed` is derived as runs - panicked (read in the other order, which keeps
/// it from going negative but lets it go up by one). `completed` is documented as "Calls whose
/// body returned".
#[test]
fn a_snapshot_never_shows_a_panicking_call_as_completed() {
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let stop = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let caught = block_on(AssertUnwindSafe(a17_panics_too()).catch_unwind());
                        assert!(caught.is_err());
                    }
                })
            })
            .collect();
        let (mut snapshots, mut completed) = (0_u64, Vec::new());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Some(row) = call_sites().get("call_sites_attacks::a17_panics_too") {
                snapshots += 1;
                if row.completed > 0 && completed.len() < 3 {
                    completed.push(row.clone());
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        for caller in callers {
            caller.join().unwrap();
        }
        assert!(
            completed.is_empty(),
            "of {snapshots} snapshots, some showed a completed call: {completed:#?}"
        );
    });
}

#[async_wrap(executor = RACE)]
fn a17_mixed(how: u8, gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>) -> u8 {
    if let Some(gate) = gate {
        let _ = gate.lock().unwrap().recv_timeout(Duration::from_millis(2));
    }
    assert!(how != 1, "attack17: quiet, mixed panics");
    how
}

/// Held: `set_call_statistics` toggled and `reset_call_sites` called while calls complete,
/// panic and are cancelled: once all have ended the counts balance with nothing in flight.
#[test]
fn statistics_toggled_and_reset_while_calls_race_still_balance() {
    quiet_panics();
    let _alone = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    within(Duration::from_secs(60), || {
        let stop = Arc::new(AtomicBool::new(false));
        let toggler = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut on = false;
                while !stop.load(Ordering::SeqCst) {
                    set_call_statistics(on);
                    on = !on;
                    if on {
                        reset_call_sites();
                    }
                    std::thread::yield_now();
                }
                set_call_statistics(true);
            }
        });
        let callers: Vec<_> = (0..3_u8)
            .map(|who| {
                std::thread::spawn(move || {
                    for i in 0..400_u32 {
                        let how = u8::try_from(i % 3).unwrap();
                        let (_go, gate) = gate();
                        let mut call = a17_mixed(how, Some(gate));
                        if (i + u32::from(who)) % 4 == 0 {
                            // Dropped after one poll: cancelled if still queued.
                            let _ = poll_once(&mut call, &noop_waker());
                            drop(call);
                        } else {
                            let caught = block_on(AssertUnwindSafe(call).catch_unwind());
                            assert_eq!(caught.is_err(), how == 1);
                        }
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        toggler.join().unwrap();
        // (If every call raced the switch while it was off, none was counted, and the site is
        // not listed: nothing to balance.)
        let row = || call_sites().get("call_sites_attacks::a17_mixed").cloned();
        eventually("every call of a17_mixed has ended", || {
            row().is_none_or(|row| row.in_flight == 0)
        });
        if let Some(row) = row() {
            assert!(balanced(&row), "{row:?}");
        }
    });
}

// ======================================================================================
// Odds and ends
// ======================================================================================

struct Alpha;
struct Beta;

impl Alpha {
    #[async_wrap(executor = ADAPT)]
    fn process(self) -> u8 {
        1
    }
}

impl Beta {
    #[async_wrap(executor = ADAPT)]
    fn process(self) -> u8 {
        2
    }
}

/// FAILS (minor): a method's call site is named `module::method`, without its type (the macro
/// uses `concat!(module_path!(), "::", name)`): two types' `process` methods in one module are
/// two rows both named `call_sites_attacks::process`, `CallSites::get("call_sites_attacks::process")` returns
/// either, and a slow-call report says only "`call_sites_attacks::process`" (its `file:line` tells them
/// apart). `CallSite::function` is documented as "The wrapped function's path".
#[test]
fn methods_of_two_types_have_call_sites_told_apart_by_their_line() {
    let _beside = beside_others();
    within(LIMIT, || {
        assert_eq!(block_on(Alpha.process()), 1);
        assert_eq!(block_on(Beta.process()), 2);
        let sites = call_sites();
        // Kept, and documented (`CallSites`): the attribute does not see the `impl` it is in,
        // so a method is named `module::method`; the two rows are told apart by their line.
        let rows: Vec<(&str, u32)> = sites
            .iter()
            .map(|row| (row.site.function(), row.site.line()))
            .filter(|(name, _)| name.ends_with("::process"))
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows.iter()
                .all(|(name, _)| *name == "call_sites_attacks::process"),
            "{rows:?}"
        );
        assert_ne!(rows[0].1, rows[1].1, "told apart by their line: {rows:?}");
    });
}

/// Held: a hook that re-enters the pool (its metrics, the call-site table, and a call on the
/// same one-thread pool, waited for with `block_on`) from the watcher thread and from a worker
/// (a queue-wait report) neither deadlocks nor loses a call.
#[test]
fn a_hook_that_calls_back_into_the_pool_neither_deadlocks_nor_loses_a_call() {
    let _beside = beside_others();
    within(LIMIT, || {
        let me: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
        let hook_pool = me.clone();
        let nested = Arc::new(AtomicU64::new(0));
        let nested_sum = nested.clone();
        let hooks = Arc::new(AtomicU64::new(0));
        let hooks_run = hooks.clone();
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17reenter")
                .max_threads(1)
                .slow_call(Duration::from_millis(10))
                .slow_queue_wait(Duration::from_millis(10))
                .on_slow_call(move |_| {
                    hooks_run.fetch_add(1, Ordering::SeqCst);
                    let pool = hook_pool.lock().unwrap().clone();
                    if let Some(pool) = pool.and_then(|weak| weak.upgrade()) {
                        let _ = pool.metrics();
                        let _ = call_sites().to_string();
                        let got = async_wrap::block_on(spawn_on(pool, || 40_u64)) + 2;
                        nested_sum.fetch_add(got, Ordering::SeqCst);
                    }
                })
                .build()
                .unwrap(),
        );
        *me.lock().unwrap() = Some(Arc::downgrade(&pool));
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let queued = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_instant(pool))
        });
        eventually("the second call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(40));
        go.send(()).unwrap();
        blocker.join().unwrap();
        assert_eq!(queued.join().unwrap(), 7);
        // At least one report from the watcher (the blocker) and one from the worker (the queue
        // wait; the watcher's own nested call may wait past the threshold too): every hook's
        // nested call returns.
        eventually("every hook's nested call returned", || {
            let hooks = hooks.load(Ordering::SeqCst);
            hooks >= 2 && nested.load(Ordering::SeqCst) == 42 * hooks
        });
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
    });
}

/// FAILS: the stop hook with such a payload (`run_hook` again): the thread dies after leaving
/// the pool's thread count but before its exit is recorded (`exiting` stays 1), so
/// `shutdown` waits for it for ever (here: `shutdown_timeout` reports it incomplete long after
/// the last thread is gone), and the watcher, if any, never leaves.
#[test]
fn a_stop_hook_panic_with_a_payload_that_panics_on_drop_does_not_wedge_shutdown() {
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17stop")
                .max_threads(1)
                .on_thread_stop(|| panic::panic_any(PayloadPanicsOnDrop))
                .build()
                .unwrap(),
        );
        assert_eq!(block_on(spawn_on(pool.clone(), || 5)), 5);
        let report = pool.shutdown_timeout(Duration::from_secs(5));
        assert!(
            report.is_complete(),
            "shutdown did not complete in 5 s with no job left: {report:?}; {:?}",
            pool.metrics()
        );
    });
}

/// FAILS: `close` (shutdown) wakes the futures waiting for room with `wake_guarded`, which lets
/// such a payload escape: `shutdown` itself panics half-way, and the waiters after the hostile
/// one are never woken: their futures hang instead of being refused.
#[test]
fn a_waiting_waker_panic_with_such_a_payload_does_not_strand_the_other_waiters() {
    struct Hostile;
    impl Wake for Hostile {
        fn wake(self: Arc<Self>) {
            panic::panic_any(PayloadPanicsOnDrop);
        }
    }
    quiet_panics();
    let _beside = beside_others();
    within(LIMIT, || {
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("a17wait")
                .max_threads(1)
                .queue_capacity(0, QueueFull::Wait)
                .build()
                .unwrap(),
        );
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || block_on(a17_gated(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        // First waiter: a hostile waker.
        let hostile = Waker::from(Arc::new(Hostile));
        let mut first = spawn_on(pool.clone(), || 1_u8).checked();
        assert!(poll_once(&mut first, &hostile).is_pending());
        // Second waiter: an honest caller.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn({
            let pool = pool.clone();
            move || {
                let _ =
                    tx.send(block_on(spawn_on(pool, || 2_u8).checked()).map_err(|e| e.to_string()));
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let shutdown = std::thread::spawn({
            let pool = pool.clone();
            move || panic::catch_unwind(AssertUnwindSafe(|| pool.shutdown())).is_ok()
        });
        std::thread::sleep(Duration::from_millis(50));
        go.send(()).unwrap();
        blocker.join().unwrap();
        let second = rx.recv_timeout(Duration::from_secs(5));
        let shutdown_returned = shutdown.join().unwrap();
        assert!(
            matches!(&second, Ok(Err(message)) if message.contains("shut down")),
            "the honest waiter: {second:?} (shutdown returned normally: {shutdown_returned})"
        );
        assert!(shutdown_returned, "shutdown panicked");
    });
}

/// Held: the watcher of a pool dropped without a shutdown (its threads still alive, one of them
/// running a slow job when the pool is dropped) leaves once that job has ended; the job is
/// reported once.
#[test]
fn the_watcher_of_a_pool_dropped_without_shutdown_leaves() {
    let _beside = beside_others();
    within(LIMIT, || {
        let (pool, seen) = pool_reporting("a17dropw", |b| b.slow_call(Duration::from_millis(10)));
        let (go, gate) = gate();
        let call = a17_gated(pool.clone(), gate);
        let caller = std::thread::spawn(move || block_on(call));
        eventually("the watcher runs", || {
            thread_ids_named("a17dropw-watche").len() == 1
        });
        eventually("the report", || seen.lock().unwrap().len() == 1);
        drop(pool);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        caller.join().unwrap();
        eventually("the watcher leaves", || {
            thread_ids_named("a17dropw-watche").is_empty()
        });
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

/// FAILS (minor, docs): the crate docs say "[`call_sites`] lists every function called so
/// far", and `call_sites`' own docs "every call site that has been called"; a function called
/// only while statistics are off is not listed at all (a site registers with its first
/// *counted* call), so a table printed after `set_call_statistics(false)` silently lacks it.
#[test]
fn a_function_called_only_with_statistics_off_is_not_listed() {
    #[async_wrap(executor = ADAPT)]
    fn a17_called_while_off() -> u8 {
        3
    }

    let _alone = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    within(LIMIT, || {
        set_call_statistics(false);
        let value = block_on(a17_called_while_off());
        set_call_statistics(true);
        assert_eq!(value, 3);
        // The docs now say what holds: only functions with a counted call are listed.
        let listed = call_sites()
            .iter()
            .any(|row| row.site.function() == "call_sites_attacks::a17_called_while_off");
        assert!(!listed, "an uncounted call was listed:\n{}", call_sites());
        block_on(a17_called_while_off());
        let row = call_sites()
            .iter()
            .find(|row| row.site.function() == "call_sites_attacks::a17_called_while_off")
            .cloned()
            .expect("listed after a counted call");
        assert_eq!((row.calls, row.completed), (1, 1));
    });
}
