//! Compile-time behaviour of `#[async_wrap]`: accepted forms build and run, and every misuse is
//! refused with the message and span pinned in `tests/ui/fail/*.stderr`.
//!
//! Two runs, because trybuild builds the cases of a run one at a time whenever a pass case is
//! among them: the pass cases are built and run one by one; the misuses are checked together,
//! in one `cargo check`. (`tests/ui/no_warnings.rs` is a test target of the package instead:
//! cargo builds it with the other tests, and clippy lints it.)

#[test]
fn ui() {
    // A `TestCases` runs its cases when it is dropped.
    trybuild::TestCases::new().pass("tests/ui/pass/*.rs");

    let misuses = trybuild::TestCases::new();
    misuses.compile_fail("tests/ui/fail/*.rs");
    // Messages that depend on the cargo features: what an adapter name says when its feature is
    // off, and the list of executors rustc suggests (the adapters add to it).
    #[cfg(not(any(feature = "tokio", feature = "rayon", feature = "process")))]
    misuses.compile_fail("tests/ui/no-features/*.rs");
    // What the type checker says of a `process` function's types and pool.
    #[cfg(feature = "process")]
    misuses.compile_fail("tests/ui/process/*.rs");
}
