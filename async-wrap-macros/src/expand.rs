//! Turns a checked function into its async shim.
//!
//! ```text
//! #[async_wrap(executor = IO)]            pub fn slow(n: u64) -> BlockingFuture<u64> {
//! pub fn slow(n: u64) -> u64 {     ==>        call(&(IO), "IO", "path::slow",
//!     body                                        move || -> u64 { let (n,) = (n,); body })
//! }                                       }
//! ```
//!
//! The body is kept as tokens, untouched, so the compiler's errors about it point at the user's
//! code. It becomes a closure, except in a free function that names itself (a recursive call),
//! where it stays a nested `fn` of the same name, so the recursive call remains synchronous.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, ItemFn, Pat, ReturnType, Safety, Signature, Type};

use crate::options::{Options, combine};
use crate::validate::check_signature;

/// The attribute: its arguments and the item it is on, to the tokens that replace the item.
///
/// Never panics. On any error the original item is emitted unchanged next to the errors, so
/// the rest of the crate still type-checks against the function's real signature.
pub(crate) fn async_wrap(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_async_wrap(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => {
            let mut tokens = item;
            tokens.extend(err.into_compile_error());
            tokens
        }
    }
}

fn try_async_wrap(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = None;
    let options = Options::parse(args)
        .map_err(|err| combine(&mut errors, err))
        .ok();
    let func = parse_function(item)
        .map_err(|err| combine(&mut errors, err))
        .ok();
    if let Some(func) = &func {
        if let Err(err) = check_signature(&func.sig) {
            combine(&mut errors, err);
        }
    }
    match (errors, options, func) {
        (None, Some(options), Some(func)) => Ok(expand(&options, &func)),
        (Some(err), _, _) => Err(err),
        (None, _, _) => unreachable!("a missing part always comes with an error"),
    }
}

/// Parses the item, refusing anything but a function with a body.
fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    let item: syn::Item = syn::parse2(item)?;
    let what = match &item {
        syn::Item::Fn(_) => {
            let syn::Item::Fn(func) = item else {
                unreachable!("just matched")
            };
            return Ok(func);
        }
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
        _ => "not a function with a body",
    };
    Err(syn::Error::new(
        item_head_span(&item),
        format!("`#[async_wrap]` goes on a function, and this is {what}"),
    ))
}

/// The span of an item's keyword, where its kind is written.
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

/// One argument of the function as the shim sees it.
struct Arg<'a> {
    /// The name the shim's parameter has: the user's own for a plain `name: Type`, a hidden
    /// one for a pattern.
    name: Ident,
    /// The user's pattern, bound inside the job.
    pat: &'a Pat,
    ty: &'a Type,
    attrs: &'a [Attribute],
}

fn expand(options: &Options, func: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let krate = options
        .krate
        .as_ref()
        .map_or_else(|| quote!(::async_wrap), |path| quote!(#path));
    let private = quote!(#krate::__private);
    let ident = &sig.ident;
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let args = shim_args(sig);
    let method =
        sig.receiver().is_some() || mentions_self(&quote!(#sig)) || mentions_self(&quote!(#block));

    let executor = Ident::new("__async_wrap_executor", Span::mixed_site());
    let (executor_init, label) = executor_init(options.executor.as_ref(), &private);
    let job_name = quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#ident)
    ));

    let unsafety = match &sig.safety {
        Safety::Unsafe(token) => Some(token),
        _ => None,
    };
    let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
    let shim_inputs = args.iter().map(|arg| {
        let Arg {
            name, ty, attrs, ..
        } = arg;
        quote!(#(#attrs)* #name: #ty)
    });
    let receiver_input = sig.receiver().map(|receiver| quote!(#receiver,));
    let shim_inputs = quote!(#receiver_input #(#shim_inputs),*);

    let (sync_item, job_body) = job(options.sync.as_ref(), func, &args, method);
    let job_body = match unsafety {
        Some(token) => quote_spanned!(token.span=> unsafe { #job_body }),
        None => job_body,
    };
    // A closure's return type cannot be `impl Trait`; inference finds it from the body then.
    let closure_output = match &sig.output {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => quote!(-> #ty),
        ReturnType::Type(..) => quote!(),
        ReturnType::Default => quote!(-> ()),
    };
    let allow_unsafe = unsafety.map(|_| quote!(#[allow(unused_unsafe)]));
    let fn_token = &sig.fn_token;
    // The dispatch's `Send + 'static` bounds on the output are checked at this call: span it on
    // the return type the user wrote, so that those errors point there.
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };
    let krate_spanned = options.krate.as_ref().map_or_else(
        || quote_spanned!(output_span=> ::async_wrap),
        |path| quote!(#path),
    );
    let dispatch = quote_spanned! {output_span=>
        #krate_spanned::__private::call(#executor, #label, #job_name, move || #closure_output #job_body)
    };

    quote! {
        #sync_item
        #(#attrs)*
        #allow_unsafe
        #vis #unsafety #fn_token #ident #generics (#shim_inputs) -> #private::BlockingFuture<#output_ty> #where_clause {
            let #executor = #executor_init;
            #dispatch
        }
    }
}

/// The executor's initialiser and its label for messages.
///
/// The executor is evaluated, and converted to an owned handle, before the job takes its
/// arguments: `executor = self.pool` borrows `self` only for that statement.
fn executor_init(executor: Option<&Expr>, private: &TokenStream) -> (TokenStream, TokenStream) {
    match executor {
        None => (
            quote!(#private::default_executor()),
            quote!("the default pool"),
        ),
        Some(expr) => {
            let tokens = executor_tokens(expr);
            (
                quote_spanned!(expr.span()=> #private::IntoExecutor::into_executor(#tokens)),
                quote!(::core::stringify!(#expr)),
            )
        }
    }
}

/// What the job runs, and the synchronous item to emit beside the shim, if any: the
/// `sync = NAME` twin (the job then calls it), or, for a free function that names itself, a
/// nested copy under its own name so that its recursion stays synchronous.
fn job(
    sync: Option<&Ident>,
    func: &ItemFn,
    args: &[Arg<'_>],
    method: bool,
) -> (Option<TokenStream>, TokenStream) {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let ident = &sig.ident;
    let recursive = !method && mentions_ident(&quote!(#block), ident);
    let receiver = sig.receiver().map(|receiver| &receiver.self_token);
    let names = args.iter().map(|arg| &arg.name);
    let turbofish = turbofish(sig);
    match sync {
        Some(sync) if !method => {
            let sync_fn = sync_function(attrs, vis, sig, block, sync, recursive);
            (Some(sync_fn), quote!({ #sync #turbofish (#(#names),*) }))
        }
        Some(sync) => {
            let mut twin = func.clone();
            twin.sig.ident = sync.clone();
            let self_arg = receiver.map(|token| quote!(#token,));
            let call = quote!({ Self::#sync #turbofish (#self_arg #(#names),*) });
            (Some(quote!(#twin)), call)
        }
        None if recursive => {
            let nested = nested_function(sig, block);
            (None, quote!({ #nested #ident #turbofish (#(#names),*) }))
        }
        None => (None, closure_body(args, receiver, block)),
    }
}

/// The shim's parameters: plain `name: Type` arguments keep their name (it shows in the docs);
/// others get a hidden one that user code cannot see.
fn shim_args(sig: &Signature) -> Vec<Arg<'_>> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => Some(arg),
            FnArg::Receiver(_) => None,
        })
        .enumerate()
        .map(|(index, arg)| {
            let name = match &*arg.pat {
                Pat::Ident(pat)
                    if pat.by_ref.is_none() && pat.subpat.is_none() && pat.ident != sig.ident =>
                {
                    pat.ident.clone()
                }
                _ => format_ident!("__async_wrap_arg{}", index, span = Span::mixed_site()),
            };
            Arg {
                name,
                pat: &arg.pat,
                ty: &arg.ty,
                attrs: &arg.attrs,
            }
        })
        .collect()
}

/// The job's body when it is a closure: every argument is moved in, then bound by the user's
/// own patterns, so arguments are dropped when the body ends, as in a direct call.
fn closure_body(
    args: &[Arg<'_>],
    receiver: Option<&syn::token::SelfValue>,
    block: &syn::Block,
) -> TokenStream {
    let keep_receiver = receiver.map(|token| quote!(let _ = &#token;));
    let pats = args.iter().enumerate().map(|(index, arg)| match arg.pat {
        // `_` would drop the argument at once; a hidden binding keeps it to the end.
        Pat::Wild(_) => {
            let name = format_ident!("__async_wrap_unused{}", index, span = Span::mixed_site());
            quote!(#name)
        }
        pat => quote!(#pat),
    });
    let names = args.iter().map(|arg| &arg.name);
    quote!({
        #keep_receiver
        let (#(#pats,)*) = (#(#names,)*);
        #block
    })
}

/// The original function, nested in the shim under its own name, for recursion to reach.
fn nested_function(sig: &Signature, block: &syn::Block) -> TokenStream {
    let mut sig = sig.clone();
    sig.constness = None;
    quote!(#sig #block)
}

/// The `sync = NAME` twin of a free function.
fn sync_function(
    attrs: &[Attribute],
    vis: &syn::Visibility,
    sig: &Signature,
    block: &syn::Block,
    sync: &Ident,
    recursive: bool,
) -> TokenStream {
    let mut twin = sig.clone();
    twin.ident = sync.clone();
    if !recursive {
        return quote!(#(#attrs)* #vis #twin #block);
    }
    // The body calls the function by its own name; inside the twin that name must reach the
    // synchronous body too.
    let args = shim_args(sig);
    let names = args.iter().map(|arg| &arg.name);
    let inputs = args.iter().map(
        |Arg {
             name, ty, attrs, ..
         }| quote!(#(#attrs)* #name: #ty),
    );
    twin.inputs = syn::parse_quote!(#(#inputs),*);
    let nested = nested_function(sig, block);
    let ident = &sig.ident;
    let turbofish = turbofish(sig);
    quote!(#(#attrs)* #vis #twin { #nested #ident #turbofish (#(#names),*) })
}

/// `::<T, N>` naming the function's type and const parameters, or nothing.
fn turbofish(sig: &Signature) -> TokenStream {
    let params: Vec<&Ident> = sig
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            syn::GenericParam::Type(ty) => Some(&ty.ident),
            syn::GenericParam::Const(konst) => Some(&konst.ident),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    if params.is_empty() {
        quote!()
    } else {
        quote!(::<#(#params),*>)
    }
}

/// How `executor = EXPR` is passed on: place expressions (a static, a field, a variable) are
/// borrowed, like a method call's receiver; anything else is passed as it is.
fn executor_tokens(expr: &Expr) -> TokenStream {
    match expr {
        Expr::Path(_) | Expr::Field(_) => quote_spanned!(expr.span()=> &#expr),
        _ => quote!(#expr),
    }
}

/// Whether `self` or `Self` appears, other than as a `self::` module path.
fn mentions_self(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) if ident == "Self" => return true,
            TokenTree::Ident(ident) if ident == "self" => {
                let module_path =
                    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if !module_path {
                    return true;
                }
            }
            TokenTree::Group(group) if mentions_self(&group.stream()) => return true,
            _ => {}
        }
    }
    false
}

/// Whether the identifier `name` appears anywhere in `tokens`.
fn mentions_ident(tokens: &TokenStream, name: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == *name,
        TokenTree::Group(group) => mentions_ident(&group.stream(), name),
        _ => false,
    })
}
