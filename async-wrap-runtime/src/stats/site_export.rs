//! What a call site has handed to the `metrics` feature's exporters: the counts a reset took
//! (carried, so that the published totals only grow) and what each histogram has been given,
//! kept in the site's `CallSite` static. The publishing itself is [`export`](super::export)'s.

use std::sync::{Mutex, MutexGuard, PoisonError};

use metrics::Label;

use super::call_stats::{self, Counts, SiteStats};

/// What a call site has published, and what resets took from it: made at its first
/// publication or reset.
pub(crate) struct SiteExport {
    state: Mutex<Option<Box<Published>>>,
}

pub(crate) struct Published {
    /// The site's labels: made at its first publication (empty until then).
    pub(crate) labels: Vec<Label>,
    /// What [`reset_call_sites`](crate::reset_call_sites) took from the site's counts: added
    /// to what the site holds now, the totals since the process started.
    pub(crate) carried: Counts,
    pub(crate) queue_wait: Replayed,
    pub(crate) run_time: Replayed,
    /// The highest `_sum` `render_call_site_histograms` has written of the queue wait and of
    /// the run time, in nanoseconds: a floor for the next, so that it never goes down.
    pub(crate) rendered_sum_ns: [u64; 2],
}

/// What a histogram has been given so far: the count in each fine bucket, and the sum of
/// the values recorded, in nanoseconds.
pub(crate) struct Replayed {
    pub(crate) buckets: Vec<u64>,
    pub(crate) sum_ns: u64,
}

impl SiteExport {
    pub(crate) const fn new() -> Self {
        SiteExport {
            state: Mutex::new(None),
        }
    }

    /// The state, locked: a reset and a publication of one site never overlap.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Box<Published>>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets the site's statistics `counts`, carrying what they held.
    pub(crate) fn reset(&self, counts: &SiteStats) {
        let mut state = self.lock();
        let published = state.get_or_insert_with(Published::empty);
        let taken = counts.reset();
        published.carried.add(&taken);
    }
}

impl Published {
    /// Nothing published or carried yet.
    pub(crate) fn empty() -> Box<Self> {
        Box::new(Published {
            labels: Vec::new(),
            carried: Counts::zero(),
            queue_wait: Replayed::new(),
            run_time: Replayed::new(),
            rendered_sum_ns: [0; 2],
        })
    }
}

impl Replayed {
    pub(crate) fn new() -> Self {
        Replayed {
            buckets: vec![0; call_stats::BUCKETS],
            sum_ns: 0,
        }
    }
}
