//! [`Unblock`]: a blocking `Read` or `Write` as an `AsyncRead` or `AsyncWrite`, on any pool.

use std::fmt;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use crate::call::future::{BlockingFuture, CallError};
use crate::executor::{ExecutorRef, IntoExecutor};
use crate::io::exit_wait::PendingWrite;
use crate::panic_guard::drop_guarded;

/// The default buffer size of [`Unblock`]: 64 KiB.
pub(crate) const DEFAULT_BUFFER: usize = 64 * 1024;

/// One blocking call on the inner value, run in a job: reads into the buffer, or writes it.
type Call<T> = fn(&mut T, &mut Vec<u8>) -> io::Result<()>;

/// Where the inner value and the buffer wait for the job that uses them: the job takes them
/// when it starts, so that a job the executor refuses (or drops unrun) leaves them here, to be
/// taken back. The lock is never held while user code runs.
type Parcel<T> = Arc<Mutex<Option<(Box<T>, Vec<u8>)>>>;

fn unpack<T>(parcel: &Parcel<T>) -> Option<(Box<T>, Vec<u8>)> {
    parcel.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn pack<T>(parcel: &Parcel<T>, inner: Box<T>, buffer: Vec<u8>) {
    *parcel.lock().unwrap_or_else(PoisonError::into_inner) = Some((inner, buffer));
}

/// A blocking reader or writer whose calls run on a pool: [`AsyncRead`] for a
/// `Read`, [`AsyncWrite`] for a `Write` (and tokio's `AsyncRead` / `AsyncWrite` with
/// the `tokio` feature). Use one `Unblock` for reading or for writing, not both at once. For an
/// iterator, use [`stream_on`](crate::stream_on).
///
/// - **Reading**: one job fills the buffer with one `read` call; the data is then handed out
///   without a thread. End of input is a read of 0 bytes, as usual.
/// - **Writing**: `poll_write` copies into the buffer without a thread; a full buffer, `flush`
///   and `close` each run one job that writes all of it (`write_all`); `flush` and `close` also
///   flush the inner writer. After `close().await`, everything written is in the writer.
/// - **Errors** of the inner reader or writer are returned by the call that meets them (a
///   write's error by the next `write`, `flush` or `close`): never lost, never a panic.
/// - **Refused calls**: if the executor refuses a job (it was shut down, or its queue is full
///   under [`QueueFull::Reject`](crate::QueueFull::Reject)) or drops it unrun, the call is not
///   run, neither on the polling thread nor anywhere else: `poll_read`, `poll_write`,
///   `poll_flush` or `poll_close` returns an [`io::Error`] of kind
///   [`Other`](io::ErrorKind::Other), whose message names the executor and the reason, and
///   whose inner error ([`io::Error::get_ref`]) is the [`CallError`]. Nothing is lost: the
///   inner value, and the bytes a write accepted, stay in the `Unblock`, and each later call
///   tries again (and returns the error again while the executor refuses).
/// - **No thread is held** between calls: a slow consumer or producer pins nothing.
/// - **Dropping** a writer that was written to and not flushed since never blocks the dropping
///   thread, and never loses a byte silently. The drop returns at once and leaves the rest to
///   the executor: a write still running (or waiting for room) finishes there; then one job
///   writes what the buffer holds, flushes the inner writer and drops it, on the executor,
///   after the drop has returned. A byte that cannot be written so is reported, with how many
///   bytes and why (a `tracing` warning with target `async_wrap` with the `tracing` feature,
///   else one line on standard error): the executor refused the job (shut down, or a full queue
///   under `Reject`; the inner writer is then dropped where the refusal is learnt, the dropping
///   thread for a pool shut down before the drop), or the inner writer failed or panicked. A
///   process that exits (`std::process::exit`, or `main` returning) while such writes are under
///   way waits for them, for up to 10 seconds, and says on standard error if it gave up; one
///   killed by a signal or `abort` does not. (On a pool whose full queue runs jobs on the
///   caller, [`QueueFull::RunOnCaller`](crate::QueueFull::RunOnCaller), the job may run on the
///   dropping thread, as any call there may.) In async code, `close().await` (or
///   `flush().await`) before the drop is still the way to see the inner writer's errors. A
///   reader, or a writer flushed since its last write, is dropped without any of this: a call
///   still running finishes on the executor, and its outcome is dropped there.
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use async_wrap::{BlockingPool, Unblock};
///
/// static DISK: BlockingPool = BlockingPool::with_max_threads(2);
///
/// let path = std::env::temp_dir().join(format!("async-wrap-unblock-{}", std::process::id()));
/// futures::executor::block_on(async {
///     let mut file = Unblock::with_executor(&DISK, std::fs::File::create(&path)?);
///     file.write_all(b"written on a pool thread").await?;
///     file.close().await?;
///
///     let mut text = String::new();
///     Unblock::with_executor(&DISK, std::fs::File::open(&path)?).read_to_string(&mut text).await?;
///     assert_eq!(text, "written on a pool thread");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// # std::fs::remove_file(path).unwrap();
/// ```
///
/// [`AsyncRead`]: https://docs.rs/futures-io/0.3/futures_io/trait.AsyncRead.html
/// [`AsyncWrite`]: https://docs.rs/futures-io/0.3/futures_io/trait.AsyncWrite.html
pub struct Unblock<T: Send + 'static> {
    executor: ExecutorRef,
    capacity: usize,
    state: State<T>,
    /// What the running job does, if one runs.
    running: Option<Kind>,
    /// The inner value and the buffer while a job has them (see [`Parcel`]).
    parcel: Parcel<T>,
    /// The bytes the running write or flush sends: named if a dropped writer loses them.
    job_bytes: usize,
    /// Set by `poll_write`, cleared by a completed flush: data was written and may not have
    /// reached the inner writer, so a drop must write and flush it (see "Dropping").
    write_on_drop: Option<Call<T>>,
}

enum State<T: Send + 'static> {
    /// The inner value is here. Reading: `buffer[start..]` is data read and not handed out yet.
    /// Writing: `buffer` is data written and not sent to the writer yet.
    Idle {
        inner: Box<T>,
        buffer: Vec<u8>,
        start: usize,
    },
    /// A job runs a call; it gives the value and the buffer back (`None` if they were not in
    /// the parcel, which cannot happen: one job at a time, and a refused one never runs).
    Busy(BlockingFuture<Option<Done<T>>>),
    /// A job panicked: the value is gone.
    Broken,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Flush,
}

/// What a job gives back.
struct Done<T> {
    inner: Box<T>,
    buffer: Vec<u8>,
    result: io::Result<()>,
}

impl<T: Send + 'static> Unblock<T> {
    /// Wraps `inner`, running its calls on the [default pool](crate::default_pool).
    ///
    /// ```
    /// use futures::AsyncReadExt;
    ///
    /// let mut reader = async_wrap::Unblock::new(&b"bytes from a blocking reader"[..]);
    /// let mut out = Vec::new();
    /// futures::executor::block_on(reader.read_to_end(&mut out)).unwrap();
    /// assert_eq!(out, b"bytes from a blocking reader");
    /// ```
    pub fn new(inner: T) -> Self {
        Self::with_executor(ExecutorRef::default_pool(), inner)
    }

    /// Wraps `inner`, running its calls on `executor`.
    ///
    /// ```
    /// use std::io::Read;
    /// use futures::AsyncReadExt;
    /// use async_wrap::{BlockingPool, Unblock};
    ///
    /// static IO: BlockingPool = BlockingPool::with_max_threads(1);
    /// let mut reader = Unblock::with_executor(&IO, std::io::repeat(7).take(3));
    /// let mut out = Vec::new();
    /// futures::executor::block_on(reader.read_to_end(&mut out)).unwrap();
    /// assert_eq!(out, [7, 7, 7]);
    /// ```
    pub fn with_executor<M>(executor: impl IntoExecutor<M>, inner: T) -> Self {
        Unblock {
            executor: executor.into_executor(),
            capacity: DEFAULT_BUFFER,
            state: State::Idle {
                inner: Box::new(inner),
                buffer: Vec::new(),
                start: 0,
            },
            running: None,
            parcel: Arc::new(Mutex::new(None)),
            job_bytes: 0,
            write_on_drop: None,
        }
    }

    /// Sets the buffer size: the most bytes one job reads or writes (default 64 KiB).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    ///
    /// ```
    /// let reader = async_wrap::Unblock::new(std::io::empty()).buffer_size(4096);
    /// # drop(reader);
    /// ```
    #[must_use = "the builder method returns the adapter"]
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        assert!(
            bytes > 0,
            "async_wrap: an Unblock buffer must hold at least one byte"
        );
        self.capacity = bytes;
        self
    }

    /// Collects the running job, if any: back to `Idle`, with the job's result. A job the
    /// executor refused, or dropped unrun, gives the value and the buffer back untouched (a
    /// read's buffer emptied) and is an error: see "Refused calls".
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let State::Busy(future) = &mut self.state else {
            return Poll::Ready(Ok(()));
        };
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll_checked(cx)));
        let ended = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(ended)) => ended,
            Err(payload) => {
                self.state = State::Broken;
                self.running = None;
                std::panic::resume_unwind(payload);
            }
        };
        let kind = self.running.take();
        let (inner, buffer, result) = match ended {
            Ok(Some(done)) => (done.inner, done.buffer, done.result),
            Ok(None) => {
                self.state = State::Broken;
                return Poll::Ready(Err(broken()));
            }
            Err(refused) => {
                let Some((inner, mut buffer)) = unpack(&self.parcel) else {
                    self.state = State::Broken;
                    return Poll::Ready(Err(broken()));
                };
                if kind == Some(Kind::Read) {
                    // Sized for the read, never filled: no data.
                    buffer.clear();
                }
                (inner, buffer, Err(refused_error(refused)))
            }
        };
        self.state = State::Idle {
            inner,
            buffer,
            start: 0,
        };
        Poll::Ready(result)
    }

    /// Starts a job running `call` on the idle value and its buffer.
    fn start(&mut self, kind: Kind, call: Call<T>) {
        let State::Idle {
            inner, mut buffer, ..
        } = std::mem::replace(&mut self.state, State::Broken)
        else {
            return;
        };
        if kind == Kind::Read {
            buffer.clear();
            buffer.resize(self.capacity, 0);
        }
        self.job_bytes = buffer.len();
        pack(&self.parcel, inner, buffer);
        let parcel = Arc::clone(&self.parcel);
        let job = move || {
            let (mut inner, mut buffer) = unpack(&parcel)?;
            let result = call(&mut inner, &mut buffer);
            Some(Done {
                inner,
                buffer,
                result,
            })
        };
        self.running = Some(kind);
        // Refused (the pool shut down, or its queue full under `Reject`), the job never runs,
        // here or anywhere: `poll_job` takes the value and the buffer back and reports it.
        self.state = State::Busy(BlockingFuture::new(
            self.executor.clone(),
            &crate::stats::call_site::UNBLOCK,
            job,
        ));
    }

    fn poll_read_bytes(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>>
    where
        T: Read,
    {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match &mut self.state {
                State::Idle { buffer, start, .. } if *start < buffer.len() => {
                    let n = out.len().min(buffer.len() - *start);
                    out[..n].copy_from_slice(&buffer[*start..*start + n]);
                    *start += n;
                    return Poll::Ready(Ok(n));
                }
                State::Idle { .. } => self.start(Kind::Read, read_call::<T>),
                State::Busy(_) => {
                    ready!(self.poll_job(cx))?;
                    if let State::Idle { buffer, .. } = &self.state {
                        if buffer.is_empty() {
                            // The reader returned 0 bytes: the end of its input.
                            return Poll::Ready(Ok(0));
                        }
                    }
                }
                State::Broken => return Poll::Ready(Err(broken())),
            }
        }
    }

    fn poll_write_bytes(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>
    where
        T: Write,
    {
        self.write_on_drop = Some(flush_call::<T>);
        loop {
            match &mut self.state {
                // A previous write or flush: its error, if any, is reported here.
                State::Busy(_) => ready!(self.poll_job(cx))?,
                State::Idle { buffer, .. } if buffer.len() < self.capacity || data.is_empty() => {
                    let n = data.len().min(self.capacity - buffer.len());
                    buffer.extend_from_slice(&data[..n]);
                    return Poll::Ready(Ok(n));
                }
                State::Idle { .. } => self.start(Kind::Write, write_call::<T>),
                State::Broken => return Poll::Ready(Err(broken())),
            }
        }
    }

    fn poll_flush_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: Write,
    {
        loop {
            match &self.state {
                State::Busy(_) => {
                    let was = self.running;
                    ready!(self.poll_job(cx))?;
                    if was == Some(Kind::Flush) {
                        // Everything written is in the inner writer, flushed.
                        self.write_on_drop = None;
                        return Poll::Ready(Ok(()));
                    }
                }
                State::Idle { .. } => self.start(Kind::Flush, flush_call::<T>),
                State::Broken => return Poll::Ready(Err(broken())),
            }
        }
    }
}

/// One `read`, into a buffer resized to what it read.
fn read_call<R: Read>(reader: &mut R, buffer: &mut Vec<u8>) -> io::Result<()> {
    loop {
        match reader.read(buffer) {
            Ok(n) => {
                buffer.truncate(n);
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                buffer.clear();
                return Err(err);
            }
        }
    }
}

/// Writes all the buffer.
fn write_call<W: Write>(writer: &mut W, buffer: &mut Vec<u8>) -> io::Result<()> {
    let result = writer.write_all(buffer);
    buffer.clear();
    result
}

/// Writes all the buffer, then flushes the writer.
fn flush_call<W: Write>(writer: &mut W, buffer: &mut Vec<u8>) -> io::Result<()> {
    write_call(writer, buffer)?;
    writer.flush()
}

/// A call its executor refused (shut down, or a full queue under `Reject`) or dropped unrun:
/// an `io::Error` of kind `Other`, whose inner error is the [`CallError`].
fn refused_error(err: CallError) -> io::Error {
    io::Error::other(err)
}

fn broken() -> io::Error {
    io::Error::other("async_wrap::Unblock: an earlier call panicked, and the inner value is gone")
}

impl<T: Read + Send + 'static> futures_io::AsyncRead for Unblock<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_bytes(cx, buf)
    }
}

impl<T: Write + Send + 'static> futures_io::AsyncWrite for Unblock<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_bytes(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_bytes(cx)
    }
}

#[cfg(feature = "tokio")]
impl<T: Read + Send + 'static> tokio::io::AsyncRead for Unblock<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(self.poll_read_bytes(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio")]
impl<T: Write + Send + 'static> tokio::io::AsyncWrite for Unblock<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_bytes(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_bytes(cx)
    }
}

// `Unblock` never pins its fields: it is `Unpin` whatever `T` is.
impl<T: Send + 'static> Unpin for Unblock<T> {}

impl<T: Send + 'static> Drop for Unblock<T> {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Broken);
        let running = self.running.take();
        let Some(write_out) = self.write_on_drop.take() else {
            // A reader, or a writer flushed since its last write: nothing to lose. A running
            // call finishes on its thread; its outcome is dropped there.
            if let State::Busy(future) = state {
                future.abandon_running();
            }
            return;
        };
        // A writer with data that may not have reached the inner writer: the executor writes
        // it out after this drop returns (see "Dropping"), and the exit waits for it.
        let held = match state {
            State::Busy(future) => Held::Running(future, running),
            State::Idle { inner, buffer, .. } => Held::Idle(inner, buffer),
            State::Broken => return,
        };
        crate::call::detached::spawn(finish_writing(
            self.executor.clone(),
            Arc::clone(&self.parcel),
            held,
            self.job_bytes,
            write_out,
            PendingWrite::new(),
        ));
    }
}

/// What a dropped writer still has: a call running (or waiting for room), or the value and
/// the bytes not yet sent.
enum Held<T: Send + 'static> {
    Running(BlockingFuture<Option<Done<T>>>, Option<Kind>),
    Idle(Box<T>, Vec<u8>),
}

/// How a job of a dropped writer ended.
enum Outcome<T> {
    Done(T),
    /// Refused or dropped unrun by the executor: what it would have used is in the parcel.
    Refused(CallError),
    /// The inner writer panicked (the payload is dropped, caught; the panic hook has
    /// printed it).
    Panicked,
}

async fn outcome<T>(future: &mut BlockingFuture<T>) -> Outcome<T> {
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll_checked(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(value))) => Poll::Ready(Outcome::Done(value)),
            Ok(Poll::Ready(Err(refused))) => Poll::Ready(Outcome::Refused(refused)),
            Err(payload) => {
                crate::panic_guard::drop_payload(payload);
                Poll::Ready(Outcome::Panicked)
            }
        }
    })
    .await
}

/// What a dropped writer leaves to its executor, run by no one's task (see "Dropping"): the
/// call still running finishes; then one job writes what is left, flushes the writer and drops
/// it, on the executor. Every byte that cannot be written so is reported ([`report_loss`]).
/// Never blocks the thread that polls it (the dropping thread first, then the ones that wake
/// it).
async fn finish_writing<T: Send + 'static>(
    executor: ExecutorRef,
    parcel: Parcel<T>,
    held: Held<T>,
    running_bytes: usize,
    write_out: Call<T>,
    pending: PendingWrite,
) {
    // Counted until the end, for the exit to wait for.
    let _pending = pending;
    let (inner, buffer, flushed) = match held {
        Held::Idle(inner, buffer) => (inner, buffer, false),
        Held::Running(mut future, kind) => {
            let (inner, mut buffer, flushed) = match outcome(&mut future).await {
                Outcome::Done(Some(done)) => {
                    if let Err(err) = &done.result {
                        report_loss::<T>(running_bytes, err);
                    }
                    let flushed = kind == Some(Kind::Flush) && done.result.is_ok();
                    (done.inner, done.buffer, flushed)
                }
                Outcome::Done(None) => return,
                // Never run: the value and the bytes are back in the parcel; the job below
                // tries again, and reports the refusal if it is refused too.
                Outcome::Refused(_) => match unpack(&parcel) {
                    Some((inner, buffer)) => (inner, buffer, false),
                    None => return,
                },
                Outcome::Panicked => {
                    report_loss::<T>(running_bytes, &"the writer panicked");
                    return;
                }
            };
            if kind == Some(Kind::Read) {
                // Data read, not data to write.
                buffer.clear();
            }
            (inner, buffer, flushed)
        }
    };
    let bytes = buffer.len();
    pack(&parcel, inner, buffer);
    let taken = Arc::clone(&parcel);
    let mut job = BlockingFuture::new(executor, &crate::stats::call_site::UNBLOCK, move || {
        let (mut inner, mut buffer) = unpack(&taken)?;
        let result = if flushed {
            Ok(())
        } else {
            write_out(&mut inner, &mut buffer)
        };
        // The writer's own `Drop` (closing a file) runs here too, on the executor.
        drop(inner);
        Some(result)
    });
    match outcome(&mut job).await {
        Outcome::Done(Some(Ok(())) | None) => {}
        Outcome::Done(Some(Err(err))) => report_loss::<T>(bytes, &err),
        Outcome::Refused(refused) => {
            report_loss::<T>(bytes, &refused);
            // Nowhere else to go: the writer is dropped here, its `Drop` caught.
            drop_guarded(unpack(&parcel));
        }
        Outcome::Panicked => report_loss::<T>(bytes, &"the writer panicked"),
    }
}

/// Says that a dropped writer could not write `bytes` bytes it had accepted, and why: a
/// `tracing` warning (target `async_wrap`) with the `tracing` feature, else one line on
/// standard error.
fn report_loss<T>(bytes: usize, why: &dyn fmt::Display) {
    let writer = std::any::type_name::<T>();
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "async_wrap",
        bytes,
        writer,
        "async_wrap::Unblock<{writer}> was dropped before `close`, and {bytes} bytes it had \
         accepted may be lost: {why}"
    );
    #[cfg(not(feature = "tracing"))]
    {
        use std::io::Write as _;
        let _ = writeln!(
            io::stderr(),
            "async_wrap::Unblock<{writer}> was dropped before `close`, and {bytes} bytes it had \
             accepted may be lost: {why}"
        );
    }
}

impl<T: Send + 'static> fmt::Debug for Unblock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Idle { buffer, start, .. } => {
                format!("idle, {} bytes buffered", buffer.len() - start)
            }
            State::Busy(_) => "busy".to_owned(),
            State::Broken => "broken".to_owned(),
        };
        f.debug_struct("Unblock")
            .field("capacity", &self.capacity)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
