// `skip` misused: a typo of it inside a block (one error, the method kept as written), and
// `skip` on a method of a block without the attribute (one error, the method kept as written,
// so its synchronous callers get no other error).
use async_wrap::async_wrap;

pub struct S;

#[async_wrap]
impl S {
    #[async_wrap(skpi)]
    pub fn new() -> S {
        S
    }

    pub fn get(self) -> u32 {
        1
    }
}

pub struct Plain;

impl Plain {
    #[async_wrap(skip)]
    pub fn get(self) -> u32 {
        2
    }
}

fn main() {
    let _ = async {
        let _: S = S::new();
        let _: u32 = S.get().await;
        let _: u32 = Plain.get();
    };
}
