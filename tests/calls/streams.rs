//! Blocking iterators as streams (`stream_on`, `#[async_wrap]` on an iterator function): order,
//! delivery, early drop, panics, no pinned thread, a consumer never blocked, every user value
//! dropped on the pool, and what a stream says when its pool shuts down.

use crate::support::{eventually, gate, hold_the_only_thread, poll_with, within};
use async_wrap::{BlockingPool, is_cancelled, spawn_on, stream_on};
use futures::{FutureExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn items_arrive_in_order_each_exactly_once() {
    static POOL: BlockingPool = BlockingPool::with_max_threads(2);
    for batch in [1, 7, 64, 5_000] {
        let items: Vec<u32> =
            futures::executor::block_on(stream_on(&POOL, batch, || 0..1_000).collect());
        assert_eq!(items, (0..1_000).collect::<Vec<_>>(), "batch {batch}");
    }
    let empty: Vec<u8> = futures::executor::block_on(stream_on(&POOL, 4, Vec::<u8>::new).collect());
    assert!(empty.is_empty());
}

#[test]
fn dropping_the_stream_stops_an_endless_producer() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let mut stream = stream_on(pool.clone(), 16, move || {
        (0_u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
    });
    let first: Vec<u64> = futures::executor::block_on((&mut stream).take(5).collect());
    assert_eq!(first, [0, 1, 2, 3, 4]);
    drop(stream);
    eventually("the pool to be idle", || pool.metrics().running == 0);
    let after_drop = pulled.load(Ordering::SeqCst);
    assert!(
        after_drop <= 32,
        "at most two batches were pulled: {after_drop}"
    );
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        after_drop,
        "nothing pulled after the drop"
    );
}

#[test]
fn a_slow_consumer_pins_no_thread() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let mut stream = stream_on(pool.clone(), 8, || 0_u64..);
    assert_eq!(futures::executor::block_on(stream.next()), Some(0));
    // The consumer now does something else for a while: no refill holds the only thread.
    eventually("the refill to end", || pool.metrics().running == 0);
    assert_eq!(
        futures::executor::block_on(spawn_on(pool.clone(), || 42)),
        42
    );
    assert_eq!(futures::executor::block_on(stream.next()), Some(1));
}

#[test]
fn a_panic_in_next_resumes_after_the_items_before_it() {
    static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    let stream = stream_on(&POOL, 4, || {
        (0..20_u32).inspect(|&n| {
            if n == 10 {
                std::panic::panic_any(n);
            }
        })
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collected = seen.clone();
    let result = futures::executor::block_on(
        AssertUnwindSafe(stream.for_each(move |n| {
            collected.lock().unwrap().push(n);
            async {}
        }))
        .catch_unwind(),
    );
    assert_eq!(*seen.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(result.unwrap_err().downcast_ref::<u32>(), Some(&10));
}

/// An iterator that records which thread dropped it.
struct Recorded {
    dropped_on: Arc<Mutex<Option<String>>>,
}

impl Iterator for Recorded {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        Some(1)
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = thread::current().name().map(str::to_owned);
    }
}

#[test]
fn the_iterator_is_dropped_on_a_pool_thread() {
    static POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("iter-pool");
    let dropped_on = Arc::new(Mutex::new(None));
    let iter = Recorded {
        dropped_on: dropped_on.clone(),
    };
    let mut stream = stream_on(&POOL, 4, move || iter);
    // One item taken from a batch of four: the iterator waits, idle, in the stream.
    assert_eq!(futures::executor::block_on(stream.next()), Some(1));
    drop(stream);
    eventually("the iterator to be dropped", || {
        dropped_on.lock().unwrap().is_some()
    });
    assert_eq!(dropped_on.lock().unwrap().as_deref(), Some("iter-pool-1"));
}

#[test]
fn is_cancelled_turns_true_inside_next_once_the_stream_is_dropped() {
    let pool = Arc::new(BlockingPool::with_max_threads(1));
    let (inside, saw_cancel) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (inside2, saw_cancel2) = (inside.clone(), saw_cancel.clone());
    let mut stream = stream_on(pool.clone(), 4, move || {
        std::iter::from_fn(move || {
            inside2.store(true, Ordering::SeqCst);
            // A `next()` that blocks until nobody wants the item any more.
            let start = Instant::now();
            while !is_cancelled() && start.elapsed() < Duration::from_secs(20) {
                thread::sleep(Duration::from_millis(1));
            }
            saw_cancel2.store(is_cancelled(), Ordering::SeqCst);
            Some(0_u8)
        })
    });
    let waker = futures::task::noop_waker();
    assert!(
        stream
            .poll_next_unpin(&mut std::task::Context::from_waker(&waker))
            .is_pending()
    );
    eventually("next() to be called", || inside.load(Ordering::SeqCst));
    drop(stream);
    eventually("next() to see the cancellation", || {
        saw_cancel.load(Ordering::SeqCst)
    });
    eventually("the pool to be idle", || pool.metrics().running == 0);
}

#[test]
fn the_consumers_runtime_keeps_running_while_items_are_slow() {
    static POOL: BlockingPool = BlockingPool::with_max_threads(1);
    let (items, ticks) = crate::support::with_ticker(
        stream_on(&POOL, 2, || {
            (0..20).inspect(|_| thread::sleep(Duration::from_millis(5)))
        })
        .collect::<Vec<u32>>(),
    );
    assert_eq!(items, (0..20).collect::<Vec<_>>());
    // 20 items of 5 ms: about 100 ms, during which a blocked runtime would not tick.
    assert!(ticks >= 10, "the runtime ticked {ticks} times");
}

static LINES_POOL: BlockingPool = BlockingPool::with_max_threads(1).thread_name("lines");

/// The numbers up to `n`, produced by blocking work on a pool, as a stream.
#[async_wrap::async_wrap(stream, batch = 3, executor = LINES_POOL)]
fn numbers(n: u32) -> impl Iterator<Item = (u32, String)> + Send + 'static {
    // Runs on the pool, in the first refill: a place to open a file or a cursor.
    let thread = thread::current().name().unwrap_or("?").to_owned();
    (0..n).map(move |i| (i, thread.clone()))
}

/// Any `IntoIterator` works too, and the default batch applies.
#[async_wrap::async_wrap(stream)]
fn letters(word: String) -> Vec<char> {
    word.chars().collect()
}

#[test]
fn the_attribute_turns_an_iterator_function_into_a_stream() {
    let items: Vec<(u32, String)> = futures::executor::block_on(numbers(7).collect());
    assert_eq!(
        items.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    assert!(
        items.iter().all(|(_, thread)| thread == "lines-1"),
        "{items:?}"
    );
    let letters: String = futures::executor::block_on(letters("stream".into()).collect());
    assert_eq!(letters, "stream");
}

/// The lines of a file, opened on the pool: a missing file is an error the caller gets as a
/// value, before any item.
#[async_wrap::async_wrap(stream, batch = 2, executor = LINES_POOL)]
fn lines(
    path: std::path::PathBuf,
) -> std::io::Result<impl Iterator<Item = (String, String)> + Send + 'static> {
    use std::io::BufRead;
    // The thread that opened the file, to check that it is the pool's.
    let opener = thread::current().name().unwrap_or("?").to_owned();
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    Ok(file
        .lines()
        .map_while(Result::ok)
        .map(move |line| (line, opener.clone())))
}

/// Any `Result` path and any `IntoIterator` for the `Ok` value.
#[async_wrap::async_wrap(stream)]
fn parsed(text: String) -> Result<Vec<u32>, std::num::ParseIntError> {
    text.split(',').map(str::parse).collect()
}

#[test]
fn a_fallible_stream_opens_on_the_pool_and_returns_the_error_as_a_value() {
    let expected = std::fs::read_to_string("Cargo.toml").unwrap();
    let count = futures::executor::block_on(async {
        std::io::Result::Ok(lines("Cargo.toml".into()).await?.count().await)
    });
    assert_eq!(count.unwrap(), expected.lines().count());

    let items: Vec<(String, String)> = futures::executor::block_on(async {
        lines("Cargo.toml".into()).await.unwrap().collect().await
    });
    assert!(
        items.iter().all(|(_, opener)| opener == "lines-1"),
        "{items:?}"
    );

    let missing = futures::executor::block_on(lines("no such file".into()));
    assert_eq!(
        missing.err().map(|err| err.kind()),
        Some(std::io::ErrorKind::NotFound)
    );

    let numbers: Vec<u32> = futures::executor::block_on(async {
        parsed("1,2,3".into()).await.unwrap().collect().await
    });
    assert_eq!(numbers, [1, 2, 3]);
    assert!(futures::executor::block_on(parsed("1,x".into())).is_err());
}

/// One drop: what was dropped ("item" or "iterator"), the dropping thread's id, and its name.
type DropRecord = (&'static str, thread::ThreadId, Option<String>);

/// Where the user values a stream owns were dropped.
#[derive(Clone, Default)]
struct DropLog(Arc<Mutex<Vec<DropRecord>>>);

impl DropLog {
    fn record(&self, what: &'static str) {
        let current = thread::current();
        self.0
            .lock()
            .unwrap()
            .push((what, current.id(), current.name().map(str::to_owned)));
    }

    fn count(&self, what: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == what)
            .count()
    }

    /// The records made on the thread `consumer`.
    fn on(&self, consumer: thread::ThreadId) -> Vec<&'static str> {
        let log = self.0.lock().unwrap();
        log.iter()
            .filter(|r| r.1 == consumer)
            .map(|r| r.0)
            .collect()
    }

    /// The names of the threads that dropped something.
    fn threads(&self) -> Vec<Option<String>> {
        self.0.lock().unwrap().iter().map(|r| r.2.clone()).collect()
    }
}

/// An item whose `Drop` records its thread, unless the consumer took it (`taken`).
struct Item {
    log: DropLog,
    armed: bool,
    /// Panics in `Drop` (user code is hostile).
    panics: bool,
}

impl Item {
    /// The consumer has it: its drop is the consumer's business, not the stream's.
    fn taken(mut self) {
        self.armed = false;
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        if self.armed {
            self.log.record("item");
            assert!(!self.panics, "an item's Drop panics");
        }
    }
}

/// An endless iterator of `Item`s whose `Drop` records its thread; with a gate, each `next()`
/// waits for it (a closed gate lets every call through).
struct Source {
    log: DropLog,
    gate: Option<Arc<Mutex<std::sync::mpsc::Receiver<()>>>>,
    panics: bool,
}

impl Source {
    fn new(log: &DropLog) -> Self {
        Source {
            log: log.clone(),
            gate: None,
            panics: false,
        }
    }

    fn gated(log: &DropLog, gate: Arc<Mutex<std::sync::mpsc::Receiver<()>>>) -> Self {
        Source {
            log: log.clone(),
            gate: Some(gate),
            panics: false,
        }
    }
}

impl Iterator for Source {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        if let Some(gate) = &self.gate {
            let _ = gate.lock().unwrap().recv();
        }
        Some(Item {
            log: self.log.clone(),
            armed: true,
            panics: self.panics,
        })
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.log.record("iterator");
        assert!(!self.panics, "an iterator's Drop panics");
    }
}

fn noop_cx() -> std::task::Context<'static> {
    std::task::Context::from_waker(std::task::Waker::noop())
}

// Before the fix (19 of 500 runs): a refill the pool had finished and the
// stream had not collected was dropped with the stream, on the consumer's thread: the
// iterator's `Drop` (a file, a connection) and the batch's items ran on the async runtime.
#[test]
fn a_dropped_stream_drops_its_uncollected_batch_on_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("uncollected"));
        let log = DropLog::default();
        let (go, gate) = crate::support::gate();
        let source = Source::gated(&log, gate);
        let mut stream = stream_on(pool.clone(), 2, move || source);
        // The first refill starts, and waits in `next()`: the poll cannot see a result.
        assert!(stream.poll_next_unpin(&mut noop_cx()).is_pending());
        drop(go);
        // The refill ends (two items and the iterator, in the task), and nobody collects it.
        crate::support::eventually("the refill to finish", || {
            let metrics = pool.metrics();
            metrics.completed == 1 && metrics.running == 0
        });
        let consumer = thread::current().id();
        drop(stream);
        crate::support::eventually("the batch and the iterator to be dropped", || {
            log.count("item") == 2 && log.count("iterator") == 1
        });
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
        assert!(
            log.threads()
                .iter()
                .all(|name| name.as_deref() == Some("uncollected-1")),
            "{:?}",
            log.threads()
        );
    });
}

/// The race itself, looped: a stream dropped at any point of its refills never drops the
/// iterator or an item it has not handed out on the consumer's thread.
#[test]
fn a_stream_dropped_at_any_moment_never_drops_user_values_on_the_consumer() {
    const RUNS: usize = 500;
    crate::support::within(Duration::from_secs(120), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2).thread_name("racing"));
        let log = DropLog::default();
        let consumer = thread::current().id();
        for run in 0..RUNS {
            // Made by the first refill (a stream dropped unpolled has no iterator).
            let made = log.clone();
            let mut stream = stream_on(pool.clone(), 4, move || {
                made.record("made");
                Source::new(&made)
            });
            for _ in 0..run % 7 {
                futures::executor::block_on(stream.next()).unwrap().taken();
            }
            // Sometimes a refill is submitted, or its result is in, and not collected.
            if run % 3 == 0 {
                if let std::task::Poll::Ready(Some(item)) = stream.poll_next_unpin(&mut noop_cx()) {
                    item.taken();
                }
            }
            if run % 5 == 0 {
                thread::yield_now();
            }
            drop(stream);
        }
        crate::support::eventually("every iterator made to be dropped", || {
            let metrics = pool.metrics();
            metrics.running == 0
                && metrics.queued == 0
                && log.count("iterator") == log.count("made")
        });
        assert!(
            log.count("made") > RUNS / 2,
            "{} iterators made",
            log.count("made")
        );
        let on_consumer = log.on(consumer);
        let count = |what: &str| on_consumer.iter().filter(|w| **w == what).count();
        assert!(
            on_consumer.is_empty(),
            "dropped on the consumer's thread: {} iterators, {} items",
            count("iterator"),
            count("item")
        );
    });
}

#[test]
fn a_stream_dropped_while_its_refill_runs_drops_the_iterator_and_the_items_on_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("running"));
        let log = DropLog::default();
        let (go, gate) = crate::support::gate();
        let source = Source::gated(&log, gate);
        let mut stream = stream_on(pool.clone(), 4, move || source);
        assert!(stream.poll_next_unpin(&mut noop_cx()).is_pending());
        // One item pulled; the refill waits in the second `next()`.
        go.send(()).unwrap();
        crate::support::eventually("the refill to run", || pool.metrics().running == 1);
        let consumer = thread::current().id();
        drop(stream);
        drop(go);
        crate::support::eventually("the iterator to be dropped", || log.count("iterator") == 1);
        crate::support::eventually("the pool to be idle", || pool.metrics().running == 0);
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
        assert!(log.count("item") >= 1, "the pulled item was dropped");
    });
}

#[test]
fn a_stream_dropped_while_its_refill_is_queued_drops_the_iterator_on_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("queued"));
        let (go, busy) = hold_the_only_thread(&pool);
        let log = DropLog::default();
        let source = Source::new(&log);
        let mut stream = stream_on(pool.clone(), 4, move || source);
        assert!(stream.poll_next_unpin(&mut noop_cx()).is_pending());
        let consumer = thread::current().id();
        drop(stream);
        drop(go);
        futures::executor::block_on(busy);
        crate::support::eventually("the iterator to be dropped", || log.count("iterator") == 1);
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
        assert_eq!(log.threads(), [Some("queued-1".to_owned())]);
    });
}

// Before the fix, the refill waiting for room was handed to the pool with `execute`, which
// cannot wait: refused, it ran on the consumer's thread, making the iterator there to drop it.
#[test]
fn a_stream_dropped_while_its_refill_waits_for_room_drops_the_iterator_on_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(
            BlockingPool::with_max_threads(1)
                .thread_name("room")
                .queue_capacity(0, async_wrap::QueueFull::Wait),
        );
        let (go, busy) = hold_the_only_thread(&pool);
        let log = DropLog::default();
        let source = Source::new(&log);
        let mut stream = stream_on(pool.clone(), 4, move || source);
        // No room: the refill waits for it.
        assert!(stream.poll_next_unpin(&mut noop_cx()).is_pending());
        let consumer = thread::current().id();
        drop(stream);
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
        drop(go);
        futures::executor::block_on(busy);
        crate::support::eventually("the iterator to be dropped", || log.count("iterator") == 1);
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
        assert_eq!(log.threads(), [Some("room-1".to_owned())]);
    });
}

#[test]
fn an_idle_stream_drops_its_iterator_and_the_items_not_handed_out_on_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("idle"));
        let log = DropLog::default();
        let source = Source::new(&log);
        let mut stream = stream_on(pool.clone(), 4, move || source);
        // One item of a batch of four handed out: three wait in the stream, the iterator idle.
        futures::executor::block_on(stream.next()).unwrap().taken();
        crate::support::eventually("the pool to be idle", || pool.metrics().running == 0);
        let consumer = thread::current().id();
        drop(stream);
        crate::support::eventually("the iterator and the items to be dropped", || {
            log.count("iterator") == 1 && log.count("item") == 3
        });
        assert_eq!(
            log.on(consumer),
            Vec::<&str>::new(),
            "dropped on the consumer"
        );
    });
}

/// The one state where the pool cannot drop them: it has been shut down (it refuses the job).
/// Documented: the iterator is then dropped on the thread that drops the stream.
#[test]
fn a_stream_whose_pool_is_shut_down_drops_its_iterator_where_it_is_dropped() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("gone"));
        let log = DropLog::default();
        let source = Source::new(&log);
        let mut stream = stream_on(pool.clone(), 4, move || source);
        futures::executor::block_on(stream.next()).unwrap().taken();
        pool.shutdown();
        let consumer = thread::current().id();
        drop(stream);
        assert_eq!(log.on(consumer), ["iterator", "item", "item", "item"]);
    });
}

#[test]
fn a_panicking_drop_of_the_iterator_or_an_item_does_not_kill_the_pool() {
    crate::support::within(Duration::from_secs(30), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1).thread_name("hostile"));
        let log = DropLog::default();
        // Idle, then finished and uncollected: the pool drops both, each `Drop` panicking.
        for uncollected in [false, true] {
            let (go, gate) = crate::support::gate();
            let mut source = Source::gated(&log, gate);
            source.panics = true;
            let mut stream = stream_on(pool.clone(), 2, move || source);
            if uncollected {
                let done = pool.metrics().completed;
                assert!(stream.poll_next_unpin(&mut noop_cx()).is_pending());
                drop(go);
                crate::support::eventually("the refill to finish", || {
                    pool.metrics().completed > done && pool.metrics().running == 0
                });
            } else {
                drop(go);
                futures::executor::block_on(stream.next()).unwrap().taken();
            }
            drop(stream);
        }
        crate::support::eventually("both iterators to be dropped", || {
            log.count("iterator") == 2
        });
        // The pool's thread lives on, and runs the next call.
        assert_eq!(futures::executor::block_on(spawn_on(pool.clone(), || 7)), 7);
        assert_eq!(pool.metrics().threads, 1);
    });
}

// Before the fix a refused prefetch panicked with a pulled item in hand (item 2 was
// lost), and every later poll panicked "`BlockingFuture` polled after it completed".
#[test]
fn a_stream_whose_pool_shuts_down_delivers_every_pulled_item_then_says_why() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(2).thread_name("tail"));
        let mut items = stream_on(pool.clone(), 4, || 0..100_u32);
        let mut seen = Vec::new();
        seen.push(futures::executor::block_on(items.next()).unwrap());
        pool.shutdown();
        let mut message = None;
        for _ in 0..10 {
            match std::panic::catch_unwind(AssertUnwindSafe(|| {
                futures::executor::block_on(items.next())
            })) {
                Ok(Some(item)) => {
                    assert!(
                        message.is_none(),
                        "an item after the stream said why it ended"
                    );
                    seen.push(item);
                }
                Ok(None) => break,
                Err(payload) => {
                    assert!(message.is_none(), "the stream panicked twice");
                    message = Some(
                        payload
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
            }
        }
        assert_eq!(seen, [0, 1, 2, 3], "every item pulled before the shutdown");
        let message = message.expect("the stream said why it ended");
        assert!(
            message.contains("`tail`") && message.contains("shut down"),
            "{message}"
        );
    });
}

#[test]
fn dropping_a_stream_whose_refill_is_blocked_returns_at_once() {
    within(Duration::from_secs(20), || {
        let pool = Arc::new(BlockingPool::with_max_threads(1));
        let (go, item_gate) = gate();
        let entered = Arc::new(AtomicBool::new(false));
        let mut items = {
            let entered = entered.clone();
            stream_on(pool.clone(), 4, move || {
                (0..).inspect(move |&n| {
                    if n == 1 {
                        entered.store(true, Ordering::SeqCst);
                        let _ = item_gate.lock().unwrap().recv();
                    }
                })
            })
        };
        let first = poll_with(&mut items.next(), Waker::noop());
        let _ = first;
        eventually("the refill to block", || entered.load(Ordering::SeqCst));
        let started = Instant::now();
        drop(items);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the drop blocked"
        );
        go.send(()).unwrap();
        assert_eq!(async_wrap::block_on(spawn_on(pool.clone(), || 9)), 9);
        pool.shutdown();
    });
}
