use async_wrap::async_wrap;

#[async_wrap(stream)]
fn nothing_to_stream() {}

#[async_wrap(batch = 8)]
fn not_a_stream() -> u32 {
    1
}

#[async_wrap(stream, batch = 0)]
fn empty_batches() -> Vec<u8> {
    Vec::new()
}

fn main() {}
