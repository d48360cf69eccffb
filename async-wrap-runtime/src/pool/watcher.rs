//! The slow-call watcher: the thread that finds jobs running past the pool's `slow_call`
//! threshold (see [`slow`](super::slow) for what is reported, and how). Not built under loom.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::shared::Shared;
use super::slow::{SlowCall, Slowness};

impl Shared {
    /// Starts the watcher, if the pool has a `slow_call` threshold. Called once, with the first
    /// thread.
    pub(super) fn start_watcher(this: &Arc<Self>) {
        let Some(threshold) = this.slow.threshold() else {
            return;
        };
        let tick = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let shared = Arc::downgrade(this);
        let started = std::thread::Builder::new()
            .name(format!("{}-watcher", this.name))
            .spawn(move || watch(&shared, threshold, tick));
        if let Ok(handle) = started {
            this.slow.set_watcher(handle.thread().clone());
        }
        // Without a watcher, jobs are still reported as they end.
    }
}

/// The watcher's life: every `tick`, report the jobs that have run past `threshold`; leave
/// when the pool is shut down and its threads are gone, or dropped.
fn watch(shared: &Weak<Shared>, threshold: Duration, tick: Duration) {
    let mut idle = false;
    loop {
        // Idle (no job running at the last look), it sleeps up to a second: a thread that
        // starts a job wakes it (`job_started`); the second bounds how long it takes to see
        // that its pool is gone.
        std::thread::park_timeout(if idle { IDLE_LOOK } else { tick });
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (slow, running) = {
            let state = shared.lock();
            if shared.is_shut_down() && state.metrics.threads + state.threads.exiting() == 0 {
                return;
            }
            let mut running = false;
            let now = Instant::now();
            let slow: Vec<SlowCall> = state
                .threads
                .slots()
                .iter()
                .filter_map(|slot| {
                    let mut guard = slot.running();
                    let started = guard.as_mut()?;
                    running = true;
                    let ran = now.saturating_duration_since(started.since);
                    if started.reported || ran <= threshold {
                        return None;
                    }
                    started.reported = true;
                    Some(shared.slow.slow(started.site, Slowness::Running, ran))
                })
                .collect();
            (slow, running)
        };
        idle = !running && {
            // Say so, then look again: a thread that set its job before this store sees the
            // flag after its own fence, or this look sees its job (the two fences pair).
            shared.slow.watcher_going_idle();
            let started = shared
                .lock()
                .threads
                .slots()
                .iter()
                .any(|slot| slot.running().is_some());
            if started {
                shared.slow.watcher_stays_awake();
            }
            !started
        };
        // Outside the pool's lock: the hook is user code.
        for slow in &slow {
            shared.slow.report(slow);
        }
    }
}

/// How long an idle watcher sleeps at most.
const IDLE_LOOK: Duration = Duration::from_secs(1);
