use std::borrow::Cow;

use async_wrap::async_wrap;

#[async_wrap]
fn name<'a>(name: Cow<'a, str>) -> usize {
    name.len()
}

fn main() {}
