use std::rc::Rc;

use async_wrap::async_wrap;

#[async_wrap]
fn shared() -> Rc<u32> {
    Rc::new(1)
}

fn main() {}
