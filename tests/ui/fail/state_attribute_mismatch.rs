// The body's first argument under `state` must have the pool's state type.
use async_wrap::{BlockingPool, StatefulPool, async_wrap};

fn open() -> String {
    String::new()
}

static DB: StatefulPool<String> = StatefulPool::new(BlockingPool::with_max_threads(1), open);

#[async_wrap(executor = DB, state)]
fn length(conn: &mut Vec<u8>) -> usize {
    conn.len()
}

fn main() {
    let _ = length();
}
