//! [`BlockingStream`]: a blocking iterator, pulled on a pool, as a `Stream`.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::call::future::{BlockingFuture, CallError};
use crate::executor::{ExecutorRef, IntoExecutor};
use crate::panic_guard::{Payload, drop_guarded};
use crate::stats::call_site::{self, CallSite};

/// The default number of items one refill pulls: [`BlockingStream`] holds at most two batches.
pub(crate) const DEFAULT_BATCH: usize = 64;

type BoxedIter<T> = Box<dyn Iterator<Item = T> + Send>;

/// A blocking iterator pulled on a pool, as a [`Stream`]: each refill is one job that takes the
/// iterator, pulls up to a batch of items, and gives the iterator back with them.
///
/// - **Order and delivery**: items come in the iterator's order, each exactly once.
/// - **No thread is pinned**: between refills no job runs, so a slow consumer holds no thread;
///   at most two batches are in memory (the one being consumed, and the next one, started when
///   half of the current one is consumed).
/// - **Panics** in `next()` are caught on the worker; the items before it are delivered, then
///   the panic resumes in the consumer, with its payload, where the item would have been.
/// - **A refused refill** (the pool was shut down mid-stream): the items pulled before are
///   delivered first, then the stream panics once, with the message naming the pool that a
///   refused call's future panics with, and ends (`None`) afterwards.
/// - **Dropping** the stream stops the iteration: a refill in progress sees
///   [`is_cancelled`](crate::is_cancelled) turn true between items. The iterator and every item
///   not handed out (pulled, or in a batch the stream has not collected) are dropped on a
///   thread of the pool, never the consumer's, whatever the stream was doing: idle, waiting
///   for room for a refill (it goes on waiting, without the consumer), with a refill queued,
///   running, or finished. A `Drop` that panics is caught there; the pool's thread lives on.
///   The exceptions: a stream never polled has made no iterator, and the function that would
///   make it is dropped where the stream is; and if the pool refuses the job (it was shut
///   down), what it would have dropped is dropped on the thread that learns of the refusal:
///   the one dropping the stream, for a pool shut down before the drop.
///
/// ```
/// use futures::StreamExt;
/// use async_wrap::{stream_on, BlockingPool};
///
/// static DISK: BlockingPool = BlockingPool::with_max_threads(2);
///
/// // Lines of a file, read with blocking I/O on DISK, consumed asynchronously.
/// let lines = stream_on(&DISK, 64, || {
///     use std::io::BufRead;
///     let file = std::fs::File::open("Cargo.toml").unwrap();
///     std::io::BufReader::new(file).lines().map(Result::unwrap)
/// });
/// let count = futures::executor::block_on(lines.count());
/// assert!(count > 10);
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct BlockingStream<T: Send + 'static> {
    executor: ExecutorRef,
    /// Who the refills are: the function (or `iterator`) and how the executor was named.
    site: &'static CallSite,
    batch: usize,
    /// Items pulled and not yet handed out.
    ready: VecDeque<T>,
    source: Source<T>,
}

enum Source<T: Send + 'static> {
    /// The iterator is not made yet: the first refill makes it.
    Unstarted(Box<dyn FnOnce() -> BoxedIter<T> + Send>),
    /// The iterator waits, idle, for the next refill.
    Idle(BoxedIter<T>),
    /// A refill runs, or waits for a thread.
    Refilling(BlockingFuture<Refill<T>>),
    /// The iterator is exhausted.
    Done,
    /// The iterator panicked: the payload, to resume once the items before it are handed out.
    Panicked(Payload),
    /// The executor refused a refill (it was shut down): said, by a panic with the error's
    /// message, once the items pulled before are handed out.
    Refused(CallError),
}

/// What one refill brings back. Dropped uncollected (the stream was dropped), it drops its
/// parts one by one, each `Drop` (user code) caught: a panicking item cannot abort the process
/// by panicking again as the rest unwind.
struct Refill<T> {
    items: Vec<T>,
    /// The iterator, unless it is exhausted or panicked.
    iter: Option<BoxedIter<T>>,
    panic: Option<Payload>,
}

impl<T> Drop for Refill<T> {
    fn drop(&mut self) {
        drop_leftovers(self.iter.take(), std::mem::take(&mut self.items));
        if let Some(payload) = self.panic.take() {
            crate::panic_guard::drop_payload(payload);
        }
    }
}

/// Drops what a dropped stream still owns, the iterator first, then each item, every `Drop`
/// caught.
fn drop_leftovers<T>(iter: Option<BoxedIter<T>>, items: impl IntoIterator<Item = T>) {
    drop_guarded(iter);
    for item in items {
        drop_guarded(item);
    }
}

/// Pulls `iter_fn`'s iterator on `executor`, a batch of `batch` items per job: see
/// [`BlockingStream`]. `iter_fn` itself runs in the first job, so opening a file or a cursor
/// happens on the pool too. Nothing runs until the stream is first polled.
///
/// # Panics
///
/// If `batch` is 0.
pub fn stream_on<M, E, F, I>(executor: E, batch: usize, iter_fn: F) -> BlockingStream<I::Item>
where
    E: IntoExecutor<M>,
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    BlockingStream::new(
        executor.into_executor(),
        &call_site::STREAM_ON,
        batch,
        iter_fn,
    )
}

/// [`stream_on`] on the [default pool](crate::default_pool), in batches of 64 items.
///
/// ```
/// use futures::StreamExt;
///
/// let squares = async_wrap::stream(|| (1..=5_u32).map(|n| n * n));
/// let squares: Vec<u32> = futures::executor::block_on(squares.collect());
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
pub fn stream<F, I>(iter_fn: F) -> BlockingStream<I::Item>
where
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    BlockingStream::new(
        ExecutorRef::default_pool(),
        &call_site::STREAM,
        DEFAULT_BATCH,
        iter_fn,
    )
}

impl<T: Send + 'static> BlockingStream<T> {
    pub(crate) fn new<F, I>(
        executor: ExecutorRef,
        site: &'static CallSite,
        batch: usize,
        iter_fn: F,
    ) -> Self
    where
        F: FnOnce() -> I + Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        assert!(
            batch > 0,
            "async_wrap: a stream's batch must hold at least one item"
        );
        let make: Box<dyn FnOnce() -> BoxedIter<T> + Send> =
            Box::new(move || Box::new(iter_fn().into_iter()) as BoxedIter<T>);
        BlockingStream {
            executor,
            site,
            batch,
            ready: VecDeque::new(),
            source: Source::Unstarted(make),
        }
    }

    /// Starts a refill if the iterator is idle (or not made yet).
    fn refill(&mut self) {
        let start = match std::mem::replace(&mut self.source, Source::Done) {
            Source::Unstarted(make) => Start::Make(make),
            Source::Idle(iter) => Start::Continue(iter),
            other => {
                self.source = other;
                return;
            }
        };
        let batch = self.batch;
        let job = move || {
            let mut items = Vec::with_capacity(batch);
            let pulled = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut iter = match start {
                    // The stream is gone before its first refill started: the function that
                    // would make the iterator is dropped here, unrun.
                    Start::Make(_) if crate::is_cancelled() => return None,
                    Start::Make(make) => make(),
                    Start::Continue(iter) => iter,
                };
                while items.len() < batch {
                    if crate::is_cancelled() {
                        // The stream is gone: drop the iterator here, on the pool's thread.
                        return None;
                    }
                    match iter.next() {
                        Some(item) => items.push(item),
                        None => return None,
                    }
                }
                Some(iter)
            }));
            match pulled {
                Ok(iter) => Refill {
                    items,
                    iter,
                    panic: None,
                },
                Err(payload) => Refill {
                    items,
                    iter: None,
                    panic: Some(payload),
                },
            }
        };
        self.source = Source::Refilling(BlockingFuture::new(self.executor.clone(), self.site, job));
    }
}

enum Start<T> {
    Make(Box<dyn FnOnce() -> BoxedIter<T> + Send>),
    Continue(BoxedIter<T>),
}

impl<T: Send + 'static> Stream for BlockingStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.ready.pop_front() {
                // Half the batch used: pull the next one meanwhile. Submitted now, its result
                // (or its refusal) is collected on a later poll: the item in hand goes out
                // first, whatever happens to the refill.
                if this.ready.len() < this.batch / 2 {
                    this.refill();
                    let _ = this.poll_refill(cx);
                }
                return Poll::Ready(Some(item));
            }
            match &mut this.source {
                Source::Unstarted(_) | Source::Idle(_) => this.refill(),
                Source::Refilling(_) => {
                    if this.poll_refill(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Source::Done => return Poll::Ready(None),
                Source::Panicked(_) | Source::Refused(_) => {
                    // Said once; the stream is over afterwards.
                    match std::mem::replace(&mut this.source, Source::Done) {
                        Source::Panicked(payload) => panic::resume_unwind(payload),
                        Source::Refused(err) => panic!("{err}"),
                        _ => unreachable!("matched above"),
                    }
                }
            }
        }
    }
}

// The stream never pins its fields: it is `Unpin` whatever `T` is.
impl<T: Send + 'static> Unpin for BlockingStream<T> {}

impl<T: Send + 'static> BlockingStream<T> {
    /// Polls the running refill, if any, and takes in what it brought (or its refusal).
    fn poll_refill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Source::Refilling(future) = &mut self.source else {
            return Poll::Ready(());
        };
        match future.poll_checked(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(refill)) => self.take(refill),
            Poll::Ready(Err(err)) => self.source = Source::Refused(err),
        }
        Poll::Ready(())
    }

    fn take(&mut self, mut refill: Refill<T>) {
        self.ready.extend(std::mem::take(&mut refill.items));
        self.source = match (refill.iter.take(), refill.panic.take()) {
            (_, Some(payload)) => Source::Panicked(payload),
            (Some(iter), None) => Source::Idle(iter),
            (None, None) => Source::Done,
        };
    }
}

impl<T: Send + 'static> Drop for BlockingStream<T> {
    fn drop(&mut self) {
        let ready = std::mem::take(&mut self.ready);
        let iter = match std::mem::replace(&mut self.source, Source::Done) {
            // The refill stops at its next item and drops the iterator, and the items it
            // pulled, on its thread; one already finished is handed to the pool to drop.
            Source::Refilling(future) => {
                future.abandon_running();
                None
            }
            Source::Idle(iter) => Some(iter),
            // No iterator was made: the function that would make it is dropped here.
            _ => None,
        };
        if iter.is_some() || !ready.is_empty() {
            // The idle iterator and the items not handed out are dropped on a pool thread too
            // (where a blocking `Drop`, closing a file or a cursor, belongs); if the executor
            // refuses (shut down), here.
            let leftovers = Leftovers { iter, ready };
            crate::call::future::detach(&self.executor, self.site, move || drop(leftovers));
        }
    }
}

/// What a dropped stream hands to its pool to drop: dropped unrun (the pool refused it), it
/// still drops its parts one by one, each `Drop` caught.
struct Leftovers<T> {
    iter: Option<BoxedIter<T>>,
    ready: VecDeque<T>,
}

impl<T> Drop for Leftovers<T> {
    fn drop(&mut self) {
        drop_leftovers(self.iter.take(), std::mem::take(&mut self.ready));
    }
}

impl<T: Send + 'static> fmt::Debug for BlockingStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Unstarted(_) => "not started",
            Source::Idle(_) => "idle",
            Source::Refilling(_) => "refilling",
            Source::Done => "done",
            Source::Panicked(_) => "panicked",
            Source::Refused(_) => "refused",
        };
        f.debug_struct("BlockingStream")
            .field("batch", &self.batch)
            .field("ready", &self.ready.len())
            .field("source", &source)
            .finish_non_exhaustive()
    }
}
