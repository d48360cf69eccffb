//! Per-call-site statistics: each `#[async_wrap]` function's counts balance however its calls
//! end and whatever races them (resets, the statistics switch, snapshots, waits for room), its
//! timings bound what the bodies did, and the table says where each site is.

use crate::support::{
    LIMIT, assert_balanced, balanced, eventually, gate, poll_noop, quiet_panics, spin_for,
    statistics_alone, statistics_shared, stats_of, within,
};
use async_wrap::{
    BlockingPool, CallStats, QueueFull, async_wrap, call_sites, reset_call_sites,
    set_call_statistics,
};
use futures::FutureExt;
use futures::executor::block_on;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Context;
use std::thread;
use std::time::{Duration, Instant};

/// The statistics of this module's function `name`.
fn stats(name: &str) -> CallStats {
    let path = format!("{}::{name}", module_path!());
    stats_of(&path).unwrap_or_else(|| panic!("no call site `{path}` in\n{}", call_sites()))
}

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
    let _beside = statistics_shared();
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

    let _beside = statistics_shared();
    drop(never_polled());
    block_on(never_polled());
    let stats = stats("never_polled");
    assert_eq!((stats.calls, stats.completed), (1, 1));
}

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
    let _beside = statistics_shared();
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

static RESET: BlockingPool = BlockingPool::with_max_threads(1).thread_name("reset");

#[async_wrap(executor = RESET)]
fn across_a_reset(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[test]
fn a_reset_keeps_calls_in_flight_counted_so_the_counts_still_balance() {
    let _alone = statistics_alone();
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
    let _alone = statistics_alone();
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
            if let Some(row) = call_sites().get(site!("raced_by_resets")) {
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
    let _beside = statistics_shared();
    block_on(located());
    let stats = stats("located");
    let site = stats.site;
    assert_eq!(site.function(), site!("located"));
    assert_eq!((site.file(), site.line()), (file!(), LOCATED_LINE));
    assert_eq!(site.executor(), "ONE");
    assert_eq!(
        site.to_string(),
        format!("{} ({}:{LOCATED_LINE})", site!("located"), file!())
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
        .find(|line| line.starts_with(&format!("{} ", site!("located"))))
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

static FOUR: BlockingPool = BlockingPool::with_max_threads(4).thread_name("four");

static RACE: BlockingPool = BlockingPool::with_max_threads(3).thread_name("race");

#[async_wrap(executor = RACE)]
fn always_panics() {
    spin_for(1);
    panic!("on purpose: the body always panics");
}

/// One call of `always_panics`, its panic caught.
fn panicking_call() {
    let caught = block_on(AssertUnwindSafe(always_panics()).catch_unwind());
    assert!(caught.is_err());
}

/// Before the fix (racy): `reset_call_sites` racing calls that end. The run-time histogram is zeroed
/// first and `panicked` only after the whole sweep, while a call's end adds its run and then
/// its panic: a panicking call whose run is counted after its bucket was swept and whose panic
/// is counted before `panicked` is zeroed stays counted as *completed* (completed = runs -
/// panicked), though the function only ever panics; the same sweep zeroes `max` and `sum` after
/// the buckets, which can leave a run counted with a maximum of 0 (checked too); a reset
/// between a wait's `waits` and `waits_paid` adds leaves more waits paid than made (checked).
/// A reset thread preempted inside its sweep turns a whole batch of panics into completions.
/// Later (1 round in 1,000 on a loaded machine): a run whose bucket add came after the sweep
/// and whose maximum came before it stayed counted with a maximum of 0; snapshots now bound
/// the sum and the maximum by the buckets (`Timings::settle`).
#[test]
fn reset_racing_the_ends_of_panicking_calls_keeps_the_counts_right() {
    quiet_panics();
    let _alone = statistics_alone();
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
            let row = stats("always_panics");
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
fn panics_too() {
    panic!("on purpose: this body panics too");
}

/// Before the fix (transient): without any reset, a snapshot taken while calls of a function that always
/// panics end can show one of them as *completed*: a call's end writes its run and then its
/// panic, and `completed` is derived as runs - panicked (read in the other order, which keeps
/// it from going negative but lets it go up by one). `completed` is documented as "Calls whose
/// body returned".
#[test]
fn a_snapshot_never_shows_a_panicking_call_as_completed() {
    quiet_panics();
    let _beside = statistics_shared();
    within(LIMIT, || {
        let stop = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let caught = block_on(AssertUnwindSafe(panics_too()).catch_unwind());
                        assert!(caught.is_err());
                    }
                })
            })
            .collect();
        let (mut snapshots, mut completed) = (0_u64, Vec::new());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Some(row) = call_sites().get(site!("panics_too")) {
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
fn ends_as_told(how: u8, gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>) -> u8 {
    if let Some(gate) = gate {
        let _ = gate.lock().unwrap().recv_timeout(Duration::from_millis(2));
    }
    assert!(how != 1, "on purpose: mixed panics");
    how
}

/// `set_call_statistics` toggled and `reset_call_sites` called while calls complete,
/// panic and are cancelled: once all have ended the counts balance with nothing in flight.
#[test]
fn statistics_toggled_and_reset_while_calls_race_still_balance() {
    quiet_panics();
    let _alone = statistics_alone();
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
                        let mut call = ends_as_told(how, Some(gate));
                        if (i + u32::from(who)) % 4 == 0 {
                            // Dropped after one poll: cancelled if still queued.
                            let _ = poll_noop(&mut call);
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
        let row = || call_sites().get(site!("ends_as_told")).cloned();
        eventually("every call of ends_as_told has ended", || {
            row().is_none_or(|row| row.in_flight == 0)
        });
        if let Some(row) = row() {
            assert!(balanced(&row), "{row:?}");
        }
    });
}

struct Alpha;

struct Beta;

impl Alpha {
    #[async_wrap(executor = FOUR)]
    fn process(self) -> u8 {
        1
    }
}

impl Beta {
    #[async_wrap(executor = FOUR)]
    fn process(self) -> u8 {
        2
    }
}

/// Before the fix (minor): a method's call site is named `module::method`, without its type (the macro
/// uses `concat!(module_path!(), "::", name)`): two types' `process` methods in one module are
/// two rows both named `module::process`, `CallSites::get("module::process")` returns either,
/// and a slow-call report says only "`module::process`" (its `file:line` tells them apart). `CallSite::function` is documented as "The wrapped function's path".
#[test]
fn methods_of_two_types_have_call_sites_told_apart_by_their_line() {
    let _beside = statistics_shared();
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
            rows.iter().all(|(name, _)| *name == site!("process")),
            "{rows:?}"
        );
        assert_ne!(rows[0].1, rows[1].1, "told apart by their line: {rows:?}");
    });
}

/// Before the fix (minor, docs): the crate docs say "[`call_sites`] lists every function called so
/// far", and `call_sites`' own docs "every call site that has been called"; a function called
/// only while statistics are off is not listed at all (a site registers with its first
/// *counted* call), so a table printed after `set_call_statistics(false)` silently lacks it.
#[test]
fn a_function_called_only_with_statistics_off_is_not_listed() {
    #[async_wrap(executor = FOUR)]
    fn called_while_off() -> u8 {
        3
    }

    let _alone = statistics_alone();
    within(LIMIT, || {
        set_call_statistics(false);
        let value = block_on(called_while_off());
        set_call_statistics(true);
        assert_eq!(value, 3);
        // The docs now say what holds: only functions with a counted call are listed.
        let listed = call_sites()
            .iter()
            .any(|row| row.site.function() == site!("called_while_off"));
        assert!(!listed, "an uncounted call was listed:\n{}", call_sites());
        block_on(called_while_off());
        let row = call_sites()
            .iter()
            .find(|row| row.site.function() == site!("called_while_off"))
            .cloned()
            .expect("listed after a counted call");
        assert_eq!((row.calls, row.completed), (1, 1));
    });
}

static STAT_POOL: BlockingPool = BlockingPool::with_max_threads(1)
    .thread_name("stat")
    .queue_capacity(1, QueueFull::Wait);

#[async_wrap(executor = STAT_POOL)]
fn holds_the_stat_pool(gate: Arc<Mutex<mpsc::Receiver<()>>>) {
    let _ = gate.lock().unwrap().recv();
}

#[async_wrap(executor = STAT_POOL)]
fn on_the_stat_pool(n: u32) -> u32 {
    n
}

#[test]
fn calls_dropped_while_waiting_for_room_keep_the_counts_balanced() {
    let _stats = statistics_alone();
    within(Duration::from_secs(20), || {
        let (go, g) = gate();
        let mut holder = holds_the_stat_pool(g);
        assert!(poll_noop(&mut holder).is_pending());
        eventually("the holder to run", || STAT_POOL.metrics().running == 1);
        let mut queued = on_the_stat_pool(1);
        assert!(poll_noop(&mut queued).is_pending());
        let mut waiters: Vec<_> = (0..5).map(on_the_stat_pool).collect();
        for w in &mut waiters {
            assert!(poll_noop(w).is_pending());
        }
        let s = stats_of(site!("on_the_stat_pool")).unwrap();
        assert!(balanced(&s), "{s:?}");
        drop(waiters);
        let s = stats_of(site!("on_the_stat_pool")).unwrap();
        assert!(balanced(&s), "{s:?}");
        go.send(()).unwrap();
        async_wrap::block_on(holder);
        assert_eq!(async_wrap::block_on(queued), 1);
        eventually("nothing in flight", || {
            stats_of(site!("on_the_stat_pool")).unwrap().in_flight == 0
        });
        let s = stats_of(site!("on_the_stat_pool")).unwrap();
        assert!(balanced(&s), "{s:?}");
    });
}

#[test]
fn a_statistics_toggle_while_a_call_waits_for_room_keeps_the_counts_balanced() {
    let _stats = statistics_alone();
    within(Duration::from_secs(20), || {
        for flip in [false, true] {
            set_call_statistics(flip);
            let (go, g) = gate();
            let mut holder = holds_the_stat_pool(g);
            assert!(poll_noop(&mut holder).is_pending());
            eventually("the holder to run", || STAT_POOL.metrics().running == 1);
            let mut queued = on_the_stat_pool(1);
            assert!(poll_noop(&mut queued).is_pending());
            let mut waiting = on_the_stat_pool(2);
            assert!(poll_noop(&mut waiting).is_pending());
            set_call_statistics(!flip);
            go.send(()).unwrap();
            async_wrap::block_on(holder);
            assert_eq!(async_wrap::block_on(queued), 1);
            assert_eq!(async_wrap::block_on(waiting), 2);
            set_call_statistics(true);
            eventually("nothing in flight", || {
                stats_of(site!("on_the_stat_pool")).is_none_or(|s| s.in_flight == 0)
            });
            if let Some(s) = stats_of(site!("on_the_stat_pool")) {
                assert!(balanced(&s), "flip {flip}: {s:?}");
            }
        }
        set_call_statistics(true);
    });
}

#[test]
fn snapshots_balance_while_resets_race_waits_cancels_and_refusals() {
    let _stats = statistics_alone();
    within(Duration::from_secs(30), || {
        let stop = Arc::new(AtomicBool::new(false));
        let resetter = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    reset_call_sites();
                    if let Some(s) = stats_of(site!("on_the_stat_pool"))
                        && !balanced(&s)
                    {
                        bad.push(s);
                    }
                }
                bad
            })
        };
        let workers: Vec<_> = (0..2)
            .map(|w| {
                thread::spawn(move || {
                    for i in 0..400_u32 {
                        let mut f = on_the_stat_pool(i);
                        match (i + w) % 3 {
                            0 => {
                                let _ = async_wrap::block_on(f);
                            }
                            1 => {
                                let _ = poll_noop(&mut f);
                                drop(f);
                            }
                            _ => drop(f),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        let bad = resetter.join().unwrap();
        assert!(
            bad.is_empty(),
            "{} unbalanced snapshots, first {:?}",
            bad.len(),
            bad.first()
        );
        eventually("nothing in flight", || {
            stats_of(site!("on_the_stat_pool")).is_none_or(|s| s.in_flight == 0)
        });
    });
}

#[test]
#[ignore = "open: racy (1 run in 4): an unbalanced snapshot while statistics are toggled and reset around inline and on-caller calls"]
fn statistics_of_inline_and_on_caller_calls_balance_while_toggled_and_reset() {
    let _stats = statistics_alone();
    within(Duration::from_secs(30), || {
        static CALLER_POOL: BlockingPool = BlockingPool::with_max_threads(1)
            .thread_name("caller")
            .queue_capacity(0, QueueFull::RunOnCaller);
        let stop = Arc::new(AtomicBool::new(false));
        let toggler = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut bad = Vec::new();
                let mut i = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    set_call_statistics(i % 3 != 0);
                    if i % 5 == 0 {
                        reset_call_sites();
                    }
                    if let Some(s) = stats_of(site!("on_caller"))
                        && !balanced(&s)
                    {
                        bad.push(s);
                    }
                }
                set_call_statistics(true);
                bad
            })
        };
        #[async_wrap(executor = CALLER_POOL)]
        fn on_caller(depth: u8) -> u8 {
            if depth == 0 {
                0
            } else {
                async_wrap::block_on(on_caller_leaf(depth - 1)) + 1
            }
        }
        #[async_wrap(executor = CALLER_POOL)]
        fn on_caller_leaf(depth: u8) -> u8 {
            depth
        }
        let callers: Vec<_> = (0..3)
            .map(|_| {
                thread::spawn(|| {
                    for i in 0..300_u32 {
                        let depth = (i % 3) as u8;
                        assert_eq!(async_wrap::block_on(on_caller(depth)), depth);
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        let bad = toggler.join().unwrap();
        assert!(
            bad.is_empty(),
            "{} unbalanced, first {:?}",
            bad.len(),
            bad.first()
        );
        let s = stats_of(site!("on_caller")).unwrap();
        assert!(balanced(&s) && s.in_flight == 0, "{s:?}");
    });
}
