use async_wrap::async_wrap;

#[async_wrap]
fn total<'a>(items: impl Iterator<Item = u32> + Send + 'a) -> u32 {
    items.sum()
}

fn main() {}
