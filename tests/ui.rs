//! Compile-time behaviour of `#[async_wrap]`: accepted forms build and run, and every misuse is
//! refused with the message and span pinned in `tests/ui/fail/*.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
    // What an adapter name says when its cargo feature is off.
    #[cfg(not(any(feature = "tokio", feature = "rayon")))]
    cases.compile_fail("tests/ui/no-features/*.rs");
}
