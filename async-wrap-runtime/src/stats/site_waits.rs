//! What the adaptive wait (`call::adaptive`) remembers per call site: how its waits went (the
//! counts `call_sites()` shows), its back-off after waits that did not pay, and the estimate of
//! the site's recent run time it decides from. Kept with the site's statistics, in its
//! `CallSite` static, because it learns from the run times they count; the decision itself is
//! `call::adaptive`'s.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The back-off's longest: a site skips at most 2^10 = 1,024 calls' waits.
const MAX_MISSES: u32 = 10;

/// How one adaptive wait went (see `call::adaptive`): whether the result came in time, and
/// whether the thread was descheduled meanwhile (the wait ended more than
/// `adaptive::DESCHEDULED` times its budget after it began: a yield under CPU contention can
/// cost a whole time slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waited {
    pub(crate) paid: bool,
    pub(crate) descheduled: bool,
}

/// One site's memory of its adaptive waits. Every field is `Relaxed`: a lost update between
/// racing threads only ages the estimate or the back-off by a call.
pub(crate) struct SiteWaits {
    /// Calls whose result the polling thread waited for, and those of them it got in time.
    waits: AtomicU64,
    waits_paid: AtomicU64,
    /// The back-off: calls still to skip, and waits in a row that did not pay.
    skip: AtomicU32,
    misses: AtomicU32,
    /// A decaying maximum of recent run times, in nanoseconds (0: none yet): it jumps up to a
    /// long run at once and comes down half the way per call.
    recent_run_ns: AtomicU64,
}

impl SiteWaits {
    pub(crate) const fn new() -> Self {
        SiteWaits {
            waits: AtomicU64::new(0),
            waits_paid: AtomicU64::new(0),
            skip: AtomicU32::new(0),
            misses: AtomicU32::new(0),
            recent_run_ns: AtomicU64::new(0),
        }
    }

    /// A call of the site ran for `run_ns`: the recent-run estimate follows it.
    pub(crate) fn ran(&self, run_ns: u64) {
        let recent = &self.recent_run_ns;
        let old = recent.load(Ordering::Relaxed);
        let new = if run_ns >= old {
            run_ns.max(1)
        } else {
            old - (old - run_ns) / 2
        };
        // Written only when it moves by more than a sixteenth and more than a microsecond: the
        // threads of a steady function, whose runs jitter, do not all write this line on every
        // call (measured: writing on every move cost a fifth of the throughput of trivial
        // calls). Halving the distance, a run of `r` brings the estimate within an eighth or
        // 2 µs above `r`. A lost update between two threads only makes the estimate one call
        // older.
        if old == 0 || new.abs_diff(old) > (old / 16).max(1_000) {
            recent.store(new, Ordering::Relaxed);
        }
    }

    /// The decaying maximum of recent run times; `None` before any call ran.
    pub(crate) fn recent_run(&self) -> Option<u64> {
        match self.recent_run_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(ns),
        }
    }

    /// Whether the adaptive wait may wait for this call: not while backing off.
    pub(crate) fn may_wait(&self) -> bool {
        let skip = self.skip.load(Ordering::Relaxed);
        if skip == 0 {
            return true;
        }
        // Racing callers may skip one call fewer or more: the back-off is a rate, not a count.
        self.skip.store(skip - 1, Ordering::Relaxed);
        false
    }

    /// The polling thread waited for a call's result: `paid` if it came in time. A wait that
    /// did not pay makes the site skip the next 2, 4, 8 ... 1,024 calls' waits. A wait during
    /// which the thread was descheduled (CPU contention: its yields cost time slices), paid or
    /// not, makes it skip the next 1,024 at once: under contention a wait costs its caller far
    /// more than it saves, and a paid wait must not reset the back-off then.
    pub(crate) fn waited(&self, waited: Waited) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        if waited.paid {
            self.waits_paid.fetch_add(1, Ordering::Relaxed);
        }
        if waited.descheduled {
            self.misses.store(MAX_MISSES, Ordering::Relaxed);
            self.skip.store(1 << MAX_MISSES, Ordering::Relaxed);
        } else if waited.paid {
            if self.misses.load(Ordering::Relaxed) != 0 {
                self.misses.store(0, Ordering::Relaxed);
            }
        } else {
            let misses = (self.misses.load(Ordering::Relaxed) + 1).min(MAX_MISSES);
            self.misses.store(misses, Ordering::Relaxed);
            self.skip.store(1 << misses, Ordering::Relaxed);
        }
    }

    /// The waits made, and those that paid (never more than the waits: counted after them,
    /// and zeroed after them by a reset, a wait counted across a reset may be left paid and
    /// not made).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let waits = self.waits.load(Ordering::Relaxed);
        (waits, self.waits_paid.load(Ordering::Relaxed).min(waits))
    }

    /// Zeroes the counts (the back-off and the estimate stay: they are what the site has
    /// learnt, not what it reports).
    pub(crate) fn reset_counts(&self) {
        self.waits.store(0, Ordering::Relaxed);
        self.waits_paid.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls the back-off skips before the next wait.
    fn skipped(site: &SiteWaits) -> u32 {
        let mut skipped = 0;
        while !site.may_wait() {
            skipped += 1;
        }
        skipped
    }

    #[test]
    fn a_wait_that_was_descheduled_backs_the_site_off_fully_even_if_it_paid() {
        let site = SiteWaits::new();
        let wait = |paid, descheduled| Waited { paid, descheduled };
        site.waited(wait(false, false));
        assert_eq!(skipped(&site), 2, "one miss: skip 2");
        site.waited(wait(false, false));
        assert_eq!(skipped(&site), 4, "two misses: skip 4");
        site.waited(wait(true, false));
        assert_eq!(skipped(&site), 0, "a paid wait resets the back-off");
        site.waited(wait(true, true));
        assert_eq!(
            skipped(&site),
            1 << MAX_MISSES,
            "descheduled: the longest back-off"
        );
        site.waited(wait(false, false));
        assert_eq!(
            skipped(&site),
            1 << MAX_MISSES,
            "and a miss after it keeps it"
        );
        site.waited(wait(true, false));
        assert_eq!(
            skipped(&site),
            0,
            "until a wait pays without being descheduled"
        );
        assert_eq!(site.counts(), (6, 3));
        site.reset_counts();
        assert_eq!(site.counts(), (0, 0));
    }

    #[test]
    fn the_recent_run_jumps_up_at_once_and_comes_down_half_the_way() {
        let site = SiteWaits::new();
        assert_eq!(site.recent_run(), None);
        site.ran(0);
        assert_eq!(
            site.recent_run(),
            Some(1),
            "a run of 0 ns still counts as one"
        );
        site.ran(100_000);
        assert_eq!(site.recent_run(), Some(100_000));
        site.ran(0);
        assert_eq!(site.recent_run(), Some(50_000));
        site.ran(0);
        assert_eq!(site.recent_run(), Some(25_000));
        // A move under a microsecond (and a sixteenth) is not written.
        site.ran(24_500);
        assert_eq!(site.recent_run(), Some(25_000));
    }
}
