// `state`: the first argument must be `&mut S`, the pool must be named, and `stream` does not
// combine with it. Each mistake is reported at its tokens, and nothing at the call sites.
use async_wrap::{BlockingPool, StatefulPool, async_wrap};

fn open() -> Vec<u8> {
    Vec::new()
}

static POOL: StatefulPool<Vec<u8>> = StatefulPool::new(BlockingPool::with_max_threads(1), open);

#[async_wrap(executor = POOL, state)]
fn by_value(buffer: Vec<u8>) -> usize {
    buffer.len()
}

#[async_wrap(state)]
fn no_pool(buffer: &mut Vec<u8>) -> usize {
    buffer.len()
}

#[async_wrap(executor = POOL, state)]
fn no_argument() -> usize {
    0
}

async fn callers() {
    let _ = by_value().await;
    let _ = no_pool().await;
    let _ = no_argument().await;
}

fn main() {
    let _ = callers();
}
