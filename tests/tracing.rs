//! With the `tracing` feature, the caller's span at the call is entered around the job.

#![cfg(feature = "tracing")]

use async_wrap::async_wrap;
use tracing_subscriber::layer::SubscriberExt;

/// The names of the spans entered on this thread, innermost last.
#[async_wrap]
fn current_span() -> Option<String> {
    tracing::Span::current()
        .metadata()
        .map(|meta| meta.name().to_owned())
}

#[test]
fn the_callers_span_is_entered_on_the_worker() {
    // A global subscriber: the worker threads must see it too.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()),
    )
    .unwrap();

    let future = tracing::info_span!("request", id = 7).in_scope(current_span);
    // Awaited outside the span: what counts is the span at the call.
    assert_eq!(
        futures::executor::block_on(future).as_deref(),
        Some("request")
    );
    assert_eq!(futures::executor::block_on(current_span()), None);
}
