// A borrowed argument of a `process` function: no `to_owned` hint (the two do not combine).
use async_wrap::{async_wrap, process::ProcessPool};

static SANDBOX: ProcessPool = ProcessPool::with_max_workers(1);

#[async_wrap(executor = SANDBOX, process)]
fn parse(text: &str) -> usize {
    text.len()
}

fn main() {
    async_wrap::process::init();
    let _ = async { parse("x").await };
}
