//! [`Worker`]: the pool's handle on one worker process (its pipes, starting it, waiting for a
//! reply, killing and reaping it), and the `poll(2)` the waits are built on.

use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Config;
use super::error::ProcessErrorKind;
use super::wire;
use super::worker::{INIT_PANICKED, POOL_ENV, WORKER_ENV, fingerprint, init_called};

/// The length of a worker's greeting frame, and its length prefix on the wire.
const HELLO_LEN: usize = 20;
const HELLO_LEN_PREFIX: [u8; 4] = 20_u32.to_le_bytes();

/// The most a program may print on its stdout before its greeting (before `init()`).
const MAX_BANNER: usize = 64 << 10;

/// The program a pool runs when none is configured: the file this process runs, even if it was
/// replaced on disk since it started.
const SELF_EXE: &str = "/proc/self/exe";

/// A running worker process, owned by one driver thread: nobody else signals or reaps it, so
/// its pid cannot be reused while a signal is on its way.
pub(super) struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// A descriptor that is readable once the process has exited (`pidfd_open`, Linux 5.3):
    /// its death is seen even when a process it forked keeps its stdout open. `None` on older
    /// kernels, where the end of its stdout is the only sign.
    pidfd: Option<OwnedFd>,
    pid: u32,
    /// Calls it has run.
    pub(super) calls: u64,
}

/// Why no reply came.
pub(super) enum NoReply {
    /// The worker died (its process exited, or its stdout closed).
    Died,
    /// The call's deadline passed.
    Deadline,
    /// The driver was told to stop the call (its future was dropped, or the pool shuts down).
    Stopped,
    /// The pipe failed.
    Io(io::Error),
}

impl Worker {
    /// Starts a worker and waits for its greeting, or until `wake` is written to and `stop`
    /// says so (the call was dropped, or the pool shuts down): then `Err(None)`.
    pub(super) fn start(
        config: &Config,
        wake: &UnixStream,
        stop: impl Fn() -> bool,
    ) -> Result<Worker, Option<ProcessErrorKind>> {
        if !init_called() {
            return Err(Some(if std::env::var_os(WORKER_ENV).is_some() {
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
            }));
        }
        let program = config.program.unwrap_or(SELF_EXE);
        let mut command = Command::new(program);
        if config.program.is_none() {
            if let Some(arg0) = std::env::args_os().next() {
                command.arg0(arg0);
            }
        }
        match config.name {
            Some(name) => command.env(POOL_ENV, name),
            None => command.env_remove(POOL_ENV),
        };
        command
            // A process group of its own: a terminal's Ctrl-C (`SIGINT` to the foreground
            // group) is the program's to handle, not a death of every running call. A worker
            // still goes with its pool: it exits when the pipe from the pool closes.
            .process_group(0)
            .env(WORKER_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(config.stderr.stdio().map_err(Some)?);
        let mut child = command.spawn().map_err(|err| {
            Some(ProcessErrorKind::Start(format!(
                "cannot run `{program}`: {err}"
            )))
        })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill_and_reap(&mut child);
            return Err(Some(ProcessErrorKind::Start(
                "its pipes were not set up".into(),
            )));
        };
        // Writes never block: they wait in `poll`, with the deadline and the wake-up socket.
        if let Err(err) = set_nonblocking(stdin.as_raw_fd()) {
            kill_and_reap(&mut child);
            return Err(Some(ProcessErrorKind::Start(format!(
                "cannot make its stdin non-blocking: {err}"
            ))));
        }
        let pidfd = match pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(err) => {
                kill_and_reap(&mut child);
                return Err(Some(ProcessErrorKind::Start(format!(
                    "cannot open a pidfd for it: {err}"
                ))));
            }
        };
        let mut worker = Worker {
            child,
            stdin: Some(stdin),
            stdout: BufReader::with_capacity(64 << 10, stdout),
            pidfd,
            pid,
            calls: 0,
        };
        match worker.greeting(config.start_timeout, wake, stop) {
            Ok(()) => Ok(worker),
            Err(kind) => {
                worker.kill(Duration::ZERO);
                Err(kind)
            }
        }
    }

    /// Waits until `fd` (the worker's stdout or stdin) is ready for `events`, polling it with
    /// the time left until `deadline`, the worker's pidfd (a process it forked may hold its
    /// pipes open after it died), and `wake` (then `stop` says whether to give up). Every read
    /// and write of a worker's pipes waits here first, so a worker that dies, hangs or is
    /// stopped in the middle of a frame never blocks its driver.
    fn wait_ready(
        &self,
        fd: RawFd,
        events: libc::c_short,
        deadline: Option<Instant>,
        wake: &UnixStream,
        stop: &impl Fn() -> bool,
    ) -> Result<(), NoReply> {
        let pidfd = self.pidfd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(NoReply::Deadline);
            }
            let mut fds = [
                pollfd(fd, events),
                pollfd(wake.as_raw_fd(), libc::POLLIN),
                pollfd(pidfd, libc::POLLIN),
            ];
            poll(&mut fds, left).map_err(NoReply::Io)?;
            if fds[0].revents == 0 && fds[2].revents != 0 {
                // It exited: what it wrote just before is read first.
                let mut again = [pollfd(fd, events)];
                let _ = poll(&mut again, Some(Duration::ZERO));
                if again[0].revents & events == 0 {
                    return Err(NoReply::Died);
                }
                fds[0].revents = again[0].revents;
            }
            if fds[0].revents != 0 {
                return Ok(());
            }
            if fds[1].revents != 0 {
                drain(wake);
                if stop() {
                    return Err(NoReply::Stopped);
                }
            }
        }
    }

    /// Reads `buf.len()` bytes from the worker's stdout, each read after a
    /// [`wait_ready`](Self::wait_ready) (unless bytes are buffered): never blocks in a read.
    fn read_polled(
        &mut self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        wake: &UnixStream,
        stop: &impl Fn() -> bool,
    ) -> Result<(), NoReply> {
        let out = self.stdout.get_ref().as_raw_fd();
        let mut got = 0;
        while got < buf.len() {
            if self.stdout.buffer().is_empty() {
                self.wait_ready(out, libc::POLLIN, deadline, wake, stop)?;
            }
            match self.stdout.read(&mut buf[got..]) {
                Ok(0) => return Err(NoReply::Died),
                Ok(n) => got += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(NoReply::Io(err)),
            }
        }
        Ok(())
    }

    /// Writes `bytes` to the worker's stdin (non-blocking), after a
    /// [`wait_ready`](Self::wait_ready) whenever its pipe is full: never blocks in a write,
    /// so a stopped or hung worker that does not read meets the deadline, the drop of the
    /// call's future and a shutdown as a reply's wait does.
    fn write_polled(
        &self,
        bytes: &[u8],
        deadline: Option<Instant>,
        wake: &UnixStream,
        stop: &impl Fn() -> bool,
    ) -> Result<(), NoReply> {
        let Some(stdin) = &self.stdin else {
            return Err(NoReply::Died);
        };
        let fd = stdin.as_raw_fd();
        let mut sent = 0;
        while sent < bytes.len() {
            match io::Write::write(&mut &*stdin, &bytes[sent..]) {
                Ok(0) => return Err(NoReply::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_ready(fd, libc::POLLOUT, deadline, wake, stop)?;
                }
                // Its reader is gone: the worker died (or closed its stdin).
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(NoReply::Died);
                }
                Err(err) => return Err(NoReply::Io(err)),
            }
        }
        Ok(())
    }

    /// Reads and checks the worker's first frame (after what the program printed before
    /// `init()`), within `timeout`.
    fn greeting(
        &mut self,
        timeout: Duration,
        wake: &UnixStream,
        stop: impl Fn() -> bool,
    ) -> Result<(), Option<ProcessErrorKind>> {
        let deadline = Instant::now().checked_add(timeout);
        let late = || {
            Some(ProcessErrorKind::NotAWorker(format!(
                "it did not greet the pool within {timeout:?}"
            )))
        };
        // What the program prints before `init()` comes first: the greeting is found by its
        // length and magic bytes, and what came before it goes to this process's stdout, where
        // the program meant it to go. A program that writes more than `MAX_BANNER` without
        // greeting is not a worker.
        let mut marker = [0_u8; 4 + wire::HELLO.len()];
        marker[..4].copy_from_slice(&HELLO_LEN_PREFIX);
        marker[4..].copy_from_slice(wire::HELLO);
        let mut seen = Vec::new();
        let mut hello = [0; HELLO_LEN];
        let read = loop {
            let mut byte = [0_u8];
            if let Err(no_reply) = self.read_polled(&mut byte, deadline, wake, &stop) {
                break Err(no_reply);
            }
            seen.push(byte[0]);
            if seen.ends_with(&marker) {
                hello[..wire::HELLO.len()].copy_from_slice(wire::HELLO);
                let rest = &mut hello[wire::HELLO.len()..];
                break self.read_polled(rest, deadline, wake, &stop);
            }
            if seen.len() > MAX_BANNER + marker.len() {
                break Err(NoReply::Io(io::ErrorKind::InvalidData.into()));
            }
        };
        let banner = seen.len().saturating_sub(marker.len());
        if read.is_ok() && banner > 0 {
            // Lost if this process's stdout is gone: as the program's own line would be.
            let mut stdout = io::stdout().lock();
            let _ = io::Write::write_all(&mut stdout, &seen[..banner]);
            let _ = io::Write::flush(&mut stdout);
        }
        let read = match read {
            Ok(()) => Ok(true),
            Err(NoReply::Deadline) => return Err(late()),
            Err(NoReply::Stopped) => return Err(None),
            Err(NoReply::Died) => Ok(false),
            Err(NoReply::Io(err)) => Err(err),
        };
        match read {
            Ok(true) if hello.starts_with(wire::HELLO) => {
                let theirs = u64::from_le_bytes(hello[8..16].try_into().unwrap_or_default());
                if theirs == fingerprint() {
                    Ok(())
                } else {
                    Err(Some(ProcessErrorKind::OtherBuild))
                }
            }
            Ok(true) | Err(_) if self.exited_within(Duration::from_millis(100)).is_none() => {
                Err(Some(ProcessErrorKind::NotAWorker(format!(
                    "it wrote {} bytes on its stdout without greeting the pool",
                    seen.len()
                ))))
            }
            _ => {
                let status = self.exited_within(Duration::from_millis(500));
                if status.and_then(|status| status.code()) == Some(INIT_PANICKED) {
                    return Err(Some(ProcessErrorKind::Start(
                        "the workers' initializer (given to `init_with`) panicked before the \
                         worker could serve; its message is on the worker's stderr"
                            .into(),
                    )));
                }
                Err(Some(ProcessErrorKind::NotAWorker(match status {
                    Some(status) => format!("it exited ({status}) without greeting the pool"),
                    None => "it closed its stdout without greeting the pool".into(),
                })))
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

    /// Whether the worker is still there: its process has not exited, and its stdout has not
    /// hung up. (One that died while idle is reaped, and replaced before a call is sent to it.)
    pub(super) fn is_alive(&self) -> bool {
        let fd = self.stdout.get_ref().as_raw_fd();
        // A negative descriptor (no pidfd) is skipped by `poll`.
        let pidfd = self.pidfd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let mut fds = [pollfd(fd, 0), pollfd(pidfd, libc::POLLIN)];
        matches!(poll(&mut fds, Some(Duration::ZERO)), Ok(0))
    }

    /// Sends a request, until `deadline`, or until `wake` is written to and `stop` says so.
    pub(super) fn send(
        &self,
        request: &[u8],
        wake: &UnixStream,
        deadline: Option<Instant>,
        stop: impl Fn() -> bool,
    ) -> Result<(), NoReply> {
        self.write_polled(request, deadline, wake, &stop)
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
        let mut len = [0; 4];
        self.read_polled(&mut len, deadline, wake, &stop)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > wire::MAX_FRAME {
            return Err(NoReply::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame length out of range",
            )));
        }
        reply.clear();
        reply.resize(len, 0);
        self.read_polled(reply, deadline, wake, &stop)
    }

    /// Retires an idle worker: closes its pipe, which it takes as the end, and reaps it.
    pub(super) fn retire(mut self, grace: Duration) {
        self.stdin = None;
        self.reap(grace);
    }

    /// Ends the worker and its process group (the processes its bodies started, unless they
    /// left it): `SIGTERM` to them, then, once the worker has exited or `grace` has passed,
    /// `SIGKILL`; then reaps the worker. Returns its exit status.
    pub(super) fn kill(mut self, grace: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        if !grace.is_zero() {
            self.signal_group(libc::SIGTERM);
            self.signal(libc::SIGTERM);
            self.wait_for_exit(grace);
        }
        // The group is killed before the worker is reaped (below): its id is the worker's pid,
        // which no other process can take meanwhile.
        self.signal_group(libc::SIGKILL);
        self.signal(libc::SIGKILL);
        self.child.wait().ok()
    }

    /// Sends `signal` to the worker's process group, whose id is its pid (it leads a group of
    /// its own), and which the processes its bodies started are in unless they left it.
    fn signal_group(&self, signal: libc::c_int) {
        let Some(group) = libc::pid_t::try_from(self.pid).ok().filter(|pid| *pid > 1) else {
            // Never `kill(-1)` (every process), nor `kill(0)` (the pool's own group).
            return;
        };
        // SAFETY: `kill` reads no memory. The worker is not reaped yet (its driver reaps it
        // after this), so its pid, the group's id, cannot name another process or group. (In
        // a program that ignores `SIGCHLD`, the kernel reaps a worker as it exits; the group's
        // id then stays taken while any process of the group lives, and could be reused only
        // once the group is empty, after the pid numbers wrapped around meanwhile.)
        unsafe { libc::kill(-group, signal) };
    }

    /// Sends `signal` to the worker: through its pidfd if it has one, which names this process
    /// for ever (in a program that ignores `SIGCHLD`, the kernel reaps a worker by itself, and
    /// its pid may then be reused).
    fn signal(&self, signal: libc::c_int) {
        if let Some(pidfd) = &self.pidfd {
            // SAFETY: `pidfd_send_signal` reads no memory (no `siginfo_t` is passed); `pidfd`
            // is open, owned by this worker.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            return;
        }
        let pid = libc::pid_t::try_from(self.pid).unwrap_or(libc::pid_t::MAX);
        // SAFETY: `kill` reads no memory. `pid` is this worker's, which nothing but this value
        // reaps, and it is not reaped yet: the pid cannot belong to another process.
        unsafe { libc::kill(pid, signal) };
    }

    /// Waits up to `patience` for the worker to exit, without reaping it.
    fn wait_for_exit(&self, patience: Duration) {
        // Its pidfd is readable when it exits; else its stdout hangs up then (unless a process
        // it forked holds it).
        let _ = match &self.pidfd {
            Some(pidfd) => poll(
                &mut [pollfd(pidfd.as_raw_fd(), libc::POLLIN)],
                Some(patience),
            ),
            None => poll(
                &mut [pollfd(self.stdout.get_ref().as_raw_fd(), 0)],
                Some(patience),
            ),
        };
    }

    /// Waits up to `patience` for the worker to exit, then kills it (`SIGKILL`), and reaps it.
    fn reap(&mut self, patience: Duration) -> Option<ExitStatus> {
        self.wait_for_exit(patience);
        if let Some(status) = self.exited_within(Duration::from_millis(20)) {
            return Some(status);
        }
        self.signal(libc::SIGKILL);
        self.child.wait().ok()
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

/// A descriptor that becomes readable when process `pid` exits: `Ok(None)` if the kernel has
/// none to give (older than 5.3, or a sandbox that forbids the call), an error if it is out of
/// descriptors or memory (the worker must not run on without one it could have had).
fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Ok(None);
    };
    // SAFETY: `pidfd_open` reads no memory; `pid` is a child not yet reaped, so it names that
    // child. The descriptor it returns (close-on-exec) is owned by the `OwnedFd` alone.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let Some(fd) = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0) else {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Err(err),
            _ => Ok(None),
        };
    };
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
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

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fcntl(F_GETFL)` and `fcntl(F_SETFL)` read no memory; `fd` is open (a pipe of
    // this process's, not shared with the worker: only its other end is).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

/// Where a [`ProcessPool`](super::ProcessPool)'s workers write their standard error (the panic
/// messages of their bodies, and what the bodies print): see
/// [`ProcessPool::worker_stderr`](super::ProcessPool::worker_stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerStderr {
    /// The pool's process's own standard error (the default).
    Inherit,
    /// Nowhere (`/dev/null`).
    Null,
    /// Appended to the file at this path, created if missing; a worker that cannot open it
    /// fails to start, and the call that needed it fails with
    /// [`ProcessErrorKind::Start`](super::ProcessErrorKind::Start) naming the path.
    AppendTo(&'static str),
}

impl WorkerStderr {
    /// The standard error of a worker about to start.
    fn stdio(self) -> Result<Stdio, ProcessErrorKind> {
        match self {
            WorkerStderr::Inherit => Ok(Stdio::inherit()),
            WorkerStderr::Null => Ok(Stdio::null()),
            WorkerStderr::AppendTo(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Stdio::from)
                .map_err(|err| {
                    ProcessErrorKind::Start(format!(
                        "cannot open `{path}` for the workers' standard error: {err}"
                    ))
                }),
        }
    }
}
