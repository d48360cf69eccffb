//! `#[async_wrap]` on an `impl` block and on a trait: one executor for every method, per-method
//! options and `skip`, twins named by a pattern, call sites named `Type::method`, and the three
//! ways a trait's methods can be implemented by wrapped ones. Built with warnings denied and
//! linted by clippy (`cargo clippy --all-targets`), as users build it.

#![deny(warnings)]
#![deny(clippy::all)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_wrap::{BlockingFuture, BlockingPool, StatefulPool, async_wrap};
use futures::StreamExt;

static DB: BlockingPool = BlockingPool::with_max_threads(2);
static OTHER: BlockingPool = BlockingPool::with_max_threads(1);

/// A store whose every method runs on `DB`, with a blocking twin of each.
pub struct Store {
    rows: Mutex<BTreeMap<u32, String>>,
}

#[async_wrap(executor = DB, sync = "{}_blocking")]
impl Store {
    /// Not a method: kept as written.
    pub const LIMIT: usize = 8;

    /// Opens the store: kept synchronous.
    #[async_wrap(skip)]
    pub fn open() -> Arc<Self> {
        Arc::new(Store {
            rows: Mutex::new(BTreeMap::new()),
        })
    }

    /// The rows (a panic while they were held left them consistent).
    #[async_wrap(skip)]
    fn rows(&self) -> MutexGuard<'_, BTreeMap<u32, String>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` under `key`.
    pub fn put(self: Arc<Self>, key: u32, value: String) -> Option<String> {
        self.rows().insert(key, value)
    }

    /// The value under `key`.
    pub fn get(self: Arc<Self>, key: u32) -> Option<String> {
        self.rows().get(&key).cloned()
    }

    /// The keys, as a stream pulled on `DB`.
    #[async_wrap(stream, batch = 2)]
    pub fn keys(self: Arc<Self>) -> impl Iterator<Item = u32> + Send + 'static {
        let keys: Vec<u32> = self.rows().keys().copied().collect();
        keys.into_iter()
    }

    /// The number of rows, on another pool, with a twin of its own name.
    #[async_wrap(executor = OTHER, sync = count_now)]
    pub fn count(self: Arc<Self>) -> usize {
        self.rows().len()
    }

    /// An associated function with an executor of its own.
    #[async_wrap(executor = OTHER)]
    pub fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }
}

/// A generic block: the bounds of the block reach every method.
pub struct Cache<T> {
    value: T,
}

#[async_wrap]
impl<T: Clone + Send + Sync + 'static> Cache<T> {
    /// A copy of the value, on the default pool.
    pub fn cloned(self: Arc<Self>) -> T {
        self.value.clone()
    }

    /// The value, consuming the cache.
    pub fn into_value(self) -> T {
        self.value
    }
}

/// Associated functions of a block under `state`: each gets its thread's value.
pub struct Journal;

static LINES: StatefulPool<Vec<String>> =
    StatefulPool::new(BlockingPool::with_max_threads(1), Vec::new);

#[async_wrap(executor = LINES, state)]
impl Journal {
    /// Appends a line to the thread's journal; its length after.
    pub fn append(lines: &mut Vec<String>, line: String) -> usize {
        lines.push(line);
        lines.len()
    }
}

/// A trait whose declarations return the futures of their wrapped implementations: it stays
/// usable as `dyn Catalog`.
#[async_wrap]
pub trait Catalog: Send + Sync {
    /// The title of `id`.
    fn title(&self, id: u32) -> Option<String>;

    /// The ids, as a stream.
    #[async_wrap(stream)]
    fn ids(&self) -> impl Iterator<Item = u32> + Send + 'static;

    /// The catalog's name: synchronous.
    #[async_wrap(skip)]
    fn name(&self) -> &'static str;
}

/// A catalog; `clone_self` gives each job its own copy of it.
#[derive(Clone)]
pub struct Books {
    titles: Arc<Vec<String>>,
}

#[async_wrap(executor = DB, clone_self)]
impl Catalog for Books {
    fn title(&self, id: u32) -> Option<String> {
        self.titles.get(id as usize).cloned()
    }

    #[async_wrap(stream)]
    fn ids(&self) -> impl Iterator<Item = u32> + Send + 'static {
        (0..self.titles.len()).map(|id| u32::try_from(id).unwrap())
    }

    #[async_wrap(skip)]
    fn name(&self) -> &'static str {
        "books"
    }
}

/// A trait written by hand with a `BlockingFuture`, an `async fn` and an `impl Future`: wrapped
/// methods implement all three.
pub trait Lookup {
    /// Declared with the wrapper's future.
    fn by_future(&self, n: u32) -> BlockingFuture<u32>;
    /// Declared as an `async fn`.
    fn by_async(&self, n: u32) -> impl Future<Output = u32> + Send;
}

/// A `Lookup` that doubles.
#[derive(Clone)]
pub struct Doubler;

#[async_wrap(clone_self)]
impl Lookup for Doubler {
    fn by_future(&self, n: u32) -> u32 {
        n * 2
    }

    fn by_async(&self, n: u32) -> u32 {
        n * 2 + 1
    }
}

/// Edge forms: a raw identifier under a twin pattern, `executor = Self::...` on associated
/// functions, a block's `clone_self` beside a by-value method, `_`-prefixed arguments, a
/// deprecated method with a twin, an executor path that ends in `skip`.
pub struct Edges;

mod pools {
    /// A pool reached by a function named `skip`.
    pub(crate) fn skip() -> &'static async_wrap::BlockingPool {
        &super::OTHER
    }
}

#[async_wrap(executor = Self::pool(), sync = "{}_now")]
impl Edges {
    /// The pool.
    #[async_wrap(skip)]
    pub fn pool() -> &'static BlockingPool {
        &OTHER
    }

    /// A raw identifier: its twin is `match_now`.
    pub fn r#match(_unused: u32) -> u32 {
        7
    }

    /// Deprecated, with its twin deprecated too: the shim's call of it is not a warning.
    #[deprecated = "use `r#match`"]
    pub fn old() -> u32 {
        8
    }

    /// On a pool whose path ends in `skip`: not the `skip` option.
    #[async_wrap(executor = pools::skip())]
    pub fn on_skip() -> u32 {
        9
    }
}

/// A block's `clone_self` applies to the `&self` methods only.
#[derive(Clone)]
pub struct Mixed(u32);

#[async_wrap(clone_self)]
impl Mixed {
    /// Borrowed: cloned into the job.
    pub fn get(&self) -> u32 {
        self.0
    }

    /// By value: moved into the job.
    pub fn into_inner(self) -> u32 {
        self.0
    }
}

/// A trait method returning `Self` gets `where Self: Sized`, and `dyn Shape` still works.
#[async_wrap]
pub trait Shape: Send + Sync {
    /// A copy.
    fn copy(&self) -> Self;
    /// The area.
    fn area(&self) -> u32;
}

#[derive(Clone)]
struct Square(u32);

#[async_wrap(clone_self)]
impl Shape for Square {
    fn copy(&self) -> Self {
        self.clone()
    }
    fn area(&self) -> u32 {
        self.0 * self.0
    }
}

#[async_wrap]
impl dyn Shape {
    /// On the trait object.
    pub fn area_of(shape: Arc<dyn Shape>) -> u32 {
        let _ = shape;
        0
    }
}

fn main() {
    async_wrap::set_call_statistics(true);
    futures::executor::block_on(async {
        assert_eq!(Store::LIMIT, 8);
        let store = Store::open();
        assert_eq!(Arc::clone(&store).put(1, "one".to_owned()).await, None);
        assert_eq!(Arc::clone(&store).put_blocking(2, "two".to_owned()), None);
        assert_eq!(Arc::clone(&store).get(2).await.as_deref(), Some("two"));
        assert_eq!(Arc::clone(&store).get_blocking(1).as_deref(), Some("one"));
        let keys: Vec<u32> = Arc::clone(&store).keys().collect().await;
        assert_eq!(keys, [1, 2]);
        assert_eq!(Arc::clone(&store).count().await, 2);
        assert_eq!(Arc::clone(&store).count_now(), 2);
        assert!(Store::thread_name().await.is_some());

        let cache = Arc::new(Cache { value: vec![1, 2] });
        assert_eq!(cache.cloned().await, [1, 2]);
        assert_eq!(Cache { value: 3_u8 }.into_value().await, 3);

        assert_eq!(Journal::append("a".to_owned()).await.unwrap(), 1);
        assert_eq!(Journal::append("b".to_owned()).await.unwrap(), 2);

        let books: Box<dyn Catalog> = Box::new(Books {
            titles: Arc::new(vec!["Dune".to_owned(), "Emma".to_owned()]),
        });
        assert_eq!(books.title(1).await.as_deref(), Some("Emma"));
        assert_eq!(books.ids().collect::<Vec<_>>().await, [0, 1]);
        assert_eq!(books.name(), "books");

        assert_eq!(Edges::r#match(1).await, 7);
        assert_eq!(Edges::match_now(1), 7);
        #[allow(deprecated)]
        let old = (Edges::old().await, Edges::old_now());
        assert_eq!(old, (8, 8));
        assert_eq!(Edges::on_skip().await, 9);
        assert_eq!(Mixed(3).get().await + Mixed(4).into_inner().await, 7);
        let square = Square(3);
        assert_eq!(square.copy().await.area().await, 9);
        let shape: Arc<dyn Shape> = Arc::new(Square(2));
        assert_eq!(shape.area().await, 4);
        assert_eq!(<dyn Shape>::area_of(shape).await, 0);

        assert_eq!(Doubler.by_future(4).await, 8);
        assert_eq!(Doubler.by_async(4).await, 9);
    });
    // Rows are named by type and method.
    let sites = async_wrap::call_sites();
    for name in [
        "Store::put",
        "Store::get",
        "Store::keys",
        "Store::count",
        "Cache::cloned",
    ] {
        let row = sites
            .get(&format!("{}::{name}", module_path!()))
            .unwrap_or_else(|| panic!("a row for {name} in\n{sites}"));
        assert!(row.calls >= 1, "{name}: {row:?}");
    }
    for name in [
        "<Books as Catalog>::title",
        "<dyn Shape>::area_of",
        "<Square as Shape>::area",
    ] {
        let row = sites.get(&format!("{}::{name}", module_path!()));
        assert!(row.is_some(), "a row for {name} in\n{sites}");
    }
    // The twin runs where it is called: it is not counted.
    let get = sites
        .get(&format!("{}::Store::get", module_path!()))
        .unwrap();
    assert_eq!(get.calls, 1);
}
