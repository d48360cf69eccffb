//! `clone_self` runs a `&self` method on a clone; `to_owned` copies `&T` arguments at the call.

// `(*self).words` on purpose: the body of a `clone_self` method may write `*self`.
#![allow(clippy::explicit_auto_deref)]

use std::collections::HashMap;
use std::path::Path;

use async_wrap::async_wrap;

#[derive(Clone)]
struct Index {
    words: HashMap<String, u32>,
}

impl Index {
    #[async_wrap(clone_self)]
    fn count(&self, word: String) -> u32 {
        // `self` means the same as in the `&self` method: `*self`, `match self`, fields.
        let Index { words } = self;
        let direct = *self.words.get(&word).unwrap_or(&0);
        assert_eq!(words.len(), (*self).words.len());
        direct
    }

    #[async_wrap(clone_self, to_owned, sync = count_both_blocking)]
    fn count_both(&self, a: &str, b: &str) -> u32 {
        self.words.get(a).copied().unwrap_or(0) + self.words.get(b).copied().unwrap_or(0)
    }
}

#[async_wrap(to_owned)]
fn describe(name: &str, bytes: &[u8], path: &Path, id: u32) -> String {
    format!("{name}:{}:{}:{id}", bytes.len(), path.display())
}

#[async_wrap(to_owned)]
fn recursive_len(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        1 + recursive_len(&text[1..])
    }
}

/// # Safety
///
/// `ptr_value` must be... anything: this only shows that `unsafe fn` stays `unsafe`.
#[async_wrap]
unsafe fn unsafe_double(value: u32) -> u32 {
    value * 2
}

fn main() {
    let index = Index {
        words: HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 3)]),
    };
    futures::executor::block_on(async {
        let (name, bytes) = (String::from("n"), vec![1u8, 2]);
        let future = describe(&name, &bytes, Path::new("/tmp"), 7);
        drop((name, bytes)); // copied at the call: the future does not borrow them
        assert_eq!(future.await, "n:2:/tmp:7");
        assert_eq!(recursive_len("four").await, 4);
        assert_eq!(index.count("a".to_owned()).await, 2);
        assert_eq!(index.count_both("a", "b").await, 5);
        assert_eq!(index.count_both_blocking("a", "b"), 5);
        // SAFETY: no precondition.
        assert_eq!(unsafe { unsafe_double(4) }.await, 8);
    });
}
