use async_wrap::async_wrap;

#[async_wrap(executor)]
fn read() -> u32 {
    1
}

fn main() {}
