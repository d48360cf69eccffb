use async_wrap::async_wrap;

static NOT_A_POOL: u32 = 4;

#[async_wrap(executor = NOT_A_POOL)]
fn read() -> u32 {
    1
}

fn main() {}
