//! Low-level pieces of the kv binary format: [`DecodeError`], a bounds-checked
//! [`Reader`] and an append-only [`Writer`].
//!
//! The byte layout itself (tags, field order) lives next to the types it
//! encodes, in `command.rs`. This file only knows primitives, all
//! little-endian:
//!
//! ```text
//! u8 | u32 | u64 | i64          fixed width
//! bytes = len:u32 data[len]     a byte string
//! count = n:u32                 the number of items of a list that follows
//! ```
//!
//! Invariants:
//! - A [`Reader`] never reads past its input and never panics: every read
//!   that would is an `Err(DecodeError::Truncated)`.
//! - A length or count is checked against the remaining input *before*
//!   anything is allocated for it, so a hostile 4-byte prefix cannot make the
//!   decoder reserve gigabytes (`DecodeError::LengthTooLarge`).
//! - Decoding is canonical: fixed-width integers, strict flags and the
//!   trailing-bytes check mean one value has exactly one encoding.

use bytes::Bytes;
use std::fmt;

/// Why a byte string is not a valid encoding. Bad input from a client, a
/// peer or the disk: reported, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended while reading `what`.
    Truncated { what: &'static str, needed: usize, remaining: usize },
    /// The first byte names a format version this build does not know.
    UnsupportedVersion { what: &'static str, version: u8 },
    /// A tag byte that names no variant of `what`.
    UnknownTag { what: &'static str, tag: u8 },
    /// A length or count prefix that cannot fit in the remaining input.
    LengthTooLarge { what: &'static str, length: u64, remaining: usize },
    /// The value decoded completely but input is left over.
    TrailingBytes { what: &'static str, count: usize },
    /// An error message that is not UTF-8.
    InvalidUtf8 { what: &'static str },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { what, needed, remaining } => {
                write!(f, "kv decode: input truncated while reading {what}: need {needed} bytes, {remaining} left")
            }
            DecodeError::UnsupportedVersion { what, version } => {
                write!(f, "kv decode: unsupported {what} format version {version}")
            }
            DecodeError::UnknownTag { what, tag } => write!(f, "kv decode: unknown {what} tag {tag}"),
            DecodeError::LengthTooLarge { what, length, remaining } => {
                write!(f, "kv decode: {what} length {length} exceeds the {remaining} bytes of remaining input")
            }
            DecodeError::TrailingBytes { what, count } => {
                write!(f, "kv decode: {count} trailing bytes after a complete {what}")
            }
            DecodeError::InvalidUtf8 { what } => write!(f, "kv decode: {what} is not valid UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads primitives off the front of a byte slice.
///
/// Invariant: `input` is always a suffix of the slice given to [`Reader::new`].
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input }
    }

    fn take(&mut self, what: &'static str, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.input.len() {
            return Err(DecodeError::Truncated { what, needed: count, remaining: self.input.len() });
        }
        let (head, tail) = self.input.split_at(count);
        self.input = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(what, N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take_array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take_array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take_array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take_array(what)?))
    }

    /// A `len:u32 data[len]` byte string, copied out of the input.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        Ok(Bytes::copy_from_slice(self.slice(what)?))
    }

    /// A `len:u32 data[len]` byte string, left in the input.
    pub(crate) fn slice(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let length = self.u32(what)?;
        let length = self.check_fits(what, length, 1)?;
        self.take(what, length)
    }

    /// The item count of a list whose every item takes at least
    /// `item_bytes_min` (> 0) bytes: rejected unless that many items could
    /// fit in the remaining input, so callers may reserve `count` slots.
    pub(crate) fn count(&mut self, what: &'static str, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let count = self.u32(what)?;
        self.check_fits(what, count, item_bytes_min)
    }

    fn check_fits(&self, what: &'static str, length: u32, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let remaining = self.input.len();
        let fits = usize::try_from(length)
            .ok()
            .and_then(|n| n.checked_mul(item_bytes_min))
            .is_some_and(|bytes| bytes <= remaining);
        if !fits {
            return Err(DecodeError::LengthTooLarge { what, length: u64::from(length), remaining });
        }
        // `fits` implies the conversion succeeded.
        Ok(length as usize)
    }

    /// Ends decoding of `what`: any unread byte is an error.
    pub(crate) fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { what, count: self.input.len() })
        }
    }
}

/// Appends primitives to a byte vector.
pub(crate) struct Writer {
    buffer: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Writer {
        Writer { buffer: Vec::with_capacity(capacity) }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buffer.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buffer.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buffer.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.buffer.extend_from_slice(&value.to_le_bytes());
    }

    /// A length or count prefix.
    ///
    /// # Panics
    /// If `length` exceeds `u32::MAX`. Callers bound their inputs far below
    /// that (the client protocol caps a bulk string at 512 MiB, like Redis'
    /// `proto-max-bulk-len`), so reaching it is a bug, not bad input.
    pub(crate) fn length(&mut self, length: usize) {
        let length = u32::try_from(length).expect("kv encode: field or list longer than u32::MAX");
        self.u32(length);
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.length(value.len());
        self.buffer.extend_from_slice(value);
    }

    pub(crate) fn finish(self) -> Bytes {
        Bytes::from(self.buffer)
    }
}

/// Encoded size of a `bytes` field holding `value`.
pub(crate) fn bytes_len(value: &[u8]) -> usize {
    4 + value.len()
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;

    /// Tiny xorshift64 with a fixed seed: deterministic fuzz input.
    pub(crate) struct XorShift(pub(crate) u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Checks a decoder against hostile input. `round_trip` decodes its input
    /// and, on success, returns the re-encoding. Noise starts with the
    /// seeds' version byte (`seeds[0][0]`).
    /// - every strict prefix of every (valid) seed must fail to decode;
    /// - `rounds` pseudo-random inputs (noise, and seeds with a few bytes
    ///   flipped) must not panic, and whatever decodes must re-encode to
    ///   the identical bytes (the encoding is canonical).
    pub(crate) fn check_decoder_robust(seeds: &[Bytes], rounds: usize, round_trip: impl Fn(&[u8]) -> Option<Bytes>) {
        let version = seeds[0][0];
        for seed in seeds {
            assert_eq!(round_trip(seed).as_ref(), Some(seed), "seed must be valid and canonical");
            for end in 0..seed.len() {
                assert_eq!(round_trip(&seed[..end]), None, "{seed:?} cut at {end} must not decode");
            }
        }
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut decoded_count = 0;
        for round in 0..rounds {
            let input: Vec<u8> = if round % 2 == 0 {
                // Noise, biased towards the valid version byte and small tags.
                let len = (rng.next() % 64) as usize;
                (0..len).map(|i| if i == 0 { version } else { (rng.next() % 9) as u8 }).collect()
            } else {
                let mut bytes = seeds[(rng.next() % seeds.len() as u64) as usize].to_vec();
                for _ in 0..1 + rng.next() % 3 {
                    let at = (rng.next() % bytes.len() as u64) as usize;
                    bytes[at] = rng.next() as u8;
                }
                bytes
            };
            if let Some(encoded) = round_trip(&input) {
                decoded_count += 1;
                assert_eq!(encoded.as_ref(), input.as_slice(), "non-canonical encoding");
            }
        }
        assert!(decoded_count > 0, "the fuzz input should hit some valid encodings");
    }
}
