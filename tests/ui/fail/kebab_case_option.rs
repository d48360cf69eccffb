use async_wrap::async_wrap;

#[derive(Clone)]
struct Db;

impl Db {
    #[async_wrap(clone-self)]
    fn query(&self, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = async {
        let _: u32 = Db.query(1).await;
    };
}
