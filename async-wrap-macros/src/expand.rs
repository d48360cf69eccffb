//! Writes the async shim of a checked function.
//!
//! ```text
//! #[async_wrap(executor = IO)]        pub fn slow(n: u64) -> BlockingFuture<u64> {
//! pub fn slow(n: u64) -> u64 {  ==>       let executor = IntoExecutor::into_executor(&IO);
//!     body                                call(executor, "IO", "path::slow",
//! }                                            move || -> u64 { let n = n; body })
//!                                     }
//! ```
//!
//! The body is kept as tokens, untouched, so the compiler's errors about it point at the user's
//! code. It becomes a closure, except in a free function that names itself (a recursive call),
//! where it stays a nested `fn` of the same name, so that the recursive call stays synchronous.
//! Generated names are hidden from the body (`Span::mixed_site`) and generated paths are
//! absolute, so nothing in the caller's scope can change what they mean.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, FnArg, Ident, ItemFn, Pat, ReceiverKind, ReturnType, Safety, Signature,
    Type,
};

use crate::options::{ExecutorOption, Options};
use crate::receiver::{mentions_self, replace_self, self_clone_ident};
use crate::validate::copied_reference;

/// One argument of the function as the shim sees it.
struct Arg<'a> {
    /// The shim's parameter: the user's own name for a plain `name: Type` (it shows in the
    /// docs), a hidden one for a pattern.
    name: Ident,
    /// The user's pattern, bound inside the job.
    pat: &'a Pat,
    ty: &'a Type,
    attrs: &'a [Attribute],
    /// Under `to_owned`, for a `&T` argument: the hidden binding of its owned copy, and `T`.
    copy: Option<(Ident, &'a Type)>,
}

impl Arg<'_> {
    /// The argument as the synchronous body takes it: the value, or a borrow of its copy.
    fn value(&self, private: &TokenStream) -> TokenStream {
        if let Some((owned, _)) = &self.copy {
            quote!(#private::Borrow::borrow(&#owned))
        } else {
            let name = &self.name;
            quote!(#name)
        }
    }
}

/// What the expansion needs to know about the function, worked out once.
struct Shim<'a> {
    func: &'a ItemFn,
    /// `::async_wrap::__private`, or the `crate = PATH` equivalent.
    private: TokenStream,
    args: Vec<Arg<'a>>,
    /// A method or associated function (the body names `self` or `Self`).
    method: bool,
    /// A `&self` method under `clone_self`.
    clone_self: bool,
}

/// The tokens that replace the function.
pub(crate) fn expand(options: &Options, func: &ItemFn) -> TokenStream {
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
    let shim = Shim {
        func,
        private: quote!(#krate::__private),
        args: shim_args(sig, options.to_owned.is_some()),
        method: sig.receiver().is_some()
            || mentions_self(quote!(#sig))
            || mentions_self(quote!(#block)),
        clone_self: options.clone_self.is_some()
            && sig
                .receiver()
                .is_some_and(|receiver| matches!(receiver.kind, ReceiverKind::Reference(..))),
    };
    let private = &shim.private;
    let ident = &sig.ident;

    let executor = Ident::new("__async_wrap_executor", Span::mixed_site());
    let (executor_init, label) = executor_init(options.executor(), options.krate.as_ref(), private);
    // Under `clone_self`, the clone is taken at the call, spanned on the option so that a
    // missing `Clone` is reported there.
    let self_clone = options
        .clone_self
        .as_ref()
        .filter(|_| shim.clone_self)
        .map(|flag| {
            let clone = self_clone_ident();
            quote_spanned!(flag.span()=> let #clone = <Self as ::core::clone::Clone>::clone(self);)
        });
    let copies = shim.args.iter().filter_map(|arg| {
        let (owned, _) = arg.copy.as_ref()?;
        let name = &arg.name;
        Some(quote_spanned!(arg.ty.span()=> let #owned = #private::ToOwned::to_owned(#name);))
    });
    let (sync_item, job_body) = job(&shim, options.sync.as_ref());

    let unsafety = match &sig.safety {
        Safety::Unsafe(token) => Some(token),
        _ => None,
    };
    // An `unsafe fn`'s body may use unsafe operations; in the job it is no longer the body of
    // an `unsafe fn`, so it gets an `unsafe` block (the caller of the shim vouched for it).
    let job_body = match unsafety {
        Some(token) => quote_spanned!(token.span=> { unsafe #job_body }),
        None => job_body,
    };
    let allow_unused_unsafe = unsafety.map(|_| quote!(#[allow(unused_unsafe)]));
    // A closure's return type cannot be `impl Trait`; inference finds it from the body then.
    let closure_output = match &sig.output {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => quote!(-> #ty),
        ReturnType::Type(..) => quote!(),
        ReturnType::Default => quote!(-> ()),
    };
    // The job takes the arguments: spanned on the parameter list, a `Send + 'static` error
    // about what it captures points there.
    let inputs_span = sig.paren_token.span.join();
    let job_body = respan_block(job_body, inputs_span);
    let job = quote_spanned!(inputs_span=> move || #closure_output #job_body);
    let (future_ty, dispatch) = dispatch(options, sig, private, (&executor, &label), &job);

    let receiver = sig.receiver().map(|receiver| quote!(#receiver,));
    let inputs = shim.args.iter().map(
        |Arg {
             name, ty, attrs, ..
         }| quote!(#(#attrs)* #name: #ty),
    );
    let (generics, where_clause, fn_token) =
        (&sig.generics, &sig.generics.where_clause, &sig.fn_token);
    quote! {
        #sync_item
        #(#attrs)*
        #allow_unused_unsafe
        #vis #unsafety #fn_token #ident #generics (#receiver #(#inputs),*)
            -> #future_ty #where_clause
        {
            let #executor = #executor_init;
            #self_clone
            #(#copies)*
            #dispatch
        }
    }
}

/// The shim's return type and the call that makes its value: a `BlockingFuture` from `call`, or
/// a `BlockingStream` from `stream`. `executor` is the evaluated executor's binding and its label.
fn dispatch(
    options: &Options,
    sig: &Signature,
    private: &TokenStream,
    (executor, label): (&Ident, &TokenStream),
    job: &TokenStream,
) -> (TokenStream, TokenStream) {
    let ident = &sig.ident;
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    // The dispatch's `Send + 'static` bounds on the output are checked at this call: it is
    // spanned, path included, on the return type the user wrote, so those errors point there.
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };
    let krate_at_output = options.krate.as_ref().map_or_else(
        || quote_spanned!(output_span=> ::async_wrap),
        |path| quote!(#path),
    );
    let job_name = quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#ident)
    ));
    if options.stream.is_some() {
        let item = stream_item(&sig.output);
        let batch = options
            .batch
            .as_ref()
            .map_or_else(|| quote!(#private::DEFAULT_BATCH), |batch| quote!(#batch));
        (
            quote!(#private::BlockingStream<#item>),
            quote_spanned! {output_span=>
                #krate_at_output::__private::stream(#executor, #label, #job_name, #batch, #job)
            },
        )
    } else {
        (
            quote!(#private::BlockingFuture<#output_ty>),
            quote_spanned! {output_span=>
                #krate_at_output::__private::call(#executor, #label, #job_name, #job)
            },
        )
    }
}

/// The item type of a `stream` function's iterator: `T` from an `impl Iterator<Item = T>` (or
/// `IntoIterator`) return type, else the projection `<R as IntoIterator>::Item`.
fn stream_item(output: &ReturnType) -> TokenStream {
    let ReturnType::Type(_, ty) = output else {
        // Refused by validation; this keeps the expansion well-formed meanwhile.
        return quote!(());
    };
    if let Type::ImplTrait(bounds) = &**ty {
        for bound in &bounds.bounds {
            let syn::TypeParamBound::Trait(bound) = bound else {
                continue;
            };
            let Some(last) = bound.path.segments.last() else {
                continue;
            };
            if last.ident != "Iterator" && last.ident != "IntoIterator" {
                continue;
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                continue;
            };
            for arg in &args.args {
                if let syn::GenericArgument::AssocType(assoc) = arg {
                    if assoc.ident == "Item" {
                        let item = &assoc.ty;
                        return quote!(#item);
                    }
                }
            }
        }
    }
    quote!(<#ty as ::core::iter::IntoIterator>::Item)
}

/// The executor's initialiser and its label for messages.
///
/// The executor is evaluated, and converted to an owned handle, before the job takes its
/// arguments: `executor = self.pool` borrows `self` only for that statement.
fn executor_init(
    executor: Option<ExecutorOption<'_>>,
    krate: Option<&syn::Path>,
    private: &TokenStream,
) -> (TokenStream, TokenStream) {
    match executor {
        None => (
            quote!(#private::default_executor()),
            quote!("the default pool"),
        ),
        Some(ExecutorOption::Adapter(name)) => {
            // Spanned, path included, on the adapter's name: a disabled feature is reported there.
            let krate = krate.map_or_else(
                || quote_spanned!(name.span()=> ::async_wrap),
                |path| quote!(#path),
            );
            let adapters = quote_spanned!(name.span()=> #krate::__private::adapters);
            (
                quote_spanned!(name.span()=> #adapters::#name::<#adapters::Enabled>()),
                quote!(::core::stringify!(#name)),
            )
        }
        Some(ExecutorOption::Expr(expr)) => {
            // Place expressions (a static, a variable, a field) are borrowed, like a method
            // call's receiver; anything else is passed as it is.
            let value = match expr {
                Expr::Path(_) | Expr::Field(_) => quote_spanned!(expr.span()=> &#expr),
                _ => quote!(#expr),
            };
            (
                quote_spanned!(expr.span()=> #private::IntoExecutor::into_executor(#value)),
                quote!(::core::stringify!(#expr)),
            )
        }
    }
}

/// What the job runs, and the synchronous item to emit beside the shim, if any: the
/// `sync = NAME` twin (the job then calls it), or, for a free function that names itself, a
/// nested copy under its own name so that its recursion stays synchronous.
fn job(shim: &Shim<'_>, sync: Option<&Ident>) -> (Option<TokenStream>, TokenStream) {
    let ItemFn { sig, block, .. } = shim.func;
    let ident = &sig.ident;
    let private = &shim.private;
    let recursive = !shim.method && mentions_ident(quote!(#block), ident);
    let values: Vec<TokenStream> = shim.args.iter().map(|arg| arg.value(private)).collect();
    let turbofish = turbofish(sig);
    match sync {
        Some(sync) if !shim.method => {
            let twin = sync_function(shim, sync, recursive);
            (Some(twin), quote!({ #sync #turbofish (#(#values),*) }))
        }
        Some(sync) => {
            let mut twin = shim.func.clone();
            twin.sig.ident = sync.clone();
            let receiver = sig.receiver().map(|receiver| {
                if shim.clone_self {
                    let clone = self_clone_ident();
                    quote!(&#clone,)
                } else {
                    let token = &receiver.self_token;
                    quote!(#token,)
                }
            });
            let call = quote!({ Self::#sync #turbofish (#receiver #(#values),*) });
            (Some(quote!(#twin)), call)
        }
        None if recursive => {
            let nested = nested_function(sig, block);
            (None, quote!({ #nested #ident #turbofish (#(#values),*) }))
        }
        None => (None, closure_body(shim)),
    }
}

/// The job's body when it is the user's block: every argument is moved in, then bound by the
/// user's own pattern, so that arguments are dropped when the body ends, as in a direct call.
fn closure_body(shim: &Shim<'_>) -> TokenStream {
    let ItemFn { sig, block, .. } = shim.func;
    let private = &shim.private;
    let receiver = sig.receiver().map(|receiver| {
        if shim.clone_self {
            let clone = self_clone_ident();
            quote!(let _ = &#clone;)
        } else {
            let token = &receiver.self_token;
            quote!(let _ = &#token;)
        }
    });
    let bindings = shim.args.iter().enumerate().map(|(index, arg)| {
        let value = arg.value(private);
        match (arg.pat, &arg.copy) {
            (pat, Some((_, elem))) => quote!(let #pat: &#elem = #value;),
            // `let _ = x;` would leave `x` out of the closure, dropped at the call; a hidden
            // binding keeps it to the end of the body.
            (Pat::Wild(_), None) => {
                let name = format_ident!("__async_wrap_unused{}", index, span = Span::mixed_site());
                quote!(let #name = #value;)
            }
            (pat, None) => quote!(let #pat = #value;),
        }
    });
    let block = if shim.clone_self {
        let stmts = replace_self(block.stmts.iter().map(|stmt| quote!(#stmt)).collect());
        quote_spanned!(block.brace_token.span.join()=> { #stmts })
    } else {
        quote!(#block)
    };
    quote!({
        #receiver
        #(#bindings)*
        #block
    })
}

/// The shim's parameters.
fn shim_args(sig: &Signature, to_owned: bool) -> Vec<Arg<'_>> {
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
            let copy = copied_reference(&arg.ty)
                .filter(|_| to_owned)
                .map(|reference| {
                    let owned =
                        format_ident!("__async_wrap_owned{}", index, span = Span::mixed_site());
                    (owned, &*reference.elem)
                });
            Arg {
                name,
                pat: &arg.pat,
                ty: &arg.ty,
                attrs: &arg.attrs,
                copy,
            }
        })
        .collect()
}

/// The original function, nested in the shim under its own name, for recursion to reach.
fn nested_function(sig: &Signature, block: &Block) -> TokenStream {
    quote!(#sig #block)
}

/// The `sync = NAME` twin of a free function: the original, renamed. If the body calls the
/// function by name, that name must reach the synchronous body inside the twin too, so the
/// twin holds a nested copy under the original name.
fn sync_function(shim: &Shim<'_>, sync: &Ident, recursive: bool) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = shim.func;
    let mut twin = sig.clone();
    twin.ident = sync.clone();
    if !recursive {
        return quote!(#(#attrs)* #vis #twin #block);
    }
    let names = shim.args.iter().map(|arg| &arg.name);
    let inputs = shim.args.iter().map(
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

/// A braced block with its braces moved to `span` (its contents keep theirs); other tokens
/// are wrapped in such a block.
fn respan_block(block: TokenStream, span: Span) -> TokenStream {
    let mut trees = block.clone().into_iter();
    let stream = match (trees.next(), trees.next()) {
        (Some(TokenTree::Group(group)), None)
            if group.delimiter() == proc_macro2::Delimiter::Brace =>
        {
            group.stream()
        }
        _ => block,
    };
    let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, stream);
    group.set_span(span);
    TokenStream::from(TokenTree::Group(group))
}

/// Whether `tokens` may call the function `name` itself: the identifier appears other than
/// right after a `.` (a method or a field of that name is not the function).
fn mentions_ident(tokens: TokenStream, name: &Ident) -> bool {
    let mut after_dot = false;
    tokens.into_iter().any(|tree| {
        let found = match &tree {
            TokenTree::Ident(ident) => !after_dot && ident == name,
            TokenTree::Group(group) => mentions_ident(group.stream(), name),
            _ => false,
        };
        after_dot = matches!(&tree, TokenTree::Punct(punct) if punct.as_char() == '.');
        found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_or_field_of_the_same_name_is_not_recursion() {
        let name = Ident::new("lines", Span::call_site());
        assert!(mentions_ident(quote!(1 + lines(n - 1)), &name));
        assert!(mentions_ident(quote!({ crate::lines(n) }), &name));
        assert!(!mentions_ident(quote!(reader.lines().count()), &name));
        assert!(!mentions_ident(quote!(self.lines + other.lines), &name));
    }
}
