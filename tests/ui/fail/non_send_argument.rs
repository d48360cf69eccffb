use std::rc::Rc;

use async_wrap::async_wrap;

#[async_wrap]
fn count(shared: Rc<Vec<u8>>) -> usize {
    shared.len()
}

fn main() {}
