//! What several test files share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
