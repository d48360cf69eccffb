use async_wrap::async_wrap;

#[async_wrap]
fn fill(buffer: &mut Vec<u8>) {
    buffer.push(1);
}

fn main() {}
