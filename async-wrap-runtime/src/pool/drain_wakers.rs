//! The wakers of the tasks awaiting a pool's [`ShutdownFuture`](super::ShutdownFuture)s, kept
//! under the pool's mutex (`State::drain_wakers`) and woken when a thread exits.

use std::task::Waker;

/// The wakers of the tasks awaiting a [`ShutdownFuture`](super::ShutdownFuture), by the future's number: one entry
/// per future, its latest waker, taken out when the future completes or is dropped, and all
/// woken when a thread exits (`notify_drained`). Wakers are user code: each method hands back
/// what it removes, for the caller to drop or wake after the lock.
pub(super) struct DrainWakers(Vec<(u64, Waker)>);

impl DrainWakers {
    pub(super) fn new() -> Self {
        DrainWakers(Vec::new())
    }

    /// Keeps `waker` as the future `number`'s latest; hands back the one it replaces.
    pub(super) fn keep(&mut self, number: u64, waker: Waker) -> Option<Waker> {
        if let Some((_, kept)) = self.0.iter_mut().find(|(entry, _)| *entry == number) {
            return Some(std::mem::replace(kept, waker));
        }
        self.0.push((number, waker));
        None
    }

    /// The future `number`'s waker, taken out.
    pub(super) fn take(&mut self, number: u64) -> Option<Waker> {
        let at = self.0.iter().position(|(entry, _)| *entry == number)?;
        Some(self.0.swap_remove(at).1)
    }

    /// Every waker, taken out, to be woken.
    pub(super) fn take_all(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(_, waker)| waker)
            .collect()
    }
}

#[cfg(all(test, not(async_wrap_loom)))]
mod tests {
    use super::DrainWakers;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn one_waker_per_future_the_latest_and_every_one_taken_out_once() {
        let mut wakers = DrainWakers::new();
        let first = Arc::new(Counted(AtomicUsize::new(0)));
        let second = Arc::new(Counted(AtomicUsize::new(0)));
        assert!(wakers.keep(1, Waker::from(first.clone())).is_none());
        // A second poll of the same future replaces its waker, handing the old one back.
        let replaced = wakers.keep(1, Waker::from(second.clone()));
        assert!(replaced.is_some_and(|old| old.will_wake(&Waker::from(first.clone()))));
        assert!(wakers.keep(2, Waker::from(first.clone())).is_none());
        assert!(wakers.take(3).is_none());
        let taken = wakers.take(2).expect("future 2's waker");
        assert!(taken.will_wake(&Waker::from(first.clone())));
        let all = wakers.take_all();
        assert_eq!(all.len(), 1);
        for waker in all {
            waker.wake();
        }
        assert_eq!(second.0.load(Ordering::Relaxed), 1);
        assert_eq!(first.0.load(Ordering::Relaxed), 0);
        assert!(wakers.take_all().is_empty());
    }
}
