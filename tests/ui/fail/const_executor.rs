use async_wrap::{BlockingPool, async_wrap};

// A `const` is a new pool at each use; the pool must be a `static`.
const POOL: BlockingPool = BlockingPool::with_max_threads(2);

#[async_wrap(executor = POOL)]
fn read() -> u32 {
    1
}

fn main() {}
