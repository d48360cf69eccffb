// A trait whose method returns `T`, implemented by a wrapped method: the mismatch is reported at
// the method's return type, with no suggestion to replace the attribute.
use async_wrap::async_wrap;

trait Catalog {
    fn title(&self, id: u32) -> String;
}

#[derive(Clone)]
struct Books;

impl Catalog for Books {
    #[async_wrap(clone_self)]
    fn title(&self, id: u32) -> String {
        id.to_string()
    }
}

fn main() {}
