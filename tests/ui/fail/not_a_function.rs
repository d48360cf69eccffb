use async_wrap::async_wrap;

#[async_wrap]
struct Config {
    threads: usize,
}

fn main() {}
