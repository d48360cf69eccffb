//! The `#[async_wrap]` attribute. Use it through the [`async-wrap`](https://docs.rs/async-wrap)
//! crate, which re-exports it next to the pools it dispatches to; the full documentation, with
//! examples, is on the re-export.
//!
//! The attribute runs in three phases, one module each: `options` parses the arguments, `item`
//! and `validate` read and check the function, `expand` writes the shim. Every phase returns
//! `syn::Result`, so that all the mistakes in one attribute are reported together, and
//! `expand_attribute` is a plain function over `proc_macro2` tokens that tests call directly.

mod expand;
mod item;
mod options;
mod receiver;
mod validate;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

/// Turns a blocking function into one that returns a `Send + 'static` future running the body
/// on a blocking thread pool.
///
/// See the `async-wrap` crate for the documentation and examples.
#[proc_macro_attribute]
pub fn async_wrap(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attribute(args.into(), item.into()).into()
}

/// The attribute over `proc_macro2` tokens: its arguments and the item it is on, to the tokens
/// that replace the item.
///
/// Never panics. On any error the original item is emitted unchanged next to the errors, so the
/// rest of the crate still type-checks against the function's real signature (and IDEs keep
/// working).
fn expand_attribute(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = None;
    let options = options::Options::parse(args)
        .map_err(|err| options::combine(&mut errors, err))
        .ok();
    let func = item::parse_function(item.clone())
        .map_err(|err| options::combine(&mut errors, err))
        .ok();
    if let Some(func) = &func {
        // Check the signature even when the options are broken: all the mistakes are reported
        // at once.
        let default = options::Options::default();
        if let Err(err) = validate::check_signature(&func.sig, options.as_ref().unwrap_or(&default))
        {
            options::combine(&mut errors, err);
        }
    }
    match (errors, options, func) {
        (None, Some(options), Some(func)) => expand::expand(&options, &func),
        (errors, _, _) => {
            let mut tokens = item;
            if let Some(err) = errors {
                tokens.extend(err.into_compile_error());
            }
            tokens
        }
    }
}
