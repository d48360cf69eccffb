//! The adaptive wait gives the polling thread back: a task awaiting short calls in a loop
//! returns `Pending` for real (its wake coming from the pool, after the poll) at least every
//! 8 calls, so that its runtime polls its timers and sockets and runs its other tasks. A
//! self-wake (`wake_by_ref` then `Pending`) does not count: tokio's current-thread scheduler
//! runs such a task again at its next tick, reaching its timers and sockets only every 61 ticks.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_wrap::{BlockingPool, async_wrap};
use futures::FutureExt;
use support::within;

static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("adaptive");

/// The tests here share the pool, the site and the process-wide switch: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[async_wrap(executor = POOL)]
fn short(n: u64) -> u64 {
    n + 1
}

/// A waker that counts its wakes, and lets its thread sleep until the next one.
#[derive(Default)]
struct Counting {
    wakes: AtomicU64,
    lock: Mutex<()>,
    woken: Condvar,
}

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let _guard = self.lock.lock().unwrap();
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.woken.notify_all();
    }
}

/// How a call's polls went: ready at the first poll, or `Pending` with the task woken inside
/// the poll (a yield), or `Pending` with the wake coming later (the thread given back).
#[derive(Default, Debug)]
struct Polls {
    /// Calls since the last one that gave the thread back, at most.
    longest_run_without_give_back: u64,
    give_backs: u64,
    yields: u64,
}

/// Awaits `calls` calls one after another on this thread, as a task's loop does, and says how
/// their polls went.
fn await_in_a_loop(calls: u64) -> Polls {
    let counting = Arc::new(Counting::default());
    let waker = Waker::from(counting.clone());
    let mut polls = Polls::default();
    let mut run = 0;
    for n in 0..calls {
        let mut call = short(n);
        let mut gave_back = false;
        let value = loop {
            let before = counting.wakes.load(Ordering::SeqCst);
            match call.poll_unpin(&mut Context::from_waker(&waker)) {
                Poll::Ready(value) => break value,
                Poll::Pending if counting.wakes.load(Ordering::SeqCst) != before => {
                    polls.yields += 1;
                }
                Poll::Pending => {
                    gave_back = true;
                    let mut guard = counting.lock.lock().unwrap();
                    while counting.wakes.load(Ordering::SeqCst) == before {
                        guard = counting.woken.wait(guard).unwrap();
                    }
                }
            }
        };
        assert_eq!(value, n + 1);
        if gave_back {
            polls.give_backs += 1;
            run = 0;
        } else {
            run += 1;
            polls.longest_run_without_give_back = polls.longest_run_without_give_back.max(run);
        }
    }
    polls
}

// Before the fix a task awaiting short calls in a loop only yielded, every 32 waits that paid:
// on a current-thread tokio runtime an echo server's p99 round trip beside it went from 0.2 ms
// to 13 ms, and a 1 ms ticker's from 1 to 22 ms. Here that showed as thousands of calls in a
// row without the thread given back.
#[test]
fn a_loop_of_short_calls_gives_its_thread_back_at_least_every_8_calls() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    within(Duration::from_secs(60), || {
        // Warm-up: the site learns that the function is short.
        await_in_a_loop(200);
        let polls = await_in_a_loop(20_000);
        let waits = async_wrap::call_sites()
            .get("adaptive_wait::short")
            .expect("the site is listed")
            .waits;
        assert!(
            waits > 0,
            "no call was waited for: the test tests nothing ({polls:?})"
        );
        assert!(
            polls.longest_run_without_give_back <= 9,
            "{} calls in a row never gave the thread back ({polls:?}, {waits} waits)",
            polls.longest_run_without_give_back
        );
    });
}

/// The site's count of waits and of calls.
fn site_counts() -> (u64, u64) {
    let sites = async_wrap::call_sites();
    let site = sites
        .get("adaptive_wait::short")
        .expect("the site is listed");
    (site.waits, site.calls)
}

#[test]
fn the_adaptive_wait_has_its_own_switch_and_statistics_go_on_without_it() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    within(Duration::from_secs(60), || {
        await_in_a_loop(200);
        async_wrap::set_adaptive_wait(false);
        assert!(!async_wrap::adaptive_wait_enabled());
        let (waits, calls) = site_counts();
        let polls = await_in_a_loop(2_000);
        let (waits_off, calls_off) = site_counts();
        async_wrap::set_adaptive_wait(true);
        assert_eq!(
            waits_off, waits,
            "a call waited with the wait off ({polls:?})"
        );
        assert_eq!(
            calls_off,
            calls + 2_000,
            "the statistics stopped with the wait"
        );
        assert_eq!(
            polls.give_backs + polls.yields,
            2_000,
            "with the wait off every call returns `Pending` at its first poll ({polls:?})"
        );
        // And on again: the site waits again (it never stopped learning).
        await_in_a_loop(2_000);
        assert!(site_counts().0 > waits, "the wait did not come back on");
    });
}
