use async_wrap::async_wrap;

#[derive(Clone)]
struct Counter(u64);

impl Counter {
    // Even with `clone_self`, `&mut self` is refused: the changes would be made to a clone.
    #[async_wrap(clone_self)]
    fn bump(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

fn main() {}
