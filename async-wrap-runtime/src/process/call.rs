//! One call on a process pool: [`Call`], what the caller's future and the driver thread running
//! it share, and [`ProcessFuture`], the future the caller awaits.

use std::future::Future;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::panic;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::ProcessPool;
use super::codec::{Codec, Request};
use super::error::{ProcessError, ProcessErrorKind};
use super::wire::{self, Frame, Tag};
use crate::panic_guard::{drop_guarded, wake_guarded};
use crate::stats::call_site::CallSite;

/// The reply of a worker: the frame's body (a [`Tag`] and what follows), and who sent it.
pub(super) struct Reply {
    pub(super) body: Vec<u8>,
    pub(super) pid: u32,
}

/// Where a call is.
enum State {
    /// In the pool's queue.
    Queued,
    /// Sent to a worker; writing to the stream wakes its driver, which then asks
    /// [`Call::is_abandoned`].
    Running(Arc<UnixStream>),
    /// Finished, until the future takes the outcome.
    Done(Result<Reply, ProcessErrorKind>),
    /// The outcome was taken.
    Taken,
    /// The future was dropped before the outcome arrived: a running call's worker is killed.
    Abandoned,
}

struct Inner {
    state: State,
    waker: Option<Waker>,
}

/// One call, shared by its future and the driver that runs it.
pub(super) struct Call {
    pub(super) site: &'static CallSite,
    /// When it was handed to the pool, if the call-site statistics count it.
    pub(super) counted: Option<Instant>,
    /// The request frame, taken by the driver that sends it.
    pub(super) request: Mutex<Option<Frame>>,
    pub(super) deadline: Option<Duration>,
    inner: Mutex<Inner>,
}

impl Call {
    fn new(site: &'static CallSite, request: Frame, deadline: Option<Duration>) -> Self {
        let counted = crate::call_statistics_enabled().then(|| {
            site.submitted();
            Instant::now()
        });
        Call {
            site,
            counted,
            request: Mutex::new(Some(request)),
            deadline,
            inner: Mutex::new(Inner {
                state: State::Queued,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A driver takes the call: `false` if its future was dropped meanwhile (it is skipped).
    pub(super) fn start(&self, wake: &Arc<UnixStream>) -> bool {
        let mut inner = self.lock();
        match inner.state {
            State::Queued => {
                inner.state = State::Running(Arc::clone(wake));
                true
            }
            _ => false,
        }
    }

    /// Whether the future was dropped: the driver kills the worker that runs the call.
    pub(super) fn is_abandoned(&self) -> bool {
        matches!(self.lock().state, State::Abandoned)
    }

    /// Stores the outcome and wakes the future, unless it was dropped.
    pub(super) fn finish(&self, outcome: Result<Reply, ProcessErrorKind>) {
        let mut inner = self.lock();
        if matches!(inner.state, State::Abandoned | State::Taken) {
            return;
        }
        inner.state = State::Done(outcome);
        let waker = inner.waker.take();
        drop(inner);
        if let Some(waker) = waker {
            wake_guarded(waker);
        }
    }

    /// The outcome, if there is one; else the waker is kept for [`finish`](Self::finish).
    fn poll_outcome(&self, waker: &Waker) -> Option<Result<Reply, ProcessErrorKind>> {
        let mut inner = self.lock();
        if let State::Done(_) = inner.state {
            let State::Done(outcome) = std::mem::replace(&mut inner.state, State::Taken) else {
                unreachable!("matched just above")
            };
            let old = inner.waker.take();
            drop(inner);
            drop_guarded(old);
            return Some(outcome);
        }
        let old = match &inner.waker {
            Some(old) if old.will_wake(waker) => None,
            _ => inner.waker.replace(waker.clone()),
        };
        drop(inner);
        drop_guarded(old);
        None
    }

    /// The future is dropped: a queued call is skipped, a running one's worker killed.
    fn abandon(&self) {
        let mut inner = self.lock();
        let previous = std::mem::replace(&mut inner.state, State::Abandoned);
        let waker = inner.waker.take();
        drop(inner);
        if let State::Running(wake) = previous {
            // The driver polls this stream while it waits for the reply. A full buffer means it
            // has been woken already.
            let _ = (&*wake).write(&[1]);
        }
        drop_guarded(waker);
    }
}

/// The future of a call on a [`ProcessPool`]: resolves to the function's result, or to a
/// [`ProcessError`] if the worker died, ran past its deadline or could not be reached.
///
/// Lazy, like every call: the arguments are serialized when the function is called, and the
/// call goes to the pool when the future is first polled. A panic in the body is resumed here,
/// its payload a `String` with the panic's message and location (`"boom (at src/parse.rs:12:9,
/// in worker process 4242 of pool `procs`)"`).
///
/// **Dropping** the future of a running call kills its worker and the processes its body
/// started (`SIGTERM`, then `SIGKILL` after the pool's grace period, to the worker's process
/// group; see [`ProcessPool`], "Killed workers"): the call really stops, and the pool starts a
/// new worker for the next call. A call whose future is dropped before it started never runs.
///
/// It is `Send`, `Sync`, `Unpin` and `'static`, whatever `T`, and works on any async runtime.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ProcessFuture<T> {
    pool: &'static ProcessPool,
    site: &'static CallSite,
    /// Before the first poll: the request (or why it could not be made) and the deadline.
    pending: Option<(Result<Frame, ProcessErrorKind>, Option<Duration>)>,
    /// After it: the call.
    call: Option<Arc<Call>>,
    /// Decodes the result.
    output: Codec<T>,
    done: bool,
}

impl<T> ProcessFuture<T> {
    pub(super) fn new(
        pool: &'static ProcessPool,
        site: &'static CallSite,
        request: Result<Frame, ProcessErrorKind>,
        output: Codec<T>,
    ) -> Self {
        ProcessFuture {
            pool,
            site,
            pending: Some((request, pool.config.deadline)),
            call: None,
            output,
            done: false,
        }
    }

    /// Gives this call a deadline of its own, in place of the pool's: past it, counted from the
    /// moment a worker starts the call, the worker is killed and the call fails with
    /// [`ProcessErrorKind::DeadlineExceeded`]. No effect once the future has been polled.
    ///
    /// ```ignore
    /// // Not run as a doctest: it needs the `async-wrap` facade (for the attribute), and it
    /// // spawns worker processes, which a doctest's `main` (without `init()`) cannot serve.
    /// use std::time::{Duration, Instant};
    /// use async_wrap::{async_wrap, process::ProcessPool};
    ///
    /// static PROCS: ProcessPool = ProcessPool::with_max_workers(2);
    ///
    /// #[async_wrap(executor = PROCS, process)]
    /// fn solve(n: u64) -> u64 {
    ///     n * 2
    /// }
    ///
    /// # async fn run() {
    /// let answer = solve(21).deadline(Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        if let Some((_, slot)) = &mut self.pending {
            *slot = Some(deadline);
        }
        self
    }

    fn error(&self, kind: ProcessErrorKind) -> ProcessError {
        ProcessError::new(self.site.function(), self.pool.name_for(self.site), kind)
    }
}

impl<T> Future for ProcessFuture<T> {
    type Output = Result<T, ProcessError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        assert!(!this.done, "`ProcessFuture` polled after it completed");
        if let Some((request, deadline)) = this.pending.take() {
            let request = match request {
                Ok(request) => request,
                Err(kind) => {
                    this.done = true;
                    return Poll::Ready(Err(this.error(kind)));
                }
            };
            let call = Arc::new(Call::new(this.site, request, deadline));
            this.call = Some(Arc::clone(&call));
            this.pool.shared().submit(call);
        }
        let Some(call) = &this.call else {
            unreachable!("the call is made at the first poll")
        };
        let Some(outcome) = call.poll_outcome(cx.waker()) else {
            return Poll::Pending;
        };
        this.done = true;
        Poll::Ready(match outcome {
            Err(kind) => Err(this.error(kind)),
            Ok(reply) => this.decode(&reply),
        })
    }
}

impl<T> ProcessFuture<T> {
    /// The result in a reply, or the body's panic resumed here.
    fn decode(&self, reply: &Reply) -> Result<T, ProcessError> {
        let (tag, rest) = match reply.body.split_first() {
            Some((tag, rest)) => (Tag::of(*tag), rest),
            None => (None, &[][..]),
        };
        let text = || {
            wire::take_text(rest)
                .map(|(text, _)| text)
                .unwrap_or_default()
        };
        match tag {
            Some(Tag::Returned) => match self.output.decode(rest) {
                Ok((value, [])) => Ok(value),
                Ok((value, left)) => {
                    let left = left.len();
                    drop_guarded(value);
                    Err(self.error(ProcessErrorKind::Serialization(format!(
                        "{left} bytes of the result were left unread: its type does not read \
                         back as it was written (postcard is not self-describing)"
                    ))))
                }
                Err(err) => Err(self.error(ProcessErrorKind::Serialization(err))),
            },
            Some(Tag::Panicked) => {
                let (message, location) = wire::text_pair(rest).unwrap_or_default();
                if self.pool.has_panics_as_errors() {
                    return Err(self.error(ProcessErrorKind::Panicked {
                        message,
                        location,
                        pid: reply.pid,
                    }));
                }
                panic::resume_unwind(Box::new(format!(
                    "{message} (at {location}, in worker process {} of pool `{}`)",
                    reply.pid,
                    self.pool.name_for(self.site)
                )))
            }
            Some(Tag::UnknownKey) => Err(self.error(ProcessErrorKind::UnknownFunction(text()))),
            Some(Tag::BadArguments | Tag::BadResult) => {
                Err(self.error(ProcessErrorKind::Serialization(text())))
            }
            None => Err(self.error(ProcessErrorKind::Io("a malformed reply".into()))),
        }
    }
}

impl<T> Drop for ProcessFuture<T> {
    fn drop(&mut self) {
        if let (Some(call), false) = (&self.call, self.done) {
            call.abandon();
        }
    }
}

impl<T> std::fmt::Debug for ProcessFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFuture")
            .field("function", &self.site.function())
            .field("submitted", &self.call.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The call a `process` shim makes: `request` (the key and the arguments, encoded at the call)
/// goes to a worker of `pool` at the first poll; `output` decodes the result.
#[doc(hidden)]
pub fn call<T>(
    pool: &'static ProcessPool,
    site: &'static CallSite,
    request: Request,
    output: Codec<T>,
) -> ProcessFuture<T> {
    let request = request
        .into_frame()
        .map_err(ProcessErrorKind::Serialization);
    ProcessFuture::new(pool, site, request, output)
}
