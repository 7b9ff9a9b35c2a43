//! The data directory's file names: segments (index and salt), snapshots,
//! and the salt that makes each segment's writes its own (`write.rs`).

use std::io;
use std::path::Path;

use super::WalError;
use crate::paxos::Slot;

/// Where a snapshot is written before it is renamed into place.
pub(super) const SNAPSHOT_TMP_NAME: &str = "snapshot.tmp";

/// A segment's file name: `wal-{index:020}-{salt:016x}.log`, or
/// `wal-{index:020}.log` for a segment written before segments had salts
/// (`salt` 0).
pub(super) fn segment_name(index: u64, salt: u64) -> String {
    if salt == 0 {
        format!("wal-{index:020}.log")
    } else {
        format!("wal-{index:020}-{salt:016x}.log")
    }
}

/// The index and salt of a segment file name (salt 0: an unsalted one).
/// Only the exact names [`segment_name`] writes (20 digits, 16 lower-case
/// hex digits), as recovery rebuilds each path from its index and salt.
pub(super) fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    let (index, salt) = match stem.split_once('-') {
        None => (stem.parse().ok()?, 0),
        Some((index, salt)) => {
            (index.parse().ok()?, u64::from_str_radix(salt, 16).ok().filter(|salt| salt & SALT_MARK != 0)?)
        }
    };
    (segment_name(index, salt) == name).then_some((index, salt))
}

/// The epoch of the writes in segment file `name` (`write.rs`): its salt,
/// or its index if it has none. None if `name` is not a segment's.
pub fn segment_epoch(name: &str) -> Option<u64> {
    parse_segment_name(name).map(|(index, salt)| epoch(index, salt))
}

pub(super) fn epoch(index: u64, salt: u64) -> u64 {
    if salt == 0 {
        index
    } else {
        salt
    }
}

/// Every salt has its top bit set, so that no salt is an unsalted
/// segment's epoch (its index).
pub const SALT_MARK: u64 = 1 << 63;

/// A fresh segment's salt: random, so that the writes of no other segment,
/// of this log or of any other on the filesystem (a deleted log's blocks
/// that a power loss exposes past this one's end), carry its epoch.
pub(super) fn new_salt(dir: &Path) -> Result<u64, WalError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| WalError::Io {
        what: "drawing a segment's salt",
        path: dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok(u64::from_le_bytes(bytes) | SALT_MARK)
}

pub(super) fn snapshot_name(slot: Slot) -> String {
    format!("snapshot-{slot:020}.snap")
}

/// Parse `prefix{digits}suffix`.
pub(super) fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}
