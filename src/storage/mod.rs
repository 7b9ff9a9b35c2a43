//! Durable acceptor state: the write-ahead log (WAL), its recovery, and
//! (later) snapshots and the disk backends.
//!
//! This part is pure: bytes in, records out, no I/O, no clock. The disk
//! backend (glommio DMA files) and the simulator's disk model both write and
//! read exactly these bytes.
//!
//! # What a WAL record is
//!
//! Every [`PersistOp`](crate::paxos::PersistOp) the core emits in `Ready`
//! becomes one [`Record`], framed as `[len: u32 LE][crc32c: u32 LE][body]`
//! (the format is spelled out in [`record`]). A Promise or Accepted reply
//! leaves only after the fsync covering its record, so the records a crash
//! may tear were never acknowledged. A [`Record::SnapshotMarker`] notes that
//! a snapshot covering every slot below its `slot` is durable; recovery loads
//! the snapshot and replays the records from the marker on.
//!
//! # Recovery policy
//!
//! [`scan_segment`] reads a segment's valid prefix and says how it ends:
//!
//! - [`ScanEnd::Clean`]: all frames valid, possibly followed by zero padding
//!   (a preallocated tail). Nothing to do.
//! - [`ScanEnd::TornTail`]: the last write was torn (a frame running past the
//!   end, or failing its crc, with nothing valid after it). That write was
//!   never acknowledged, so recovery truncates the segment to the offset and
//!   logs it, then carries on.
//! - [`ScanEnd::Corrupt`]: an invalid frame with valid frames after it. That
//!   is not a crash artefact but damage (a bit flip, a bad sector, a bug),
//!   and skipping it could forget a promise or an accepted value, which
//!   breaks Paxos safety. Recovery stops startup with an error naming the
//!   segment file, the offset and the reason, and what to do: restore the
//!   segment from a backup, or wipe this replica's data directory and let it
//!   rejoin as a new, empty replica that catches up from its peers. Never
//!   skip the record silently.
//!
//! Only the last segment may legitimately end torn: a torn tail in an
//! earlier segment (followed by a later segment) is mid-log corruption too,
//! which the caller that walks segments must enforce.
//!
//! [`replay`] then applies the records to a
//! [`DurableState`](crate::paxos::DurableState), checking each op with
//! [`validate_replay`] so that a crc-valid but inconsistent record is an
//! error, not a panic.

pub mod checkpoint;
pub mod record;
pub mod scan;
pub mod wal;
pub mod write;

pub use checkpoint::encode_checkpoint;
pub use record::{decode_body, encode_ops, encode_record, Record, RecordError, FRAME_HEADER_BYTES, RECORD_BYTES_MAX};
pub use scan::{replay, scan_frames, validate_replay, ReplayError, Scan, ScanEnd};
pub use wal::{segment_epoch, Durability, RecoveryReport, Wal, WalError, WalOptions, WalStats, SALT_MARK};
pub use write::{
    encode_write, scan_segment, WRITES_IN_FLIGHT_MAX, WRITE_ALIGN_BYTES, WRITE_GAP_ALIGN_BYTES, WRITE_HEADER_BYTES,
};
