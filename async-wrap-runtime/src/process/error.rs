//! [`ProcessError`]: why a call on a [`ProcessPool`](super::ProcessPool) did not return.

use std::fmt;
use std::time::Duration;

/// A call on a [`ProcessPool`](super::ProcessPool) that did not return a value: its worker
/// died or was killed, or the call could not be made. Names the function and the pool; the
/// [`kind`](ProcessError::kind) says why. (A body's panic is not an error: it is resumed in
/// the caller, as with threads.)
///
/// ```
/// use async_wrap::process::{ProcessError, ProcessErrorKind};
///
/// let err = ProcessError::new("app::parse", "procs", ProcessErrorKind::Crashed {
///     pid: 4242,
///     signal: Some(6),
///     exit_code: None,
/// });
/// assert_eq!(
///     err.to_string(),
///     "async_wrap: `app::parse` failed on process pool `procs`: its worker process 4242 was \
///      killed by signal 6 (SIGABRT); the pool replaces it"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessError {
    function: &'static str,
    pool: String,
    kind: ProcessErrorKind,
}

/// Why a call on a process pool failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessErrorKind {
    /// The worker died while running the call: a signal (`signal`: 11 for a segfault, 6 for an
    /// abort, 9 for the kernel's OOM killer or another `kill -9`) or an exit (`exit_code`, from
    /// `std::process::exit` in the body). Only this call fails; the pool starts a new worker
    /// for the next one.
    Crashed {
        /// The worker's process id.
        pid: u32,
        /// The signal that ended it, if any.
        signal: Option<i32>,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
    },
    /// The call ran past its deadline: its worker was killed (`SIGTERM`, then `SIGKILL` after
    /// the pool's grace period).
    DeadlineExceeded(Duration),
    /// The pool was shut down before the call finished (or before it started); a worker still
    /// running it at the shutdown's deadline was killed.
    ShutDown,
    /// A worker could not be started: the message says why.
    Start(String),
    /// The program the pool started is not a worker: it did not greet the pool as one. Its
    /// `main` must call `async_wrap::process::init()` first.
    NotAWorker(String),
    /// The worker is another build of the program (its functions differ from the pool's).
    OtherBuild,
    /// The worker has no function of this key (another build of the program, or a function
    /// registered only in the pool's process).
    UnknownFunction(String),
    /// The body panicked, on a pool made with
    /// [`panics_as_errors`](super::ProcessPool::panics_as_errors) (else the panic is resumed
    /// in the caller).
    Panicked {
        /// The panic's message.
        message: String,
        /// Where it panicked: `file:line:column`.
        location: String,
        /// The worker's process id.
        pid: u32,
    },
    /// The arguments or the result could not be encoded or decoded: the serializer's message.
    Serialization(String),
    /// The pipe to the worker failed: the message says how.
    Io(String),
}

impl ProcessError {
    /// An error of `function` on the pool named `pool`.
    pub fn new(function: &'static str, pool: impl Into<String>, kind: ProcessErrorKind) -> Self {
        ProcessError {
            function,
            pool: pool.into(),
            kind,
        }
    }

    /// The wrapped function's path.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The pool's name.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Why the call failed.
    pub fn kind(&self) -> &ProcessErrorKind {
        &self.kind
    }
}

/// The usual name of a signal, for messages.
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "async_wrap: `{}` failed on process pool `{}`: ",
            self.function, self.pool
        )?;
        match &self.kind {
            ProcessErrorKind::Crashed {
                pid,
                signal: Some(signal),
                ..
            } => {
                write!(f, "its worker process {pid} was killed by signal {signal}")?;
                if let Some(name) = signal_name(*signal) {
                    write!(f, " ({name})")?;
                }
                if *signal == 9 {
                    write!(f, ", perhaps by the kernel's out-of-memory killer")?;
                }
                write!(f, "; the pool replaces it")
            }
            ProcessErrorKind::Crashed {
                pid,
                exit_code: Some(code),
                ..
            } => write!(
                f,
                "its worker process {pid} exited with code {code} while running it; the pool \
                 replaces it"
            ),
            ProcessErrorKind::Crashed { pid, .. } => {
                write!(f, "its worker process {pid} died; the pool replaces it")
            }
            ProcessErrorKind::DeadlineExceeded(deadline) => write!(
                f,
                "it ran past its deadline of {deadline:?}, and its worker process was killed"
            ),
            ProcessErrorKind::ShutDown => write!(f, "the pool has been shut down"),
            ProcessErrorKind::Start(why) => write!(f, "cannot start a worker process: {why}"),
            ProcessErrorKind::NotAWorker(why) => write!(
                f,
                "the program it started is not a worker ({why}): call \
                 `async_wrap::process::init()` first in `main` (in tests: a test target with \
                 `harness = false` whose `main` calls it)"
            ),
            ProcessErrorKind::OtherBuild => write!(
                f,
                "the worker process is another build of the program (its functions differ)"
            ),
            ProcessErrorKind::UnknownFunction(key) => write!(
                f,
                "the worker process has no function `{key}` (another build of the program?)"
            ),
            ProcessErrorKind::Panicked {
                message,
                location,
                pid,
            } => write!(
                f,
                "it panicked in worker process {pid}: {message} (at {location})"
            ),
            ProcessErrorKind::Serialization(why) => {
                write!(f, "its arguments or result cannot be serialized: {why}")
            }
            ProcessErrorKind::Io(why) => write!(f, "the pipe to its worker process failed: {why}"),
        }
    }
}

impl std::error::Error for ProcessError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_function_pool_and_cause() {
        let err = |kind| ProcessError::new("app::f", "p", kind).to_string();
        assert_eq!(
            err(ProcessErrorKind::Crashed {
                pid: 7,
                signal: None,
                exit_code: Some(3)
            }),
            "async_wrap: `app::f` failed on process pool `p`: its worker process 7 exited with \
             code 3 while running it; the pool replaces it"
        );
        assert!(
            err(ProcessErrorKind::Crashed {
                pid: 7,
                signal: Some(11),
                exit_code: None
            })
            .contains("signal 11 (SIGSEGV)")
        );
        assert!(
            err(ProcessErrorKind::DeadlineExceeded(Duration::from_millis(
                50
            )))
            .contains("50ms")
        );
    }
}
