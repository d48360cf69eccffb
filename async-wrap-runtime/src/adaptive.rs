//! The adaptive wait: a call to a function that has been consistently short waits a few
//! microseconds for its result on the polling thread, instead of registering a waker and
//! letting the runtime park the thread (and pay 20–65 µs to wake it again).
//!
//! The polling thread waits only when all of these hold, and never runs the body itself:
//!
//! - the call is counted in its site's statistics ([`set_call_statistics`]), and the site's
//!   recent run times (a decaying maximum: one long run counts at once, and is forgotten a
//!   quarter of the way per call) are at most [`SHORT_RUN`];
//! - the task awaiting it made the two calls this thread submitted before (the same waker
//!   three times in a row): a task awaiting calls one after another, where the wait replaces
//!   the runtime's park and wake. A thread polling many calls at once (`join_all`,
//!   `FuturesUnordered`, many tasks) polls each with its own waker, and does not wait. (Wakers
//!   are told apart by address: a waker allocated where an earlier one was freed can pass for
//!   it, so at the boundary between two batches a call may, rarely, be waited for: one wait of
//!   a few microseconds.)
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
//! [`set_call_statistics`]: crate::set_call_statistics
//! [`BlockingPool`]: crate::BlockingPool

use std::cell::Cell;
use std::task::{RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use crate::call_site::CallSite;
use crate::executor::Executor;

/// The longest recent run time for which a call's result is waited for.
pub(crate) const SHORT_RUN: Duration = Duration::from_micros(20);

/// What a wait allows beyond twice the run time: the hand-off to a spinning thread and back.
pub(crate) const HAND_OFF: Duration = Duration::from_micros(4);

/// What a wait allows beyond twice the run time when the pool's idle thread must be woken: the
/// wake of a halted vCPU takes 20–65 µs on the VMs this was measured on.
pub(crate) const WAKE: Duration = Duration::from_micros(50);

/// The first part of a wait, spent busy rather than yielding.
const BUSY_FOR: Duration = Duration::from_micros(2);

/// Who a waker wakes: its data and vtable pointers, compared, never dereferenced.
type Identity = (*const (), *const RawWakerVTable);

/// How many calls in a row a task must have submitted on this thread, this one included,
/// for the wait to apply.
const IN_A_ROW: u32 = 3;

thread_local! {
    /// The waker of the last call this thread submitted (the task that made it), and how many
    /// calls in a row it has submitted.
    static LAST_TASK: Cell<(Identity, u32)> =
        const { Cell::new(((std::ptr::null(), std::ptr::null()), 0)) };
}

/// How long the polling thread should wait for the result of a call to `site` on `executor`,
/// submitted now by the task `waker` wakes; `None` for not at all. Called once per counted
/// call, before it is submitted.
pub(crate) fn budget(
    site: &'static CallSite,
    waker: &Waker,
    executor: &dyn Executor,
) -> Option<Duration> {
    // Under loom, never: the decision reads state that outlives a model's iterations (this
    // thread-local, the site's statistics), which would make the explored runs differ. The
    // protocol of a wait is modelled on the task cell (`task::loom_models`).
    if cfg!(async_wrap_loom) {
        return None;
    }
    let task: Identity = (waker.data(), std::ptr::from_ref(waker.vtable()));
    let in_a_row = LAST_TASK.with(|last| {
        let (previous, count) = last.get();
        let count = if previous == task {
            count.saturating_add(1)
        } else {
            1
        };
        last.set((task, count));
        count
    });
    if in_a_row < IN_A_ROW {
        return None;
    }
    let stats = site.site_stats();
    let recent = Duration::from_nanos(stats.recent_run()?);
    if recent > SHORT_RUN {
        return None;
    }
    let spinning = executor.as_blocking_pool()?.idle_thread()?;
    if !stats.may_wait() {
        return None;
    }
    Some(if spinning { HAND_OFF } else { WAKE } + recent * 2)
}

/// Waits up to `budget` for `done` to say the result is there; true if it did. Busy at first,
/// then yielding.
pub(crate) fn wait(budget: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return done();
        }
        let busy = elapsed < BUSY_FOR;
        for _ in 0..if busy { 32 } else { 1 } {
            if done() {
                return true;
            }
            if busy {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}
