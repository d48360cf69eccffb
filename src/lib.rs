//! Call blocking code from async code without blocking the executor: `#[async_wrap]` turns a
//! blocking function into one that returns a future, and awaiting that future runs the body on a
//! thread pool built for blocking work.
//!
//! ```
//! use async_wrap::async_wrap;
//!
//! /// Counts the lines of a file, with blocking I/O.
//! #[async_wrap]
//! fn count_lines(path: std::path::PathBuf) -> std::io::Result<usize> {
//!     Ok(std::fs::read_to_string(path)?.lines().count())
//! }
//!
//! # futures::executor::block_on(async {
//! let lines = count_lines("Cargo.toml".into()).await?;
//! assert!(lines > 10);
//! # std::io::Result::Ok(()) }).unwrap();
//! ```
//!
//! # What runs where
//!
//! Calling `count_lines(path)` runs nothing: it moves `path` into a job and returns a
//! [`BlockingFuture`]. The first poll hands the job to the function's executor (the
//! [`default_pool`] here), whose thread runs the body while the async task that awaits is
//! suspended and its runtime thread runs other tasks. When the body returns, the pool thread wakes
//! the task, which resumes with the value.
//!
//! # The pieces
//!
//! - [`macro@async_wrap`]: the attribute, with its options.
//! - [`BlockingPool`]: an elastic pool; put one in a `static` to cap the threads a kind of work
//!   may use. [`default_pool`] is the one used when no executor is named.
//! - [`Executor`]: the trait a pool implements; implement it to run wrapped calls on your own.
//! - [`spawn`] and [`spawn_on`]: the same dispatch for a closure, without the attribute.
//! - [`block_on`]: waits for a wrapped call from synchronous code, nesting allowed.
//! - [`is_cancelled`]: lets a long-running body stop once nobody awaits its result.
//! - `process::ProcessPool` (feature `process`, Linux): runs a function in worker processes,
//!   where a crash fails only its call and a hung call can be killed; see the `process` option
//!   of [`macro@async_wrap`].
//! - [`call_sites`]: what each wrapped function's calls did (counts, queue waits, run times).
//!
//! # Which tool for which work
//!
//! | the work | use |
//! |---|---|
//! | a blocking call (file system, a synchronous database driver, a C library), awaited from async code | `#[async_wrap]` on the function, on the default pool or a `static` pool sized for that resource |
//! | the same, at a single call site you do not want to name | [`spawn`] / [`spawn_on`] with a closure |
//! | CPU-bound computation (hashing, compression, rendering) | `#[async_wrap(executor = rayon)]`: one thread per core, no oversubscription |
//! | inside a tokio program that already tunes its blocking pool | `#[async_wrap(executor = tokio)]` keeps using it, with this crate's signatures and errors |
//! | native code that may crash or hang (a C parser fed untrusted input) | `#[async_wrap(executor = PROCS, process)]` on a `ProcessPool` (feature `process`): a crash fails that call alone, a hung call is killed |
//! | a short, non-blocking computation | none: call it directly; a thread hop costs microseconds |
//!
//! Compared with writing `tokio::task::spawn_blocking(move || f(x)).await.unwrap()` at every call
//! site, the attribute keeps the function's own signature, works on every runtime, resumes the
//! body's panic instead of returning a `JoinError`, refuses borrowed arguments at compile time
//! with the owned type to use, skips jobs whose future was dropped before they started, and lets
//! each kind of work have its own thread limit.
//!
//! # Semantics
//!
//! - **Panics** in the body are caught on the pool thread and resumed in the task that awaits,
//!   with the original payload, as if the function had been called directly. The thread lives on.
//! - **Cancellation**: dropping the future before its job starts means the job never runs. Once
//!   started, the job runs to completion and its result is dropped; [`is_cancelled`] turns true
//!   inside the body so that a long loop can stop early.
//! - **Back-pressure**: a pool with a bounded queue makes callers wait (asynchronously),
//!   refuses them, or runs the job on the caller, as its [`QueueFull`] policy says.
//! - **Shutdown**: [`BlockingPool::shutdown`] lets queued and running jobs finish and joins the
//!   threads; later calls panic with a message naming the pool, or, through
//!   [`BlockingFuture::checked`], return a [`CallError`]. Nothing is dropped silently.
//! - **Nesting**: a body's call to its own pool gets a thread while the pool has room for one; a
//!   body that waits with [`block_on`] on a call to its own saturated pool (no thread ready,
//!   `max_threads` reached) runs that call inline instead of deadlocking. A cycle across two saturated pools (a job on A waits
//!   on B, a job on B waits on A) can deadlock: give each resource its own pool and never wait in
//!   a circle, or call the `sync = NAME` twin instead of the wrapped function inside a body.
//!
//! # Seeing what the pool does
//!
//! Every `#[async_wrap]` function has a record of its own (a [`CallSite`]): its path, the file
//! and line where it is defined, the executor expression, and counts kept as its calls run
//! (relaxed atomics, no lock): calls, in flight, completed, panicked, cancelled (dropped before
//! the body started), refused, and log-scale histograms of the queue wait (submission to start)
//! and the run time. [`call_sites`] lists every function with a counted call so far (calls made
//! while [`set_call_statistics(false)`](set_call_statistics) are not counted); its `Display`
//! is a table:
//!
//! ```text
//! function              defined at        executor          calls  in flight    ok  panicked  cancelled  refused  wait p50  wait p99  run p50  run p99  run max  waited (paid)
//! app::parse            src/app.rs:33     the default pool   2000          0  2000         0          0        0    576 ns   1.66 µs   576 ns  1.66 µs  41.2 µs    1982 (1975)
//! app::query            src/app.rs:45     DB                   40          0    40         0          0        0   18.8 ms   37.7 ms  2.35 ms  2.82 ms  2.82 ms          0 (0)
//! ```
//!
//! ```
//! use std::time::Duration;
//! use async_wrap::{async_wrap, call_sites, BlockingPool};
//!
//! static DB: BlockingPool = BlockingPool::with_max_threads(2);
//!
//! #[async_wrap(executor = DB)]
//! fn query(id: u32) -> u32 {
//!     std::thread::sleep(Duration::from_millis(2));
//!     id
//! }
//!
//! # futures::executor::block_on(async {
//! for id in 0..5 {
//!     query(id).await;
//! }
//! # });
//! let sites = call_sites();
//! let query = sites.get("rust_out::query").expect("called");
//! assert_eq!((query.calls, query.completed, query.in_flight), (5, 5, 0));
//! assert!(query.run_time.percentile(0.5) >= Duration::from_millis(1));
//! println!("{sites}"); // the table
//! ```
//!
//! [`reset_call_sites`] zeroes the counts (say, once per reporting period), and
//! [`set_call_statistics(false)`](set_call_statistics) stops counting (it costs a few atomic
//! adds per call; `cargo run --release --example compare` in `comparisons/` shows the throughput with and
//! without). [`BlockingPool::metrics`] gives the pool's side: threads, idle threads, queued and
//! running jobs. `cargo run --example call_sites` prints both for a small mixed workload. With
//! the `metrics` feature, `publish_call_site_metrics` and `BlockingPool::publish_metrics` hand
//! them to the `metrics` facade's recorder (Prometheus and the like; the README's "Metrics"
//! section has the names), `render_call_site_histograms` writes the call sites' histograms
//! onto a Prometheus page itself, and [`Timings::buckets`] with [`DURATION_BUCKETS`] makes a
//! histogram by hand.
//!
//! **Slow calls.** A pool with [`BlockingPool::slow_call`] set reports each job that runs past
//! the threshold, once, while it still runs, naming the function, where it is defined, the pool
//! and how long it has run; [`BlockingPool::slow_queue_wait`] does the same for jobs that waited
//! too long for a thread. Reports go to the hook of [`Builder::on_slow_call`], else (with the
//! `tracing` feature) to a `tracing` warning with target `async_wrap`, else to standard error.
//!
//! **Short calls.** Offloading a call costs its caller a trip through the runtime: the task
//! parks, the runtime's thread may sleep, and waking it takes 20–65 µs on a VM. For a function
//! whose recent calls were all short (14 µs or less), whose future was made after the thread's
//! previous call was submitted (a task awaiting its calls one after another), on a
//! [`BlockingPool`] with a thread spinning for work, the polling thread instead waits for the
//! result for twice the recent run time plus 4 µs, then falls back to the waker. It waits only
//! where that holds up no one: inside [`block_on`], and on the workers of a tokio multi-thread
//! runtime (more than one worker); never on a current-thread runtime, whose timers and sockets
//! would wait with it, nor under executors it cannot identify (`futures::executor::block_on`,
//! smol, async-std). It never runs the body itself; a function with
//! one long call is not waited for until its calls are short again (the estimate comes down
//! half the way per call); a wait that did not pay makes that function skip the next 2, 4, ...
//! 1,024 calls' waits; of futures made together (`join!`, `join_all`, `select!`), only the
//! first may be waited for, and the others are submitted at once; and the waits hold a thread
//! at most 32 µs (from the first of them to the end of the last) or 8 calls with none of its
//! calls returning `Pending` in between: then the next call does not wait but parks as without
//! the wait, so that a task making such calls in a loop gives its runtime thread back (its other
//! tasks, its timers and its sockets run). [`set_adaptive_wait`]`(false)` turns the wait off
//! and keeps the statistics. The table's last column counts these waits and those that paid.
//!
//! # Coming from Python
//!
//! | Python (`asyncio`) | async-wrap |
//! |---|---|
//! | `await loop.run_in_executor(None, f, x)` | `f(x).await` with `#[async_wrap]` on `f` (the default pool) |
//! | `await asyncio.to_thread(f, x)` | the same; or `async_wrap::spawn(move \|\| f(x)).await` for a closure |
//! | `ThreadPoolExecutor(max_workers=2)` | `static POOL: BlockingPool = BlockingPool::with_max_threads(2);` and `#[async_wrap(executor = POOL)]` |
//! | `executor.shutdown(wait=True)` | `POOL.shutdown()`; `shutdown_timeout(d)` reports what is still running |
//! | a decorator `@to_thread` written by hand | `#[async_wrap]`, checked by the compiler: borrowed arguments and non-`Send` values are refused |
//! | an exception raised in the thread re-raised at `await` | the panic resumed at `.await`, with its payload |
//! | `future.cancel()` before it runs | dropping the future |
//! | the GIL: only one thread runs Python at a time | none: wrapped calls run in parallel, up to the pool's `max_threads` |
//!
//! ```
//! use async_wrap::{async_wrap, BlockingPool};
//!
//! // ThreadPoolExecutor(max_workers=2)
//! static EXECUTOR: BlockingPool = BlockingPool::with_max_threads(2);
//!
//! // @decorator: def slow(n): time.sleep(0.01); return n
//! #[async_wrap(executor = EXECUTOR)]
//! fn slow(n: u64) -> u64 {
//!     std::thread::sleep(std::time::Duration::from_millis(10));
//!     n
//! }
//!
//! // asyncio.gather(*(slow(n) for n in range(4)))
//! let results = futures::executor::block_on(futures::future::join_all((0..4).map(slow)));
//! assert_eq!(results, vec![0, 1, 2, 3]);
//! ```

/// Turns a blocking function into one that returns a `Send + 'static` future that runs the
/// body on a blocking thread pool.
///
/// ```
/// use std::time::Duration;
/// use async_wrap::{async_wrap, BlockingPool};
///
/// static IO: BlockingPool = BlockingPool::with_max_threads(2);
///
/// /// Doubles `n`, slowly.
/// #[async_wrap(executor = IO)]
/// pub fn slow_double(n: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(10));
///     n * 2
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(slow_double(21).await, 42);
/// # });
/// ```
///
/// # What it generates
///
/// The function above becomes, in effect:
///
/// ```
/// # use async_wrap::{BlockingFuture, BlockingPool};
/// # static IO: BlockingPool = BlockingPool::with_max_threads(2);
/// /// Doubles `n`, slowly.
/// pub fn slow_double(n: u64) -> BlockingFuture<u64> {
///     async_wrap::spawn_on(&IO, move || {
///         std::thread::sleep(std::time::Duration::from_millis(10));
///         n * 2
///     })
/// }
/// # assert_eq!(futures::executor::block_on(slow_double(21)), 42);
/// ```
///
/// Name, visibility, generics, where-clause, doc comments and other attributes are kept; only
/// the return type changes, from `T` to [`BlockingFuture<T>`]. The body is not rewritten. The
/// function is also `#[track_caller]`, so that a refused call's panic names the line of the call.
/// The expansion triggers no rustc or clippy warning, one-line bodies included.
///
/// # The rules
///
/// - **Arguments move into the job**, which runs on another thread after the call returns, so
///   they must be `Send + 'static`. A borrowed argument (`&str`, `&mut Vec<u8>`, `Cow<'a, str>`,
///   `impl Trait + 'a`) is a compile error at that argument, naming the owned type to use;
///   [`to_owned`](#to_owned) copies `&T` arguments instead. `&'static T` is fine. An `impl Trait`
///   argument says so itself: `impl AsRef<Path> + Send + 'static`.
/// - **The return type must be `Send + 'static`**; if it is not, the error points at it.
/// - **Methods** (inherent or in a trait impl) take `self` by value, `self: Arc<Self>` or
///   `self: &Arc<Self>` (the `Arc` is cloned at the call: cheap, and the state is shared); `&self`
///   is refused unless [`clone_self`](#clone_self) is given, `&mut self` always (the job cannot
///   borrow from the caller).
/// - **Recursion**: in a free function, a call to the function itself inside the body stays a
///   plain synchronous call. In a method, `self.method()` and `Self::method()` reach the wrapped
///   (async) form; use `sync = NAME` and call `Self::NAME` for the synchronous one.
/// - **Refused**: `async fn` (already async), `const fn`, `extern` ABIs, C variadics, anything
///   but a function, an `impl` block or a trait, and a return type of `impl Iterator` (or `impl IntoIterator`) without
///   [`stream`](#stream-and-batch--n): its items would be made on the caller's async thread.
///   A refused function still gets its async signature (returning the future, with a body that
///   cannot run) next to the errors, so the calls that `.await` it get no follow-on errors and the
///   rest of the crate keeps type-checking.
///
/// ```compile_fail
/// #[async_wrap::async_wrap]
/// fn shout(text: &str) -> String { // error: borrowed argument: `&str` ...; take an owned `String`
///     text.to_uppercase()
/// }
/// ```
///
/// # On an `impl` block, and on a trait
///
/// On an `impl` block, the attribute wraps every method with a body, each under the block's
/// options and its own: a method's `#[async_wrap(...)]` inside the block adds options or
/// overrides the block's (`executor`, `stream`, ...), and `#[async_wrap(skip)]` keeps a method
/// as written (a constructor, a cheap getter). Each method follows the rules above, and its
/// call site is named `module::Type::method` (`module::<Type as Trait>::method` in a trait
/// implementation). A block's `clone_self` and `to_owned` apply to the methods they fit (a
/// `&self` receiver, a `&T` argument) and leave the others alone. On a block, `sync` takes a pattern, `{}` standing
/// for each method's name, and gives every wrapped method its synchronous twin. An associated
/// function (no `self`) cannot use a block's `executor = self.pool`: give it its own executor,
/// or `skip` it.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex, PoisonError};
///
/// use async_wrap::{async_wrap, BlockingPool};
///
/// static DB: BlockingPool = BlockingPool::with_max_threads(2);
///
/// pub struct Store {
///     rows: Mutex<HashMap<u32, String>>,
/// }
///
/// #[async_wrap(executor = DB, sync = "{}_blocking")]
/// impl Store {
///     #[async_wrap(skip)]
///     pub fn open() -> Arc<Self> {
///         Arc::new(Store { rows: Mutex::default() })
///     }
///
///     pub fn put(self: Arc<Self>, key: u32, value: String) {
///         self.rows.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
///     }
///
///     pub fn get(self: Arc<Self>, key: u32) -> Option<String> {
///         self.rows.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let store = Store::open();
/// store.clone().put(1, "one".into()).await;
/// assert_eq!(store.clone().get(1).await.as_deref(), Some("one"));
/// assert_eq!(store.get_blocking(1).as_deref(), Some("one")); // the twin, on this thread
/// # });
/// ```
///
/// On a trait, the attribute makes each method declaration return what its wrapped
/// implementations return (`BlockingFuture<T>`; `BlockingStream<Item>` under `stream`; with
/// `state` or `process`, their futures), so that a wrapped `impl` block implements it, and the
/// trait stays usable as `dyn Trait` (a future it names, not an `async fn`'s hidden one). It
/// takes only the options that shape that type (`stream`, `state`, `process`, `crate`); the
/// executor is chosen by each implementation, and a method with a default body must be
/// `skip`ped. A trait implementation cannot hold `sync` twins.
///
/// ```
/// use async_wrap::{async_wrap, BlockingPool};
///
/// static DISK: BlockingPool = BlockingPool::with_max_threads(2);
///
/// #[async_wrap]
/// pub trait Catalog: Send + Sync {
///     fn title(&self, id: u32) -> Option<String>; // -> BlockingFuture<Option<String>>
/// }
///
/// #[derive(Clone)]
/// struct Books(Vec<String>);
///
/// #[async_wrap(executor = DISK, clone_self)]
/// impl Catalog for Books {
///     fn title(&self, id: u32) -> Option<String> {
///         self.0.get(id as usize).cloned()
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let catalog: Box<dyn Catalog> = Box::new(Books(vec!["Emma".into()]));
/// assert_eq!(catalog.title(0).await.as_deref(), Some("Emma"));
/// # });
/// ```
///
/// A trait written by hand works the same way when it declares `-> BlockingFuture<T>`, an
/// `async fn`, or `-> impl Future<Output = T> + Send`: a wrapped method implements each (the
/// last two are not `dyn`-compatible).
///
/// # Options
///
/// Each option may be given once, in any order.
///
/// ## `executor = EXPR`
///
/// Where the jobs run; the default is the [`default_pool`]. The expression is evaluated on each
/// call, in the function's scope: it may use the arguments and `self`. Any expression that
/// denotes an executor is accepted. A place (a path, a field, an index, a dereference) is
/// borrowed, like a method call's receiver, and any other expression (a call, `&POOL`) is used
/// as a value; then:
///
/// | the expression gives | for example |
/// |---|---|
/// | a `static` executor, or an element of a static array of them | `IO`, `SHARDS[(key % 4) as usize]` |
/// | a `&'static` executor | `&IO`, an argument `pool: &'static BlockingPool`, `pool()` |
/// | a `static` `LazyLock` of an executor, of an `Arc` or of a `Box` of one | `LAZY` |
/// | an [`Arc`](std::sync::Arc) of an executor (cloned if it is a place) | `self.pool`, `shared()` |
/// | a `Box` of an executor, by value | `boxed()` |
/// | an [`ExecutorRef`] | `handle()` |
///
/// The executor may be sized ([`BlockingPool`], your own type) or `dyn Executor`. A place whose
/// borrow does not live for the whole program (a pool owned by a local or by `self`, not behind
/// an `Arc`) is refused: the job cannot keep it. So is an executor *value*: a call returning a
/// `BlockingPool`, or a `const` item (rustc then says "temporary value dropped while borrowed"),
/// which would build a new pool at each call; make it a `static`.
///
/// ```
/// use std::sync::{Arc, LazyLock};
/// use async_wrap::{async_wrap, BlockingPool, Executor};
///
/// static DISK: LazyLock<BlockingPool> = LazyLock::new(|| BlockingPool::with_max_threads(2));
/// static SHARDS: [BlockingPool; 2] = [BlockingPool::with_max_threads(1), BlockingPool::with_max_threads(1)];
///
/// #[async_wrap(executor = DISK)]
/// fn read_config() -> String {
///     String::from("threads = 2")
/// }
///
/// #[async_wrap(executor = SHARDS[(key % 2) as usize])]
/// fn lookup(key: u64) -> u64 { key * 10 }
///
/// #[async_wrap(executor = pool)]
/// fn on(pool: &'static BlockingPool, n: u64) -> u64 { n + 1 }
///
/// struct Service {
///     exec: Arc<dyn Executor>,
/// }
///
/// impl Service {
///     #[async_wrap(executor = self.exec)]
///     fn len(self: &Arc<Self>, key: String) -> usize {
///         key.len()
///     }
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(read_config().await, "threads = 2");
/// assert_eq!(lookup(3).await, 30);
/// assert_eq!(on(&SHARDS[0], 1).await, 2);
/// let service = Arc::new(Service { exec: Arc::new(BlockingPool::with_max_threads(1)) });
/// assert_eq!(service.len("four".into()).await, 4);
/// # });
/// ```
///
/// ```compile_fail
/// # use async_wrap::{async_wrap, BlockingPool};
/// const POOL: BlockingPool = BlockingPool::with_max_threads(2); // a new pool at each use
///
/// #[async_wrap(executor = POOL)] // error: make it a `static`
/// fn read() -> u32 { 1 }
/// ```
///
/// ## `sync = NAME`
///
/// Also emits the original, blocking function under `NAME`, with the same visibility and docs:
/// for synchronous callers, tests, and bodies that want to call the function without going
/// through a pool.
///
/// ```
/// use async_wrap::async_wrap;
///
/// #[async_wrap(sync = checksum_blocking)]
/// pub fn checksum(data: Vec<u8>) -> u32 {
///     data.iter().map(|&b| u32::from(b)).sum()
/// }
///
/// assert_eq!(checksum_blocking(vec![1, 2, 3]), 6);
/// # assert_eq!(futures::executor::block_on(checksum(vec![1, 2, 3])), 6);
/// ```
///
/// ### `executor = tokio` and `executor = rayon`
///
/// Two bare words name the adapters, each behind the cargo feature of the same name: `tokio`
/// runs the job on the blocking pool of the tokio runtime that polls the future
/// (`TokioBlocking`), `rayon` on rayon's global pool (`RayonPool`), for CPU-bound work. Without
/// the feature, the word is a compile error that says which feature to enable. (To name an item
/// of yours called `tokio`, write a path: `executor = self::tokio`.)
///
/// ```
/// # #[cfg(all(feature = "tokio", feature = "rayon"))] {
/// use async_wrap::async_wrap;
///
/// #[async_wrap(executor = rayon)] // needs features = ["rayon"]
/// fn checksum(data: Vec<u8>) -> u64 {
///     data.iter().map(|&b| u64::from(b)).sum()
/// }
///
/// #[async_wrap(executor = tokio)] // needs features = ["tokio"]
/// fn read_len(path: std::path::PathBuf) -> std::io::Result<u64> {
///     Ok(std::fs::metadata(path)?.len())
/// }
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     assert_eq!(checksum(vec![1, 2, 3]).await, 6);
///     assert!(read_len("Cargo.toml".into()).await.unwrap() > 0);
/// });
/// # }
/// ```
///
/// ## `clone_self`
///
/// Accepts a `&self` method: `self` is cloned when the method is called (this needs
/// `Self: Clone + Send + 'static`), and the body runs on the clone, where `self` still means a
/// `&Self` (`*self`, `match self` and `self.field` keep their meaning). Make `Self` cheap to clone
/// (an `Arc` inside) if the method is called often. `&mut self` is refused even with this option:
/// the changes would be made to the clone and lost.
///
/// ```
/// use std::sync::Arc;
/// use async_wrap::async_wrap;
///
/// #[derive(Clone)]
/// struct Catalog {
///     items: Arc<Vec<String>>,
/// }
///
/// impl Catalog {
///     #[async_wrap(clone_self)]
///     fn find(&self, needle: String) -> Option<usize> {
///         self.items.iter().position(|item| *item == needle)
///     }
/// }
///
/// let catalog = Catalog { items: Arc::new(vec!["a".into(), "b".into()]) };
/// # futures::executor::block_on(async {
/// assert_eq!(catalog.find("b".into()).await, Some(1));
/// # });
/// ```
///
/// ## `to_owned`
///
/// Accepts `&T` arguments where `T: ToOwned` (`&str`, `&[u8]`, `&Path`, `&OsStr`): each is copied
/// to its owned form (`String`, `Vec<u8>`, `PathBuf`, ...) when the function is called, before
/// anything is submitted, and the body sees a `&T` borrowed from the copy. The caller's
/// signature is unchanged and the future is still `'static`. The cost is one allocation and a
/// copy of the data per argument and call: fine for paths and names, worth avoiding for large
/// buffers (pass a `Vec<u8>` or an `Arc<[u8]>` instead). `&mut T` and references nested in other
/// types (`Option<&str>`) are still refused.
///
/// ```
/// use std::path::Path;
/// use async_wrap::async_wrap;
///
/// #[async_wrap(to_owned)]
/// fn file_len(path: &Path) -> std::io::Result<u64> {
///     Ok(std::fs::metadata(path)?.len())
/// }
///
/// # futures::executor::block_on(async {
/// let name = String::from("Cargo.toml");
/// let len = file_len(Path::new(&name)); // copies the path here...
/// drop(name); // ...so the future does not borrow it
/// assert!(len.await.unwrap() > 0);
/// # });
/// ```
///
/// ## `stream` and `batch = N`
///
/// For a function that returns an iterator (`impl Iterator<Item = T>`, or any `IntoIterator`):
/// the function returns a [`BlockingStream<T>`] instead, a `futures_core::Stream` whose items the
/// pool pulls from the iterator, `batch` at a time (default 64). The body,
/// which makes the iterator (opening a file, running a query), runs on the pool too, in the
/// first refill. A slow consumer holds no thread: a refill job runs only while fewer than half
/// a batch is left; dropping the stream stops the iteration, and the iterator is dropped on the
/// pool. A panic in `next()` resumes in the consumer after the items before it.
///
/// ```
/// use futures::StreamExt;
/// use async_wrap::async_wrap;
///
/// #[async_wrap(stream, batch = 128)]
/// fn primes(below: u64) -> impl Iterator<Item = u64> + Send + 'static {
///     // CPU work per item, pulled on the pool a batch at a time.
///     (2..below).filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
/// }
///
/// # futures::executor::block_on(async {
/// let primes: Vec<u64> = primes(20).collect().await;
/// assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19]);
/// # });
/// ```
///
/// When making the iterator can fail (opening a file), return `Result<impl Iterator<Item = T>,
/// E>` (or `io::Result<...>`): the function then returns a future of
/// `Result<BlockingStream<T>, E>`. The body runs on the pool when the future is first polled, and
/// its error reaches the caller as a value, before any item.
///
/// ```
/// use std::io::{self, BufRead};
/// use futures::StreamExt;
/// use async_wrap::async_wrap;
///
/// #[async_wrap(stream)]
/// fn lines(path: std::path::PathBuf) -> io::Result<impl Iterator<Item = String> + Send + 'static> {
///     let file = std::fs::File::open(path)?;
///     Ok(io::BufReader::new(file).lines().map_while(Result::ok))
/// }
///
/// # futures::executor::block_on(async {
/// let count = lines("Cargo.toml".into()).await?.count().await;
/// assert!(count > 10);
/// assert!(lines("no such file".into()).await.is_err());
/// # io::Result::Ok(()) }).unwrap();
/// ```
///
/// Without `stream`, a function returning `impl Iterator` is refused: the pool would hand back
/// the iterator, and its work (reading the file) would run on the caller's async thread.
///
/// ## `state`
///
/// With `executor = POOL` naming a [`StatefulPool<S>`](StatefulPool), the function's first
/// argument, `&mut S`, is the value of the thread that runs the call (built there by the pool's
/// initializer, kept for the thread's life): Python's `ThreadPoolExecutor(initializer=...)`
/// without a `thread_local!`. The caller passes the other arguments, and the function returns a
/// future of `Result<T, StateError>`: the error when the thread could not build its value (the
/// body then did not run). A pool of another state type is a compile error at `POOL`.
///
/// ```
/// use async_wrap::{async_wrap, BlockingPool, StatefulPool};
///
/// /// A stand-in for a database connection.
/// struct Conn {
///     queries: u32,
/// }
/// fn connect() -> Conn {
///     Conn { queries: 0 }
/// }
/// static DB: StatefulPool<Conn> =
///     StatefulPool::new(BlockingPool::with_max_threads(1).thread_name("db"), connect);
///
/// #[async_wrap(executor = DB, state)]
/// fn query(conn: &mut Conn, sql: String) -> (u32, usize) {
///     conn.queries += 1;
///     (conn.queries, sql.len())
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(query("SELECT 1".into()).await.unwrap(), (1, 8));
/// assert_eq!(query("SELECT 22".into()).await.unwrap(), (2, 9)); // the same connection
/// # });
/// ```
///
/// ## `process` (feature `process`, Linux)
///
/// With `executor = POOL` naming a `static POOL: ProcessPool`, the body runs in a worker
/// process: the program run again, in which `async_wrap::process::init()`, the first line of
/// `main`, serves calls. A crash there (a segfault, an abort, an `exit`) fails only that call,
/// and a call past its deadline, or whose future is dropped, has its worker killed. The function
/// returns a `ProcessFuture<T>`, resolving to `Result<T, ProcessError>`. Its arguments and
/// result cross serialized: each must implement `serde::Serialize` and `serde::Deserialize`,
/// which the compiler checks at the type. A shared borrow (`&str`, `&[u8]`, `&Path`, `&T`) is
/// serialized from the borrow at the call and read back in the worker as its owned form
/// (`String`, `Vec<u8>`, `PathBuf`, `T`), which the body gets a borrow of: the future borrows
/// nothing. The function must be free (no `self`), non-generic and safe. See the `process`
/// module.
///
/// ```ignore
/// // Needs the `process` feature, and spawns worker processes (a doctest cannot).
/// use async_wrap::{async_wrap, process::ProcessPool};
///
/// static SANDBOX: ProcessPool = ProcessPool::with_max_workers(2)
///     .deadline(std::time::Duration::from_secs(5));
///
/// #[async_wrap(executor = SANDBOX, process)]
/// fn render(svg: String) -> Vec<u8> {
///     unsafe_native_renderer(&svg) // may segfault on hostile input
/// }
///
/// fn main() {
///     async_wrap::process::init();
///     // ... render(svg).await: Ok(png), or Err(ProcessError) naming the signal
/// }
/// ```
///
/// ## `crate = PATH`
///
/// The path of this crate when it is renamed or re-exported (the expansion otherwise names
/// `::async_wrap`).
///
/// ```
/// mod reexported {
///     pub(crate) use async_wrap as aw;
/// }
///
/// #[async_wrap::async_wrap(crate = crate::reexported::aw)]
/// fn one() -> u8 {
///     1
/// }
/// # fn main() { assert_eq!(futures::executor::block_on(one()), 1); }
/// ```
#[doc(inline)]
pub use async_wrap_macros::async_wrap;

pub use async_wrap_runtime::{
    BlockingFuture, BlockingPool, BuildError, Builder, CallError, Checked, Executor, ExecutorRef,
    InstallError, IntoExecutor, Job, Metrics, QueueFull, RejectReason, Rejected, RunningJob,
    Settings, ShutdownFuture, ShutdownReport, SlowCall, Slowness, StateError, StatefulPool,
    block_on, default_pool, install_default, is_cancelled, spawn, spawn_on,
};
pub use async_wrap_runtime::{BlockingStream, Unblock, stream, stream_on};
pub use async_wrap_runtime::{
    CallSite, CallSites, CallStats, DURATION_BUCKETS, Timings, adaptive_wait_enabled, call_sites,
    call_statistics_enabled, reset_call_sites, set_adaptive_wait, set_call_statistics,
};

// What the runtime's cargo features add (`RayonPool`, `TokioBlocking`, `ProcessPool` and
// `process`), as the runtime was built: this crate's features turn the runtime's on, and a
// build that turns on the runtime's alone (its own doc examples, written through this crate)
// finds them here too. With none of them on, the glob imports nothing: hence the allows.
#[allow(unused_imports, unreachable_pub)]
pub use async_wrap_runtime::__feature_gated::*;

/// What the `#[async_wrap]` expansion refers to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use async_wrap_runtime::__private::*;
}
