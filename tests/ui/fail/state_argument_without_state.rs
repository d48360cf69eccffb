// A first argument `&mut S` beside a named pool, without `state`: the message suggests `state`,
// and the call written for it (without that argument) gets no follow-on error.
use async_wrap::{BlockingPool, StatefulPool, async_wrap};

static DB: StatefulPool<Vec<u8>> = StatefulPool::new(BlockingPool::with_max_threads(1), Vec::new);

#[async_wrap(executor = DB)]
fn push(buffer: &mut Vec<u8>, byte: u8) -> usize {
    buffer.push(byte);
    buffer.len()
}

fn main() {
    let _ = async { push(1).await.unwrap() };
}
