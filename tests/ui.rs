//! Compile-time behaviour of `#[async_wrap]`: accepted forms build and run, and every misuse is
//! refused with the message and span pinned in `tests/ui/fail/*.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
    // Messages that depend on the cargo features: what an adapter name says when its feature is
    // off, and the list of executors rustc suggests (the adapters add to it).
    #[cfg(not(any(feature = "tokio", feature = "rayon", feature = "process")))]
    cases.compile_fail("tests/ui/no-features/*.rs");
    // What the type checker says of a `process` function's types and pool.
    #[cfg(feature = "process")]
    cases.compile_fail("tests/ui/process/*.rs");
}
