//! Other crates' pools as [`Executor`](crate::Executor)s, behind cargo features: tokio's
//! blocking pool (`tokio`) and rayon's pool (`rayon`).

#[cfg(feature = "rayon")]
pub(crate) mod rayon;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
