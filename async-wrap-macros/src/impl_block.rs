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
use crate::receiver::{self, mentions_self};
use crate::types::copied_reference;

/// The tokens that replace an `impl` block under `#[async_wrap(options)]`: every method with a
/// body wrapped, but those marked `#[async_wrap(skip)]`; the other items as written.
pub(crate) fn expand_impl(
    options: &Options,
    mut block: ItemImpl,
    mut errors: Errors,
) -> TokenStream {
    let in_trait_impl = block.trait_.is_some();
    check_block_options(options, in_trait_impl, &mut errors);
    let owner = owner_name(&block);
    let names: Vec<String> = block
        .items
        .iter()
        .filter_map(|item| match item {
            ImplItem::Fn(method) => Some(bare_name(&method.sig.ident)),
            _ => None,
        })
        .collect();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else {
            continue;
        };
        let Some(own) = take_method_attr(&mut method.attrs, &mut errors) else {
            continue;
        };
        check_method(
            options,
            &own,
            method,
            &block.generics,
            in_trait_impl,
            &mut errors,
        );
        let inherits = (own.clone_self.is_none(), own.to_owned.is_none());
        let mut options = options.for_method(own, owner.clone());
        // A block's `clone_self` and `to_owned` apply to the methods they can apply to: a
        // method without `&self`, or without a `&T` argument, is not refused for them.
        if inherits.0 && !matches!(receiver::form(&method.sig), receiver::Form::Shared(_)) {
            options.clone_self = None;
        }
        let copies = method.sig.inputs.iter().any(
            |input| matches!(input, syn::FnArg::Typed(arg) if copied_reference(&arg.ty).is_some()),
        );
        if inherits.1 && !copies {
            options.to_owned = None;
        }
        if in_trait_impl {
            // Refused above; left in, the fallback's twin would be one more error.
            (options.sync, options.sync_pattern) = (None, None);
        }
        check_twin_name(&mut options, &method.sig.ident, &names, &mut errors);
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
        if let Some(token) = &method.sig.asyncness {
            errors.fail(
                token,
                "an `async fn` is async already: mark it `#[async_wrap(skip)]` to keep it, or \
                 remove `async` to declare the future of a wrapped implementation",
            );
            continue;
        }
        if let Some(body) = &mut method.default {
            errors.push(syn::Error::new(
                body.brace_token.span.join(),
                "a method with a default body cannot be wrapped in the trait: its body would \
                 need an executor and an owned `self`; write it in the implementations, or \
                 mark it `#[async_wrap(skip)]` to keep it as it is",
            ));
            // The declaration still returns the future, so that the implementations and the
            // calls get no other error; the body cannot run.
            *body = syn::parse_quote!({
                ::core::unreachable!("`#[async_wrap]` refused this default body at compile time")
            });
        }
        let options = options.for_method(own, String::new());
        let ty = expand::declared_future(&options, &method.sig);
        let arrow = match &method.sig.output {
            ReturnType::Type(arrow, _) => *arrow,
            ReturnType::Default => syn::Token![->](method.sig.ident.span()),
        };
        // `BlockingFuture<Self>` needs `Self: Sized`, which the trait cannot assume: the
        // method asks for it (and is not callable on `dyn Trait`, as a sync one returning
        // `Self` would not be either).
        if let ReturnType::Type(_, written) = &method.sig.output {
            if mentions_self(quote!(#written)) {
                method
                    .sig
                    .generics
                    .make_where_clause()
                    .predicates
                    .push(syn::parse_quote!(Self: ::core::marker::Sized));
            }
        }
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
    generics: &syn::Generics,
    in_trait_impl: bool,
    errors: &mut Errors,
) {
    // A `process` method's body runs as a free function in the worker: the block's generics
    // and `Self` are not in scope there.
    if own.process.is_some() || block.process.is_some() {
        if uses_generics(&quote!(#method), generics) {
            errors.fail(
                &generics.params,
                "a `process` function cannot be generic, nor sit in a generic `impl` block: its \
                 worker process finds it by a key made at compile time, for one set of types",
            );
        } else if mentions_self(quote!(#method)) {
            errors.fail(
                &method.sig.ident,
                "a `process` function runs in a worker process as a free function, where `Self` \
                 is not in scope: name the type instead of `Self`",
            );
        }
    }
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
        if receiver::reads_self(quote!(#executor)) {
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

/// Whether `tokens` name one of the block's generic parameters (a type, a lifetime, a const).
fn uses_generics(tokens: &TokenStream, generics: &syn::Generics) -> bool {
    let names: Vec<String> = generics
        .params
        .iter()
        .map(|param| match param {
            syn::GenericParam::Type(ty) => ty.ident.to_string(),
            syn::GenericParam::Lifetime(lifetime) => lifetime.lifetime.ident.to_string(),
            syn::GenericParam::Const(constant) => constant.ident.to_string(),
        })
        .collect();
    !names.is_empty() && names_any(tokens.clone(), &names)
}

/// Whether `tokens` hold an identifier (or a lifetime's) among `names`.
fn names_any(tokens: TokenStream, names: &[String]) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => names.contains(&ident.to_string()),
        TokenTree::Group(group) => names_any(group.stream(), names),
        _ => false,
    })
}

/// The name of an identifier as the compiler compares it (`r#match` is `match`).
fn bare_name(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#")
        .map_or_else(|| name.clone(), str::to_owned)
}

/// A twin named like another method of the block is refused at the pattern (or the name), and
/// not emitted: two definitions of one name would be one more error.
fn check_twin_name(
    options: &mut Options,
    ident: &syn::Ident,
    names: &[String],
    errors: &mut Errors,
) {
    let mut probe = options.clone();
    probe.name_twin(ident, &mut Errors::default());
    let Some(twin) = &probe.sync else {
        return;
    };
    let twin_name = bare_name(twin);
    if names.contains(&twin_name) {
        let message = format!(
            "the synchronous twin of `{ident}` would be `{twin_name}`, the name of another \
             method of this block: change the pattern, or give `{ident}` its own \
             `#[async_wrap(sync = NAME)]`"
        );
        match (&options.sync, &options.sync_pattern) {
            (Some(name), _) => errors.fail(name, message),
            (None, Some(pattern)) => errors.fail(pattern, message),
            (None, None) => {}
        }
        (options.sync, options.sync_pattern) = (None, None);
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

/// A method's arguments: options, or `None` for `skip` (or a typo of it, reported).
fn read_method_args(args: TokenStream, errors: &mut Errors) -> Option<Options> {
    let items = top_level_items(&args);
    let skip = items.iter().find_map(|item| match item.as_slice() {
        [TokenTree::Ident(ident)] if ident == "skip" => Some(ident.clone()),
        _ => None,
    });
    match skip {
        None if items.len() == 1 && is_skip_typo(&items[0]) => {
            errors.push(syn::Error::new(
                items[0][0].span(),
                format!(
                    "unknown option `{}`: did you mean `skip`, which keeps the method as written?",
                    items[0][0]
                ),
            ));
            None
        }
        None => Some(Options::parse(args, errors)),
        Some(_) if items.len() == 1 => None,
        Some(skip) => {
            errors.push(syn::Error::new(
                skip.span(),
                "`skip` keeps the method as written, so it takes no other option: remove them, \
                 or remove `skip` to wrap the method with them",
            ));
            None
        }
    }
}

/// Whether the attribute's arguments are `skip` alone.
pub(crate) fn is_skip(args: &TokenStream) -> bool {
    let items = top_level_items(args);
    matches!(items.as_slice(), [item] if matches!(item.as_slice(), [TokenTree::Ident(ident)] if ident == "skip"))
}

/// The arguments split at their top-level commas.
fn top_level_items(args: &TokenStream) -> Vec<Vec<TokenTree>> {
    let mut items = vec![Vec::new()];
    for tree in args.clone() {
        match &tree {
            TokenTree::Punct(punct) if punct.as_char() == ',' => items.push(Vec::new()),
            _ => items.last_mut().expect("one at least").push(tree),
        }
    }
    items.retain(|item| !item.is_empty());
    items
}

/// A lone word near `skip` (`skpi`, `skip_`), and no option's name.
fn is_skip_typo(item: &[TokenTree]) -> bool {
    let [TokenTree::Ident(ident)] = item else {
        return false;
    };
    let word = ident.to_string();
    !crate::options::is_option(&word) && crate::options::edit_distance(&word, "skip") <= 2
}

/// How call sites name the block's methods, after the module path: `Store` for `impl Store`
/// (a path's last name, without generic arguments), `<X as Trait>` in a trait
/// implementation (two traits' methods of one name stay apart), `<dyn Shape>` for a type
/// that is not a path.
fn owner_name(block: &ItemImpl) -> String {
    let ty = type_name(&block.self_ty);
    match &block.trait_ {
        Some((path, _)) => {
            let name = path
                .segments
                .last()
                .map_or_else(String::new, |last| last.ident.to_string());
            format!(
                "<{} as {name}>",
                ty.trim_start_matches('<').trim_end_matches('>')
            )
        }
        None => ty,
    }
}

/// A type's name for [`owner_name`].
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .map_or_else(String::new, |last| last.ident.to_string()),
        Type::Group(group) => type_name(&group.elem),
        Type::Paren(paren) => type_name(&paren.elem),
        other => format!("<{}>", crate::validate::pretty(other)),
    }
}
