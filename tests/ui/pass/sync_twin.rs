//! `sync = NAME` also emits the synchronous function, with the same visibility and docs.

use async_wrap::{BlockingPool, async_wrap};

static IO: BlockingPool = BlockingPool::with_max_threads(1);

/// Sums to `n`.
#[async_wrap(executor = IO, sync = sum_to_blocking)]
pub fn sum_to(n: u64) -> u64 {
    (1..=n).sum()
}

/// Recursion in the twin is synchronous too.
#[async_wrap(sync = fib_blocking)]
pub fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

struct Job(u64);

impl Job {
    #[async_wrap(sync = run_blocking)]
    fn run(self, extra: u64) -> u64 {
        self.0 + extra
    }
}

fn main() {
    assert_eq!(sum_to_blocking(4), 10);
    assert_eq!(fib_blocking(20), 6765);
    assert_eq!(Job(1).run_blocking(2), 3);
    futures::executor::block_on(async {
        assert_eq!(sum_to(4).await, 10);
        assert_eq!(fib(20).await, 6765);
        assert_eq!(Job(1).run(2).await, 3);
    });
}
