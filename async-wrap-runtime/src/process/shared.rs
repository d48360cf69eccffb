//! The state a process pool shares with its driver threads, and the driver loop: one thread per
//! worker process, which takes calls from the queue, sends each to its worker and waits for the
//! reply (or the worker's death, the call's deadline, its cancellation), then completes the
//! caller's future.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::call::{Call, Reply};
use super::error::ProcessErrorKind;
use super::wire::Tag;
use super::worker_process::{self, NoReply, Worker};
use super::{Config, Metrics};
use crate::pool::{RunningJob, ShutdownReport};
use crate::stats::call_site::CallSite;
use crate::stats::call_stats::{End, nanos};

/// How often an idle driver checks that its worker is alive, to reap one that died.
const IDLE_CHECK: Duration = Duration::from_millis(100);

thread_local! {
    /// On a driver thread, the address of its pool's [`Shared`]: a shutdown called there (from
    /// a waker the driver runs) does not wait for that driver.
    static DRIVER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(super) struct Shared {
    config: Config,
    state: Mutex<State>,
    /// Idle drivers wait here for a call.
    work: Condvar,
    /// A shutdown waits here for the drivers to exit.
    drained: Condvar,
}

/// A driver's place: the call it runs, if any.
#[derive(Default)]
struct Slot {
    taken: bool,
    running: Option<Running>,
}

struct Running {
    site: &'static CallSite,
    since: Instant,
    wake: Arc<UnixStream>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<Call>>,
    /// Driver threads alive (each with at most one worker process).
    drivers: usize,
    /// Drivers waiting for a call, not yet claimed.
    idle: usize,
    /// Drivers claimed by a call and notified, not yet awake.
    wakeups: usize,
    closed: bool,
    /// A shutdown's deadline passed: running calls are stopped, their workers killed.
    killing: bool,
    slots: Vec<Slot>,
    metrics: Metrics,
}

/// How far a call that a driver took got.
enum Ran {
    /// It never reached a worker: none could be started (or its start was stopped), or the
    /// request could not be sent. No body ran.
    NotSent(ProcessErrorKind),
    /// It was sent to a worker: the reply, or why none came.
    Sent(Result<Reply, ProcessErrorKind>),
}

/// What a driver does next.
enum Next {
    Run(Arc<Call>),
    /// Idle past the timeout: retire the worker, then leave unless work arrived.
    Retire,
    /// The pool is closed and the queue empty.
    Exit,
}

impl Shared {
    pub(super) fn new(config: Config) -> Self {
        Shared {
            config,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            drained: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn metrics(&self) -> Metrics {
        let state = self.lock();
        let mut metrics = state.metrics;
        metrics.workers = state.drivers;
        metrics.idle_workers = state.idle;
        metrics.queued = state.queue.len();
        metrics.running = state
            .slots
            .iter()
            .filter(|slot| slot.running.is_some())
            .count();
        metrics
    }

    /// Stops taking calls, without waiting.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Queues a call, waking an idle driver or starting one.
    pub(super) fn submit(self: &Arc<Self>, call: Arc<Call>) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            if call.counted.is_some() {
                call.site.ended(End::Refused);
            }
            call.finish(Err(ProcessErrorKind::ShutDown));
            return;
        }
        // Who it is, should its driver fail to start.
        let id = Arc::as_ptr(&call);
        state.queue.push_back(call);
        if state.idle > 0 {
            state.idle -= 1;
            state.wakeups += 1;
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.drivers >= self.config.max_workers {
            // A busy (or retiring) driver takes it next.
            return;
        }
        state.drivers += 1;
        let slot = if let Some(free) = state.slots.iter().position(|slot| !slot.taken) {
            free
        } else {
            state.slots.push(Slot::default());
            state.slots.len() - 1
        };
        state.slots[slot].taken = true;
        drop(state);
        if let Err(why) = self.start_driver(slot) {
            self.driver_failed(slot, id, &why);
        }
    }

    /// Starts the driver thread of `slot`, with its wake-up socket pair: made here, so that a
    /// failure to make it (no descriptor free) fails a call instead of a driver leaving
    /// without a word.
    fn start_driver(self: &Arc<Self>, slot: usize) -> Result<(), String> {
        let (wake_rx, wake_tx) = UnixStream::pair()
            .and_then(|(rx, tx)| {
                rx.set_nonblocking(true)?;
                tx.set_nonblocking(true)?;
                Ok((rx, tx))
            })
            .map_err(|err| format!("cannot make a driver's wake-up socket pair: {err}"))?;
        let shared = Arc::clone(self);
        // `name` refuses a NUL (which `Builder::spawn` panics on); replaced here all the same,
        // so that a spawn never panics with the driver counted.
        std::thread::Builder::new()
            .name(
                format!(
                    "{}-driver",
                    self.config.name.unwrap_or("async-wrap-process")
                )
                .replace('\0', "?"),
            )
            .stack_size(256 << 10)
            .spawn(move || shared.drive(slot, &wake_rx, wake_tx))
            .map(drop)
            .map_err(|err| format!("cannot start a driver thread: {err}"))
    }

    /// The driver of `slot` could not start: the call it was started for (`call`, its address)
    /// fails with [`ProcessErrorKind::Start`] (unless another driver has taken it meanwhile),
    /// and so does every queued call if no driver is left to take them.
    fn driver_failed(&self, slot: usize, call: *const Call, why: &str) {
        let mut state = self.lock();
        state.drivers -= 1;
        state.slots[slot].taken = false;
        let mut failed: Vec<Arc<Call>> = Vec::new();
        if let Some(at) = state
            .queue
            .iter()
            .position(|queued| std::ptr::eq(Arc::as_ptr(queued), call))
        {
            failed.extend(state.queue.remove(at));
        }
        if state.drivers == 0 {
            failed.extend(state.queue.drain(..));
        }
        state.metrics.failed += failed.len() as u64;
        drop(state);
        self.drained.notify_all();
        for call in failed {
            if call.counted.is_some() {
                call.site.ended(End::Refused);
            }
            call.finish(Err(ProcessErrorKind::Start(why.to_owned())));
        }
    }

    /// The driver thread of slot `slot`.
    fn drive(self: Arc<Self>, slot: usize, wake_rx: &UnixStream, wake_tx: UnixStream) {
        DRIVER_OF.with(|driver| driver.set(Arc::as_ptr(&self) as usize));
        let wake_tx = Arc::new(wake_tx);
        let mut worker: Option<Worker> = None;
        let mut reply = Vec::new();
        loop {
            // A wake-up byte left from an earlier call is dropped before the next call starts,
            // never after: one written for the new call (its future dropped as it starts) must
            // reach the wait for its reply. (A late byte of an earlier call only wakes that
            // wait once, for nothing.)
            worker_process::drain(wake_rx);
            match self.next_call(slot, &wake_tx, &mut worker) {
                Next::Run(call) => {
                    let outcome = self.run(&mut worker, &call, wake_rx, &mut reply);
                    self.finished(slot, &call, outcome);
                    if let (Some(limit), Some(current)) =
                        (self.config.max_tasks_per_child, worker.as_ref())
                    {
                        if current.calls >= limit {
                            if let Some(old) = worker.take() {
                                old.retire(self.config.kill_grace);
                            }
                        }
                    }
                }
                Next::Retire => {
                    if let Some(old) = worker.take() {
                        old.retire(self.config.kill_grace);
                    }
                    let state = self.lock();
                    // A call queued meanwhile runs, even once the pool is closed: a shutdown
                    // lets the queued calls finish.
                    if state.queue.is_empty() {
                        // Leaves under the same lock that saw no work.
                        self.leave_locked(slot, state);
                        return;
                    }
                }
                Next::Exit => break,
            }
        }
        if let Some(old) = worker.take() {
            old.retire(self.config.kill_grace);
        }
        self.leave(slot);
    }

    fn leave(&self, slot: usize) {
        let state = self.lock();
        self.leave_locked(slot, state);
    }

    fn leave_locked(&self, slot: usize, mut state: MutexGuard<'_, State>) {
        state.drivers -= 1;
        state.slots[slot] = Slot::default();
        drop(state);
        self.drained.notify_all();
    }

    /// The next call for the driver of `slot`, marked as running there. Meanwhile, a worker
    /// that dies idle is reaped (it is checked every [`IDLE_CHECK`]).
    fn next_call(&self, slot: usize, wake: &Arc<UnixStream>, worker: &mut Option<Worker>) -> Next {
        let idle_until = Instant::now().checked_add(self.config.keep_alive);
        let mut state = self.lock();
        loop {
            while let Some(call) = state.queue.pop_front() {
                if call.start(wake) {
                    state.slots[slot].running = Some(Running {
                        site: call.site,
                        since: Instant::now(),
                        wake: Arc::clone(wake),
                    });
                    return Next::Run(call);
                }
                state.metrics.cancelled += 1;
                if call.counted.is_some() {
                    call.site.ended(End::Cancelled);
                }
            }
            if state.closed {
                return Next::Exit;
            }
            let left = idle_until.map(|until| until.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Next::Retire;
            }
            let mut wait = left.unwrap_or(Duration::MAX);
            if worker.is_some() {
                wait = wait.min(IDLE_CHECK);
            }
            state.idle += 1;
            let (guard, _) = self
                .work
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner);
            state = guard;
            if state.wakeups > 0 {
                // Claimed by a call (which took this driver out of `idle`).
                state.wakeups -= 1;
                continue;
            }
            state.idle -= 1;
            if worker.as_ref().is_some_and(|current| !current.is_alive()) {
                // Dead while idle (the OOM killer, an operator): reaped now, not left a zombie
                // until the next call.
                drop(state);
                if let Some(dead) = worker.take() {
                    dead.died();
                }
                state = self.lock();
            }
        }
    }

    /// Runs `call` on the driver's worker, starting one if needed.
    fn run(
        &self,
        worker: &mut Option<Worker>,
        call: &Call,
        wake: &UnixStream,
        reply: &mut Vec<u8>,
    ) -> Ran {
        let Some(mut request) = call
            .request
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ran::NotSent(ProcessErrorKind::Io("the call was sent twice".into()));
        };
        // One that died while idle is replaced before the call is sent to it.
        if worker.as_ref().is_some_and(|current| !current.is_alive()) {
            if let Some(dead) = worker.take() {
                dead.died();
            }
        }
        let current = if let Some(current) = worker {
            current
        } else {
            let started = Instant::now();
            let stop = || call.is_abandoned() || self.lock().killing;
            let new = match Worker::start(&self.config, wake, stop) {
                Ok(new) => new,
                Err(kind) => return Ran::NotSent(kind.unwrap_or(ProcessErrorKind::ShutDown)),
            };
            let mut state = self.lock();
            state.metrics.workers_started += 1;
            state.metrics.worker_start_total += started.elapsed();
            drop(state);
            worker.insert(new)
        };
        let pid = current.pid();
        current.calls += 1;
        let deadline = call
            .deadline
            .and_then(|deadline| Instant::now().checked_add(deadline));
        let stop = || call.is_abandoned() || self.lock().killing;
        let sent = match request.bytes() {
            Ok(bytes) => current.send(bytes, wake, deadline, stop),
            // Nothing was written: the worker is fine, the request was not.
            Err(err) => {
                return Ran::NotSent(ProcessErrorKind::Serialization(format!(
                    "the arguments cannot be sent: {err}"
                )));
            }
        };
        drop(request);
        let outcome = sent.and_then(|()| current.reply(reply, wake, deadline, stop));
        let Err(no_reply) = outcome else {
            return Ran::Sent(Ok(Reply {
                body: std::mem::take(reply),
                pid,
            }));
        };
        let Some(current) = worker.take() else {
            unreachable!("the worker ran the call")
        };
        let grace = self.config.kill_grace;
        Ran::Sent(match no_reply {
            NoReply::Died => Err(worker_process::crashed(pid, current.died())),
            NoReply::Deadline => {
                current.kill(grace);
                Err(ProcessErrorKind::DeadlineExceeded(
                    call.deadline.unwrap_or_default(),
                ))
            }
            NoReply::Stopped => {
                current.kill(grace);
                Err(ProcessErrorKind::ShutDown)
            }
            NoReply::Io(err) => {
                current.kill(Duration::ZERO);
                Err(ProcessErrorKind::Io(err.to_string()))
            }
        })
    }

    /// Counts a call's outcome, frees the slot, and completes the future.
    fn finished(&self, slot: usize, call: &Call, ran: Ran) {
        let (outcome, sent) = match ran {
            Ran::NotSent(kind) => (Err(kind), false),
            Ran::Sent(outcome) => (outcome, true),
        };
        let mut state = self.lock();
        let started = state.slots[slot]
            .running
            .take()
            .map(|running| running.since);
        if let (Some(submitted), Some(started)) = (call.counted, started) {
            if sent {
                // A call sent to a worker that did not return (a panic, a crash, a kill, a
                // reply saying it could not run) counts as panicked: see the `ProcessPool`
                // docs, "Call-site statistics".
                let returned = matches!(&outcome, Ok(reply) if reply.body.first() == Some(&(Tag::Returned as u8)));
                call.site.ran(
                    !returned,
                    nanos(started.saturating_duration_since(submitted)),
                    nanos(started.elapsed()),
                );
            } else if call.is_abandoned() {
                // Dropped while its worker started: no body ran.
                call.site.ended(End::Cancelled);
            } else {
                // No worker could take it: no body ran.
                call.site.ended(End::Refused);
            }
        }
        let metrics = &mut state.metrics;
        match &outcome {
            Ok(reply) if reply.body.first() == Some(&(Tag::Panicked as u8)) => {
                metrics.panicked += 1;
            }
            Ok(_) => metrics.completed += 1,
            Err(ProcessErrorKind::Crashed { .. }) => metrics.crashed += 1,
            Err(ProcessErrorKind::DeadlineExceeded(_) | ProcessErrorKind::ShutDown) => {
                metrics.killed += 1;
            }
            Err(_) => metrics.failed += 1,
        }
        if call.is_abandoned() {
            metrics.abandoned += 1;
        }
        drop(state);
        call.finish(outcome);
    }

    /// Closes the pool, waits for the running and queued calls up to `timeout`, then kills the
    /// workers still running calls and waits for every driver to reap its worker and exit.
    pub(super) fn shutdown(&self, timeout: Option<Duration>) -> ShutdownReport {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        // Called on one of this pool's driver threads (a waker it runs), it does not wait for
        // itself: that driver ends its worker once back in its loop.
        let me =
            usize::from(DRIVER_OF.with(std::cell::Cell::get) == std::ptr::from_ref(self) as usize);
        let mut state = self.lock();
        let finished_before = state.metrics.finished();
        state.closed = true;
        self.work.notify_all();
        while state.drivers > me {
            match deadline {
                None => {
                    state = self
                        .drained
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    state = self
                        .drained
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        let still_running: Vec<RunningJob> = state
            .slots
            .iter()
            .filter_map(|slot| slot.running.as_ref())
            .map(|running| RunningJob {
                function: running.site.function(),
                running_for: running.since.elapsed(),
            })
            .collect();
        let queued: Vec<Arc<Call>> = state.queue.drain(..).collect();
        let still_queued = queued.len();
        let finished = state.metrics.finished() - finished_before;
        if state.drivers > me {
            state.killing = true;
            for running in state.slots.iter().filter_map(|slot| slot.running.as_ref()) {
                let _ = (&*running.wake).write(&[1]);
            }
        }
        drop(state);
        for call in queued {
            if call.counted.is_some() {
                call.site.ended(End::Refused);
            }
            call.finish(Err(ProcessErrorKind::ShutDown));
        }
        // Each worker left is killed within the grace period: this wait is bounded.
        let mut state = self.lock();
        while state.drivers > me {
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        ShutdownReport {
            finished,
            still_running,
            still_queued,
            threads_left: me,
        }
    }
}
