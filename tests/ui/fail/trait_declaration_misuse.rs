// On a trait: an `async fn` (already async) and a default body are refused, each once; the
// declarations keep the wrapped signature, so implementations and calls get no other error.
use async_wrap::async_wrap;

#[async_wrap]
pub trait Shelf: Send + Sync {
    async fn fetch(&self) -> u32;

    fn count(&self) -> usize;

    fn empty(&self) -> bool {
        true
    }
}

#[derive(Clone)]
pub struct Books;

#[async_wrap(clone_self)]
impl Shelf for Books {
    #[async_wrap(skip)]
    async fn fetch(&self) -> u32 {
        1
    }

    fn count(&self) -> usize {
        2
    }

    fn empty(&self) -> bool {
        false
    }
}

fn main() {
    let _ = async {
        let _: usize = Books.count().await;
        let _: bool = Books.empty().await;
    };
}
