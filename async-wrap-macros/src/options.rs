//! The attribute's options: `#[async_wrap(executor = EXPR, sync = NAME, crate = PATH,
//! clone_self, to_owned, stream, batch = N, state, process)]`, and how a method's options
//! combine with those of its `impl` block.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path};

use crate::errors::Errors;

/// Every option, in the order error messages list them.
const OPTIONS: &[&str] = &[
    "executor",
    "sync",
    "crate",
    "clone_self",
    "to_owned",
    "stream",
    "batch",
    "state",
    "process",
];

/// The parsed options. Each is `None` when not given.
#[derive(Clone, Default)]
pub(crate) struct Options {
    /// `executor = EXPR`: where the jobs run (default: the default pool).
    pub(crate) executor: Option<Expr>,
    /// `sync = NAME`: also emit the original synchronous function as `NAME`.
    pub(crate) sync: Option<Ident>,
    /// `sync = "PATTERN"`: the same, named by `PATTERN` with `{}` replaced by the function's
    /// name (the form an `impl` block takes); [`Options::name_twin`] turns it into `sync`.
    pub(crate) sync_pattern: Option<LitStr>,
    /// `crate = PATH`: the path of the `async_wrap` crate (default `::async_wrap`).
    pub(crate) krate: Option<Path>,
    /// `clone_self`: a `&self` method clones `self` into the job.
    pub(crate) clone_self: Option<Path>,
    /// `to_owned`: `&T` arguments are copied to `T::Owned` at the call.
    pub(crate) to_owned: Option<Path>,
    /// `stream`: the function returns an iterator, pulled on the pool as a stream.
    pub(crate) stream: Option<Path>,
    /// `batch = N`: items per refill of a `stream`.
    pub(crate) batch: Option<Expr>,
    /// `state`: the first argument, `&mut S`, is the thread's value of the `StatefulPool` that
    /// `executor` names; the caller does not pass it.
    pub(crate) state: Option<Path>,
    /// `process`: the body runs in a worker process of the `ProcessPool` that `executor`
    /// names; arguments and result cross serialized.
    pub(crate) process: Option<Path>,
    /// Not an option: the type whose method this is, set for the methods of an `impl` block
    /// under the attribute (call sites are named `module::Type::method`).
    pub(crate) owner: Option<String>,
}

/// What `executor = EXPR` names.
#[derive(Clone, Copy)]
pub(crate) enum ExecutorOption<'a> {
    /// One of the runtime's adapters, by name: `tokio` or `rayon`.
    Adapter(&'a Ident),
    /// Any expression giving an executor.
    Expr(&'a Expr),
}

impl Options {
    /// The executor option, with the adapter names told apart from expressions. A bare `tokio`
    /// or `rayon` names the adapter (write `self::tokio` for an item of that name).
    pub(crate) fn executor(&self) -> Option<ExecutorOption<'_>> {
        let expr = self.executor.as_ref()?;
        if let Expr::Path(path) = expr {
            if let Some(ident) = path.path.get_ident() {
                if path.qself.is_none() && (ident == "tokio" || ident == "rayon") {
                    return Some(ExecutorOption::Adapter(ident));
                }
            }
        }
        Some(ExecutorOption::Expr(expr))
    }
}

impl Options {
    /// Parses the attribute's arguments. Every mistake is reported, not only the first; the
    /// options that did parse are returned beside the errors, so that the fallback expansion
    /// still knows, say, that the function is a `stream`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = Options::default();
        let parser = syn::meta::parser(|meta| {
            if let Err(err) = options.parse_one(&meta) {
                errors.push(err);
                // Skip what is left of this option so the next ones are still checked.
                if meta.input.peek(syn::Token![=]) {
                    let _ = meta.input.parse::<syn::Token![=]>();
                    let _ = meta.input.parse::<Expr>();
                }
            }
            Ok(())
        });
        let parsed = parser.parse2(args);
        errors.check(parsed);
        options
    }

    fn parse_one(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = key(meta);
        self.parse_key(&key, meta)
    }

    /// Parses the option `key` at `meta`. An unknown key near a known one (a typo) is reported,
    /// then read as that option, so that what the option does still applies and its absence
    /// causes no second error (`clone_slef` on a `&self` method is one error, not two).
    fn parse_key(&mut self, key: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        match key {
            "executor" => {
                let expr: Expr = value(meta, "executor = POOL")?.parse()?;
                if let Expr::Lit(lit) = &expr {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "`executor` takes an expression that denotes an executor (a `static` \
                         pool, `self.pool`, `pool()`), not a literal: write the pool's name \
                         without quotes, such as `executor = DB`",
                    ));
                }
                set_once(&mut self.executor, expr, meta)
            }
            "sync" => {
                let input = value(meta, "sync = my_function_blocking")?;
                if input.peek(LitStr) {
                    let pattern: LitStr = input.parse()?;
                    check_pattern(&pattern)?;
                    if self.sync.is_some() {
                        return Err(twice(meta));
                    }
                    return set_once(&mut self.sync_pattern, pattern, meta);
                }
                let name: Ident = input.parse()?;
                if self.sync_pattern.is_some() {
                    return Err(twice(meta));
                }
                set_once(&mut self.sync, name, meta)
            }
            "crate" => {
                let path =
                    value(meta, "crate = ::my_crate::async_wrap")?.call(Path::parse_mod_style)?;
                set_once(&mut self.krate, path, meta)
            }
            "clone_self" => flag(&mut self.clone_self, meta),
            "to_owned" => flag(&mut self.to_owned, meta),
            "stream" => flag(&mut self.stream, meta),
            "state" => flag(&mut self.state, meta),
            "process" => flag(&mut self.process, meta),
            "batch" => {
                let batch: Expr = value(meta, "batch = 256")?.parse()?;
                set_once(&mut self.batch, batch, meta)
            }
            _ => {
                let (err, near) = unknown_option(meta);
                if let Some(near) = near {
                    // Its own errors (a missing value, a duplicate) would repeat this one.
                    let _ = self.parse_key(near, meta);
                }
                Err(err)
            }
        }
    }
}

impl Options {
    /// These options for one method of an `impl` block: the method's own options where it
    /// gives them, the block's otherwise.
    pub(crate) fn for_method(&self, method: Options, owner: String) -> Options {
        let block = self.clone();
        Options {
            executor: method.executor.or(block.executor),
            // A block names twins by a pattern only (its `sync = NAME` is refused).
            sync: method.sync,
            sync_pattern: method.sync_pattern.or(block.sync_pattern),
            krate: method.krate.or(block.krate),
            clone_self: method.clone_self.or(block.clone_self),
            to_owned: method.to_owned.or(block.to_owned),
            stream: method.stream.or(block.stream),
            batch: method.batch.or(block.batch),
            state: method.state.or(block.state),
            process: method.process.or(block.process),
            owner: Some(owner),
        }
    }

    /// Resolves `sync = "PATTERN"` for the function `ident`: the twin's name, spanned on the
    /// pattern (a method's own `sync = NAME` wins over its block's pattern).
    pub(crate) fn name_twin(&mut self, ident: &Ident, errors: &mut Errors) {
        if self.sync.is_some() {
            return;
        }
        if let Some(pattern) = &self.sync_pattern {
            // `r#match` under `{}_blocking` is `match_blocking`; a name the pattern makes a
            // keyword (`r{}` on `ef`) or a raw identifier (`r#{}`) is parsed as written.
            let written = ident.to_string();
            let bare = written.strip_prefix("r#").unwrap_or(&written);
            let name = pattern.value().replace("{}", bare);
            match syn::parse_str::<Ident>(&name) {
                Ok(_) if name.strip_prefix("r#").unwrap_or(&name) == bare => {
                    errors.push(syn::Error::new(
                        pattern.span(),
                        format!(
                            "this `sync` pattern names the twin of `{written}` `{name}`, the \
                             function's own name: add to the name, such as `\"{{}}_blocking\"`"
                        ),
                    ));
                }
                Ok(mut twin) => {
                    twin.set_span(pattern.span());
                    self.sync = Some(twin);
                }
                Err(_) => errors.push(syn::Error::new(
                    pattern.span(),
                    format!(
                        "this `sync` pattern names the twin of `{written}` `{name}`, which is not \
                         a function name (a keyword?): change the pattern, or give this \
                         function its own `#[async_wrap(sync = NAME)]`"
                    ),
                )),
            }
        }
    }
}

/// A `sync = "PATTERN"` must hold `{}` once and make a function name of any function's name.
fn check_pattern(pattern: &LitStr) -> syn::Result<()> {
    let value = pattern.value();
    let made = value.replace("{}", "f");
    if value == "{}" {
        return Err(syn::Error::new(
            pattern.span(),
            "`sync = \"{}\"` names each twin as its function, which then has two definitions: \
             add to the name, such as `sync = \"{}_blocking\"`",
        ));
    }
    if value.matches("{}").count() != 1 || syn::parse_str::<Ident>(&made).is_err() {
        return Err(syn::Error::new(
            pattern.span(),
            "a `sync` pattern names each twin from its function's name: write `{}` once, where \
             the name goes, such as `sync = \"{}_blocking\"` (or name one twin: `sync = \
             my_function_blocking`)",
        ));
    }
    Ok(())
}

/// The value after `=`, or an error that shows how the option is written.
fn value<'a>(
    meta: &ParseNestedMeta<'a>,
    example: &str,
) -> syn::Result<syn::parse::ParseStream<'a>> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()
    } else {
        let key = key(meta);
        Err(syn::Error::new(
            meta.path.span(),
            format!("the option `{key}` needs a value: `{example}`"),
        ))
    }
}

/// The option's name as written, for messages.
fn key(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A flag option: present or not, with no value.
fn flag(slot: &mut Option<Path>, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
        let key = key(meta);
        return Err(syn::Error::new(
            meta.path.span(),
            format!("the option `{key}` takes no value: write `{key}` alone"),
        ));
    }
    set_once(slot, meta.path.clone(), meta)
}

/// Stores `value` in `slot`, or reports the option as given twice.
fn set_once<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if slot.replace(value).is_some() {
        return Err(twice(meta));
    }
    Ok(())
}

/// The error for an option given twice.
fn twice(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let key = key(meta);
    syn::Error::new(
        meta.path.span(),
        format!("the option `{key}` is given twice; keep one"),
    )
}

/// An unknown option, and the option it is near enough to be a typo of. A kebab-case key
/// (`clone-self`) is read whole, so that the message names it and suggests the option it was
/// meant to be, and its tail is not reported again.
fn unknown_option(meta: &ParseNestedMeta<'_>) -> (syn::Error, Option<&'static str>) {
    let mut key = quote::ToTokens::to_token_stream(&meta.path)
        .to_string()
        .replace(' ', "");
    let mut written = quote::ToTokens::to_token_stream(&meta.path);
    while meta.input.peek(syn::Token![-]) && meta.input.peek2(Ident::peek_any) {
        let dash = meta.input.parse::<syn::Token![-]>();
        let word = meta.input.call(Ident::parse_any);
        let (Ok(dash), Ok(word)) = (dash, word) else {
            break;
        };
        key.push('-');
        key.push_str(&word.to_string());
        quote::ToTokens::to_tokens(&dash, &mut written);
        quote::ToTokens::to_tokens(&word, &mut written);
    }
    let known = OPTIONS
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if key == "skip" {
        let err = syn::Error::new_spanned(
            written,
            "`skip` leaves a method of an `impl` block under `#[async_wrap]` as written; on a \
             function of its own, remove the attribute instead",
        );
        return (err, None);
    }
    let near = closest(&key.replace('-', "_"));
    let message = match near {
        Some(near) => {
            format!("unknown option `{key}`: did you mean `{near}`? The options are {known}")
        }
        None => format!("unknown option `{key}`: the options are {known}"),
    };
    (syn::Error::new_spanned(written, message), near)
}

/// The known option nearest to `key`, if it is near enough to be a typo.
fn closest(key: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .map(|name| (edit_distance(key, name), *name))
        .filter(|(distance, name)| *distance <= name.len() / 3 + 1)
        .min()
        .map(|(_, name)| name)
}

/// Whether `word` is the name of an option.
pub(crate) fn is_option(word: &str) -> bool {
    OPTIONS.contains(&word)
}

/// Levenshtein distance between two short strings.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// The options, asserting that they parsed without error.
    fn parsed(args: TokenStream) -> Options {
        let mut errors = Errors::default();
        let options = Options::parse(args, &mut errors);
        assert!(errors.is_empty(), "unexpected errors");
        options
    }

    fn message(args: TokenStream) -> String {
        let mut errors = Errors::default();
        Options::parse(args, &mut errors);
        match errors.into_error() {
            None => String::from("ok"),
            Some(err) => err
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    #[test]
    fn accepts_every_option_in_any_order() {
        let options = parsed(quote!(crate = ::aw, sync = slow_sync, executor = IO));
        assert!(options.executor.is_some());
        assert_eq!(options.sync.unwrap().to_string(), "slow_sync");
        assert!(options.krate.is_some());
        assert!(parsed(quote!()).executor.is_none());
    }

    #[test]
    fn typo_suggests_the_closest_option() {
        assert_eq!(
            message(quote!(exector = IO)),
            "unknown option `exector`: did you mean `executor`? The options are `executor`, \
             `sync`, `crate`, `clone_self`, `to_owned`, `stream`, `batch`, `state`, `process`"
        );
        assert_eq!(
            message(quote!(threads = 2)),
            "unknown option `threads`: the options are `executor`, `sync`, `crate`, \
             `clone_self`, `to_owned`, `stream`, `batch`, `state`, `process`"
        );
    }

    #[test]
    fn duplicate_and_missing_values_are_all_reported() {
        assert_eq!(
            message(quote!(executor = A, executor = B, sync)),
            "the option `executor` is given twice; keep one | \
             the option `sync` needs a value: `sync = my_function_blocking`"
        );
    }

    #[test]
    fn flags_take_no_value() {
        let options = parsed(quote!(clone_self, to_owned));
        assert!(options.clone_self.is_some() && options.to_owned.is_some());
        assert_eq!(
            message(quote!(clone_self = true, to_owned, to_owned)),
            "the option `clone_self` takes no value: write `clone_self` alone | \
             the option `to_owned` is given twice; keep one"
        );
        assert_eq!(
            message(quote!(cloneself)),
            "unknown option `cloneself`: did you mean `clone_self`? The options are `executor`, \
             `sync`, `crate`, `clone_self`, `to_owned`, `stream`, `batch`, `state`, `process`"
        );
    }

    #[test]
    fn adapter_names_are_told_apart_from_expressions() {
        let adapter = |args| match parsed(args).executor() {
            Some(ExecutorOption::Adapter(name)) => Some(name.to_string()),
            _ => None,
        };
        assert_eq!(adapter(quote!(executor = tokio)).as_deref(), Some("tokio"));
        assert_eq!(adapter(quote!(executor = rayon)).as_deref(), Some("rayon"));
        assert_eq!(adapter(quote!(executor = self::tokio)), None);
        assert_eq!(adapter(quote!(executor = TOKIO)), None);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("executor", "executor"), 0);
        assert_eq!(edit_distance("exector", "executor"), 1);
        assert_eq!(edit_distance("snyc", "sync"), 2);
        assert_eq!(edit_distance("", "crate"), 5);
    }

    #[test]
    fn kebab_case_is_read_whole_and_corrected() {
        assert_eq!(
            message(quote!(clone - self)),
            "unknown option `clone-self`: did you mean `clone_self`? The options are `executor`, \
             `sync`, `crate`, `clone_self`, `to_owned`, `stream`, `batch`, `state`, `process`"
        );
        // The options after it are still read.
        let mut errors = Errors::default();
        let options = Options::parse(quote!(to - owned, executor = IO), &mut errors);
        assert!(!errors.is_empty() && options.executor.is_some());
    }

    #[test]
    fn a_literal_executor_is_one_error() {
        assert_eq!(
            message(quote!(executor = "db")),
            "`executor` takes an expression that denotes an executor (a `static` pool, \
             `self.pool`, `pool()`), not a literal: write the pool's name without quotes, such \
             as `executor = DB`"
        );
    }

    #[test]
    fn the_options_that_parse_are_kept_beside_the_errors() {
        let mut errors = Errors::default();
        let options = Options::parse(quote!(stream, exector = IO, batch = 8), &mut errors);
        assert!(!errors.is_empty());
        assert!(options.stream.is_some() && options.batch.is_some());
    }
}
