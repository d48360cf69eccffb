//! `#[async_wrap]` on an `impl` block, each method wrapped with the block's options under its
//! own, and on a trait, each method declaration returning the future that its wrapped
//! implementations return.
//!
//! ```text
//! #[async_wrap(executor = DB, sync = "{}_blocking")]     impl Store {
//! impl Store {                                   ==>         fn get_blocking(&self, ..) -> T { body }
//!     pub fn get(self: Arc<Self>, ..) -> T { body }          #[track_caller]
//!     #[async_wrap(skip)]                                    pub fn get(self: Arc<Self>, ..) -> BlockingFuture<T> { .. }
//!     pub fn open(path: &Path) -> Self { .. }                pub fn open(path: &Path) -> Self { .. }
//! }                                                      }
//! ```
//!
//! Each method goes through the same checks and expansion as a function under the attribute;
//! its call site is named `module::Store::get`.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{Attribute, ImplItem, ItemFn, ItemImpl, ItemTrait, Meta, ReturnType, TraitItem, Type};

use crate::errors::Errors;
use crate::expand;
use crate::options::Options;
use crate::receiver::mentions_self;

/// The tokens that replace an `impl` block under `#[async_wrap(options)]`: every method with a
/// body wrapped, but those marked `#[async_wrap(skip)]`; the other items as written.
pub(crate) fn expand_impl(
    options: &Options,
    mut block: ItemImpl,
    mut errors: Errors,
) -> TokenStream {
    let in_trait_impl = block.trait_.is_some();
    check_block_options(options, in_trait_impl, &mut errors);
    let owner = owner_name(&block.self_ty);
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else {
            continue;
        };
        let Some(own) = take_method_attr(&mut method.attrs, &mut errors) else {
            continue;
        };
        check_method(options, &own, method, in_trait_impl, &mut errors);
        let mut options = options.for_method(own, owner.clone());
        if in_trait_impl {
            // Refused above; left in, the fallback's twin would be one more error.
            (options.sync, options.sync_pattern) = (None, None);
        }
        let func = ItemFn {
            attrs: method.attrs.clone(),
            vis: method.vis.clone(),
            modifiers: syn::FnModifiers::default(),
            sig: method.sig.clone(),
            block: Box::new(method.block.clone()),
        };
        *item = ImplItem::Verbatim(crate::expand_function(options, &func, &mut errors));
    }
    let mut tokens = block.into_token_stream();
    tokens.extend(errors.into_error().map(syn::Error::into_compile_error));
    tokens
}

/// The tokens that replace a trait under `#[async_wrap(options)]`: each method declaration
/// returns the type its wrapped implementations return (`BlockingFuture<T>`, a stream, ...),
/// but those marked `#[async_wrap(skip)]`. Only the options that shape that type apply here;
/// the executor is chosen where the trait is implemented.
pub(crate) fn expand_trait(
    options: &Options,
    mut declaration: ItemTrait,
    mut errors: Errors,
) -> TokenStream {
    check_trait_options(options, &mut errors);
    for item in &mut declaration.items {
        let TraitItem::Fn(method) = item else {
            continue;
        };
        let Some(own) = take_method_attr(&mut method.attrs, &mut errors) else {
            continue;
        };
        check_trait_options(&own, &mut errors);
        if let Some(body) = &method.default {
            errors.push(syn::Error::new(
                body.brace_token.span.join(),
                "a method with a default body cannot be wrapped in the trait: its body would \
                 need an executor and an owned `self`; write it in the implementations, or \
                 mark it `#[async_wrap(skip)]` to keep it as it is",
            ));
            continue;
        }
        let options = options.for_method(own, String::new());
        let ty = expand::declared_future(&options, &method.sig);
        let arrow = match &method.sig.output {
            ReturnType::Type(arrow, _) => *arrow,
            ReturnType::Default => syn::Token![->](method.sig.ident.span()),
        };
        method.sig.output = ReturnType::Type(arrow, Box::new(Type::Verbatim(ty)));
        if options.state.is_some() {
            expand::drop_state_argument(&mut method.sig);
        }
    }
    let mut tokens = declaration.into_token_stream();
    tokens.extend(errors.into_error().map(syn::Error::into_compile_error));
    tokens
}

/// The options an `impl` block refuses: a single twin name (each method needs its own), and
/// in a trait implementation any twin (it can hold only the trait's methods).
fn check_block_options(options: &Options, in_trait_impl: bool, errors: &mut Errors) {
    if let Some(name) = &options.sync {
        errors.fail(
            name,
            "on an `impl` block, `sync` names each method's twin from the method's name: write \
             a pattern such as `sync = \"{}_blocking\"`",
        );
    }
    if let (Some(pattern), true) = (&options.sync_pattern, in_trait_impl) {
        errors.fail(pattern, TWIN_IN_TRAIT_IMPL);
    }
}

/// A trait implementation can hold only the trait's methods.
const TWIN_IN_TRAIT_IMPL: &str = "a trait implementation holds only the trait's methods, so \
     the synchronous twin cannot go here: wrap the methods in an inherent `impl` block with \
     `sync`, and call them from this one";

/// What one method of an `impl` block needs beyond a function's checks, given the block's
/// options and the method's own.
fn check_method(
    block: &Options,
    own: &Options,
    method: &syn::ImplItemFn,
    in_trait_impl: bool,
    errors: &mut Errors,
) {
    if let Some(token) = &method.modifiers.defaultness {
        errors.fail(
            token,
            "a `default fn` cannot be wrapped: mark it `#[async_wrap(skip)]`",
        );
    }
    if in_trait_impl {
        if let Some(name) = &own.sync {
            errors.fail(name, TWIN_IN_TRAIT_IMPL);
        }
        if let Some(pattern) = &own.sync_pattern {
            errors.fail(pattern, TWIN_IN_TRAIT_IMPL);
        }
    }
    // The block's `executor = self.pool` has no `self` to read in an associated function.
    if let (None, None, Some(executor)) = (method.sig.receiver(), &own.executor, &block.executor) {
        if mentions_self(quote!(#executor)) {
            errors.fail(
                &method.sig.ident,
                format!(
                    "`{}` has no `self` for the block's `executor = {}`: give it an executor of \
                     its own, `#[async_wrap(executor = POOL)]`, or keep it synchronous with \
                     `#[async_wrap(skip)]`",
                    method.sig.ident,
                    crate::validate::pretty(executor),
                ),
            );
        }
    }
}

/// The options a trait refuses: those that choose where and how the body runs, which belong to
/// the implementations.
fn check_trait_options(options: &Options, errors: &mut Errors) {
    let refused: [(Option<&dyn ToTokens>, &str); 6] = [
        (
            options.executor.as_ref().map(|e| e as &dyn ToTokens),
            "executor",
        ),
        (options.sync.as_ref().map(|e| e as &dyn ToTokens), "sync"),
        (
            options.sync_pattern.as_ref().map(|e| e as &dyn ToTokens),
            "sync",
        ),
        (
            options.clone_self.as_ref().map(|e| e as &dyn ToTokens),
            "clone_self",
        ),
        (
            options.to_owned.as_ref().map(|e| e as &dyn ToTokens),
            "to_owned",
        ),
        (options.batch.as_ref().map(|e| e as &dyn ToTokens), "batch"),
    ];
    for (tokens, name) in refused {
        if let Some(tokens) = tokens {
            errors.fail(
                tokens,
                format!(
                    "`{name}` goes on the `impl` blocks that implement the trait: on a trait, \
                     the attribute takes only what shapes the returned future (`stream`, \
                     `state`, `process`, `crate`)"
                ),
            );
        }
    }
}

/// Takes the method's `#[async_wrap]` attributes off it and reads them: its own options (none
/// if it has no attribute), or `None` for `#[async_wrap(skip)]`, which keeps it as written.
/// All the errors in them are reported, and a second attribute is one more.
fn take_method_attr(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<Options> {
    let mut found = Some(Options::default());
    let mut seen = false;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in std::mem::take(attrs) {
        let is_ours = attr
            .path()
            .segments
            .last()
            .is_some_and(|last| last.ident == "async_wrap");
        if !is_ours {
            kept.push(attr);
            continue;
        }
        if std::mem::replace(&mut seen, true) {
            errors.fail(
                &attr,
                "a second `#[async_wrap]` on this method: give all its options in one",
            );
            continue;
        }
        let args = match &attr.meta {
            Meta::Path(_) => TokenStream::new(),
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(value) => {
                errors.fail(
                    value,
                    "write a method's options in parentheses: `#[async_wrap(executor = POOL)]`",
                );
                TokenStream::new()
            }
        };
        found = read_method_args(args, errors);
    }
    *attrs = kept;
    found
}

/// A method's arguments: options, or `None` for `skip`.
fn read_method_args(args: TokenStream, errors: &mut Errors) -> Option<Options> {
    let trees: Vec<TokenTree> = args.clone().into_iter().collect();
    let skip = trees
        .iter()
        .find(|tree| matches!(tree, TokenTree::Ident(ident) if ident == "skip"));
    match (skip, trees.len()) {
        (None, _) => Some(Options::parse(args, errors)),
        (Some(_), 1) => None,
        (Some(skip), _) => {
            errors.push(syn::Error::new(
                skip.span(),
                "`skip` keeps the method as written, so it takes no other option: remove them, \
                 or remove `skip` to wrap the method with them",
            ));
            None
        }
    }
}

/// How call sites name the block's type: its path without generic arguments (`Store`,
/// `db::Store`), or the type as written for other types.
fn owner_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect::<Vec<_>>()
            .join("::"),
        Type::Group(group) => owner_name(&group.elem),
        Type::Paren(paren) => owner_name(&paren.elem),
        other => quote!(#other).to_string().replace(' ', ""),
    }
}
