//! The shapes of types that both the check (`validate`) and the expansion (`expand`) look for
//! in a signature: a `Result` type's `T`, and a shared reference that `to_owned` copies.

use syn::{GenericArgument, Lifetime, PathArguments, Type};

/// A `Result<T, ...>` type, by any path (`io::Result<T>`, `anyhow::Result<T>`).
pub(crate) struct ResultType<'a> {
    /// The user's path to it.
    pub(crate) path: &'a syn::TypePath,
    /// `T`.
    pub(crate) ok: &'a Type,
}

/// `ty` as a `Result` type, if it is one.
pub(crate) fn result_ok_type(ty: &Type) -> Option<ResultType<'_>> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    if path.qself.is_some() || last.ident != "Result" {
        return None;
    }
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ResultType { path, ok }),
        _ => None,
    }
}

/// Whether an argument of this type is copied at the call under the `to_owned` option: a
/// shared reference that is not `'static`.
pub(crate) fn copied_reference(ty: &Type) -> Option<&syn::TypeReference> {
    match ty {
        Type::Reference(reference)
            if reference.mutability.is_none()
                && !reference.lifetime.as_ref().is_some_and(is_static) =>
        {
            Some(reference)
        }
        _ => None,
    }
}

/// `'static`.
pub(crate) fn is_static(lifetime: &Lifetime) -> bool {
    lifetime.ident == "static"
}
