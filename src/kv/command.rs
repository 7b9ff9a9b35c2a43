//! Client commands of the replicated state machine and their binary format.
//!
//! A [`Command`] is what a client proposes and what a Paxos slot carries
//! (inside a batch): the client's session, its sequence number and one
//! [`Op`]. Applying it yields a `Reply` (`reply.rs`), shaped like the Redis
//! reply of the same command.
//!
//! Format version 3, little-endian, primitives as in `codec.rs`
//! (`bytes = len:u32 data`, `count = n:u32`, `opt = 0 | 1 bytes`):
//!
//! ```text
//! command   = version:u8(=3) session:u64 seq:u64 ack:u64 prev:u64 op
//!           | version:u8(=2) session:u64 seq:u64 ack:u64 prev:u64 op_v2   (read only)
//!           | version:u8(=1) session:u64 seq:u64 op_v2                     (read only: ack = seq, prev = 0)
//! op        = 1 key                                   GET
//!           | 2 key value condition ttl get:u8        SET (v1, v2: no ttl, get: clear, 0)
//!           | 3 keys                                  DEL, UNLINK
//!           | 4 keys                                  EXISTS
//!           | 5 key delta:i64                         INCRBY (INCR, DECR, DECRBY)
//!           | 6 keys                                  MGET
//!           | 7 pairs                                 MSET
//!           | 8 key                                   STRLEN
//!           | 9 key start:i64 end:i64                 GETRANGE
//!           | 10 key                                  TYPE
//!           | 11 key flags:u8                         TTL family: bit 0 milliseconds, bit 1 absolute
//!           | 12 pattern:bytes                        KEYS
//!           | 13 from:u64 count:u64 opt opt           SCAN step: bucket, COUNT, MATCH, TYPE
//!           | 14 point:u64                            RANDOMKEY
//!           | 15                                      DBSIZE
//!           | 16 keys                                 WATCH (the versions, for EXEC)
//!           | 17 key value                            SETNX
//!           | 18 key                                  GETDEL
//!           | 19 key ttl                              GETEX with an option (ttl is not 1)
//!           | 20 key value limit:u64                  APPEND
//!           | 21 key offset:u64 value                 SETRANGE
//!           | 22 key increment:bytes                  INCRBYFLOAT
//!           | 23 pairs                                MSETNX
//!           | 24 key expiry when:u8                   EXPIRE family: bits 1 NX, 2 XX, 4 GT, 8 LT (NX alone; not GT and LT)
//!           | 25 key                                  PERSIST
//!           | 26 from:bytes to:bytes nx:u8            RENAME, RENAMENX
//!           | 27 from:bytes to:bytes replace:u8       COPY
//!           | 28                                      FLUSHALL, FLUSHDB
//!           | 29 removals:u64 count (key opt_version)* count op*    EXEC (ops not EXEC)
//!           | 30 key                                  MEMORY USAGE
//!           | 31 key                                  OBJECT ENCODING
//! key       = bytes;  keys = count key*;  pairs = count (key value)*
//! condition = 0 (always) | 1 (NX) | 2 (XX) | 3 old:bytes (IFEQ)
//! ttl       = 0 (clear) | 1 (keep) | 2 expiry
//! expiry    = 0 ms:i64 command:u8 (relative to the log's time) | 1 unix_ms:i64
//! opt_version = 0 (missing) | 1 version:u64
//! ```
//!
//! Invariants:
//! - `decode(encode(c)) == Ok(c)` for every `Command`.
//! - The encoding is canonical within version 3: `encode(decode(b)?) == b`.
//!   Replicas that compare or hash log entries therefore agree. Older
//!   versions decode and re-encode as version 3.
//! - `decode` never panics on any input. It rejects an unknown version or
//!   tag, truncated input, trailing bytes, an EXEC inside an EXEC and any
//!   length or count larger than the remaining input, and allocates only
//!   after that check.

use super::codec::{bytes_len, DecodeError, Reader, Writer};
use bytes::Bytes;

/// A client session. Commands of one session are deduplicated by sequence
/// number. [`SESSION_NONE`] (0) means "no session": never deduplicated.
pub type SessionId = u64;

/// The session id of a command that wants no exactly-once guarantee.
pub const SESSION_NONE: SessionId = 0;

/// The first byte of every encoded [`Command`].
pub const COMMAND_FORMAT_VERSION: u8 = 3;
/// Version 2: no TTLs, the first nine ops only.
#[cfg(test)]
const COMMAND_FORMAT_VERSION_2: u8 = 2;
/// Version 1: no `ack`, no `prev`.
const COMMAND_FORMAT_VERSION_1: u8 = 1;

const TAG_GET: u8 = 1;
const TAG_SET: u8 = 2;
const TAG_DEL: u8 = 3;
const TAG_EXISTS: u8 = 4;
const TAG_INCRBY: u8 = 5;
const TAG_MGET: u8 = 6;
const TAG_MSET: u8 = 7;
const TAG_STRLEN: u8 = 8;
const TAG_GETRANGE: u8 = 9;
const TAG_TYPE: u8 = 10;
const TAG_TTL: u8 = 11;
const TAG_KEYS: u8 = 12;
const TAG_SCAN: u8 = 13;
const TAG_RANDOMKEY: u8 = 14;
const TAG_DBSIZE: u8 = 15;
const TAG_WATCH: u8 = 16;
const TAG_SETNX: u8 = 17;
const TAG_GETDEL: u8 = 18;
const TAG_GETEX: u8 = 19;
const TAG_APPEND: u8 = 20;
const TAG_SETRANGE: u8 = 21;
const TAG_INCRBYFLOAT: u8 = 22;
const TAG_MSETNX: u8 = 23;
const TAG_EXPIRE: u8 = 24;
const TAG_PERSIST: u8 = 25;
const TAG_RENAME: u8 = 26;
const TAG_COPY: u8 = 27;
const TAG_FLUSH: u8 = 28;
const TAG_EXEC: u8 = 29;
const TAG_MEMORY_USAGE: u8 = 30;
const TAG_OBJECT_ENCODING: u8 = 31;
/// The highest op tag `decode` knows: peers compare it before they link
/// (`formats.rs`), so a new op must raise it.
pub const OP_TAG_MAX: u8 = TAG_OBJECT_ENCODING;

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

/// The commands whose relative expiry can overflow at apply time; their
/// name goes into the error, as Redis words it.
pub const EXPIRE_COMMAND_NAMES: [&str; 7] = ["set", "setex", "psetex", "getex", "expire", "pexpire", "pexpireat"];

/// A point in time a write sets as a key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `ms` after the time the log applies the command at (EX, PX, EXPIRE,
    /// SETEX ...). `command` indexes [`EXPIRE_COMMAND_NAMES`] for the
    /// error when the sum overflows.
    In { ms: i64, command: u8 },
    /// At this Unix time in milliseconds (EXAT, PXAT, EXPIREAT ...).
    At(i64),
}

/// What a SET does to the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTtl {
    /// No expiry (a plain SET removes any).
    Clear,
    /// KEEPTTL.
    Keep,
    Expire(Expiry),
}

/// EXPIRE's NX / XX / GT / LT; every flag set must hold. NX combines with
/// no other, GT not with LT (the parser refuses those, as Redis does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireWhen {
    /// Only if the key has no expiry.
    pub nx: bool,
    /// Only if the key has an expiry.
    pub xx: bool,
    /// Only if the new expiry is later (no expiry counts as infinite).
    pub gt: bool,
    /// Only if the new expiry is earlier (no expiry counts as infinite).
    pub lt: bool,
}

impl ExpireWhen {
    fn bits(self) -> u8 {
        u8::from(self.nx) | u8::from(self.xx) << 1 | u8::from(self.gt) << 2 | u8::from(self.lt) << 3
    }

    fn from_bits(bits: u8) -> Option<ExpireWhen> {
        let when = ExpireWhen { nx: bits & 1 != 0, xx: bits & 2 != 0, gt: bits & 4 != 0, lt: bits & 8 != 0 };
        let valid = bits < 16 && !(when.nx && (when.xx || when.gt || when.lt)) && !(when.gt && when.lt);
        valid.then_some(when)
    }
}

/// A key WATCHed before MULTI and the version it had (`None`: missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    pub key: Bytes,
    pub version: Option<u64>,
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
        ttl: SetTtl,
        get: bool,
    },
    /// DEL and UNLINK.
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
    StrLen {
        key: Bytes,
    },
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    Type {
        key: Bytes,
    },
    /// MEMORY USAGE: an estimate of the bytes a key takes.
    MemoryUsage {
        key: Bytes,
    },
    /// OBJECT ENCODING: how the key's value is kept.
    ObjectEncoding {
        key: Bytes,
    },
    /// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
    Ttl {
        key: Bytes,
        milliseconds: bool,
        absolute: bool,
    },
    Keys {
        pattern: Bytes,
    },
    /// One SCAN step over this shard from hash bucket `from`.
    Scan {
        from: u64,
        count: u64,
        pattern: Option<Bytes>,
        type_filter: Option<Bytes>,
    },
    /// The first live key at or after hash position `point` (wrapping).
    RandomKey {
        point: u64,
    },
    DbSize,
    /// The versions of `keys` and the store's removal count (WATCH).
    Watch {
        keys: Vec<Bytes>,
    },
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    GetDel {
        key: Bytes,
    },
    /// GETEX with PERSIST (`ttl = Clear`) or an expiry (`Expire`); never `Keep`.
    GetEx {
        key: Bytes,
        ttl: SetTtl,
    },
    /// `limit`: the longest value the result may have (the entry node's
    /// bound, carried so every replica refuses alike).
    Append {
        key: Bytes,
        value: Bytes,
        limit: u64,
    },
    /// `limit` as for APPEND.
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
        limit: u64,
    },
    IncrByFloat {
        key: Bytes,
        increment: Bytes,
    },
    MSetNx {
        pairs: Vec<(Bytes, Bytes)>,
    },
    Expire {
        key: Bytes,
        expiry: Expiry,
        when: ExpireWhen,
    },
    Persist {
        key: Bytes,
    },
    Rename {
        from: Bytes,
        to: Bytes,
        nx: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
    },
    /// FLUSHALL / FLUSHDB of this shard.
    Flush,
    /// EXEC: the queued ops, run atomically unless a watched key changed
    /// (its version differs, or it was missing and any key was removed
    /// since `removals` was read).
    Exec {
        ops: Vec<Op>,
        watched: Vec<Watched>,
        removals: u64,
    },
}

impl Op {
    /// True when the op never changes the store, so it may be served by a
    /// lease or read-index read instead of going through the log.
    pub fn is_read_only(&self) -> bool {
        match self {
            Op::Get { .. }
            | Op::Exists { .. }
            | Op::MGet { .. }
            | Op::StrLen { .. }
            | Op::GetRange { .. }
            | Op::Type { .. }
            | Op::MemoryUsage { .. }
            | Op::ObjectEncoding { .. }
            | Op::Ttl { .. }
            | Op::Keys { .. }
            | Op::Scan { .. }
            | Op::RandomKey { .. }
            | Op::DbSize
            | Op::Watch { .. } => true,
            Op::Exec { ops, .. } => ops.iter().all(Op::is_read_only),
            _ => false,
        }
    }

    /// Does the op concern the whole keyspace (every shard) rather than
    /// named keys?
    pub fn is_keyspace_wide(&self) -> bool {
        matches!(self, Op::Keys { .. } | Op::Scan { .. } | Op::RandomKey { .. } | Op::DbSize | Op::Flush)
    }

    /// Every key the op touches, in argument order, repeats included (the
    /// router shards on these).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Op::Get { key }
            | Op::Set { key, .. }
            | Op::IncrBy { key, .. }
            | Op::StrLen { key }
            | Op::GetRange { key, .. }
            | Op::Type { key }
            | Op::MemoryUsage { key }
            | Op::ObjectEncoding { key }
            | Op::Ttl { key, .. }
            | Op::SetNx { key, .. }
            | Op::GetDel { key }
            | Op::GetEx { key, .. }
            | Op::Append { key, .. }
            | Op::SetRange { key, .. }
            | Op::IncrByFloat { key, .. }
            | Op::Expire { key, .. }
            | Op::Persist { key } => vec![key],
            Op::Del { keys } | Op::Exists { keys } | Op::MGet { keys } | Op::Watch { keys } => keys.iter().collect(),
            Op::MSet { pairs } | Op::MSetNx { pairs } => pairs.iter().map(|(key, _)| key).collect(),
            Op::Rename { from, to, .. } | Op::Copy { from, to, .. } => vec![from, to],
            Op::Keys { .. } | Op::Scan { .. } | Op::RandomKey { .. } | Op::DbSize | Op::Flush => Vec::new(),
            Op::Exec { ops, watched, .. } => {
                watched.iter().map(|w| &w.key).chain(ops.iter().flat_map(Op::keys)).collect()
            }
        }
    }

    fn encoded_len(&self) -> usize {
        let keys_len = |keys: &[Bytes]| 4 + keys.iter().map(|k| bytes_len(k)).sum::<usize>();
        let pairs_len =
            |pairs: &[(Bytes, Bytes)]| 4 + pairs.iter().map(|(k, v)| bytes_len(k) + bytes_len(v)).sum::<usize>();
        let opt_len = |opt: &Option<Bytes>| 1 + opt.as_ref().map_or(0, |b| bytes_len(b));
        let expiry_len = |expiry: &Expiry| match expiry {
            Expiry::In { .. } => 1 + 8 + 1,
            Expiry::At(_) => 1 + 8,
        };
        let ttl_len = |ttl: &SetTtl| match ttl {
            SetTtl::Clear | SetTtl::Keep => 1,
            SetTtl::Expire(expiry) => 1 + expiry_len(expiry),
        };
        1 + match self {
            Op::Get { key }
            | Op::StrLen { key }
            | Op::Type { key }
            | Op::MemoryUsage { key }
            | Op::ObjectEncoding { key }
            | Op::GetDel { key }
            | Op::Persist { key }
            | Op::Keys { pattern: key } => bytes_len(key),
            Op::Set { key, value, condition, ttl, .. } => {
                let condition_len = match condition {
                    SetCondition::IfEqual(old) => 1 + bytes_len(old),
                    _ => 1,
                };
                bytes_len(key) + bytes_len(value) + condition_len + ttl_len(ttl) + 1
            }
            Op::Del { keys } | Op::Exists { keys } | Op::MGet { keys } | Op::Watch { keys } => keys_len(keys),
            Op::IncrBy { key, .. } => bytes_len(key) + 8,
            Op::MSet { pairs } | Op::MSetNx { pairs } => pairs_len(pairs),
            Op::GetRange { key, .. } => bytes_len(key) + 16,
            Op::Ttl { key, .. } => bytes_len(key) + 1,
            Op::Scan { pattern, type_filter, .. } => 16 + opt_len(pattern) + opt_len(type_filter),
            Op::RandomKey { .. } => 8,
            Op::DbSize | Op::Flush => 0,
            Op::SetNx { key, value } | Op::IncrByFloat { key, increment: value } => bytes_len(key) + bytes_len(value),
            Op::GetEx { key, ttl } => bytes_len(key) + ttl_len(ttl),
            Op::Append { key, value, .. } => bytes_len(key) + bytes_len(value) + 8,
            Op::SetRange { key, value, .. } => bytes_len(key) + bytes_len(value) + 16,
            Op::Expire { key, expiry, .. } => bytes_len(key) + expiry_len(expiry) + 1,
            Op::Rename { from, to, .. } | Op::Copy { from, to, .. } => bytes_len(from) + bytes_len(to) + 1,
            Op::Exec { ops, watched, .. } => {
                8 + 4
                    + watched.iter().map(|w| bytes_len(&w.key) + 1 + w.version.map_or(0, |_| 8)).sum::<usize>()
                    + 4
                    + ops.iter().map(Op::encoded_len).sum::<usize>()
            }
        }
    }

    fn encode_into(&self, writer: &mut Writer) {
        let write_keys = |writer: &mut Writer, keys: &[Bytes]| {
            writer.length(keys.len());
            keys.iter().for_each(|key| writer.bytes(key));
        };
        let write_pairs = |writer: &mut Writer, pairs: &[(Bytes, Bytes)]| {
            writer.length(pairs.len());
            for (key, value) in pairs {
                writer.bytes(key);
                writer.bytes(value);
            }
        };
        let write_opt = |writer: &mut Writer, opt: &Option<Bytes>| match opt {
            None => writer.u8(0),
            Some(bytes) => {
                writer.u8(1);
                writer.bytes(bytes);
            }
        };
        match self {
            Op::Get { key } => {
                writer.u8(TAG_GET);
                writer.bytes(key);
            }
            Op::Set { key, value, condition, ttl, get } => {
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
                write_ttl(writer, ttl);
                writer.u8(u8::from(*get));
            }
            Op::Del { keys } => {
                writer.u8(TAG_DEL);
                write_keys(writer, keys);
            }
            Op::Exists { keys } => {
                writer.u8(TAG_EXISTS);
                write_keys(writer, keys);
            }
            Op::IncrBy { key, delta } => {
                writer.u8(TAG_INCRBY);
                writer.bytes(key);
                writer.i64(*delta);
            }
            Op::MGet { keys } => {
                writer.u8(TAG_MGET);
                write_keys(writer, keys);
            }
            Op::MSet { pairs } => {
                writer.u8(TAG_MSET);
                write_pairs(writer, pairs);
            }
            Op::StrLen { key } => {
                writer.u8(TAG_STRLEN);
                writer.bytes(key);
            }
            Op::GetRange { key, start, end } => {
                writer.u8(TAG_GETRANGE);
                writer.bytes(key);
                writer.i64(*start);
                writer.i64(*end);
            }
            Op::Type { key } => {
                writer.u8(TAG_TYPE);
                writer.bytes(key);
            }
            Op::MemoryUsage { key } => {
                writer.u8(TAG_MEMORY_USAGE);
                writer.bytes(key);
            }
            Op::ObjectEncoding { key } => {
                writer.u8(TAG_OBJECT_ENCODING);
                writer.bytes(key);
            }
            Op::Ttl { key, milliseconds, absolute } => {
                writer.u8(TAG_TTL);
                writer.bytes(key);
                writer.u8(u8::from(*milliseconds) | (u8::from(*absolute) << 1));
            }
            Op::Keys { pattern } => {
                writer.u8(TAG_KEYS);
                writer.bytes(pattern);
            }
            Op::Scan { from, count, pattern, type_filter } => {
                writer.u8(TAG_SCAN);
                writer.u64(*from);
                writer.u64(*count);
                write_opt(writer, pattern);
                write_opt(writer, type_filter);
            }
            Op::RandomKey { point } => {
                writer.u8(TAG_RANDOMKEY);
                writer.u64(*point);
            }
            Op::DbSize => writer.u8(TAG_DBSIZE),
            Op::Watch { keys } => {
                writer.u8(TAG_WATCH);
                write_keys(writer, keys);
            }
            Op::SetNx { key, value } => {
                writer.u8(TAG_SETNX);
                writer.bytes(key);
                writer.bytes(value);
            }
            Op::GetDel { key } => {
                writer.u8(TAG_GETDEL);
                writer.bytes(key);
            }
            Op::GetEx { key, ttl } => {
                writer.u8(TAG_GETEX);
                writer.bytes(key);
                write_ttl(writer, ttl);
            }
            Op::Append { key, value, limit } => {
                writer.u8(TAG_APPEND);
                writer.bytes(key);
                writer.bytes(value);
                writer.u64(*limit);
            }
            Op::SetRange { key, offset, value, limit } => {
                writer.u8(TAG_SETRANGE);
                writer.bytes(key);
                writer.u64(*offset);
                writer.bytes(value);
                writer.u64(*limit);
            }
            Op::IncrByFloat { key, increment } => {
                writer.u8(TAG_INCRBYFLOAT);
                writer.bytes(key);
                writer.bytes(increment);
            }
            Op::MSetNx { pairs } => {
                writer.u8(TAG_MSETNX);
                write_pairs(writer, pairs);
            }
            Op::Expire { key, expiry, when } => {
                writer.u8(TAG_EXPIRE);
                writer.bytes(key);
                write_expiry(writer, expiry);
                writer.u8(when.bits());
            }
            Op::Persist { key } => {
                writer.u8(TAG_PERSIST);
                writer.bytes(key);
            }
            Op::Rename { from, to, nx } => {
                writer.u8(TAG_RENAME);
                writer.bytes(from);
                writer.bytes(to);
                writer.u8(u8::from(*nx));
            }
            Op::Copy { from, to, replace } => {
                writer.u8(TAG_COPY);
                writer.bytes(from);
                writer.bytes(to);
                writer.u8(u8::from(*replace));
            }
            Op::Flush => writer.u8(TAG_FLUSH),
            Op::Exec { ops, watched, removals } => {
                writer.u8(TAG_EXEC);
                writer.u64(*removals);
                writer.length(watched.len());
                for w in watched {
                    writer.bytes(&w.key);
                    match w.version {
                        None => writer.u8(0),
                        Some(version) => {
                            writer.u8(1);
                            writer.u64(version);
                        }
                    }
                }
                writer.length(ops.len());
                for op in ops {
                    op.encode_into(writer);
                }
            }
        }
    }

    /// Decode one op of command format `version`; `nested`: inside an EXEC.
    fn decode_from(reader: &mut Reader<'_>, version: u8, nested: bool) -> Result<Op, DecodeError> {
        let read_keys = |reader: &mut Reader<'_>| -> Result<Vec<Bytes>, DecodeError> {
            let count = reader.count("key list", 4)?;
            (0..count).map(|_| reader.bytes("key")).collect()
        };
        let read_pairs = |reader: &mut Reader<'_>, what: &'static str| -> Result<Vec<(Bytes, Bytes)>, DecodeError> {
            let count = reader.count(what, 8)?;
            (0..count).map(|_| Ok((reader.bytes("key")?, reader.bytes("value")?))).collect()
        };
        let read_flag = |reader: &mut Reader<'_>, what: &'static str| -> Result<bool, DecodeError> {
            match reader.u8(what)? {
                0 => Ok(false),
                1 => Ok(true),
                tag => Err(DecodeError::UnknownTag { what, tag }),
            }
        };
        let read_opt = |reader: &mut Reader<'_>, what: &'static str| -> Result<Option<Bytes>, DecodeError> {
            Ok(if read_flag(reader, what)? { Some(reader.bytes(what)?) } else { None })
        };
        let tag = reader.u8("op tag")?;
        if version < COMMAND_FORMAT_VERSION && tag > TAG_MSET {
            return Err(DecodeError::UnknownTag { what: "op", tag });
        }
        let op = match tag {
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
                let (ttl, get) = if version < COMMAND_FORMAT_VERSION {
                    (SetTtl::Clear, false)
                } else {
                    (read_ttl(reader)?, read_flag(reader, "set get flag")?)
                };
                Op::Set { key, value, condition, ttl, get }
            }
            TAG_DEL => Op::Del { keys: read_keys(reader)? },
            TAG_EXISTS => Op::Exists { keys: read_keys(reader)? },
            TAG_INCRBY => Op::IncrBy { key: reader.bytes("key")?, delta: reader.i64("INCRBY delta")? },
            TAG_MGET => Op::MGet { keys: read_keys(reader)? },
            TAG_MSET => Op::MSet { pairs: read_pairs(reader, "MSET pair list")? },
            TAG_STRLEN => Op::StrLen { key: reader.bytes("key")? },
            TAG_GETRANGE => {
                Op::GetRange { key: reader.bytes("key")?, start: reader.i64("start")?, end: reader.i64("end")? }
            }
            TAG_TYPE => Op::Type { key: reader.bytes("key")? },
            TAG_MEMORY_USAGE => Op::MemoryUsage { key: reader.bytes("key")? },
            TAG_OBJECT_ENCODING => Op::ObjectEncoding { key: reader.bytes("key")? },
            TAG_TTL => {
                let key = reader.bytes("key")?;
                let flags = reader.u8("ttl flags")?;
                if flags > 3 {
                    return Err(DecodeError::UnknownTag { what: "ttl flags", tag: flags });
                }
                Op::Ttl { key, milliseconds: flags & 1 == 1, absolute: flags & 2 == 2 }
            }
            TAG_KEYS => Op::Keys { pattern: reader.bytes("pattern")? },
            TAG_SCAN => Op::Scan {
                from: reader.u64("scan bucket")?,
                count: reader.u64("scan count")?,
                pattern: read_opt(reader, "scan pattern")?,
                type_filter: read_opt(reader, "scan type")?,
            },
            TAG_RANDOMKEY => Op::RandomKey { point: reader.u64("random point")? },
            TAG_DBSIZE => Op::DbSize,
            TAG_WATCH => Op::Watch { keys: read_keys(reader)? },
            TAG_SETNX => Op::SetNx { key: reader.bytes("key")?, value: reader.bytes("value")? },
            TAG_GETDEL => Op::GetDel { key: reader.bytes("key")? },
            TAG_GETEX => {
                let key = reader.bytes("key")?;
                let ttl = read_ttl(reader)?;
                if ttl == SetTtl::Keep {
                    return Err(DecodeError::UnknownTag { what: "getex ttl", tag: 1 });
                }
                Op::GetEx { key, ttl }
            }
            TAG_APPEND => {
                Op::Append { key: reader.bytes("key")?, value: reader.bytes("value")?, limit: reader.u64("limit")? }
            }
            TAG_SETRANGE => Op::SetRange {
                key: reader.bytes("key")?,
                offset: reader.u64("offset")?,
                value: reader.bytes("value")?,
                limit: reader.u64("limit")?,
            },
            TAG_INCRBYFLOAT => Op::IncrByFloat { key: reader.bytes("key")?, increment: reader.bytes("increment")? },
            TAG_MSETNX => Op::MSetNx { pairs: read_pairs(reader, "MSETNX pair list")? },
            TAG_EXPIRE => {
                let key = reader.bytes("key")?;
                let expiry = read_expiry(reader)?;
                let bits = reader.u8("expire condition")?;
                let Some(when) = ExpireWhen::from_bits(bits) else {
                    return Err(DecodeError::UnknownTag { what: "expire condition", tag: bits });
                };
                Op::Expire { key, expiry, when }
            }
            TAG_PERSIST => Op::Persist { key: reader.bytes("key")? },
            TAG_RENAME => Op::Rename {
                from: reader.bytes("key")?,
                to: reader.bytes("key")?,
                nx: read_flag(reader, "rename nx flag")?,
            },
            TAG_COPY => Op::Copy {
                from: reader.bytes("key")?,
                to: reader.bytes("key")?,
                replace: read_flag(reader, "copy replace flag")?,
            },
            TAG_FLUSH => Op::Flush,
            TAG_EXEC if !nested => {
                let removals = reader.u64("removal count")?;
                let count = reader.count("watched key list", 5)?;
                let watched = (0..count)
                    .map(|_| {
                        let key = reader.bytes("watched key")?;
                        let version = if read_flag(reader, "watched version flag")? {
                            Some(reader.u64("watched version")?)
                        } else {
                            None
                        };
                        Ok(Watched { key, version })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                let count = reader.count("transaction op list", 1)?;
                let ops = (0..count).map(|_| Op::decode_from(reader, version, true)).collect::<Result<Vec<_>, _>>()?;
                Op::Exec { ops, watched, removals }
            }
            tag => return Err(DecodeError::UnknownTag { what: "op", tag }),
        };
        Ok(op)
    }
}

fn write_expiry(writer: &mut Writer, expiry: &Expiry) {
    match expiry {
        Expiry::In { ms, command } => {
            writer.u8(0);
            writer.i64(*ms);
            writer.u8(*command);
        }
        Expiry::At(at) => {
            writer.u8(1);
            writer.i64(*at);
        }
    }
}

fn write_ttl(writer: &mut Writer, ttl: &SetTtl) {
    match ttl {
        SetTtl::Clear => writer.u8(0),
        SetTtl::Keep => writer.u8(1),
        SetTtl::Expire(expiry) => {
            writer.u8(2);
            write_expiry(writer, expiry);
        }
    }
}

fn read_expiry(reader: &mut Reader<'_>) -> Result<Expiry, DecodeError> {
    match reader.u8("expiry tag")? {
        0 => {
            let ms = reader.i64("expiry ms")?;
            let command = reader.u8("expiry command")?;
            if usize::from(command) >= EXPIRE_COMMAND_NAMES.len() {
                return Err(DecodeError::UnknownTag { what: "expiry command", tag: command });
            }
            Ok(Expiry::In { ms, command })
        }
        1 => Ok(Expiry::At(reader.i64("expiry time")?)),
        tag => Err(DecodeError::UnknownTag { what: "expiry", tag }),
    }
}

fn read_ttl(reader: &mut Reader<'_>) -> Result<SetTtl, DecodeError> {
    match reader.u8("ttl tag")? {
        0 => Ok(SetTtl::Clear),
        1 => Ok(SetTtl::Keep),
        2 => Ok(SetTtl::Expire(read_expiry(reader)?)),
        tag => Err(DecodeError::UnknownTag { what: "ttl", tag }),
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

    /// The key of an encoded GET, SET or INCRBY, read in place: nothing
    /// is copied or decoded past it. `None` for every other op and for
    /// bytes that do not parse. Lets the store bring a batch's keys into
    /// the cache before it runs the batch ([`crate::kv::KvStore::warm`]).
    pub fn peek_key(bytes: &[u8]) -> Option<&[u8]> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("command version").ok()?;
        if !(COMMAND_FORMAT_VERSION_1..=COMMAND_FORMAT_VERSION).contains(&version) {
            return None;
        }
        let header_words = if version == COMMAND_FORMAT_VERSION_1 { 2 } else { 4 };
        for _ in 0..header_words {
            reader.u64("command header").ok()?;
        }
        match reader.u8("op tag").ok()? {
            TAG_GET | TAG_SET | TAG_INCRBY => reader.slice("key").ok(),
            _ => None,
        }
    }

    /// Parses exactly one encoded command; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("command version")?;
        if !(COMMAND_FORMAT_VERSION_1..=COMMAND_FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion { what: "command", version });
        }
        let session = reader.u64("session id")?;
        let seq = reader.u64("sequence number")?;
        let (ack, prev) =
            if version == COMMAND_FORMAT_VERSION_1 { (seq, 0) } else { (reader.u64("ack")?, reader.u64("prev")?) };
        let op = Op::decode_from(&mut reader, version, false)?;
        reader.finish("command")?;
        Ok(Command { session, seq, ack, prev, op })
    }
}

#[cfg(test)]
mod tests;
