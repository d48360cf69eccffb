use async_wrap::async_wrap;

// Without the feature there is no `ProcessPool` to name: the pool's type is not the subject
// here, the one error is the missing feature's, at `process`.
static PROCS: u8 = 0;

#[async_wrap(executor = PROCS, process)]
fn parse(input: String) -> usize {
    input.len()
}

fn main() {
    // Callers still type-check: no follow-on errors.
    let _ = async {
        let _: Result<usize, _> = parse(String::new()).await;
    };
}
