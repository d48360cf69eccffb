use async_wrap::async_wrap;

#[async_wrap]
const fn answer() -> u32 {
    42
}

fn main() {}
