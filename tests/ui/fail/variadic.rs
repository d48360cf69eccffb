use async_wrap::async_wrap;

#[async_wrap]
unsafe extern "C" fn log(level: i32, ...) -> i32 {
    level
}

fn main() {}
