//! With the `tracing` feature, the caller's span at the call is entered around the job, and a
//! pool without a slow-call hook reports slow calls as `tracing` warnings.

#![cfg(feature = "tracing")]

use std::sync::{Mutex, Once};
use std::time::Duration;

use async_wrap::{BlockingPool, async_wrap, spawn_on};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The warnings seen, as (target, message).
static WARNINGS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records each warning's target and message.
struct Capture;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            WARNINGS
                .lock()
                .unwrap()
                .push((event.metadata().target().to_owned(), message.0));
        }
    }
}

/// A global subscriber, once: the worker threads must see it too.
fn subscribe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(tracing_subscriber::fmt::layer())
                .with(Capture),
        )
        .unwrap();
    });
}

/// The names of the spans entered on this thread, innermost last.
#[async_wrap]
fn current_span() -> Option<String> {
    tracing::Span::current()
        .metadata()
        .map(|meta| meta.name().to_owned())
}

#[test]
fn the_callers_span_is_entered_on_the_worker() {
    subscribe();
    let future = tracing::info_span!("request", id = 7).in_scope(current_span);
    // Awaited outside the span: what counts is the span at the call.
    assert_eq!(
        futures::executor::block_on(future).as_deref(),
        Some("request")
    );
    assert_eq!(futures::executor::block_on(current_span()), None);
}

static TRACED: BlockingPool = BlockingPool::with_max_threads(1)
    .thread_name("traced")
    .slow_call(Duration::from_millis(10));

#[test]
fn a_slow_call_without_a_hook_is_a_tracing_warning() {
    subscribe();
    futures::executor::block_on(spawn_on(&TRACED, || {
        std::thread::sleep(Duration::from_millis(40));
    }));
    let warnings = WARNINGS.lock().unwrap();
    let ours: Vec<&(String, String)> = warnings
        .iter()
        .filter(|(_, message)| message.contains("on pool `traced`"))
        .collect();
    assert_eq!(ours.len(), 1, "{warnings:?}");
    let (target, message) = ours[0];
    assert_eq!(target, "async_wrap");
    assert!(
        message.starts_with("async-wrap: `closure` on pool `traced` has run for "),
        "{message}"
    );
}

/// A dropped `Unblock` writer that cannot hand its bytes to its pool (shut down) says how many
/// it lost, and why, as a `tracing` warning.
#[test]
fn a_writer_dropped_on_a_shut_down_pool_reports_its_lost_bytes_as_a_warning() {
    use futures::AsyncWriteExt;

    subscribe();
    let pool = std::sync::Arc::new(BlockingPool::with_max_threads(1).thread_name("lost-writes"));
    let mut writer = async_wrap::Unblock::with_executor(pool.clone(), Vec::<u8>::new());
    futures::executor::block_on(writer.write_all(b"nine byte")).unwrap();
    pool.shutdown();
    drop(writer);
    let warnings = WARNINGS.lock().unwrap();
    let ours: Vec<&(String, String)> = warnings
        .iter()
        .filter(|(_, message)| message.contains("`lost-writes`"))
        .collect();
    assert_eq!(ours.len(), 1, "{warnings:?}");
    let (target, message) = ours[0];
    assert_eq!(target, "async_wrap");
    assert!(
        message.contains("9 bytes") && message.contains("shut down"),
        "{message}"
    );
}
