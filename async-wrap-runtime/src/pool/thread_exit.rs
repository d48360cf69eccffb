//! The hooks a pool's worker thread runs as it exits, after its `on_thread_stop` hook: what other
//! parts of the runtime registered on that thread (a [`StatefulPool`](crate::StatefulPool) drops
//! its values on the thread that built them), so that the worker knows none of them. Each runs
//! under the worker's panic containment: one that panics skips no count and holds no lock (the
//! worker takes the pool's lock only after them).

use std::cell::RefCell;

use crate::panic_guard::guarded;

thread_local! {
    /// This thread's exit hooks, in the order they were registered.
    static AT_EXIT: RefCell<Vec<fn()>> = const { RefCell::new(Vec::new()) };
}

/// Runs `hook` when the current thread, if it is a pool's worker, exits. On any other thread it
/// never runs: what it would do is left to that thread's thread-local destructors.
pub(crate) fn at_worker_exit(hook: fn()) {
    // A thread whose thread-locals are being destroyed has no worker exit to come.
    let _ = AT_EXIT.try_with(|hooks| hooks.borrow_mut().push(hook));
}

/// Runs the hooks registered on this thread so far, each once and in order, each panic
/// contained. A hook registered while they run is not run.
pub(super) fn run_exit_hooks() {
    let hooks = AT_EXIT
        .try_with(|hooks| std::mem::take(&mut *hooks.borrow_mut()))
        .unwrap_or_default();
    for hook in hooks {
        guarded(hook);
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{at_worker_exit, run_exit_hooks};

    #[test]
    fn a_panicking_hook_does_not_keep_the_next_from_running_and_each_runs_once() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        std::thread::spawn(|| {
            at_worker_exit(|| panic!("an exit hook that panics"));
            at_worker_exit(|| {
                RAN.fetch_add(1, Ordering::SeqCst);
                // Registered while the hooks run: not run by this exit.
                at_worker_exit(|| {
                    RAN.fetch_add(100, Ordering::SeqCst);
                });
            });
            run_exit_hooks();
        })
        .join()
        .expect("the hooks' panics are contained");
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
    }
}
