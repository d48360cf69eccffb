//! [`Errors`]: every mistake found in one attribute, each at the tokens it is about, reported
//! together (one accumulator for the options, the signature and the item).

use quote::ToTokens;

/// The errors found so far, combined into one `syn::Error` (which keeps each one's span).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds `err`.
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// Adds an error about `tokens`.
    pub(crate) fn fail(&mut self, tokens: &dyn ToTokens, message: impl Into<String>) {
        self.push(syn::Error::new_spanned(tokens, message.into()));
    }

    /// Adds the error of `result`, if any.
    pub(crate) fn check(&mut self, result: syn::Result<()>) {
        if let Err(err) = result {
            self.push(err);
        }
    }

    /// Whether no error has been found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The errors as one, if there is any.
    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}
