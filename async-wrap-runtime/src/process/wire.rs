//! The bytes between a pool and its worker processes: length-prefixed frames over the worker's
//! stdin and stdout, and the few messages they carry.
//!
//! A frame is a little-endian `u32` length and that many bytes. Buffers are built with the
//! four length bytes reserved in front ([`Frame`]), so that each frame is one `write`.
//!
//! | direction | frame body |
//! |---|---|
//! | worker → pool, once at start | `HELLO`, protocol version, fingerprint (`u64`), pid (`u32`) |
//! | pool → worker, per call | key length (`u16`), key, the arguments (postcard) |
//! | worker → pool, per call | a [`Tag`] byte, then the result (postcard) or a message |

use std::io::{self, Read, Write};

/// The first bytes a worker writes: anything else on its stdout means the program is not a
/// worker (its `main` does not call `async_wrap::process::init()` first).
pub(crate) const HELLO: &[u8; 8] = b"AWPROC\0\x01";

/// The largest frame accepted: a corrupt length must not make the reader allocate gigabytes.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// What a reply says, in its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    /// The body returned: the result follows, postcard-encoded.
    Returned = 0,
    /// The body panicked: the message and its location follow ([`text_pair`]).
    Panicked = 1,
    /// The worker has no function of that key: the key follows.
    UnknownKey = 2,
    /// The arguments could not be decoded: the decoder's message follows.
    BadArguments = 3,
    /// The result could not be encoded: the encoder's message follows.
    BadResult = 4,
}

impl Tag {
    pub(crate) fn of(byte: u8) -> Option<Tag> {
        Some(match byte {
            0 => Tag::Returned,
            1 => Tag::Panicked,
            2 => Tag::UnknownKey,
            3 => Tag::BadArguments,
            4 => Tag::BadResult,
            _ => return None,
        })
    }
}

/// A frame being built: four bytes reserved for the length, then the body.
#[doc(hidden)]
pub struct Frame(pub(crate) Vec<u8>);

impl Frame {
    pub(crate) fn with_capacity(body: usize) -> Self {
        let mut bytes = Vec::with_capacity(body + 4);
        bytes.extend_from_slice(&[0; 4]);
        Frame(bytes)
    }

    /// The frame's bytes, its length filled in: an `InvalidInput` error if it is too large.
    pub(crate) fn bytes(&mut self) -> io::Result<&[u8]> {
        let len = u32::try_from(self.0.len() - 4)
            .ok()
            .filter(|len| (*len as usize) <= MAX_FRAME)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        Ok(&self.0)
    }

    /// Writes the frame, its length filled in, with one `write_all`.
    pub(crate) fn send(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(self.bytes()?)?;
        out.flush()
    }
}

/// Reads one frame's body into `buf`. `Ok(false)`: the stream ended cleanly before a frame.
pub(crate) fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame length out of range",
        ));
    }
    buf.clear();
    buf.resize(len, 0);
    input.read_exact(buf)?;
    Ok(true)
}

/// Appends a length-prefixed string.
pub(crate) fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Reads a string written by [`put_text`], and what follows it.
pub(crate) fn take_text(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let text = bytes.get(4..4 + len)?;
    Some((
        String::from_utf8_lossy(text).into_owned(),
        &bytes[4 + len..],
    ))
}

/// Two strings written by [`put_text`] one after the other.
pub(crate) fn text_pair(bytes: &[u8]) -> Option<(String, String)> {
    let (first, rest) = take_text(bytes)?;
    let (second, _) = take_text(rest)?;
    Some((first, second))
}

/// A request's key and arguments.
pub(crate) fn split_request(body: &[u8]) -> Option<(&str, &[u8])> {
    let len = u16::from_le_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(body.get(2..2 + len)?).ok()?;
    Some((key, &body[2 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut frame = Frame::with_capacity(3);
        frame.0.extend_from_slice(b"abc");
        let mut wire = Vec::new();
        frame.send(&mut wire).unwrap();
        let mut buf = Vec::new();
        let mut input = &wire[..];
        assert!(read_frame(&mut input, &mut buf).unwrap());
        assert_eq!(buf, b"abc");
        assert!(!read_frame(&mut input, &mut buf).unwrap());
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let mut input: &[u8] = &[9, 0, 0, 0, 1, 2];
        assert!(read_frame(&mut input, &mut Vec::new()).is_err());
        let mut input: &[u8] = &[255, 255, 255, 255];
        assert!(read_frame(&mut input, &mut Vec::new()).is_err());
    }

    #[test]
    fn texts_read_back() {
        let mut out = Vec::new();
        put_text(&mut out, "boom");
        put_text(&mut out, "src/lib.rs:1:2");
        assert_eq!(
            text_pair(&out),
            Some(("boom".to_owned(), "src/lib.rs:1:2".to_owned()))
        );
        assert_eq!(text_pair(&out[..5]), None);
    }
}
