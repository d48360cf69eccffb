//! The expansion uses absolute paths only: shadowing `core`, `std`, `async_wrap`-looking names
//! and common prelude items in the caller's scope changes nothing.

#![allow(dead_code, non_camel_case_types)]

mod core {}
mod std {}
struct Option;
struct Box;
struct BlockingFuture;
fn call() {}
fn default_executor() {}

#[async_wrap::async_wrap]
fn shadowed(n: u32) -> u32 {
    n * 2
}

fn main() {
    assert_eq!(futures::executor::block_on(shadowed(21)), 42);
}
