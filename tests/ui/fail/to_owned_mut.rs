use async_wrap::async_wrap;

// `to_owned` copies shared references only; `&mut` and nested borrows are still refused.
#[async_wrap(to_owned)]
fn fill(name: &str, buffer: &mut Vec<u8>, maybe: Option<&str>) -> usize {
    buffer.len() + name.len() + maybe.map_or(0, str::len)
}

fn main() {}
