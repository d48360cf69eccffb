use std::pin::Pin;

use async_wrap::async_wrap;

struct Db;

impl Db {
    #[async_wrap]
    fn poll_query(self: Pin<&mut Self>, id: u32) -> u32 {
        id
    }

    #[async_wrap]
    fn boxed(self: &Box<Self>, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = async {
        let mut db = Db;
        let _: u32 = Pin::new(&mut db).poll_query(1).await;
        let _: u32 = Box::new(Db).boxed(2).await;
    };
}
