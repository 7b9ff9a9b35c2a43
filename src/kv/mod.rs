//! The replicated state machine: client commands, their binary encoding,
//! and the store that applies them exactly once per client session.
//!
//! - [`command`]: [`Op`], [`Command`] and their versioned, canonical
//!   binary format (decode never panics on any input).
//! - [`reply`]: [`Reply`], Redis-shaped results, and their binary format.
//! - [`store`]: [`KvStore`], the keyspace (`keyspace.rs`: values, expiry
//!   and versions in hash order) plus a bounded session table
//!   (`session.rs`) that deduplicates retried commands; `exec.rs` holds
//!   each op's Redis semantics, `float.rs` INCRBYFLOAT's x87 arithmetic,
//!   `glob.rs` the KEYS / SCAN MATCH patterns.
//! - `snapshot.rs`: [`KvStore::snapshot`] / [`KvStore::restore`], the
//!   canonical image of the whole state for log compaction and catch-up,
//!   and [`KvImage`], the same image copied a share at a time
//!   ([`KvStore::begin_image`]) and encoded off the executor.
//! - `formats.rs`: [`FORMATS`], the formats above as peers compare them
//!   before they link (builds that differ would apply the log differently).
//! - `codec.rs`: [`DecodeError`] and the bounds-checked primitives.
//!
//! Everything here is plain, deterministic Rust: replicas that apply the
//! same log reach the same [`KvStore::digest`].

mod codec;
pub mod command;
mod exec;
mod float;
mod formats;
pub mod glob;
pub mod keyspace;
pub mod reply;
mod session;
mod snapshot;
pub mod store;

pub use codec::DecodeError;
pub use command::{
    Command, ExpireWhen, Expiry, Op, SessionId, SetCondition, SetTtl, Watched, COMMAND_FORMAT_VERSION,
    EXPIRE_COMMAND_NAMES, SESSION_NONE,
};
pub use exec::{ERROR_INCR_OVERFLOW, ERROR_NOT_INTEGER, ERROR_NO_SUCH_KEY, ERROR_STRING_TOO_LONG};
pub use float::{ERROR_NAN_OR_INFINITY, ERROR_NOT_FLOAT};
pub use formats::{Formats, FORMATS};
pub use keyspace::{key_hash, BUCKET_MAX, BUCKET_SHIFT};
pub use reply::{Reply, REPLY_FORMAT_VERSION};
pub use session::{session_id, IdHasher, SESSION_NODE_MAX, SESSION_WAITING_MAX};
pub use snapshot::{ImageStart, KvImage, SnapshotError, APPLY_COUNT_MAX, SNAPSHOT_FORMAT_VERSION};
pub use store::{Applied, KvStore, ERROR_READ_OVERTAKEN, ERROR_SESSION_EXPIRED, RECLAIM_PER_STAMP};
