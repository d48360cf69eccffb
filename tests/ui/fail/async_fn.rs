use async_wrap::async_wrap;

#[async_wrap]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
