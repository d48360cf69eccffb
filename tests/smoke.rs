//! Smoke test of the expansion.
use async_wrap::{BlockingPool, async_wrap};
use std::time::Duration;

static IO: BlockingPool = BlockingPool::with_max_threads(2);

/// Doc.
#[async_wrap(executor = IO)]
fn slow(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(10));
    n * 2
}

#[async_wrap]
fn fact(n: u64) -> u64 {
    if n == 0 { 1 } else { n * fact(n - 1) }
}

#[async_wrap]
fn pats((a, b): (u32, u32), mut c: u32, _: String) -> u32 {
    c += 1;
    a + b + c
}

#[async_wrap]
fn generic<T: Send + 'static + std::fmt::Debug>(t: T) -> String where T: Clone {
    format!("{:?}", t.clone())
}

#[test]
fn smoke() {
    futures::executor::block_on(async {
        assert_eq!(slow(21).await, 42);
        assert_eq!(fact(5).await, 120);
        assert_eq!(pats((1, 2), 3, String::new()).await, 7);
        assert_eq!(generic(5u8).await, "5");
    });
}
