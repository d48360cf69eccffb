use std::sync::Arc;

use async_wrap::async_wrap;

#[derive(Clone)]
struct Db;

impl Db {
    // `self: &Arc<Self>` needs no `clone_self`: the `Arc` is cloned at the call.
    #[async_wrap(clone_self)]
    fn query(self: &Arc<Self>, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = async {
        let _: u32 = Arc::new(Db).query(1).await;
    };
}
