//! What `#[async_wrap]` refuses on an `impl` block and a trait: each mistake once, at its
//! tokens, and no error at the calls (the methods keep the signatures the attribute gives them).

use std::sync::Arc;

use async_wrap::{BlockingPool, async_wrap};

static DB: BlockingPool = BlockingPool::with_max_threads(1);

pub struct Store {
    pool: Arc<BlockingPool>,
}

// One twin name for every method: a block takes a pattern.
#[async_wrap(sync = get_blocking)]
impl Store {
    pub fn get(self: Arc<Self>) -> u32 { 1 }
}

pub struct Pooled {
    pool: &'static BlockingPool,
}

// The block's executor reads `self`, which an associated function does not have.
#[async_wrap(executor = self.pool)]
impl Pooled {
    pub fn get(self: Arc<Self>) -> u32 { 2 }

    pub fn open() -> Arc<Self> { Arc::new(Pooled { pool: &DB }) }

    // `skip` keeps the method as written: it takes no other option.
    #[async_wrap(skip, stream)]
    pub fn name(&self) -> &'static str { "pooled" }
}

pub trait Catalog {
    fn title(&self) -> async_wrap::BlockingFuture<String>;
}

#[derive(Clone)]
pub struct Books;

// A trait implementation holds only the trait's methods: no twin.
#[async_wrap(clone_self, sync = "{}_now")]
impl Catalog for Books {
    fn title(&self) -> String { String::new() }
}

// On a trait, the executor belongs to the implementations; a default body cannot be wrapped.
#[async_wrap(executor = DB)]
pub trait Shelf {
    fn count(&self) -> usize;

    fn empty(&self) -> bool { true }
}

// A pattern without `{}`.
#[async_wrap(sync = "blocking")]
fn lone() -> u32 { 3 }

// `skip` outside an `impl` block.
#[async_wrap(skip)]
fn skipped() -> u32 { 4 }

fn main() {
    let _ = async {
        let store = Arc::new(Store { pool: Arc::new(BlockingPool::new()) });
        let _: u32 = store.get().await;
        let _: u32 = Pooled::open().await.get().await;
        let _: String = Books.title().await;
        let _: u32 = lone().await;
        let _: u32 = skipped();
    };
}
