//! Reads the item under the attribute: a function with a body, an `impl` block or a trait, or
//! a precise error.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{ItemFn, ItemImpl, ItemTrait};

/// What the attribute can go on.
pub(crate) enum Wrapped {
    /// A function with a body: it is wrapped.
    Fn(ItemFn),
    /// An `impl` block: each of its methods is wrapped.
    Impl(ItemImpl),
    /// A trait: each method declaration returns the future its wrapped implementations return.
    Trait(ItemTrait),
}

/// Parses the item, refusing anything but a function with a body, an `impl` block or a trait.
pub(crate) fn parse_item(item: TokenStream) -> syn::Result<Wrapped> {
    let item = match syn::parse2(item)? {
        syn::Item::Fn(func) => return Ok(Wrapped::Fn(func)),
        syn::Item::Impl(block) => return Ok(Wrapped::Impl(block)),
        syn::Item::Trait(declaration) => return Ok(Wrapped::Trait(declaration)),
        other => other,
    };
    let what = match &item {
        syn::Item::Const(_) => "a constant",
        syn::Item::Enum(_) => "an enum",
        syn::Item::ExternCrate(_) => "an `extern crate`",
        syn::Item::ForeignMod(_) => "an `extern` block",
        syn::Item::Macro(_) => "a macro invocation",
        syn::Item::Mod(_) => "a module",
        syn::Item::Static(_) => "a static",
        syn::Item::Struct(_) => "a struct",
        syn::Item::TraitAlias(_) => "a trait alias",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Union(_) => "a union",
        syn::Item::Use(_) => "a `use` declaration",
        _ => {
            "a method declaration without a body: put `#[async_wrap]` on the trait instead, \
             which makes each declaration return the future of its wrapped implementations"
        }
    };
    Err(syn::Error::new(
        item_head_span(&item),
        format!(
            "`#[async_wrap]` goes on a function, an `impl` block or a trait, and this is {what}"
        ),
    ))
}

/// Where an item's error goes: its keyword.
fn item_head_span(item: &syn::Item) -> Span {
    use syn::Item;
    match item {
        Item::Const(i) => i.const_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::ExternCrate(i) => i.extern_token.span,
        Item::ForeignMod(i) => i.abi.extern_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Struct(i) => i.struct_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Use(i) => i.use_token.span,
        other => other.span(),
    }
}
