// A body must take the pool's state type: the type checker says so at the body's parameter.
use async_wrap::{BlockingPool, StatefulPool};

fn open() -> String {
    String::new()
}

static DB: StatefulPool<String> = StatefulPool::new(BlockingPool::with_max_threads(2), open);

fn main() {
    let _ = DB.call(|conn: &mut u32| *conn);
}
