// A `ProcessPool` named by a function without `process`: one error at the pool, saying to add
// `process`, with none of the executor forms listed.
use async_wrap::{async_wrap, process::ProcessPool};

static SANDBOX: ProcessPool = ProcessPool::with_max_workers(1);

#[async_wrap(executor = SANDBOX)]
fn parse(text: String) -> usize {
    text.len()
}

fn main() {
    async_wrap::process::init();
    let _ = async { parse("x".into()).await };
}
