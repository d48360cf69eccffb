//! User code the pool calls that blocks or calls back into the pool: a waker that blocks, or
//! shuts the pool down, or waits on a call to the same pool; hooks and thread values that call
//! their own pool or shut it down. Nothing deadlocks, and nothing else waits for it.

use crate::support::{
    CountingWaker, LIMIT, eventually, gate, gated_on, hold_the_only_thread, instant, on_a_thread,
    one_thread_pool, poll_noop, poll_with, statistics_shared, within,
};
use async_wrap::{BlockingPool, QueueFull, StatefulPool, call_sites, spawn_on};
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// A waker whose last `drop` blocks until its gate opens, saying first that it is there.
struct BlocksWhenDropped {
    dropping: Arc<Barrier>,
    gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl std::task::Wake for BlocksWhenDropped {
    fn wake(self: Arc<Self>) {}
}

impl Drop for BlocksWhenDropped {
    fn drop(&mut self) {
        self.dropping.wait();
        let _ = self.gate.lock().unwrap().recv();
    }
}

// Before the fix the task cell replaced (so dropped) a future's old waker under its lock: a
// waker whose drop blocks kept the pool's thread, finishing that call, from taking the lock,
// and so from every later job, for as long as the drop blocked.
#[test]
fn a_waker_whose_drop_blocks_does_not_hold_up_the_pool_thread() {
    within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("held-by-a-waker"));
        let (go, gate) = crate::support::gate();
        let mut call = spawn_on(pool.clone(), move || {
            let _ = gate.lock().unwrap().recv();
        });
        let dropping = Arc::new(Barrier::new(2));
        let (release, held) = crate::support::gate();
        let blocking = Waker::from(Arc::new(BlocksWhenDropped {
            dropping: dropping.clone(),
            gate: held,
        }));
        assert!(
            call.poll_unpin(&mut Context::from_waker(&blocking))
                .is_pending()
        );
        drop(blocking);
        eventually("the call to run", || pool.metrics().running == 1);
        // Polled with another waker: the call drops the old one, which blocks.
        let poller = std::thread::spawn(move || {
            let _ = call.poll_unpin(&mut Context::from_waker(Waker::noop()));
            call
        });
        dropping.wait();
        // The call's body returns: the pool's thread must be free for the next job.
        go.send(()).unwrap();
        let (done, next) = std::sync::mpsc::channel();
        let later = std::thread::spawn({
            let pool = pool.clone();
            move || {
                futures::executor::block_on(spawn_on(pool, || ()));
                let _ = done.send(());
            }
        });
        let ran = next.recv_timeout(Duration::from_secs(3));
        release.send(()).unwrap();
        assert!(
            ran.is_ok(),
            "a later job did not run while a user's waker blocked in its drop: {:?}",
            pool.metrics()
        );
        let call = poller.join().unwrap();
        futures::executor::block_on(call);
        later.join().unwrap();
    });
}

#[test]
fn a_waker_that_blocks_in_wake_holds_no_lock_and_stalls_no_other_call() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(3));
        let (release, waker_gate) = gate();
        let (rec, waker) = CountingWaker::new();
        *rec.block.lock().unwrap() = Some(waker_gate);
        let mut call = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(10)));
        assert!(poll_with(&mut call, &waker).is_pending());
        eventually("the worker to block in the waker", || {
            rec.wakes.load(Ordering::SeqCst) > 0
        });
        // Everything else still works while that worker is stuck in the waker.
        let _ = pool.metrics();
        let _ = call_sites();
        let calls: Vec<_> = (0..20).map(|n| spawn_on(pool.clone(), move || n)).collect();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(async_wrap::block_on(futures::future::join_all(calls)));
        });
        let results = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("other calls stalled behind a blocked waker");
        assert_eq!(results, (0..20).collect::<Vec<_>>());
        release.send(()).unwrap();
        assert!(poll_noop(&mut call).is_ready());
        pool.shutdown();
    });
}

#[test]
fn a_waker_that_shuts_the_pool_down_when_woken_does_not_deadlock() {
    struct Shutter(Arc<BlockingPool>, AtomicUsize);
    impl Wake for Shutter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            let _ = self.0.shutdown_timeout(Duration::from_millis(200));
        }
    }
    within(Duration::from_secs(20), || {
        for _ in 0..20 {
            let pool = Arc::new(BlockingPool::with_max_threads(2));
            let shutter = Arc::new(Shutter(pool.clone(), AtomicUsize::new(0)));
            let waker = Waker::from(shutter.clone());
            let mut call = spawn_on(pool.clone(), || 3);
            let mut later = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(2)));
            assert!(poll_noop(&mut later).is_pending());
            match poll_with(&mut call, &waker) {
                Poll::Ready(v) => assert_eq!(v, 3),
                Poll::Pending => {
                    eventually("the waker to be woken", || {
                        shutter.1.load(Ordering::SeqCst) > 0
                    });
                    assert!(poll_noop(&mut call) == Poll::Ready(3));
                }
            }
            async_wrap::block_on(later);
            eventually("the pool to be empty", || pool.metrics().threads == 0);
            drop(waker);
        }
    });
}

/// A waker that, when woken, waits on a call to a pool.
struct CallingWaker {
    pool: Arc<BlockingPool>,
    results: Mutex<Vec<Result<u8, String>>>,
    armed: AtomicBool,
}

impl Wake for CallingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.armed.swap(false, Ordering::SeqCst) {
            let got = async_wrap::block_on(spawn_on(self.pool.clone(), || 9_u8).checked());
            self.results
                .lock()
                .unwrap()
                .push(got.map_err(|e| e.to_string()));
        }
    }
}

// Before the fix: hung (every run). The worker counts itself idle (`add_idle`) before it wakes the
// finished call's waker; a waker that waits (`block_on`) on a call to the same one-thread
// pool sees an idle thread, so the call is queued for that idle thread, which is itself,
// stuck in the waker: the "nested call on a saturated pool runs inline" rule does not apply.
#[test]
fn a_result_waker_that_waits_on_a_call_to_the_same_saturated_pool_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        for _ in 0..30 {
            let pool = Arc::new(BlockingPool::with_max_threads(1));
            let calling = Arc::new(CallingWaker {
                pool: pool.clone(),
                results: Mutex::new(Vec::new()),
                armed: AtomicBool::new(true),
            });
            let waker = Waker::from(calling.clone());
            let mut call = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(2)));
            if poll_with(&mut call, &waker).is_ready() {
                continue;
            }
            eventually("the waker's nested call to end", || {
                !calling.results.lock().unwrap().is_empty()
            });
            assert_eq!(calling.results.lock().unwrap()[0], Ok(9));
            assert!(poll_noop(&mut call).is_ready());
            assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 4)), 4);
            pool.shutdown();
        }
    });
}

#[test]
fn a_room_waker_that_waits_on_a_call_to_the_same_pool_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        let pool = one_thread_pool(1, QueueFull::Wait);
        let (go, holder) = hold_the_only_thread(&pool);
        let mut queued = spawn_on(pool.clone(), || 1);
        assert!(poll_noop(&mut queued).is_pending());
        let calling = Arc::new(CallingWaker {
            pool: pool.clone(),
            results: Mutex::new(Vec::new()),
            armed: AtomicBool::new(true),
        });
        let waker = Waker::from(calling.clone());
        let mut waiting = spawn_on(pool.clone(), || 2);
        assert!(poll_with(&mut waiting, &waker).is_pending());
        go.send(()).unwrap();
        eventually("the waker's nested call to end", || {
            !calling.results.lock().unwrap().is_empty()
        });
        assert_eq!(calling.results.lock().unwrap()[0], Ok(9));
        async_wrap::block_on(holder);
        assert_eq!(async_wrap::block_on(queued), 1);
        assert_eq!(async_wrap::block_on(waiting), 2);
        pool.shutdown();
    });
}

// Open (ignored): stalls for as long as the waker blocks (> 3 s here, every run). The worker counts
// itself idle before it wakes the finished call's waker, so a lone call made meanwhile claims
// that "idle" thread and is queued for it: no thread is started (the pool may grow to 4), and
// the supervisor does not see a job waiting behind a blocked one.
#[test]
#[ignore = "open: a worker counts itself idle before it wakes its previous caller, so a call claims a thread stuck in a user's waker"]
fn a_call_made_while_the_only_thread_is_stuck_in_a_waker_gets_a_thread_of_its_own() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(4));
        let (release, waker_gate) = gate();
        let (rec, waker) = CountingWaker::new();
        *rec.block.lock().unwrap() = Some(waker_gate);
        let mut call = spawn_on(pool.clone(), || thread::sleep(Duration::from_millis(5)));
        assert!(poll_with(&mut call, &waker).is_pending());
        eventually("the worker to block in the waker", || {
            rec.wakes.load(Ordering::SeqCst) > 0
        });
        // One call, alone: the pool may grow to 4 threads, and its one thread is stuck.
        let rx = on_a_thread({
            let pool = pool.clone();
            move || async_wrap::block_on(spawn_on(pool, || 8))
        });
        let got = rx.recv_timeout(Duration::from_secs(3));
        release.send(()).unwrap();
        assert_eq!(
            got.ok(),
            Some(8),
            "a call waited for a thread stuck in a user's waker though the pool could grow"
        );
        assert!(poll_noop(&mut call).is_ready());
        pool.shutdown();
    });
}

#[test]
fn a_stop_hook_that_blocks_on_a_call_to_its_own_pool_does_not_deadlock_shutdown() {
    within(Duration::from_secs(20), || {
        let slot: Arc<Mutex<Option<Arc<BlockingPool>>>> = Arc::new(Mutex::new(None));
        let pool = {
            let slot = slot.clone();
            Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .thread_name("stop-calls")
                    .on_thread_stop(move || {
                        let pool = slot.lock().unwrap().clone();
                        if let Some(pool) = pool {
                            let _ = async_wrap::block_on(spawn_on(pool, || 1).checked());
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        *slot.lock().unwrap() = Some(pool.clone());
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 2)), 2);
        pool.shutdown();
        *slot.lock().unwrap() = None;
    });
}

#[test]
fn a_stop_hook_that_waits_on_a_call_to_its_own_pool_while_retiring_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        let slot: Arc<Mutex<Option<Arc<BlockingPool>>>> = Arc::new(Mutex::new(None));
        let nested = Arc::new(Mutex::new(Vec::new()));
        let pool = {
            let (slot, nested) = (slot.clone(), nested.clone());
            Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .keep_alive(Duration::from_millis(5))
                    .thread_name("retire-calls")
                    .on_thread_stop(move || {
                        let pool = slot.lock().unwrap().take();
                        if let Some(pool) = pool {
                            let got = async_wrap::block_on(spawn_on(pool, || 1).checked());
                            nested.lock().unwrap().push(got.map_err(|e| e.to_string()));
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        *slot.lock().unwrap() = Some(pool.clone());
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 2)), 2);
        eventually("the retiring thread's nested call to end", || {
            !nested.lock().unwrap().is_empty()
        });
        assert_eq!(nested.lock().unwrap()[0], Ok(1));
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 3)), 3);
        pool.shutdown();
    });
}

static RETIRE_STATE_POOL: StatefulPool<RetireState> = StatefulPool::new(
    BlockingPool::with_max_threads(1)
        .thread_name("retire-state")
        .keep_alive(Duration::from_millis(5)),
    retire_state,
);

static RETIRE_STATE_NESTED: Mutex<Vec<Result<u8, String>>> = Mutex::new(Vec::new());

static RETIRE_STATE_ARMED: AtomicBool = AtomicBool::new(true);

struct RetireState;

fn retire_state() -> RetireState {
    RetireState
}

impl Drop for RetireState {
    fn drop(&mut self) {
        if RETIRE_STATE_ARMED.swap(false, Ordering::SeqCst) {
            let got = async_wrap::block_on(spawn_on(RETIRE_STATE_POOL.pool(), || 1_u8).checked());
            RETIRE_STATE_NESTED
                .lock()
                .unwrap()
                .push(got.map_err(|e| e.to_string()));
        }
    }
}

#[test]
fn a_thread_value_whose_drop_calls_its_own_pool_while_retiring_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        async_wrap::block_on(RETIRE_STATE_POOL.call(|_: &mut RetireState| ())).unwrap();
        eventually("the retiring value's nested call to end", || {
            !RETIRE_STATE_NESTED.lock().unwrap().is_empty()
        });
        assert_eq!(RETIRE_STATE_NESTED.lock().unwrap()[0], Ok(1));
        async_wrap::block_on(RETIRE_STATE_POOL.call(|_: &mut RetireState| ())).unwrap();
    });
}

/// What the nested calls a hook made returned.
type Nested = Arc<Mutex<Vec<Result<u8, String>>>>;

/// A one-thread pool whose start hook waits on a call to the pool itself.
fn start_hook_pool(min_threads: usize) -> (Arc<BlockingPool>, Nested) {
    let slot: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
    let nested = Arc::new(Mutex::new(Vec::new()));
    let pool = {
        let (slot, nested) = (slot.clone(), nested.clone());
        Arc::new(
            BlockingPool::builder()
                .max_threads(1)
                .min_threads(min_threads)
                .thread_name("start-calls")
                .on_thread_start(move || {
                    // Wait until the pool is reachable from here.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let pool = loop {
                        if let Some(pool) = slot
                            .lock()
                            .unwrap()
                            .as_ref()
                            .and_then(std::sync::Weak::upgrade)
                        {
                            break Some(pool);
                        }
                        if Instant::now() > deadline {
                            break None;
                        }
                        thread::sleep(Duration::from_millis(1));
                    };
                    if let Some(pool) = pool {
                        let got = async_wrap::block_on(spawn_on(pool, || 1_u8).checked());
                        nested.lock().unwrap().push(got.map_err(|e| e.to_string()));
                    }
                })
                .build()
                .unwrap(),
        )
    };
    *slot.lock().unwrap() = Some(Arc::downgrade(&pool));
    (pool, nested)
}

#[test]
fn a_start_hook_that_waits_on_a_call_to_its_own_one_thread_pool_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        let (pool, nested) = start_hook_pool(0);
        let rx = on_a_thread({
            let pool = pool.clone();
            move || async_wrap::block_on(spawn_on(pool, || 2_u8))
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).ok(),
            Some(2),
            "the call that started the thread never ran"
        );
        assert_eq!(nested.lock().unwrap().as_slice(), &[Ok(1)]);
        pool.shutdown();
    });
}

#[test]
fn a_start_hook_of_a_warm_thread_that_waits_on_a_call_to_its_own_pool_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        let (pool, nested) = start_hook_pool(1);
        // The warm thread starts with the pool, at its first use.
        let _ = pool.metrics();
        let rx = on_a_thread({
            let pool = pool.clone();
            move || async_wrap::block_on(spawn_on(pool, || 2_u8))
        });
        let got = rx.recv_timeout(Duration::from_secs(5)).ok();
        let seen = nested.lock().unwrap().clone();
        assert_eq!(
            got,
            Some(2),
            "the call never ran; the start hook's nested call: {seen:?}"
        );
        assert_eq!(seen, [Ok(1)]);
        pool.shutdown();
    });
}

#[test]
fn a_start_hook_that_shuts_its_pool_down_does_not_wait_for_itself() {
    within(Duration::from_secs(20), || {
        let slot: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
        let pool = {
            let slot = slot.clone();
            Arc::new(
                BlockingPool::builder()
                    .max_threads(1)
                    .thread_name("start-shuts")
                    .on_thread_start(move || {
                        let pool = slot
                            .lock()
                            .unwrap()
                            .as_ref()
                            .and_then(std::sync::Weak::upgrade);
                        if let Some(pool) = pool {
                            pool.shutdown();
                        }
                    })
                    .build()
                    .unwrap(),
            )
        };
        *slot.lock().unwrap() = Some(Arc::downgrade(&pool));
        // The call passed the gate before the shutdown: it runs (or is reported lost).
        let (tx, rx) = mpsc::channel();
        {
            let pool = pool.clone();
            thread::spawn(move || {
                let _ = tx.send(
                    async_wrap::block_on(spawn_on(pool, || 3_u8).checked())
                        .map_err(|e| e.to_string()),
                );
            });
        }
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a start hook's shutdown deadlocked its pool");
        assert!(
            got == Ok(3) || got.as_ref().is_err_and(|e| e.contains("start-shuts")),
            "{got:?}"
        );
        eventually("the thread to leave", || pool.metrics().threads == 0);
        drop(slot);
    });
}

/// A hook that shuts the pool down, from the watcher thread and from a worker (the end
/// of a job the watcher did not see), neither deadlocks nor loses a call.
#[test]
fn a_hook_that_shuts_the_pool_down_neither_deadlocks_nor_loses_a_call() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        for from_worker in [false, true] {
            let me: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
            let hook_pool = me.clone();
            let reports = Arc::new(AtomicUsize::new(0));
            let counted = reports.clone();
            let threshold = Duration::from_millis(10);
            let mut builder = BlockingPool::builder()
                .thread_name("hookdown")
                .max_threads(1)
                .on_slow_call(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let pool = hook_pool.lock().unwrap().clone();
                    if let Some(pool) = pool.and_then(|weak| weak.upgrade()) {
                        pool.shutdown();
                    }
                });
            builder = if from_worker {
                builder.slow_queue_wait(threshold)
            } else {
                builder.slow_call(threshold)
            };
            let pool = Arc::new(builder.build().unwrap());
            *me.lock().unwrap() = Some(Arc::downgrade(&pool));
            let (go, gate) = gate();
            let blocker = std::thread::spawn({
                let pool = pool.clone();
                move || futures::executor::block_on(gated_on(pool, gate))
            });
            eventually("the blocker runs", || pool.metrics().running == 1);
            let queued = std::thread::spawn({
                let pool = pool.clone();
                move || {
                    futures::executor::block_on(instant(pool).checked()).map_err(|e| e.to_string())
                }
            });
            eventually("the second call is queued", || pool.metrics().queued == 1);
            std::thread::sleep(Duration::from_millis(40));
            go.send(()).unwrap();
            blocker.join().unwrap();
            assert_eq!(queued.join().unwrap(), Ok(7), "from_worker: {from_worker}");
            eventually("shut down", || pool.is_shut_down());
            assert!(reports.load(Ordering::SeqCst) >= 1);
        }
    });
}

/// A hook that re-enters the pool (its metrics, the call-site table, and a call on the
/// same one-thread pool, waited for with `block_on`) from the watcher thread and from a worker
/// (a queue-wait report) neither deadlocks nor loses a call.
#[test]
fn a_hook_that_calls_back_into_the_pool_neither_deadlocks_nor_loses_a_call() {
    let _beside = statistics_shared();
    within(LIMIT, || {
        let me: Arc<Mutex<Option<std::sync::Weak<BlockingPool>>>> = Arc::new(Mutex::new(None));
        let hook_pool = me.clone();
        let nested = Arc::new(AtomicU64::new(0));
        let nested_sum = nested.clone();
        let hooks = Arc::new(AtomicU64::new(0));
        let hooks_run = hooks.clone();
        let pool = Arc::new(
            BlockingPool::builder()
                .thread_name("reenter")
                .max_threads(1)
                .slow_call(Duration::from_millis(10))
                .slow_queue_wait(Duration::from_millis(10))
                .on_slow_call(move |_| {
                    hooks_run.fetch_add(1, Ordering::SeqCst);
                    let pool = hook_pool.lock().unwrap().clone();
                    if let Some(pool) = pool.and_then(|weak| weak.upgrade()) {
                        let _ = pool.metrics();
                        let _ = call_sites().to_string();
                        let got = async_wrap::block_on(spawn_on(pool, || 40_u64)) + 2;
                        nested_sum.fetch_add(got, Ordering::SeqCst);
                    }
                })
                .build()
                .unwrap(),
        );
        *me.lock().unwrap() = Some(Arc::downgrade(&pool));
        let (go, gate) = gate();
        let blocker = std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(gated_on(pool, gate))
        });
        eventually("the blocker runs", || pool.metrics().running == 1);
        let queued = std::thread::spawn({
            let pool = pool.clone();
            move || futures::executor::block_on(instant(pool))
        });
        eventually("the second call is queued", || pool.metrics().queued == 1);
        std::thread::sleep(Duration::from_millis(40));
        go.send(()).unwrap();
        blocker.join().unwrap();
        assert_eq!(queued.join().unwrap(), 7);
        // At least one report from the watcher (the blocker) and one from the worker (the queue
        // wait; the watcher's own nested call may wait past the threshold too): every hook's
        // nested call returns.
        eventually("every hook's nested call returned", || {
            let hooks = hooks.load(Ordering::SeqCst);
            hooks >= 2 && nested.load(Ordering::SeqCst) == 42 * hooks
        });
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 1)), 1);
    });
}
