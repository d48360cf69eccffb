//! Compile-time behaviour of `#[async_wrap]`: every misuse is refused with the message and span
//! pinned in `tests/ui/fail/*.stderr` (and `no-features/`, `process/`, by feature).
//!
//! The accepted forms, `tests/ui/pass/*.rs` and `tests/ui/no_warnings.rs`, are test targets of
//! the package (see `Cargo.toml`), not trybuild cases: cargo builds them with the other tests and
//! runs each, and clippy lints them. With no pass case in the run, trybuild checks the misuses
//! together, in one `cargo check`, instead of building them one at a time.

#[test]
fn ui() {
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
