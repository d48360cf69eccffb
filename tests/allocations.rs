//! One heap allocation per call in steady state, of at most 256 bytes, counted by a global
//! allocator across every thread of the process.
//!
//! The calls are polled by hand with a waker built once, so that the harness allocates nothing
//! itself; the pool is warmed up first, so that its queue has grown to size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use async_wrap::{BlockingPool, async_wrap};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are plain atomics and do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received; `ptr` came from `System.alloc` through `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static POOL: BlockingPool = BlockingPool::with_max_threads(2);

/// Calls measured after the warm-up.
const CALLS: usize = 10_000;

#[async_wrap(executor = POOL)]
fn add_one(n: u64) -> u64 {
    n + 1
}

/// Wakes by raising a flag the polling loop spins on.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

fn run<F: Future>(future: F, flag: &Arc<Flag>, cx: &mut Context<'_>) -> F::Output {
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return value;
        }
        while !flag.0.swap(false, Ordering::Acquire) {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn a_call_costs_one_allocation_of_at_most_256_bytes() {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    for n in 0..2_000 {
        assert_eq!(run(add_one(n), &flag, &mut cx), n + 1);
    }

    let (allocations, bytes) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
    );
    for n in 0..CALLS as u64 {
        assert_eq!(run(add_one(n), &flag, &mut cx), n + 1);
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - allocations;
    let bytes = BYTES.load(Ordering::SeqCst) - bytes;
    // A little slack for the rare allocation of the pool's bookkeeping (a thread's first use of a
    // thread-local, a queue that grows once more).
    assert!(
        allocations <= CALLS + 16,
        "{allocations} allocations for {CALLS} calls: more than one per call"
    );
    let per_call = bytes / CALLS;
    assert!(per_call <= 256, "{per_call} bytes allocated per call");
    println!("{allocations} allocations, {per_call} bytes per call");
}
