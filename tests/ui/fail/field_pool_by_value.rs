// `executor = self.pool` with the pool held by value in the field: one error at the field,
// saying to share it, instead of the borrow checker's two.
use std::sync::Arc;

use async_wrap::{BlockingPool, async_wrap};

struct Service {
    pool: BlockingPool,
}

impl Service {
    #[async_wrap(executor = self.pool)]
    fn get(self: Arc<Self>) -> u32 {
        1
    }
}

fn main() {
    let _ = async { Arc::new(Service { pool: BlockingPool::new() }).get().await };
}
