//! [`Reply`]: the result of applying an op, shaped like the Redis reply, and
//! its binary format. Replies are encoded so a session's cached reply can be
//! stored in a snapshot or shipped to the node that serves the client.
//!
//! Format version 2, little-endian, primitives as in `codec.rs`:
//!
//! ```text
//! reply = version:u8(=2) item
//! item  = 1 (OK) | 2 (nil) | 3 value:i64 | 4 value:bytes | 6 message:bytes(UTF-8)
//!       | 7 count item*                   an array, nested at most ARRAY_DEPTH_MAX deep
//!       | 8 status:bytes(UTF-8)           a simple string other than OK
//!       | 9                               a null array (EXEC aborted by WATCH)
//! ```
//!
//! Version 1 (no tags 7-9; tag 5 was an array of optional bulk strings,
//! `count (0 | 1 value:bytes)*`) is still read, as cached replies in older
//! snapshots.
//!
//! Invariants, as for commands:
//! - `decode(encode(r)) == Ok(r)`, and `encode(decode(b)?) == b` for
//!   version 2 input (canonical);
//! - `decode` never panics; it rejects an unknown version, tag or item flag,
//!   truncated input, trailing bytes, non-UTF-8 text, arrays nested deeper
//!   than [`ARRAY_DEPTH_MAX`] and any length or count larger than the
//!   remaining input, before allocating.

use super::codec::{bytes_len, DecodeError, Reader, Writer};
use bytes::Bytes;

/// The first byte of every encoded [`Reply`].
pub const REPLY_FORMAT_VERSION: u8 = 2;
/// The previous format, still decoded.
const REPLY_FORMAT_VERSION_1: u8 = 1;
/// Arrays nest at most this deep (EXEC of an MGET is 2).
pub const ARRAY_DEPTH_MAX: usize = 4;

const REPLY_OK: u8 = 1;
const REPLY_NIL: u8 = 2;
const REPLY_INT: u8 = 3;
const REPLY_BULK: u8 = 4;
const REPLY_ARRAY_V1: u8 = 5;
const REPLY_ERROR: u8 = 6;
const REPLY_ARRAY: u8 = 7;
const REPLY_STATUS: u8 = 8;
const REPLY_NIL_ARRAY: u8 = 9;

/// The result of applying an op, shaped like the Redis reply:
/// GET → `Bulk` or `Nil`; SET → `Ok`, or `Nil` when its condition fails;
/// DEL, EXISTS, INCRBY → `Int`; MGET → `Array` of `Bulk`/`Nil`; TYPE →
/// `Status`; EXEC → `Array` of the queued commands' replies, or `NilArray`
/// when a watched key changed; failures → `Error` with a Redis-style
/// message (`"ERR ..."`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Nil,
    Int(i64),
    Bulk(Bytes),
    Array(Vec<Reply>),
    /// A Redis error line, e.g. `"ERR value is not an integer or out of range"`.
    Error(String),
    /// A simple string other than `OK` (TYPE's `string`, `none`).
    Status(String),
    /// A null array: RESP2 `*-1`, RESP3 `_`.
    NilArray,
}

impl Reply {
    /// An array of optional bulk strings (MGET's shape).
    pub fn bulks(items: impl IntoIterator<Item = Option<Bytes>>) -> Reply {
        Reply::Array(items.into_iter().map(|item| item.map_or(Reply::Nil, Reply::Bulk)).collect())
    }

    fn item_len(&self) -> usize {
        1 + match self {
            Reply::Ok | Reply::Nil | Reply::NilArray => 0,
            Reply::Int(_) => 8,
            Reply::Bulk(value) => bytes_len(value),
            Reply::Array(items) => 4 + items.iter().map(Reply::item_len).sum::<usize>(),
            Reply::Error(text) | Reply::Status(text) => bytes_len(text.as_bytes()),
        }
    }

    fn encoded_len(&self) -> usize {
        1 + self.item_len()
    }

    fn encode_item(&self, writer: &mut Writer) {
        match self {
            Reply::Ok => writer.u8(REPLY_OK),
            Reply::Nil => writer.u8(REPLY_NIL),
            Reply::NilArray => writer.u8(REPLY_NIL_ARRAY),
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
                    item.encode_item(writer);
                }
            }
            Reply::Error(message) => {
                writer.u8(REPLY_ERROR);
                writer.bytes(message.as_bytes());
            }
            Reply::Status(status) => {
                writer.u8(REPLY_STATUS);
                writer.bytes(status.as_bytes());
            }
        }
    }

    /// The compact binary form (see the file header); first byte
    /// [`REPLY_FORMAT_VERSION`].
    ///
    /// # Panics
    /// If arrays nest deeper than [`ARRAY_DEPTH_MAX`]: no op replies so.
    pub fn encode(&self) -> Bytes {
        assert!(self.depth() <= ARRAY_DEPTH_MAX, "a reply nested deeper than {ARRAY_DEPTH_MAX}");
        let mut writer = Writer::with_capacity(self.encoded_len());
        writer.u8(REPLY_FORMAT_VERSION);
        self.encode_item(&mut writer);
        writer.finish()
    }

    /// How deep arrays nest (0 for a scalar).
    fn depth(&self) -> usize {
        match self {
            Reply::Array(items) => 1 + items.iter().map(Reply::depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Parses exactly one encoded reply; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("reply version")?;
        if version != REPLY_FORMAT_VERSION && version != REPLY_FORMAT_VERSION_1 {
            return Err(DecodeError::UnsupportedVersion { what: "reply", version });
        }
        let reply = Self::decode_item(&mut reader, version, 0)?;
        reader.finish("reply")?;
        Ok(reply)
    }

    fn decode_item(reader: &mut Reader<'_>, version: u8, depth: usize) -> Result<Reply, DecodeError> {
        let text = |reader: &mut Reader<'_>, what: &'static str| -> Result<String, DecodeError> {
            let bytes = reader.bytes(what)?;
            String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { what })
        };
        let reply = match (reader.u8("reply tag")?, version) {
            (REPLY_OK, _) => Reply::Ok,
            (REPLY_NIL, _) => Reply::Nil,
            (REPLY_INT, _) => Reply::Int(reader.i64("integer reply")?),
            (REPLY_BULK, _) => Reply::Bulk(reader.bytes("bulk reply")?),
            (REPLY_ERROR, _) => Reply::Error(text(reader, "error reply")?),
            (REPLY_ARRAY_V1, REPLY_FORMAT_VERSION_1) => {
                let count = reader.count("array reply", 1)?;
                let items = (0..count)
                    .map(|_| match reader.u8("array item flag")? {
                        0 => Ok(Reply::Nil),
                        1 => Ok(Reply::Bulk(reader.bytes("array item")?)),
                        tag => Err(DecodeError::UnknownTag { what: "array item flag", tag }),
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                Reply::Array(items)
            }
            (REPLY_ARRAY, REPLY_FORMAT_VERSION) => {
                if depth >= ARRAY_DEPTH_MAX {
                    return Err(DecodeError::UnknownTag { what: "reply nested too deep", tag: REPLY_ARRAY });
                }
                let count = reader.count("array reply", 1)?;
                let items = (0..count)
                    .map(|_| Self::decode_item(reader, version, depth + 1))
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                Reply::Array(items)
            }
            (REPLY_STATUS, REPLY_FORMAT_VERSION) => Reply::Status(text(reader, "status reply")?),
            (REPLY_NIL_ARRAY, REPLY_FORMAT_VERSION) => Reply::NilArray,
            (tag, _) => return Err(DecodeError::UnknownTag { what: "reply", tag }),
        };
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
            Reply::bulks([Some(Bytes::from_static(b"a")), None, Some(Bytes::new())]),
            Reply::Array(vec![]),
            Reply::Array(vec![Reply::Ok, Reply::bulks([None]), Reply::Error("ERR x".into()), Reply::Int(1)]),
            Reply::Status("string".to_string()),
            Reply::NilArray,
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
    fn version_1_replies_still_decode() {
        let old_array = [1, REPLY_ARRAY_V1, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0, b'a'];
        assert_eq!(Reply::decode(&old_array), Ok(Reply::bulks([None, Some(Bytes::from_static(b"a"))])));
        assert_eq!(Reply::decode(&[1, REPLY_OK]), Ok(Reply::Ok));
    }

    #[test]
    fn malformed_replies_are_errors() {
        let trailing = [REPLY_FORMAT_VERSION, REPLY_OK, 1, 2];
        assert_eq!(Reply::decode(&trailing), Err(DecodeError::TrailingBytes { what: "reply", count: 2 }));
        assert_eq!(Reply::decode(&[3, REPLY_OK]), Err(DecodeError::UnsupportedVersion { what: "reply", version: 3 }));
        assert_eq!(Reply::decode(&[2, 0]), Err(DecodeError::UnknownTag { what: "reply", tag: 0 }));
        assert_eq!(
            Reply::decode(&[1, REPLY_ARRAY_V1, 1, 0, 0, 0, 2]),
            Err(DecodeError::UnknownTag { what: "array item flag", tag: 2 })
        );
        assert_eq!(
            Reply::decode(&[2, REPLY_ARRAY_V1, 0, 0, 0, 0]),
            Err(DecodeError::UnknownTag { what: "reply", tag: 5 })
        );
        assert_eq!(Reply::decode(&[1, REPLY_NIL_ARRAY]), Err(DecodeError::UnknownTag { what: "reply", tag: 9 }));
        assert_eq!(
            Reply::decode(&[2, REPLY_ERROR, 1, 0, 0, 0, 0xff]),
            Err(DecodeError::InvalidUtf8 { what: "error reply" })
        );
        assert_eq!(
            Reply::decode(&[2, REPLY_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthTooLarge { what: "array reply", length: u64::from(u32::MAX), remaining: 0 })
        );
        let mut deep = vec![2];
        for _ in 0..=ARRAY_DEPTH_MAX {
            deep.extend_from_slice(&[REPLY_ARRAY, 1, 0, 0, 0]);
        }
        deep.push(REPLY_OK);
        assert!(Reply::decode(&deep).is_err(), "arrays nested too deep are refused");
        assert_eq!(Reply::decode(&[2, 77]).unwrap_err().to_string(), "kv decode: unknown reply tag 77");
    }
}
