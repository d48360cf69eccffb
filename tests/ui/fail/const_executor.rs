use async_wrap::{BlockingPool, async_wrap};

// A `const` is a new pool at each use; the pool must be a `static`. The refusal is rustc's
// borrow error at the name: a `const` and a `static` are both paths of the same type to the
// macro and to trait selection, and only the borrow checker tells them apart.
const POOL: BlockingPool = BlockingPool::with_max_threads(2);

#[async_wrap(executor = POOL)]
fn read() -> u32 {
    1
}

fn main() {}
