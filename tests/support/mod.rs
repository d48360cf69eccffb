//! What several test files share. Each test crate uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::Wake;
use std::thread;
use std::time::{Duration, Instant};

/// Runs `scenario` on its own thread; fails if it has not finished within `limit`, so that a
/// hang fails the test instead of stalling the run.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    scenario: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(scenario());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the scenario panicked (its message is above)")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "the scenario did not finish within {limit:?}: a deadlock, a lost wake-up or a hang"
        ),
    }
}

/// Waits until `condition` holds, failing after 10 s.
pub(crate) fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// A waker whose `wake` panics, counting its calls: user code is hostile.
#[derive(Default)]
pub(crate) struct PanickingWaker(pub(crate) AtomicUsize);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a user's waker panics");
    }
}

/// Runs `future` on a current-thread tokio runtime beside a task that ticks every 2 ms, and
/// returns its output with the number of ticks: a runtime thread blocked by `future` does not
/// tick.
pub(crate) fn with_ticker<F: Future>(future: F) -> (F::Output, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let output = runtime.block_on({
        let ticks = ticks.clone();
        async move {
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            });
            let output = future.await;
            ticker.abort();
            output
        }
    });
    (output, ticks.load(Ordering::SeqCst))
}

/// A gate a job waits on (`gate.lock().unwrap().recv()`) until the test sends `go` (or drops it).
pub(crate) fn gate() -> (mpsc::Sender<()>, Arc<std::sync::Mutex<mpsc::Receiver<()>>>) {
    let (go, gate) = mpsc::channel();
    (go, Arc::new(std::sync::Mutex::new(gate)))
}

/// A pool named `name`, configured by `configure`, that logs every slow call it reports into
/// the returned list.
pub(crate) fn pool_reporting(
    name: &str,
    configure: impl FnOnce(async_wrap::Builder) -> async_wrap::Builder,
) -> (
    Arc<async_wrap::BlockingPool>,
    Arc<std::sync::Mutex<Vec<async_wrap::SlowCall>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let builder = async_wrap::BlockingPool::builder()
        .thread_name(name.to_owned())
        .on_slow_call(move |slow| log.lock().unwrap().push(slow.clone()));
    (Arc::new(configure(builder).build().unwrap()), seen)
}

/// The runner of a `harness = false` test binary (the process pool's, whose `main` must call
/// `init()` first): runs each test whose name contains the first non-flag argument, each under
/// `within(limit, ..)`, prints its outcome and time, and exits with 1 if any failed.
pub(crate) fn run_tests(tests: &[(&str, fn())], limit: Duration) {
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for &(name, test) in tests {
        if filter
            .as_deref()
            .is_some_and(|filter| !name.contains(filter))
        {
            continue;
        }
        let started = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| within(limit, test)));
        if outcome.is_ok() {
            passed += 1;
            println!("test {name} ... ok ({:?})", started.elapsed());
        } else {
            failed += 1;
            println!("test {name} ... FAILED ({:?})", started.elapsed());
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
