//! Snapshots of the state machine, for log compaction: the WAL keeps only
//! the log suffix after the latest snapshot, and a lagging replica installs
//! a snapshot and then applies that suffix ("Paxos Made Live" §5.5; Raft
//! thesis §5.1). The image holds everything `apply` depends on, sessions
//! included, so retries of commands applied before the snapshot are still
//! deduplicated after it (Raft thesis §6.3: the session table is part of
//! the state machine and must be in the snapshot).
//!
//! Format version 3, little-endian, primitives as in `codec.rs`
//! (`bytes = len:u32 data`, `count = n:u32`). The storage layer frames the
//! image with a CRC, so there is none here.
//!
//! ```text
//! snapshot = version:u8(=3) sessions_max:u64 apply_count:u64 now:i64 removals:u64
//!            count entry*                                       strictly ascending by (key_hash(key), key)
//!            count session*                                     sessions strictly ascending
//!            count (node:u32 watermark:u64)*                    retired watermarks, nodes ascending
//! session  = id:u64 floor:u64 apply_index_last:u64
//!            count (seq:u64 reply:bytes)*                       cached replies, seqs ascending, >= floor
//!            count (command:bytes)*                             waiting commands, seqs ascending, >= floor
//! entry    = key:bytes value:bytes (0 | 1 expires_at:i64) version:u64    version <= apply_count
//! reply    = an encoded `Reply` (reply.rs), itself versioned
//! command  = an encoded `Command` (command.rs) of this session
//! ```
//!
//! Older images are still restored. Version 2: no `now`, `removals`,
//! expiry or versions, pairs `(key value)` in ascending key order (each key
//! gets version 0, no expiry). Version 1 also has one cached reply per
//! session and no watermarks: each session's last reply becomes its only
//! cached one.
//!
//! The eviction order is not written separately: it is the order of the
//! sessions' `apply_index_last`, which are unique.
//!
//! Invariants:
//! - `restore(snapshot(s)) == Ok(s)`, and the restored store then behaves
//!   exactly like `s` (same replies, digests and eviction decisions), for
//!   every store whose apply counter is at most [`APPLY_COUNT_MAX`]: every
//!   store that started empty or from an image, short of 2^63 applies.
//! - The image is canonical: equal stores give equal bytes, and
//!   `snapshot(restore(b)?) == b`.
//! - `restore` never panics on any input and allocates only after checking
//!   a count against the remaining input. Beyond the decode checks it
//!   rejects any image `apply` could not have produced and that could make
//!   a later `apply` panic: unsorted or repeated keys or sessions, the
//!   no-session id, more sessions than `sessions_max`, apply indices
//!   that are zero, repeated or above `apply_count`, an `apply_count`
//!   above [`APPLY_COUNT_MAX`], cached replies or waiting commands
//!   below their session's floor, out of order or repeated, waiting
//!   commands of another session, beyond the bound or with a `prev` not
//!   below their seq, and unordered watermarks.

use super::codec::{DecodeError, Reader, Writer};
use super::command::{Command, SessionId, SESSION_NONE};
use super::keyspace::{Entry, HashedKey, Keyspace};
use super::reply::Reply;
use super::session::{Session, SessionTable, SESSION_WAITING_MAX};
use super::store::KvStore;
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// The first byte of every snapshot image.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 3;
/// Older formats, still restored.
#[cfg(test)]
const SNAPSHOT_FORMAT_VERSION_2: u8 = 2;
const SNAPSHOT_FORMAT_VERSION_1: u8 = 1;

/// The largest apply counter an image may hold. No replica gets near it
/// (2^63 commands: centuries at a billion a second), and a store restored
/// at or below it can apply as many again before its counter could
/// overflow (which `apply` does not survive: the counter orders sessions).
pub const APPLY_COUNT_MAX: u64 = 1 << 63;

/// Minimum encoded size of one key-value pair (version 1, 2): two empty `bytes`.
const PAIR_BYTES_MIN: usize = 4 + 4;
/// Minimum encoded size of one entry: two empty `bytes`, no expiry, a version.
const ENTRY_BYTES_MIN: usize = 4 + 4 + 1 + 8;
/// Minimum encoded size of one session: three u64 and two empty lists.
const SESSION_BYTES_MIN: usize = 8 + 8 + 8 + 4 + 4;
/// Minimum encoded size of a version 1 session: three u64 and a reply.
const SESSION_V1_BYTES_MIN: usize = 8 + 8 + 8 + 4 + 2;
/// Minimum encoded size of one cached reply: a seq and a reply's version and tag.
const REPLY_ENTRY_BYTES_MIN: usize = 8 + 4 + 2;
/// Minimum encoded size of one waiting command (its length prefix).
const WAITING_ENTRY_BYTES_MIN: usize = 4;
/// Minimum encoded size of one retired watermark.
const WATERMARK_BYTES_MIN: usize = 4 + 8;

/// Why bytes are not a valid snapshot image. Bad input from the disk or a
/// peer: reported, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a well-formed encoding: truncated, trailing bytes, unknown
    /// version, a count larger than the input, or a malformed cached reply.
    Decode(DecodeError),
    /// `sessions_max` does not fit in this platform's `usize`.
    SessionsMaxTooLarge { sessions_max: u64 },
    /// Key number `index` (from 0) equals the key before it.
    DuplicateKey { index: usize },
    /// Key number `index` sorts before the key before it.
    KeyOutOfOrder { index: usize },
    /// Key number `index` claims a version above the apply count.
    KeyVersionOutOfRange { index: usize, version: u64 },
    /// More sessions than the table's own bound.
    TooManySessions { count: usize, sessions_max: usize },
    /// The no-session id (0) is never recorded.
    SessionNone,
    /// Session `session` appears twice.
    DuplicateSession { session: SessionId },
    /// Session `session` sorts before the session before it.
    SessionOutOfOrder { session: SessionId },
    /// An apply counter above [`APPLY_COUNT_MAX`]: corrupt, and the next
    /// applies would overflow it.
    ApplyCountOutOfRange { apply_count: u64 },
    /// A cached reply or waiting command of `session` is below its floor,
    /// out of order, repeated, of another session, or too many wait; or a
    /// waiting command's `prev` is not below its seq.
    BadSessionEntry { session: SessionId, seq: u64 },
    /// Retired watermarks must name each node once, in ascending order.
    WatermarkOutOfOrder { node: u32 },
    /// An apply index must lie in `1..=apply_count`.
    ApplyIndexOutOfRange { session: SessionId, apply_index: u64, apply_count: u64 },
    /// Two sessions claim the same apply index (each apply records at most one).
    ApplyIndexReused { session: SessionId, apply_index: u64 },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Decode(error) => write!(f, "kv snapshot: {error}"),
            SnapshotError::SessionsMaxTooLarge { sessions_max } => {
                write!(f, "kv snapshot: sessions_max {sessions_max} does not fit in usize")
            }
            SnapshotError::DuplicateKey { index } => write!(f, "kv snapshot: key {index} repeats the previous key"),
            SnapshotError::KeyOutOfOrder { index } => {
                write!(f, "kv snapshot: key {index} sorts before the previous key (keys must ascend)")
            }
            SnapshotError::KeyVersionOutOfRange { index, version } => {
                write!(f, "kv snapshot: key {index} has version {version}, above the apply count")
            }
            SnapshotError::TooManySessions { count, sessions_max } => {
                write!(f, "kv snapshot: {count} sessions exceed sessions_max {sessions_max}")
            }
            SnapshotError::SessionNone => write!(f, "kv snapshot: the no-session id 0 is recorded as a session"),
            SnapshotError::DuplicateSession { session } => write!(f, "kv snapshot: session {session} appears twice"),
            SnapshotError::SessionOutOfOrder { session } => {
                write!(f, "kv snapshot: session {session} sorts before the previous session (ids must ascend)")
            }
            SnapshotError::ApplyCountOutOfRange { apply_count } => {
                write!(f, "kv snapshot: apply count {apply_count} exceeds {APPLY_COUNT_MAX}")
            }
            SnapshotError::ApplyIndexOutOfRange { session, apply_index, apply_count } => {
                write!(f, "kv snapshot: session {session} has apply index {apply_index}, outside 1..={apply_count}")
            }
            SnapshotError::BadSessionEntry { session, seq } => write!(
                f,
                "kv snapshot: session {session} holds an invalid entry at seq {seq} (below its floor, out of \
                 order, repeated, of another session, beyond the waiting bound, or waiting for a later command)"
            ),
            SnapshotError::WatermarkOutOfOrder { node } => {
                write!(f, "kv snapshot: the retired watermark of node {node} is repeated or out of order")
            }
            SnapshotError::ApplyIndexReused { session, apply_index } => {
                write!(f, "kv snapshot: session {session} reuses apply index {apply_index} of another session")
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Decode(error) => Some(error),
            _ => None,
        }
    }
}

impl From<DecodeError> for SnapshotError {
    fn from(error: DecodeError) -> SnapshotError {
        SnapshotError::Decode(error)
    }
}

impl KvStore {
    /// The canonical binary image of the whole state (see the file header):
    /// data, session table with each session's last seq, cached reply and
    /// apply index, `sessions_max` and the apply counter. Equal stores give
    /// equal bytes.
    ///
    /// # Panics
    /// If the store holds more than `u32::MAX` keys, or a key or value
    /// longer than that (see `Writer::length`): far beyond any bound the
    /// client protocol admits, so a bug.
    pub fn snapshot(&self) -> Bytes {
        let data_len: usize =
            self.keys.iter().map(|(key, entry)| ENTRY_BYTES_MIN + 8 + key.key().len() + entry.value.len()).sum();
        // Cached replies are usually few and small; the estimate only sizes the buffer.
        let sessions_len = self.sessions.len() * (SESSION_BYTES_MIN + 32);
        let mut writer = Writer::with_capacity(1 + 8 + 8 + 8 + 8 + 4 + data_len + 4 + sessions_len + 4);
        writer.u8(SNAPSHOT_FORMAT_VERSION);
        // usize is at most 64 bits on every supported platform.
        writer.u64(self.sessions.sessions_max() as u64);
        writer.u64(self.apply_count);
        writer.i64(self.now);
        writer.u64(self.removals);
        writer.length(self.keys.len_stored());
        for (key, entry) in self.keys.iter() {
            writer.bytes(key.key());
            writer.bytes(&entry.value);
            match entry.expires_at {
                None => writer.u8(0),
                Some(at) => {
                    writer.u8(1);
                    writer.i64(at);
                }
            }
            writer.u64(entry.version);
        }
        writer.length(self.sessions.len());
        for (id, session) in &self.sessions.sessions {
            writer.u64(*id);
            writer.u64(session.floor);
            writer.u64(session.apply_index_last);
            writer.length(session.replies.len());
            for (seq, reply) in &session.replies {
                writer.u64(*seq);
                writer.bytes(&reply.encode());
            }
            writer.length(session.waiting.len());
            for command in session.waiting.values() {
                writer.bytes(&command.encode());
            }
        }
        writer.length(self.sessions.retired.len());
        for (node, watermark) in &self.sessions.retired {
            writer.u32(*node);
            writer.u64(*watermark);
        }
        writer.finish()
    }

    /// Rebuilds the store a [`KvStore::snapshot`] image describes. Never
    /// panics on any input; anything `snapshot` could not have produced is
    /// an error saying what is wrong.
    ///
    /// The restored store keeps the image's `sessions_max`, not a locally
    /// configured one: eviction decisions must match the other replicas'.
    pub fn restore(snapshot: &[u8]) -> Result<KvStore, SnapshotError> {
        let mut reader = Reader::new(snapshot);
        let version = reader.u8("snapshot version")?;
        if !(SNAPSHOT_FORMAT_VERSION_1..=SNAPSHOT_FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion { what: "snapshot", version }.into());
        }
        let sessions_max = reader.u64("sessions_max")?;
        let sessions_max =
            usize::try_from(sessions_max).map_err(|_| SnapshotError::SessionsMaxTooLarge { sessions_max })?;
        let apply_count = reader.u64("apply count")?;
        if apply_count > APPLY_COUNT_MAX {
            return Err(SnapshotError::ApplyCountOutOfRange { apply_count });
        }
        let (now, removals, keys) = if version == SNAPSHOT_FORMAT_VERSION {
            let now = reader.i64("log time")?;
            let removals = reader.u64("removal count")?;
            (now, removals, read_entries(&mut reader, apply_count)?)
        } else {
            (0, 0, read_pairs(&mut reader)?)
        };
        let mut sessions = read_sessions(&mut reader, version, sessions_max, apply_count)?;
        if version != SNAPSHOT_FORMAT_VERSION_1 {
            sessions.retired = read_watermarks(&mut reader)?;
        }
        reader.finish("snapshot")?;
        sessions.check_invariants();
        keys.check_invariants();
        Ok(KvStore { keys, sessions, apply_count, now, removals })
    }
}

/// Reads the entries, which must be in strictly ascending hash order.
fn read_entries(reader: &mut Reader<'_>, apply_count: u64) -> Result<Keyspace, SnapshotError> {
    let count = reader.count("entry list", ENTRY_BYTES_MIN)?;
    let mut keys = Keyspace::default();
    let mut previous: Option<HashedKey> = None;
    for index in 0..count {
        let key = reader.bytes("key")?;
        let value = reader.bytes("value")?;
        let expires_at = match reader.u8("expiry flag")? {
            0 => None,
            1 => Some(reader.i64("expiry")?),
            tag => return Err(DecodeError::UnknownTag { what: "expiry flag", tag }.into()),
        };
        let version = reader.u64("key version")?;
        if version > apply_count {
            return Err(SnapshotError::KeyVersionOutOfRange { index, version });
        }
        let hashed = HashedKey::new(key.clone());
        if let Some(previous) = &previous {
            match hashed.cmp(previous) {
                Ordering::Less => return Err(SnapshotError::KeyOutOfOrder { index }),
                Ordering::Equal => return Err(SnapshotError::DuplicateKey { index }),
                Ordering::Greater => {}
            }
        }
        previous = Some(hashed);
        keys.put(key, Entry { value, expires_at, version });
    }
    Ok(keys)
}

/// Reads version 1 and 2 key-value pairs, in strictly ascending key order.
fn read_pairs(reader: &mut Reader<'_>) -> Result<Keyspace, SnapshotError> {
    let count = reader.count("key-value pair list", PAIR_BYTES_MIN)?;
    let mut keys = Keyspace::default();
    let mut previous: Option<Bytes> = None;
    for index in 0..count {
        let key = reader.bytes("key")?;
        let value = reader.bytes("value")?;
        if let Some(previous) = &previous {
            match key.cmp(previous) {
                Ordering::Less => return Err(SnapshotError::KeyOutOfOrder { index }),
                Ordering::Equal => return Err(SnapshotError::DuplicateKey { index }),
                Ordering::Greater => {}
            }
        }
        previous = Some(key.clone());
        keys.put(key, Entry { value, expires_at: None, version: 0 });
    }
    Ok(keys)
}

/// Reads the session table and checks everything `SessionTable` relies on,
/// so that its assertions hold for every later `apply`.
fn read_sessions(
    reader: &mut Reader<'_>,
    version: u8,
    sessions_max: usize,
    apply_count: u64,
) -> Result<SessionTable, SnapshotError> {
    let entry_min = if version == SNAPSHOT_FORMAT_VERSION_1 { SESSION_V1_BYTES_MIN } else { SESSION_BYTES_MIN };
    let count = reader.count("session list", entry_min)?;
    if count > sessions_max {
        return Err(SnapshotError::TooManySessions { count, sessions_max });
    }
    let mut table = SessionTable::new(sessions_max);
    for _ in 0..count {
        let id = reader.u64("session id")?;
        let (floor, apply_index_last, replies, waiting) = if version == SNAPSHOT_FORMAT_VERSION_1 {
            let seq_last = reader.u64("session seq_last")?;
            let apply_index_last = reader.u64("session apply index")?;
            let reply = Reply::decode(&reader.bytes("session reply")?)?;
            (seq_last, apply_index_last, BTreeMap::from([(seq_last, reply)]), BTreeMap::new())
        } else {
            let floor = reader.u64("session floor")?;
            let apply_index_last = reader.u64("session apply index")?;
            let current = version == SNAPSHOT_FORMAT_VERSION;
            let replies = read_replies(reader, id, floor, current)?;
            let waiting = read_waiting(reader, id, floor, &replies, current)?;
            (floor, apply_index_last, replies, waiting)
        };
        if id == SESSION_NONE {
            return Err(SnapshotError::SessionNone);
        }
        if let Some((&previous, _)) = table.sessions.last_key_value() {
            match id.cmp(&previous) {
                Ordering::Less => return Err(SnapshotError::SessionOutOfOrder { session: id }),
                Ordering::Equal => return Err(SnapshotError::DuplicateSession { session: id }),
                Ordering::Greater => {}
            }
        }
        // `apply` advances the counter before recording, so indices start
        // at 1; one above the counter would make the next `apply` see its
        // index go backwards.
        if apply_index_last == 0 || apply_index_last > apply_count {
            return Err(SnapshotError::ApplyIndexOutOfRange {
                session: id,
                apply_index: apply_index_last,
                apply_count,
            });
        }
        if table.sessions_by_apply.insert(apply_index_last, id).is_some() {
            return Err(SnapshotError::ApplyIndexReused { session: id, apply_index: apply_index_last });
        }
        table.sessions.insert(id, Session { floor, replies, waiting, apply_index_last });
    }
    Ok(table)
}

/// A session's cached replies: seqs strictly ascending, none below `floor`.
/// With `current`, `bytes` must start with the `version` `snapshot`
/// writes (older ones decode, but only inside older images).
fn current_format(bytes: &[u8], version: u8, what: &'static str, current: bool) -> Result<(), SnapshotError> {
    match bytes.first() {
        Some(&v) if current && v != version => Err(DecodeError::UnsupportedVersion { what, version: v }.into()),
        _ => Ok(()),
    }
}

/// In a snapshot of the current version (`current`), replies are in the
/// current reply format: `snapshot` writes no other, so an image holding an
/// older one is not canonical (found by the kv_snapshot fuzz target).
fn read_replies(
    reader: &mut Reader<'_>,
    id: SessionId,
    floor: u64,
    current: bool,
) -> Result<BTreeMap<u64, Reply>, SnapshotError> {
    let count = reader.count("cached reply list", REPLY_ENTRY_BYTES_MIN)?;
    let mut replies = BTreeMap::new();
    for _ in 0..count {
        let seq = reader.u64("cached reply seq")?;
        let bytes = reader.bytes("cached reply")?;
        current_format(&bytes, super::reply::REPLY_FORMAT_VERSION, "cached reply", current)?;
        let reply = Reply::decode(&bytes)?;
        if seq < floor || replies.last_key_value().is_some_and(|(&last, _)| seq <= last) {
            return Err(SnapshotError::BadSessionEntry { session: id, seq });
        }
        replies.insert(seq, reply);
    }
    Ok(replies)
}

/// A session's waiting commands: of this session, seqs strictly ascending,
/// none below `floor` or among the cached replies, at most the bound.
fn read_waiting(
    reader: &mut Reader<'_>,
    id: SessionId,
    floor: u64,
    replies: &BTreeMap<u64, Reply>,
    current: bool,
) -> Result<BTreeMap<u64, Command>, SnapshotError> {
    let count = reader.count("waiting command list", WAITING_ENTRY_BYTES_MIN)?;
    if count > SESSION_WAITING_MAX {
        return Err(SnapshotError::BadSessionEntry { session: id, seq: 0 });
    }
    let mut waiting: BTreeMap<u64, Command> = BTreeMap::new();
    for _ in 0..count {
        let bytes = reader.bytes("waiting command")?;
        current_format(&bytes, super::command::COMMAND_FORMAT_VERSION, "waiting command", current)?;
        let command = Command::decode(&bytes)?;
        let seq = command.seq;
        let bad = command.session != id
            || (command.prev != 0 && command.prev >= seq)
            || seq < floor
            || replies.contains_key(&seq)
            || waiting.last_key_value().is_some_and(|(&last, _)| seq <= last);
        if bad {
            return Err(SnapshotError::BadSessionEntry { session: id, seq });
        }
        waiting.insert(seq, command);
    }
    Ok(waiting)
}

/// The retired watermarks: each node once, ascending.
fn read_watermarks(reader: &mut Reader<'_>) -> Result<BTreeMap<u32, u64>, SnapshotError> {
    let count = reader.count("watermark list", WATERMARK_BYTES_MIN)?;
    let mut retired = BTreeMap::new();
    for _ in 0..count {
        let node = reader.u32("watermark node")?;
        let watermark = reader.u64("watermark")?;
        if retired.last_key_value().is_some_and(|(&last, _)| node <= last) {
            return Err(SnapshotError::WatermarkOutOfOrder { node });
        }
        retired.insert(node, watermark);
    }
    Ok(retired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::codec::test_support::{check_decoder_robust, XorShift};
    use crate::kv::command::{Command, Op, SetCondition};
    use crate::kv::store::Applied;
    use crate::kv::SetTtl;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn reply_of(store: &mut KvStore, command: &Command) -> Option<Reply> {
        store.apply(command).reply
    }

    /// Found by the kv_snapshot fuzz target: an image of the current
    /// version holding a cached reply in the older reply format restored,
    /// and snapshotted to other bytes (`snapshot` writes only the current
    /// format). Such an image is refused.
    #[test]
    fn a_current_image_with_an_older_format_reply_inside_is_refused() {
        let mut store = KvStore::new(4);
        let command = Command { session: 5, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } };
        assert_eq!(reply_of(&mut store, &command), Some(Reply::Nil));
        let image = store.snapshot();
        // The cached reply: its length (2), the reply version, the Nil tag.
        let current = [2, 0, 0, 0, crate::kv::REPLY_FORMAT_VERSION, 2];
        let at = image.windows(current.len()).position(|w| w == current).expect("the cached reply is in the image");
        let mut old = image.to_vec();
        old[at + 4] = 1; // the older reply format, which decodes to the same reply
        assert!(matches!(
            KvStore::restore(&old),
            Err(SnapshotError::Decode(DecodeError::UnsupportedVersion { what: "cached reply", version: 1 }))
        ));
        assert_eq!(KvStore::restore(&image).as_ref(), Ok(&store));
    }

    /// A pseudo-random command over a few keys; `session`, `seq`, `ack` and `prev` as given.
    fn random_command(rng: &mut XorShift, session: SessionId, seq: u64, ack: u64, prev: u64) -> Command {
        let key = b(&format!("k{}", rng.next() % 6));
        let op = match rng.next() % 7 {
            0 => Op::Set {
                key,
                value: b(&(rng.next() % 100).to_string()),
                condition: SetCondition::Always,
                ttl: SetTtl::Clear,
                get: false,
            },
            1 => Op::Set { key, value: b("nx"), condition: SetCondition::IfNotExists, ttl: SetTtl::Clear, get: false },
            2 => Op::IncrBy { key, delta: (rng.next() % 21) as i64 - 10 },
            3 => Op::Del { keys: vec![key, b("k0")] },
            4 => Op::MSet { pairs: vec![(key, b("m")), (b(&format!("k{}", rng.next() % 6)), b("7"))] },
            5 => Op::MGet { keys: vec![key, b("k1")] },
            _ => Op::Get { key },
        };
        Command { session, seq, ack, prev, op }
    }

    /// Applies a few hundred mixed commands from 8 sessions (more than the
    /// 5 the table keeps, so some are evicted and retired), with pipelines
    /// (acks lagging), commands arriving before their predecessor, retries
    /// and stale commands. Returns the store and every command applied.
    fn busy_store() -> (KvStore, Vec<Command>) {
        let mut store = KvStore::new(5);
        let mut rng = XorShift(0x5EED_0000_0000_0001);
        let mut seq_next: BTreeMap<SessionId, u64> = BTreeMap::new();
        let mut history: Vec<Command> = Vec::new();
        for _ in 0..400 {
            let session = rng.next() % 9; // 0 is SESSION_NONE: never deduplicated
            let command = match rng.next() % 10 {
                // A retry or a stale resend of an earlier command.
                0 | 1 if !history.is_empty() => history[(rng.next() % history.len() as u64) as usize].clone(),
                _ => {
                    let next = seq_next.entry(session).or_insert(1);
                    let seq = *next + rng.next() % 2; // sometimes skip one: it arrives later
                    *next = seq + 1;
                    let ack = seq.saturating_sub(rng.next() % 4).max(1);
                    let prev = seq - 1;
                    random_command(&mut rng, session, seq, ack, prev)
                }
            };
            store.apply(&command);
            history.push(command);
        }
        (store, history)
    }

    /// Applies each command to both stores; results and digests must match
    /// after every one. Returns the results.
    fn apply_to_both(first: &mut KvStore, second: &mut KvStore, commands: &[Command]) -> Vec<Applied> {
        commands
            .iter()
            .map(|command| {
                let applied = first.apply(command);
                assert_eq!(second.apply(command), applied, "{command:?}");
                assert_eq!(first.digest(), second.digest(), "after {command:?}");
                applied
            })
            .collect()
    }

    /// Writes a version 2 image field by field without any check, to build
    /// invalid ones. Each session `(id, floor, apply_index)` caches one
    /// reply at `floor` and has no waiting command.
    fn raw_image(sessions_max: u64, apply_count: u64, data: &[(&str, &str)], sessions: &[(u64, u64, u64)]) -> Vec<u8> {
        let mut writer = Writer::with_capacity(64);
        writer.u8(SNAPSHOT_FORMAT_VERSION);
        writer.u64(sessions_max);
        writer.u64(apply_count);
        writer.i64(0);
        writer.u64(0);
        writer.length(data.len());
        for (key, value) in data {
            writer.bytes(key.as_bytes());
            writer.bytes(value.as_bytes());
            writer.u8(0);
            writer.u64(0);
        }
        writer.length(sessions.len());
        for &(id, floor, apply_index_last) in sessions {
            writer.u64(id);
            writer.u64(floor);
            writer.u64(apply_index_last);
            writer.length(1);
            writer.u64(floor);
            writer.bytes(&Reply::Int(floor as i64).encode());
            writer.length(0);
        }
        writer.length(0);
        writer.finish().to_vec()
    }

    /// Runs commands on a restored store, so a corrupt-but-accepted image
    /// would show up as a panic in the session table.
    fn exercise(mut store: KvStore) {
        let ids: Vec<SessionId> = store.sessions.sessions.keys().copied().collect();
        for id in ids.into_iter().chain([SESSION_NONE, u64::MAX - 1]) {
            for seq in [0, 1, 2, u64::MAX] {
                let prev = seq.saturating_sub(1);
                store.apply(&Command {
                    session: id,
                    seq,
                    ack: seq / 2,
                    prev,
                    op: Op::IncrBy { key: b("n"), delta: 1 },
                });
            }
        }
        store.sessions.check_invariants();
    }

    #[test]
    fn round_trip_then_identical_behaviour() {
        let (mut original, history) = busy_store();
        assert_eq!(original.sessions_len(), 5, "the table filled up and evicted");
        assert!(!original.sessions.retired.is_empty(), "evictions raised a watermark");
        assert!(original.sessions.sessions.values().any(|s| !s.waiting.is_empty()), "some command waits");
        let image = original.snapshot();
        let mut restored = KvStore::restore(&image).expect("a fresh snapshot restores");
        assert_eq!(restored, original);
        assert_eq!(restored.digest(), original.digest());
        assert_eq!(restored.snapshot(), image, "snapshot(restore(b)) == b");

        // A retry of a cached command replays its reply without executing.
        let (&id, session) = restored.sessions.sessions.iter().find(|(_, s)| !s.replies.is_empty()).unwrap();
        let (&seq, cached) = session.replies.iter().next().unwrap();
        let retry = history.iter().rev().find(|c| c.session == id && c.seq == seq).unwrap().clone();
        let (cached, data_before) = (cached.clone(), restored.keys.clone());
        let retry = Command { ack: retry.ack.min(seq), ..retry };
        let results = apply_to_both(&mut original, &mut restored, &[retry]);
        assert_eq!(results[0].reply, Some(cached));
        assert_eq!(restored.keys, data_before, "a retry must not execute again");

        // Retries of every pre-snapshot command, then 20 new sessions that
        // evict every old one, then the pre-snapshot retries again.
        let mut rng = XorShift(0xC0FF_EE00_0000_0001);
        let mut later: Vec<Command> = history.iter().rev().take(60).cloned().collect();
        for session in 100..120 {
            later.push(random_command(&mut rng, session, 1, 1, 0));
            later.push(random_command(&mut rng, 1 + session % 8, 1_000 + session, 1_000 + session, 0));
            later.push(history[(rng.next() % history.len() as u64) as usize].clone());
        }
        later.extend(history.iter().rev().take(60).cloned());
        let results = apply_to_both(&mut original, &mut restored, &later);
        let errors = |prefix: &str| {
            results.iter().filter(|r| matches!(&r.reply, Some(Reply::Error(m)) if m.starts_with(prefix))).count()
        };
        assert!(errors("ERR session expired") > 0, "retired sessions are refused");
        assert!(errors("ERR command") > 0, "settled commands are refused");
        assert_eq!(restored, original);
        assert_eq!(restored.snapshot(), original.snapshot());
    }

    #[test]
    fn empty_store_round_trips() {
        for sessions_max in [0, 1, 4096] {
            let empty = KvStore::new(sessions_max);
            let image = empty.snapshot();
            assert_eq!(image.len(), 1 + 8 + 8 + 8 + 8 + 4 + 4 + 4);
            assert_eq!(image[0], SNAPSHOT_FORMAT_VERSION);
            let restored = KvStore::restore(&image).expect("restores");
            assert_eq!(restored, empty);
            assert_eq!(restored.digest(), empty.digest());
        }
    }

    #[test]
    fn version_1_images_restore_with_one_cached_reply_per_session() {
        let mut writer = Writer::with_capacity(64);
        writer.u8(SNAPSHOT_FORMAT_VERSION_1);
        writer.u64(4);
        writer.u64(3);
        writer.length(1);
        writer.bytes(b"k");
        writer.bytes(b"v");
        writer.length(1);
        writer.u64(7); // session
        writer.u64(2); // seq_last
        writer.u64(3); // apply index
        writer.bytes(&Reply::Ok.encode());
        let mut store = KvStore::restore(&writer.finish()).expect("a version 1 image");
        assert_eq!(store.get(b"k"), Some(&b("v")));
        let retry = Command { session: 7, seq: 2, ack: 2, prev: 1, op: Op::IncrBy { key: b("n"), delta: 1 } };
        assert_eq!(reply_of(&mut store, &retry), Some(Reply::Ok), "the cached reply survives");
    }

    #[test]
    fn version_2_images_restore_without_expiries() {
        let mut writer = Writer::with_capacity(64);
        writer.u8(SNAPSHOT_FORMAT_VERSION_2);
        writer.u64(4);
        writer.u64(3);
        writer.length(1);
        writer.bytes(b"k");
        writer.bytes(b"v");
        writer.length(0);
        writer.length(0);
        let store = KvStore::restore(&writer.finish()).expect("a version 2 image");
        assert_eq!(store.get(b"k"), Some(&b("v")));
        assert_eq!(store.entry(b"k").map(|entry| entry.expires_at), Some(None));
        assert_eq!(store.log_time(), 0, "a version 2 store has seen no stamp");
    }

    #[test]
    fn every_truncation_is_an_error() {
        for image in [busy_store().0.snapshot(), KvStore::new(3).snapshot()] {
            for end in 0..image.len() {
                let error = KvStore::restore(&image[..end]).expect_err("a truncated image must not restore");
                assert!(matches!(error, SnapshotError::Decode(_)), "cut at {end}: {error}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut small = KvStore::new(2);
        let set =
            Op::Set { key: b("a"), value: b("1"), condition: SetCondition::Always, ttl: SetTtl::Clear, get: false };
        small.apply(&Command { session: 7, seq: 1, ack: 1, prev: 0, op: set });
        small.apply(&Command { session: 3, seq: 9, ack: 9, prev: 0, op: Op::MGet { keys: vec![b("a"), b("zz")] } });
        let seeds = [busy_store().0.snapshot(), small.snapshot(), KvStore::new(0).snapshot()];
        // Noise, and seeds with bytes flipped: whatever restores (in the
        // current version) must re-snapshot to the same bytes and keep working.
        check_decoder_robust(&seeds, 5000, |input| {
            KvStore::restore(input).ok().filter(|_| input[0] == SNAPSHOT_FORMAT_VERSION).map(|store| {
                let image = store.snapshot();
                exercise(store);
                image
            })
        });
        // Well-framed images with random small field values, so that the
        // semantic checks (order, bounds, apply indices) are hit often and
        // some images are valid; a quarter get a byte flipped as well.
        let mut rng = XorShift(0x0BAD_5EED_0000_0001);
        let (mut restored_count, mut rejected_count) = (0, 0);
        for _ in 0..5000 {
            let keys = ["", "a", "ab", "b"];
            let data: Vec<(&str, &str)> = (0..rng.next() % 4)
                .map(|_| (keys[(rng.next() % 4) as usize], keys[(rng.next() % 4) as usize]))
                .collect();
            let sessions: Vec<(u64, u64, u64)> =
                (0..rng.next() % 4).map(|_| (rng.next() % 4, rng.next() % 3, rng.next() % 5)).collect();
            let mut input = raw_image(rng.next() % 4, rng.next() % 5, &data, &sessions);
            if rng.next().is_multiple_of(4) {
                let at = (rng.next() % input.len() as u64) as usize;
                input[at] = rng.next() as u8;
            }
            match KvStore::restore(&input) {
                Ok(store) if input[0] == SNAPSHOT_FORMAT_VERSION => {
                    assert_eq!(store.snapshot().as_ref(), input.as_slice(), "non-canonical image accepted");
                    exercise(store);
                    restored_count += 1;
                }
                Ok(store) => exercise(store),
                Err(_) => rejected_count += 1,
            }
        }
        assert!(restored_count > 100 && rejected_count > 100, "{restored_count} restored, {rejected_count} rejected");
    }

    #[test]
    fn keys_must_be_strictly_ascending() {
        // Entries ascend by (key hash, key): the order SCAN walks.
        let mut pairs = vec![("a", "1"), ("b", "2"), ("c", "3")];
        pairs.sort_by_key(|(key, _)| HashedKey::new(b(key)));
        assert!(KvStore::restore(&raw_image(4, 0, &pairs, &[])).is_ok());
        pairs.swap(1, 2);
        assert_eq!(KvStore::restore(&raw_image(4, 0, &pairs, &[])), Err(SnapshotError::KeyOutOfOrder { index: 2 }));
        let repeated = raw_image(4, 0, &[("a", "1"), ("a", "2")], &[]);
        assert_eq!(KvStore::restore(&repeated), Err(SnapshotError::DuplicateKey { index: 1 }));
    }

    #[test]
    fn invalid_session_tables_are_rejected() {
        let restore = |sessions_max, apply_count, sessions: &[(u64, u64, u64)]| {
            KvStore::restore(&raw_image(sessions_max, apply_count, &[], sessions))
        };
        let valid = restore(3, 10, &[(1, 4, 7), (2, 1, 10), (9, 1, 1)]).expect("valid");
        assert_eq!(valid.sessions_len(), 3);
        assert_eq!(restore(3, 10, &[(2, 1, 1), (1, 1, 2)]), Err(SnapshotError::SessionOutOfOrder { session: 1 }));
        assert_eq!(restore(3, 10, &[(2, 1, 1), (2, 1, 2)]), Err(SnapshotError::DuplicateSession { session: 2 }));
        assert_eq!(restore(3, 10, &[(0, 1, 1)]), Err(SnapshotError::SessionNone));
        assert_eq!(
            restore(1, 10, &[(1, 1, 1), (2, 1, 2)]),
            Err(SnapshotError::TooManySessions { count: 2, sessions_max: 1 })
        );
        assert_eq!(
            restore(3, 10, &[(1, 1, 11)]),
            Err(SnapshotError::ApplyIndexOutOfRange { session: 1, apply_index: 11, apply_count: 10 })
        );
        assert_eq!(
            restore(3, 10, &[(1, 1, 0)]),
            Err(SnapshotError::ApplyIndexOutOfRange { session: 1, apply_index: 0, apply_count: 10 })
        );
        assert_eq!(
            restore(3, 10, &[(1, 1, 5), (2, 1, 5)]),
            Err(SnapshotError::ApplyIndexReused { session: 2, apply_index: 5 })
        );
    }

    /// Found by the kv_snapshot fuzz target: an image with the apply counter
    /// at u64::MAX restored, and the next apply overflowed it (a panic with
    /// overflow checks; without, the counter wrapped and the session table
    /// asserted that apply indices never go backwards).
    #[test]
    fn an_apply_count_no_replica_reaches_is_rejected() {
        for apply_count in [u64::MAX, APPLY_COUNT_MAX + 1] {
            assert_eq!(
                KvStore::restore(&raw_image(2, apply_count, &[], &[])),
                Err(SnapshotError::ApplyCountOutOfRange { apply_count })
            );
        }
        let mut store = KvStore::restore(&raw_image(2, APPLY_COUNT_MAX, &[], &[(1, 1, APPLY_COUNT_MAX)])).unwrap();
        store.apply(&Command { session: 2, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } });
        assert_eq!(store.sessions_len(), 2);
        assert_eq!(
            SnapshotError::ApplyCountOutOfRange { apply_count: u64::MAX }.to_string(),
            "kv snapshot: apply count 18446744073709551615 exceeds 9223372036854775808"
        );
    }

    #[test]
    fn invalid_session_entries_and_watermarks_are_rejected() {
        let mut store = KvStore::new(4);
        let command = |seq, ack, prev| Command { session: 5, seq, ack, prev, op: Op::Get { key: b("k") } };
        store.apply(&command(2, 1, 1)); // waits for 1
        store.apply(&command(4, 1, 3)); // waits for 3
        let image = store.snapshot();
        assert!(KvStore::restore(&image).is_ok());
        // Swap the two waiting commands: out of order.
        let first = command(2, 1, 1).encode();
        let second = command(4, 1, 3).encode();
        let at = image.windows(first.len()).position(|w| w == &first[..]).unwrap();
        let mut swapped = image.to_vec();
        swapped[at..at + first.len()].copy_from_slice(&second);
        swapped[at + first.len() + 4..at + 2 * first.len() + 4].copy_from_slice(&first);
        assert_eq!(KvStore::restore(&swapped), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
        // A waiting command of another session.
        let foreign = Command { session: 6, ..command(2, 1, 1) }.encode();
        let mut wrong = image.to_vec();
        wrong[at..at + foreign.len()].copy_from_slice(&foreign);
        assert_eq!(KvStore::restore(&wrong), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
        // A waiting command whose prev is not below its seq (found by the
        // kv_snapshot fuzz target: `apply` kept it waiting below the floor).
        let ahead = command(2, 1, 2).encode();
        let mut ahead_image = image.to_vec();
        ahead_image[at..at + ahead.len()].copy_from_slice(&ahead);
        assert_eq!(KvStore::restore(&ahead_image), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
        // Watermarks must ascend.
        let mut image = raw_image(2, 0, &[], &[]);
        image.truncate(image.len() - 4);
        let mut writer = Writer::with_capacity(32);
        writer.length(2);
        writer.u32(3);
        writer.u64(1);
        writer.u32(3);
        writer.u64(2);
        image.extend_from_slice(&writer.finish());
        assert_eq!(KvStore::restore(&image), Err(SnapshotError::WatermarkOutOfOrder { node: 3 }));
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let mut image = KvStore::new(2).snapshot().to_vec();
        image.push(0);
        assert_eq!(
            KvStore::restore(&image),
            Err(SnapshotError::Decode(DecodeError::TrailingBytes { what: "snapshot", count: 1 }))
        );
        image[0] = 9;
        assert_eq!(
            KvStore::restore(&image),
            Err(SnapshotError::Decode(DecodeError::UnsupportedVersion { what: "snapshot", version: 9 }))
        );
        // A pair count of u32::MAX with nothing behind it: rejected before
        // anything is allocated.
        let mut absurd = raw_image(2, 0, &[], &[]);
        absurd[33..37].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            KvStore::restore(&absurd),
            Err(SnapshotError::Decode(DecodeError::LengthTooLarge { what: "entry list", .. }))
        ));
        let mut absurd = raw_image(2, 0, &[], &[]);
        absurd[37..41].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            KvStore::restore(&absurd),
            Err(SnapshotError::Decode(DecodeError::LengthTooLarge { what: "session list", .. }))
        ));
        // A cached reply that is not a valid reply encoding: its tag sits
        // before the i64, the waiting count and the watermark count.
        let mut bad_reply = raw_image(2, 1, &[], &[(1, 1, 1)]);
        let tag_at = bad_reply.len() - 4 - 4 - 8 - 1;
        bad_reply[tag_at] = 99;
        assert_eq!(
            KvStore::restore(&bad_reply),
            Err(SnapshotError::Decode(DecodeError::UnknownTag { what: "reply", tag: 99 }))
        );
    }

    #[test]
    fn equal_stores_give_identical_bytes() {
        let (store, _) = busy_store();
        assert_eq!(store.snapshot(), store.clone().snapshot());
        assert_eq!(store.snapshot(), busy_store().0.snapshot(), "same log, same image");
        // Filled in a different order, equal in the end.
        let mut first = KvStore::new(4);
        let mut second = KvStore::new(4);
        let mset = |pairs: &[(&str, &str)]| Op::MSet { pairs: pairs.iter().map(|(k, v)| (b(k), b(v))).collect() };
        first.apply(&Command { session: 5, seq: 1, ack: 1, prev: 0, op: mset(&[("a", "1"), ("b", "2")]) });
        second.apply(&Command { session: 5, seq: 1, ack: 1, prev: 0, op: mset(&[("b", "2"), ("a", "1")]) });
        assert_eq!(first, second);
        assert_eq!(first.snapshot(), second.snapshot());
        // The test helper writes exactly the real format.
        let expected = raw_image(4, 0, &[("a", "1")], &[]);
        let mut third = KvStore::new(4);
        third.keys.put(b("a"), Entry { value: b("1"), expires_at: None, version: 0 });
        assert_eq!(third.snapshot().as_ref(), expected.as_slice());
    }

    #[test]
    fn errors_display_what_is_wrong() {
        let error = KvStore::restore(&[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kv snapshot: kv decode: input truncated while reading snapshot version: need 1 bytes, 0 left"
        );
        assert!(std::error::Error::source(&error).is_some());
        let mut pairs = [("a", ""), ("b", "")];
        pairs.sort_by_key(|(key, _)| std::cmp::Reverse(HashedKey::new(b(key))));
        let error = KvStore::restore(&raw_image(4, 0, &pairs, &[])).unwrap_err();
        assert_eq!(error.to_string(), "kv snapshot: key 1 sorts before the previous key (keys must ascend)");
        let error = KvStore::restore(&raw_image(4, 3, &[], &[(1, 1, 9)])).unwrap_err();
        assert_eq!(error.to_string(), "kv snapshot: session 1 has apply index 9, outside 1..=3");
    }
}
