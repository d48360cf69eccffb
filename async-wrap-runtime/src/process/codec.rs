//! [`Codec`]: how values of one type cross to a worker process and back, as a pair of function
//! pointers made where the type is checked ([`portable`]). The shim's other steps take a codec
//! instead of a serde bound, so a type that cannot cross is one error, at the type the user
//! wrote, and not one more per place it travels through.

use super::wire::{Frame, MAX_FRAME};

/// What crosses to a worker process: arguments and results of `process` functions.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross to a worker process: the arguments and the result of a \
               `process` function must implement `serde::Serialize` and `serde::Deserialize`",
    label = "not `Serialize + DeserializeOwned`",
    note = "derive both: `#[derive(serde::Serialize, serde::Deserialize)]`, or pass a type that \
            has them (`String`, `Vec<u8>`, numbers, tuples, ...)"
)]
pub trait Portable: serde::Serialize + serde::de::DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Portable for T {}

/// Appends a value to a buffer.
type Encode<T> = fn(&T, Vec<u8>) -> Result<Vec<u8>, String>;
/// Reads a value from the front of a buffer, returning it and the rest.
type Decode<T> = for<'a> fn(&'a [u8]) -> Result<(T, &'a [u8]), String>;

/// Encodes values of `E` and decodes them as `D` (postcard): `D` is `E` for a value that
/// crosses as it is, and `E`'s owned form for a borrowed argument (`&str` is encoded from the
/// caller's borrow and decoded in the worker as a `String`).
pub struct Codec<E: ?Sized, D = E> {
    encode: Encode<E>,
    decode: Decode<D>,
}

impl<E: ?Sized, D> Clone for Codec<E, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: ?Sized, D> Copy for Codec<E, D> {}

impl<E: ?Sized, D> Codec<E, D> {
    /// Appends `value` to `out`.
    pub(crate) fn encode(self, value: &E, out: Vec<u8>) -> Result<Vec<u8>, String> {
        (self.encode)(value, out)
    }

    /// A value from the front of `bytes`, and what follows it.
    pub(crate) fn decode(self, bytes: &[u8]) -> Result<(D, &[u8]), String> {
        (self.decode)(bytes)
    }
}

/// The codec of `T`, checking where the shim calls it (at the user's type) that `T` can cross.
#[inline]
pub fn portable<T: Portable>() -> Codec<T> {
    Codec {
        encode: |value, out| postcard::to_extend(value, out).map_err(|err| err.to_string()),
        decode: |bytes| postcard::take_from_bytes(bytes).map_err(|err| err.to_string()),
    }
}

/// The codec of a borrowed argument `&B` (`&str`, `&[u8]`, `&Path`, `&T` for a `Clone` `T`):
/// encoded from the borrow at the call, decoded in the worker as `B::Owned`, which the body gets
/// a borrow of. serde writes a borrowed form and its owned form alike (`str` and `String`,
/// `[T]` and `Vec<T>`, `Path` and `PathBuf`).
#[inline]
pub fn portable_ref<B>() -> Codec<B, B::Owned>
where
    B: ?Sized + ToOwned<Owned: Portable> + serde::Serialize,
{
    Codec {
        encode: |value, out| postcard::to_extend(value, out).map_err(|err| err.to_string()),
        decode: |bytes| postcard::take_from_bytes(bytes).map_err(|err| err.to_string()),
    }
}

/// A call's request being built: the key, then each argument.
pub struct Request {
    frame: Result<Frame, String>,
}

impl Request {
    /// A request to run the function `key`.
    pub fn new(key: &str) -> Self {
        let frame = u16::try_from(key.len())
            .map_err(|_| "the function's key is too long".to_owned())
            .map(|len| {
                let mut frame = Frame::with_capacity(2 + key.len() + 16);
                frame.0.extend_from_slice(&len.to_le_bytes());
                frame.0.extend_from_slice(key.as_bytes());
                frame
            });
        Request { frame }
    }

    /// Appends an argument.
    pub fn push<E: ?Sized, D>(&mut self, codec: Codec<E, D>, value: &E) {
        if let Ok(frame) = &mut self.frame {
            match codec.encode(value, std::mem::take(&mut frame.0)) {
                Ok(bytes) => frame.0 = bytes,
                Err(err) => self.frame = Err(err),
            }
        }
    }

    /// The frame, or the encoder's error (one is a frame too large to send).
    pub(crate) fn into_frame(self) -> Result<Frame, String> {
        let frame = self.frame?;
        let len = frame.0.len() - 4;
        if len > MAX_FRAME {
            return Err(format!(
                "the arguments take {len} bytes, over the limit of {MAX_FRAME} bytes a call \
                 can carry"
            ));
        }
        Ok(frame)
    }
}

/// The arguments of a call, decoded one by one in the worker.
pub struct Arguments<'a> {
    rest: &'a [u8],
}

impl<'a> Arguments<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Arguments { rest: bytes }
    }

    /// The next argument.
    ///
    /// # Errors
    ///
    /// The decoder's message, if the bytes are not a `T`.
    pub fn take<E: ?Sized, D>(&mut self, codec: Codec<E, D>) -> Result<D, String> {
        let (value, rest) = codec.decode(self.rest)?;
        self.rest = rest;
        Ok(value)
    }

    /// Checks that every byte was read: arguments that do not decode as they were encoded
    /// (postcard is not self-describing: `#[serde(skip_serializing_if)]`, for one) are an
    /// error, not a call with shifted values.
    ///
    /// # Errors
    ///
    /// How many bytes were left.
    pub fn finish(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes of the arguments were left unread: a type does not read back as it \
                 was written (postcard is not self-describing: `skip_serializing_if` and \
                 other attributes that depend on the format cannot be used)",
                self.rest.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_back_as_pushed() {
        let mut request = Request::new("app::f#1");
        request.push(portable::<u32>(), &7);
        request.push(portable::<String>(), &"two".to_owned());
        let frame = request.into_frame().unwrap();
        let (key, bytes) = super::super::wire::split_request(&frame.0[4..]).unwrap();
        assert_eq!(key, "app::f#1");
        let mut arguments = Arguments::new(bytes);
        assert_eq!(arguments.take(portable::<u32>()), Ok(7));
        assert_eq!(arguments.take(portable::<String>()).as_deref(), Ok("two"));
        assert!(arguments.take(portable::<u64>()).is_err());
    }

    #[test]
    fn a_borrowed_argument_reads_back_as_its_owned_form() {
        let mut request = Request::new("app::g#1");
        request.push(portable_ref::<str>(), "text");
        request.push(portable_ref::<[u8]>(), &[1, 2, 3][..]);
        request.push(
            portable_ref::<std::path::Path>(),
            std::path::Path::new("/tmp/x"),
        );
        request.push(portable_ref::<u16>(), &9);
        let frame = request.into_frame().unwrap();
        let (_, bytes) = super::super::wire::split_request(&frame.0[4..]).unwrap();
        let mut arguments = Arguments::new(bytes);
        assert_eq!(arguments.take(portable_ref::<str>()).as_deref(), Ok("text"));
        assert_eq!(arguments.take(portable_ref::<[u8]>()), Ok(vec![1, 2, 3]));
        assert_eq!(
            arguments.take(portable_ref::<std::path::Path>()),
            Ok(std::path::PathBuf::from("/tmp/x"))
        );
        assert_eq!(arguments.take(portable_ref::<u16>()), Ok(9));
        assert!(arguments.finish().is_ok());
    }
}
