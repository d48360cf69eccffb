use async_wrap::async_wrap;

#[async_wrap]
fn count(items: Vec<u32>) -> usize {
    items.iter().sum::<u32>()
}

fn main() {}
