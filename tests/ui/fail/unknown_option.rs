use async_wrap::{BlockingPool, async_wrap};

static IO: BlockingPool = BlockingPool::with_max_threads(2);

#[async_wrap(exector = IO)]
fn read() -> u32 {
    1
}

fn main() {
    // The function keeps its async signature: this call type-checks, so the only error is the
    // option's.
    let _ = async {
        let _: u32 = read().await;
    };
}
