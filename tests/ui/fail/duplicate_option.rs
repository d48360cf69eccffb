use async_wrap::{BlockingPool, async_wrap};

static A: BlockingPool = BlockingPool::with_max_threads(1);
static B: BlockingPool = BlockingPool::with_max_threads(1);

#[async_wrap(executor = A, executor = B)]
fn read() -> u32 {
    1
}

fn main() {}
