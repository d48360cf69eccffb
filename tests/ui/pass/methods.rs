//! Methods taking `self` by value or `self: Arc<Self>`, and associated functions.

use std::sync::Arc;

use async_wrap::async_wrap;

#[derive(Clone)]
struct Store {
    items: Vec<u32>,
}

impl Store {
    #[async_wrap]
    fn new(n: u32) -> Self {
        Store {
            items: (0..n).collect(),
        }
    }

    #[async_wrap]
    fn total(self) -> u32 {
        self.items.iter().sum()
    }

    #[async_wrap]
    fn shared_len(self: Arc<Self>) -> usize {
        Self::count(&self.items)
    }

    #[async_wrap]
    fn take(mut self, extra: u32) -> Vec<u32> {
        self.items.push(extra);
        self.items
    }

    fn count(items: &[u32]) -> usize {
        items.len()
    }
}

struct Wrapper<T>(T);

impl<T: Send + 'static + Clone> Wrapper<T> {
    #[async_wrap]
    fn into_inner(self) -> T {
        self.0
    }
}

fn main() {
    futures::executor::block_on(async {
        let store = Store::new(4).await;
        assert_eq!(store.clone().total().await, 6);
        assert_eq!(Arc::new(store.clone()).shared_len().await, 4);
        assert_eq!(store.take(9).await, vec![0, 1, 2, 3, 9]);
        assert_eq!(Wrapper(7u8).into_inner().await, 7);
    });
}
