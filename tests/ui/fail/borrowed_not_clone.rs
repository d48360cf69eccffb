// A borrowed argument of a type the macro cannot know to be `Clone`: `to_owned` is suggested
// only on that condition; inside `Option<&str>` it is not suggested at all (it copies only
// `&T` arguments).
use async_wrap::async_wrap;

struct Handle;

#[async_wrap]
fn take(handle: &Handle) -> usize {
    let _ = handle;
    0
}

#[async_wrap]
fn parse(text: Option<&str>) -> usize {
    text.map_or(0, str::len)
}

fn main() {
    let _ = async { take(&Handle).await + parse(None).await };
}
