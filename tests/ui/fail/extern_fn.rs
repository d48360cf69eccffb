use async_wrap::async_wrap;

#[async_wrap]
extern "C" fn callback(code: i32) -> i32 {
    code
}

fn main() {}
