use async_wrap::async_wrap;

#[async_wrap(clone_self, to_owned)]
fn plain(n: u64) -> u64 {
    n
}

fn main() {}
