// `executor = pool` naming a borrowed argument: the fix is a `&'static` or an `Arc`, not
// `to_owned` (which would copy the pool).
use async_wrap::{BlockingPool, async_wrap};

#[async_wrap(executor = pool)]
fn on(pool: &BlockingPool, n: u32) -> u32 {
    n
}

fn main() {
    let _ = async {
        let pool = BlockingPool::new();
        on(&pool, 1).await
    };
}
