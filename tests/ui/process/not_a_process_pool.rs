use async_wrap::{BlockingPool, async_wrap};

static THREADS: BlockingPool = BlockingPool::new();

#[async_wrap(executor = THREADS, process)]
fn on_threads(n: u32) -> u32 {
    n
}

fn main() {}
