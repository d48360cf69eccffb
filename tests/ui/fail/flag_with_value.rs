use async_wrap::async_wrap;

#[async_wrap(to_owned = true)]
fn read(path: &str) -> usize {
    path.len()
}

fn main() {}
