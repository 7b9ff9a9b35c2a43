//! Recovery: scanning one segment's bytes into records, deciding how the
//! valid prefix ends, and replaying records onto a [`DurableState`].

use std::borrow::Cow;
use std::fmt;

use super::record::{check_slot_range, decode_body, Record, RecordError, FRAME_HEADER_BYTES, RECORD_BYTES_MAX};
use crate::paxos::{DurableState, PersistOp, Slot, Value};

/// The result of scanning one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The records of the valid prefix, in order.
    pub records: Vec<Record>,
    /// `offsets[i]` is the byte offset of the frame holding `records[i]`
    /// (for error messages that name a record's place in the file).
    pub offsets: Vec<usize>,
    /// Bytes of whole valid frames (or writes) from the start: where the
    /// next append goes, and where a torn tail is truncated. Zero padding
    /// is excluded.
    pub valid_len: usize,
    /// Valid writes (`write.rs`); 0 for a scan of bare frames.
    pub writes: u64,
    /// Where each valid write starts (empty for bare frames).
    pub write_offsets: Vec<usize>,
    pub end: ScanEnd,
}

/// How the valid prefix of a segment ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte is a valid frame, or the valid frames are followed by zero
    /// padding only (a preallocated segment's unused tail).
    Clean,
    /// The bytes from `offset` on are not a valid frame and no valid frame
    /// starts anywhere after it: the last write was torn by a crash. Nothing
    /// in it was acknowledged (replies wait for the fsync that covers them),
    /// so the caller truncates to `offset` and logs `reason`.
    TornTail { offset: usize, reason: String },
    /// The frame at `offset` is invalid but a valid frame starts later:
    /// corruption in the middle of the log. Skipping it could drop a promise
    /// or an accepted value, so the caller must stop with an error.
    Corrupt { offset: usize, reason: String },
}

/// Scans a run of frames (the body of one write, see `write.rs`) from its
/// first byte. Never panics, whatever the bytes.
///
/// Frames are contiguous from offset 0; zero bytes are allowed only as a
/// tail (a frame header with `len == 0 && crc == 0`, or fewer than a
/// header's bytes, all zero, starts the padding). The disk writer must keep
/// it so: rewrite a partially filled block, never pad between frames, and
/// zero (not merely reuse) a recycled segment, or stale frames behind a torn
/// write would read as mid-log corruption.
///
/// Cost: one CRC per valid frame. An invalid frame triggers a search for a
/// later valid frame, trying every later offset whose `len` field fits the
/// remaining bytes; random or zero bytes rarely pass that filter, so the
/// search is about one pass in practice (worst case quadratic on crafted
/// input, which a crash or a bit flip does not produce).
pub fn scan_frames(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = 0;
    let end = loop {
        let rest = &bytes[offset..];
        if rest.is_empty() {
            break ScanEnd::Clean;
        }
        let header = &rest[..rest.len().min(FRAME_HEADER_BYTES)];
        if header.iter().all(|byte| *byte == 0) {
            match rest.iter().position(|byte| *byte != 0) {
                None => break ScanEnd::Clean,
                Some(position) => {
                    let reason = format!(
                        "zero padding from offset {offset} is followed by non-zero byte at offset {}",
                        offset + position
                    );
                    break classify(bytes, offset, reason);
                }
            }
        }
        match read_frame(bytes, offset) {
            Ok((record, frame_len)) => {
                records.push(record);
                offsets.push(offset);
                offset += frame_len;
            }
            Err(error) => break classify(bytes, offset, error.to_string()),
        }
    };
    Scan { records, offsets, valid_len: offset, writes: 0, write_offsets: Vec::new(), end }
}

/// The frame at `offset` is invalid: torn if nothing valid follows it,
/// corrupt otherwise.
fn classify(bytes: &[u8], offset: usize, reason: String) -> ScanEnd {
    match valid_frame_after(bytes, offset) {
        None => ScanEnd::TornTail { offset, reason },
        Some(later) => {
            ScanEnd::Corrupt { offset, reason: format!("{reason}; a valid frame follows at offset {later}") }
        }
    }
}

/// The first offset after `offset` where a whole valid frame starts.
fn valid_frame_after(bytes: &[u8], offset: usize) -> Option<usize> {
    // A valid frame has a header and at least a kind byte.
    let last_start = bytes.len().checked_sub(FRAME_HEADER_BYTES + 1)?;
    (offset + 1..=last_start).find(|start| {
        let len = read_u32(bytes, *start) as usize;
        // Cheap filter first: most garbage announces an impossible length.
        len != 0 && len <= bytes.len() - start - FRAME_HEADER_BYTES && read_frame(bytes, *start).is_ok()
    })
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug)]
enum FrameError {
    HeaderPastEnd { remaining: usize },
    LengthZero,
    LengthTooLarge { len: u32 },
    BodyPastEnd { len: u32, remaining: usize },
    CrcMismatch { stored: u32, computed: u32 },
    Body(RecordError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::HeaderPastEnd { remaining } => {
                write!(f, "frame header runs past the end ({remaining} of {FRAME_HEADER_BYTES} bytes present)")
            }
            FrameError::LengthZero => write!(f, "frame length is 0 but the crc is not (not zero padding)"),
            FrameError::LengthTooLarge { len } => {
                write!(f, "frame length {len} exceeds the maximum {RECORD_BYTES_MAX}")
            }
            FrameError::BodyPastEnd { len, remaining } => {
                write!(f, "frame body of {len} bytes runs past the end ({remaining} bytes present)")
            }
            FrameError::CrcMismatch { stored, computed } => {
                write!(f, "crc mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            FrameError::Body(error) => write!(f, "crc matches but the body does not decode: {error}"),
        }
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(raw)
}

/// Reads the frame at `offset`: the record and the frame's total length.
fn read_frame(bytes: &[u8], offset: usize) -> Result<(Record, usize), FrameError> {
    let remaining = bytes.len() - offset;
    if remaining < FRAME_HEADER_BYTES {
        return Err(FrameError::HeaderPastEnd { remaining });
    }
    let len = read_u32(bytes, offset);
    let stored = read_u32(bytes, offset + 4);
    if len == 0 {
        return Err(FrameError::LengthZero);
    }
    if len > RECORD_BYTES_MAX {
        return Err(FrameError::LengthTooLarge { len });
    }
    let body_start = offset + FRAME_HEADER_BYTES;
    if len as usize > bytes.len() - body_start {
        return Err(FrameError::BodyPastEnd { len, remaining: bytes.len() - body_start });
    }
    let body = &bytes[body_start..body_start + len as usize];
    let computed = crc32c::crc32c(body);
    if computed != stored {
        return Err(FrameError::CrcMismatch { stored, computed });
    }
    let record = decode_body(body).map_err(FrameError::Body)?;
    Ok((record, FRAME_HEADER_BYTES + len as usize))
}

/// A record that cannot be replayed, and where it is in the replayed slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError {
    /// Index into the records passed to [`replay`].
    pub index: usize,
    pub error: RecordError,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot replay WAL record {}: {}", self.index, self.error)
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Checks that `state.apply(op)` cannot panic: a crc-valid record is not
/// necessarily consistent with the records before it (a bug in an old
/// version, a segment from another replica), and a replica must refuse to
/// start rather than crash or invent a value.
///
/// - Commit: every slot from `state.commit` up to the new commit must have
///   a chosen or an accepted value (the precondition `apply` panics on).
/// - Accept and Chosen: the slot range must not overflow `u64`.
pub fn validate_replay(state: &DurableState, op: &PersistOp) -> Result<(), RecordError> {
    match op {
        PersistOp::Promise { .. }
        | PersistOp::Snapshot(_)
        | PersistOp::RecoveryBegun
        | PersistOp::RecoveryDone
        | PersistOp::Horizon { .. } => Ok(()),
        PersistOp::Accept { first_slot, values, .. } | PersistOp::Chosen { first_slot, values } => {
            check_slot_range(*first_slot, values.len())
        }
        PersistOp::Commit { commit } => {
            // Each step that continues finds a distinct key in one of the
            // maps, so this loop is bounded by the state's size, not by how
            // far a corrupt commit claims to reach.
            let mut slot = state.commit;
            while slot < *commit {
                if !state.chosen.contains_key(&slot) && !state.accepted.contains_key(&slot) {
                    return Err(RecordError::CommitCoversMissingValue { commit: *commit, slot });
                }
                slot += 1;
            }
            Ok(())
        }
    }
}

/// Applies `records` to `state` in order, validating each op first.
///
/// Snapshots: the WAL holds only a [`Record::SnapshotMarker`]; the image is
/// in a snapshot file the caller loads. Recovery is:
///
/// 1. find the latest marker (or snapshot file), load its image, and start
///    from `DurableState::default()` with `PersistOp::Snapshot(image)`
///    applied;
/// 2. `replay` every retained record, those before the marker included:
///    they may hold the promised ballot and accepted values above the
///    snapshot slot, which the snapshot does not.
///
/// Values at slots below `state.log_start()` are dropped before applying
/// (the snapshot already covers them, and `DurableState` keeps nothing
/// below it). A marker newer than `state.log_start()` is an error: the
/// records after it may rely on that snapshot. A caller that prefers to
/// substitute each marker with `Record::Op(PersistOp::Snapshot(image))`
/// gets that op applied in place.
///
/// On error, `state` holds exactly the records before `index`.
pub fn replay(state: &mut DurableState, records: &[Record]) -> Result<(), ReplayError> {
    for (index, record) in records.iter().enumerate() {
        match record {
            Record::Op(op) => {
                let op = clip_below(op, state.log_start());
                validate_replay(state, &op).map_err(|error| ReplayError { index, error })?;
                state.apply(&op);
            }
            Record::SnapshotMarker { slot, snapshot_id } => {
                let log_start = state.log_start();
                if *slot > log_start {
                    let error = RecordError::SnapshotNotLoaded { slot: *slot, snapshot_id: *snapshot_id, log_start };
                    return Err(ReplayError { index, error });
                }
            }
        }
    }
    Ok(())
}

/// `op` without the values at slots below `log_start`.
fn clip_below(op: &PersistOp, log_start: Slot) -> Cow<'_, PersistOp> {
    let clip = |first_slot: Slot, values: &[Value]| {
        let skip = (log_start - first_slot).min(values.len() as u64) as usize;
        (first_slot + skip as u64, values[skip..].to_vec())
    };
    match op {
        PersistOp::Accept { ballot, first_slot, values } if *first_slot < log_start => {
            let (first_slot, values) = clip(*first_slot, values);
            Cow::Owned(PersistOp::Accept { ballot: *ballot, first_slot, values })
        }
        PersistOp::Chosen { first_slot, values } if *first_slot < log_start => {
            let (first_slot, values) = clip(*first_slot, values);
            Cow::Owned(PersistOp::Chosen { first_slot, values })
        }
        _ => Cow::Borrowed(op),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::record::{encode_ops, encode_record};
    use super::*;
    use crate::paxos::{Ballot, SnapshotImage};
    use crate::rng::Rng;

    fn random_value(rng: &mut Rng) -> Value {
        match rng.below(4) {
            0 => Value::Noop,
            1 => Value::batch(vec![]),
            _ => {
                let commands = (0..rng.range_inclusive(1, 5))
                    .map(|_| {
                        let len = rng.below(40) as usize;
                        Bytes::from((0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>())
                    })
                    .collect();
                Value::batch(commands)
            }
        }
    }

    fn random_values(rng: &mut Rng, count_max: u64) -> Vec<Value> {
        (0..rng.range_inclusive(1, count_max)).map(|_| random_value(rng)).collect()
    }

    /// What a replica's core might persist across three leaderships: promises,
    /// pipelined accepts, catch-up, re-accepts of uncommitted slots under a
    /// newer ballot, a stale accept below the commit point, commits.
    fn scripted_workload() -> Vec<PersistOp> {
        let mut rng = Rng::new(0x00DE_C0DE);
        let mut ops = Vec::new();
        let mut next_slot: Slot = 0;
        for round in 1..=3u64 {
            let ballot = Ballot::new(round, (round % 3) as u32 + 1);
            ops.push(PersistOp::Promise { ballot });
            if next_slot > 0 {
                // The new leader re-proposes the last uncommitted slot.
                ops.push(PersistOp::Accept { ballot, first_slot: next_slot - 1, values: vec![random_value(&mut rng)] });
            }
            for _ in 0..5 {
                let values = random_values(&mut rng, 4);
                let count = values.len() as u64;
                ops.push(PersistOp::Accept { ballot, first_slot: next_slot, values });
                next_slot += count;
                ops.push(PersistOp::Commit { commit: next_slot - 1 });
            }
            let values = random_values(&mut rng, 3);
            let count = values.len() as u64;
            ops.push(PersistOp::Chosen { first_slot: next_slot, values });
            next_slot += count;
            ops.push(PersistOp::Commit { commit: next_slot });
            // Stale: below the commit point, must not change anything.
            ops.push(PersistOp::Accept { ballot, first_slot: 0, values: vec![Value::Noop] });
            ops.push(PersistOp::Commit { commit: 1 });
        }
        // A stale promise, then the tail the crash interrupts: accepted but
        // not committed, and a value learned beyond a gap.
        ops.push(PersistOp::Promise { ballot: Ballot::new(1, 1) });
        let ballot = Ballot::new(3, 1);
        ops.push(PersistOp::Accept { ballot, first_slot: next_slot, values: random_values(&mut rng, 3) });
        ops.push(PersistOp::Chosen { first_slot: next_slot + 5, values: vec![random_value(&mut rng)] });
        ops
    }

    /// The workload's records with two snapshot markers interleaved.
    fn scripted_records() -> Vec<Record> {
        let mut records: Vec<Record> = scripted_workload().into_iter().map(Record::Op).collect();
        records.insert(12, Record::SnapshotMarker { slot: 5, snapshot_id: 1 });
        records.insert(30, Record::SnapshotMarker { slot: 20, snapshot_id: 2 });
        records
    }

    fn encode_all(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for record in records {
            starts.push(bytes.len());
            encode_record(record, &mut bytes);
        }
        (bytes, starts)
    }

    fn apply_directly(ops: &[PersistOp]) -> DurableState {
        let mut state = DurableState::default();
        for op in ops {
            state.apply(op);
        }
        state
    }

    #[test]
    fn workload_is_a_few_dozen_ops() {
        let ops = scripted_workload();
        assert!((30..=60).contains(&ops.len()), "{}", ops.len());
    }

    #[test]
    fn encoded_workload_scans_clean() {
        let ops = scripted_workload();
        let mut bytes = Vec::new();
        encode_ops(&ops, &mut bytes);
        let scan = scan_frames(&bytes);
        assert_eq!(scan.end, ScanEnd::Clean);
        assert_eq!(scan.valid_len, bytes.len());
        assert_eq!(scan.records, ops.into_iter().map(Record::Op).collect::<Vec<_>>());

        let records = scripted_records();
        let (bytes, starts) = encode_all(&records);
        let scan = scan_frames(&bytes);
        assert_eq!(
            scan,
            Scan {
                records,
                offsets: starts,
                valid_len: bytes.len(),
                writes: 0,
                write_offsets: vec![],
                end: ScanEnd::Clean
            }
        );
    }

    #[test]
    fn empty_and_all_zero_segments_are_clean() {
        for len in [0, 1, 7, 8, 9, 4096] {
            let scan = scan_frames(&vec![0; len]);
            assert_eq!(
                scan,
                Scan {
                    records: vec![],
                    offsets: vec![],
                    valid_len: 0,
                    writes: 0,
                    write_offsets: vec![],
                    end: ScanEnd::Clean
                },
                "{len}"
            );
        }
    }

    #[test]
    fn every_truncation_point_keeps_the_whole_frames_before_it() {
        let records = scripted_records();
        let (bytes, starts) = encode_all(&records);
        for cut in 0..=bytes.len() {
            let scan = scan_frames(&bytes[..cut]);
            // Frames wholly before the cut survive; the one it splits is torn.
            let frame_end = |index: usize| starts.get(index + 1).copied().unwrap_or(bytes.len());
            let whole = (0..starts.len()).take_while(|index| frame_end(*index) <= cut).count();
            let frame_start = starts.get(whole).copied().unwrap_or(bytes.len());
            assert_eq!(scan.records, records[..whole], "cut {cut}");
            assert_eq!(scan.offsets, starts[..whole], "cut {cut}");
            assert_eq!(scan.valid_len, frame_start, "cut {cut}");
            let partial = &bytes[frame_start..cut];
            if partial.iter().all(|byte| *byte == 0) {
                // A cut exactly at a boundary, or inside a header whose first
                // bytes happen to be zero (indistinguishable from padding;
                // either way the valid prefix is the same).
                assert_eq!(scan.end, ScanEnd::Clean, "cut {cut}");
            } else {
                assert!(
                    matches!(scan.end, ScanEnd::TornTail { offset, .. } if offset == frame_start),
                    "cut {cut}: {:?}",
                    scan.end
                );
            }
        }
    }

    #[test]
    fn a_cut_at_a_frame_boundary_is_clean() {
        let records = scripted_records();
        let (bytes, starts) = encode_all(&records);
        for (index, start) in starts.iter().enumerate() {
            let scan = scan_frames(&bytes[..*start]);
            assert_eq!(scan.end, ScanEnd::Clean);
            assert_eq!(scan.records, records[..index]);
        }
    }

    /// Flips `mask` into the byte at `position` and checks the verdict: the
    /// frames before the damaged one survive, the damaged frame is corrupt if
    /// it is not the last, torn if it is, and never accepted.
    fn check_flip(bytes: &[u8], starts: &[usize], records: &[Record], position: usize, mask: u8) {
        let mut damaged = bytes.to_vec();
        damaged[position] ^= mask;
        let frame = starts.iter().rposition(|start| *start <= position).unwrap();
        let scan = scan_frames(&damaged);
        let context = format!("flip {mask:#04x} at {position} (frame {frame}): {:?}", scan.end);
        assert_eq!(scan.records, records[..frame], "{context}");
        assert_eq!(scan.valid_len, starts[frame], "{context}");
        if frame + 1 < starts.len() {
            assert!(matches!(scan.end, ScanEnd::Corrupt { offset, .. } if offset == starts[frame]), "{context}");
        } else {
            assert!(matches!(scan.end, ScanEnd::TornTail { offset, .. } if offset == starts[frame]), "{context}");
        }
    }

    #[test]
    fn every_byte_flip_in_a_small_log_is_caught_at_its_frame() {
        let records = vec![
            Record::Op(PersistOp::Promise { ballot: Ballot::new(1, 1) }),
            Record::Op(PersistOp::Accept {
                ballot: Ballot::new(1, 1),
                first_slot: 0,
                values: vec![Value::Noop, Value::batch(vec![Bytes::from_static(b"set a 1")])],
            }),
            Record::Op(PersistOp::Commit { commit: 2 }),
            Record::SnapshotMarker { slot: 2, snapshot_id: 7 },
        ];
        let (bytes, starts) = encode_all(&records);
        for position in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xFF, 0x5A] {
                check_flip(&bytes, &starts, &records, position, mask);
            }
        }
    }

    #[test]
    fn sampled_byte_flips_in_the_workload_log_are_caught_at_their_frame() {
        let records = scripted_records();
        let (bytes, starts) = encode_all(&records);
        let mut rng = Rng::new(0xF11F);
        for _ in 0..2000 {
            let position = rng.below(bytes.len() as u64) as usize;
            let mask = rng.range_inclusive(1, 255) as u8;
            check_flip(&bytes, &starts, &records, position, mask);
        }
        // And every byte of the middle frame and of the last frame.
        for frame in [records.len() / 2, records.len() - 1] {
            let end = starts.get(frame + 1).copied().unwrap_or(bytes.len());
            for position in starts[frame]..end {
                check_flip(&bytes, &starts, &records, position, 0x10);
            }
        }
    }

    #[test]
    fn zero_padding_after_valid_frames_is_clean() {
        let records = scripted_records();
        let (mut bytes, _) = encode_all(&records);
        let valid_len = bytes.len();
        for padding in [1, 7, 8, 4096] {
            bytes.truncate(valid_len);
            bytes.resize(valid_len + padding, 0);
            let scan = scan_frames(&bytes);
            assert_eq!(scan.end, ScanEnd::Clean, "padding {padding}");
            assert_eq!(scan.valid_len, valid_len);
            assert_eq!(scan.records, records);
        }
    }

    #[test]
    fn garbage_after_zero_padding_is_torn() {
        let records = scripted_records();
        let (mut bytes, _) = encode_all(&records);
        let valid_len = bytes.len();
        bytes.resize(valid_len + 4096, 0);
        bytes.extend_from_slice(b"\x01\x02not a frame");
        bytes.resize(bytes.len() + 100, 0);
        let scan = scan_frames(&bytes);
        assert!(matches!(scan.end, ScanEnd::TornTail { offset, .. } if offset == valid_len), "{:?}", scan.end);
        assert_eq!(scan.valid_len, valid_len);
        assert_eq!(scan.records, records);
    }

    #[test]
    fn a_valid_frame_after_zero_padding_is_corrupt() {
        let records = scripted_records();
        let (mut bytes, _) = encode_all(&records);
        let valid_len = bytes.len();
        bytes.resize(valid_len + 512, 0);
        encode_record(&Record::Op(PersistOp::Commit { commit: 3 }), &mut bytes);
        let scan = scan_frames(&bytes);
        match &scan.end {
            ScanEnd::Corrupt { offset, reason } => {
                assert_eq!(*offset, valid_len);
                assert!(reason.contains(&format!("a valid frame follows at offset {}", valid_len + 512)), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_torn_write_into_a_preallocated_segment_is_torn() {
        // The header and part of the body reached the disk; the rest of the
        // preallocated segment is still zeros.
        let records = scripted_records();
        let (mut bytes, starts) = encode_all(&records);
        let last = *starts.last().unwrap();
        let torn_len = last + (bytes.len() - last) / 2;
        bytes.truncate(torn_len);
        bytes.resize(torn_len + 8192, 0);
        let scan = scan_frames(&bytes);
        assert!(matches!(&scan.end, ScanEnd::TornTail { offset, reason } if *offset == last && reason.contains("crc")));
        assert_eq!(scan.records, records[..records.len() - 1]);
    }

    #[test]
    fn absurd_lengths_are_invalid_frames() {
        let mut bytes = Vec::new();
        encode_record(&Record::Op(PersistOp::Commit { commit: 1 }), &mut bytes);
        let second = bytes.len();
        bytes.extend_from_slice(&(RECORD_BYTES_MAX + 1).to_le_bytes());
        bytes.extend_from_slice(&[0xAA; 20]);
        let scan = scan_frames(&bytes);
        assert!(
            matches!(&scan.end, ScanEnd::TornTail { offset, reason } if *offset == second && reason.contains("exceeds"))
        );

        // len == 0 with a non-zero crc is not padding.
        bytes.truncate(second);
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
        encode_record(&Record::Op(PersistOp::Commit { commit: 2 }), &mut bytes);
        let scan = scan_frames(&bytes);
        assert!(
            matches!(&scan.end, ScanEnd::Corrupt { offset, reason } if *offset == second && reason.contains("length is 0"))
        );
    }

    #[test]
    fn a_crc_valid_frame_with_a_bad_body_is_invalid() {
        let mut bytes = Vec::new();
        let body = [9u8, 1, 2, 3];
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let scan = scan_frames(&bytes);
        assert!(
            matches!(&scan.end, ScanEnd::TornTail { offset: 0, reason } if reason.contains("unknown record kind 9"))
        );
    }

    #[test]
    fn random_and_mutated_segments_never_panic() {
        let records = scripted_records();
        let (bytes, _) = encode_all(&records);
        let mut rng = Rng::new(0xBAD_D15C);
        for _ in 0..300 {
            let len = rng.below(600) as usize;
            let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let scan = scan_frames(&random);
            assert!(scan.valid_len <= random.len());
        }
        for _ in 0..300 {
            let mut damaged = bytes.clone();
            for _ in 0..rng.range_inclusive(1, 8) {
                let position = rng.below(damaged.len() as u64) as usize;
                damaged[position] = rng.next_u64() as u8;
            }
            damaged.truncate(rng.range_inclusive(0, damaged.len() as u64) as usize);
            let scan = scan_frames(&damaged);
            assert_eq!(scan.records, records[..scan.records.len()]);
        }
    }

    #[test]
    fn replay_equals_applying_the_ops_directly() {
        let ops = scripted_workload();
        let expected = apply_directly(&ops);
        assert!(expected.commit > 10, "workload too weak: commit {}", expected.commit);
        assert!(!expected.accepted.is_empty() && expected.chosen.keys().any(|slot| *slot > expected.commit));

        let mut bytes = Vec::new();
        encode_ops(&ops, &mut bytes);
        let mut state = DurableState::default();
        replay(&mut state, &scan_frames(&bytes).records).unwrap();
        assert_eq!(state, expected);

        // Markers of snapshots no newer than the loaded one change nothing.
        let mut records: Vec<Record> = ops.iter().cloned().map(Record::Op).collect();
        records.insert(7, Record::SnapshotMarker { slot: 0, snapshot_id: 1 });
        records.push(Record::SnapshotMarker { slot: 0, snapshot_id: 2 });
        let mut state = DurableState::default();
        replay(&mut state, &records).unwrap();
        assert_eq!(state, expected);
    }

    #[test]
    fn replay_of_every_prefix_equals_applying_that_prefix() {
        let ops = scripted_workload();
        for len in 0..=ops.len() {
            let records: Vec<Record> = ops[..len].iter().cloned().map(Record::Op).collect();
            let mut state = DurableState::default();
            replay(&mut state, &records).unwrap();
            assert_eq!(state, apply_directly(&ops[..len]), "prefix {len}");
        }
    }

    #[test]
    fn replay_rejects_a_commit_over_a_slot_without_value() {
        let records = vec![
            Record::Op(PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: 0, values: vec![Value::Noop] }),
            Record::Op(PersistOp::Chosen { first_slot: 2, values: vec![Value::Noop] }),
            Record::Op(PersistOp::Commit { commit: 1 }),
            Record::Op(PersistOp::Commit { commit: 3 }),
        ];
        let mut state = DurableState::default();
        let error = replay(&mut state, &records).unwrap_err();
        assert_eq!(
            error,
            ReplayError { index: 3, error: RecordError::CommitCoversMissingValue { commit: 3, slot: 1 } }
        );
        assert_eq!(
            error.to_string(),
            "cannot replay WAL record 3: commit 3 covers slot 1, which has no chosen or accepted value"
        );
        // The state holds exactly the records before the bad one.
        assert_eq!(
            state,
            apply_directly(&[
                PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: 0, values: vec![Value::Noop] },
                PersistOp::Chosen { first_slot: 2, values: vec![Value::Noop] },
                PersistOp::Commit { commit: 1 },
            ])
        );
    }

    #[test]
    fn replay_rejects_a_huge_commit_quickly() {
        let mut state = apply_directly(&scripted_workload());
        let before = state.clone();
        let error = replay(&mut state, &[Record::Op(PersistOp::Commit { commit: u64::MAX })]).unwrap_err();
        assert!(matches!(error.error, RecordError::CommitCoversMissingValue { commit: u64::MAX, .. }), "{error}");
        assert_eq!(state, before);
    }

    #[test]
    fn replay_rejects_slot_ranges_that_would_overflow() {
        for op in [
            PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: u64::MAX, values: vec![] },
            PersistOp::Chosen { first_slot: u64::MAX - 1, values: vec![Value::Noop] },
        ] {
            let mut state = DurableState::default();
            let error = replay(&mut state, &[Record::Op(op)]).unwrap_err();
            assert!(matches!(error.error, RecordError::SlotRangeOverflow { .. }), "{error}");
        }
    }

    /// The workload with a snapshot taken at the commit point after `after`
    /// ops, as the core would emit it.
    fn workload_with_snapshot(after: usize) -> (Vec<PersistOp>, SnapshotImage) {
        let mut ops = scripted_workload();
        let slot = apply_directly(&ops[..after]).commit;
        let image = SnapshotImage { slot, data: Bytes::from(format!("kv state below {slot}")) };
        ops.insert(after, PersistOp::Snapshot(image.clone()));
        (ops, image)
    }

    /// What the WAL writer does: a snapshot op becomes a snapshot file (here:
    /// returned) and a marker record.
    fn to_wal_records(ops: &[PersistOp]) -> Vec<Record> {
        ops.iter()
            .map(|op| match op {
                PersistOp::Snapshot(image) => Record::SnapshotMarker { slot: image.slot, snapshot_id: image.slot },
                op => Record::Op(op.clone()),
            })
            .collect()
    }

    #[test]
    fn recovery_from_a_snapshot_equals_applying_the_ops_directly() {
        let ops = scripted_workload();
        for after in
            (0..=ops.len()).filter(|after| matches!(ops.get(after.wrapping_sub(1)), Some(PersistOp::Commit { .. })))
        {
            let (ops, image) = workload_with_snapshot(after);
            let expected = apply_directly(&ops);
            assert_eq!(expected.log_start(), image.slot);

            let mut bytes = Vec::new();
            for record in to_wal_records(&ops) {
                encode_record(&record, &mut bytes);
            }
            let scan = scan_frames(&bytes);
            assert_eq!(scan.end, ScanEnd::Clean);
            let mut state = DurableState::default();
            state.apply(&PersistOp::Snapshot(image));
            replay(&mut state, &scan.records).unwrap();
            assert_eq!(state, expected, "snapshot after op {after}");
            assert!(state.chosen.keys().all(|slot| *slot >= state.log_start()));
        }
    }

    #[test]
    fn replay_applies_a_substituted_snapshot_op_in_place() {
        let (ops, _) = workload_with_snapshot(20);
        let records: Vec<Record> = ops.iter().cloned().map(Record::Op).collect();
        let mut state = DurableState::default();
        replay(&mut state, &records).unwrap();
        assert_eq!(state, apply_directly(&ops));
    }

    #[test]
    fn replay_rejects_a_marker_newer_than_the_loaded_snapshot() {
        let (ops, image) = workload_with_snapshot(20);
        let records = to_wal_records(&ops);
        let mut state = DurableState::default();
        let error = replay(&mut state, &records).unwrap_err();
        assert_eq!(error.index, 20);
        assert_eq!(
            error.error,
            RecordError::SnapshotNotLoaded { slot: image.slot, snapshot_id: image.slot, log_start: 0 }
        );
        assert!(error.to_string().contains("load that snapshot first"), "{error}");
    }

    #[test]
    fn replay_drops_values_below_the_snapshot() {
        let image = SnapshotImage { slot: 10, data: Bytes::new() };
        let mut state = DurableState::default();
        state.apply(&PersistOp::Snapshot(image));
        let records = vec![
            Record::Op(PersistOp::Chosen { first_slot: 8, values: vec![Value::Noop; 4] }),
            Record::Op(PersistOp::Accept { ballot: Ballot::new(2, 1), first_slot: 5, values: vec![Value::Noop; 7] }),
            Record::Op(PersistOp::Chosen { first_slot: 0, values: vec![Value::Noop; 3] }),
            Record::Op(PersistOp::Commit { commit: 12 }),
        ];
        replay(&mut state, &records).unwrap();
        assert_eq!(state.chosen.keys().copied().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(state.accepted, Default::default());
        assert_eq!(state.commit, 12);
        assert_eq!(state.promised, Ballot::new(2, 1));
    }
}
