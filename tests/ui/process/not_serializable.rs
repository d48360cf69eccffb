use async_wrap::async_wrap;
use async_wrap::process::ProcessPool;

static PROCS: ProcessPool = ProcessPool::new();

/// Neither `Serialize` nor `Deserialize`.
struct Handle(u32);

#[async_wrap(executor = PROCS, process)]
fn takes(handle: Handle, n: u32) -> u32 {
    handle.0 + n
}

#[async_wrap(executor = PROCS, process)]
fn gives(n: u32) -> Handle {
    Handle(n)
}

fn main() {}
