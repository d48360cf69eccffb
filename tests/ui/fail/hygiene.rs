use async_wrap::async_wrap;

// The hidden name of a pattern argument cannot be reached from the body.
#[async_wrap]
fn first((a, _b): (u32, u32)) -> u32 {
    a + __async_wrap_arg0.1
}

fn main() {}
