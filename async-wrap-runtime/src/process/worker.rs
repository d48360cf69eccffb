//! The worker's side: [`init`], which turns a re-executed copy of the program into a worker, the
//! table of functions it can run ([`Entry`]), and [`serve`], which runs one call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::fd::{FromRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::codec::{Arguments, Codec};
use super::wire::{self, Frame, Tag};

/// The environment variable that makes a process a worker: the pool sets it (to its own pid)
/// on the processes it starts, and [`init`] looks for it.
pub const WORKER_ENV: &str = "ASYNC_WRAP_PROCESS_WORKER";

/// The environment variable that carries the name of the pool that started a worker (when
/// the pool has one), for [`init_with`]'s initializer.
pub(crate) const POOL_ENV: &str = "ASYNC_WRAP_PROCESS_POOL";

/// The exit status of a worker whose initializer ([`init_with`]) panicked, before it greeted
/// its pool: the pool fails the call with a `Start` error saying so.
pub(crate) const INIT_PANICKED: i32 = 86;

/// Set by [`init`]: this process's `main` calls it, so its workers (the program run again) will.
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// Whether `init` has run in this process.
pub(crate) fn init_called() -> bool {
    INIT_CALLED.load(Ordering::Relaxed)
}

/// One function a worker can run: its key (path, name, hash of the signature) and the shim
/// that decodes its arguments, runs it and encodes its reply. `#[async_wrap(process)]` submits
/// one per function to the table, before `main`.
#[doc(hidden)]
pub struct Entry {
    key: &'static str,
    run: fn(&[u8]) -> Frame,
}

impl Entry {
    /// The entry of the function `key`.
    #[doc(hidden)]
    pub const fn new(key: &'static str, run: fn(&[u8]) -> Frame) -> Self {
        Entry { key, run }
    }
}

inventory::collect!(Entry);

/// Every registered function, by key.
fn table() -> HashMap<&'static str, fn(&[u8]) -> Frame> {
    inventory::iter::<Entry>
        .into_iter()
        .map(|entry| (entry.key, entry.run))
        .collect()
}

/// What tells two builds apart: a hash of the sorted keys of every registered function (each
/// key hashes the function's signature). A worker whose fingerprint differs from its pool's is
/// another program, or another build of it.
pub(crate) fn fingerprint() -> u64 {
    let mut keys: Vec<&str> = inventory::iter::<Entry>
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    keys.sort_unstable();
    keys.iter().fold(0xcbf2_9ce4_8422_2325, |hash, key| {
        key.bytes()
            .chain(std::iter::once(0))
            .fold(hash, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    })
}

/// Makes this process a worker if a [`ProcessPool`](super::ProcessPool) started it; returns at
/// once otherwise. Call it first thing in `main`, before anything reads stdin, starts threads
/// or parses arguments (what the program writes on stdout before it, a banner say, is passed on
/// to the pool's stdout at each worker's start, and the worker serves as usual):
///
/// ```no_run
/// use async_wrap::process::ProcessPool;
///
/// static SANDBOX: ProcessPool = ProcessPool::with_max_workers(2);
///
/// fn main() {
///     async_wrap::process::init(); // in a worker, never returns
///     // ... the program, which calls functions on SANDBOX ...
/// }
/// ```
///
/// A process pool starts its workers by running the program again (`/proc/self/exe`, the very
/// file this process runs, even if it was replaced on disk since) with the environment
/// variable [`WORKER_ENV`] set. In such a process, `init` serves calls and exits when its pool
/// closes the pipe or dies: it never returns. A program that does not call `init` cannot be a
/// worker: its pool fails the call with [`ProcessErrorKind::NotAWorker`](super::ProcessErrorKind::NotAWorker)
/// (and the copy of the program that started is killed). A worker's `init` removes
/// [`WORKER_ENV`] from its environment: a program its bodies start is not a worker.
///
/// # With `#[tokio::main]`
///
/// The attribute builds the runtime before the first line of the body runs, so a worker would
/// start a runtime (and its threads) only to serve calls. Call `init` from a plain `main` and
/// build the runtime after it:
///
/// ```no_run
/// use async_wrap::process::ProcessPool;
///
/// static SANDBOX: ProcessPool = ProcessPool::with_max_workers(2);
///
/// fn main() {
///     async_wrap::process::init(); // first: a worker never gets past this line
///     tokio::runtime::Runtime::new().unwrap().block_on(async {
///         // ... the program ...
///     });
/// }
/// ```
///
/// `#[tokio::main] async fn main() { async_wrap::process::init(); ... }` works too (the worker
/// serves calls on the runtime's thread, beside idle workers), at that cost.
///
/// # Pools built at run time
///
/// A pool may live in a `static` `LazyLock` (its settings read from the command line or the
/// environment when first used): `#[async_wrap(executor = LAZY, process)]` takes it as it takes
/// a plain `static`. The worker needs no settings: it serves whatever its pool sends.
///
/// # Test binaries
///
/// libtest's `main` does not call `init`. Give the tests that use a process pool a test target
/// of their own with `harness = false`, whose `main` calls `init()` and then runs the tests
/// (this crate's `tests/process.rs` does so).
pub fn init() {
    init_with(|_| {});
}

/// [`init`], with `initialize` run in each worker before it serves its first call: per-process
/// state (Python's `ProcessPoolExecutor(initializer=...)`), such as a model loaded once per
/// worker into a `static` `OnceLock`, or a logger. It is given the name of the pool that
/// started the worker ([`ProcessPool::named`](super::ProcessPool::named)), `None` for a pool
/// without one, so that pools can be set up apart. In the program itself (not a worker),
/// `initialize` is not called and `init_with` returns at once.
///
/// The initializer runs after the worker's stdout has been set aside for the pool (what it
/// prints goes to stderr), and its time counts in the pool's
/// [`start_timeout`](super::ProcessPool::start_timeout). If it panics, the worker exits and the
/// call fails with [`ProcessErrorKind::Start`](super::ProcessErrorKind::Start) saying so (the
/// panic's message is on the worker's stderr).
///
/// ```no_run
/// use std::sync::OnceLock;
/// use async_wrap::{async_wrap, process::ProcessPool};
///
/// static RENDERERS: ProcessPool = ProcessPool::with_max_workers(2).named("renderers");
/// static FONTS: OnceLock<Vec<String>> = OnceLock::new();
///
/// #[async_wrap(executor = RENDERERS, process)]
/// fn font_count() -> usize {
///     FONTS.get().map_or(0, Vec::len)
/// }
///
/// fn main() {
///     async_wrap::process::init_with(|pool| {
///         if pool == Some("renderers") {
///             FONTS.get_or_init(|| vec!["serif".into(), "mono".into()]); // once per worker
///         }
///     });
///     // ... font_count().await is Ok(2) ...
/// }
/// ```
pub fn init_with(initialize: impl FnOnce(Option<&str>)) {
    // Set in a worker too: a body may call a process function of its own, whose workers are
    // this program again, and reach `init` in turn.
    INIT_CALLED.store(true, Ordering::Relaxed);
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let pool = std::env::var(POOL_ENV).ok();
    // The markers are for this process alone: a program a body starts (one that calls
    // `init()` too) must run as itself, not turn into a worker.
    // SAFETY: `init` is documented to run first in `main`, before the program starts any
    // thread, so no other thread reads or writes the environment meanwhile.
    unsafe {
        std::env::remove_var(WORKER_ENV);
        std::env::remove_var(POOL_ENV);
    }
    serve_forever(move || initialize(pool.as_deref()))
}

/// The worker's loop, after `initialize`. Never returns.
fn serve_forever(initialize: impl FnOnce()) -> ! {
    // The pipes to the pool move to descriptors of their own, and stdin and stdout become
    // /dev/null and stderr: a body that prints must not corrupt the frames.
    let (input, output) = match take_pipes() {
        Ok(pipes) => pipes,
        Err(err) => {
            eprintln!("async_wrap worker: cannot set up its pipes: {err}");
            std::process::exit(101);
        }
    };
    install_panic_hook();
    if panic::catch_unwind(AssertUnwindSafe(initialize)).is_err() {
        // The hook printed the message on stderr; the status tells the pool.
        std::process::exit(INIT_PANICKED);
    }
    watch_for_hangup(&input);
    let mut input = BufReader::with_capacity(64 << 10, input);
    let mut output = BufWriter::with_capacity(64 << 10, output);
    let mut hello = Frame::with_capacity(20);
    hello.0.extend_from_slice(wire::HELLO);
    hello.0.extend_from_slice(&fingerprint().to_le_bytes());
    hello.0.extend_from_slice(&std::process::id().to_le_bytes());
    if hello.send(&mut output).is_err() {
        std::process::exit(0);
    }
    let table = table();
    let mut request = Vec::new();
    loop {
        match wire::read_frame(&mut input, &mut request) {
            Ok(true) => {}
            // The pool closed the pipe (it retires this worker, or it exited): done.
            Ok(false) | Err(_) => std::process::exit(0),
        }
        let run =
            wire::split_request(&request).map(|(key, arguments)| (key, table.get(key), arguments));
        let mut reply = if let Some((_, Some(run), arguments)) = run {
            run(arguments)
        } else {
            let mut reply = Frame::with_capacity(64);
            if let Some((key, None, _)) = run {
                reply.0.push(Tag::UnknownKey as u8);
                wire::put_text(&mut reply.0, key);
            } else {
                reply.0.push(Tag::BadArguments as u8);
                wire::put_text(&mut reply.0, "malformed request");
            }
            reply
        };
        if reply.0.len() - 4 > wire::MAX_FRAME {
            let len = reply.0.len() - 4;
            reply = Frame::with_capacity(128);
            reply.0.push(Tag::BadResult as u8);
            wire::put_text(
                &mut reply.0,
                &format!(
                    "the result takes {len} bytes, over the limit of {} bytes a call can carry",
                    wire::MAX_FRAME
                ),
            );
        }
        if reply.send(&mut output).is_err() {
            std::process::exit(0);
        }
    }
}

/// The pool's pipes on new descriptors (close-on-exec), with stdin and stdout pointed
/// elsewhere.
fn take_pipes() -> std::io::Result<(File, File)> {
    let devnull = File::open("/dev/null")?;
    let moved = |fd: RawFd| -> std::io::Result<File> {
        // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` reads no memory; it duplicates `fd`, a descriptor
        // this process was started with, into a new one that nothing else owns.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `new` is a fresh descriptor, owned by the returned `File` alone.
        Ok(unsafe { File::from_raw_fd(new) })
    };
    let input = moved(0)?;
    let output = moved(1)?;
    let redirect = |from: RawFd, to: RawFd| -> std::io::Result<()> {
        // SAFETY: `dup2` reads no memory; `from` is open, and `to` (0 or 1) is a standard
        // descriptor whose pipe was duplicated above, so nothing is lost by replacing it.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    let devnull = std::os::fd::AsRawFd::as_raw_fd(&devnull);
    redirect(devnull, 0)?;
    if stderr_is_broken() {
        // A pipe whose reader is gone: a body's `println!` would panic. Its output goes
        // nowhere, as it would have.
        redirect(devnull, 2)?;
    }
    redirect(2, 1)?;
    Ok((input, output))
}

/// Whether the worker's stderr (the pool's) is a pipe whose reader has gone.
fn stderr_is_broken() -> bool {
    let mut fds = [libc::pollfd {
        fd: 2,
        events: 0,
        revents: 0,
    }];
    // SAFETY: `fds` is a valid array of one `pollfd` for the whole call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    ready > 0 && fds[0].revents & libc::POLLERR != 0
}

/// Exits the worker as soon as its pool's end of the request pipe closes, even while a body
/// runs (a hung body, a pool that was killed): no orphan outlives its pool.
fn watch_for_hangup(input: &File) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(input);
    let spawned = std::thread::Builder::new()
        .name("async-wrap-hangup".into())
        .stack_size(64 << 10)
        .spawn(move || {
            loop {
                // No event asked for: poll returns only on POLLHUP or POLLERR, never because a
                // request is waiting (which the main thread reads).
                let mut fds = [libc::pollfd {
                    fd,
                    events: 0,
                    revents: 0,
                }];
                // SAFETY: `fds` is a valid array of one `pollfd` for the whole call; `fd` stays
                // open for the life of the process (the main thread never closes it).
                let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
                if ready > 0
                    && fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
                {
                    std::process::exit(0);
                }
            }
        });
    if spawned.is_err() {
        eprintln!("async_wrap worker: cannot start its hang-up watcher");
        std::process::exit(101);
    }
}

thread_local! {
    /// The message and location of the last panic on this thread, recorded by the hook.
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// The message and location of the last panic on any thread of the worker (a body's helper
/// thread, whose panic the body resumes on its own), recorded by the hook.
static ANY_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Forgets the panics recorded before a call.
fn forget_panics() {
    let _ = LAST_PANIC.try_with(|last| last.borrow_mut().take());
    let old = ANY_PANIC
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    drop(old);
}

/// The location of the panic whose payload reads `message`: the hook's record of it, on this
/// thread or another; a payload raised with `resume_unwind` (which skips the hook) has none.
fn panic_location(message: &str) -> String {
    let here = LAST_PANIC
        .try_with(|last| last.borrow_mut().take())
        .ok()
        .flatten();
    let anywhere = ANY_PANIC
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    [here, anywhere]
        .into_iter()
        .flatten()
        .find(|(recorded, _)| recorded == message)
        .map_or_else(
            || "an unknown location, as it was resumed without the panic hook".to_owned(),
            |(_, location)| location,
        )
}

/// Records each panic's message and location (sent back to the pool), then lets the previous
/// hook print it on the worker's stderr, the pool's.
fn install_panic_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let message = payload_text(info.payload());
        let location = info
            .location()
            .map_or_else(|| "an unknown location".to_owned(), ToString::to_string);
        *ANY_PANIC.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((message.clone(), location.clone()));
        let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = Some((message, location)));
        previous(info);
    }));
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned())
}

/// Runs one call in the worker: `body` decodes the arguments and runs the function, its panic
/// caught, and the result is encoded with `result`. The shim of each `process` function calls
/// it.
#[doc(hidden)]
pub fn serve<T>(
    arguments: &[u8],
    result: Codec<T>,
    body: impl FnOnce(&mut Arguments<'_>) -> Result<T, String>,
) -> Frame {
    let mut arguments = Arguments::new(arguments);
    forget_panics();
    // The result is encoded inside the `catch_unwind` too: its `Serialize` is user code.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        body(&mut arguments).map(|value| {
            let mut reply = Frame::with_capacity(64);
            reply.0.push(Tag::Returned as u8);
            let encoded = result.encode(&value, std::mem::take(&mut reply.0));
            // The result's `Drop` is user code.
            crate::panic_guard::drop_guarded(value);
            encoded
        })
    }));
    let mut reply = Frame::with_capacity(64);
    match outcome {
        Ok(Ok(Ok(bytes))) => reply.0 = bytes,
        Ok(Ok(Err(err))) => {
            reply.0.push(Tag::BadResult as u8);
            wire::put_text(&mut reply.0, &err);
        }
        Ok(Err(err)) => {
            reply.0.push(Tag::BadArguments as u8);
            wire::put_text(&mut reply.0, &err);
        }
        Err(payload) => {
            let message = payload_text(payload.as_ref());
            let location = panic_location(&message);
            reply.0.push(Tag::Panicked as u8);
            wire::put_text(&mut reply.0, &message);
            wire::put_text(&mut reply.0, &location);
            // The payload's own `Drop` is user code.
            crate::panic_guard::drop_guarded(payload);
        }
    }
    reply
}
