use async_wrap::async_wrap;

#[async_wrap]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
