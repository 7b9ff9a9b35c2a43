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
use super::session::{Replies, Session, SessionTable, SESSION_WAITING_MAX};
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

/// The scalars of an image, as of its start.
#[derive(Clone, Debug)]
struct ImageHeader {
    apply_count: u64,
    now: i64,
    removals: u64,
}

/// What an image keeps from its start besides the keys
/// ([`KvStore::begin_image`]).
#[derive(Debug)]
pub struct ImageStart {
    header: ImageHeader,
    sessions: SessionTable,
}

/// A store's state as of one moment, every key copied: what
/// [`KvStore::snapshot`] writes, ready to encode off the executor.
#[derive(Debug)]
pub struct KvImage {
    header: ImageHeader,
    sessions: SessionTable,
    entries: Vec<(HashedKey, Entry)>,
}

impl KvImage {
    /// The canonical image bytes ([`KvStore::snapshot`]'s).
    pub fn encode(&self) -> Bytes {
        encode_image(
            &self.header,
            self.entries.len(),
            self.entries.iter().map(|(key, entry)| (key, entry)),
            &self.sessions,
        )
    }

    /// Keys in the image.
    pub fn keys(&self) -> usize {
        self.entries.len()
    }
}

/// The canonical binary image (see the file header) of a store with
/// `header`, `count` `entries` (in `(hash, key)` order) and `sessions`.
///
/// # Panics
/// If the store holds more than `u32::MAX` keys, or a key or value longer
/// than that (see `Writer::length`): far beyond any bound the client
/// protocol admits, so a bug.
fn encode_image<'a>(
    header: &ImageHeader,
    count: usize,
    entries: impl Iterator<Item = (&'a HashedKey, &'a Entry)> + Clone,
    sessions: &SessionTable,
) -> Bytes {
    let data_len: usize =
        entries.clone().map(|(key, entry)| ENTRY_BYTES_MIN + 8 + key.key().len() + entry.value.len()).sum();
    // Cached replies are usually few and small; the estimate only sizes the buffer.
    let sessions_len = sessions.len() * (SESSION_BYTES_MIN + 32);
    let mut writer = Writer::with_capacity(1 + 8 + 8 + 8 + 8 + 4 + data_len + 4 + sessions_len + 4);
    writer.u8(SNAPSHOT_FORMAT_VERSION);
    // usize is at most 64 bits on every supported platform.
    writer.u64(sessions.sessions_max() as u64);
    writer.u64(header.apply_count);
    writer.i64(header.now);
    writer.u64(header.removals);
    writer.length(count);
    for (key, entry) in entries {
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
    writer.length(sessions.len());
    for (id, session) in sessions.sorted() {
        writer.u64(id);
        writer.u64(session.floor);
        writer.u64(session.apply_index_last);
        writer.length(session.replies.len());
        for (seq, reply) in session.replies.iter() {
            writer.u64(seq);
            writer.bytes(&reply.encode());
        }
        writer.length(session.waiting.len());
        for command in session.waiting.values() {
            writer.bytes(&command.encode());
        }
    }
    writer.length(sessions.retired.len());
    for (node, watermark) in &sessions.retired {
        writer.u32(*node);
        writer.u64(*watermark);
    }
    writer.finish()
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
        encode_image(&self.image_header(), self.keys.len_stored(), self.keys.iter(), &self.sessions)
    }

    fn image_header(&self) -> ImageHeader {
        ImageHeader { apply_count: self.apply_count, now: self.now, removals: self.removals }
    }

    /// Start an image of the store as it is now, copied a share at a time
    /// ([`KvStore::continue_image`]) while commands keep applying, then
    /// encoded anywhere ([`KvImage::encode`]): the same bytes
    /// [`KvStore::snapshot`] gives now. The session table is cloned at
    /// once (it is bounded by `sessions_max`); the keys are not. Replaces
    /// an image in progress.
    pub fn begin_image(&mut self) -> ImageStart {
        self.keys.begin_copy();
        ImageStart { header: self.image_header(), sessions: self.sessions.clone() }
    }

    /// An image was begun and not yet taken (the node keeps its own
    /// record: tests ask here).
    #[cfg(test)]
    pub fn image_in_progress(&self) -> bool {
        self.keys.copying()
    }

    /// Copy up to `keys` more keys into the image in progress; true once
    /// it is complete (see [`KvStore::take_image`]).
    pub fn continue_image(&mut self, keys: usize) -> bool {
        self.keys.copy_step(keys)
    }

    /// The complete image begun with `start`; `None` while keys remain to
    /// copy (or if none was begun: a store replaced since has none).
    pub fn take_image(&mut self, start: ImageStart) -> Option<KvImage> {
        let entries = self.keys.take_copy()?;
        Some(KvImage { header: start.header, sessions: start.sessions, entries })
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
    let mut apply_indexes = std::collections::BTreeSet::new();
    for _ in 0..count {
        let id = reader.u64("session id")?;
        let (floor, apply_index_last, replies, waiting) = if version == SNAPSHOT_FORMAT_VERSION_1 {
            let seq_last = reader.u64("session seq_last")?;
            let apply_index_last = reader.u64("session apply index")?;
            let reply = Reply::decode(&reader.bytes("session reply")?)?;
            (seq_last, apply_index_last, Replies::one(seq_last, reply), BTreeMap::new())
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
        if let Some(previous) = table.last_restored() {
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
        if !apply_indexes.insert(apply_index_last) {
            return Err(SnapshotError::ApplyIndexReused { session: id, apply_index: apply_index_last });
        }
        table.restore(id, Session { floor, replies, waiting, apply_index_last });
    }
    table.restored();
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
fn read_replies(reader: &mut Reader<'_>, id: SessionId, floor: u64, current: bool) -> Result<Replies, SnapshotError> {
    let count = reader.count("cached reply list", REPLY_ENTRY_BYTES_MIN)?;
    let mut replies = Replies::default();
    for _ in 0..count {
        let seq = reader.u64("cached reply seq")?;
        let bytes = reader.bytes("cached reply")?;
        current_format(&bytes, super::reply::REPLY_FORMAT_VERSION, "cached reply", current)?;
        let reply = Reply::decode(&bytes)?;
        if seq < floor || replies.last_key().is_some_and(|last| seq <= last) {
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
    replies: &Replies,
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
mod tests;
