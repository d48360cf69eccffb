//! Checks that a function can be wrapped, and says precisely why not when it cannot.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{
    FnArg, GenericArgument, Lifetime, Pat, PathArguments, ReceiverKind, ReturnType, Safety,
    Signature, Type, TypeParamBound,
};

use crate::errors::Errors;
use crate::options::Options;
use crate::receiver::{self, Form};
use crate::types::{copied_reference, is_static, result_ok_type};

/// Adds to `errors` every reason `sig` cannot be wrapped with these options.
pub(crate) fn check_signature(sig: &Signature, options: &Options, errors: &mut Errors) {
    check_qualifiers(sig, errors);
    check_inputs(sig, options, errors);
    check_output(sig, options, errors);
    check_stream(sig, options, errors);
    check_process(sig, options, errors);
}

/// Under `process`: a free, non-generic, safe function of owned arguments, on a named pool, with
/// no option that needs the caller's process (the other checks refuse borrowed arguments).
fn check_process(sig: &Signature, options: &Options, errors: &mut Errors) {
    let Some(flag) = &options.process else {
        return;
    };
    match &options.executor {
        None => errors.fail(
            flag,
            "`process` runs the body in a worker process of a `ProcessPool`: add \
             `executor = POOL`, naming a `static POOL: ProcessPool`",
        ),
        Some(syn::Expr::Path(path))
            if path.path.is_ident("tokio") || path.path.is_ident("rayon") =>
        {
            errors.fail(
                path,
                "`process` runs the body in a worker process: `executor` must name a \
                 `static POOL: ProcessPool`, not a thread pool adapter",
            );
        }
        Some(_) => {}
    }
    let others: [(&Option<syn::Path>, &str); 4] = [
        (&options.stream, "stream"),
        (&options.state, "state"),
        (&options.clone_self, "clone_self"),
        (&options.to_owned, "to_owned"),
    ];
    for (other, name) in others {
        if let Some(other) = other {
            errors.fail(
                other,
                format!("`{name}` and `process` do not go together; keep one"),
            );
        }
    }
    if let Some(receiver) = sig.receiver() {
        errors.fail(
            receiver,
            "a `process` function runs in a worker process, where there is no `self`: make it a \
             free function taking what it needs as arguments",
        );
    } else if crate::receiver::mentions_self(quote::quote!(#sig)) {
        errors.fail(
            &sig.inputs,
            "a `process` function runs in a worker process, and is found there by its path: \
             make it a free function, without `Self` in its signature",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.fail(
            &sig.generics,
            "a `process` function cannot be generic: its worker process finds it by a key \
             made at compile time, for one set of types; write one function per type",
        );
    }
    if let Safety::Unsafe(token) = &sig.safety {
        errors.fail(
            token,
            "a `process` function cannot be `unsafe`: its caller's promises do not reach the \
             worker process; keep the `unsafe` block inside a safe function",
        );
    }
    let impl_trait = sig.inputs.iter().find_map(|input| match input {
        FnArg::Typed(arg) if matches!(&*arg.ty, Type::ImplTrait(_)) => Some(&*arg.ty),
        _ => None,
    });
    let impl_output = match &sig.output {
        ReturnType::Type(_, ty) if matches!(&**ty, Type::ImplTrait(_)) => Some(&**ty),
        _ => None,
    };
    if let Some(ty) = impl_trait.or(impl_output) {
        errors.fail(
            ty,
            "a `process` function's arguments and result cross to a worker process serialized, \
             so their types must be named: write the concrete type instead of `impl Trait`",
        );
    }
    if sig.inputs.len() > 16 {
        errors.fail(
            &sig.inputs,
            "a `process` function takes at most 16 arguments; group them in a struct that \
             derives `Serialize` and `Deserialize`",
        );
    }
}

/// `const`, `async`, `safe`, an ABI, C variadics.
fn check_qualifiers(sig: &Signature, errors: &mut Errors) {
    let mut fail = |tokens: &dyn ToTokens, message: String| errors.fail(tokens, message);
    if let Some(token) = &sig.constness {
        fail(
            token,
            "`#[async_wrap]` cannot wrap a `const fn`: the wrapped function returns a future that \
             runs on a thread pool, which cannot happen at compile time; remove `const`"
                .into(),
        );
    }
    if let Some(token) = &sig.asyncness {
        fail(
            token,
            "`#[async_wrap]` wraps a blocking function, and this one is already `async`; remove \
             `async` (the attribute makes the function awaitable), or move the blocking part into \
             a separate `#[async_wrap] fn`"
                .into(),
        );
    }
    if let Safety::Safe(token) = &sig.safety {
        fail(
            token,
            "`safe` is only allowed in `unsafe extern` blocks; remove it".into(),
        );
    }
    if let Some(abi) = &sig.abi {
        fail(
            abi,
            "`#[async_wrap]` cannot wrap an `extern` function: the wrapped function returns a Rust \
             future, which has no foreign ABI; remove the ABI, or keep an `extern` function and \
             wrap a Rust function that calls it"
                .into(),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            &variadic.dots,
            "`#[async_wrap]` cannot wrap a C-variadic function: the arguments cannot be moved to \
             another thread; take a `Vec` or a slice of owned values instead"
                .into(),
        );
    }
}

/// The receiver: moved, or copied by an opt-in (`clone_self`) or by its type (`&Arc<Self>`).
/// Returns whether there is a `&self` for `clone_self` to apply to (or an error about it
/// already).
fn check_receiver(sig: &Signature, options: &Options, errors: &mut Errors) -> bool {
    let mut has_ref_self = false;
    match receiver::form(sig) {
        Form::Moved => {
            // `self: Pin<&mut Self>` and the like borrow too.
            let typed = sig.receiver().and_then(|receiver| match &receiver.kind {
                ReceiverKind::Typed(_, ty) => Some((receiver, ty)),
                _ => None,
            });
            if let Some((receiver, borrow)) =
                typed.and_then(|(receiver, ty)| Some((receiver, find_borrow(ty)?)))
            {
                errors.fail(
                    &borrow.tokens(),
                    format!(
                        "`{}` borrows, and cannot be moved to the pool thread, where the body runs \
                         after this call has returned; take `self` by value, `self: Arc<Self>` \
                         or `self: &Arc<Self>`",
                        pretty(receiver)
                    ),
                );
            }
        }
        Form::Mutable(receiver) => errors.fail(
            &receiver_tokens(receiver),
            "`&mut self` cannot be moved to the pool thread, where the body runs after this call \
             has returned; take `self` by value (and return it), or `self: Arc<Self>` with \
             interior mutability",
        ),
        Form::Shared(_) if options.clone_self.is_some() => has_ref_self = true,
        Form::Shared(receiver) => errors.fail(
            &receiver_tokens(receiver),
            "`&self` cannot be moved to the pool thread, where the body runs after this call has \
             returned; take `self` by value, `self: Arc<Self>` or `self: &Arc<Self>`, or add \
             `clone_self` to the attribute to run the body on a clone of `self`",
        ),
        Form::SharedArc(receiver) => {
            if let Some(flag) = &options.clone_self {
                errors.fail(
                    flag,
                    format!(
                        "`{}` needs no `clone_self`: the `Arc` is cloned at each call; remove \
                         `clone_self`",
                        pretty(&receiver_tokens(receiver))
                    ),
                );
                has_ref_self = true;
            }
        }
        Form::OtherReference(receiver) => errors.fail(
            &receiver_tokens(receiver),
            format!(
                "`{}` cannot be moved to the pool thread, where the body runs after this call \
                 has returned; take `self` by value, `self: Arc<Self>` or `self: &Arc<Self>`",
                pretty(&receiver_tokens(receiver))
            ),
        ),
    }
    has_ref_self
}

/// The receiver and the arguments: nothing borrowed, unless an opt-in says what to do with it;
/// and no opt-in without something to apply to.
fn check_inputs(sig: &Signature, options: &Options, errors: &mut Errors) {
    let has_ref_self = check_receiver(sig, options, errors);
    check_state(sig, options, errors);
    let mut fail = |tokens: &dyn ToTokens, message: String| errors.fail(tokens, message);
    let mut has_copied_arg = false;
    // Under `state`, the first argument is the pool's, not the caller's: it may borrow.
    let skip = usize::from(options.state.is_some());
    for input in sig
        .inputs
        .iter()
        .filter(|input| matches!(input, FnArg::Typed(_)))
        .skip(skip)
    {
        let FnArg::Typed(arg) = input else {
            continue;
        };
        // A `process` function's borrowed arguments are serialized at the call, like copies.
        let copies = options.to_owned.is_some() || options.process.is_some();
        if copies && copied_reference(&arg.ty).is_some() {
            has_copied_arg = true;
            // The referent may itself borrow (`&Cow<'a, str>`): its owned form still could.
            if let Some(borrow) = copied_reference(&arg.ty).and_then(|r| find_borrow(&r.elem)) {
                fail(&borrow.tokens(), borrow.message(&arg.ty, false));
            }
        } else if let Some(message) = borrowed_role(arg, sig, options) {
            fail(&arg.ty, message);
        } else if let (Some(borrow), Some(_)) = (find_borrow(&arg.ty), &options.process) {
            fail(
                &borrow.tokens(),
                format!(
                    "borrowed argument: `{}` cannot cross to the worker process: a `process` \
                     function's arguments are serialized at the call, and only a plain shared \
                     borrow (`&str`, `&[u8]`, `&Path`, `&T`) is read back there, as its owned \
                     form; take an owned type instead (a `&mut` argument's changes would not \
                     come back: return the value)",
                    pretty(&arg.ty)
                ),
            );
        } else if let Some(borrow) = find_borrow(&arg.ty) {
            // `to_owned` and `process` do not combine: a process function's hint is above.
            let hint = options.to_owned.is_none()
                && options.process.is_none()
                && copied_reference(&arg.ty).is_some();
            fail(&borrow.tokens(), borrow.message(&arg.ty, hint));
        } else if let Type::ImplTrait(impl_trait) = &*arg.ty {
            if let Some(missing) = missing_send_static(impl_trait) {
                fail(
                    &arg.ty,
                    format!(
                        "`{ty}` moves to the pool thread, where the body runs after this call has \
                         returned, so it must be `Send + 'static`; write `{ty} + {missing}`",
                        ty = pretty(&arg.ty),
                    ),
                );
            }
        }
    }
    if let Some(flag) = &options.clone_self {
        if !has_ref_self {
            fail(
                flag,
                "`clone_self` clones the receiver of a `&self` method, and this function has no \
                 `&self`; remove `clone_self`"
                    .into(),
            );
        }
    }
    if let Some(flag) = &options.to_owned {
        if !has_copied_arg {
            fail(
                flag,
                "`to_owned` copies `&T` arguments to their owned form, and this function has none; \
                 remove `to_owned`"
                    .into(),
            );
        }
    }
}

/// The error for a borrowed argument whose role says what it was meant to be: the executor
/// itself (`executor = pool`, `pool: &BlockingPool`), or, first and `&mut S` beside an executor
/// without `state`, the thread's value of a `StatefulPool`.
fn borrowed_role(arg: &syn::PatType, sig: &Signature, options: &Options) -> Option<String> {
    let Type::Reference(reference) = &*arg.ty else {
        return None;
    };
    if reference.lifetime.as_ref().is_some_and(is_static) {
        return None;
    }
    let elem = pretty(&reference.elem.to_token_stream());
    let executor = options.executor.as_ref()?;
    if let (Pat::Ident(name), syn::Expr::Path(path)) = (&*arg.pat, executor) {
        if path.path.is_ident(&name.ident) {
            return Some(format!(
                "`{name}` is the executor, and a borrowed one cannot reach the thread that runs \
                 the body after this call has returned: take `&'static {elem}` (a pool in a \
                 `static`) or an `Arc<{elem}>`",
                name = name.ident,
            ));
        }
    }
    if suggests_state(sig, options)
        && first_typed(sig).is_some_and(|first| std::ptr::eq(first, arg))
    {
        return Some(format!(
            "`&mut {elem}` cannot be moved to the pool thread, where the body runs after this \
             call has returned; if `{pool}` is a `StatefulPool<{elem}>`, add `state`: the body \
             then gets the running thread's `{elem}`, and the caller does not pass it; \
             otherwise take {owned}",
            pool = pretty(executor),
            owned = owned_suggestion(reference),
        ));
    }
    None
}

/// The function's first typed argument.
fn first_typed(sig: &Signature) -> Option<&syn::PatType> {
    sig.inputs.iter().find_map(|input| match input {
        FnArg::Typed(arg) => Some(arg),
        FnArg::Receiver(_) => None,
    })
}

/// Whether the function reads as a `state` function without `state`: an executor named (not an
/// adapter), no `state` or `process`, and a first argument of type `&mut S`. Its fallback then
/// takes the fix for granted, so that the calls written for it (without that argument) get no
/// follow-on error.
pub(crate) fn suggests_state(sig: &Signature, options: &Options) -> bool {
    let named_pool = matches!(
        options.executor(),
        Some(crate::options::ExecutorOption::Expr(_))
    );
    named_pool
        && options.state.is_none()
        && options.process.is_none()
        && first_typed(sig).is_some_and(|first| {
            matches!(&*first.ty, Type::Reference(r) if r.mutability.is_some()
                && !r.lifetime.as_ref().is_some_and(is_static))
        })
}

/// Under `state`: the first argument must be `&mut S`, and `executor` must name the pool.
fn check_state(sig: &Signature, options: &Options, errors: &mut Errors) {
    let Some(flag) = &options.state else {
        return;
    };
    let first = sig.inputs.iter().find_map(|input| match input {
        FnArg::Typed(arg) => Some(arg),
        FnArg::Receiver(_) => None,
    });
    match first {
        Some(arg) if matches!(&*arg.ty, Type::Reference(r) if r.mutability.is_some()) => {}
        Some(arg) => errors.fail(
            &arg.ty,
            "with `state`, the first argument is the thread's value of the pool: write its type \
             as `&mut S`, `S` being the `StatefulPool`'s state type",
        ),
        None => errors.fail(
            flag,
            "`state` gives the body its thread's value of a `StatefulPool` as its first argument, \
             and this function has none: add one (`conn: &mut Connection`), or remove `state`",
        ),
    }
    if options.executor.is_none() {
        errors.fail(
            flag,
            "`state` needs the `StatefulPool` whose threads hold the values: add \
             `executor = POOL`",
        );
    }
    if let Some(stream) = &options.stream {
        errors.fail(stream, "`stream` and `state` do not go together; keep one");
    }
}

/// `&self`, `&mut self` or `self: &T`, as written.
fn receiver_tokens(receiver: &syn::Receiver) -> TokenStream {
    let self_token = &receiver.self_token;
    match &receiver.kind {
        ReceiverKind::Reference(and, _, mutability) => quote::quote!(#and #mutability #self_token),
        _ => receiver.to_token_stream(),
    }
}

/// The bounds an `impl Trait` argument lacks of `Send + 'static`, as written after a `+`; `None`
/// when it has both. (A trait with `Send + 'static` as supertraits still needs them spelled
/// out here, which is harmless.)
fn missing_send_static(impl_trait: &syn::TypeImplTrait) -> Option<&'static str> {
    let has_static = impl_trait
        .bounds
        .iter()
        .any(|bound| matches!(bound, TypeParamBound::Lifetime(lifetime) if is_static(lifetime)));
    let has_send = impl_trait.bounds.iter().any(|bound| {
        matches!(bound, TypeParamBound::Trait(bound)
            if bound.path.segments.last().is_some_and(|segment| segment.ident == "Send"))
    });
    match (has_send, has_static) {
        (true, true) => None,
        (true, false) => Some("'static"),
        (false, true) => Some("Send"),
        (false, false) => Some("Send + 'static"),
    }
}

/// `stream` needs an iterator to stream; `batch` goes with `stream`.
fn check_stream(sig: &Signature, options: &Options, errors: &mut Errors) {
    if let (Some(flag), ReturnType::Default) = (&options.stream, &sig.output) {
        errors.fail(
            flag,
            "`stream` turns a function returning an iterator into one returning a stream, and \
             this function returns nothing; return `impl Iterator<Item = T> + Send + 'static`",
        );
    }
    if let (Some(batch), None) = (&options.batch, &options.stream) {
        errors.fail(
            batch,
            "`batch` sets the batch size of a `stream`; add `stream`, or remove `batch`",
        );
    }
    if let Some(syn::Expr::Lit(lit)) = &options.batch {
        if let syn::Lit::Int(int) = &lit.lit {
            if int.base10_parse::<u64>().is_ok_and(|n| n == 0) {
                errors.fail(lit, "`batch` must be at least 1");
            }
        }
    }
}

/// The return type: it travels back from a pool thread, so it cannot borrow; and without
/// `stream`, it cannot be a lazy iterator, whose work would run on the caller's thread.
fn check_output(sig: &Signature, options: &Options, errors: &mut Errors) {
    let ReturnType::Type(_, ty) = &sig.output else {
        return;
    };
    if let Some(borrow) = find_borrow(ty) {
        errors.fail(
            &borrow.tokens(),
            format!(
                "the return type `{}` borrows, but the result is sent back from a pool thread and \
                 must be `'static`; return an owned value",
                pretty(ty)
            ),
        );
    }
    if options.stream.is_none() {
        let iterator = match result_ok_type(ty) {
            Some(result) => lazy_iterator(result.ok),
            None => lazy_iterator(ty),
        };
        if let Some(iterator) = iterator {
            errors.fail(
                iterator,
                format!(
                    "`{}` is lazy: its items would be made on the caller's async thread, after the \
                     call has returned from the pool; add `stream` to the attribute to pull them \
                     on the pool as a `BlockingStream`, or return a collected type such as `Vec<T>`",
                    pretty(iterator)
                ),
            );
        }
    }
}

/// `ty` itself, when it is `impl Iterator` or `impl IntoIterator`.
fn lazy_iterator(ty: &Type) -> Option<&Type> {
    let Type::ImplTrait(impl_trait) = ty else {
        return None;
    };
    impl_trait
        .bounds
        .iter()
        .any(|bound| {
            matches!(bound, TypeParamBound::Trait(bound)
            if bound.path.segments.last().is_some_and(|segment| {
                segment.ident == "Iterator" || segment.ident == "IntoIterator"
            }))
        })
        .then_some(ty)
}

/// The first borrow found inside a type.
enum Borrow<'a> {
    /// A reference type, `&T` or `&mut T`, without `'static`.
    Reference(&'a syn::TypeReference),
    /// A lifetime other than `'static` in a path or a bound, such as `Cow<'a, str>`.
    Lifetime(&'a Lifetime),
}

impl Borrow<'_> {
    fn tokens(&self) -> TokenStream {
        match self {
            Borrow::Reference(reference) => reference.to_token_stream(),
            Borrow::Lifetime(lifetime) => lifetime.to_token_stream(),
        }
    }

    /// The error for an argument of type `whole` with this borrow; `hint_to_owned` when the
    /// `to_owned` option would accept it.
    fn message(&self, whole: &Type, hint_to_owned: bool) -> String {
        match self {
            Borrow::Reference(reference) => {
                let ty = pretty(&reference.to_token_stream());
                let or_copy = match (hint_to_owned, owned_form(reference)) {
                    (false, _) => String::new(),
                    (true, Some(_)) => {
                        ", or add `to_owned` to the attribute to copy it at each call".to_owned()
                    }
                    // `to_owned` needs `T: Clone` (`ToOwned`), which only the compiler knows.
                    (true, None) => format!(
                        ", or, if `{}` is `Clone`, add `to_owned` to the attribute to copy it at \
                         each call",
                        pretty(&reference.elem.to_token_stream())
                    ),
                };
                format!(
                    "borrowed argument: `{ty}` cannot be moved to the pool thread, where the body runs \
                     after this call has returned; take {} instead{or_copy}",
                    owned_suggestion(reference)
                )
            }
            Borrow::Lifetime(lifetime) => format!(
                "borrowed argument: `{}` borrows for `{}`, but the body runs on a pool thread after \
                 this call has returned, so every argument must be `'static`; take an owned value \
                 (or one that borrows only for `'static`)",
                pretty(&whole.to_token_stream()),
                pretty(&lifetime.to_token_stream()),
            ),
        }
    }
}

/// The owned form of a shared borrow of a well-known unsized type (`&str`: `String`, `&[T]`:
/// `Vec<T>`, `&Path`, `&OsStr`, `&CStr`).
fn owned_form(reference: &syn::TypeReference) -> Option<String> {
    if reference.mutability.is_some() {
        return None;
    }
    match &*reference.elem {
        Type::Slice(slice) => Some(format!("Vec<{}>", pretty(&slice.elem.to_token_stream()))),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last().map(|s| s.ident.to_string());
            match last.as_deref() {
                Some("str") => Some("String".to_owned()),
                Some("Path") => Some("PathBuf".to_owned()),
                Some("OsStr") => Some("OsString".to_owned()),
                Some("CStr") => Some("CString".to_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What to write instead of a reference type.
fn owned_suggestion(reference: &syn::TypeReference) -> String {
    let elem = &*reference.elem;
    if reference.mutability.is_some() {
        let inner = pretty(&elem.to_token_stream());
        return format!(
            "`{inner}` by value (return it if the caller needs it back) or share an `Arc<Mutex<{inner}>>`"
        );
    }
    if let Some(owned) = owned_form(reference) {
        format!("an owned `{owned}`, or share it with `Arc`")
    } else {
        let inner = pretty(&elem.to_token_stream());
        format!("`{inner}` by value or an `Arc<{inner}>`")
    }
}

/// Finds a borrow in `ty`: a reference or a lifetime other than `'static`.
///
/// Lifetimes bound inside the type itself (`fn(&str)`, `dyn Fn(&str)`, `for<'a> ...`) are not
/// borrows of the caller's data, so function-pointer and `Fn(...)` arguments are not searched.
fn find_borrow(ty: &Type) -> Option<Borrow<'_>> {
    match ty {
        Type::Reference(reference) => match &reference.lifetime {
            Some(lifetime) if is_static(lifetime) => find_borrow(&reference.elem),
            _ => Some(Borrow::Reference(reference)),
        },
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                if let Some(borrow) = find_borrow(&qself.ty) {
                    return Some(borrow);
                }
            }
            path.path
                .segments
                .iter()
                .find_map(|segment| path_arguments_borrow(&segment.arguments))
        }
        Type::Array(array) => find_borrow(&array.elem),
        Type::Slice(slice) => find_borrow(&slice.elem),
        Type::Paren(paren) => find_borrow(&paren.elem),
        Type::Group(group) => find_borrow(&group.elem),
        Type::Ptr(ptr) => find_borrow(&ptr.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(find_borrow),
        Type::ImplTrait(bounds) => bounds_borrow(bounds.bounds.iter()),
        Type::TraitObject(bounds) => bounds_borrow(bounds.bounds.iter()),
        _ => None,
    }
}

fn path_arguments_borrow(arguments: &PathArguments) -> Option<Borrow<'_>> {
    let PathArguments::AngleBracketed(args) = arguments else {
        // `Fn(&str) -> T`: the argument lifetimes are higher-ranked, not the caller's.
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Lifetime(lifetime) if !is_static(lifetime) => {
            Some(Borrow::Lifetime(lifetime))
        }
        GenericArgument::Type(ty) => find_borrow(ty),
        GenericArgument::AssocType(assoc) => find_borrow(&assoc.ty),
        GenericArgument::Constraint(constraint) => bounds_borrow(constraint.bounds.iter()),
        _ => None,
    })
}

fn bounds_borrow<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> Option<Borrow<'a>> {
    bounds.find_map(|bound| match bound {
        TypeParamBound::Lifetime(lifetime) if !is_static(lifetime) => {
            Some(Borrow::Lifetime(lifetime))
        }
        TypeParamBound::Trait(trait_bound) => trait_bound
            .path
            .segments
            .iter()
            .find_map(|segment| path_arguments_borrow(&segment.arguments)),
        _ => None,
    })
}

/// Tokens as a person would write them: `& mut Vec < u8 >` becomes `&mut Vec<u8>`.
pub(crate) fn pretty(tokens: &dyn ToTokens) -> String {
    const TIGHTEN: &[(&str, &str)] = &[
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ;", ";"),
        (" : ", ": "),
        ("& ", "&"),
        (" ::", "::"),
        (":: ", "::"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ];
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in TIGHTEN {
        text = text.replace(from, to);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn borrow_of(ty: &Type) -> Option<String> {
        find_borrow(ty).map(|b| pretty(&b.tokens()))
    }

    #[test]
    fn finds_borrows_and_accepts_static_and_owned_types() {
        assert_eq!(borrow_of(&parse_quote!(&str)).as_deref(), Some("&str"));
        assert_eq!(
            borrow_of(&parse_quote!(&mut Vec<u8>)).as_deref(),
            Some("&mut Vec<u8>")
        );
        assert_eq!(
            borrow_of(&parse_quote!(Cow<'a, str>)).as_deref(),
            Some("'a")
        );
        assert_eq!(
            borrow_of(&parse_quote!(Option<(u8, &[u8])>)).as_deref(),
            Some("&[u8]")
        );
        assert_eq!(
            borrow_of(&parse_quote!(Box<dyn Read + 'a>)).as_deref(),
            Some("'a")
        );
        assert_eq!(
            borrow_of(&parse_quote!(Cow<'_, str>)).as_deref(),
            Some("'_")
        );
        assert_eq!(borrow_of(&parse_quote!(&'static str)), None);
        assert_eq!(borrow_of(&parse_quote!(Cow<'static, str>)), None);
        assert_eq!(borrow_of(&parse_quote!(fn(&str) -> usize)), None);
        assert_eq!(
            borrow_of(&parse_quote!(Box<dyn Fn(&str) -> usize + Send>)),
            None
        );
        assert_eq!(
            borrow_of(&parse_quote!(impl Iterator<Item = u8> + Send + 'static)),
            None
        );
        assert_eq!(borrow_of(&parse_quote!([String; 4])), None);
    }

    #[test]
    fn suggests_the_owned_type() {
        let reference = |ty: Type| match ty {
            Type::Reference(r) => owned_suggestion(&r),
            _ => unreachable!(),
        };
        assert_eq!(
            reference(parse_quote!(&str)),
            "an owned `String`, or share it with `Arc`"
        );
        assert_eq!(
            reference(parse_quote!(&[u8])),
            "an owned `Vec<u8>`, or share it with `Arc`"
        );
        assert_eq!(
            reference(parse_quote!(&std::path::Path)),
            "an owned `PathBuf`, or share it with `Arc`"
        );
        assert_eq!(
            reference(parse_quote!(&Config)),
            "`Config` by value or an `Arc<Config>`"
        );
        assert_eq!(
            reference(parse_quote!(&mut Vec<u8>)),
            "`Vec<u8>` by value (return it if the caller needs it back) or share an `Arc<Mutex<Vec<u8>>>`"
        );
    }
}
