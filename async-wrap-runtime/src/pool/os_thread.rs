//! What the operating system says a pool thread is doing, for the supervisor's growth rule:
//! wanting a core (on one, or runnable and waiting for one) or off the cores (asleep in a
//! blocking call, stopped). Linux only, from `/proc/self/task/TID/stat`; elsewhere nothing is
//! known and the supervisor keeps its time-only rule.
//!
//! A thread learns its id once, as it starts ([`OsThread::current`]); the supervisor reads the
//! state only of threads whose job has run past its first look, a few microseconds each.

use std::time::Duration;

/// A thread's id as the operating system knows it (Linux's TID), or none.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct OsThread(u32);

/// What a thread's state says of it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scheduling {
    /// Running, or runnable and waiting for a core (Linux's `R`).
    WantsCore,
    /// Asleep (`S`, `D`, `I`), stopped (`T`, `t`) or otherwise off the cores: it will not
    /// get through the queue however many cores are idle.
    OffCore,
    /// Exited (its `/proc` entry is gone, or a zombie): its job is over.
    Gone,
}

impl OsThread {
    /// No id known: its state is never read.
    pub(super) const UNKNOWN: OsThread = OsThread(0);

    /// The calling thread's id (from the `/proc/thread-self` link, `PID/task/TID`), or
    /// [`UNKNOWN`](Self::UNKNOWN) where there is none to read.
    pub(super) fn current() -> Self {
        #[cfg(target_os = "linux")]
        if let Ok(link) = std::fs::read_link("/proc/thread-self") {
            return link
                .to_str()
                .and_then(|link| link.rsplit('/').next())
                .and_then(|tid| tid.parse().ok())
                .map_or(OsThread::UNKNOWN, OsThread);
        }
        OsThread::UNKNOWN
    }

    /// The number kept in a slot's atomic word (0: unknown).
    pub(super) fn to_word(self) -> u32 {
        self.0
    }

    pub(super) fn from_word(word: u32) -> Self {
        OsThread(word)
    }

    /// What the thread is doing now; `None` if its id is unknown or the system says nothing
    /// (a `/proc` that cannot be read: the caller keeps the time-only rule).
    pub(super) fn scheduling(self) -> Option<Scheduling> {
        if self == OsThread::UNKNOWN {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            use std::io::Read;
            // `PID (COMM) STATE ...`: a command name is at most 15 bytes, so 64 hold the state.
            let mut line = [0_u8; 64];
            let read = std::fs::File::open(format!("/proc/self/task/{}/stat", self.0))
                .and_then(|mut file| file.read(&mut line));
            match read {
                Ok(read) => parse_state(&line[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Some(Scheduling::Gone)
                }
                Err(_) => None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

/// The state in the start of a `/proc/.../stat` line: the character after the command name's
/// closing parenthesis (the last one: a name may hold parentheses and spaces).
fn parse_state(line: &[u8]) -> Option<Scheduling> {
    let close = line.iter().rposition(|&byte| byte == b')')?;
    match *line.get(close + 2)? {
        b'R' => Some(Scheduling::WantsCore),
        b'Z' | b'X' | b'x' => Some(Scheduling::Gone),
        _ => Some(Scheduling::OffCore),
    }
}

/// How long a job that wants a core must have run before it counts as CPU-bound: past it,
/// its thread is left out of the pool's concurrency, as Linux's workqueues do with a work item
/// that has used 10 ms of CPU without sleeping, so that the jobs queued behind it get a thread
/// of their own (the cores are shared) as long as no more of the pool's threads want a core
/// than there are cores, and one.
pub(super) const CPU_BOUND_AFTER: Duration = Duration::from_millis(4);

/// What one look of the supervisor found among the jobs running.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) struct Judged {
    /// Jobs past the first look whose thread is off the cores (or whose state is unknown: the
    /// time-only rule): each gets a thread for a job queued behind it.
    pub(super) blocked: usize,
    /// Jobs that want a core and have run past [`CPU_BOUND_AFTER`].
    pub(super) cpu_bound: usize,
}

impl Judged {
    /// Judges the running jobs: each by how long it has run and what its thread is doing
    /// (`None`: unknown), with `grow_after` the time a job must have run to count at all.
    pub(super) fn of(
        jobs: impl IntoIterator<Item = (Duration, Option<Scheduling>)>,
        grow_after: Duration,
    ) -> Self {
        let mut judged = Judged::default();
        for (ran, scheduling) in jobs {
            if ran < grow_after {
                continue;
            }
            match scheduling {
                None | Some(Scheduling::OffCore) => judged.blocked += 1,
                Some(Scheduling::WantsCore) if ran >= CPU_BOUND_AFTER => judged.cpu_bound += 1,
                // A job just ended with its thread: nothing to grow for.
                Some(Scheduling::WantsCore | Scheduling::Gone) => {}
            }
        }
        judged
    }

    /// Threads to start for the jobs queued, at most, in a pool of `threads`: one per blocked
    /// job, and one per CPU-bound job while no more than `cores + 1` of the pool's threads
    /// would want a core. Every thread not judged blocked counts as wanting one: a job under
    /// the first look is assumed on a core, and a thread without a job (one just started) is
    /// about to take a queued one. A job preempted by other work (a CPU hog elsewhere in the
    /// process) wants a core too: it never counts as blocked, so such jobs grow the pool by
    /// one thread beyond the cores at most.
    pub(super) fn threads_wanted(self, cores: usize, threads: usize) -> usize {
        let wanting_core = threads.saturating_sub(self.blocked);
        let shared = (cores + 1).saturating_sub(wanting_core);
        self.blocked + self.cpu_bound.min(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_state_is_read_after_the_last_parenthesis() {
        assert_eq!(
            parse_state(b"4242 (worker) S 1 2 3"),
            Some(Scheduling::OffCore)
        );
        assert_eq!(
            parse_state(b"4242 (a) R (b) R 1 2"),
            Some(Scheduling::WantsCore)
        );
        assert_eq!(
            parse_state(b"4242 (x) S) R 1 2"),
            Some(Scheduling::WantsCore)
        );
        assert_eq!(parse_state(b"4242 (db) D 1"), Some(Scheduling::OffCore));
        assert_eq!(parse_state(b"4242 (db) t 1"), Some(Scheduling::OffCore));
        assert_eq!(parse_state(b"4242 (db) Z 1"), Some(Scheduling::Gone));
        assert_eq!(parse_state(b"4242 (db"), None);
        assert_eq!(parse_state(b"4242 (db)"), None);
        assert_eq!(parse_state(b""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sleeping_thread_is_off_the_cores_and_a_spinning_one_wants_one() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, mpsc};

        let me = OsThread::current();
        assert_ne!(me, OsThread::UNKNOWN);
        // Reading its own state, a thread is running.
        assert_eq!(me.scheduling(), Some(Scheduling::WantsCore));

        let (told, id) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let sleeper = std::thread::spawn(move || {
            told.send(OsThread::current()).unwrap();
            std::thread::park();
        });
        let sleeping = id.recv().unwrap();
        let spinning_stop = Arc::clone(&stop);
        let (told, id) = mpsc::channel();
        let spinner = std::thread::spawn(move || {
            told.send(OsThread::current()).unwrap();
            while !spinning_stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let spinning = id.recv().unwrap();
        // The sleeper parks soon after it sent its id; a spinner is running or runnable.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sleeping.scheduling() != Some(Scheduling::OffCore) {
            assert!(
                std::time::Instant::now() < deadline,
                "the parked thread never slept"
            );
            std::thread::sleep(MS);
        }
        for _ in 0..20 {
            assert_eq!(spinning.scheduling(), Some(Scheduling::WantsCore));
        }
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        sleeper.thread().unpark();
        sleeper.join().unwrap();
        // Joined: gone.
        assert_eq!(sleeping.scheduling(), Some(Scheduling::Gone));
        assert_eq!(OsThread::UNKNOWN.scheduling(), None);
    }

    #[test]
    fn jobs_off_the_cores_count_as_blocked_and_unknown_ones_keep_the_time_rule() {
        let judged = Judged::of(
            [
                (MS / 2, Some(Scheduling::OffCore)),
                (2 * MS, Some(Scheduling::OffCore)),
                (2 * MS, None),
                (2 * MS, Some(Scheduling::WantsCore)),
                (2 * MS, Some(Scheduling::Gone)),
            ],
            MS,
        );
        assert_eq!(
            judged,
            Judged {
                blocked: 2,
                cpu_bound: 0
            }
        );
        assert_eq!(judged.threads_wanted(2, 5), 2);
    }

    #[test]
    fn cpu_bound_jobs_share_the_cores_with_one_more_thread_at_most() {
        let busy = (CPU_BOUND_AFTER, Some(Scheduling::WantsCore));
        // Two cores, two CPU-bound jobs: one more thread, for the job queued behind them.
        assert_eq!(Judged::of([busy, busy], MS).threads_wanted(2, 2), 1);
        // Three already want a core: none.
        assert_eq!(Judged::of([busy, busy, busy], MS).threads_wanted(2, 3), 0);
        assert_eq!(
            Judged::of([busy, (MS / 2, None), (MS / 2, None)], MS).threads_wanted(2, 3),
            0
        );
        // A thread just started for them, with no job yet, wants a core too.
        assert_eq!(Judged::of([busy, busy], MS).threads_wanted(2, 3), 0);
        // One CPU-bound job on two cores: one more, not two.
        assert_eq!(Judged::of([busy], MS).threads_wanted(2, 2), 1);
        // A preempted short job (wants a core, under CPU_BOUND_AFTER) grows nothing.
        assert_eq!(
            Judged::of([(2 * MS, Some(Scheduling::WantsCore))], MS).threads_wanted(2, 2),
            0
        );
        // Blocked jobs add theirs beside: cores are not what they wait for.
        let asleep = (2 * MS, Some(Scheduling::OffCore));
        assert_eq!(
            Judged::of([busy, busy, busy, asleep, asleep], MS).threads_wanted(2, 5),
            2
        );
        assert_eq!(
            Judged::of([busy, busy, asleep, asleep], MS).threads_wanted(2, 4),
            3
        );
    }
}
