//! [`Reply`]: the result of applying an op, shaped like the Redis reply, and
//! its binary format. Replies are encoded so a session's cached reply can be
//! stored in a snapshot or shipped to the node that serves the client.
//!
//! Format version 1, little-endian, primitives as in `codec.rs`:
//!
//! ```text
//! reply = version:u8(=1) ( 1 (OK) | 2 (nil) | 3 value:i64 | 4 value:bytes
//!       | 5 count (0 | 1 value:bytes)* | 6 message:bytes(UTF-8) )
//! ```
//!
//! Invariants, as for commands:
//! - `decode(encode(r)) == Ok(r)` and `encode(decode(b)?) == b` (canonical);
//! - `decode` never panics; it rejects an unknown version, tag or item flag,
//!   truncated input, trailing bytes, a non-UTF-8 error message and any
//!   length or count larger than the remaining input, before allocating.

use super::codec::{bytes_len, DecodeError, Reader, Writer};
use bytes::Bytes;

/// The first byte of every encoded [`Reply`].
pub const REPLY_FORMAT_VERSION: u8 = 1;

const REPLY_OK: u8 = 1;
const REPLY_NIL: u8 = 2;
const REPLY_INT: u8 = 3;
const REPLY_BULK: u8 = 4;
const REPLY_ARRAY: u8 = 5;
const REPLY_ERROR: u8 = 6;

/// The result of applying an op, shaped like the Redis reply:
/// GET → `Bulk` or `Nil`; SET → `Ok`, or `Nil` when its condition fails;
/// DEL, EXISTS, INCRBY → `Int`; MGET → `Array`; MSET → `Ok`; failures →
/// `Error` with a Redis-style message (`"ERR ..."`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Nil,
    Int(i64),
    Bulk(Bytes),
    /// One entry per requested key, `None` for a missing key.
    Array(Vec<Option<Bytes>>),
    /// A Redis error line, e.g. `"ERR value is not an integer or out of range"`.
    Error(String),
}

impl Reply {
    fn encoded_len(&self) -> usize {
        1 + 1
            + match self {
                Reply::Ok | Reply::Nil => 0,
                Reply::Int(_) => 8,
                Reply::Bulk(value) => bytes_len(value),
                Reply::Array(items) => {
                    4 + items.iter().map(|item| 1 + item.as_ref().map_or(0, |v| bytes_len(v))).sum::<usize>()
                }
                Reply::Error(message) => bytes_len(message.as_bytes()),
            }
    }

    /// The compact binary form (see the file header); first byte
    /// [`REPLY_FORMAT_VERSION`].
    pub fn encode(&self) -> Bytes {
        let mut writer = Writer::with_capacity(self.encoded_len());
        writer.u8(REPLY_FORMAT_VERSION);
        match self {
            Reply::Ok => writer.u8(REPLY_OK),
            Reply::Nil => writer.u8(REPLY_NIL),
            Reply::Int(value) => {
                writer.u8(REPLY_INT);
                writer.i64(*value);
            }
            Reply::Bulk(value) => {
                writer.u8(REPLY_BULK);
                writer.bytes(value);
            }
            Reply::Array(items) => {
                writer.u8(REPLY_ARRAY);
                writer.length(items.len());
                for item in items {
                    match item {
                        None => writer.u8(0),
                        Some(value) => {
                            writer.u8(1);
                            writer.bytes(value);
                        }
                    }
                }
            }
            Reply::Error(message) => {
                writer.u8(REPLY_ERROR);
                writer.bytes(message.as_bytes());
            }
        }
        writer.finish()
    }

    /// Parses exactly one encoded reply; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("reply version")?;
        if version != REPLY_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "reply", version });
        }
        let reply = match reader.u8("reply tag")? {
            REPLY_OK => Reply::Ok,
            REPLY_NIL => Reply::Nil,
            REPLY_INT => Reply::Int(reader.i64("integer reply")?),
            REPLY_BULK => Reply::Bulk(reader.bytes("bulk reply")?),
            REPLY_ARRAY => {
                let count = reader.count("array reply", 1)?;
                let items = (0..count)
                    .map(|_| match reader.u8("array item flag")? {
                        0 => Ok(None),
                        1 => Ok(Some(reader.bytes("array item")?)),
                        tag => Err(DecodeError::UnknownTag { what: "array item flag", tag }),
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                Reply::Array(items)
            }
            REPLY_ERROR => {
                let message = reader.bytes("error reply")?;
                let message = String::from_utf8(message.to_vec())
                    .map_err(|_| DecodeError::InvalidUtf8 { what: "error reply" })?;
                Reply::Error(message)
            }
            tag => return Err(DecodeError::UnknownTag { what: "reply", tag }),
        };
        reader.finish("reply")?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::codec::test_support::check_decoder_robust;

    fn every_reply() -> Vec<Reply> {
        vec![
            Reply::Ok,
            Reply::Nil,
            Reply::Int(i64::MIN),
            Reply::Int(42),
            Reply::Bulk(Bytes::from_static(b"value")),
            Reply::Bulk(Bytes::new()),
            Reply::Array(vec![Some(Bytes::from_static(b"a")), None, Some(Bytes::new())]),
            Reply::Array(vec![]),
            Reply::Error("ERR value is not an integer or out of range".to_string()),
            Reply::Error("ERR \u{fc}nicode".to_string()),
        ]
    }

    #[test]
    fn reply_round_trips_for_every_variant() {
        for reply in every_reply() {
            let encoded = reply.encode();
            assert_eq!(encoded[0], REPLY_FORMAT_VERSION);
            assert_eq!(encoded.len(), reply.encoded_len(), "capacity estimate for {reply:?}");
            assert_eq!(Reply::decode(&encoded), Ok(reply.clone()));
        }
    }

    #[test]
    fn truncations_and_random_bytes_are_rejected_without_panic() {
        let seeds: Vec<Bytes> = every_reply().iter().map(Reply::encode).collect();
        check_decoder_robust(&seeds, 5000, |input| Reply::decode(input).ok().map(|r| r.encode()));
    }

    #[test]
    fn malformed_replies_are_errors() {
        let trailing = [REPLY_FORMAT_VERSION, REPLY_OK, 1, 2];
        assert_eq!(Reply::decode(&trailing), Err(DecodeError::TrailingBytes { what: "reply", count: 2 }));
        assert_eq!(Reply::decode(&[2, REPLY_OK]), Err(DecodeError::UnsupportedVersion { what: "reply", version: 2 }));
        assert_eq!(Reply::decode(&[1, 0]), Err(DecodeError::UnknownTag { what: "reply", tag: 0 }));
        assert_eq!(
            Reply::decode(&[1, REPLY_ARRAY, 1, 0, 0, 0, 2]),
            Err(DecodeError::UnknownTag { what: "array item flag", tag: 2 })
        );
        assert_eq!(
            Reply::decode(&[1, REPLY_ERROR, 1, 0, 0, 0, 0xff]),
            Err(DecodeError::InvalidUtf8 { what: "error reply" })
        );
        assert_eq!(
            Reply::decode(&[1, REPLY_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthTooLarge { what: "array reply", length: u64::from(u32::MAX), remaining: 0 })
        );
        assert_eq!(Reply::decode(&[1, 77]).unwrap_err().to_string(), "kv decode: unknown reply tag 77");
    }
}
