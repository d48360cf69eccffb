// A `process` function's borrows that cannot cross: `&str`, `&[u8]` and `&Path` are serialized
// at the call, but a borrow inside another type, or a `&mut` the body would write through, is
// refused, with no `to_owned` hint (the two do not combine).
use async_wrap::{async_wrap, process::ProcessPool};

static SANDBOX: ProcessPool = ProcessPool::with_max_workers(1);

#[async_wrap(executor = SANDBOX, process)]
fn parse(text: Option<&str>) -> usize {
    text.map_or(0, str::len)
}

#[async_wrap(executor = SANDBOX, process)]
fn fill(buffer: &mut Vec<u8>) -> usize {
    buffer.push(1);
    buffer.len()
}

fn main() {
    async_wrap::process::init();
    let _ = async { parse(None).await };
    let _ = async { fill(&mut Vec::new()).await };
}
