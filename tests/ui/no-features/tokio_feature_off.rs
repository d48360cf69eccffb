use async_wrap::async_wrap;

#[async_wrap(executor = tokio)]
fn read() -> u32 {
    1
}

#[async_wrap(executor = rayon)]
fn compute() -> u32 {
    2
}

fn main() {}
