//! Reads the item under the attribute: a function with a body, or a precise error.

use proc_macro2::{Span, TokenStream};
use syn::ItemFn;
use syn::spanned::Spanned;

/// Parses the item, refusing anything but a function with a body.
pub(crate) fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    let item = match syn::parse2(item)? {
        syn::Item::Fn(func) => return Ok(func),
        other => other,
    };
    let what = match &item {
        syn::Item::Const(_) => "a constant",
        syn::Item::Enum(_) => "an enum",
        syn::Item::ExternCrate(_) => "an `extern crate`",
        syn::Item::ForeignMod(_) => "an `extern` block",
        syn::Item::Impl(_) => "an `impl` block (put it on the methods inside)",
        syn::Item::Macro(_) => "a macro invocation",
        syn::Item::Mod(_) => "a module",
        syn::Item::Static(_) => "a static",
        syn::Item::Struct(_) => "a struct",
        syn::Item::Trait(_) => "a trait",
        syn::Item::TraitAlias(_) => "a trait alias",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Union(_) => "a union",
        syn::Item::Use(_) => "a `use` declaration",
        _ => "not a function with a body (a method declaration without a body cannot be wrapped)",
    };
    Err(syn::Error::new(
        item_head_span(&item),
        format!("`#[async_wrap]` goes on a function, and this is {what}"),
    ))
}
fn item_head_span(item: &syn::Item) -> Span {
    use syn::Item;
    match item {
        Item::Const(i) => i.const_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::ExternCrate(i) => i.extern_token.span,
        Item::ForeignMod(i) => i.abi.extern_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Struct(i) => i.struct_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Use(i) => i.use_token.span,
        other => other.span(),
    }
}
