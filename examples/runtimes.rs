//! One wrapped function, unchanged, awaited from tokio (both flavours), smol, and plain
//! synchronous code: the futures use nothing but `std::task::Waker`.
//!
//! ```text
//! cargo run --example runtimes
//! ```

use std::time::Duration;

use async_wrap::async_wrap;

/// A blocking lookup, as a synchronous database driver would do it.
#[async_wrap]
fn lookup(key: u32) -> String {
    std::thread::sleep(Duration::from_millis(20));
    format!(
        "value-{key} (from {})",
        std::thread::current().name().unwrap_or("?")
    )
}

fn main() {
    let multi = tokio::runtime::Runtime::new().unwrap();
    println!("tokio multi-thread:   {}", multi.block_on(lookup(1)));

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("tokio current-thread: {}", current.block_on(lookup(2)));

    println!("smol:                 {}", smol::block_on(lookup(3)));

    println!(
        "futures block_on:     {}",
        futures::executor::block_on(lookup(4))
    );

    // From synchronous code, async_wrap's own block_on may also be nested inside a body.
    println!("async_wrap::block_on: {}", async_wrap::block_on(lookup(5)));
}
