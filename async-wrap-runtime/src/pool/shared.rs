//! The state a pool's threads and its calls share, and how a thread is started. Each step of
//! the protocol over this state has a sibling module of its own: [`ready`](super::ready) (who
//! is ready for work), [`gate`](super::gate) (shutdown against calls entering),
//! [`submit`](super::submit) (a call's side, and the growth rule), [`waiters`](super::waiters)
//! (calls waiting for room), [`worker`](super::worker) (a thread's side),
//! [`supervisor`](super::supervisor) (growth for blocked jobs), [`shutdown`](super::shutdown)
//! and [`metrics`](super::metrics).
//!
//! # Its parts
//!
//! `Shared` is composed of parts that own their fields, each in a file of its own below this
//! one, its methods the only way to its fields: the queue ([`queue`](super::queue)), the gate
//! ([`gate`](super::gate)), the ready word ([`ready`](super::ready)), the waiters
//! ([`waiters`](super::waiters): the list in `State`, its flag in `Flags`), the supervisor's
//! state ([`supervisor_state`](super::supervisor_state): likewise), the threads' slots and
//! handles ([`threads`](super::threads), in `State`) and the slow-call reports and watcher
//! handle ([`slow`](super::slow)). The locked halves live in `State` and the lock-free ones in
//! `Flags`, so that what calls read on every submission stays on its own cache lines. What is
//! still a plain field: the settings (`config`, `name`, the hooks, `eager_threads`, written
//! once), the condition variables, and `State::metrics` (its thread count written only by
//! `State::thread_joined` and `thread_left`, which keep the flags' copy in step). The flags are
//! in [`flags`](super::flags); the shutdown futures' wakers in
//! [`drain_wakers`](super::drain_wakers).
//!
//! # The hot path takes no lock
//!
//! A call pushes its job on a lock-free queue ([`Queue`]), and a thread that has just finished a
//! job pops the next one the same way; while jobs keep coming, the two share no cache line but
//! the queue slot they hand the job through. What a thread writes for every job (the job it
//! runs and since when, its counts) sits on its own cache lines ([`Slot`]). The pool's mutex is
//! taken only to start, wake, put to sleep or retire a thread, for a bounded queue, and by the
//! supervisor, `metrics` and `shutdown`; no user code runs under it.

use std::sync::{Arc, PoisonError};

use crossbeam_utils::CachePadded;

use super::config::{Config, DEFAULT_NAME, Extras, Hook};
use super::drain_wakers::DrainWakers;
use super::flags::{Flags, ThreadCount};
use super::gate::Gate;
use super::metrics::Metrics;
use super::queue::Queue;
use super::ready::Ready;
use super::slow::SlowCalls;
use super::supervisor_state::Supervision;
use super::threads::Threads;
use super::waiters::Waiters;
use crate::sync::thread;
use crate::sync::{Condvar, Mutex, MutexGuard};

pub(super) struct Shared {
    pub(super) config: Config,
    /// The thread-name prefix.
    pub(super) name: String,
    pub(super) on_thread_start: Option<Hook>,
    pub(super) on_thread_stop: Option<Hook>,
    /// Slow-call reports, and the watcher.
    pub(super) slow: SlowCalls,
    /// Threads started at once, without the supervisor's evidence: one per core.
    pub(super) eager_threads: usize,
    pub(super) queue: Queue,
    /// Shutdown, and the calls entering: written by calls, on lines of its own.
    pub(super) gate: Gate,
    /// What calls read on every submission and threads write only when they go idle or busy.
    pub(super) flags: CachePadded<Flags>,
    state: CachePadded<Mutex<State>>,
    /// Idle threads wait here for a job, or for shutdown.
    pub(super) work: Condvar,
    /// The supervisor waits here to be armed.
    pub(super) supervise: Condvar,
    /// Signalled when a thread exits, or a call leaves a closed gate, for `shutdown`.
    pub(super) drained: Condvar,
}

/// What the pool's mutex guards.
pub(super) struct State {
    pub(super) supervisor: Supervision,
    /// Futures waiting for room in a full queue, oldest first.
    pub(super) waiters: Waiters,
    /// The threads' slots, join handles, and the threads exiting.
    pub(super) threads: Threads,
    /// `threads`, `threads_started`, `inline`, `rejected`, and the outcomes of inline jobs; the
    /// workers' outcomes are in their slots.
    pub(super) metrics: Metrics,
    /// Tasks awaiting a `ShutdownFuture`: woken with `drained`.
    pub(super) drain_wakers: DrainWakers,
}

impl State {
    /// A thread joins the counts (it is about to start, or stays after all): `metrics.threads`
    /// and its copy without the lock change together.
    pub(super) fn thread_joined(&mut self, copy: &ThreadCount) {
        self.metrics.threads += 1;
        copy.set(self.metrics.threads);
    }

    /// A thread leaves the counts (it could not start, or is exiting).
    pub(super) fn thread_left(&mut self, copy: &ThreadCount) {
        debug_assert!(self.metrics.threads > 0, "a thread left a pool with none");
        self.metrics.threads -= 1;
        copy.set(self.metrics.threads);
    }

    /// Threads that may still start under `max_threads`. A thread that has left the counts but
    /// is still running its stop hook holds its place until the hook is done, so that the
    /// limit holds for the threads running hooks too, not only for those taking jobs (what
    /// it runs after, its thread-local destructors, may overlap a replacement).
    pub(super) fn room(&self, max_threads: usize) -> usize {
        max_threads.saturating_sub(self.metrics.threads + self.threads.exiting())
    }
}

impl Shared {
    /// The shared state of a pool, with its `min_threads` threads started.
    pub(super) fn start(config: Config, extras: Option<&Extras>) -> Arc<Self> {
        let extras = extras.unwrap_or(&Extras {
            name: None,
            on_thread_start: None,
            on_thread_stop: None,
            on_slow_call: None,
        });
        let name = extras
            .name
            .clone()
            .or_else(|| config.name.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let shared = Arc::new(Shared {
            config,
            slow: SlowCalls::new(
                config.slow_call,
                config.slow_queue_wait,
                extras.on_slow_call.clone(),
                Arc::from(name.as_str()),
            ),
            name,
            on_thread_start: extras.on_thread_start.clone(),
            on_thread_stop: extras.on_thread_stop.clone(),
            eager_threads: std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(config.max_threads)
                .max(1),
            queue: Queue::new(),
            gate: Gate::new(),
            flags: CachePadded::new(Flags::new()),
            state: CachePadded::new(Mutex::new(State {
                supervisor: Supervision::new(),
                waiters: Waiters::new(),
                threads: Threads::new(),
                metrics: Metrics::default(),
                drain_wakers: DrainWakers::new(),
            })),
            work: Condvar::new(),
            supervise: Condvar::new(),
            drained: Condvar::new(),
        });
        for _ in 0..config.min_threads {
            let mut state = shared.lock();
            // A failure here leaves the pool to start threads on demand instead.
            let _ = Shared::start_thread(&shared, &mut state, false);
        }
        #[cfg(not(async_wrap_loom))]
        Shared::start_watcher(&shared);
        shared
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This pool's identity, for the worker thread-local.
    pub(super) fn id(this: &Arc<Self>) -> usize {
        Arc::as_ptr(this).addr()
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.gate.is_closed()
    }

    /// A call left the gate after it closed: the threads waiting to leave, and `shutdown`, wait
    /// for the calls entering.
    pub(super) fn gate_drained(&self) {
        let state = self.lock();
        self.work.notify_all();
        self.notify_drained(state);
    }

    /// Queued jobs beyond the threads ready to take them (claimed for a job, or idle), as
    /// `ready` counts them. A ready thread may take any job, not the one it was claimed for,
    /// so claims alone can undercount the threads on their way by one for a moment; counting
    /// every ready thread keeps this exact whenever the word is. The word must be read before
    /// the queue: a pop in between then lowers the count, never raises it.
    pub(super) fn waiting(&self, ready: Ready) -> usize {
        self.queue.len().saturating_sub(ready.threads())
    }

    /// A snapshot of the pool's counters (`BlockingPool::metrics`).
    pub(super) fn metrics(&self) -> Metrics {
        let state = self.lock();
        let (metrics, running) = state.metrics.with_slots(state.threads.slots());
        let ready = self.flags.ready.load();
        Metrics {
            // A thread running its stop hook is still alive, and still holds its place.
            threads: metrics.threads + state.threads.exiting(),
            // Jobs a ready thread is on its way to take are not waiting.
            queued: self.waiting(ready),
            running,
            idle_threads: metrics.threads.saturating_sub(running),
            ..metrics
        }
    }

    /// Starts one more thread, counted as ready for work at once (claimed, if it is started for
    /// a job), so that a call made while it starts does not start another. Called with the lock
    /// held, and only with room under `max_threads` (`State::room`).
    ///
    /// The thread is counted (in `ready` and `threads`) *before* it is spawned: it may pop a
    /// job and leave the ready set before this function returns, and leaving must find the
    /// unit it takes. Counted after, the unit would outlive the thread: an idle unit that a
    /// call claims with nobody to wake, or a claim that keeps idle threads from ever retiring.
    pub(super) fn start_thread(
        this: &Arc<Self>,
        state: &mut State,
        claimed: bool,
    ) -> std::io::Result<()> {
        debug_assert!(
            state.room(this.config.max_threads) > 0,
            "a thread started past max_threads: {} threads and {} exiting, max {}",
            state.metrics.threads,
            state.threads.exiting(),
            this.config.max_threads
        );
        let number = state.metrics.threads_started + 1;
        let mut builder = thread::Builder::new().name(format!("{}-{number}", this.name));
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let (index, slot) = state.threads.take_slot();
        let shared = Arc::clone(this);
        state.thread_joined(&this.flags.threads);
        this.flags.ready.add_started(claimed);
        match builder.spawn(move || shared.work_loop(number, index, &slot)) {
            Ok(handle) => {
                state.metrics.threads_started = number;
                state.threads.spawned(number, handle);
                Ok(())
            }
            Err(err) => {
                this.flags.ready.remove_started(claimed);
                state.thread_left(&this.flags.threads);
                state.threads.spawn_failed(index);
                Err(err)
            }
        }
    }

    #[cfg(all(test, async_wrap_loom))]
    pub(super) fn ready_word(&self) -> Ready {
        self.flags.ready.load()
    }
}
