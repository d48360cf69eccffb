//! The `#[async_wrap]` attribute. Use it through the [`async-wrap`](https://docs.rs/async-wrap)
//! crate, which re-exports it next to the pools it dispatches to; the full documentation, with
//! examples, is on the re-export.
//!
//! The attribute runs in three phases, one module each: `options` parses the arguments, `item`
//! and `validate` read and check the function, `expand` writes the shim (`types` holds the type
//! shapes the last two both look for, `receiver` the forms of `self`). Every phase returns
//! `syn::Result`, so that all the mistakes in one attribute are reported together, and
//! `expand_attribute` is a plain function over `proc_macro2` tokens that tests call directly.

mod errors;
mod expand;
mod impl_block;
mod item;
mod options;
mod receiver;
mod types;
mod validate;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

use errors::Errors;

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
/// Never panics. On any error in the options or the signature, the function is still emitted
/// with the signature the attribute would give it (returning the future, with a body that
/// cannot run) next to the errors, so that the rest of the crate, `.await`s included, still
/// type-checks and the errors are the real ones. An item that is not a function is emitted
/// unchanged next to the error.
fn expand_attribute(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let skip = impl_block::is_skip(&args);
    let options = options::Options::parse(args, &mut errors);
    if skip {
        // `skip` outside an `impl` block under the attribute: reported (by the options), and
        // the item kept as written, as `skip` asks, so that its callers get no other error.
        let mut tokens = item;
        tokens.extend(errors.into_error().map(syn::Error::into_compile_error));
        return tokens;
    }
    match item::parse_item(item.clone()) {
        Ok(item::Wrapped::Fn(func)) => {
            let mut tokens = expand_function(options, &func, &mut errors);
            tokens.extend(errors.into_error().map(syn::Error::into_compile_error));
            tokens
        }
        Ok(item::Wrapped::Impl(block)) => impl_block::expand_impl(&options, block, errors),
        Ok(item::Wrapped::Trait(declaration)) => {
            impl_block::expand_trait(&options, declaration, errors)
        }
        Err(err) => {
            errors.push(err);
            let mut tokens = item;
            tokens.extend(errors.into_error().map(syn::Error::into_compile_error));
            tokens
        }
    }
}

/// One function under `options` (its own, or its `impl` block's and its own): its shim, or,
/// if `errors` holds any (found here or before, in the options or another method of its
/// block), the fallback. The caller emits the errors.
fn expand_function(
    mut options: options::Options,
    func: &syn::ItemFn,
    errors: &mut Errors,
) -> TokenStream2 {
    options.name_twin(&func.sig.ident, errors);
    // Check the signature even when the options are broken: all the mistakes are reported at
    // once.
    validate::check_signature(&func.sig, &options, errors);
    if errors.is_empty() {
        expand::expand(&options, func)
    } else {
        if validate::suggests_state(&func.sig, &options) {
            // The error suggests `state`: the calls written for it get no follow-on error.
            options.state = Some(syn::parse_quote!(state));
        }
        expand::fallback(&options, func)
    }
}
