use std::sync::Arc;

use async_wrap::{BlockingPool, async_wrap};

static IO: BlockingPool = BlockingPool::with_max_threads(2);

// Each mistake is reported once, at the attribute or the signature; the functions keep their
// async signatures, so the calls below, which `.await` them, get no error.
struct Db;

impl Db {
    #[async_wrap(executor = IO)]
    fn query(&self, id: u32) -> String {
        id.to_string()
    }
}

#[async_wrap]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

#[async_wrap(stream, exector = IO)]
fn numbers(n: u32) -> impl Iterator<Item = u32> + Send + 'static {
    0..n
}

#[async_wrap(batch = 4, sync = parse_blocking)]
async fn parse(text: String) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

fn main() {
    let _ = async {
        let db = Arc::new(Db);
        let name: String = db.query(1).await;
        let loud: String = shout("hi").await;
        let stream: async_wrap::BlockingStream<u32> = numbers(3);
        let parsed: u32 = parse(name + &loud).await.unwrap_or(0);
        drop((stream, parsed));
    };
}
