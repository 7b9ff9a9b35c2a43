//! Recovery: [`Wal::open`] reads a data directory back (the rules are in
//! the parent module's doc): the snapshot its newest whole checkpoint
//! names, then every segment from that checkpoint on, write by write; a
//! torn last write is truncated and scrubbed; anything else invalid stops
//! with an error that names the file and the offset.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{
    epoch, fsync_directory, glommio_err, io_err, new_salt, open_buffered, open_segment_for_writing, parse_name,
    parse_segment_name, segment_name, snapshot_name, Durability, InFlightSyncs, Inner, Notify, RecoveryReport, Segment,
    Wal, WalError, WalOptions, WalStats, SNAPSHOT_TMP_NAME,
};
use crate::paxos::{DurableState, PersistOp, Slot, SnapshotImage};
use crate::storage::record::Record;
use crate::storage::scan::{replay, ScanEnd};
use crate::storage::write::scan_segment;

fn decode_snapshot_file(bytes: &[u8]) -> Result<SnapshotImage, String> {
    let header = bytes.get(..12).ok_or("shorter than its header")?;
    let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let body = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(12..12usize.checked_add(len)?))
        .ok_or_else(|| format!("length {len} runs past the end of the file"))?;
    if body.len() < 8 || crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    let slot = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    Ok(SnapshotImage { slot, data: bytes::Bytes::copy_from_slice(&body[8..]) })
}

/// Recovery reads with plain buffered I/O, once, at startup. Not with a
/// `DmaFile`: glommio 0.9 decides whether a device supports polled I/O by a
/// read through the first DMA file opened on it, and caches the answer for
/// the process. On an empty file (a segment created just before a crash)
/// that read succeeds at EOF, the device is marked pollable, and every later
/// DMA read on it fails with EOPNOTSUPP where the device cannot poll.
fn read_whole(path: &Path) -> Result<Vec<u8>, WalError> {
    std::fs::read(path).map_err(io_err("reading", path))
}

/// One segment read at recovery.
struct ScannedSegment {
    index: u64,
    salt: u64,
    path: PathBuf,
    records: Vec<Record>,
    offsets: Vec<usize>,
    /// The slot of the snapshot whose complete checkpoint starts this
    /// segment, if it starts with one.
    checkpoint: Option<Slot>,
}

/// Does `records` start with a whole checkpoint? It is a snapshot marker
/// followed by promise, accept and chosen records and closed by one commit,
/// all written by one write: a valid prefix that reaches the commit holds
/// all of it. Returns the marker's slot, and whether the checkpoint is whole.
fn checkpoint_at_start(records: &[Record]) -> Option<(Slot, bool)> {
    let Some(Record::SnapshotMarker { slot, .. }) = records.first() else {
        return None;
    };
    Some((*slot, records.iter().any(|record| matches!(record, Record::Op(PersistOp::Commit { .. })))))
}

impl Wal {
    /// Open (creating if needed) the log in `options.dir` and recover the
    /// durable state: the latest snapshot, then every segment in order. A
    /// torn tail of the last segment is truncated (and reported); anything
    /// else invalid stops with an error that says where and what to do.
    pub async fn open(options: WalOptions) -> Result<(Wal, DurableState, RecoveryReport), WalError> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err("creating data directory", &dir))?;
        let mut segments = Vec::new();
        let mut snapshots = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let name = entry.map_err(io_err("listing", &dir))?.file_name();
            let name = name.to_string_lossy();
            if let Some((index, salt)) = parse_segment_name(&name) {
                segments.push((index, salt));
            } else if let Some(slot) = parse_name(&name, "snapshot-", ".snap") {
                snapshots.push(slot);
            }
        }
        segments.sort_unstable();
        if let Some(pair) = segments.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            let reason = format!(
                "{} and {} are both segment {}: one of them is not this log's",
                segment_name(pair[0].0, pair[0].1),
                segment_name(pair[1].0, pair[1].1),
                pair[0].0
            );
            return Err(WalError::Corrupt { file: dir.join(segment_name(pair[1].0, pair[1].1)), offset: 0, reason });
        }
        let mut report = RecoveryReport::default();

        // Newest segment first, back to the newest whole checkpoint.
        let mut scanned: Vec<ScannedSegment> = Vec::new();
        let mut last: Option<(u64, u64, Vec<u8>)> = None;
        for (position, &(index, salt)) in segments.iter().enumerate().rev() {
            let path = dir.join(segment_name(index, salt));
            let bytes = read_whole(&path)?;
            let scan = scan_segment(&bytes, epoch(index, salt));
            let is_last = position + 1 == segments.len();
            let mut end = match scan.end {
                ScanEnd::Clean => scan.valid_len as u64,
                ScanEnd::TornTail { offset, reason } if is_last => {
                    report.torn_tail = Some((path.clone(), offset as u64, reason));
                    offset as u64
                }
                ScanEnd::TornTail { offset, reason } | ScanEnd::Corrupt { offset, reason } => {
                    return Err(WalError::Corrupt { file: path, offset: offset as u64, reason });
                }
            };
            let mut records = scan.records;
            let mut offsets = scan.offsets;
            let checkpoint = match checkpoint_at_start(&records) {
                None => None,
                Some((slot, true)) => Some(slot),
                Some((slot, false)) if is_last => {
                    // The checkpoint's own write was torn (it is the first
                    // write into a fresh segment, and nothing is appended
                    // after it before its fsync): nothing here was
                    // acknowledged, and the older segments hold everything.
                    let reason = format!(
                        "the checkpoint of snapshot {slot} that starts the segment is incomplete; \
                         recovering from the segments before it"
                    );
                    report.torn_tail = Some((path.clone(), 0, reason));
                    end = 0;
                    records.clear();
                    offsets.clear();
                    None
                }
                Some((slot, false)) => {
                    let offset = offsets.last().copied().unwrap_or(0) as u64;
                    let reason =
                        format!("the checkpoint of snapshot {slot} that starts the segment ends without its commit");
                    return Err(WalError::Corrupt { file: path, offset, reason });
                }
            };
            if is_last {
                let next_write_seq = if end == 0 { 1 } else { scan.writes + 1 };
                last = Some((end, next_write_seq, bytes));
            }
            scanned.push(ScannedSegment { index, salt, path, records, offsets, checkpoint });
            if checkpoint.is_some() {
                break;
            }
        }
        scanned.reverse();
        // The replayed segments must be the whole log from its start: a
        // checkpoint, or the first segment ever (index 0), then no gaps.
        if let Some(first) = scanned.first().filter(|first| first.checkpoint.is_none() && first.index != 0) {
            let reason = "it is the oldest segment but does not start with a snapshot checkpoint, so the segments \
                          before it (segment 0 and on) are missing"
                .to_string();
            return Err(WalError::Corrupt { file: first.path.clone(), offset: 0, reason });
        }
        for pair in scanned.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                let reason = format!("the segment before it, segment {}, is missing", pair[1].index - 1);
                return Err(WalError::Corrupt { file: pair[1].path.clone(), offset: 0, reason });
            }
        }

        // The snapshot the starting checkpoint names; any newer snapshot
        // file is from a snapshot whose checkpoint never became durable.
        let mut state = DurableState::default();
        let snapshot_slot = scanned.first().and_then(|segment| segment.checkpoint);
        if let Some(slot) = snapshot_slot {
            let path = dir.join(snapshot_name(slot));
            if !snapshots.contains(&slot) {
                let reason = format!("missing, but segment {} starts with its checkpoint", scanned[0].path.display());
                return Err(WalError::Snapshot { file: path, reason });
            }
            let bytes = read_whole(&path)?;
            let image =
                decode_snapshot_file(&bytes).map_err(|reason| WalError::Snapshot { file: path.clone(), reason })?;
            if image.slot != slot {
                let reason = format!("holds slot {}, not the slot {slot} its name and checkpoint say", image.slot);
                return Err(WalError::Snapshot { file: path, reason });
            }
            report.snapshot_slot = Some(slot);
            state.apply(&PersistOp::Snapshot(image));
        }
        for orphan in snapshots.iter().filter(|slot| snapshot_slot.is_none_or(|used| **slot > used)) {
            let path = dir.join(snapshot_name(*orphan));
            glommio::io::remove(&path).await.map_err(glommio_err("removing unreferenced snapshot", &path))?;
        }
        let tmp = dir.join(SNAPSHOT_TMP_NAME);
        if tmp.exists() {
            glommio::io::remove(&tmp).await.map_err(glommio_err("removing", &tmp))?;
        }

        for segment in &scanned {
            report.records += segment.records.len();
            if let Err(e) = replay(&mut state, &segment.records) {
                let offset = segment.offsets.get(e.index).copied().unwrap_or(0) as u64;
                return Err(WalError::Replay { file: segment.path.clone(), offset, reason: e.error.to_string() });
            }
        }
        report.segments = scanned.len();

        // Go on writing the newest segment; a fresh log starts segment 0.
        let (index, salt) = match scanned.last() {
            Some(segment) => (segment.index, segment.salt),
            None => (0, new_salt(&dir)?),
        };
        let (end, next_write_seq, bytes) = last.unwrap_or((0, 1, Vec::new()));
        let path = dir.join(segment_name(index, salt));
        let file = open_segment_for_writing(&path, options.durability, false).await?;
        let align = file.alignment();
        let tail = bytes[(end / align * align) as usize..end as usize].to_vec();
        let buffered = open_buffered(&path, options.durability)?;
        let epoch = epoch(index, salt);
        let segment =
            Segment { index, epoch, path, file: Rc::new(file), end, tail, next_write_seq, zeroed: 0, buffered };
        let wal = Wal {
            inner: RefCell::new(Inner {
                options,
                segment,
                pending: Vec::new(),
                spare_records: Vec::new(),
                appended: 0,
                synced: 0,
                in_flight: InFlightSyncs::default(),
                failure: None,
                state: state.clone(),
                device_ops: 0,
                stats: WalStats::default(),
            }),
            notify: Notify::default(),
            removals: Default::default(),
        };
        if report.torn_tail.is_some() {
            // Overwrite the torn bytes with zeros so that a later scan does
            // not find garbage after the records written from now on.
            let dirty_end = end + bytes[end as usize..].iter().rposition(|byte| *byte != 0).map_or(0, |p| p as u64 + 1);
            wal.scrub_tail(&bytes[..end as usize], dirty_end).await?;
        }
        if segments.is_empty() {
            // A fresh log's first segment is preallocated as every later
            // one is (`roll_segment`): a hint, as there.
            let (file, segment_bytes) = {
                let inner = wal.inner.borrow();
                (inner.segment.file.clone(), inner.options.segment_bytes)
            };
            let _ = file.pre_allocate(segment_bytes, false).await;
            if wal.inner.borrow().options.durability == Durability::Sync {
                fsync_directory(&dir).await?;
            }
        }
        Ok((wal, state, report))
    }

    /// After recovery: zero the bytes after the valid end of the last
    /// segment up to `dirty_end` (a torn write), so the next scan sees clean
    /// padding. Part of `open`, so outside the crash hook and the stats.
    async fn scrub_tail(&self, valid: &[u8], dirty_end: u64) -> Result<(), WalError> {
        let (file, path, end) = {
            let inner = self.inner.borrow();
            (inner.segment.file.clone(), inner.segment.path.clone(), inner.segment.end)
        };
        debug_assert_eq!(valid.len() as u64, end);
        let align = file.alignment();
        let block_start = end / align * align;
        let span = (dirty_end - block_start).div_ceil(align) * align;
        let mut buffer = file.alloc_dma_buffer(span as usize);
        let bytes = buffer.as_bytes_mut();
        bytes.fill(0);
        bytes[..(end - block_start) as usize].copy_from_slice(&valid[block_start as usize..]);
        file.write_at(buffer, block_start).await.map_err(glommio_err("writing", &path))?;
        if self.inner.borrow().options.durability == Durability::Sync {
            file.fdatasync().await.map_err(glommio_err("syncing", &path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot file as `write_snapshot_file` lays it out, byte for
    /// byte, reads back as the same image; a flipped byte anywhere after
    /// the length is caught.
    #[test]
    fn a_snapshot_file_reads_back_and_a_flipped_byte_is_caught() {
        let dir = std::env::temp_dir().join(format!("paxoskv-snapshot-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snapshot");
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        drop(super::super::snapshot_io::write_snapshot_file(&path, 0x0102_0304_0506, &data, true).unwrap());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let mut expected = ((8 + data.len()) as u64).to_le_bytes().to_vec();
        let mut body = 0x0102_0304_0506u64.to_le_bytes().to_vec();
        body.extend_from_slice(&data);
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(bytes, expected);

        let image = decode_snapshot_file(&bytes).unwrap();
        assert_eq!((image.slot, &image.data[..]), (0x0102_0304_0506, &data[..]));
        for at in (8..bytes.len()).step_by(97) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode_snapshot_file(&bad).is_err(), "a flipped byte at {at} went unnoticed");
        }
    }
}
