//! Attributes go to the right item, trait impls work, `-> impl Trait` and `()` outputs work.

#![deny(deprecated)]

use std::fmt::Display;

use async_wrap::async_wrap;

/// Kept on the wrapped function, like every other attribute.
#[async_wrap]
#[must_use = "the sum is the point"]
#[inline]
pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

/// Removed with the function by `#[cfg]`: nothing of it remains.
#[async_wrap]
#[cfg(any())]
fn compiled_out() -> u32 {
    this_does_not_exist()
}

#[async_wrap]
#[deprecated = "use add"]
fn old_add(a: u32, b: u32) -> u32 {
    a + b
}

#[async_wrap]
fn describe(n: u32) -> impl Display + Send + 'static {
    format!("#{n}")
}

#[async_wrap]
fn nothing() {}

trait Storage {
    fn load(self, key: u32) -> async_wrap::BlockingFuture<String>;
}

struct Disk;

impl Storage for Disk {
    #[async_wrap]
    fn load(self, key: u32) -> String {
        format!("value {key}")
    }
}

fn main() {
    futures::executor::block_on(async {
        assert_eq!(add(1, 2).await, 3);
        #[allow(deprecated)]
        let old = old_add(2, 2).await;
        assert_eq!(old, 4);
        assert_eq!(describe(7).await.to_string(), "#7");
        nothing().await;
        assert_eq!(Disk.load(3).await, "value 3");
    });
}
