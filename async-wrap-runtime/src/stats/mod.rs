//! Who a call is and what its calls have done: the [`CallSite`](call_site::CallSite) records
//! and their registry ([`call_site`]), and the per-site counters and histograms
//! ([`call_stats`]), what the adaptive wait remembers per site ([`site_waits`]), and (feature
//! `metrics`) their publishing through the `metrics` facade ([`export`]).

pub(crate) mod call_site;
pub(crate) mod call_stats;
#[cfg(feature = "metrics")]
pub(crate) mod export;
#[cfg(feature = "metrics")]
pub(crate) mod site_export;
pub(crate) mod site_waits;
