//! The replicated state machine: client commands, their binary encoding,
//! and the store that applies them exactly once per client session.
//!
//! - [`command`]: [`Op`], [`Command`] and their versioned, canonical
//!   binary format (decode never panics on any input).
//! - [`reply`]: [`Reply`], Redis-shaped results, and their binary format.
//! - [`store`]: [`KvStore`], a `BTreeMap` of byte strings plus a bounded
//!   session table (`session.rs`) that deduplicates retried commands.
//! - `snapshot.rs`: [`KvStore::snapshot`] / [`KvStore::restore`], the
//!   canonical image of the whole state for log compaction and catch-up.
//! - `codec.rs`: [`DecodeError`] and the bounds-checked primitives.
//!
//! Everything here is plain, deterministic Rust: replicas that apply the
//! same log reach the same [`KvStore::digest`].

mod codec;
pub mod command;
pub mod reply;
mod session;
mod snapshot;
pub mod store;

pub use codec::DecodeError;
pub use command::{Command, Op, SessionId, SetCondition, COMMAND_FORMAT_VERSION, SESSION_NONE};
pub use reply::{Reply, REPLY_FORMAT_VERSION};
pub use session::{session_id, SESSION_NODE_MAX, SESSION_WAITING_MAX};
pub use snapshot::{SnapshotError, APPLY_COUNT_MAX, SNAPSHOT_FORMAT_VERSION};
pub use store::{Applied, KvStore, ERROR_INCR_OVERFLOW, ERROR_NOT_INTEGER, ERROR_SESSION_EXPIRED};
