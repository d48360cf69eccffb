//! Writes the async shim of a checked function, or, when the attribute has errors, a shim with
//! the same signature whose body cannot run.
//!
//! ```text
//! #[async_wrap(executor = IO)]        #[track_caller]
//! pub fn slow(n: u64) -> u64 {  ==>   pub fn slow(n: u64) -> BlockingFuture<u64> {
//!     body                                let executor = IntoExecutor::into_executor(&IO);
//! }                                       let job = move || -> u64 { let n = n; { body } };
//!                                         let _: &dyn Send = &job;  // and the output's Send
//!                                         call(executor, "IO", "path::slow", job)
//!                                     }
//! ```
//!
//! The body is kept as tokens, untouched, so the compiler's errors about it point at the user's
//! code; only its braces are marked as generated, so that rustc's `unused_braces` lint does not
//! take a one-line body (`{ n * 2 }`) inside the job for a redundant block. It becomes a closure,
//! except in a free function that names itself (a recursive call), where it stays a nested `fn`
//! of the same name, so that the recursive call stays synchronous. Generated names are hidden
//! from the body (`Span::mixed_site`) and generated paths are absolute, so nothing in the
//! caller's scope can change what they mean.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType,
    Safety, Signature, Type,
};

use crate::options::{ExecutorOption, Options};
use crate::receiver::{self, Form, mentions_self, replace_self, self_clone_ident};
use crate::types::{copied_reference, result_ok_type};

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
    /// Under `state`, the first argument: the pool's, given to the job, not the caller's.
    state: bool,
}

/// The job's parameter under `state`: the thread's value.
fn state_ident() -> Ident {
    Ident::new("__async_wrap_state", Span::mixed_site())
}

impl Arg<'_> {
    /// The argument as the synchronous body takes it: the value, or a borrow of its copy.
    fn value(&self, private: &TokenStream) -> TokenStream {
        if self.state {
            let state = state_ident();
            return quote!(#state);
        }
        if let Some((owned, _)) = &self.copy {
            quote!(#private::Borrow::borrow(&#owned))
        } else {
            let name = &self.name;
            quote!(#name)
        }
    }
}

/// The path to the `async_wrap` crate: `::async_wrap`, or the `crate = PATH` given. Every
/// generated path starts here.
#[derive(Clone, Copy)]
struct Krate<'a>(Option<&'a syn::Path>);

impl<'a> Krate<'a> {
    fn of(options: &'a Options) -> Self {
        Krate(options.krate.as_ref())
    }

    /// The crate's path, spanned at `span` (so that an error about a path through it, a bound
    /// of `__private::call` say, is reported there).
    fn at(self, span: Span) -> TokenStream {
        self.0
            .map_or_else(|| quote_spanned!(span=> ::async_wrap), |path| quote!(#path))
    }

    /// `::async_wrap::__private`, or the `crate = PATH` equivalent.
    fn private(self) -> TokenStream {
        let krate = self.at(Span::call_site());
        quote!(#krate::__private)
    }
}

/// What the expansion needs to know about the function, worked out once.
struct Shim<'a> {
    func: &'a ItemFn,
    krate: Krate<'a>,
    /// `krate.private()`, used at every turn.
    private: TokenStream,
    args: Vec<Arg<'a>>,
    /// A method or associated function (in an `impl` block under the attribute, or its
    /// signature or body names `self` or `Self`).
    method: bool,
    /// The receiver is borrowed, and the job owns a copy of it made at the call (`clone_self`
    /// on `&self`, or `self: &Arc<Self>`): in the body, `self` means a borrow of that copy.
    copied_receiver: bool,
    /// The `executor = EXPR` expression, if any: an argument it names may be unused in the body.
    executor: TokenStream,
}

/// What the shim returns.
enum Shape<'a> {
    /// A future of the function's result.
    Call,
    /// `stream`: a `BlockingStream` of the items of the returned iterator.
    Stream,
    /// `stream` over `Result<impl Iterator, E>`: a future of `Result<BlockingStream, E>`, the
    /// path of the user's `Result` type and the iterator's type.
    TryStream(&'a syn::TypePath, &'a Type),
    /// `state`: a future of `Result<T, StateError>`, the body given its thread's value.
    State,
    /// `process`: a `ProcessFuture<T>`, resolving to `Result<T, ProcessError>`.
    Process,
}

impl<'a> Shape<'a> {
    fn of(options: &Options, sig: &'a Signature) -> Self {
        if options.process.is_some() {
            return Shape::Process;
        }
        if options.state.is_some() {
            return Shape::State;
        }
        if options.stream.is_none() {
            return Shape::Call;
        }
        match &sig.output {
            ReturnType::Type(_, ty) => match result_ok_type(ty) {
                Some(result) => Shape::TryStream(result.path, result.ok),
                None => Shape::Stream,
            },
            ReturnType::Default => Shape::Stream,
        }
    }
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
    let krate = Krate::of(options);
    if let Some(flag) = &options.process {
        return expand_process(options, func, flag, krate);
    }
    let form = receiver::form(sig);
    let clone_self = options.clone_self.is_some() && matches!(form, Form::Shared(_));
    let shim = Shim {
        func,
        krate,
        private: krate.private(),
        args: shim_args(sig, options.to_owned.is_some(), options.state.is_some()),
        method: options.owner.is_some()
            || sig.receiver().is_some()
            || mentions_self(quote!(#sig))
            || mentions_self(quote!(#block)),
        copied_receiver: clone_self || matches!(form, Form::SharedArc(_)),
        executor: options
            .executor
            .as_ref()
            .map(|expr| quote!(#expr))
            .unwrap_or_default(),
    };
    let private = &shim.private;
    let ident = &sig.ident;

    let executor = Ident::new("__async_wrap_executor", Span::mixed_site());
    let ExecutorInit { init, label } =
        executor_init(&shim, options.executor(), options.state.is_some());
    let executor_ty = state_pool_type(&shim);
    let site = Ident::new("__ASYNC_WRAP_SITE", Span::mixed_site());
    let site_item = site_item(options, &site, ident, &label, private);
    let self_copy = self_copy(&form, clone_self, options);
    let copies = shim.args.iter().filter_map(|arg| {
        let (owned, _) = arg.copy.as_ref()?;
        let name = &arg.name;
        Some(quote_spanned!(arg.ty.span()=> let #owned = #private::ToOwned::to_owned(#name);))
    });
    let Job {
        sync_item,
        body: job_body,
    } = job(&shim, options.sync.as_ref());

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
    // With a twin, the job calls it (a `#[deprecated]` twin too) instead of holding the body.
    let allowed = allowed_lints(unsafety.is_some(), sync_item.is_some());
    let closure_output = closure_output(&sig.output);
    // The job takes the arguments: spanned on the parameter list, a `Send + 'static` error
    // about what it captures points there.
    let inputs_span = sig.paren_token.span.join();
    let job_body = respan_block(job_body, inputs_span);
    let job_closure = job_closure(&shim, &closure_output, &job_body, inputs_span);
    let job = Ident::new("__async_wrap_job", inputs_span);
    // `Send` is checked here, by unsizing coercions at the user's tokens, before the dispatch
    // requires it again: rustc reports the failure once, at the parameter list (for the job's
    // captures) or at the return type, with no note citing the runtime's internals.
    let send_check = quote_spanned!(inputs_span=> let _: &dyn ::core::marker::Send = &#job;);
    let shape = Shape::of(options, sig);
    let output_check = output_send_check(&shape, &sig.output);
    let future_ty = match (&shape, &sig.output) {
        // Spanned on the written type: a trait whose method returns `T` (not a future) reports
        // the mismatch there, not at the attribute, which rustc would offer to replace.
        (Shape::Call, ReturnType::Type(_, ty)) => {
            let span = Span::mixed_site().located_at(ty.span());
            let krate = shim.krate.at(span);
            quote_spanned!(span=> #krate::__private::BlockingFuture<#ty>)
        }
        _ => future_type(&shape, sig, private),
    };
    let dispatch = dispatch(&shim, &shape, options, &[&executor, &site, &job]);
    let track_caller = track_caller(attrs);

    let receiver = sig.receiver().map(|receiver| quote!(#receiver,));
    let inputs = shim.args.iter().filter(|arg| !arg.state).map(
        |Arg {
             name, ty, attrs, ..
         }| quote!(#(#attrs)* #name: #ty),
    );
    let (generics, where_clause, fn_token) =
        (&sig.generics, &sig.generics.where_clause, &sig.fn_token);
    quote! {
        #sync_item
        #(#attrs)*
        #allowed
        #track_caller
        #vis #unsafety #fn_token #ident #generics (#receiver #(#inputs),*)
            -> #future_ty #where_clause
        {
            #site_item
            let #executor #executor_ty = #init;
            #self_copy
            #(#copies)*
            let #job = #job_closure;
            #send_check
            #output_check
            #dispatch
        }
    }
}

/// The shim of a `process` function: it serializes the arguments and returns the future of a
/// call to a worker of the pool. Inside it, the original function under its own name (so that
/// recursion stays a plain call, in the worker), the worker's entry (decode, run, encode) and
/// its registration under a key made of the module path, the name, where the name is written
/// (file, line, column) and a hash of the signature.
///
/// ```text
/// #[async_wrap(executor = PROCS, process)]      pub fn parse(doc: Vec<u8>) -> ProcessFuture<Tree> {
/// pub fn parse(doc: Vec<u8>) -> Tree {    ==>       fn parse(doc: Vec<u8>) -> Tree { body }
///     body                                          fn entry(input: &[u8]) -> Frame {
/// }                                                     serve(input, |(a0,): (Vec<u8>,)| parse(a0))
///                                                   }
///                                                   const KEY: &str = "app::parse@app.rs:2:8#<hash>";
///                                                   register! { KEY, entry }
///                                                   portable::<Vec<u8>>(); portable::<Tree>();
///                                                   call::<Tree, _>(pool(&PROCS), &SITE, KEY, &(&doc,))
///                                               }
/// ```
fn expand_process(
    options: &Options,
    func: &ItemFn,
    flag: &syn::Path,
    krate: Krate<'_>,
) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = func;
    let private = krate.private();
    let ident = &sig.ident;
    let args = shim_args(sig, false, false);
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let key_value = process_key(sig);
    let key = Ident::new("__ASYNC_WRAP_KEY", Span::mixed_site());
    let entry = Ident::new("__async_wrap_entry", Span::mixed_site());
    let input = Ident::new("__async_wrap_input", Span::mixed_site());
    let site = Ident::new("__ASYNC_WRAP_SITE", Span::mixed_site());
    let executor = Ident::new("__async_wrap_executor", Span::mixed_site());
    let (label, pool) = process_pool(options, &private);
    let site_item = site_item(options, &site, ident, &label, &private);
    // Spanned on the flag, path included: a missing feature is reported there.
    let feature = {
        let krate = krate.at(flag.span());
        quote_spanned!(flag.span()=> #krate::__private::adapters::process::<#krate::__private::adapters::Enabled>();)
    };
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };
    let inputs = args.iter().map(
        |Arg {
             name, ty, attrs, ..
         }| quote!(#(#attrs)* #name: #ty),
    );
    let bound: Vec<Ident> = (0..args.len())
        .map(|index| format_ident!("__async_wrap_arg{}", index, span = Span::mixed_site()))
        .collect();
    let crossings: Vec<Crossing> = args
        .iter()
        .zip(&bound)
        .map(|(arg, bound)| Crossing::of(arg, bound, krate))
        .collect();
    let types = crossings.iter().map(|crossing| &crossing.codec);
    let checks = crossings
        .iter()
        .map(|crossing| crossing.check.clone())
        .chain(std::iter::once(portable(krate, &output_ty, output_span)));
    let pushed = crossings.iter().map(|crossing| &crossing.pushed);
    let passed = crossings.iter().map(|crossing| &crossing.passed);
    let codec_of: Vec<Ident> = (0..args.len())
        .map(|index| format_ident!("__async_wrap_codec{}", index, span = Span::mixed_site()))
        .collect();
    let output_codec = Ident::new("__async_wrap_output_codec", Span::mixed_site());
    let codecs = Ident::new("__async_wrap_codecs", Span::mixed_site());
    let arguments = Ident::new("__async_wrap_arguments", Span::mixed_site());
    let request = Ident::new("__async_wrap_request", Span::mixed_site());
    let request_mut = (!args.is_empty()).then(|| quote!(mut));
    let track_caller = track_caller(attrs);
    let sync_item = renamed_twin(options, func);
    let fn_token = &sig.fn_token;
    let allowed = allowed_lints(false, false);
    quote! {
        #sync_item
        #(#attrs)*
        #allowed
        #track_caller
        #vis #fn_token #ident (#(#inputs),*) -> #private::process::ProcessFuture<#output_ty> {
            // The worker owns the arguments it decoded: taking them by value is the point.
            #[allow(clippy::needless_pass_by_value)]
            #sig #block
            fn #codecs() -> (
                #(#private::process::Codec<#types>,)*
                #private::process::Codec<#output_ty>,
            ) {
                (#(#checks,)*)
            }
            fn #entry(#input: &[::core::primitive::u8]) -> #private::process::Frame {
                let (#(#codec_of,)* #output_codec,) = #codecs();
                #private::process::serve(#input, #output_codec, |#arguments| {
                    #(let #bound = #arguments.take(#codec_of)?;)*
                    #arguments.finish()?;
                    ::core::result::Result::Ok(#ident(#(#passed),*))
                })
            }
            const #key: &::core::primitive::str = #key_value;
            #private::process::register! { #key, #entry }
            #site_item
            #feature
            let (#(#codec_of,)* #output_codec,) = #codecs();
            let #request_mut #request = #private::process::Request::new(#key);
            #(#request.push(#codec_of, #pushed);)*
            let #executor = #pool;
            #private::process::call(#executor, &#site, #request, #output_codec)
        }
    }
}

/// How one argument of a `process` function crosses to the worker.
struct Crossing {
    /// The codec's type arguments: `T`, or, for a borrow `&B`, `B, B::Owned`.
    codec: TokenStream,
    /// The call that makes the codec, checking there (at the user's type) that it can cross.
    check: TokenStream,
    /// What the request encodes: a borrow of the argument, or the argument (already a borrow).
    pushed: TokenStream,
    /// What the worker passes the body: the decoded value, or a borrow of it.
    passed: TokenStream,
}

impl Crossing {
    /// A borrowed argument (`&str`, `&[u8]`, `&Path`) is encoded from the borrow at the call
    /// and decoded in the worker as its owned form, which the body gets a borrow of; any other
    /// crosses as it is. `bound` is the worker's binding of the decoded value.
    fn of(arg: &Arg<'_>, bound: &Ident, krate: Krate<'_>) -> Self {
        let (name, ty) = (&arg.name, arg.ty);
        let private = krate.private();
        match copied_reference(ty).map(|reference| &*reference.elem) {
            Some(elem) => {
                let at_type = krate.at(ty.span());
                Crossing {
                    codec: quote!(#elem, <#elem as #private::ToOwned>::Owned),
                    check: quote_spanned!(ty.span()=> #at_type::__private::process::portable_ref::<#elem>()),
                    pushed: quote!(#name),
                    passed: quote!(#private::Borrow::borrow(&#bound)),
                }
            }
            None => Crossing {
                codec: quote!(#ty),
                check: portable(krate, &ty.to_token_stream(), ty.span()),
                pushed: quote!(&#name),
                passed: quote!(#bound),
            },
        }
    }
}

/// The codec of `ty`, made where the user wrote it: each type that crosses is checked there,
/// once; the codec carries the check to the other steps, which add no bound of their own.
fn portable(krate: Krate<'_>, ty: &TokenStream, span: Span) -> TokenStream {
    let krate = krate.at(span);
    quote_spanned!(span=> #krate::__private::process::portable::<#ty>())
}

/// The label and the pool of a `process` shim: `executor = POOL` as written, and the call that
/// checks it is a `&'static ProcessPool` (spanned on `POOL`, where a wrong type is reported).
fn process_pool(options: &Options, private: &TokenStream) -> (TokenStream, TokenStream) {
    match &options.executor {
        Some(expr) => {
            let value = if is_place(expr) {
                quote_spanned!(expr.span()=> &#expr)
            } else {
                quote!(#expr)
            };
            (
                quote!(::core::stringify!(#expr)),
                quote_spanned!(expr.span()=> #private::process::pool(#value)),
            )
        }
        // Refused by validation; the fallback is emitted instead.
        None => (quote!(""), quote!(::core::unreachable!())),
    }
}

/// A `process` function's key: its path, where its name is written (the file, line and column
/// make it unique per definition: two functions of one name in two scopes of a module must not
/// share it; the worker is the same build, so this is stable) and a hash of its signature.
fn process_key(sig: &syn::Signature) -> TokenStream {
    let ident = &sig.ident;
    let hash = format!("{:016x}", fnv1a(quote!(#sig).to_string().as_bytes()));
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let column = quote_spanned!(ident.span()=> ::core::column!());
    quote! {
        ::core::concat!(
            ::core::module_path!(), "::", ::core::stringify!(#ident), "@", ::core::file!(),
            ":", #line, ":", #column, "#", #hash
        )
    }
}

/// FNV-1a, 64 bits: the signature's hash in a `process` function's key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The job: a closure of no argument, or, under `state`, of the thread's value, typed as the
/// user wrote it.
fn job_closure(
    shim: &Shim<'_>,
    closure_output: &TokenStream,
    job_body: &TokenStream,
    inputs_span: Span,
) -> TokenStream {
    if let Some(arg) = shim.args.iter().find(|arg| arg.state) {
        let (state, ty) = (state_ident(), arg.ty);
        quote_spanned!(inputs_span=> move |#state: #ty| #closure_output #job_body)
    } else {
        quote_spanned!(inputs_span=> move || #closure_output #job_body)
    }
}

/// Under `state`, the type of the executor's binding, `&'static StatefulPool<S, _>` with the
/// body's first argument's `S`: a pool of another state type is then one error, there.
fn state_pool_type(shim: &Shim<'_>) -> Option<TokenStream> {
    let arg = shim.args.iter().find(|arg| arg.state)?;
    let Type::Reference(reference) = arg.ty else {
        return None;
    };
    let (private, elem) = (&shim.private, &reference.elem);
    Some(quote_spanned! {arg.ty.span()=>
        : &'static #private::StatefulPool<#elem, _>
    })
}

/// The copy of a borrowed receiver, taken at the call: under `clone_self`, spanned on the
/// option so that a missing `Clone` is reported there; for `self: &Arc<Self>`, a clone of the
/// `Arc`.
fn self_copy(form: &Form<'_>, clone_self: bool, options: &Options) -> Option<TokenStream> {
    match form {
        Form::Shared(_) if clone_self => options.clone_self.as_ref().map(|flag| {
            let clone = self_clone_ident();
            quote_spanned!(flag.span()=> let #clone = <Self as ::core::clone::Clone>::clone(self);)
        }),
        Form::SharedArc(receiver) => {
            let clone = self_clone_ident();
            let self_token = &receiver.self_token;
            Some(quote!(let #clone = ::core::clone::Clone::clone(#self_token);))
        }
        _ => None,
    }
}

/// The output's `Send` check, by a coercion at the return type the user wrote (see `expand`).
fn output_send_check(shape: &Shape<'_>, output: &ReturnType) -> Option<TokenStream> {
    match (shape, output) {
        // An `impl Trait` cannot be named in a `fn` pointer; the dispatch checks that output.
        (Shape::Call | Shape::State | Shape::Process, ReturnType::Type(_, ty))
            if !mentions_ident(quote!(#ty), &impl_token()) =>
        {
            let output = Ident::new("__async_wrap_output", ty.span());
            // The lifetime is named: with an elided one, an output with a lifetime of its own
            // (`&'static str`) would leave the pointer's result lifetime ambiguous (E0106).
            let lifetime = syn::Lifetime::new("'__async_wrap_output", Span::mixed_site());
            Some(quote_spanned! {ty.span()=>
                let _: for<#lifetime> fn(&#lifetime #ty) -> &#lifetime dyn ::core::marker::Send =
                    |#output| #output;
            })
        }
        _ => None,
    }
}

/// What replaces a function the attribute refused: the same name, visibility, attributes,
/// generics and parameters, returning the future type the expansion would have returned, with
/// a body that cannot run. The errors are then the only ones: code that calls the function and
/// awaits it still type-checks. (The `sync = NAME` twin, if asked for, is emitted as usual.)
pub(crate) fn fallback(options: &Options, func: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    let private = Krate::of(options).private();
    // An `impl Trait` result cannot be inferred from a body that cannot run: it becomes a
    // `Box<dyn Trait>`, which callers use the same way.
    let mut boxed = sig.clone();
    if let ReturnType::Type(_, ty) = &mut boxed.output {
        box_impl_trait(ty);
    }
    let future_ty = future_type(&Shape::of(options, &boxed), &boxed, &private);
    // Parameters are not bound, so that none of them is reported unused. Under `state`, the
    // first typed one is the pool's, not the caller's.
    let mut state_param = options.state.is_some();
    let inputs = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Receiver(receiver) => Some(quote!(#receiver)),
        FnArg::Typed(_) if std::mem::take(&mut state_param) => None,
        FnArg::Typed(arg) => {
            let (attrs, ty) = (&arg.attrs, &arg.ty);
            Some(quote!(#(#attrs)* _: #ty))
        }
    });
    let unsafety = match &sig.safety {
        Safety::Unsafe(token) => Some(token),
        _ => None,
    };
    let (ident, generics, where_clause, fn_token) = (
        &sig.ident,
        &sig.generics,
        &sig.generics.where_clause,
        &sig.fn_token,
    );
    let sync_item = renamed_twin(options, func);
    let allowed = allowed_lints(false, false);
    quote! {
        #sync_item
        #(#attrs)*
        #allowed
        #vis #unsafety #fn_token #ident #generics (#(#inputs),*) -> #future_ty #where_clause {
            ::core::unreachable!("`#[async_wrap]` refused this function at compile time")
        }
    }
}

/// The function's static record, `site`: its name (`module::function`, or
/// `module::Type::method` for a method of an `impl` block under the attribute), the executor
/// expression as written, and where the function is (`line!()` spanned on its name gives the
/// name's line).
fn site_item(
    options: &Options,
    site: &Ident,
    ident: &Ident,
    label: &TokenStream,
    private: &TokenStream,
) -> TokenStream {
    let owner = options.owner.as_ref().map(|owner| quote!(#owner, "::",));
    let line = quote_spanned!(ident.span()=> ::core::line!());
    quote! {
        static #site: #private::CallSite = #private::call_site(
            ::core::concat!(::core::module_path!(), "::", #owner ::core::stringify!(#ident)),
            #label,
            ::core::file!(),
            #line,
        );
    }
}

/// The function as written under the name `sync = NAME` gives it, for the forms (a process
/// function, a refused one) whose twin is the untouched original.
fn renamed_twin(options: &Options, func: &ItemFn) -> Option<TokenStream> {
    options.sync.as_ref().map(|sync| {
        let mut twin = func.clone();
        twin.sig.ident = sync.clone();
        quote!(#twin)
    })
}

/// The lints a shim allows, for what the expansion adds and the user did not write:
/// `type_complexity`, because the user chose the output type and
/// `BlockingFuture<Result<T, Box<dyn Error + Send + Sync>>>` is one generic deeper than what
/// they wrote, enough to pass clippy's threshold (async-trait allows it on its expansion for the
/// same reason); `refining_impl_trait`, because a wrapped method implementing a trait's
/// `async fn` or `-> impl Future` returns the named future, which is the point of wrapping it;
/// `unused_unsafe` in an `unsafe fn`, whose job body gets an `unsafe` block of its own; and,
/// when the job calls the `sync` twin rather than holding the body, `deprecated` (the twin
/// keeps a `#[deprecated]` of the function's) and `used_underscore_binding` (an `_x` argument
/// is passed on to it).
fn allowed_lints(unsafe_fn: bool, calls_twin: bool) -> TokenStream {
    let unused_unsafe = unsafe_fn.then(|| quote!(#[allow(unused_unsafe)]));
    let twin = calls_twin.then(|| quote!(#[allow(deprecated, clippy::used_underscore_binding)]));
    quote!(#[allow(clippy::type_complexity, refining_impl_trait)] #unused_unsafe #twin)
}

/// `#[track_caller]`, so that the call's location reaches the dispatch, unless the function
/// has it already or has an attribute it does not combine with.
fn track_caller(attrs: &[Attribute]) -> Option<TokenStream> {
    let clashes = attrs.iter().any(|attr| {
        let path = attr.path();
        path.is_ident("track_caller") || path.is_ident("target_feature") || path.is_ident("naked")
    });
    (!clashes).then(|| quote!(#[track_caller]))
}

/// The job closure's return type: the function's, with each `impl Trait` in it (which a
/// closure cannot name) left to inference.
fn closure_output(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Type(_, ty) => {
            let ty = infer_impl_trait(ty);
            quote!(-> #ty)
        }
        ReturnType::Default => quote!(-> ()),
    }
}

/// `ty` with every `impl Trait` in it replaced by `_`.
fn infer_impl_trait(ty: &Type) -> Type {
    let mut ty = ty.clone();
    replace_impl_trait(&mut ty);
    ty
}

fn replace_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            *ty = Type::Infer(syn::TypeInfer {
                attrs: Vec::new(),
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        }
        Type::Path(path) => {
            if let Some(qself) = &mut path.qself {
                replace_impl_trait(&mut qself.ty);
            }
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(inner) = arg {
                            replace_impl_trait(inner);
                        }
                    }
                }
            }
        }
        Type::Reference(reference) => replace_impl_trait(&mut reference.elem),
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(replace_impl_trait),
        Type::Array(array) => replace_impl_trait(&mut array.elem),
        Type::Slice(slice) => replace_impl_trait(&mut slice.elem),
        Type::Paren(paren) => replace_impl_trait(&mut paren.elem),
        Type::Group(group) => replace_impl_trait(&mut group.elem),
        _ => {}
    }
}

/// Replaces each `impl Trait` in `ty` by `Box<dyn Trait>` (precise-capture bounds dropped).
fn box_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            // `dyn IntoIterator` would need its `IntoIter` named: a boxed `Iterator` is one.
            let bounds = impl_trait.bounds.iter().filter_map(|bound| match bound {
                syn::TypeParamBound::PreciseCapture(_) => None,
                syn::TypeParamBound::Trait(trait_bound) => {
                    let last = trait_bound.path.segments.last()?;
                    if last.ident == "IntoIterator" {
                        let args = &last.arguments;
                        Some(quote!(::core::iter::Iterator #args))
                    } else {
                        Some(quote!(#bound))
                    }
                }
                other => Some(quote!(#other)),
            });
            *ty = Type::Verbatim(quote!(::std::boxed::Box<dyn #(#bounds)+*>));
        }
        Type::Path(path) => {
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(inner) = arg {
                            box_impl_trait(inner);
                        }
                    }
                }
            }
        }
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(box_impl_trait),
        Type::Paren(paren) => box_impl_trait(&mut paren.elem),
        Type::Group(group) => box_impl_trait(&mut group.elem),
        _ => {}
    }
}

/// The type the shim returns: `BlockingFuture<T>`, `BlockingStream<Item>`, or
/// `BlockingFuture<Result<BlockingStream<Item>, E>>` (through the user's own `Result` path).
fn future_type(shape: &Shape<'_>, sig: &Signature, private: &TokenStream) -> TokenStream {
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    match shape {
        Shape::Call => quote!(#private::BlockingFuture<#output_ty>),
        Shape::State => quote! {
            #private::BlockingFuture<::core::result::Result<#output_ty, #private::StateError>>
        },
        Shape::Process => quote!(#private::process::ProcessFuture<#output_ty>),
        Shape::Stream => {
            let item = match &sig.output {
                ReturnType::Type(_, ty) => stream_item(ty),
                // Refused by validation; this keeps the expansion well-formed meanwhile.
                ReturnType::Default => quote!(()),
            };
            quote!(#private::BlockingStream<#item>)
        }
        Shape::TryStream(path, ok) => {
            let item = stream_item(ok);
            let mut result = (*path).clone();
            if let Some(last) = result.path.segments.last_mut() {
                if let PathArguments::AngleBracketed(args) = &mut last.arguments {
                    if let Some(GenericArgument::Type(first)) = args.args.first_mut() {
                        *first = Type::Verbatim(quote!(#private::BlockingStream<#item>));
                    }
                }
            }
            quote!(#private::BlockingFuture<#result>)
        }
    }
}

/// The type that a method declaration returns in a trait under the attribute: what the shims
/// of its implementations return, under the same options.
pub(crate) fn declared_future(options: &Options, sig: &Signature) -> TokenStream {
    let private = Krate::of(options).private();
    future_type(&Shape::of(options, sig), sig, &private)
}

/// Under `state`, a declaration's first typed argument is the pool's, not the caller's: it
/// goes, as it does from the shims.
pub(crate) fn drop_state_argument(sig: &mut Signature) {
    let mut state = true;
    sig.inputs = std::mem::take(&mut sig.inputs)
        .into_iter()
        .filter(|input| !(matches!(input, FnArg::Typed(_)) && std::mem::take(&mut state)))
        .collect();
}

/// The call that makes the shim's value: `call`, `stream` or `try_stream`, given the evaluated
/// executor's binding, the call site's static and the job's binding.
fn dispatch(
    shim: &Shim<'_>,
    shape: &Shape<'_>,
    options: &Options,
    [executor, site, job]: &[&Ident; 3],
) -> TokenStream {
    let sig = &shim.func.sig;
    // The dispatch's `Send + 'static` bounds on the output are checked at this call: it is
    // spanned, path included, on the return type the user wrote, so those errors point there.
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };
    let private = shim.krate.at(output_span);
    let private = quote_spanned!(output_span=> #private::__private);
    let batch = || {
        let private = &shim.private;
        options
            .batch
            .as_ref()
            .map_or_else(|| quote!(#private::DEFAULT_BATCH), |batch| quote!(#batch))
    };
    match shape {
        Shape::Call => quote_spanned! {output_span=>
            #private::call(#executor, &#site, #job)
        },
        Shape::State => quote_spanned! {output_span=>
            #private::call_with_state(#executor, &#site, #job)
        },
        Shape::Process => unreachable!("`process` shims are written by `expand_process`"),
        Shape::Stream => {
            let batch = batch();
            quote_spanned! {output_span=>
                #private::stream(#executor, &#site, #batch, #job)
            }
        }
        Shape::TryStream(..) => {
            let batch = batch();
            quote_spanned! {output_span=>
                #private::try_stream(#executor, &#site, #batch, #job)
            }
        }
    }
}

/// The item type of a `stream` function's iterator: `T` from an `impl Iterator<Item = T>` (or
/// `IntoIterator`) type, else the projection `<R as IntoIterator>::Item`.
fn stream_item(ty: &Type) -> TokenStream {
    if let Some(item) = impl_iterator_item(ty) {
        return quote!(#item);
    }
    quote!(<#ty as ::core::iter::IntoIterator>::Item)
}

/// `T` when `ty` is `impl Iterator<Item = T> + ...` (or `IntoIterator`).
fn impl_iterator_item(ty: &Type) -> Option<&Type> {
    let Type::ImplTrait(bounds) = ty else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Iterator" && last.ident != "IntoIterator" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(&assoc.ty),
            _ => None,
        })
    })
}

/// How the shim gets its executor: the expression that makes the handle, and the label that
/// names it in messages (the executor expression as written).
struct ExecutorInit {
    init: TokenStream,
    label: TokenStream,
}

/// The executor's initialiser and its label.
///
/// The executor is evaluated, and converted to an owned handle, before the job takes its
/// arguments: `executor = self.pool` borrows `self` only for that statement.
fn executor_init(
    shim: &Shim<'_>,
    executor: Option<ExecutorOption<'_>>,
    state: bool,
) -> ExecutorInit {
    let private = &shim.private;
    match executor {
        None => ExecutorInit {
            init: quote!(#private::default_executor()),
            label: quote!("the default pool"),
        },
        Some(ExecutorOption::Adapter(name)) => {
            // Spanned, path included, on the adapter's name: a disabled feature is reported there.
            let krate = shim.krate.at(name.span());
            let adapters = quote_spanned!(name.span()=> #krate::__private::adapters);
            ExecutorInit {
                init: quote_spanned!(name.span()=> #adapters::#name::<#adapters::Enabled>()),
                label: quote!(::core::stringify!(#name)),
            }
        }
        Some(ExecutorOption::Expr(expr)) => {
            // A place (a static, an index into one, a variable, a field) is borrowed, like a
            // method call's receiver, so that a static is not moved; anything else is passed as
            // it is. `IntoExecutor` works out the rest from the type (one form per type).
            let value = if is_place(expr) {
                quote_spanned!(expr.span()=> &#expr)
            } else {
                quote!(#expr)
            };
            // Under `state`, the pool itself: a `&'static StatefulPool` (its state type is
            // checked against the body's first argument at the dispatch).
            let init = if state {
                quote_spanned!(expr.span()=> #private::stateful_pool(#value))
            } else if is_self_field(expr) {
                // A pool held by value in the field: one error at the field, naming the fix,
                // instead of the borrow checker's two.
                quote_spanned!(expr.span()=> {
                    #private::shared_field(#value);
                    #private::IntoExecutor::into_executor(#value)
                })
            } else {
                // Through `Given`, which tells a `ProcessPool` (named without `process`) apart
                // and says to add `process`, before `IntoExecutor` would list its forms.
                // Spanned, paths included, on the expression: the error is reported there.
                let at = shim.krate.at(expr.span());
                quote_spanned!(expr.span()=> #at::__private::IntoExecutor::into_executor({
                    // One of the two is used, whichever the value's type picks.
                    #[allow(unused_imports)]
                    use #at::__private::{GivenAny as _, GivenProcessPool as _};
                    (&#at::__private::Given::new(#value)).take()
                }))
            };
            ExecutorInit {
                init,
                label: quote!(::core::stringify!(#expr)),
            }
        }
    }
}

/// Whether `expr` is a field of `self` (`self.pool`, `self.pools.disk`).
fn is_self_field(expr: &Expr) -> bool {
    match expr {
        Expr::Field(field) => match &*field.base {
            Expr::Path(path) => path.path.is_ident("self"),
            base => is_self_field(base),
        },
        _ => false,
    }
}

/// Whether `expr` is a place expression: a path, a field, an index or a dereference.
fn is_place(expr: &Expr) -> bool {
    match expr {
        Expr::Path(_) | Expr::Field(_) | Expr::Index(_) => true,
        Expr::Unary(unary) => matches!(unary.op, syn::UnOp::Deref(_)),
        Expr::Paren(paren) => is_place(&paren.expr),
        Expr::Group(group) => is_place(&group.expr),
        _ => false,
    }
}

/// What the job runs, and the synchronous item emitted beside the shim.
struct Job {
    /// The `sync = NAME` twin, or the nested copy of a recursive free function, if any.
    sync_item: Option<TokenStream>,
    /// The job's body.
    body: TokenStream,
}

/// What the job runs, and the synchronous item to emit beside the shim, if any: the
/// `sync = NAME` twin (the job then calls it), or, for a free function that names itself, a
/// nested copy under its own name so that its recursion stays synchronous.
fn job(shim: &Shim<'_>, sync: Option<&Ident>) -> Job {
    let ItemFn { sig, block, .. } = shim.func;
    let ident = &sig.ident;
    let private = &shim.private;
    let recursive = !shim.method && mentions_ident(quote!(#block), ident);
    let values: Vec<TokenStream> = shim.args.iter().map(|arg| arg.value(private)).collect();
    let turbofish = turbofish(sig);
    match sync {
        Some(sync) if !shim.method => Job {
            sync_item: Some(sync_function(shim, sync, recursive)),
            body: quote!({ #sync #turbofish (#(#values),*) }),
        },
        Some(sync) => {
            let mut twin = shim.func.clone();
            twin.sig.ident = sync.clone();
            let receiver = sig.receiver().map(|receiver| {
                if shim.copied_receiver {
                    let clone = self_clone_ident();
                    quote!(&#clone,)
                } else {
                    let token = &receiver.self_token;
                    quote!(#token,)
                }
            });
            Job {
                sync_item: Some(quote!(#twin)),
                body: quote!({ Self::#sync #turbofish (#receiver #(#values),*) }),
            }
        }
        None if recursive => {
            let nested = nested_function(sig, block);
            Job {
                sync_item: None,
                body: quote!({ #nested #ident #turbofish (#(#values),*) }),
            }
        }
        None => Job {
            sync_item: None,
            body: closure_body(shim),
        },
    }
}

/// The job's body when it is the user's block: every argument is moved in, then bound by the
/// user's own pattern, so that arguments are dropped when the body ends, as in a direct call.
fn closure_body(shim: &Shim<'_>) -> TokenStream {
    let ItemFn { sig, block, .. } = shim.func;
    let private = &shim.private;
    let receiver = sig.receiver().map(|receiver| {
        if shim.copied_receiver {
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
            // An argument that only the executor expression uses is still moved into the job
            // (and dropped there, as in a direct call); it is not the user's unused variable.
            (Pat::Ident(pat), None) if mentions_ident(shim.executor.clone(), &pat.ident) => {
                quote!(#[allow(unused_variables)] let #pat = #value;)
            }
            // `_x: T`: the argument is moved into the job and bound as the user wrote it.
            (Pat::Ident(pat), None) if pat.ident.to_string().starts_with('_') => quote! {
                #[allow(clippy::used_underscore_binding, clippy::no_effect_underscore_binding)]
                let #pat = #value;
            },
            (pat, None) => quote!(let #pat = #value;),
        }
    });
    // The user's block, braces included, so that the body keeps its own scope; the braces are
    // marked as generated, or `unused_braces` would flag a one-line body.
    let stmts = &block.stmts;
    let stmts = if shim.copied_receiver {
        replace_self(quote!(#(#stmts)*))
    } else {
        quote!(#(#stmts)*)
    };
    let block = generated_braces(stmts, block.brace_token.span.join());
    quote!({
        #receiver
        #(#bindings)*
        #block
    })
}

/// `{ tokens }`, its braces located at `span` but resolved as generated code.
fn generated_braces(tokens: TokenStream, span: Span) -> TokenStream {
    let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, tokens);
    group.set_span(Span::call_site().located_at(span));
    TokenStream::from(TokenTree::Group(group))
}

/// The shim's parameters.
fn shim_args(sig: &Signature, to_owned: bool, state: bool) -> Vec<Arg<'_>> {
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
                state: state && index == 0,
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

/// The `impl` keyword, to find `impl Trait` in a type's tokens.
fn impl_token() -> Ident {
    Ident::new("impl", Span::call_site())
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
