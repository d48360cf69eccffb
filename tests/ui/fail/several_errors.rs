use async_wrap::async_wrap;

// Independent mistakes are all reported at once.
#[async_wrap(threads = 4)]
async fn parse(text: &str, bytes: &[u8]) -> usize {
    text.len() + bytes.len()
}

fn main() {}
