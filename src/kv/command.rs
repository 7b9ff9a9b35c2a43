//! Client commands of the replicated state machine and their binary format.
//!
//! A [`Command`] is what a client proposes and what a Paxos slot carries
//! (inside a batch): the client's session, its sequence number and one
//! [`Op`]. Applying it yields a `Reply` (`reply.rs`), shaped like the Redis
//! reply of the same command.
//!
//! Format version 2, little-endian, primitives as in `codec.rs`
//! (`bytes = len:u32 data`, `count = n:u32`):
//!
//! ```text
//! command   = version:u8(=2) session:u64 seq:u64 ack:u64 prev:u64 op
//!           | version:u8(=1) session:u64 seq:u64 op          (read only: ack = seq, prev = 0)
//! op        = 1 key:bytes                                        GET
//!           | 2 key:bytes value:bytes condition                  SET
//!           | 3 count key:bytes*                                 DEL
//!           | 4 count key:bytes*                                 EXISTS
//!           | 5 key:bytes delta:i64                              INCRBY
//!           | 6 count key:bytes*                                 MGET
//!           | 7 count (key:bytes value:bytes)*                   MSET
//! condition = 0 (always) | 1 (NX) | 2 (XX) | 3 old:bytes (IFEQ)
//! ```
//!
//! Invariants:
//! - `decode(encode(c)) == Ok(c)` for every `Command`.
//! - The encoding is canonical: `encode(decode(b)?) == b`. Replicas that
//!   compare or hash log entries therefore agree.
//! - `decode` never panics on any input. It rejects an unknown version or
//!   tag, truncated input, trailing bytes and any length or count larger
//!   than the remaining input, and allocates only after that check.

use super::codec::{bytes_len, DecodeError, Reader, Writer};
use bytes::Bytes;

/// A client session. Commands of one session are deduplicated by sequence
/// number. [`SESSION_NONE`] (0) means "no session": never deduplicated.
pub type SessionId = u64;

/// The session id of a command that wants no exactly-once guarantee.
pub const SESSION_NONE: SessionId = 0;

/// The first byte of every encoded [`Command`].
pub const COMMAND_FORMAT_VERSION: u8 = 2;
/// The previous format (no `ack`, no `prev`), still read from old logs.
const COMMAND_FORMAT_VERSION_1: u8 = 1;

const TAG_GET: u8 = 1;
const TAG_SET: u8 = 2;
const TAG_DEL: u8 = 3;
const TAG_EXISTS: u8 = 4;
const TAG_INCRBY: u8 = 5;
const TAG_MGET: u8 = 6;
const TAG_MSET: u8 = 7;

const CONDITION_ALWAYS: u8 = 0;
const CONDITION_IF_NOT_EXISTS: u8 = 1;
const CONDITION_IF_EXISTS: u8 = 2;
const CONDITION_IF_EQUAL: u8 = 3;

/// When a SET takes effect. A SET whose condition fails replies
/// [`Reply::Nil`](super::Reply::Nil) and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// Plain `SET k v`.
    Always,
    /// `SET k v NX`: only if `k` does not exist.
    IfNotExists,
    /// `SET k v XX`: only if `k` exists.
    IfExists,
    /// Valkey's `SET k v IFEQ old`: only if `k` exists and its value equals
    /// `old` (a missing key is never created).
    IfEqual(Bytes),
}

/// One operation on the store, with Redis semantics (see [`Reply`](super::Reply)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Get {
        key: Bytes,
    },
    Set {
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
    },
    Del {
        keys: Vec<Bytes>,
    },
    Exists {
        keys: Vec<Bytes>,
    },
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    /// Pairs are applied in order, so for a repeated key the last value wins.
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
    },
}

impl Op {
    /// True when the op never changes the store, so it may be served by a
    /// lease or read-index read instead of going through the log.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::Exists { .. } | Op::MGet { .. })
    }

    /// Every key the op touches, in argument order, repeats included (the
    /// router shards on these).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Op::Get { key } | Op::Set { key, .. } | Op::IncrBy { key, .. } => vec![key],
            Op::Del { keys } | Op::Exists { keys } | Op::MGet { keys } => keys.iter().collect(),
            Op::MSet { pairs } => pairs.iter().map(|(key, _)| key).collect(),
        }
    }

    fn encoded_len(&self) -> usize {
        let keys_len = |keys: &[Bytes]| 4 + keys.iter().map(|k| bytes_len(k)).sum::<usize>();
        1 + match self {
            Op::Get { key } => bytes_len(key),
            Op::Set { key, value, condition } => {
                let condition_len = match condition {
                    SetCondition::IfEqual(old) => 1 + bytes_len(old),
                    _ => 1,
                };
                bytes_len(key) + bytes_len(value) + condition_len
            }
            Op::Del { keys } | Op::Exists { keys } | Op::MGet { keys } => keys_len(keys),
            Op::IncrBy { key, .. } => bytes_len(key) + 8,
            Op::MSet { pairs } => 4 + pairs.iter().map(|(k, v)| bytes_len(k) + bytes_len(v)).sum::<usize>(),
        }
    }

    fn encode_into(&self, writer: &mut Writer) {
        let write_keys = |writer: &mut Writer, tag: u8, keys: &[Bytes]| {
            writer.u8(tag);
            writer.length(keys.len());
            keys.iter().for_each(|key| writer.bytes(key));
        };
        match self {
            Op::Get { key } => {
                writer.u8(TAG_GET);
                writer.bytes(key);
            }
            Op::Set { key, value, condition } => {
                writer.u8(TAG_SET);
                writer.bytes(key);
                writer.bytes(value);
                match condition {
                    SetCondition::Always => writer.u8(CONDITION_ALWAYS),
                    SetCondition::IfNotExists => writer.u8(CONDITION_IF_NOT_EXISTS),
                    SetCondition::IfExists => writer.u8(CONDITION_IF_EXISTS),
                    SetCondition::IfEqual(old) => {
                        writer.u8(CONDITION_IF_EQUAL);
                        writer.bytes(old);
                    }
                }
            }
            Op::Del { keys } => write_keys(writer, TAG_DEL, keys),
            Op::Exists { keys } => write_keys(writer, TAG_EXISTS, keys),
            Op::IncrBy { key, delta } => {
                writer.u8(TAG_INCRBY);
                writer.bytes(key);
                writer.i64(*delta);
            }
            Op::MGet { keys } => write_keys(writer, TAG_MGET, keys),
            Op::MSet { pairs } => {
                writer.u8(TAG_MSET);
                writer.length(pairs.len());
                for (key, value) in pairs {
                    writer.bytes(key);
                    writer.bytes(value);
                }
            }
        }
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Op, DecodeError> {
        let read_keys = |reader: &mut Reader<'_>| -> Result<Vec<Bytes>, DecodeError> {
            let count = reader.count("key list", 4)?;
            (0..count).map(|_| reader.bytes("key")).collect()
        };
        let op = match reader.u8("op tag")? {
            TAG_GET => Op::Get { key: reader.bytes("key")? },
            TAG_SET => {
                let key = reader.bytes("key")?;
                let value = reader.bytes("value")?;
                let condition = match reader.u8("set condition tag")? {
                    CONDITION_ALWAYS => SetCondition::Always,
                    CONDITION_IF_NOT_EXISTS => SetCondition::IfNotExists,
                    CONDITION_IF_EXISTS => SetCondition::IfExists,
                    CONDITION_IF_EQUAL => SetCondition::IfEqual(reader.bytes("IFEQ value")?),
                    tag => return Err(DecodeError::UnknownTag { what: "set condition", tag }),
                };
                Op::Set { key, value, condition }
            }
            TAG_DEL => Op::Del { keys: read_keys(reader)? },
            TAG_EXISTS => Op::Exists { keys: read_keys(reader)? },
            TAG_INCRBY => Op::IncrBy { key: reader.bytes("key")?, delta: reader.i64("INCRBY delta")? },
            TAG_MGET => Op::MGet { keys: read_keys(reader)? },
            TAG_MSET => {
                let count = reader.count("MSET pair list", 8)?;
                let pairs =
                    (0..count)
                        .map(|_| Ok((reader.bytes("key")?, reader.bytes("value")?)))
                        .collect::<Result<Vec<_>, DecodeError>>()?;
                Op::MSet { pairs }
            }
            tag => return Err(DecodeError::UnknownTag { what: "op", tag }),
        };
        Ok(op)
    }
}

/// Bytes of an encoded command before its op: version, session, seq, ack, prev.
pub const COMMAND_HEADER_BYTES: usize = 1 + 8 + 8 + 8 + 8;

/// A client command as it is proposed, chosen and applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The issuing session; [`SESSION_NONE`] disables deduplication.
    pub session: SessionId,
    /// The session's sequence number: a client issues 1, 2, 3, ... and
    /// reuses a number only to retry that same command.
    pub seq: u64,
    /// The lowest sequence number whose reply the session has not yet
    /// received (`<= seq`): every number below it is settled, and the store
    /// forgets their replies (see `session.rs`).
    pub ack: u64,
    /// The session's previous command through the log on this shard (0:
    /// none); this one runs only after it. Below `seq`: the store refuses
    /// a command of a session whose `prev` is not.
    pub prev: u64,
    pub op: Op,
}

impl Command {
    /// A command without a session (never deduplicated).
    pub fn anonymous(op: Op) -> Command {
        Command { session: SESSION_NONE, seq: 0, ack: 0, prev: 0, op }
    }

    /// The compact binary form (see the file header); first byte
    /// [`COMMAND_FORMAT_VERSION`].
    pub fn encode(&self) -> Bytes {
        let mut writer = Writer::with_capacity(COMMAND_HEADER_BYTES + self.op.encoded_len());
        writer.u8(COMMAND_FORMAT_VERSION);
        writer.u64(self.session);
        writer.u64(self.seq);
        writer.u64(self.ack);
        writer.u64(self.prev);
        self.op.encode_into(&mut writer);
        writer.finish()
    }

    /// Parses exactly one encoded command; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("command version")?;
        if version != COMMAND_FORMAT_VERSION && version != COMMAND_FORMAT_VERSION_1 {
            return Err(DecodeError::UnsupportedVersion { what: "command", version });
        }
        let session = reader.u64("session id")?;
        let seq = reader.u64("sequence number")?;
        let (ack, prev) =
            if version == COMMAND_FORMAT_VERSION_1 { (seq, 0) } else { (reader.u64("ack")?, reader.u64("prev")?) };
        let op = Op::decode_from(&mut reader)?;
        reader.finish("command")?;
        Ok(Command { session, seq, ack, prev, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::codec::test_support::check_decoder_robust;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn every_op() -> Vec<Op> {
        vec![
            Op::Get { key: b("k") },
            Op::Get { key: Bytes::new() },
            Op::Set { key: b("k"), value: b("v"), condition: SetCondition::Always },
            Op::Set { key: b("k"), value: Bytes::new(), condition: SetCondition::IfNotExists },
            Op::Set { key: b("k"), value: b("v"), condition: SetCondition::IfExists },
            Op::Set { key: b("k"), value: b("new"), condition: SetCondition::IfEqual(b("old")) },
            Op::Del { keys: vec![b("a"), b("b"), b("a")] },
            Op::Del { keys: vec![] },
            Op::Exists { keys: vec![b("a"), b("a")] },
            Op::IncrBy { key: b("n"), delta: i64::MIN },
            Op::IncrBy { key: b("n"), delta: -7 },
            Op::MGet { keys: vec![b("a"), b("missing")] },
            Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), Bytes::from_static(&[0, 255, 10]))] },
            Op::MSet { pairs: vec![] },
        ]
    }

    fn every_command() -> Vec<Command> {
        every_op()
            .into_iter()
            .enumerate()
            .map(|(i, op)| Command {
                session: i as u64 * 0x0101_0101,
                seq: u64::MAX - i as u64,
                ack: i as u64,
                prev: i as u64 / 2,
                op,
            })
            .collect()
    }

    /// The header (version, session, seq, ack, prev) of a command, then `rest`.
    fn with_header(rest: &[u8]) -> Vec<u8> {
        let mut encoded = vec![COMMAND_FORMAT_VERSION];
        encoded.extend_from_slice(&[0; COMMAND_HEADER_BYTES - 1]);
        encoded.extend_from_slice(rest);
        encoded
    }

    #[test]
    fn command_round_trips_for_every_op() {
        for command in every_command() {
            let encoded = command.encode();
            assert_eq!(encoded[0], COMMAND_FORMAT_VERSION);
            assert_eq!(
                encoded.len(),
                COMMAND_HEADER_BYTES + command.op.encoded_len(),
                "capacity estimate for {command:?}"
            );
            assert_eq!(Command::decode(&encoded), Ok(command.clone()));
        }
    }

    #[test]
    fn truncations_and_random_bytes_are_rejected_without_panic() {
        let seeds: Vec<Bytes> = every_command().iter().map(Command::encode).collect();
        // Version 1 input decodes too, but re-encodes as version 2: canonical within a version.
        let current = |input: &[u8]| input.first() == Some(&COMMAND_FORMAT_VERSION);
        check_decoder_robust(&seeds, 5000, |input| {
            Command::decode(input).ok().filter(|_| current(input)).map(|c| c.encode())
        });
    }

    #[test]
    fn version_1_commands_still_decode() {
        let mut encoded = vec![COMMAND_FORMAT_VERSION_1];
        encoded.extend_from_slice(&7u64.to_le_bytes());
        encoded.extend_from_slice(&3u64.to_le_bytes());
        encoded.push(TAG_GET);
        encoded.extend_from_slice(&1u32.to_le_bytes());
        encoded.push(b'k');
        let command = Command::decode(&encoded).expect("a version 1 command");
        assert_eq!(command, Command { session: 7, seq: 3, ack: 3, prev: 0, op: Op::Get { key: b("k") } });
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut encoded =
            Command { session: 1, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } }.encode().to_vec();
        encoded.push(0);
        assert_eq!(Command::decode(&encoded), Err(DecodeError::TrailingBytes { what: "command", count: 1 }));
    }

    #[test]
    fn unknown_version_and_tags_are_errors() {
        let mut encoded =
            Command { session: 1, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } }.encode().to_vec();
        encoded[0] = 9;
        assert_eq!(Command::decode(&encoded), Err(DecodeError::UnsupportedVersion { what: "command", version: 9 }));
        encoded[0] = COMMAND_FORMAT_VERSION;
        encoded[COMMAND_HEADER_BYTES] = 200; // the op tag
        assert_eq!(Command::decode(&encoded), Err(DecodeError::UnknownTag { what: "op", tag: 200 }));

        let set = Op::Set { key: b("k"), value: b("v"), condition: SetCondition::Always };
        let mut encoded = Command { session: 1, seq: 1, ack: 1, prev: 0, op: set }.encode().to_vec();
        *encoded.last_mut().unwrap() = 4; // the condition tag
        assert_eq!(Command::decode(&encoded), Err(DecodeError::UnknownTag { what: "set condition", tag: 4 }));
    }

    #[test]
    fn absurd_lengths_are_rejected_before_allocating() {
        // GET with a key length of u32::MAX and 3 bytes of key.
        let mut rest = vec![TAG_GET];
        rest.extend_from_slice(&u32::MAX.to_le_bytes());
        rest.extend_from_slice(b"abc");
        assert_eq!(
            Command::decode(&with_header(&rest)),
            Err(DecodeError::LengthTooLarge { what: "key", length: u64::from(u32::MAX), remaining: 3 })
        );
        // MGET claiming 2 keys with 7 bytes left: each key needs >= 4 bytes.
        let mut rest = vec![TAG_MGET];
        rest.extend_from_slice(&2u32.to_le_bytes());
        rest.extend_from_slice(&[0; 7]);
        assert_eq!(
            Command::decode(&with_header(&rest)),
            Err(DecodeError::LengthTooLarge { what: "key list", length: 2, remaining: 7 })
        );
        // MSET claiming u32::MAX pairs.
        let mut rest = vec![TAG_MSET];
        rest.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Command::decode(&with_header(&rest)),
            Err(DecodeError::LengthTooLarge { what: "MSET pair list", .. })
        ));
    }

    #[test]
    fn decode_errors_display_clear_messages() {
        let error = Command::decode(&[]).unwrap_err();
        assert_eq!(error.to_string(), "kv decode: input truncated while reading command version: need 1 bytes, 0 left");
        let error = Command::decode(&with_header(&[99])).unwrap_err();
        assert_eq!(error.to_string(), "kv decode: unknown op tag 99");
    }

    #[test]
    fn op_keys_and_read_only() {
        let read_only: Vec<bool> = every_op().iter().map(Op::is_read_only).collect();
        let expected = [true, true, false, false, false, false, false, false, true, false, false, true, false, false];
        assert_eq!(read_only, expected);
        let mset = Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] };
        assert_eq!(mset.keys(), vec![&b("a"), &b("b")]);
        let exists = Op::Exists { keys: vec![b("x"), b("x")] };
        assert_eq!(exists.keys(), vec![&b("x"), &b("x")]);
        let set = Op::Set { key: b("k"), value: b("v"), condition: SetCondition::IfEqual(b("o")) };
        assert_eq!(set.keys(), vec![&b("k")]);
    }
}
