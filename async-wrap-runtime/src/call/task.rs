//! The task cell: one allocation per call holding the body, then its result, and the waker.
//!
//! The same `Arc<Task<F, T>>` is seen two ways: as a [`Run`] by the executor (through
//! [`Job`](crate::Job)) and as an [`Output<T>`] by the awaiting future. Everything the two sides
//! share sits behind one mutex; it is taken at most three times per call and never contended
//! for long, so it costs about as much as a lock-free state machine without any `unsafe`.

use std::cell::RefCell;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::panic_guard::{Payload, drop_guarded, wake_guarded};
use crate::stats::call_site::CallSite;
use crate::stats::call_stats::{End, nanos};
use crate::sync::{AtomicBool, Mutex, MutexGuard, Ordering};

/// What happened when a job ran, for the pool's metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The body returned.
    Completed,
    /// The body panicked; the payload went to the future.
    Panicked,
    /// The future was dropped before the job started; the body was not called.
    Cancelled,
    /// The body had already been run elsewhere (inline, by the future that awaits it): this
    /// run did nothing, and counts nothing.
    Elsewhere,
}

/// A finished run: what happened, and the waker to call once the runner is ready for more work.
///
/// The pool marks its thread idle *before* waking the future, so that the caller's next call
/// finds that thread idle instead of starting a new one.
///
/// The same goes for a future that waits for the result without a waker (the adaptive wait):
/// it sees the result only when `wake` publishes it.
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    pub(crate) waker: Option<Waker>,
    /// The task whose result `wake` publishes to a waiting future.
    task: Option<Arc<dyn Run>>,
}

impl Finished {
    /// A run that did not call the body and has nobody to wake.
    pub(crate) const NOTHING: Finished = Finished {
        outcome: Outcome::Cancelled,
        waker: None,
        task: None,
    };

    /// Publishes the result to a future waiting for it, and wakes the future. A waker that
    /// panics cannot take the runner's thread down with it.
    pub(crate) fn wake(self) {
        if let Some(task) = self.task {
            task.publish();
        }
        if let Some(waker) = self.waker {
            wake_guarded(waker);
        }
    }
}

/// The executor's side of a task.
pub(crate) trait Run: Send + Sync {
    /// Runs the body once, catching a panic, and stores the result; the caller must then call
    /// [`Finished::wake`]. A second call, or a call after cancellation, does nothing. `start`
    /// is now: the runner has it already (the pool records it for the running job).
    fn run(self: Arc<Self>, start: Instant) -> Finished;
    /// When the call was handed to its executor (its future's first poll), if it was and its
    /// body has not started nor been cancelled.
    fn submitted_at(&self) -> Option<Instant>;
    /// Tells a future waiting without a waker that the result is there: called by
    /// [`Finished::wake`], once the runner is ready for more work.
    fn publish(&self);
    /// Who the call is: the wrapped function, and how its executor was named.
    fn site(&self) -> &'static CallSite;
    /// Whether the awaiting future has been dropped.
    fn is_cancelled(&self) -> bool;
    /// The executor dropped the job without running it: the future must hear of it.
    fn lose(&self);
}

/// How a job ended, as the future sees it.
pub(crate) enum Ended<T> {
    /// The body returned this.
    Returned(T),
    /// The body panicked with this payload.
    Panicked(Payload),
    /// The executor dropped the job without running it.
    Lost,
}

/// The future's side of a task.
pub(crate) trait Output<T>: Send + Sync {
    /// Takes the outcome if it is there, else remembers `cx`'s waker.
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Ended<T>>;
    /// The job is being handed to its executor: remembers `waker` (if given), to be woken when
    /// the outcome is there, so that the future need not look at the task again until it is
    /// woken; and, the first time, when (`now`) and whether the call is counted in its site's
    /// statistics.
    fn submit(&self, waker: Option<&Waker>, now: Instant, counted: bool);
    /// Whether the outcome is there: a hint for a future that waits for it without a waker
    /// (the adaptive wait), to be confirmed by `poll_output`.
    fn is_done(&self) -> bool;
    /// The future is gone: the job must not start, and a result already there is dropped.
    /// True if the body had not started (and now never will); and the panic of a `Drop` run
    /// here (the body's arguments, the result, a waker: user code), for the caller to resume
    /// once its own counts are done.
    fn abandon(&self) -> (bool, Option<Payload>);
    /// Runs the body on this thread if it has not started (its job waits in a queue), for a
    /// future that must not wait for it there. The job left in the queue then does nothing.
    /// `None` if the body had started or been cancelled.
    fn run_here(self: Arc<Self>) -> Option<Finished>;
    /// The future is gone, but the job still runs (or finishes) with `is_cancelled()` true, so
    /// that what the body owns is dropped on the executor's thread. A result already there is
    /// returned, for the caller to drop where it belongs (on the executor too).
    fn abandon_running(&self) -> Option<Result<T, Payload>>;
}

enum Stage<F, T> {
    /// Submitted or not, the body has not started.
    Pending(F),
    /// The body is running on some thread.
    Running,
    /// The body finished; its result waits for the future.
    Finished(Result<T, Payload>),
    /// The executor dropped the job without running it.
    Lost,
    /// The result was taken, or the future was dropped.
    Gone,
}

struct State<F, T> {
    stage: Stage<F, T>,
    waker: Option<Waker>,
    /// When the job was first handed to its executor, and whether the call is counted in its
    /// site's statistics.
    submitted: Option<(Instant, bool)>,
}

pub(crate) struct Task<F, T> {
    site: &'static CallSite,
    cancelled: AtomicBool,
    /// Set (after the stage) when the job was lost, or when the runner publishes the result
    /// (`Finished::wake`): a hint for a future waiting without a waker.
    done: AtomicBool,
    state: Mutex<State<F, T>>,
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(site: &'static CallSite, body: F) -> Arc<Self> {
        Arc::new(Task {
            site,
            cancelled: AtomicBool::new(false),
            done: AtomicBool::new(false),
            state: Mutex::new(State {
                stage: Stage::Pending(body),
                waker: None,
                submitted: None,
            }),
        })
    }

    /// The call's end, taken, if it has ended: its result, or its job lost.
    fn take_ended(state: &mut State<F, T>) -> Option<Ended<T>> {
        if !matches!(state.stage, Stage::Finished(_) | Stage::Lost) {
            return None;
        }
        Some(match mem::replace(&mut state.stage, Stage::Gone) {
            Stage::Finished(Ok(value)) => Ended::Returned(value),
            Stage::Finished(Err(payload)) => Ended::Panicked(payload),
            _ => Ended::Lost,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<F, T>> {
        // The lock is never held while user code runs (a body, a waker's `clone`, `wake` or
        // `drop`), so it cannot be poisoned; were it, the state it guards is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<F, T> Run for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>, start: Instant) -> Finished {
        let (body, submitted) = {
            let mut state = self.lock();
            match mem::replace(&mut state.stage, Stage::Running) {
                Stage::Pending(body) => (body, state.submitted),
                other => {
                    state.stage = other;
                    let outcome = if self.cancelled.load(Ordering::Relaxed) {
                        Outcome::Cancelled
                    } else {
                        Outcome::Elsewhere
                    };
                    return Finished {
                        outcome,
                        waker: None,
                        task: None,
                    };
                }
            }
        };
        let result = CURRENT.with(|current| {
            let outer = current.replace(Some(self.clone() as Arc<dyn Run>));
            let result = panic::catch_unwind(AssertUnwindSafe(body));
            *current.borrow_mut() = outer;
            result
        });
        let outcome = if result.is_ok() {
            Outcome::Completed
        } else {
            Outcome::Panicked
        };
        if let Some((at, true)) = submitted {
            // Before the result is published: a caller that has it finds the call counted.
            let wait = start.saturating_duration_since(at);
            self.site
                .ran(result.is_err(), nanos(wait), nanos(start.elapsed()));
        }
        let mut state = self.lock();
        if self.cancelled.load(Ordering::Relaxed) {
            state.stage = Stage::Gone;
            drop(state);
            // The future is gone: drop the result here, outside the lock. A payload whose own
            // `Drop` panics must not take the worker down.
            drop_guarded(result);
            Finished {
                outcome,
                waker: None,
                task: None,
            }
        } else {
            state.stage = Stage::Finished(result);
            let waker = state.waker.take();
            drop(state);
            Finished {
                outcome,
                waker,
                task: Some(self),
            }
        }
    }

    fn publish(&self) {
        self.done.store(true, Ordering::Release);
    }

    fn submitted_at(&self) -> Option<Instant> {
        let state = self.lock();
        // A body already run (inline, by its future) or cancelled has no queue wait to report.
        match state.stage {
            Stage::Pending(_) => state.submitted.map(|(at, _)| at),
            _ => None,
        }
    }

    fn site(&self) -> &'static CallSite {
        self.site
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn lose(&self) {
        let (body, waker) = {
            let mut state = self.lock();
            if !matches!(state.stage, Stage::Pending(_)) {
                return;
            }
            if let Some((_, true)) = state.submitted {
                self.site.ended(End::Refused);
            }
            let body = mem::replace(&mut state.stage, Stage::Lost);
            self.done.store(true, Ordering::Release);
            (body, state.waker.take())
        };
        // Whoever drops a job may be a pool's thread: the body's `Drop` and the waker are
        // user code, and neither may take that thread down.
        drop_guarded(body);
        if let Some(waker) = waker {
            wake_guarded(waker);
        }
    }
}

impl<F, T> Output<T> for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Ended<T>> {
        // A waker's `clone` and `drop` are user code, which may reach this task again (drop
        // the future that awaits it, say): neither runs under the lock. The common case, the
        // waker registered already, clones nothing and takes the lock once.
        let mut new = None;
        loop {
            let mut state = self.lock();
            if let Some(ended) = Self::take_ended(&mut state) {
                let old = state.waker.take();
                drop(state);
                drop((old, new));
                return Poll::Ready(ended);
            }
            if state
                .waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                drop(state);
                drop(new);
                return Poll::Pending;
            }
            if let Some(waker) = new.take() {
                let old = state.waker.replace(waker);
                drop(state);
                drop(old);
                return Poll::Pending;
            }
            drop(state);
            // Cloned out of the lock; the state is looked at again after.
            new = Some(cx.waker().clone());
        }
    }

    fn submit(&self, waker: Option<&Waker>, now: Instant, counted: bool) {
        // Cloned before, and the old one dropped after, the lock: user code (see `poll_output`).
        let new = waker.cloned();
        let mut state = self.lock();
        state.submitted.get_or_insert((now, counted));
        let old = match new {
            Some(waker) => state.waker.replace(waker),
            None => None,
        };
        drop(state);
        drop(old);
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn run_here(self: Arc<Self>) -> Option<Finished> {
        let finished = Run::run(self, Instant::now());
        matches!(finished.outcome, Outcome::Completed | Outcome::Panicked).then_some(finished)
    }

    fn abandon_running(&self) -> Option<Result<T, Payload>> {
        self.cancelled.store(true, Ordering::Relaxed);
        let (result, waker) = {
            let mut state = self.lock();
            let result = match mem::replace(&mut state.stage, Stage::Gone) {
                Stage::Finished(result) => Some(result),
                other => {
                    state.stage = other;
                    None
                }
            };
            (result, state.waker.take())
        };
        drop(waker);
        result
    }

    fn abandon(&self) -> (bool, Option<Payload>) {
        self.cancelled.store(true, Ordering::Relaxed);
        let (left_over, waker) = {
            let mut state = self.lock();
            let left_over = match state.stage {
                Stage::Running => Stage::Running,
                _ => mem::replace(&mut state.stage, Stage::Gone),
            };
            (left_over, state.waker.take())
        };
        let unstarted = matches!(left_over, Stage::Pending(_));
        // The body (with the arguments it owns) or the unread result is dropped here, on the
        // thread that dropped the future, and outside the lock. Its `Drop` is user code: a
        // panic there is handed back, so that the call is still counted as it ended.
        let panicked = panic::catch_unwind(AssertUnwindSafe(move || {
            drop(left_over);
            drop(waker);
        }))
        .err();
        (unstarted, panicked)
    }
}

#[cfg(not(async_wrap_loom))]
thread_local! {
    /// The job running on this thread, for [`is_cancelled`]. A stack in effect: a job run inline
    /// inside another restores the outer one when it ends.
    static CURRENT: RefCell<Option<Arc<dyn Run>>> = const { RefCell::new(None) };
}

#[cfg(async_wrap_loom)]
loom::thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Run>>> = RefCell::new(None);
}

/// Whether the future awaiting the job running on this thread has been dropped.
///
/// A body that loops for a long time can check this to stop early: nobody will read its result.
/// Outside a job (on an async task, or in plain synchronous code) it returns `false`.
///
/// # Example
///
/// ```
/// use async_wrap::{is_cancelled, spawn_on, BlockingPool};
///
/// static POOL: BlockingPool = BlockingPool::with_max_threads(1);
///
/// let steps = futures::executor::block_on(spawn_on(&POOL, || {
///     let mut steps = 0;
///     while !is_cancelled() && steps < 1_000 {
///         steps += 1;
///     }
///     steps
/// }));
/// assert_eq!(steps, 1_000); // the future was awaited to the end, never dropped
/// assert!(!is_cancelled());
/// ```
pub fn is_cancelled() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|job| job.is_cancelled())
    })
}

/// loom models of the cell's two races: the result hand-off against the future being dropped or
/// polled, and cancellation against a worker taking the job. Run with
/// `RUSTFLAGS="--cfg async_wrap_loom" cargo test -p async-wrap-runtime --release --lib loom`.
#[cfg(all(test, async_wrap_loom))]
mod loom_models {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::{Ended, Outcome, Output, Run, Task};
    use crate::stats::call_site::CallSite;

    static MODEL: CallSite = CallSite::new("model", "loom");

    /// Counts drops, so that a model can check every value is dropped exactly once.
    struct Tracked(Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that raises a loom flag.
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Polls `task` once while `other` runs, joins `other`, and returns how the task ended. If
    /// that first poll was pending, `other` must have woken the poller, and the end must be
    /// there at the next poll: a lost wake-up fails the model.
    fn poll_against<T>(
        task: &Task<impl FnOnce() -> T + Send + 'static, T>,
        other: loom::thread::JoinHandle<()>,
    ) -> Ended<T>
    where
        T: Send + 'static,
    {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let first = task.poll_output(&mut cx);
        other.join().unwrap();
        match first {
            Poll::Ready(ended) => ended,
            Poll::Pending => {
                assert!(flag.0.load(Ordering::SeqCst), "the wake-up was lost");
                match task.poll_output(&mut cx) {
                    Poll::Ready(ended) => ended,
                    Poll::Pending => panic!("woken, but the end is not there"),
                }
            }
        }
    }

    #[test]
    fn dropping_the_future_races_the_worker() {
        loom::model(|| {
            let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let body = {
                let (ran, dropped) = (ran.clone(), dropped.clone());
                let captured = Tracked(dropped.clone());
                move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    drop(captured);
                    Tracked(dropped)
                }
            };
            let task = Task::new(&MODEL, body);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).outcome)
            };
            let _ = Output::abandon(&*task);
            let outcome = worker.join().unwrap();
            drop(task);
            let ran = ran.load(Ordering::SeqCst);
            match outcome {
                // Started before the drop: ran once; the argument and the result were dropped.
                Outcome::Completed => assert_eq!((ran, dropped.load(Ordering::SeqCst)), (1, 2)),
                // Dropped first: the body never ran, and its captured argument was dropped once.
                Outcome::Cancelled => assert_eq!((ran, dropped.load(Ordering::SeqCst)), (0, 1)),
                Outcome::Panicked => unreachable!("the body does not panic"),
                Outcome::Elsewhere => unreachable!("nothing else runs the body"),
            }
        });
    }

    /// A future abandoned while its job may be running (a dropped stream's refill): the result
    /// is dropped exactly once, by the worker if it sees the cancellation, else handed back to
    /// the abandoning side (to be dropped on the executor), never both, never neither.
    #[test]
    fn abandoning_a_running_job_races_the_worker() {
        loom::model(|| {
            let dropped = Arc::new(AtomicUsize::new(0));
            let result = Tracked(dropped.clone());
            let task = Task::new(&MODEL, move || result);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).outcome)
            };
            let handed_back = Output::abandon_running(&*task);
            let outcome = worker.join().unwrap();
            assert_eq!(outcome, Outcome::Completed);
            match handed_back {
                Some(result) => {
                    assert_eq!(dropped.load(Ordering::SeqCst), 0, "dropped twice");
                    drop(result);
                }
                None => assert_eq!(dropped.load(Ordering::SeqCst), 1, "not dropped"),
            }
            drop(task);
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn a_poll_racing_the_worker_never_loses_the_wake_up() {
        loom::model(|| {
            let task = Task::new(&MODEL, || 7_u32);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).wake())
            };
            assert!(matches!(poll_against(&task, worker), Ended::Returned(7)));
        });
    }

    /// A poll with a new waker replaces the registered one, cloning it out of the lock (a
    /// waker's `clone` and `drop` are user code): whichever waker the worker finds is woken,
    /// and a poll that saw no end before its clone looks again after it.
    #[test]
    fn a_poll_with_a_new_waker_racing_the_worker_never_loses_the_wake_up() {
        loom::model(|| {
            let task = Task::new(&MODEL, || 3_u8);
            let old = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
            task.submit(Some(&old), std::time::Instant::now(), false);
            drop(old);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).wake())
            };
            assert!(matches!(poll_against(&task, worker), Ended::Returned(3)));
        });
    }

    /// The adaptive wait: the future submits without a waker, looks at the task (one look
    /// stands for the spin), then polls, which registers its waker if the result is not
    /// there. Whatever the order against the worker, the wake-up is not lost.
    #[test]
    fn a_future_that_waits_without_a_waker_never_loses_the_wake_up() {
        loom::model(|| {
            let task = Task::new(&MODEL, || 5_u16);
            task.submit(None, std::time::Instant::now(), true);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).wake())
            };
            let _ = task.is_done();
            assert!(matches!(poll_against(&task, worker), Ended::Returned(5)));
        });
    }

    /// What the waiting future sees as done is there to take: the result is stored before it
    /// is published (a look that says done and a poll that finds nothing would make the wait
    /// pay nothing).
    #[test]
    fn a_published_result_is_there_to_take() {
        loom::model(|| {
            let task = Task::new(&MODEL, || 9_u8);
            task.submit(None, std::time::Instant::now(), false);
            let worker = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.run(std::time::Instant::now()).wake())
            };
            if task.is_done() {
                let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
                let polled = task.poll_output(&mut Context::from_waker(&waker));
                assert!(
                    matches!(polled, Poll::Ready(Ended::Returned(9))),
                    "published, but the result is not there"
                );
            }
            worker.join().unwrap();
        });
    }

    #[test]
    fn a_job_lost_by_its_executor_wakes_the_future() {
        loom::model(|| {
            let task = Task::new(&MODEL, || 1_u8);
            let loser = {
                let task: Arc<dyn Run> = task.clone();
                loom::thread::spawn(move || task.lose())
            };
            assert!(matches!(poll_against(&task, loser), Ended::Lost));
        });
    }
}
