use async_wrap::async_wrap;

#[async_wrap(process)]
fn no_pool(n: u32) -> u32 {
    n
}

#[async_wrap(executor = PROCS, process, stream)]
fn streamed(n: u32) -> Vec<u32> {
    vec![n]
}

#[async_wrap(executor = PROCS, process)]
fn generic<T: Send + 'static>(value: T) -> T {
    value
}

#[async_wrap(executor = PROCS, process)]
fn opaque(value: impl std::fmt::Debug + Send + 'static) -> String {
    format!("{value:?}")
}

struct Parser;

impl Parser {
    #[async_wrap(executor = PROCS, process)]
    fn parse(self, input: String) -> usize {
        input.len()
    }
}

#[async_wrap(executor = PROCS, process)]
unsafe fn risky(n: u32) -> u32 {
    n
}

fn main() {}
