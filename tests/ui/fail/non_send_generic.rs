use async_wrap::async_wrap;

#[async_wrap]
fn identity<T>(value: T) -> T {
    value
}

fn main() {}
