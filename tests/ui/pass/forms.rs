//! Every accepted signature form builds, and runs with the result of a direct call.

use std::sync::{Arc, LazyLock};

use async_wrap::{BlockingPool, async_wrap};

static IO: BlockingPool = BlockingPool::with_max_threads(2);
static LAZY: LazyLock<BlockingPool> = LazyLock::new(|| BlockingPool::with_max_threads(1));

fn shared_pool() -> Arc<BlockingPool> {
    static SHARED: LazyLock<Arc<BlockingPool>> = LazyLock::new(|| Arc::new(BlockingPool::new()));
    SHARED.clone()
}

fn static_pool() -> &'static BlockingPool {
    &IO
}

#[async_wrap(executor = IO)]
fn from_static(n: u32) -> u32 {
    n + 1
}

#[async_wrap(executor = &IO)]
fn from_reference(n: u32) -> u32 {
    n + 2
}

#[async_wrap(executor = LAZY)]
fn from_lazy(n: u32) -> u32 {
    n + 3
}

#[async_wrap(executor = shared_pool())]
fn from_arc(n: u32) -> u32 {
    n + 4
}

#[async_wrap(executor = static_pool())]
fn from_static_fn(n: u32) -> u32 {
    n + 5
}

#[async_wrap]
pub(crate) fn patterns((a, b): (u32, u32), mut c: u32, [d, e]: [u32; 2], _: String) -> u32 {
    c += 1;
    a + b + c + d + e
}

#[async_wrap]
fn generic<T, const N: usize>(items: [T; N]) -> usize
where
    T: Send + 'static,
{
    items.len()
}

#[async_wrap]
fn impl_trait_arg(items: impl IntoIterator<Item = u32> + Send + 'static) -> u32 {
    items.into_iter().sum()
}

#[async_wrap]
fn unit(flag: Arc<std::sync::atomic::AtomicBool>) {
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[async_wrap]
fn static_str(text: &'static str) -> usize {
    text.len()
}

#[async_wrap]
fn fallible(text: String) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n * 2)
}

#[async_wrap]
fn factorial(n: u64) -> u64 {
    // Recursion stays a plain synchronous call.
    if n <= 1 { 1 } else { n * factorial(n - 1) }
}

fn main() {
    futures::executor::block_on(async {
        assert_eq!(from_static(0).await, 1);
        assert_eq!(from_reference(0).await, 2);
        assert_eq!(from_lazy(0).await, 3);
        assert_eq!(from_arc(0).await, 4);
        assert_eq!(from_static_fn(0).await, 5);
        assert_eq!(patterns((1, 2), 3, [4, 5], String::new()).await, 16);
        assert_eq!(generic([1u8, 2, 3]).await, 3);
        assert_eq!(impl_trait_arg(vec![1, 2, 3]).await, 6);
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        unit(flag.clone()).await;
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(static_str("four").await, 4);
        assert_eq!(fallible("21".into()).await, Ok(42));
        assert!(fallible("x".into()).await.is_err());
        assert_eq!(factorial(10).await, 3_628_800);
    });
}
