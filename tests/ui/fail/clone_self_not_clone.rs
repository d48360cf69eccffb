use async_wrap::async_wrap;

struct Db;

impl Db {
    #[async_wrap(clone_self)]
    fn query(&self, id: u32) -> u32 {
        id
    }
}

fn main() {}
