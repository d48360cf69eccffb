//! [`Worker`]: the pool's handle on one worker process (its pipes, starting it, waiting for a
//! reply, killing and reaping it), and the `poll(2)` the waits are built on.

use std::io::{self, BufReader};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Config;
use super::error::ProcessErrorKind;
use super::wire::{self, Frame};
use super::worker::{WORKER_ENV, fingerprint, init_called};

/// The program a pool runs when none is configured: the file this process runs, even if it was
/// replaced on disk since it started.
const SELF_EXE: &str = "/proc/self/exe";

/// A running worker process, owned by one driver thread: nobody else signals or reaps it, so
/// its pid cannot be reused while a signal is on its way.
pub(super) struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    /// Calls it has run.
    pub(super) calls: u64,
}

/// Why no reply came.
pub(super) enum NoReply {
    /// The worker's stdout closed: it died.
    Died,
    /// The call's deadline passed.
    Deadline,
    /// The driver was told to stop the call (its future was dropped, or the pool shuts down).
    Stopped,
    /// The pipe failed.
    Io(io::Error),
}

impl Worker {
    /// Starts a worker and waits for its greeting.
    pub(super) fn start(config: &Config) -> Result<Worker, ProcessErrorKind> {
        if !init_called() {
            return Err(if std::env::var_os(WORKER_ENV).is_some() {
                ProcessErrorKind::Start(
                    "this process is itself a worker that never reached `init()`; it starts \
                     no workers of its own"
                        .into(),
                )
            } else {
                ProcessErrorKind::Start(
                    "`async_wrap::process::init()` was not called: the workers are this \
                     program run again, and its `main` must call `init()` first"
                        .into(),
                )
            });
        }
        let program = config.program.unwrap_or(SELF_EXE);
        let mut command = Command::new(program);
        if config.program.is_none() {
            if let Some(arg0) = std::env::args_os().next() {
                command.arg0(arg0);
            }
        }
        command
            .env(WORKER_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|err| ProcessErrorKind::Start(format!("cannot run `{program}`: {err}")))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill_and_reap(&mut child);
            return Err(ProcessErrorKind::Start("its pipes were not set up".into()));
        };
        let mut worker = Worker {
            child,
            stdin: Some(stdin),
            stdout: BufReader::with_capacity(64 << 10, stdout),
            pid,
            calls: 0,
        };
        match worker.greeting(config.start_timeout) {
            Ok(()) => Ok(worker),
            Err(kind) => {
                worker.kill(Duration::ZERO);
                Err(kind)
            }
        }
    }

    /// Reads and checks the worker's first frame.
    fn greeting(&mut self, timeout: Duration) -> Result<(), ProcessErrorKind> {
        let fd = self.stdout.get_ref().as_raw_fd();
        let ready = poll(&mut [pollfd(fd, libc::POLLIN)], Some(timeout))
            .map_err(|err| ProcessErrorKind::Io(err.to_string()))?;
        if ready == 0 {
            return Err(ProcessErrorKind::NotAWorker(format!(
                "it did not greet the pool within {timeout:?}"
            )));
        }
        let mut hello = Vec::new();
        match wire::read_frame(&mut self.stdout, &mut hello) {
            Ok(true) if hello.len() == 20 && hello.starts_with(wire::HELLO) => {
                let theirs = u64::from_le_bytes(hello[8..16].try_into().unwrap_or_default());
                if theirs == fingerprint() {
                    Ok(())
                } else {
                    Err(ProcessErrorKind::OtherBuild)
                }
            }
            Ok(true) | Err(_) if self.exited_within(Duration::from_millis(100)).is_none() => Err(
                ProcessErrorKind::NotAWorker("it wrote something else on its stdout".into()),
            ),
            _ => {
                let status = self.exited_within(Duration::from_millis(500));
                Err(ProcessErrorKind::NotAWorker(match status {
                    Some(status) => format!("it exited ({status}) without greeting the pool"),
                    None => "it closed its stdout without greeting the pool".into(),
                }))
            }
        }
    }

    /// The worker's status if it exits within `patience` (it is reaped then).
    fn exited_within(&mut self, patience: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The worker's process id.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the worker is still there: its stdout has not hung up. (One that died while idle
    /// is replaced before a call is sent to it.)
    pub(super) fn is_alive(&self) -> bool {
        let fd = self.stdout.get_ref().as_raw_fd();
        matches!(poll(&mut [pollfd(fd, 0)], Some(Duration::ZERO)), Ok(0))
    }

    /// Sends a request.
    pub(super) fn send(&mut self, request: &mut Frame) -> io::Result<()> {
        match &mut self.stdin {
            Some(stdin) => request.send(stdin),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Waits for the reply, until `deadline`, or until `wake` is written to and `stop` says
    /// so.
    pub(super) fn reply(
        &mut self,
        reply: &mut Vec<u8>,
        wake: &UnixStream,
        deadline: Option<Instant>,
        stop: impl Fn() -> bool,
    ) -> Result<(), NoReply> {
        let out = self.stdout.get_ref().as_raw_fd();
        loop {
            let timeout = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(NoReply::Deadline);
                    }
                    Some(left)
                }
                None => None,
            };
            let mut fds = [
                pollfd(out, libc::POLLIN),
                pollfd(wake.as_raw_fd(), libc::POLLIN),
            ];
            if self.stdout.buffer().is_empty() {
                poll(&mut fds, timeout).map_err(NoReply::Io)?;
            } else {
                fds[0].revents = libc::POLLIN;
            }
            if fds[0].revents != 0 {
                return match wire::read_frame(&mut self.stdout, reply) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(NoReply::Died),
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(NoReply::Died),
                    Err(err) => Err(NoReply::Io(err)),
                };
            }
            if fds[1].revents != 0 {
                drain(wake);
                if stop() {
                    return Err(NoReply::Stopped);
                }
            }
        }
    }

    /// Retires an idle worker: closes its pipe, which it takes as the end, and reaps it.
    pub(super) fn retire(mut self, grace: Duration) {
        self.stdin = None;
        self.reap(grace);
    }

    /// Ends the worker: `SIGTERM`, and `SIGKILL` if it is still there after `grace`. Returns
    /// its exit status.
    pub(super) fn kill(mut self, grace: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        if !grace.is_zero() {
            let pid = libc::pid_t::try_from(self.pid).unwrap_or(libc::pid_t::MAX);
            // SAFETY: `kill` reads no memory. `pid` is this worker's, which nothing but this
            // value reaps, and it is not reaped yet: the pid cannot belong to another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        self.reap(grace)
    }

    /// Waits up to `patience` for the worker to exit, then kills it (`SIGKILL`), and reaps it.
    fn reap(&mut self, patience: Duration) -> Option<ExitStatus> {
        let fd = self.stdout.get_ref().as_raw_fd();
        // Its stdout hangs up when it exits.
        let _ = poll(&mut [pollfd(fd, 0)], Some(patience));
        if let Some(status) = self.exited_within(Duration::from_millis(20)) {
            return Some(status);
        }
        kill_and_reap(&mut self.child)
    }

    /// The worker died (its stdout hung up): its status, reaped.
    pub(super) fn died(mut self) -> Option<ExitStatus> {
        self.stdin = None;
        self.reap(Duration::from_secs(1))
    }
}

/// `SIGKILL`, then `wait`.
fn kill_and_reap(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.kill();
    child.wait().ok()
}

/// The kind of error of a worker that died with `status`.
pub(super) fn crashed(pid: u32, status: Option<ExitStatus>) -> ProcessErrorKind {
    ProcessErrorKind::Crashed {
        pid,
        signal: status.and_then(|status| status.signal()),
        exit_code: status.and_then(|status| status.code()),
    }
}

/// Reads whatever wake-up bytes are waiting.
pub(super) fn drain(wake: &UnixStream) {
    let mut buf = [0; 64];
    while matches!(io::Read::read(&mut &*wake, &mut buf), Ok(n) if n > 0) {}
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// `poll(2)` over `fds`, for at most `timeout` (`None`: no limit), retried on `EINTR`.
/// Returns how many descriptors are ready.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        let millis = match (timeout, deadline) {
            (None, _) | (_, None) => -1,
            (Some(_), Some(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so that a wait never ends just before its deadline.
                i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
            }
        };
        let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a valid, exclusively borrowed slice of `count` `pollfd`s for the
        // whole call, and the kernel writes only their `revents`.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
        if ready >= 0 {
            return Ok(usize::try_from(ready).unwrap_or(0));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
