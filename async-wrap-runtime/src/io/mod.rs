//! Blocking I/O as async I/O: [`Unblock`](unblock::Unblock) for a `Read` or `Write`
//! ([`unblock`]), [`BlockingStream`](stream::BlockingStream) for an iterator ([`stream`]), and
//! the wait at process exit for the writes of dropped writers ([`exit_wait`]).

pub(crate) mod exit_wait;
pub(crate) mod stream;
pub(crate) mod unblock;
