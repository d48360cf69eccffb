//! Tests of the whole attribute over `proc_macro2` tokens: it never panics whatever it is given,
//! and its output for representative inputs is pinned.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::quote;

use crate::expand_attribute;

/// Valid attribute uses, the seeds of the mutations.
fn corpus() -> Vec<(TokenStream, TokenStream)> {
    vec![
        (
            quote!(),
            quote!(
                fn plain(n: u64) -> u64 {
                    n * 2
                }
            ),
        ),
        (
            quote!(executor = IO),
            quote!(
                pub fn slow<T: Send + 'static>(t: T) -> T
                where
                    T: Clone,
                {
                    t
                }
            ),
        ),
        (
            quote!(sync = f_blocking, crate = ::aw),
            quote!(
                fn f((a, b): (u8, u8), mut c: u8, _: String) -> u8 {
                    f((1, 2), 3, String::new()) + a + b + c
                }
            ),
        ),
        (
            quote!(clone_self),
            quote!(
                fn get(&self, key: String) -> Option<u32> {
                    self.map.get(&key).copied()
                }
            ),
        ),
        (
            quote!(to_owned, executor = tokio),
            quote!(
                unsafe fn parse(text: &str, raw: &[u8]) -> usize {
                    text.len() + raw.len()
                }
            ),
        ),
        (
            quote!(executor = self.pool),
            quote!(
                fn run(self: Arc<Self>) -> impl Iterator<Item = u8> {
                    self.items.clone().into_iter()
                }
            ),
        ),
        (
            quote!(stream, batch = 8, executor = SHARDS[(key % 4) as usize]),
            quote!(
                fn lines(
                    self: &Arc<Self>,
                    key: u64,
                ) -> io::Result<impl Iterator<Item = String> + Send + 'static> {
                    Ok(self.open(key)?.lines())
                }
            ),
        ),
        (
            quote!(clone - self, exector = "db"),
            quote!(
                async fn query(
                    &self,
                    text: &str,
                    path: impl AsRef<Path>,
                ) -> impl IntoIterator<Item = u8> {
                    text.bytes()
                }
            ),
        ),
    ]
}

/// A small, seeded xorshift generator: the fuzz run is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// A token that often matters to the macro.
fn interesting(rng: &mut Rng) -> TokenTree {
    const WORDS: &[&str] = &[
        "self",
        "Self",
        "async",
        "const",
        "unsafe",
        "extern",
        "fn",
        "impl",
        "mut",
        "executor",
        "sync",
        "crate",
        "clone_self",
        "to_owned",
        "tokio",
        "rayon",
        "static",
        "struct",
        "where",
        "dyn",
        "move",
        "return",
    ];
    const PUNCTS: &[char] = &[
        '&', ',', '=', ':', ';', '<', '>', '-', '!', '#', '\'', '.', '*', '?', '@', '|',
    ];
    match rng.below(5) {
        0 | 1 => TokenTree::Ident(Ident::new(WORDS[rng.below(WORDS.len())], Span::call_site())),
        2 => TokenTree::Punct(Punct::new(
            PUNCTS[rng.below(PUNCTS.len())],
            if rng.below(2) == 0 {
                Spacing::Alone
            } else {
                Spacing::Joint
            },
        )),
        3 => TokenTree::Literal(match rng.below(3) {
            0 => Literal::u64_unsuffixed(rng.next() % 100),
            1 => Literal::string("text"),
            _ => Literal::character('x'),
        }),
        _ => {
            let delimiter = [
                Delimiter::Parenthesis,
                Delimiter::Brace,
                Delimiter::Bracket,
                Delimiter::None,
            ][rng.below(4)];
            TokenTree::Group(Group::new(delimiter, TokenStream::new()))
        }
    }
}

/// One random edit somewhere in `tokens`, inside groups too; the result is always balanced.
fn mutate(tokens: TokenStream, rng: &mut Rng) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    let descend = trees.iter().any(|tree| matches!(tree, TokenTree::Group(_))) && rng.below(2) == 0;
    if descend {
        let groups: Vec<usize> = (0..trees.len())
            .filter(|&i| matches!(trees[i], TokenTree::Group(_)))
            .collect();
        let index = groups[rng.below(groups.len())];
        if let TokenTree::Group(group) = &trees[index] {
            let mut inner = Group::new(group.delimiter(), mutate(group.stream(), rng));
            inner.set_span(group.span());
            trees[index] = TokenTree::Group(inner);
        }
        return trees.into_iter().collect();
    }
    let at = rng.below(trees.len() + 1);
    match rng.below(4) {
        0 if at < trees.len() => {
            trees.remove(at);
        }
        1 if at < trees.len() => {
            let copy = trees[at].clone();
            trees.insert(at, copy);
        }
        2 if at + 1 < trees.len() => trees.swap(at, at + 1),
        _ => trees.insert(at, interesting(rng)),
    }
    trees.into_iter().collect()
}

/// Random token soup, of bounded depth.
fn arbitrary(rng: &mut Rng, depth: usize) -> TokenStream {
    (0..rng.below(12))
        .map(|_| match interesting(rng) {
            TokenTree::Group(group) if depth > 0 => {
                TokenTree::Group(Group::new(group.delimiter(), arbitrary(rng, depth - 1)))
            }
            other => other,
        })
        .collect()
}

/// Expands, failing the test with the input if the macro panics, and checks the output: when
/// the item is a well-formed item, the output must be well-formed items too (the expansion, or
/// the original item beside `compile_error!`s).
fn check(args: &TokenStream, item: &TokenStream) {
    let output = panic::catch_unwind(AssertUnwindSafe(|| {
        expand_attribute(args.clone(), item.clone())
    }))
    .unwrap_or_else(|_| panic!("the macro panicked on\n  args: {args}\n  item: {item}"));
    if syn::parse2::<syn::Item>(item.clone()).is_ok() {
        if let Err(err) = syn::parse2::<syn::File>(output.clone()) {
            panic!(
                "unparsable output ({err}) for\n  args: {args}\n  item: {item}\n  output: {output}"
            );
        }
    }
}

/// How many mutated inputs each seed gets; `ASYNC_WRAP_FUZZ_ITERATIONS` raises it for a longer
/// run (`.ci/run` uses the default).
fn iterations() -> usize {
    std::env::var("ASYNC_WRAP_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

#[test]
fn never_panics_on_mutated_inputs() {
    // The macro's own panics would print through the hook; a failure reports its input instead.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (args, item) in corpus() {
        check(&args, &item);
        let (mut args_now, mut item_now) = (args.clone(), item.clone());
        for step in 0..iterations() {
            if step % 16 == 0 {
                (args_now, item_now) = (args.clone(), item.clone());
            }
            if rng.below(3) == 0 {
                args_now = mutate(args_now, &mut rng);
            } else {
                item_now = mutate(item_now, &mut rng);
            }
            check(&args_now, &item_now);
        }
    }
}

#[test]
fn never_panics_on_arbitrary_tokens() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..iterations() {
        let args = arbitrary(&mut rng, 3);
        let item = arbitrary(&mut rng, 3);
        check(&args, &item);
        let fn_item = quote!(
            fn f() {}
        );
        check(&args, &fn_item);
    }
}

/// Formats tokens with rustfmt, so that snapshots are readable and diffs are small.
fn rustfmt(tokens: &TokenStream) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned()))
        .args(["--edition", "2024"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the expansion snapshots need rustfmt (rustup component add rustfmt)");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(tokens.to_string().as_bytes())
        .expect("rustfmt reads its input");
    let output = child.wait_with_output().expect("rustfmt runs");
    assert!(output.status.success(), "rustfmt failed on: {tokens}");
    String::from_utf8(output.stdout).expect("rustfmt writes UTF-8")
}

/// Compares the expansion of `item` under `#[async_wrap(args)]` with
/// `tests/expand/{name}.expanded.rs`; `ASYNC_WRAP_BLESS=1` writes the snapshot instead.
fn snapshot(name: &str, args: TokenStream, item: TokenStream) {
    let input = rustfmt(&quote!(#[async_wrap(#args)] #item));
    let expanded = rustfmt(&expand_attribute(args, item));
    let mut text = format!("// {name}: the expansion of\n//\n");
    for line in input.lines() {
        text.push_str("// ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("//\n// is:\n\n");
    text.push_str(&expanded);
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "expand",
        &format!("{name}.expanded.rs"),
    ]
    .iter()
    .collect();
    if std::env::var_os("ASYNC_WRAP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("creates the folder");
        std::fs::write(&path, &text).expect("writes the snapshot");
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot at {}; run with ASYNC_WRAP_BLESS=1",
            path.display()
        )
    });
    assert!(
        pinned == text,
        "the expansion of `{name}` changed; review it and run with ASYNC_WRAP_BLESS=1 to accept:\n{text}"
    );
}

#[test]
fn expansion_of_a_free_function() {
    snapshot(
        "free_function",
        quote!(executor = IO),
        quote! {
            /// Doubles `n`.
            #[inline]
            pub fn slow_double(n: u64) -> u64 {
                n * 2
            }
        },
    );
}

#[test]
fn expansion_of_a_recursive_function_with_patterns() {
    snapshot(
        "recursive_patterns",
        quote!(),
        quote! {
            fn walk((depth, width): (u32, u32), mut acc: Vec<u32>, _: String) -> Vec<u32> {
                acc.push(width);
                if depth == 0 { acc } else { walk((depth - 1, width * 2), acc, String::new()) }
            }
        },
    );
}

#[test]
fn expansion_of_a_sync_twin() {
    snapshot(
        "sync_twin",
        quote!(sync = checksum_blocking),
        quote! {
            pub fn checksum<T: AsRef<[u8]> + Send + 'static>(data: T) -> u32 {
                data.as_ref().iter().map(|&b| u32::from(b)).sum()
            }
        },
    );
}

#[test]
fn expansion_of_an_impl_block() {
    snapshot(
        "impl_block",
        quote!(executor = DB, sync = "{}_blocking"),
        quote! {
            impl Store {
                pub fn get(self: Arc<Self>, key: u32) -> Option<String> {
                    self.rows.get(&key).cloned()
                }
                #[async_wrap(skip)]
                pub fn open() -> Arc<Self> {
                    Arc::default()
                }
                #[async_wrap(executor = OTHER)]
                fn count() -> usize {
                    0
                }
            }
        },
    );
}

#[test]
fn expansion_of_a_trait() {
    snapshot(
        "trait",
        quote!(),
        quote! {
            pub trait Catalog: Send + Sync {
                fn title(&self, id: u32) -> Option<String>;
                #[async_wrap(stream)]
                fn ids(&self) -> impl Iterator<Item = u32> + Send + 'static;
                #[async_wrap(skip)]
                fn name(&self) -> &'static str;
            }
        },
    );
}

#[test]
fn expansion_of_a_cloned_receiver() {
    snapshot(
        "clone_self",
        quote!(clone_self, executor = self.pool),
        quote! {
            pub fn lookup(&self, key: String) -> Option<u32> {
                self.map.get(&key).copied()
            }
        },
    );
}

#[test]
fn expansion_of_copied_arguments_on_an_adapter() {
    snapshot(
        "to_owned_tokio",
        quote!(to_owned, executor = tokio),
        quote! {
            pub unsafe fn parse(text: &str, path: &std::path::Path) -> usize {
                text.len() + path.as_os_str().len()
            }
        },
    );
}

#[test]
fn expansion_of_a_stream() {
    snapshot(
        "stream",
        quote!(stream, batch = 256, executor = DISK),
        quote! {
            /// The lines of a file.
            pub fn lines(path: std::path::PathBuf) -> impl Iterator<Item = String> + Send + 'static {
                use std::io::BufRead;
                std::io::BufReader::new(std::fs::File::open(path).unwrap()).lines().map(Result::unwrap)
            }
        },
    );
}

#[test]
fn expansion_of_a_fallible_stream_on_a_shared_receiver() {
    snapshot(
        "try_stream_arc_self",
        quote!(stream, executor = self.shards[(key % 4) as usize]),
        quote! {
            pub fn lines(self: &Arc<Self>, key: u64) -> std::io::Result<impl Iterator<Item = String> + Send + 'static> {
                use std::io::BufRead;
                let file = std::fs::File::open(self.path(key))?;
                Ok(std::io::BufReader::new(file).lines().map_while(Result::ok))
            }
        },
    );
}

#[test]
fn expansion_of_a_refused_function() {
    // The errors, then the function with its async signature and a body that cannot run.
    snapshot(
        "refused",
        quote!(exector = IO, sync = query_blocking),
        quote! {
            /// Looks `id` up.
            pub fn query<T: Send + 'static>(&self, (a, b): (u32, u32), name: &str, tag: T) -> impl Iterator<Item = u8> {
                name.bytes()
            }
        },
    );
}

#[test]
fn expansion_of_a_process_function() {
    // The original function and the worker's entry nested in the shim, the key registered, each
    // type checked once where it was written, the arguments encoded at the call.
    snapshot(
        "process",
        quote!(executor = SANDBOX, process),
        quote! {
            /// Parses a document in a worker process.
            pub fn parse((x, y): (u32, u32), text: String) -> Vec<u32> {
                vec![x, y, text.len() as u32]
            }
        },
    );
}
