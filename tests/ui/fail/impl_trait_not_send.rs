use std::path::Path;

use async_wrap::async_wrap;

#[async_wrap]
fn size(path: impl AsRef<Path>) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[async_wrap]
fn size_send(path: impl AsRef<Path> + Send) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn main() {
    let _ = async {
        let _: u64 = size("Cargo.toml").await + size_send("Cargo.toml").await;
    };
}
