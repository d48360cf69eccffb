//! The `#[async_wrap]` attribute. Use it through the [`async-wrap`](https://docs.rs/async-wrap)
//! crate, which re-exports it next to the pools it dispatches to; the full documentation, with
//! examples, is on the re-export.

mod expand;
mod options;
mod validate;

use proc_macro::TokenStream;

/// Turns a blocking function into one that returns a `Send + 'static` future running the body
/// on a blocking thread pool.
///
/// See the `async-wrap` crate for the documentation and examples.
#[proc_macro_attribute]
pub fn async_wrap(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::async_wrap(args.into(), item.into()).into()
}
