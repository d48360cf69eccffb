//! The patterns that found the defects of issue 13, each run under a watchdog: a hang fails the
//! run instead of stalling it.
//!
//! - bursts from several calling threads, then idle past a short `keep_alive`, then one call;
//! - `QueueFull::Wait` pools with calls dropped while waiting and calls timed out;
//! - wakers that panic when a waiting call is woken;
//! - stop hooks slower than `keep_alive`, against `max_threads`;
//! - streams on a pool shut down mid-stream.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, QueueFull, spawn_on, stream_on};
use futures::{FutureExt, StreamExt};

/// Runs `pattern` on its own thread; exits the process if it has not finished within `limit`.
fn watched(name: &'static str, limit: Duration, pattern: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        pattern();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => runner.join().expect("the pattern's thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The pattern panicked: its assertion is the report.
            if let Err(payload) = runner.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            eprintln!("stress: pattern `{name}` did not finish within {limit:?}: a hang");
            std::process::exit(2);
        }
    }
}

/// Bursts from 4 calling threads, every thread retiring after a 20 ms `keep_alive`, then one
/// call that must complete, and no idle thread left spinning.
fn bursts_then_idle() {
    let pool = Arc::new(
        BlockingPool::builder()
            .max_threads(64)
            .keep_alive(Duration::from_millis(20))
            .thread_name("stress-bursts")
            .build()
            .unwrap(),
    );
    for _ in 0..10 {
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let calls = (0..32).map(|_| {
                        spawn_on(pool.clone(), || {
                            std::thread::sleep(Duration::from_millis(1));
                        })
                    });
                    futures::executor::block_on(futures::future::join_all(calls));
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
    }
    wait_until("every thread to retire", || pool.metrics().threads == 0);
    assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 7)), 7);
    wait_until("the last call's thread to retire", || {
        pool.metrics().threads == 0
    });
    pool.shutdown();
}

/// 16 tasks on a 2-thread runtime call a `Wait` pool of 2 threads with room for 1: some calls
/// are awaited (never refused), some dropped while waiting, some timed out.
fn wait_pool_with_drops_and_timeouts() -> u64 {
    let pool = Arc::new(
        BlockingPool::with_max_threads(2)
            .thread_name("stress-wait")
            .queue_capacity(1, QueueFull::Wait),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let awaited = runtime.block_on(async {
        let tasks: Vec<_> = (0..16_u64)
            .map(|task| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut awaited = 0;
                    for n in 0..400_u64 {
                        let call = spawn_on(pool.clone(), move || {
                            if n % 7 == 0 {
                                std::thread::sleep(Duration::from_micros(50));
                            }
                            task * 1_000 + n
                        })
                        .checked();
                        match (task + n) % 5 {
                            0 => {
                                let mut call = call;
                                let _ = futures::poll!(&mut call);
                                drop(call);
                            }
                            1 => {
                                let _ =
                                    tokio::time::timeout(Duration::from_micros(100), call).await;
                            }
                            _ => {
                                let value = call.await.expect("a Wait pool refused a call");
                                assert_eq!(value, task * 1_000 + n, "another call's result");
                                awaited += 1;
                            }
                        }
                    }
                    awaited
                })
            })
            .collect();
        let mut awaited = 0;
        for task in tasks {
            awaited += task.await.expect("a caller task failed its checks");
        }
        awaited
    });
    pool.shutdown();
    let metrics = pool.metrics();
    assert_eq!(metrics.rejected, 0, "{metrics:?}");
    assert!(metrics.completed >= awaited, "{metrics:?}");
    assert_eq!(metrics.threads, 0, "a thread survived shutdown");
    awaited
}

/// A waker whose `wake` panics.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a user's waker panics");
    }
}

/// A call waits for room with a waker that panics when the worker wakes it; the worker lives
/// on, the call still runs, and shutdown returns.
fn panicking_wakers() {
    let pool = Arc::new(
        BlockingPool::with_max_threads(1)
            .thread_name("stress-wakers")
            .queue_capacity(0, QueueFull::Wait),
    );
    for round in 0..20_u32 {
        let gate = Arc::new(Barrier::new(2));
        let held = spawn_on(pool.clone(), {
            let gate = gate.clone();
            move || {
                gate.wait();
                gate.wait();
            }
        });
        let held = std::thread::spawn(move || futures::executor::block_on(held));
        gate.wait();
        let mut waiting = spawn_on(pool.clone(), move || round);
        let waker = Waker::from(Arc::new(PanickingWaker));
        assert!(
            waiting
                .poll_unpin(&mut Context::from_waker(&waker))
                .is_pending()
        );
        gate.wait();
        held.join().unwrap();
        assert_eq!(futures::executor::block_on(waiting), round);
    }
    let metrics = pool.metrics();
    assert_eq!((metrics.threads, metrics.completed), (1, 40), "{metrics:?}");
    pool.shutdown();
}

/// A `max_threads(2)` pool whose threads retire after 2 ms and take 20 ms in their stop hook:
/// never more than 2 threads alive.
fn slow_stop_hooks() {
    let alive = Arc::new(Mutex::new((0_usize, 0_usize)));
    let pool = Arc::new(
        BlockingPool::builder()
            .max_threads(2)
            .keep_alive(Duration::from_millis(2))
            .thread_name("stress-hooks")
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
                move || {
                    std::thread::sleep(Duration::from_millis(20));
                    alive.lock().unwrap().0 -= 1;
                }
            })
            .build()
            .unwrap(),
    );
    for burst in 0..15_u32 {
        let calls = (0..4).map(|n| spawn_on(pool.clone(), move || burst + n));
        futures::executor::block_on(futures::future::join_all(calls));
        std::thread::sleep(Duration::from_millis(5));
    }
    pool.shutdown();
    let (now, peak) = *alive.lock().unwrap();
    assert_eq!(now, 0, "a thread did not finish its stop hook");
    assert!(
        peak <= 2,
        "{peak} threads of a max_threads(2) pool alive at once"
    );
}

/// A stream on a pool shut down after `taken` items: every item pulled comes out in order,
/// then one panic naming the pool, then the end.
fn stream_shut_down_mid_stream(taken: usize) {
    let pool = Arc::new(BlockingPool::with_max_threads(2).thread_name("stress-stream"));
    let mut items = stream_on(pool.clone(), 8, || 0..10_000_usize);
    let mut seen = Vec::new();
    futures::executor::block_on(async {
        while seen.len() < taken {
            seen.push(items.next().await.expect("an item before the shutdown"));
        }
    });
    pool.shutdown();
    let mut said = 0;
    loop {
        match std::panic::catch_unwind(AssertUnwindSafe(|| {
            futures::executor::block_on(items.next())
        })) {
            Ok(Some(item)) => {
                assert_eq!(said, 0, "an item after the stream said why it ended");
                seen.push(item);
            }
            Ok(None) => break,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default();
                assert!(message.contains("`stress-stream`"), "{message}");
                said += 1;
            }
        }
    }
    assert!(said <= 1, "the stream said why it ended {said} times");
    assert!(
        seen.iter().copied().eq(0..seen.len()),
        "an item pulled before the shutdown was lost"
    );
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs every pattern `rounds` times; returns a line for the report.
pub(crate) fn run(rounds: u64) -> String {
    let start = Instant::now();
    let awaited = Arc::new(AtomicUsize::new(0));
    for round in 0..rounds {
        watched(
            "bursts then idle",
            Duration::from_secs(60),
            bursts_then_idle,
        );
        let counter = awaited.clone();
        watched("Wait pool with drops", Duration::from_secs(60), move || {
            let n = wait_pool_with_drops_and_timeouts();
            counter.fetch_add(usize::try_from(n).unwrap_or(0), Ordering::Relaxed);
        });
        watched(
            "panicking wakers",
            Duration::from_secs(60),
            panicking_wakers,
        );
        watched("slow stop hooks", Duration::from_secs(60), slow_stop_hooks);
        let taken = usize::try_from(round % 13).unwrap_or(0) * 3;
        watched("stream shut down", Duration::from_secs(60), move || {
            stream_shut_down_mid_stream(taken);
        });
    }
    format!(
        "patterns: {rounds} rounds of bursts-then-idle, Wait pools with drops and timeouts \
         ({} calls awaited, none refused), panicking wakers, slow stop hooks and streams shut \
         down mid-stream in {:.1} s",
        awaited.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    )
}
