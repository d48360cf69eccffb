//! The supervisor: the thread that starts threads for jobs waiting behind blocked ones (see
//! "When the pool grows" in [`submit`](super::submit)).
//!
//! Started on demand, gone after `keep_alive` without work, it looks every [`GROW_AFTER`]
//! while armed: if a queued job has waited that long (and, with the time-only rule, the
//! threads are not getting through the queue), it judges the running jobs ([`Judged`]): one
//! thread for each whose thread was asleep for most of the last look (on Linux, from its
//! `/proc` times and state; elsewhere every job that has run a look counts), and one for each
//! job that has wanted a core past `CPU_BOUND_AFTER`, while no more than cores + 1 of the
//! pool's threads want a core. A job merely preempted (a CPU hog elsewhere in the process)
//! wants a core: it never counts as blocked. A queue that makes no progress gets a thread
//! anyway now and then ([`Stall`]).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::os_thread::{Judged, Observed, OsThread};
use super::shared::{Shared, State};
use super::supervisor_state::Supervisor;
use crate::sync::thread;
use crate::sync::{MutexGuard, Ordering};

/// How long a queued job waits for a busy thread, and a running job must have run, before the
/// supervisor starts another thread.
const GROW_AFTER: Duration = Duration::from_millis(1);

/// Whether the system says what a thread is doing (`os_thread`): then the supervisor judges
/// at every look where jobs wait, not only where the threads seem stuck.
const OS_SAYS: bool = cfg!(target_os = "linux");

/// How long threads the supervisor started count against the queued jobs while they have no
/// job yet (a thread may wait for a core that long under a CPU hog).
const STARTING: Duration = Duration::from_millis(10);

/// A reading of a thread's times older than this says too little of what the thread does
/// now: the next look reads again and judges by the state.
const READING_FRESH: Duration = Duration::from_millis(20);

/// How long jobs may wait with no job taken from the queue before the supervisor starts a
/// thread whatever its judgment; doubled each time it does, until the queue is empty again.
const STALLED_AFTER: Duration = Duration::from_millis(50);

/// The starvation backstop: jobs queued and none taken since `since`. The judgment starts no
/// thread for jobs queued behind busy threads beyond the cores, but a busy thread may be
/// waiting for one of those jobs (spinning on a flag it sets): so a queue that makes no
/// progress for `STALLED_AFTER` gets one thread, then after twice as long another, and so on
/// (a pool of CPU-bound jobs grows by a thread per doubling, not per look).
struct Stall {
    since: Option<Instant>,
    after: Duration,
}

impl Stall {
    fn new() -> Self {
        Stall {
            since: None,
            after: STALLED_AFTER,
        }
    }

    /// Whether jobs (`queued` of them) have waited with no job taken long enough for one
    /// more thread: if so, the next wait is twice as long.
    fn overdue(&mut self, queued: usize) -> bool {
        let due = queued > 0
            && self
                .since
                .is_some_and(|since| since.elapsed() >= self.after);
        if due {
            self.since = Some(Instant::now());
            self.after = self.after.saturating_mul(2);
        }
        due
    }

    /// A look ended: jobs were taken since the last (`progress`), threads started (`grew`), the
    /// queue is empty (`drained`).
    fn looked(&mut self, progress: bool, grew: bool, drained: bool) {
        if drained {
            *self = Stall::new();
        } else if progress || grew {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }
}

/// A slot's thread's times (on a core and waiting for one) as the supervisor last read them.
#[derive(Clone, Copy)]
struct Reading {
    thread: OsThread,
    at: Instant,
    wanting: Duration,
}

impl Reading {
    /// Reads `thread`'s times, keeps the reading in `last`, and says which share of the time
    /// since the reading before (if it was of the same thread, and fresh) it wanted a core.
    fn share_wanting(last: &mut Option<Reading>, thread: OsThread) -> Option<f64> {
        let Some(wanting) = thread.wanting_time() else {
            *last = None;
            return None;
        };
        let now = Instant::now();
        let before = last.replace(Reading {
            thread,
            at: now,
            wanting,
        })?;
        let wall = now.duration_since(before.at);
        if before.thread != thread || wall > READING_FRESH || wall.is_zero() {
            return None;
        }
        Some(wanting.saturating_sub(before.wanting).as_secs_f64() / wall.as_secs_f64())
    }
}

impl Shared {
    /// A job waits behind busy threads, and the pool has at least as many threads as cores but
    /// fewer than `max_threads`: arms the supervisor (starting it if need be) to judge whether
    /// they block. Called with the lock held.
    pub(super) fn arm_supervisor(this: &Arc<Self>, state: &mut State) {
        if state.supervisor.is_armed() || state.room(this.config.max_threads) == 0 {
            return;
        }
        let was = state.supervisor.arm(&this.flags.armed);
        if was == Supervisor::Idle {
            this.supervise.notify_one();
        } else if Shared::start_supervisor(this).is_err() {
            // Without a supervisor the pool cannot judge: grow at once instead (idle: the job
            // may be taken already, and a claim must always have a job coming). The new thread
            // finds the job on its own.
            state.supervisor.failed_to_start(&this.flags.armed);
            let _ = Shared::start_thread(this, state, false);
        }
    }

    fn start_supervisor(this: &Arc<Self>) -> std::io::Result<()> {
        let shared = Arc::clone(this);
        thread::Builder::new()
            .name(format!("{}-supervisor", this.name))
            .spawn(move || shared.supervise())
            .map(drop)
    }

    /// Jobs taken from the queue since the start.
    fn popped(state: &State) -> u64 {
        state
            .threads
            .slots()
            .iter()
            .map(|slot| slot.started.load(Ordering::Acquire))
            .sum()
    }

    /// How many threads the jobs running now call for (see [`Judged`]): those whose thread
    /// is off the cores (asleep in a blocking call; without its times, a job that has run
    /// `GROW_AFTER` and whose state says so or is unknown: the time-only rule, on systems that
    /// do not say), and CPU-bound ones while few of the pool's threads want a core. The
    /// threads' times and states are read without the lock, which is taken again before it
    /// returns (the caller checks for a shutdown). Also says how many of the pool's threads
    /// had no job. `readings` keeps each slot's last reading, for the next look.
    fn judge_running_jobs<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        readings: &mut Vec<Option<Reading>>,
    ) -> (MutexGuard<'a, State>, usize, usize) {
        let now = Instant::now();
        let running: Vec<(usize, Duration, OsThread)> = state
            .threads
            .slots()
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let ran = now.duration_since(slot.running().as_ref()?.since);
                Some((index, ran, slot.os_thread()))
            })
            .collect();
        let jobless = state.metrics.threads.saturating_sub(running.len());
        if running.is_empty() {
            return (state, 0, jobless);
        }
        drop(state);
        let slots = running.last().map_or(0, |&(index, ..)| index + 1);
        if readings.len() < slots {
            readings.resize(slots, None);
        }
        let judged = Judged::of(
            running.into_iter().map(|(index, ran, thread)| {
                let wanting = Reading::share_wanting(&mut readings[index], thread);
                let scheduling = if Observed::wants_state(wanting, ran, GROW_AFTER) {
                    thread.scheduling()
                } else {
                    None
                };
                Observed {
                    ran,
                    wanting,
                    scheduling,
                }
            }),
            GROW_AFTER,
        );
        let state = self.lock();
        let wanted = judged.threads_wanted(self.eager_threads, state.metrics.threads);
        (state, wanted, jobless)
    }

    /// The supervisor's life: while armed, look every `GROW_AFTER` for jobs that wait behind
    /// blocked threads, and start threads for them; exit after `keep_alive` unarmed.
    fn supervise(self: Arc<Self>) {
        let mut state = self.lock();
        // The threads started at the latest look that grew the pool, and when.
        let mut last_growth: Option<(Instant, usize)> = None;
        // Each slot's last reading of its thread's times.
        let mut readings: Vec<Option<Reading>> = Vec::new();
        let mut stall = Stall::new();
        loop {
            while !state.supervisor.is_armed() {
                if self.is_shut_down() {
                    state.supervisor.leave();
                    return;
                }
                let (guard, timeout) = self
                    .supervise
                    .wait_timeout(state, self.config.keep_alive)
                    .unwrap_or_else(PoisonError::into_inner);
                state = guard;
                if timeout.timed_out() && !state.supervisor.is_armed() {
                    state.supervisor.leave();
                    return;
                }
            }
            // Every queued job counts, claimed or not: a thread claimed for one has had
            // `GROW_AFTER` to take it, and a count that trusted the claims could hide a job
            // for good if one were ever left over.
            let waiting_before = self.queue.len();
            let popped_before = Shared::popped(&state);
            drop(state);
            std::thread::sleep(GROW_AFTER);
            state = self.lock();
            // After a shutdown the jobs admitted before it still run: the supervisor watches
            // until the queue is empty.
            if self.is_shut_down() && self.queue.is_empty() {
                state.supervisor.idle(&self.flags.armed);
                continue;
            }
            // A job queued at the last look is still queued (it waited `GROW_AFTER`: the queue
            // is FIFO, so fewer jobs started than were waiting then): judge the jobs running,
            // and start threads for those that block. With the time-only rule, only when the
            // threads are not getting through the queue either (fewer jobs started than there
            // are threads), since it cannot tell short jobs from blocked ones; with the
            // threads' times (Linux), a thread asleep in jobs shorter than a look is blocked
            // too, and a busy one is not, however many jobs it gets through.
            let progress = Shared::popped(&state) - popped_before;
            let mut grew = 0;
            if progress < waiting_before as u64
                && (progress < state.metrics.threads as u64 || OS_SAYS)
            {
                let (wanted, jobless);
                (state, wanted, jobless) = self.judge_running_jobs(state, &mut readings);
                if self.is_shut_down() && self.queue.is_empty() {
                    state.supervisor.idle(&self.flags.armed);
                    continue;
                }
                // Threads started at a recent look and still without a job (not on a core
                // yet, under a CPU hog) are about to take queued jobs: only the jobs beyond
                // them want a thread. Trusted for `STARTING` only: a thread that never took
                // a job must not hide one for good.
                let starting = last_growth
                    .filter(|(at, _)| at.elapsed() < STARTING)
                    .map_or(0, |(_, started)| started.min(jobless));
                let unserved = self.queue.len().saturating_sub(starting);
                // No job taken for a while though jobs wait (busy threads waiting for a job
                // queued behind them, spinning): one more thread, now and then.
                let wanted = wanted.max(usize::from(stall.overdue(unserved)));
                let room = state.room(self.config.max_threads);
                for _ in 0..unserved.min(wanted).min(room) {
                    if Shared::start_thread(&self, &mut state, false).is_err() {
                        break;
                    }
                    grew += 1;
                }
            }
            stall.looked(progress > 0, grew > 0, self.queue.is_empty());
            if state.metrics.threads >= self.config.max_threads {
                state.supervisor.idle(&self.flags.armed);
            } else if self.queue.is_empty() {
                // A call that pushed after this look, found the supervisor armed and so did not
                // arm it (`after_uncounted_push` reads `armed` without the lock), would leave
                // its job with no supervisor watching. Disarm, then look at the queue again
                // (fenced against the call's push and its look at `armed`: one of the two sees
                // the other), and stay armed if a job came.
                state
                    .supervisor
                    .disarm_unless_queued(&self.flags.armed, || !self.queue.is_empty());
            }
            if grew > 0 {
                last_growth = Some((Instant::now(), grew));
                // The new threads find the queued jobs on their own (FIFO: the oldest first).
                // They count as idle, not claimed: a job may be popped by a busy thread before
                // they start, and a claim without a job would keep a thread from ever
                // retiring. A notification also reaches threads that went to sleep meanwhile.
                self.work.notify_all();
            }
        }
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use super::{STALLED_AFTER, Stall};
    use std::time::{Duration, Instant};

    /// A stall that began `ago`.
    fn stalled(ago: Duration, after: Duration) -> Stall {
        Stall {
            since: Instant::now().checked_sub(ago),
            after,
        }
    }

    #[test]
    fn a_stalled_queue_gets_a_thread_then_waits_twice_as_long_for_the_next() {
        // Not stalled long enough, or nothing queued: no thread.
        assert!(!stalled(STALLED_AFTER / 2, STALLED_AFTER).overdue(1));
        assert!(!stalled(2 * STALLED_AFTER, STALLED_AFTER).overdue(0));
        let mut stall = stalled(2 * STALLED_AFTER, STALLED_AFTER);
        assert!(stall.overdue(1));
        assert_eq!(
            stall.after,
            2 * STALLED_AFTER,
            "the next one waits twice as long"
        );
        assert!(
            !stall.overdue(1),
            "the stall starts again from the thread it got"
        );
        // A look with no job taken and nothing started keeps the stall's start; progress or a
        // thread started ends it, the back-off kept; an empty queue resets both.
        let since = stall.since;
        stall.looked(false, false, false);
        assert_eq!(stall.since, since);
        stall.looked(true, false, false);
        assert_eq!((stall.since, stall.after), (None, 2 * STALLED_AFTER));
        stall.looked(false, false, false);
        assert!(stall.since.is_some(), "a new stall begins");
        stall.looked(false, true, false);
        assert_eq!(stall.since, None);
        stall.looked(false, false, true);
        assert_eq!((stall.since, stall.after), (None, STALLED_AFTER));
    }
}
