//! The seed's hello world: a blocking function, awaited from async code.
//!
//! ```text
//! cargo run --example hello
//! ```

use std::thread;
use std::time::Duration;

use async_wrap::async_wrap;

/// Greets after a blocking sleep; runs on a pool thread, never on the async runtime's.
#[async_wrap]
fn hello(name: String) -> String {
    thread::sleep(Duration::from_millis(100));
    format!(
        "Hello, {name}! (from {:?}, a pool thread)",
        thread::current().name().unwrap_or("unnamed")
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "async main runs on {:?}",
        thread::current().name().unwrap_or("unnamed")
    );
    println!("{}", hello("world".to_owned()).await);
}
