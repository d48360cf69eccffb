//! `self` in the body: what kind of receiver it is, finding it, and pointing it at the copy the
//! job owns (a clone of `self` for `clone_self`, of the `Arc` for `self: &Arc<Self>`).

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use syn::{ReceiverKind, Signature, Type};

/// How a method takes `self`.
pub(crate) enum Form<'a> {
    /// No receiver, `self`, `mut self`, or a typed receiver that is not a reference
    /// (`self: Arc<Self>`, `self: Box<Self>`): moved into the job.
    Moved,
    /// `&self` or `self: &Self`: cloned under `clone_self`, refused otherwise.
    Shared(&'a syn::Receiver),
    /// `&mut self` or `self: &mut T`: always refused.
    Mutable(&'a syn::Receiver),
    /// `self: &Arc<Self>`: the `Arc` is cloned at the call.
    SharedArc(&'a syn::Receiver),
    /// `self: &T` for another `T`: refused.
    OtherReference(&'a syn::Receiver),
}

/// How `sig` takes `self`.
pub(crate) fn form(sig: &Signature) -> Form<'_> {
    let Some(receiver) = sig.receiver() else {
        return Form::Moved;
    };
    match &receiver.kind {
        ReceiverKind::Reference(_, _, Some(_)) => Form::Mutable(receiver),
        ReceiverKind::Reference(_, _, None) => Form::Shared(receiver),
        ReceiverKind::Typed(_, ty) => match &**ty {
            Type::Reference(reference) if reference.mutability.is_some() => Form::Mutable(receiver),
            Type::Reference(reference) if is_self(&reference.elem) => Form::Shared(receiver),
            Type::Reference(reference) if is_arc_of_self(&reference.elem) => {
                Form::SharedArc(receiver)
            }
            Type::Reference(_) => Form::OtherReference(receiver),
            _ => Form::Moved,
        },
        _ => Form::Moved,
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// `Arc<Self>`, with any path to `Arc`.
fn is_arc_of_self(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    last.ident == "Arc"
        && path.qself.is_none()
        && args.args.len() == 1
        && matches!(args.args.first(), Some(syn::GenericArgument::Type(inner)) if is_self(inner))
}

/// The hidden binding that holds the clone of `self` under `clone_self`.
pub(crate) fn self_clone_ident() -> Ident {
    Ident::new("__async_wrap_self", Span::mixed_site())
}

/// Whether `self` or `Self` appears, other than as a `self::` module path: the function is a
/// method or an associated function then, and cannot become a nested `fn`.
pub(crate) fn mentions_self(tokens: TokenStream) -> bool {
    finds_self(tokens, true)
}

/// Whether the value `self` appears (not the type `Self`, nor a `self::` module path).
pub(crate) fn reads_self(tokens: TokenStream) -> bool {
    finds_self(tokens, false)
}

/// Whether `self` (as a value, not a `self::` path) appears, or `Self` if `or_type`.
fn finds_self(tokens: TokenStream, or_type: bool) -> bool {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) if or_type && ident == "Self" => return true,
            TokenTree::Ident(ident) if ident == "self" && !is_path_separator(iter.peek()) => {
                return true;
            }
            TokenTree::Group(group) if finds_self(group.stream(), or_type) => return true,
            _ => {}
        }
    }
    false
}

/// The body of a `&self` method with every `self` replaced by `(&__async_wrap_self)`, a borrow
/// of the clone the job owns, so that the body's meaning does not change (`*self`, `match self`
/// and `self.field` all still see a `&Self`).
///
/// `self::` module paths are kept, and so are nested items (`fn`, `impl`, `trait`, `mod`), whose
/// `self` is their own.
pub(crate) fn replace_self(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) if is_item_keyword(&ident) => {
                out.push(TokenTree::Ident(ident));
                // Copy the nested item untouched, up to its body or its `;`.
                for tree in iter.by_ref() {
                    let end = match &tree {
                        TokenTree::Group(group) => group.delimiter() == Delimiter::Brace,
                        TokenTree::Punct(punct) => punct.as_char() == ';',
                        _ => false,
                    };
                    out.push(tree);
                    if end {
                        break;
                    }
                }
            }
            TokenTree::Ident(ident) if ident == "self" && !is_path_separator(iter.peek()) => {
                let span = ident.span();
                let mut and = Punct::new('&', Spacing::Alone);
                and.set_span(span);
                let clone = self_clone_ident();
                let clone = Ident::new(&clone.to_string(), clone.span().located_at(span));
                let inner =
                    TokenStream::from_iter([TokenTree::Punct(and), TokenTree::Ident(clone)]);
                let mut group = Group::new(Delimiter::Parenthesis, inner);
                group.set_span(span);
                out.push(TokenTree::Group(group));
            }
            TokenTree::Group(group) => {
                let mut replaced = Group::new(group.delimiter(), replace_self(group.stream()));
                replaced.set_span(group.span());
                out.push(TokenTree::Group(replaced));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

fn is_item_keyword(ident: &Ident) -> bool {
    ident == "fn" || ident == "impl" || ident == "trait" || ident == "mod"
}

fn is_path_separator(next: Option<&TokenTree>) -> bool {
    matches!(next, Some(TokenTree::Punct(punct)) if punct.as_char() == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn finds_self_but_not_module_paths() {
        assert!(mentions_self(quote!(self.len())));
        assert!(mentions_self(quote!({ Self::new() })));
        assert!(!mentions_self(quote!(self::helper(x))));
        assert!(!mentions_self(quote!(selfish + itself)));
    }

    #[test]
    fn replaces_self_outside_nested_items() {
        let replaced = replace_self(quote! {
            let n = self.items.len() + *self.count;
            fn nested(self) -> u8 { self.0 }
            self::helper(match self { _ => 1 })
        });
        assert_eq!(
            replaced.to_string(),
            quote! {
                let n = (&__async_wrap_self).items.len() + *(&__async_wrap_self).count;
                fn nested(self) -> u8 { self.0 }
                self::helper(match (&__async_wrap_self) { _ => 1 })
            }
            .to_string()
        );
    }
}
