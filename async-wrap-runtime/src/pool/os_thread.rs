//! What the operating system says a pool thread is doing, for the supervisor's growth rule:
//! whether it wants a core now (on one, or runnable and waiting for one) or is off the cores
//! (asleep in a blocking call, stopped), and how much of the time since the last look it
//! wanted a core (on a core or waiting for one). Linux only: the state from
//! `/proc/self/task/TID/stat`, the times from `/proc/self/task/TID/schedstat` (a few
//! microseconds each); elsewhere nothing is known and the supervisor keeps its time-only rule.
//!
//! A thread learns its id once, as it starts ([`OsThread::current`]).

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

    /// The time the thread has spent on a core and waiting for one (Linux's `schedstat`: run
    /// time and run delay, added), so far; `None` if unknown. Up to date for a thread off the
    /// cores; for one on a core, up to a scheduler tick behind.
    pub(super) fn wanting_time(self) -> Option<Duration> {
        if self == OsThread::UNKNOWN {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            let text =
                std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", self.0)).ok()?;
            parse_schedstat(&text)
        }
        #[cfg(not(target_os = "linux"))]
        None
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

/// Run time plus run delay from a `/proc/.../schedstat` line (`RUN_NS DELAY_NS SLICES`).
fn parse_schedstat(line: &str) -> Option<Duration> {
    let mut fields = line.split_ascii_whitespace();
    let run: u64 = fields.next()?.parse().ok()?;
    let delay: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_nanos(run.saturating_add(delay)))
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

/// A thread that wanted a core (was on one, or waiting for one) for at least this share of the
/// time since the last look is busy: whatever its state now, it is not blocked.
pub(super) const BUSY: f64 = 0.5;

/// What the supervisor saw of one running job and its thread.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) struct Observed {
    /// How long the job has run.
    pub(super) ran: Duration,
    /// The share of the time since the last look that the thread wanted a core (on one or
    /// waiting for one), if both looks read its times.
    pub(super) wanting: Option<f64>,
    /// What its state says now, if read.
    pub(super) scheduling: Option<Scheduling>,
}

impl Observed {
    /// Whether the state is worth reading: the times do not already say the thread is busy,
    /// and (with no times) the job has run past the first look.
    pub(super) fn wants_state(wanting: Option<f64>, ran: Duration, grow_after: Duration) -> bool {
        match wanting {
            Some(share) => share < BUSY,
            None => ran >= grow_after,
        }
    }
}

/// What one look of the supervisor found among the jobs running.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) struct Judged {
    /// Jobs whose thread is off the cores (or, with no times and no state to read, that have
    /// run past the first look: the time-only rule): each gets a thread for a job behind it.
    pub(super) blocked: usize,
    /// Jobs that want a core and have run past [`CPU_BOUND_AFTER`].
    pub(super) cpu_bound: usize,
}

impl Judged {
    /// Judges the running jobs, with `grow_after` the time a job must have run to count when
    /// its thread's times say nothing.
    ///
    /// With the times read at two looks, a thread that wanted a core for at least [`BUSY`] of
    /// the time between them is busy (computing, or preempted: other threads had the cores),
    /// even if a look catches it in a short sleep; one that wanted less is blocked unless its
    /// state says it wants a core now, whatever its job's age: a thread asleep nearly all the
    /// time in jobs shorter than a look (700 µs round trips) is blocked too. Without the times,
    /// a job counts once it has run `grow_after`, by its state (unknown: blocked).
    pub(super) fn of(jobs: impl IntoIterator<Item = Observed>, grow_after: Duration) -> Self {
        let mut judged = Judged::default();
        for job in jobs {
            let long = job.ran >= CPU_BOUND_AFTER;
            match (job.wanting, job.scheduling) {
                (Some(share), _) if share >= BUSY => judged.cpu_bound += usize::from(long),
                (None, _) if job.ran < grow_after => {}
                (_, None | Some(Scheduling::OffCore)) => judged.blocked += 1,
                (_, Some(Scheduling::WantsCore)) => judged.cpu_bound += usize::from(long),
                // A job just ended with its thread: nothing to grow for.
                (_, Some(Scheduling::Gone)) => {}
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

    /// A job seen without its thread's times: how long it ran, and its state.
    fn seen(ran: Duration, scheduling: Option<Scheduling>) -> Observed {
        Observed {
            ran,
            wanting: None,
            scheduling,
        }
    }

    /// A job whose thread's times were read at two looks: the share of the time between them
    /// it wanted a core, and its state.
    fn clocked(ran: Duration, wanting: f64, scheduling: Option<Scheduling>) -> Observed {
        Observed {
            ran,
            wanting: Some(wanting),
            scheduling,
        }
    }

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
                seen(MS / 2, Some(Scheduling::OffCore)),
                seen(2 * MS, Some(Scheduling::OffCore)),
                seen(2 * MS, None),
                seen(2 * MS, Some(Scheduling::WantsCore)),
                seen(2 * MS, Some(Scheduling::Gone)),
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
        let busy = seen(CPU_BOUND_AFTER, Some(Scheduling::WantsCore));
        // Two cores, two CPU-bound jobs: one more thread, for the job queued behind them.
        assert_eq!(Judged::of([busy, busy], MS).threads_wanted(2, 2), 1);
        // Three already want a core: none.
        assert_eq!(Judged::of([busy, busy, busy], MS).threads_wanted(2, 3), 0);
        assert_eq!(
            Judged::of([busy, seen(MS / 2, None), seen(MS / 2, None)], MS).threads_wanted(2, 3),
            0
        );
        // A thread just started for them, with no job yet, wants a core too.
        assert_eq!(Judged::of([busy, busy], MS).threads_wanted(2, 3), 0);
        // One CPU-bound job on two cores: one more, not two.
        assert_eq!(Judged::of([busy], MS).threads_wanted(2, 2), 1);
        // A preempted short job (wants a core, under CPU_BOUND_AFTER) grows nothing.
        assert_eq!(
            Judged::of([seen(2 * MS, Some(Scheduling::WantsCore))], MS).threads_wanted(2, 2),
            0
        );
        // Blocked jobs add theirs beside: cores are not what they wait for.
        let asleep = seen(2 * MS, Some(Scheduling::OffCore));
        assert_eq!(
            Judged::of([busy, busy, busy, asleep, asleep], MS).threads_wanted(2, 5),
            2
        );
        assert_eq!(
            Judged::of([busy, busy, asleep, asleep], MS).threads_wanted(2, 4),
            3
        );
    }

    #[test]
    fn with_the_times_a_thread_mostly_wanting_a_core_is_busy_and_one_mostly_asleep_is_blocked() {
        // Caught asleep in a short pause, but wanting a core 96 % of the time: busy.
        let pausing = clocked(10 * MS, 0.96, Some(Scheduling::OffCore));
        assert_eq!(
            Judged::of([pausing, pausing, pausing], MS),
            Judged {
                blocked: 0,
                cpu_bound: 3
            }
        );
        // Asleep 97 % of the time in jobs shorter than a look: blocked, young jobs or not.
        let round_trips = clocked(MS / 4, 0.03, Some(Scheduling::OffCore));
        assert_eq!(Judged::of([round_trips, round_trips], MS).blocked, 2);
        // Asleep most of the time but runnable now: it woke, not blocked.
        let woke = clocked(2 * MS, 0.1, Some(Scheduling::WantsCore));
        assert_eq!(Judged::of([woke], MS), Judged::default());
        // Asleep most of the time with no state to read: the times decide, blocked.
        assert_eq!(Judged::of([clocked(MS / 4, 0.0, None)], MS).blocked, 1);
        // Gone: nothing.
        assert_eq!(
            Judged::of([clocked(MS, 0.0, Some(Scheduling::Gone))], MS),
            Judged::default()
        );
        // The state is read only where the clock leaves the question open.
        assert!(!Observed::wants_state(Some(0.9), 10 * MS, MS));
        assert!(Observed::wants_state(Some(0.1), MS / 4, MS));
        assert!(!Observed::wants_state(None, MS / 4, MS));
        assert!(Observed::wants_state(None, 2 * MS, MS));
    }

    #[test]
    fn a_schedstat_line_gives_run_time_plus_run_delay() {
        assert_eq!(
            parse_schedstat("1500 250 7\n"),
            Some(Duration::from_nanos(1_750))
        );
        assert_eq!(parse_schedstat("1500"), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_threads_wanting_time_advances_while_it_computes_and_not_while_it_sleeps() {
        use std::sync::mpsc;
        let (told, id) = mpsc::channel();
        let (go, started) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            told.send(OsThread::current()).unwrap();
            started.recv().unwrap();
            let start = std::time::Instant::now();
            while start.elapsed() < 20 * MS {
                std::hint::spin_loop();
            }
            std::thread::sleep(100 * MS);
        });
        let thread = id.recv().unwrap();
        let before = thread.wanting_time().expect("a live thread's times");
        go.send(()).unwrap();
        std::thread::sleep(50 * MS);
        // Asleep now: its times are up to date, and hold the 20 ms it spun (on a core, or
        // waiting for one).
        let computed = thread.wanting_time().expect("a live thread's times");
        let spun = computed.saturating_sub(before);
        assert!(spun >= 19 * MS, "{spun:?}");
        std::thread::sleep(20 * MS);
        let slept = thread.wanting_time().expect("a sleeping thread's times");
        let asleep = slept.saturating_sub(computed);
        assert!(asleep < MS, "{asleep:?}");
        worker.join().unwrap();
        assert_eq!(thread.wanting_time(), None, "an exited thread has no times");
        assert_eq!(OsThread::UNKNOWN.wanting_time(), None);
    }
}
