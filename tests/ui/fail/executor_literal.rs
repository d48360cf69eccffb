use async_wrap::async_wrap;

#[async_wrap(executor = "db")]
fn query(id: u32) -> u32 {
    id
}

fn main() {
    let _ = async {
        let _: u32 = query(1).await;
    };
}
