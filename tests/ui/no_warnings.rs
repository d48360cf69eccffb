//! Every accepted form, written as users write them (one-line bodies included), builds without
//! a single rustc or clippy warning, and runs. A test target of the package (see `Cargo.toml`),
//! not a trybuild case: cargo builds it with the other tests, and `cargo clippy --all-targets`
//! lints it.

#![deny(warnings)]
#![deny(clippy::all)]

/// The wrapped functions, kept as written (rustfmt would put the one-line bodies on three
/// lines).
#[rustfmt::skip]
mod forms {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, LazyLock};

    use async_wrap::{BlockingPool, Executor, ExecutorRef, IntoExecutor, Job, Rejected, async_wrap};
    use futures::StreamExt;

    pub(crate) static IO: BlockingPool = BlockingPool::with_max_threads(2);
    pub(crate) static LAZY: LazyLock<BlockingPool> = LazyLock::new(|| BlockingPool::with_max_threads(1));
    pub(crate) static LAZY_ARC: LazyLock<Arc<BlockingPool>> =
        LazyLock::new(|| Arc::new(BlockingPool::with_max_threads(1)));
    pub(crate) static LAZY_DYN: LazyLock<Box<dyn Executor>> =
        LazyLock::new(|| Box::new(BlockingPool::with_max_threads(1)));
    pub(crate) static SHARDS: [BlockingPool; 4] = [
        BlockingPool::with_max_threads(1),
        BlockingPool::with_max_threads(1),
        BlockingPool::with_max_threads(1),
        BlockingPool::with_max_threads(1),
    ];
    pub(crate) static IO_REF: &BlockingPool = &IO;

    /// A user executor with no state: a unit struct may be named directly.
    pub(crate) struct ThreadPerJob;

    impl Executor for ThreadPerJob {
        fn execute(&self, job: Job) -> Result<(), Rejected> {
            std::thread::spawn(move || job.run());
            Ok(())
        }
    }

    pub(crate) fn shared_pool() -> Arc<BlockingPool> {
        Arc::clone(&LAZY_ARC)
    }

    pub(crate) fn static_pool() -> &'static BlockingPool {
        &IO
    }

    pub(crate) fn boxed_executor() -> Box<dyn Executor> {
        Box::new(ThreadPerJob)
    }

    pub(crate) fn handle() -> ExecutorRef {
        (&IO).into_executor()
    }

    // Bodies: one line, unit, empty, a block.
    #[async_wrap]
    pub(crate) fn double(n: u64) -> u64 { n * 2 }

    #[async_wrap]
    pub(crate) fn unit(flag: Arc<std::sync::atomic::AtomicBool>) { flag.store(true, std::sync::atomic::Ordering::SeqCst) }

    #[async_wrap]
    pub(crate) fn empty() {}

    #[async_wrap]
    pub(crate) fn block(n: u64) -> u64 {
        let m = n + 1;
        m * 2
    }

    // Every executor form.
    #[async_wrap(executor = IO)]
    pub(crate) fn on_static(n: u64) -> u64 { n + 1 }

    #[async_wrap(executor = &IO)]
    pub(crate) fn on_reference(n: u64) -> u64 { n + 2 }

    #[async_wrap(executor = LAZY)]
    pub(crate) fn on_lazy(n: u64) -> u64 { n + 3 }

    #[async_wrap(executor = LAZY_ARC)]
    pub(crate) fn on_lazy_arc(n: u64) -> u64 { n + 4 }

    #[async_wrap(executor = LAZY_DYN)]
    pub(crate) fn on_lazy_box_dyn(n: u64) -> u64 { n + 5 }

    #[async_wrap(executor = SHARDS[(key % 4) as usize])]
    pub(crate) fn on_shard(key: u64) -> u64 { key + 6 }

    #[async_wrap(executor = IO_REF)]
    pub(crate) fn on_static_reference(n: u64) -> u64 { n + 7 }

    #[async_wrap(executor = pool)]
    pub(crate) fn on_argument(pool: &'static BlockingPool, n: u64) -> u64 { n + 8 }

    #[async_wrap(executor = pool)]
    pub(crate) fn on_dyn_argument(pool: &'static dyn Executor, n: u64) -> u64 { n + 14 }

    #[async_wrap(executor = pool)]
    pub(crate) fn on_dyn_arc_argument(pool: Arc<dyn Executor + Send + Sync>, n: u64) -> u64 { n + 15 }

    #[async_wrap(executor = shared_pool())]
    pub(crate) fn on_arc_call(n: u64) -> u64 { n + 9 }

    #[async_wrap(executor = static_pool())]
    pub(crate) fn on_static_call(n: u64) -> u64 { n + 10 }

    #[async_wrap(executor = boxed_executor())]
    pub(crate) fn on_box_call(n: u64) -> u64 { n + 11 }

    #[async_wrap(executor = handle())]
    pub(crate) fn on_handle(n: u64) -> u64 { n + 12 }

    #[async_wrap(executor = ThreadPerJob)]
    pub(crate) fn on_unit_struct(n: u64) -> u64 { n + 13 }

    #[cfg(feature = "rayon")]
    #[async_wrap(executor = rayon)]
    pub(crate) fn on_rayon(n: u64) -> u64 { n + 16 }

    #[cfg(feature = "tokio")]
    #[async_wrap(executor = tokio)]
    pub(crate) fn on_tokio(n: u64) -> u64 { n + 17 }

    // The other options, patterns, generics.
    #[async_wrap(sync = factorial_blocking)]
    pub(crate) fn factorial(n: u64) -> u64 { if n <= 1 { 1 } else { n * factorial(n - 1) } }

    #[async_wrap(to_owned)]
    pub(crate) fn len(text: &str, path: &Path) -> usize { text.len() + path.as_os_str().len() }

    #[async_wrap]
    pub(crate) fn patterns((a, b): (u64, u64), mut c: u64, _: String) -> u64 {
        c += 1;
        a + b + c
    }

    #[async_wrap]
    pub(crate) fn generic<T: Clone + Send + 'static>(value: T) -> (T, T) { (value.clone(), value) }

    #[async_wrap]
    pub(crate) fn size(path: impl AsRef<Path> + Send + 'static) -> io::Result<u64> { Ok(std::fs::metadata(path)?.len()) }

    #[async_wrap]
    pub(crate) fn adder(n: u64) -> Option<impl Fn(u64) -> u64 + Send + 'static> { Some(move |m| n + m) }

    // Outputs with lifetimes of their own.
    #[async_wrap]
    pub(crate) fn label(n: u64) -> &'static str { if n == 0 { "zero" } else { "many" } }

    #[async_wrap(executor = IO)]
    pub(crate) fn labels() -> Vec<&'static str> { vec!["a", "b"] }

    // An output one generic short of clippy's `type_complexity`: the wrapper must not tip it over.
    #[async_wrap]
    pub(crate) fn parse(text: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> { Ok(text.trim().parse()?) }

    #[async_wrap(stream)]
    pub(crate) fn parsed(texts: Vec<String>) -> impl Iterator<Item = Result<u32, Box<dyn std::error::Error + Send + Sync>>> + Send + 'static { texts.into_iter().map(|text| Ok(text.trim().parse()?)) }

    #[async_wrap]
    pub(crate) unsafe fn unchecked(n: u64) -> u64 { n }

    pub(crate) mod reexport {
        pub(crate) use ::async_wrap as aw;
    }

    #[async_wrap(crate = self::reexport::aw)]
    pub(crate) fn through_reexport(n: u64) -> u64 { n + 1 }

    // Streams, plain and fallible.
    #[async_wrap(stream)]
    pub(crate) fn numbers(n: u32) -> impl Iterator<Item = u32> + Send + 'static { 0..n }

    #[async_wrap(stream, batch = 2, executor = IO)]
    pub(crate) fn lines(path: PathBuf) -> io::Result<impl Iterator<Item = String> + Send + 'static> {
        use std::io::BufRead;
        Ok(io::BufReader::new(std::fs::File::open(path)?).lines().map_while(Result::ok))
    }

    // Methods.
    #[derive(Clone)]
    pub(crate) struct Service {
        exec: Arc<dyn Executor>,
        pool: &'static BlockingPool,
        value: u64,
    }

    impl Service {
        #[async_wrap]
        pub(crate) fn new(value: u64) -> Self { Self { exec: Arc::new(BlockingPool::with_max_threads(1)), pool: &IO, value } }

        #[async_wrap]
        pub(crate) fn by_value(self) -> u64 { self.value }

        #[async_wrap(executor = self.exec)]
        pub(crate) fn by_arc(self: Arc<Self>) -> u64 { self.value + 1 }

        #[async_wrap(executor = self.exec)]
        pub(crate) fn by_arc_ref(self: &Arc<Self>) -> u64 { self.value + 2 }

        #[async_wrap(clone_self, executor = self.pool)]
        pub(crate) fn by_clone(&self) -> u64 { self.value + 3 }

        #[async_wrap(sync = by_arc_ref_blocking)]
        pub(crate) fn by_arc_ref_twin(self: &Arc<Self>, n: u64) -> u64 { self.value * n }

        #[async_wrap(clone_self, sync = by_clone_blocking)]
        pub(crate) fn by_clone_twin(&self, n: u64) -> u64 { self.value + n }
    }

    pub(crate) fn run() {
        #[cfg(feature = "tokio")]
        {
            let runtime = tokio::runtime::Builder::new_current_thread().build();
            assert_eq!(runtime.ok().map(|runtime| runtime.block_on(on_tokio(0))), Some(17));
        }
        futures::executor::block_on(async {
            assert_eq!(double(21).await, 42);
            let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
            unit(Arc::clone(&flag)).await;
            assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
            empty().await;
            assert_eq!(block(1).await, 4);

            assert_eq!(on_static(0).await, 1);
            assert_eq!(on_reference(0).await, 2);
            assert_eq!(on_lazy(0).await, 3);
            assert_eq!(on_lazy_arc(0).await, 4);
            assert_eq!(on_lazy_box_dyn(0).await, 5);
            assert_eq!(on_shard(5).await, 11);
            assert_eq!(on_static_reference(0).await, 7);
            assert_eq!(on_argument(&IO, 0).await, 8);
            assert_eq!(on_arc_call(0).await, 9);
            assert_eq!(on_static_call(0).await, 10);
            assert_eq!(on_box_call(0).await, 11);
            assert_eq!(on_handle(0).await, 12);
            assert_eq!(on_unit_struct(0).await, 13);
            assert_eq!(on_dyn_argument(&IO, 0).await, 14);
            #[cfg(feature = "rayon")]
            assert_eq!(on_rayon(0).await, 16);
            assert_eq!(on_dyn_arc_argument(Arc::new(ThreadPerJob), 0).await, 15);

            assert_eq!(factorial(10).await, factorial_blocking(10));
            assert_eq!(len("four", Path::new("ab")).await, 6);
            assert_eq!(patterns((1, 2), 3, String::new()).await, 7);
            assert_eq!(generic(String::from("x")).await, ("x".into(), "x".into()));
            assert!(size("Cargo.toml").await.is_ok());
            // SAFETY: `unchecked` has no precondition.
            assert_eq!(unsafe { unchecked(1) }.await, 1);
            assert_eq!(through_reexport(1).await, 2);
            assert_eq!(adder(1).await.map(|add| add(2)), Some(3));
            assert_eq!(label(0).await, "zero");
            assert_eq!(labels().await, ["a", "b"]);
            assert_eq!(parse(" 42 ".to_owned()).await.unwrap(), 42);
            assert!(parse("x".to_owned()).await.is_err());
            let parsed: Vec<_> = parsed(vec!["1".to_owned(), "y".to_owned()]).collect().await;
            assert!(matches!(parsed[..], [Ok(1), Err(_)]));

            assert_eq!(numbers(5).count().await, 5);
            let expected = std::fs::read_to_string("Cargo.toml").map_or(0, |text| text.lines().count());
            let count = async { io::Result::Ok(lines("Cargo.toml".into()).await?.count().await) };
            assert_eq!(count.await.ok(), Some(expected));
            // The error reaches the caller as a value.
            assert!(lines("no such file".into()).await.is_err());

            let service = Service::new(1).await;
            assert_eq!(service.by_clone().await, 4);
            assert_eq!(service.by_clone_twin(2).await, 3);
            assert_eq!(service.by_clone_blocking(2), 3);
            let shared = Arc::new(service.clone());
            assert_eq!(shared.by_arc_ref().await, 3);
            assert_eq!(shared.by_arc_ref_twin(5).await, shared.by_arc_ref_blocking(5));
            assert_eq!(Arc::clone(&shared).by_arc().await, 2);
            assert_eq!(service.by_value().await, 1);
        });
    }
}

/// `state`: the body gets its thread's value of a `StatefulPool`; the caller passes the rest.
mod stateful {
    use async_wrap::{BlockingPool, StatefulPool, async_wrap};

    fn open() -> Vec<u64> {
        Vec::new()
    }

    static LOG: StatefulPool<Vec<u64>> =
        StatefulPool::new(BlockingPool::with_max_threads(1).thread_name("log"), open);

    #[async_wrap(executor = LOG, state)]
    fn append(log: &mut Vec<u64>, n: u64) -> usize {
        log.push(n);
        log.len()
    }

    #[async_wrap(executor = LOG, state, sync = append_twice_blocking)]
    pub(crate) fn append_twice(log: &mut Vec<u64>, n: u64) -> usize {
        log.extend([n, n]);
        log.len()
    }

    pub(crate) fn run() {
        futures::executor::block_on(async {
            assert_eq!(append(1).await.ok(), Some(1));
            assert_eq!(append_twice(2).await.ok(), Some(3));
        });
        assert_eq!(append_twice_blocking(&mut Vec::new(), 1), 2);
    }
}

fn main() {
    forms::run();
    stateful::run();
}
