//! Who a call is and what its calls have done: the [`CallSite`](call_site::CallSite) records
//! and their registry ([`call_site`]), and the per-site counters and histograms
//! ([`call_stats`]).

pub(crate) mod call_site;
pub(crate) mod call_stats;
