// A typo'd option is one error: it is then read as the option it was meant to be, so that
// `clone_slef` on a `&self` method does not add "`&self` cannot be moved". A method declaration
// under the attribute says where the attribute goes instead.
use async_wrap::async_wrap;

#[derive(Clone)]
struct Db;

impl Db {
    #[async_wrap(clone_slef)]
    fn get(&self) -> u32 {
        1
    }
}

trait Catalog {
    #[async_wrap]
    fn title(&self) -> String;
}

fn main() {
    let _ = async { Db.get().await };
}
