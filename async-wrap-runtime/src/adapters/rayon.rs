//! [`RayonPool`]: wrapped calls on a rayon thread pool, for CPU-bound work (feature `rayon`).

use std::sync::Arc;

use crate::executor::{Executor, Job, Rejected};

/// Runs jobs on a rayon thread pool, for CPU-bound work: `#[async_wrap(executor = rayon)]`
/// uses rayon's global pool.
///
/// rayon's pools have one thread per core and are meant for computation: a job that blocks on
/// I/O there holds a core's worth of parallelism. Use a [`BlockingPool`](crate::BlockingPool)
/// for blocking I/O.
///
/// ```
/// use async_wrap::{spawn_on, RayonPool};
///
/// static CPU: RayonPool = RayonPool::global();
///
/// let sum = futures::executor::block_on(spawn_on(&CPU, || (1..=1_000_000u64).sum::<u64>()));
/// assert_eq!(sum, 500_000_500_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RayonPool {
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl RayonPool {
    /// rayon's global thread pool.
    ///
    /// ```
    /// use async_wrap::{spawn_on, RayonPool};
    /// static CPU: RayonPool = RayonPool::global();
    /// let sum = futures::executor::block_on(spawn_on(&CPU, || (1..=10u32).sum::<u32>()));
    /// assert_eq!(sum, 55);
    /// ```
    pub const fn global() -> Self {
        RayonPool { pool: None }
    }

    /// A pool of your own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use async_wrap::{spawn_on, RayonPool};
    ///
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let cpu = Arc::new(RayonPool::new(pool));
    /// assert_eq!(futures::executor::block_on(spawn_on(cpu, || 6 * 7)), 42);
    /// ```
    pub fn new(pool: rayon::ThreadPool) -> Self {
        RayonPool {
            pool: Some(Arc::new(pool)),
        }
    }

    /// A pool of your own, shared.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use async_wrap::{spawn_on, RayonPool};
    ///
    /// let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
    /// let cpu = Arc::new(RayonPool::from_arc(pool.clone()));
    /// assert_eq!(futures::executor::block_on(spawn_on(cpu, || 1)), 1);
    /// pool.install(|| ()); // the same pool, still usable directly
    /// ```
    pub fn from_arc(pool: Arc<rayon::ThreadPool>) -> Self {
        RayonPool { pool: Some(pool) }
    }
}

impl Executor for RayonPool {
    fn execute(&self, job: Job) -> Result<(), Rejected> {
        match &self.pool {
            Some(pool) => pool.spawn(move || job.run()),
            None => rayon::spawn(move || job.run()),
        }
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        Some("rayon")
    }
}
