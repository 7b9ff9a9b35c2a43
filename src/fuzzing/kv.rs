//! `kv_command`, `kv_snapshot` and `kv_snapshot_mutated`: the state
//! machine's binary formats (log entries, replies, snapshot images).
//!
//! Both the command and the snapshot format are at version 2 and still
//! read version 1, which they write back as version 2: the canonical
//! round trip (`encode(decode(b)) == b`) is promised, and checked, only for
//! input in the current version; older input must survive one trip through
//! the current version instead.

use bytes::{Bytes, BytesMut};

use super::input::Input;
use crate::kv::{
    session_id, Command, ExpireWhen, Expiry, KvStore, Op, Reply, SetCondition, SetTtl, SnapshotError, Watched,
    APPLY_COUNT_MAX, COMMAND_FORMAT_VERSION, REPLY_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION,
};
use crate::net::resp::{encode_reply, Proto};

/// `data` as a log entry and as an encoded reply. Both decoders never
/// panic; whatever decodes in the current version re-encodes to the same
/// bytes (both formats are documented canonical), and an older command
/// re-encodes to one that decodes to it. A command that decodes applies to
/// a store, and its reply survives the reply format and the RESP encoder;
/// applied again (a retry), it does not run again and gets the same reply.
/// `Command::peek_key` never panics either, and on a command that decodes
/// reads the key decode does (the store warms what it names).
pub fn kv_command(data: &[u8]) {
    let peeked = Command::peek_key(data);
    if let Ok(mut command) = Command::decode(data) {
        let key = match &command.op {
            Op::Get { key } | Op::Set { key, .. } | Op::IncrBy { key, .. } => Some(key.as_ref()),
            _ => None,
        };
        assert_eq!(peeked, key, "peek_key disagrees with decode on {command:?}");
        let encoded = command.encode();
        if data[0] == COMMAND_FORMAT_VERSION {
            assert_eq!(encoded, data, "non-canonical command {command:?}");
        } else {
            assert_eq!(Command::decode(&encoded).as_ref(), Ok(&command), "an old command lost in re-encoding");
        }
        // A string may legitimately grow to `STRING_BYTES_MAX` (512 MiB),
        // past the fuzz build's 64 MiB allocation cap: model the default
        // 1 MiB bound an entry node puts in the command instead.
        if let Op::Append { limit, .. } | Op::SetRange { limit, .. } = &mut command.op {
            *limit = (*limit).min(1 << 20);
        }
        let mut store = KvStore::new(4);
        let applied = store.apply(command.clone());
        assert!(applied.reply.is_some() || !applied.ran, "a command ran without a reply");
        assert!(applied.released.is_empty(), "a fresh store released commands that never waited");
        if let Some(reply) = &applied.reply {
            assert_eq!(Reply::decode(&reply.encode()).as_ref(), Ok(reply));
            encode_reply(&mut BytesMut::new(), reply, Proto::Resp2);
            encode_reply(&mut BytesMut::new(), reply, Proto::Resp3);
            if applied.ran && command.op.is_read_only() {
                let local = store.read(&command.op, store.log_time());
                assert_eq!(&local, reply, "a read served locally differs from the log's");
            }
        }
        let retry = store.apply(command.clone());
        if command.session != crate::kv::SESSION_NONE {
            assert!(!retry.ran, "a retry of {command:?} ran again");
            assert_eq!(retry.reply, applied.reply, "a retry of {command:?} got another reply");
        }
    }
    if let Ok(reply) = Reply::decode(data) {
        let encoded = reply.encode();
        if data[0] == REPLY_FORMAT_VERSION {
            assert_eq!(encoded, data, "non-canonical reply {reply:?}");
        } else {
            assert_eq!(Reply::decode(&encoded).as_ref(), Ok(&reply), "an old reply lost in re-encoding");
        }
    }
}

/// `data` as a snapshot image: `restore` never panics, and an image it
/// accepts is canonical in the current version
/// (`snapshot(restore(b)) == b`), or, in an older one, restores from its
/// re-snapshot to the same store. The store keeps working: commands from
/// old and new sessions apply (pipelined, out of order, retried), and the
/// store then snapshots and restores to itself.
pub fn kv_snapshot(data: &[u8]) {
    let Ok(mut store) = KvStore::restore(data) else { return };
    let image = store.snapshot();
    if data[0] == SNAPSHOT_FORMAT_VERSION {
        assert_eq!(image, data, "non-canonical snapshot accepted");
    } else {
        assert_eq!(KvStore::restore(&image).as_ref(), Ok(&store), "an old image lost in re-snapshotting");
    }
    let sessions = [0, 1, 2, 3, session_id(1, 1), session_id(2, 5), u64::MAX - 1];
    for session in sessions {
        for seq in [0, 1, 2, 5, u64::MAX] {
            let command = Command {
                session,
                seq,
                ack: seq / 2,
                prev: seq.saturating_sub(1),
                op: Op::IncrBy { key: Bytes::from_static(b"n"), delta: 1 },
            };
            store.apply(command);
        }
    }
    // An image restored within these few applies of APPLY_COUNT_MAX ends
    // past it, where the round trip is not promised.
    match KvStore::restore(&store.snapshot()) {
        Err(SnapshotError::ApplyCountOutOfRange { apply_count }) => {
            let applied = (sessions.len() * 5) as u64;
            assert!(apply_count <= APPLY_COUNT_MAX + applied, "the counter passed the bound by more than was applied")
        }
        restored => assert_eq!(restored.as_ref(), Ok(&store), "a store that restored once no longer does"),
    }
}

/// A valid image of a store after a few generated commands, then damaged:
/// the image round-trips before the damage, and after it [`kv_snapshot`]'s
/// checks hold.
pub fn kv_snapshot_mutated(data: &[u8]) {
    let mut input = Input::new(data);
    let mut store = KvStore::new(input.below(6));
    for _ in 0..input.below(24) {
        if input.below(4) == 0 {
            store.advance_clock(input.below(3000) as u64);
        }
        store.apply(command_from(&mut input));
    }
    let image = store.snapshot();
    assert_eq!(KvStore::restore(&image).as_ref(), Ok(&store), "a fresh image does not restore");
    let mut image = image.to_vec();
    for _ in 0..1 + input.below(3) {
        mutate_bytes(&mut image, &mut input);
    }
    kv_snapshot(&image);
}

/// A command over a handful of keys, from a few sessions, with sequence
/// numbers that repeat, skip and go backwards (retries, stale resends, and
/// pipelines whose commands reach the log out of order and wait).
fn command_from(input: &mut Input) -> Command {
    let key = |input: &mut Input| match input.below(5) {
        4 => Bytes::copy_from_slice(input.bytes(16)),
        k => Bytes::copy_from_slice(&[b'a' + k as u8]),
    };
    let value = |input: &mut Input| Bytes::copy_from_slice(input.bytes(16));
    // Expiry times near the store's clock, which the driver moves too.
    let expiry = |input: &mut Input| match input.below(3) {
        0 => Expiry::In { ms: input.below(2000) as i64 - 100, command: input.below(4) as u8 },
        1 => Expiry::At(input.below(5000) as i64),
        _ => Expiry::In { ms: input.u64() as i64, command: 0 },
    };
    let op = match input.below(16) {
        0 => Op::Get { key: key(input) },
        1 => {
            let condition = match input.below(4) {
                0 => SetCondition::Always,
                1 => SetCondition::IfNotExists,
                2 => SetCondition::IfExists,
                _ => SetCondition::IfEqual(value(input)),
            };
            let ttl = match input.below(3) {
                0 => SetTtl::Clear,
                1 => SetTtl::Keep,
                _ => SetTtl::Expire(expiry(input)),
            };
            Op::Set { key: key(input), value: value(input), condition, ttl, get: input.bool() }
        }
        7 => Op::Expire {
            key: key(input),
            expiry: expiry(input),
            when: ExpireWhen { xx: input.bool(), gt: input.bool(), ..ExpireWhen::default() },
        },
        8 => Op::Append { key: key(input), value: value(input), limit: input.below(64) as u64 },
        9 => Op::SetRange { key: key(input), offset: input.below(40) as u64, value: value(input), limit: 48 },
        10 => Op::IncrByFloat { key: key(input), increment: value(input) },
        11 => Op::Rename { from: key(input), to: key(input), nx: input.bool() },
        12 => Op::Ttl { key: key(input), milliseconds: input.bool(), absolute: input.bool() },
        13 => Op::Scan { from: input.u64() >> 8, count: 1 + input.below(4) as u64, pattern: None, type_filter: None },
        14 => {
            let watched = vec![Watched { key: key(input), version: input.bool().then(|| input.below(20) as u64) }];
            let ops = vec![Op::IncrBy { key: key(input), delta: 1 }, Op::Get { key: key(input) }];
            Op::Exec { ops, watched, removals: input.below(4) as u64 }
        }
        2 => Op::Del { keys: (0..1 + input.below(3)).map(|_| key(input)).collect() },
        3 => Op::Exists { keys: (0..1 + input.below(3)).map(|_| key(input)).collect() },
        4 => Op::IncrBy { key: key(input), delta: input.u64() as i64 },
        5 => Op::MGet { keys: (0..1 + input.below(3)).map(|_| key(input)).collect() },
        _ => Op::MSet { pairs: (0..1 + input.below(3)).map(|_| (key(input), value(input))).collect() },
    };
    // Sessions of three entry nodes (so that evictions raise watermarks),
    // or none; each command names the last one before it as `prev` or
    // nothing, and acknowledges up to a few below itself.
    let session = match input.below(4) {
        0 => crate::kv::SESSION_NONE,
        node => session_id(node as u32, input.below(6) as u64),
    };
    let seq = input.below(8) as u64;
    let ack = seq.saturating_sub(input.below(3) as u64);
    let prev = if input.bool() { seq.saturating_sub(1) } else { 0 };
    Command { session, seq, ack, prev, op }
}

/// One damage: a byte overwritten or flipped, a u32 (length or count)
/// replaced by an edge value, a cut, a byte inserted or removed.
fn mutate_bytes(bytes: &mut Vec<u8>, input: &mut Input) {
    let at = input.below(bytes.len() + 1);
    match input.below(6) {
        0 if at < bytes.len() => bytes[at] = input.u8(),
        1 if at < bytes.len() => bytes[at] ^= 1 << input.below(8),
        2 if at + 4 <= bytes.len() => {
            let word = [0, 1, 2, 0x7F, 0xFF, 1 << 31, u32::MAX, input.u32()][input.below(8)];
            bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
        3 => bytes.truncate(at),
        4 => bytes.insert(at, input.u8()),
        _ if at < bytes.len() => {
            bytes.remove(at);
        }
        _ => {}
    }
}
