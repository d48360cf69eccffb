//! The adaptive wait: a call to a function that has been consistently short waits a few
//! microseconds for its result on the polling thread, instead of registering a waker and
//! letting the runtime park the thread (and pay 20–65 µs to wake it again).
//!
//! The polling thread waits only when all of these hold, and never runs the body itself:
//!
//! - the call is counted in its site's statistics ([`set_call_statistics`]), and the site's
//!   recent run times (a decaying maximum: one long run counts at once, and is forgotten half
//!   the way per call) are at most [`SHORT_RUN`];
//! - no other call was submitted on this thread between the making of the call's future and
//!   its first poll: the future was made after the previous call was submitted (and, in the
//!   pattern this is for, awaited): a task awaiting its calls one after another, where the
//!   wait replaces the runtime's park and wake. Futures made together and polled together
//!   (`join!`, `join_all`, `select!`, `buffer_unordered`) are all made before the first of them
//!   is submitted: only the first may be waited for, and the others are submitted at once, as
//!   without the wait, whether or not the first one's wait paid;
//! - the task awaiting it (its waker) made the call submitted before it on this thread: a
//!   batch polled with a waker per future (`join_all` of more than 30, `FuturesUnordered`)
//!   does not wait even for its first call, which would hold back the submission of the rest.
//!   (Wakers are compared by address: a new waker at the address of a freed one can pass for
//!   it, so such a batch's first call may, rarely, be waited for.)
//! - the executor is a [`BlockingPool`] with a thread spinning for work and nothing queued, so
//!   the job starts at once, and the caller is not one of its threads; a sleeping thread is not
//!   waited for: its wake (20–65 µs on the VMs this was measured on) would hold the polling
//!   thread longer than a hold allows (see "Giving the thread back");
//! - the site is not backing off: a wait that did not pay (the result did not come in time)
//!   makes the site skip the next 2, 4, 8 ... 1,024 calls' waits; one that paid resets it;
//! - the polling thread has no neighbours that a wait would hold up: it runs
//!   [`block_on`](crate::block_on) (one future, nothing else to poll), or it is a worker of a
//!   tokio multi-thread runtime with more than one worker, whose other workers serve the
//!   runtime's tasks, timers and sockets meanwhile (see "Where the wait applies");
//! - the wait is on ([`set_adaptive_wait`], on by default).
//!
//! The wait lasts at most twice the recent run time plus [`HAND_OFF`], and never ends more than
//! [`GIVE_BACK_HOLD`] (32 µs) after this thread began waiting (see below). It is
//! busy for its first 2 µs and then yields the core, so that a pool thread placed on the same
//! core can run. Then the future registers its waker and returns `Pending` as usual.
//!
//! # Giving the thread back
//!
//! A call whose wait paid is ready at its first poll, so a task making such calls in a loop
//! would never give its runtime thread back: the runtime's other tasks, its timers and its
//! sockets would wait. Yielding (waking the task at once and returning `Pending`) is not
//! enough: tokio's current-thread scheduler runs a task that woke itself again at the next
//! tick, and polls its timers and sockets only every 61 ticks or when it has no task to run
//! (measured: an echo server's p99 round trip beside such a loop went from 0.2 ms to 13 ms).
//! So the waits hold a thread for a bounded time: once this thread has been waiting for results,
//! with no call of its own returning `Pending` in between, the next call does not wait if its
//! wait could end more than [`GIVE_BACK_HOLD`] after the first of those waits began, or if it
//! would be the [`GIVE_BACK_EVERY`]th such call in a row: it registers its waker and returns
//! `Pending`, as without the wait, and its result wakes the task. Until the result comes the
//! runtime has nothing of this task's to run, so it polls its timers and sockets and runs its
//! other tasks, as it does at every call with the wait off. A task looping on short calls thus
//! gives its thread back at least every 32 µs of waiting and its own work between the calls
//! (or every 8 calls, however fast they are); without calls the task's own code is what holds
//! the thread, as it would without the crate.
//!
//! The bound was chosen by `compare --only neighbours` (in `comparisons/`), its candidates
//! interleaved in one run, three runs: a bound on the waits' count and waiting time only (8
//! calls, 8 µs, the wait's own budget not counted, sleeping threads waited for up to 90 µs) left
//! an echo server's p99 round trip beside the loop at 1.1–2.1× that with statistics off on a
//! current-thread runtime; holds of 16, 24 and 32 µs gave 0.8–1.5×, 32 µs 0.75–1.09× with the
//! most calls per second; giving back more often (every 4, 2 or every other call) did worse
//! (2.2–3.9×): each give-back costs the loop a park and a wake, and the neighbours gain nothing.
//! Two later runs put it at 1.4–5.2× (with the ticker at par): on two vCPUs the loop, the pool's
//! spinning thread and the echo client compete for the cores (with the wait off: 0.76–1.17×).
//! So the wait no longer applies on a current-thread runtime at all (see below).
//!
//! # Where the wait applies
//!
//! A wait holds the polling thread, and on a runtime whose only thread it is, everything the
//! runtime does waits with it. Measured with `compare --only neighbours` on two vCPUs: beside a
//! task looping on short calls on a current-thread runtime, an echo server's p99 round trip was
//! 1.4–5.2× that with the wait off, however the waits were bounded, while on a multi-thread
//! runtime it was at par (0.86–1.07×). So the wait applies only where it is known to hold up
//! no one:
//!
//! - inside [`block_on`](crate::block_on), which polls one future and parks otherwise;
//! - on a worker of a tokio multi-thread runtime with more than one worker: with the `tokio`
//!   feature, as the runtime's handle says; without it, a thread named as tokio names its
//!   workers (`tokio-rt-worker`, `tokio-runtime-worker` in older versions; tokio's blocking
//!   threads are named so too, and waiting holds up no one there either).
//!
//! Everywhere else (a current-thread runtime, `futures::executor::block_on`, smol, async-std,
//! a multi-thread runtime whose workers were renamed without the `tokio` feature) every call
//! that does not finish at once returns `Pending`, as with the wait off: the crate cannot tell
//! those threads' neighbours apart, and the neighbours come first.
//!
//! [`set_call_statistics`]: crate::set_call_statistics
//! [`BlockingPool`]: crate::BlockingPool

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use crate::executor::Executor;
use crate::stats::call_site::CallSite;
use crate::stats::site_waits::Waited;

/// The longest recent run time for which a call's result is waited for: a wait's budget for it,
/// twice this plus [`HAND_OFF`], is then [`GIVE_BACK_HOLD`].
pub(crate) const SHORT_RUN: Duration = Duration::from_micros(14);

/// What a wait allows beyond twice the run time: the hand-off to a spinning thread and back.
pub(crate) const HAND_OFF: Duration = Duration::from_micros(4);

/// The longest a thread is held by waits before a call gives it back to its runtime: from the
/// first of a run of waits (with none of the thread's calls returning `Pending` since) to the
/// end of the next wait's budget (see "Giving the thread back").
pub(crate) const GIVE_BACK_HOLD: Duration = Duration::from_micros(32);

/// How many calls in a row a thread may wait for, with none of its calls returning `Pending`,
/// before a call gives the thread back (a bound that holds however fast the calls are).
pub(crate) const GIVE_BACK_EVERY: u32 = 8;

/// Whether calls may wait for their results at all ([`set_adaptive_wait`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the adaptive wait on or off for every call from now on (it is on by default).
///
/// With the wait on, a call to a function whose recent runs were all short (14 µs or less),
/// awaited on its own by a task that awaits its calls one after another, may wait a few
/// microseconds on the polling thread for its result instead of letting the runtime park the
/// thread and wake it again: a round trip of about 1 µs instead of 5–25 µs. It applies only
/// where the wait holds up no one: inside [`block_on`](crate::block_on), and on the workers of
/// a tokio multi-thread runtime with more than one worker; never on a current-thread runtime.
/// The wait never runs the body on the polling thread, and it gives the thread back to the
/// runtime at least every 32 µs or 8 calls, so that the runtime's timers, sockets and other
/// tasks are not held up.
/// Turn it off to have every call that does not finish at once return `Pending` (as
/// `tokio::task::spawn_blocking` does), for example to compare the two. The wait needs the
/// call statistics ([`set_call_statistics`](crate::set_call_statistics)), which tell which
/// functions are short; with them off there is no wait either.
///
/// ```
/// async_wrap::set_adaptive_wait(false);
/// assert!(!async_wrap::adaptive_wait_enabled());
/// async_wrap::set_adaptive_wait(true);
/// ```
pub fn set_adaptive_wait(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the adaptive wait is on ([`set_adaptive_wait`]).
pub fn adaptive_wait_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The first part of a wait, spent busy rather than yielding.
const BUSY_FOR: Duration = Duration::from_micros(2);

/// Who a waker wakes: its data and vtable pointers, compared, never dereferenced.
type Identity = (*const (), *const RawWakerVTable);

thread_local! {
    /// Calls submitted on this thread (first polls of futures).
    static SUBMITS: Cell<u64> = const { Cell::new(0) };
    /// The waker of the last call submitted on this thread.
    static LAST_WAKER: Cell<Identity> = const { Cell::new((std::ptr::null(), std::ptr::null())) };
    /// How many [`block_on`](crate::block_on)s this thread is inside (they nest).
    static IN_BLOCK_ON: Cell<u32> = const { Cell::new(0) };
    /// Whether this thread is named as tokio names a multi-thread runtime's workers: `None`
    /// until looked up (a thread's name never changes).
    static TOKIO_WORKER_NAME: Cell<Option<bool>> = const { Cell::new(None) };
    /// When this thread began waiting for results with none of its calls returning `Pending`
    /// since, and how many it has waited for: `None` after a `Pending`.
    static WAITING_SINCE: Cell<Option<(Instant, u32)>> = const { Cell::new(None) };
}

/// Marks the current thread as inside [`block_on`](crate::block_on) until the guard is
/// dropped (on unwinding too).
pub(crate) fn in_block_on() -> InBlockOn {
    IN_BLOCK_ON.with(|depth| depth.set(depth.get() + 1));
    InBlockOn(())
}

/// The mark of [`in_block_on`]: taken off when dropped.
pub(crate) struct InBlockOn(());

impl Drop for InBlockOn {
    fn drop(&mut self) {
        IN_BLOCK_ON.with(|depth| {
            debug_assert!(depth.get() > 0, "a block_on mark taken off twice");
            depth.set(depth.get() - 1);
        });
    }
}

/// Whether a wait on this thread holds up no one (see "Where the wait applies").
fn holds_up_no_one() -> bool {
    if IN_BLOCK_ON.with(Cell::get) > 0 {
        return true;
    }
    #[cfg(feature = "tokio")]
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return matches!(
            handle.runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        ) && handle.metrics().num_workers() > 1;
    }
    TOKIO_WORKER_NAME.with(|named| {
        named.get().unwrap_or_else(|| {
            let is = matches!(
                std::thread::current().name(),
                Some("tokio-rt-worker" | "tokio-runtime-worker")
            );
            named.set(Some(is));
            is
        })
    })
}

/// What a new future remembers: how many calls this thread had submitted when it was made.
pub(crate) fn submits() -> u64 {
    SUBMITS.with(Cell::get)
}

/// A future made when this thread had submitted `born` calls is submitted now, polled with
/// `waker`: true if no other call was submitted here in between and the previous call
/// submitted here had the same waker (the wait may apply).
pub(crate) fn submitting(born: u64, waker: &Waker) -> bool {
    let alone = SUBMITS.with(|submits| {
        let now = submits.get();
        submits.set(now.wrapping_add(1));
        now == born
    });
    let task: Identity = (waker.data(), std::ptr::from_ref(waker.vtable()));
    let same_task = LAST_WAKER.with(|last| last.replace(task)) == task;
    alone && same_task
}

/// A future of this thread returned `Pending`: its task gave the thread back.
pub(crate) fn pending() {
    WAITING_SINCE.with(|since| since.set(None));
}

/// Whether a wait of up to `budget` would hold this thread too long, with the waits before it
/// since its last `Pending`, so that the call must give the thread back instead (see "Giving
/// the thread back"). If not, the wait is counted in the run.
fn must_give_back(budget: Duration) -> bool {
    WAITING_SINCE.with(|since| match since.get() {
        None if budget > GIVE_BACK_HOLD => true,
        None => {
            since.set(Some((Instant::now(), 1)));
            false
        }
        Some((began, waits)) => {
            let give_back = waits >= GIVE_BACK_EVERY || began.elapsed() + budget > GIVE_BACK_HOLD;
            if !give_back {
                since.set(Some((began, waits + 1)));
            }
            give_back
        }
    })
}

/// How long the polling thread should wait for the result of a call to `site` on `executor`
/// (whose future was made with no other call submitted on this thread since); `None` for not
/// at all. Called once per counted call, before it is submitted.
pub(crate) fn budget(site: &'static CallSite, executor: &dyn Executor) -> Option<Duration> {
    // Under loom, never: the decision reads state that outlives a model's iterations (the
    // site's statistics), which would make the explored runs differ. The protocol of a wait
    // is modelled on the task cell (`task::loom_models`).
    if cfg!(async_wrap_loom) || !adaptive_wait_enabled() {
        return None;
    }
    let memory = site.site_stats().waits();
    let recent = Duration::from_nanos(memory.recent_run()?);
    if recent > SHORT_RUN {
        return None;
    }
    if crate::executor::blocking_pool(executor)?.idle_thread() != Some(true) {
        return None;
    }
    if !holds_up_no_one() {
        return None;
    }
    let budget = HAND_OFF + recent * 2;
    if !memory.may_wait() || must_give_back(budget) {
        return None;
    }
    Some(budget)
}

/// A wait that took this many times its budget was descheduled: the site backs off fully.
const DESCHEDULED: u32 = 4;

/// Waits up to `budget` for `done` to say the result is there. Busy at first, then yielding.
pub(crate) fn wait(budget: Duration, done: impl Fn() -> bool) -> Waited {
    let start = Instant::now();
    let paid = 'wait: loop {
        let elapsed = start.elapsed();
        if elapsed >= budget {
            break 'wait done();
        }
        let busy = elapsed < BUSY_FOR;
        for _ in 0..if busy { 32 } else { 1 } {
            if done() {
                break 'wait true;
            }
            if busy {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    };
    Waited {
        paid,
        descheduled: start.elapsed() > budget * DESCHEDULED,
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use super::*;

    /// Runs `check` on a thread of its own: the give-back state is per thread.
    fn on_a_fresh_thread(check: impl FnOnce() + Send + 'static) {
        std::thread::spawn(check).join().unwrap();
    }

    #[test]
    fn a_wait_whose_budget_exceeds_the_hold_gives_the_thread_back_at_once() {
        on_a_fresh_thread(|| {
            assert!(must_give_back(GIVE_BACK_HOLD + Duration::from_nanos(1)));
            assert!(!must_give_back(GIVE_BACK_HOLD));
        });
    }

    #[test]
    fn waits_give_the_thread_back_when_the_next_would_end_past_the_hold() {
        on_a_fresh_thread(|| {
            let budget = Duration::from_micros(4);
            assert!(!must_give_back(budget));
            let began = Instant::now();
            while began.elapsed() + budget <= GIVE_BACK_HOLD {
                std::hint::spin_loop();
            }
            assert!(must_give_back(budget), "the hold is not enforced");
            pending();
            assert!(!must_give_back(budget), "a `Pending` starts a new run");
        });
    }

    #[test]
    fn waits_give_the_thread_back_every_8_calls_however_fast() {
        on_a_fresh_thread(|| {
            let budget = Duration::ZERO;
            for call in 0..GIVE_BACK_EVERY {
                assert!(!must_give_back(budget), "call {call} gave the thread back");
            }
            assert!(must_give_back(budget));
        });
    }
}
