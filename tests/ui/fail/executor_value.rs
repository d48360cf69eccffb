use async_wrap::{BlockingPool, async_wrap};

// A pool made by value at each call is refused: it would be a new pool every time.
fn make_pool() -> BlockingPool {
    BlockingPool::with_max_threads(2)
}

#[async_wrap(executor = make_pool())]
fn read() -> u32 {
    1
}

fn main() {
    let _ = async {
        let _: u32 = read().await;
    };
}
