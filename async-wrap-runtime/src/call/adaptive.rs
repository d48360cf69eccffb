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
//! - the executor is a [`BlockingPool`] with an idle thread and nothing queued, so the job
//!   starts at once (or once the thread wakes), and the caller is not one of its threads;
//! - the site is not backing off: a wait that did not pay (the result did not come in time)
//!   makes the site skip the next 2, 4, 8 ... 1,024 calls' waits; one that paid resets it.
//!
//! The wait lasts at most twice the recent run time plus [`HAND_OFF`] if a pool thread spins
//! for work (it takes the job at once), or plus [`WAKE`] if the idle thread sleeps and the
//! submission wakes it (so at most 44 µs, or 90 µs). It is busy for its first 2 µs and then
//! yields the core, so that a pool thread placed on the same core can run. Then the future
//! registers its waker and returns `Pending` as usual.
//!
//! The long form is what gets a caller out of the slow rhythm: once a call takes the waker's
//! path, the caller's next call comes after the runtime has woken it (20–65 µs), when the
//! pool's thread has stopped spinning (it spins 20 µs after a job); waiting out the wake of
//! that thread once puts both threads back in step, the pool's thread spinning when the next
//! call comes.
//!
//! # Giving the thread back
//!
//! A call whose wait paid is ready at its first poll, so a task making such calls in a loop
//! would never give its runtime thread back: the runtime's other tasks, its timers and its
//! sockets would wait. Yielding (waking the task at once and returning `Pending`) is not
//! enough: tokio's current-thread scheduler runs a task that woke itself again at the next
//! tick, and polls its timers and sockets only every 61 ticks or when it has no task to run
//! (measured: an echo server's p99 round trip beside such a loop went from 0.2 ms to 13 ms).
//! So once this thread has been waiting for results, with no call of its own returning
//! `Pending` in between, for [`GIVE_BACK_AFTER`] or for [`GIVE_BACK_EVERY`] calls, the next
//! call does not wait: it registers its waker and returns `Pending`, as without the wait, and
//! its result wakes the task. Until the result comes the runtime has nothing of this task's to
//! run, so it polls its timers and sockets and runs its other tasks, as it does at every call
//! with the wait off. A task looping on short calls thus gives its thread back at least every
//! [`GIVE_BACK_AFTER`] (plus one wait) or [`GIVE_BACK_EVERY`] calls, whichever comes first.
//!
//! [`set_call_statistics`]: crate::set_call_statistics
//! [`BlockingPool`]: crate::BlockingPool

use std::cell::Cell;
use std::task::{RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use crate::executor::Executor;
use crate::stats::call_site::CallSite;

/// The longest recent run time for which a call's result is waited for.
pub(crate) const SHORT_RUN: Duration = Duration::from_micros(20);

/// What a wait allows beyond twice the run time: the hand-off to a spinning thread and back.
pub(crate) const HAND_OFF: Duration = Duration::from_micros(4);

/// What a wait allows beyond twice the run time when the pool's idle thread must be woken: the
/// wake of a halted vCPU takes 20–65 µs on the VMs this was measured on.
pub(crate) const WAKE: Duration = Duration::from_micros(50);

/// How long a thread may keep waiting for results, call after call with none of its calls
/// returning `Pending`, before a call gives the thread back to its runtime (see "Giving the
/// thread back"). Chosen by `compare --only neighbours` (in `comparisons/`): against 25 µs and
/// 32 calls, an echo server's p99 beside the loop on a current-thread runtime fell from 1.7–3.0×
/// to 1.5–2.1× that with statistics off, for a loop that still makes 2.7–3.7× the calls.
pub(crate) const GIVE_BACK_AFTER: Duration = Duration::from_micros(8);

/// How many calls in a row a thread may wait for, with none of its calls returning `Pending`,
/// before a call gives the thread back (a bound that holds however fast the calls are).
pub(crate) const GIVE_BACK_EVERY: u32 = 8;

/// The first part of a wait, spent busy rather than yielding.
const BUSY_FOR: Duration = Duration::from_micros(2);

/// Who a waker wakes: its data and vtable pointers, compared, never dereferenced.
type Identity = (*const (), *const RawWakerVTable);

thread_local! {
    /// Calls submitted on this thread (first polls of futures).
    static SUBMITS: Cell<u64> = const { Cell::new(0) };
    /// The waker of the last call submitted on this thread.
    static LAST_WAKER: Cell<Identity> = const { Cell::new((std::ptr::null(), std::ptr::null())) };
    /// When this thread began waiting for results with none of its calls returning `Pending`
    /// since, and how many it has waited for: `None` after a `Pending`.
    static WAITING_SINCE: Cell<Option<(Instant, u32)>> = const { Cell::new(None) };
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

/// Whether this thread has waited for results long enough, with none of its calls returning
/// `Pending`, that the next call must give it back (see "Giving the thread back").
fn must_give_back() -> bool {
    WAITING_SINCE.with(|since| match since.get() {
        None => {
            since.set(Some((Instant::now(), 1)));
            false
        }
        Some((began, waits)) => {
            since.set(Some((began, waits + 1)));
            waits >= GIVE_BACK_EVERY || began.elapsed() >= GIVE_BACK_AFTER
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
    if cfg!(async_wrap_loom) {
        return None;
    }
    let stats = site.site_stats();
    let recent = Duration::from_nanos(stats.recent_run()?);
    if recent > SHORT_RUN {
        return None;
    }
    let spinning = executor.as_blocking_pool()?.idle_thread()?;
    if !stats.may_wait() || must_give_back() {
        return None;
    }
    Some(if spinning { HAND_OFF } else { WAKE } + recent * 2)
}

/// How a wait went: whether the result came in time, and whether the thread was descheduled
/// meanwhile (the wait ended more than [`DESCHEDULED`] times its budget after it began: a
/// yield under CPU contention can cost a whole time slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waited {
    pub(crate) paid: bool,
    pub(crate) descheduled: bool,
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
