//! What the test binaries share: the watchdog, gates, wakers that count or misbehave, pools held
//! busy, the lock around the process-wide call-site statistics, and the runner of the
//! `harness = false` binaries. Each binary uses a part of it.
#![allow(dead_code)]

use std::any::Any;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use async_wrap::{BlockingFuture, BlockingPool, CallStats, QueueFull, async_wrap, spawn_on};
use futures::FutureExt;

/// The libtest name of the test `name` in the module `module_path` (`module_path!()`): its path
/// without the crate's name, as `--exact` wants it.
pub(crate) fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

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

/// What a job waits on until the test sends `go` (or drops it): `gate.lock().unwrap().recv()`.
pub(crate) type Gate = Arc<Mutex<mpsc::Receiver<()>>>;

/// A gate a job waits on (`gate.lock().unwrap().recv()`) until the test sends `go` (or drops it).
pub(crate) fn gate() -> (mpsc::Sender<()>, Gate) {
    let (go, gate) = mpsc::channel();
    (go, Arc::new(Mutex::new(gate)))
}

/// Polls `future` once with `waker`.
pub(crate) fn poll_with<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    future.poll_unpin(&mut Context::from_waker(waker))
}

/// Polls `future` once with a waker that does nothing.
pub(crate) fn poll_noop<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    poll_with(future, Waker::noop())
}

/// A waker that counts its wakes, and can be told to block inside `wake` until a gate opens.
#[derive(Default)]
pub(crate) struct CountingWaker {
    pub(crate) wakes: AtomicUsize,
    pub(crate) block: Mutex<Option<Gate>>,
}

impl CountingWaker {
    /// A counting waker, and the `Waker` made from it.
    pub(crate) fn new() -> (Arc<CountingWaker>, Waker) {
        let counting = Arc::new(CountingWaker::default());
        let waker = Waker::from(counting.clone());
        (counting, waker)
    }

    /// A waker that blocks in `wake` until `gate` opens.
    pub(crate) fn blocking(gate: Gate) -> (Arc<CountingWaker>, Waker) {
        let (counting, waker) = CountingWaker::new();
        *counting.block.lock().unwrap() = Some(gate);
        (counting, waker)
    }

    pub(crate) fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let block = self.block.lock().unwrap().clone();
        if let Some(gate) = block {
            let _ = gate.lock().unwrap().recv();
        }
    }
}

/// A job that holds its thread until the returned barrier is passed (once).
pub(crate) fn gated_job(pool: &Arc<BlockingPool>) -> (BlockingFuture<()>, Arc<std::sync::Barrier>) {
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let inside = barrier.clone();
    let future = spawn_on(pool.clone(), move || {
        inside.wait();
    });
    (future, barrier)
}

/// A job that holds its thread until the returned barrier is passed twice (once to know it
/// runs, once to let it go).
pub(crate) fn held_job(pool: &Arc<BlockingPool>) -> (BlockingFuture<()>, Arc<std::sync::Barrier>) {
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let inside = barrier.clone();
    let future = spawn_on(pool.clone(), move || {
        inside.wait();
        inside.wait();
    });
    (future, barrier)
}

/// Occupies the only thread of `pool` with a call that waits until `go` is sent or dropped;
/// returns once that call runs.
pub(crate) fn hold_the_only_thread(
    pool: &Arc<BlockingPool>,
) -> (mpsc::Sender<()>, BlockingFuture<()>) {
    let (go, gate) = gate();
    let mut busy = spawn_on(pool.clone(), move || {
        let _ = gate.lock().unwrap().recv();
    });
    assert!(poll_noop(&mut busy).is_pending());
    eventually("the pool's thread to be busy", || {
        pool.metrics().running == 1
    });
    (go, busy)
}

/// Runs `n` calls on `pool` that each wait for all the others (so the pool runs `n` threads at
/// once), and returns when all have returned.
pub(crate) fn all_at_once(pool: &Arc<BlockingPool>, n: usize) {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            spawn_on(pool.clone(), move || {
                barrier.wait();
            })
        })
        .collect();
    futures::executor::block_on(futures::future::join_all(calls));
}

/// A pool of one thread whose queue holds `capacity` jobs, `when_full` past that.
pub(crate) fn one_thread_pool(capacity: usize, when_full: QueueFull) -> Arc<BlockingPool> {
    Arc::new(
        BlockingPool::builder()
            .max_threads(1)
            .queue_capacity(capacity, when_full)
            .build()
            .unwrap(),
    )
}

/// Runs `f` on a thread of its own; its result arrives on the returned channel (wait for it
/// with `recv_timeout`: a hang fails the test there).
pub(crate) fn on_a_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// The text of a panic payload (a `&str` or a `String`), or "" for any other payload.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Silences the panics the tests provoke on purpose (their messages start with "on purpose:"),
/// leaving every other panic's message to the default hook.
pub(crate) fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if panic_text(info.payload()).starts_with("on purpose:") {
                return;
            }
            default(info);
        }));
    });
}

/// Counts the threads alive through a pool's start and stop hooks, and the most alive at once.
#[derive(Default)]
pub(crate) struct Census {
    pub(crate) alive: AtomicUsize,
    pub(crate) most: AtomicUsize,
    pub(crate) started: AtomicUsize,
    pub(crate) stopped: AtomicUsize,
}

impl Census {
    /// `builder`, its threads counted by a new census; `before_stop` runs in the stop hook before
    /// the thread is counted out.
    pub(crate) fn hooks(
        builder: async_wrap::Builder,
        before_stop: impl Fn() + Send + Sync + 'static,
    ) -> (async_wrap::Builder, Arc<Census>) {
        let census = Arc::new(Census::default());
        let (starts, stops) = (census.clone(), census.clone());
        let builder = builder
            .on_thread_start(move || starts.start())
            .on_thread_stop(move || {
                before_stop();
                stops.stop();
            });
        (builder, census)
    }

    fn start(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn stop(&self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A writer whose bytes the test can read.
#[derive(Clone, Default)]
pub(crate) struct Sink(pub(crate) Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `reset_call_sites` and `set_call_statistics` act on every call site of the process: a test
/// that calls them runs alone (`statistics_alone`), a test that reads a site's counts or relies
/// on the adaptive wait runs beside the others (`statistics_shared`).
static STATISTICS: RwLock<()> = RwLock::new(());

pub(crate) fn statistics_shared() -> RwLockReadGuard<'static, ()> {
    STATISTICS.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn statistics_alone() -> RwLockWriteGuard<'static, ()> {
    STATISTICS.write().unwrap_or_else(PoisonError::into_inner)
}

/// The statistics of the call site `path` (`module::function`), if it has had a counted call.
pub(crate) fn stats_of(path: &str) -> Option<CallStats> {
    async_wrap::call_sites().get(path).cloned()
}

/// The watchdog limit of most scenarios: a hang fails the test after it.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Every call counted is in flight or ended one way (`assert_balanced` shows the numbers).
pub(crate) fn assert_balanced(stats: &CallStats) {
    assert_eq!(
        stats.calls,
        stats.in_flight + stats.completed + stats.panicked + stats.cancelled + stats.refused,
        "{stats:?}"
    );
}

/// Every call counted is in flight or ended one way.
pub(crate) fn balanced(stats: &CallStats) -> bool {
    stats.calls
        == stats.in_flight + stats.completed + stats.panicked + stats.cancelled + stats.refused
}

/// A call on `pool` that returns 7 at once.
#[async_wrap(executor = pool)]
pub(crate) fn instant(pool: Arc<BlockingPool>) -> u8 {
    let _ = pool;
    7
}

/// The call-site path of `instant`.
pub(crate) const INSTANT: &str = concat!(module_path!(), "::instant");

/// A call on `pool` that waits until `gate` opens.
#[async_wrap(executor = pool)]
pub(crate) fn gated_on(pool: Arc<BlockingPool>, gate: Gate) {
    let _ = pool;
    let _ = gate.lock().unwrap().recv();
}

/// A call made now on `pool` returns (within 5 s): the pool goes on.
pub(crate) fn assert_a_later_call_runs(pool: &Arc<BlockingPool>) {
    let pool = pool.clone();
    let later = on_a_thread({
        let pool = pool.clone();
        move || futures::executor::block_on(spawn_on(pool, || 5))
    });
    assert_eq!(
        later.recv_timeout(Duration::from_secs(5)).ok(),
        Some(5),
        "a later call on the pool hangs: {:?}",
        pool.metrics()
    );
}

/// The slow-call reports of `function` among those `seen`.
pub(crate) fn reports_of(
    seen: &Mutex<Vec<async_wrap::SlowCall>>,
    function: &str,
) -> Vec<async_wrap::SlowCall> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|slow| slow.function() == function)
        .cloned()
        .collect()
}

/// How many times the thread `tid` of this process has gone to sleep and been woken.
pub(crate) fn voluntary_switches(tid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Busy for at least `us` microseconds (a run time bounded from below, not a sleep).
pub(crate) fn spin_for(us: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// The OS threads of this process whose name is `name` (as `/proc` shows it: 15 bytes at most).
pub(crate) fn thread_ids_named(name: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name).then(|| task.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// How many OS threads of this process have a name that starts with `prefix`.
pub(crate) fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
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

/// A scenario of a `harness = false` test binary: its name, and its function.
pub(crate) type Scenario = (&'static str, fn());

/// The runner of a `harness = false` test binary (the process pool's, whose `main` must call
/// `init()` first): runs each test whose name contains the first non-flag argument, each under
/// `within(limit, ..)` with its group's `limit`, prints its outcome and time, and exits with 1 if
/// any failed.
pub(crate) fn run_test_groups(groups: &[(&[Scenario], Duration)]) {
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for &(tests, limit) in groups {
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
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
