//! `crate = PATH` points the expansion at a re-export of async-wrap.

mod reexport {
    pub(crate) use ::async_wrap as aw;
}

#[async_wrap::async_wrap(crate = crate::reexport::aw)]
fn through_reexport(n: u32) -> u32 {
    n + 1
}

fn main() {
    assert_eq!(futures::executor::block_on(through_reexport(1)), 2);
}
