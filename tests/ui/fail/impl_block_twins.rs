// Twin names a `sync` pattern cannot give: another method's name, the function's own name, a
// keyword. Each is one error at the pattern; the twin is not emitted, and the calls get no
// other error.
use async_wrap::async_wrap;

pub struct S;

#[async_wrap(sync = "{}_blocking")]
impl S {
    pub fn get(self) -> u32 {
        1
    }

    #[async_wrap(skip)]
    pub fn get_blocking(self) -> u32 {
        2
    }
}

pub struct T;

#[async_wrap(sync = "r{}")]
impl T {
    pub fn ef(self) -> u32 {
        3
    }
}

#[async_wrap(sync = "{}")]
pub fn same() -> u32 {
    4
}

#[async_wrap(sync = "r#{}")]
pub fn raw() -> u32 {
    5
}

fn main() {
    let _ = async {
        let _: u32 = S.get().await;
        let _: u32 = S.get_blocking();
        let _: u32 = T.ef().await;
        let _: u32 = same().await;
        let _: u32 = raw().await;
    };
}
