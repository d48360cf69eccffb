//! loom models of the pool's races: an idle thread claimed by a call while it decides to exit,
//! a call waking a sleeping thread, shutdown against a submission, a call waiting for room
//! against the slot that frees, a thread started for a queued job that takes it at once, a
//! waiting call's re-check against a worker between its pop and its return to the ready set,
//! a thread retiring (running its stop hook) against the limit, and a call queued behind a retiring
//! thread against shutdown. Run with
//! `RUSTFLAGS="--cfg async_wrap_loom" cargo test -p async-wrap-runtime --release --lib loom`.
//!
//! loom's `Condvar::wait_timeout` never times out, so a pool with the default `keep_alive` has
//! its idle threads sleep until notified, and one with `keep_alive` 0 has them leave as soon as
//! they are idle: the two ends of the keep-alive race.
//!
//! loom's `Thread::unpark` resumes its target whatever it is blocked on, a `Mutex::lock`
//! included, which then fails loom's `expected to be able to acquire lock`; std's only leaves a
//! token. So a call whose job may be run and woken while a third thread holds the pool's lock
//! and the caller waits for it is awaited with `poll_until_ready` (or polled once, and again
//! after `shutdown`), not `block_on`, which parks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::sync::{Condvar, Mutex};
use crate::{BlockingPool, QueueFull, block_on, spawn_on};

/// A pool whose shared state already exists: it is built lazily behind a std `OnceLock`, whose
/// synchronisation loom cannot see, so a model that let two threads race to build it would
/// report the race of the `OnceLock`, not of the pool.
fn started(pool: BlockingPool) -> Arc<BlockingPool> {
    let _ = pool.shared();
    Arc::new(pool)
}

fn model(scenario: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_threads = 5;
    builder.preemption_bound.get_or_insert(3);
    builder.check(scenario);
}

#[test]
fn a_call_claims_an_idle_thread_or_starts_one_as_it_leaves() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1).keep_alive(Duration::ZERO));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        // The thread now decides, under the lock, to leave; this call either claims it first or
        // finds it gone and starts another. Either way the job runs, once.
        assert_eq!(poll_until_ready(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        let metrics = pool.metrics();
        assert_eq!((metrics.threads, metrics.completed), (0, 2));
    });
}

#[test]
fn a_call_wakes_a_sleeping_thread() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        // The thread is between jobs, spinning, or asleep on the condition variable: the call
        // must reach it in every case (a lost notification deadlocks the model).
        assert_eq!(block_on(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        let metrics = pool.metrics();
        assert_eq!(
            (metrics.threads, metrics.threads_started, metrics.completed),
            (0, 1, 2)
        );
    });
}

#[test]
fn shutdown_races_a_submission_and_nothing_is_lost() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1));
        let caller = {
            let pool = pool.clone();
            loom::thread::spawn(move || block_on(spawn_on(pool, || 7).checked()))
        };
        pool.shutdown();
        assert_eq!(
            pool.metrics().threads,
            0,
            "shutdown returned with a thread alive"
        );
        match caller.join().unwrap() {
            Ok(value) => assert_eq!(value, 7),
            Err(err) => assert!(err.is_shut_down(), "{err}"),
        }
        let metrics = pool.metrics();
        assert_eq!(metrics.completed + metrics.rejected, 1, "{metrics:?}");
        assert_eq!(metrics.threads, 0, "{metrics:?}");
    });
}

#[test]
fn a_call_waiting_for_room_races_the_slot_that_frees() {
    model(|| {
        let pool = started(BlockingPool::with_max_threads(1).queue_capacity(0, QueueFull::Wait));
        let first = {
            let pool = pool.clone();
            loom::thread::spawn(move || block_on(spawn_on(pool, || 1)))
        };
        // Finds the only thread busy (and waits) or free; a wake-up lost between its waiting and
        // the thread freeing up deadlocks the model.
        assert_eq!(block_on(spawn_on(pool.clone(), || 2)), 2);
        assert_eq!(first.join().unwrap(), 1);
        pool.shutdown();
        assert_eq!(pool.metrics().completed, 2);
    });
}

#[test]
fn jobs_beyond_the_ring_go_through_the_overflow_and_all_run() {
    model(|| {
        // Under loom the ring holds two jobs: the third call's job overflows while the only
        // thread works through the ring, and refills it.
        let pool = started(BlockingPool::with_max_threads(1));
        let calls: Vec<_> = (0..3).map(|n| spawn_on(pool.clone(), move || n)).collect();
        let results: Vec<i32> = block_on(join_all(calls));
        assert_eq!(results, [0, 1, 2]);
        pool.shutdown();
        assert_eq!(pool.metrics().completed, 3);
    });
}

#[test]
fn a_thread_started_for_a_queued_job_is_counted_before_it_can_take_it() {
    model(|| {
        // The only thread leaves as soon as it is idle; the second call may find it leaving,
        // queue its job, and have a thread started for it (by itself, or by the leaving thread
        // on its way out) that pops the job at once. Counted after it was spawned, that thread
        // would leave the ready set before it was in it, and the unit counted for it would
        // outlive it: the word is not 0 once every thread has gone.
        let pool = started(BlockingPool::with_max_threads(1).keep_alive(Duration::ZERO));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        assert_eq!(poll_until_ready(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        assert_eq!(pool.metrics().threads, 0);
        let ready = pool.ready_word();
        assert_eq!(
            ready.threads(),
            0,
            "a ready unit outlived its thread: {ready:?}"
        );
    });
}

#[test]
fn a_waiting_call_whose_re_check_sees_room_is_never_refused() {
    model(|| {
        // One thread, room for one waiting job. After a first call the thread is idle; then
        // three calls: the first claims the thread, the second takes the queue's place, the
        // third must wait, and its re-check races the thread between taking the first job and
        // giving its claim back. A `Wait` pool only ever waits: every call runs.
        let pool = started(BlockingPool::with_max_threads(1).queue_capacity(1, QueueFull::Wait));
        assert_eq!(block_on(spawn_on(pool.clone(), || 0)), 0);
        let calls: Vec<_> = (1..4)
            .map(|n| spawn_on(pool.clone(), move || n).checked())
            .collect();
        let results = block_on(join_all(calls));
        assert!(
            results.iter().all(Result::is_ok),
            "a Wait pool refused a call: {:?}",
            pool.metrics()
        );
        pool.shutdown();
        assert_eq!(pool.metrics().completed, 4);
    });
}

#[test]
fn a_retiring_thread_holds_its_place_until_its_stop_hook_is_done() {
    model(|| {
        // The thread retires as soon as it is idle and runs its stop hook; a call made
        // meanwhile must not start a second thread while the first is still alive.
        let alive = Arc::new(Mutex::new((0_usize, 0_usize)));
        let pool = BlockingPool::builder()
            .max_threads(1)
            .keep_alive(Duration::ZERO)
            .on_thread_start({
                let alive = alive.clone();
                move || {
                    let mut alive = alive.lock().unwrap();
                    alive.0 += 1;
                    alive.1 = alive.1.max(alive.0);
                }
            })
            .on_thread_stop({
                let alive = alive.clone();
                move || alive.lock().unwrap().0 -= 1
            })
            .build()
            .unwrap();
        let pool = started(pool);
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        assert_eq!(poll_until_ready(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        let (now, peak) = *alive.lock().unwrap();
        assert_eq!(now, 0);
        assert!(
            peak <= 1,
            "{peak} threads of a max_threads(1) pool were alive at once"
        );
    });
}

#[test]
fn shutdown_runs_a_call_queued_behind_a_retiring_thread() {
    model(|| {
        // The only thread retires as soon as it is idle; a call made meanwhile may find the
        // pool at its limit (the thread's place still taken) and queue with no thread started,
        // and a shutdown races both. The leaving thread must start one for it, shut down or
        // not, and the shutdown is complete only with the queue empty: by the time `shutdown`
        // returns, the call has run or been refused, never left queued (nor dropped unrun).
        //
        // The caller does not wait in `block_on`: loom's `Thread::unpark` makes its target
        // runnable whatever it is blocked on, a `Mutex::lock` included (std's only leaves a
        // token for the next `park`), and a thread resumed so while the lock is still held
        // fails loom's own assertion `expected to be able to acquire lock`. The interleaving
        // that hit it: the caller, past its push, blocks on the pool's lock in
        // `after_uncounted_push`, held by `shutdown` between its look at `drained` and its
        // wait; the thread started for the job runs it and wakes the caller's `block_on`,
        // which unparks it. Harmless on std: an artefact of the model. So the caller polls its
        // call once (submitting it) and hands it to the main thread, which polls it again once
        // `shutdown` has returned: it must be ready by then. (The first call's `block_on` is
        // safe: the only other thread then is the one running its job, which wakes it holding
        // no lock.)
        let pool = started(BlockingPool::with_max_threads(1).keep_alive(Duration::ZERO));
        assert_eq!(block_on(spawn_on(pool.clone(), || 1)), 1);
        let caller = {
            let pool = pool.clone();
            loom::thread::spawn(move || {
                let woken = Arc::new(Woken::default());
                let waker = Waker::from(Arc::clone(&woken));
                let mut call = Box::pin(spawn_on(pool, || 2).checked());
                let first = call.as_mut().poll(&mut Context::from_waker(&waker));
                (call, first, woken)
            })
        };
        pool.shutdown();
        let (mut call, first, woken) = caller.join().unwrap();
        let result = match first {
            Poll::Ready(result) => result,
            Poll::Pending => match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(result) => {
                    assert!(
                        woken.get(),
                        "the call's job finished and its task was not woken"
                    );
                    result
                }
                Poll::Pending => panic!(
                    "shutdown returned with the call's job neither run nor refused: {:?}",
                    pool.metrics()
                ),
            },
        };
        match result {
            Ok(value) => assert_eq!(value, 2),
            Err(err) => assert!(err.is_shut_down(), "{err}"),
        }
        assert_eq!(pool.metrics().threads, 0, "a thread outlived the shutdown");
    });
}

/// A waker that only records that it was woken: it never unparks a thread (see
/// `shutdown_runs_a_call_queued_behind_a_retiring_thread` for why a model may need that). The
/// flag is a std atomic: loom runs every thread of a model on one OS thread.
#[derive(Default)]
struct Woken(AtomicBool);

impl Woken {
    fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits for `future` on this thread as `block_on` does, but on a [`Bell`] rather than in
/// `thread::park`, for a call whose job a thread may run and wake while another thread holds
/// the pool's lock and this one waits for it: loom's `Thread::unpark` would make this thread
/// runnable in the middle of its `Mutex::lock` (see
/// `shutdown_runs_a_call_queued_behind_a_retiring_thread`), where std's only leaves a token. A
/// wake-up lost still deadlocks the model.
fn poll_until_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let bell = Arc::new(Bell {
        rung: Mutex::new(false),
        ring: Condvar::new(),
    });
    let waker = Waker::from(Arc::clone(&bell));
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        let mut rung = bell.rung.lock().unwrap();
        while !*rung {
            rung = bell.ring.wait(rung).unwrap();
        }
        *rung = false;
    }
}

/// A waker that rings: a flag under a loom mutex, and a condition variable. Its notification
/// resumes only a thread waiting on it, never one blocked elsewhere.
struct Bell {
    rung: Mutex<bool>,
    ring: Condvar,
}

impl Wake for Bell {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.rung.lock().unwrap() = true;
        self.ring.notify_one();
    }
}

/// Polls every future once (submitting its job) before waiting for any, without the `futures`
/// crate (whose executor loom cannot see).
async fn join_all<F: Future + Unpin>(mut calls: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = calls.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (call, output) in calls.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match std::pin::Pin::new(call).poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}
