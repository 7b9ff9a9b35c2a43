//! `wal_scan` and `wal_scan_mutated`: segment bytes through recovery.
//!
//! Driven only through the public `scan_segment`, `replay` and
//! `encode_ops`, so a change of the on-disk format changes the generator
//! and [`mutate_segment`] here, not the checks.

use bytes::Bytes;

use super::input::Input;
use crate::paxos::{Ballot, DurableState, PersistOp, SnapshotImage, Value};
use crate::storage::{encode_ops, replay, scan_segment, Scan, ScanEnd, FRAME_HEADER_BYTES};

/// The unit a disk writes atomically (a sector); a torn multi-block write
/// may land any subset of its blocks, in any order.
pub const BLOCK_BYTES: usize = 512;

/// `data` as a whole segment: the scan obeys its rules ([`check_scan`]) and
/// replaying what it read never panics, from an empty state or from a
/// snapshot.
pub fn wal_scan(data: &[u8]) {
    let scan = scan_segment(data, 0);
    check_scan(data, &scan);
    let _ = replay(&mut DurableState::default(), &scan.records);
    let mut from_snapshot = DurableState::default();
    from_snapshot.apply(&PersistOp::Snapshot(SnapshotImage { slot: 4, data: Bytes::new() }));
    let _ = replay(&mut from_snapshot, &scan.records);
}

/// A valid segment written from ops that a core could have produced, then
/// damaged by [`mutate_segment`]. The pristine segment scans clean and
/// replays. After the damage the scan obeys its rules, keeps every frame
/// before the first damaged byte, and a log that is a prefix of the
/// pristine one replays. A cut at a frame boundary reads as `Clean`; a cut
/// inside a frame loses exactly that frame and what follows.
pub fn wal_scan_mutated(data: &[u8]) {
    let mut input = Input::new(data);
    let ops = ops_from(&mut input);
    let mut segment = Vec::new();
    encode_ops(&ops, &mut segment);
    if input.bool() {
        pad_to_block(&mut segment); // a preallocated segment's zero tail
    }
    let pristine = scan_segment(&segment, 0);
    assert_eq!(pristine.end, ScanEnd::Clean, "a freshly written segment of {ops:?}");
    replay(&mut DurableState::default(), &pristine.records).expect("the ops a core writes replay");
    // Frame boundaries, the end of the last frame included.
    let mut starts = pristine.offsets.clone();
    starts.push(pristine.valid_len);

    let original = segment.clone();
    let mutation = mutate_segment(&mut segment, &starts, &mut input);
    let scan = scan_segment(&segment, 0);
    check_scan(&segment, &scan);
    let intact = intact_frames(&segment, &original, &starts);
    assert!(scan.records.len() >= intact, "{mutation:?}: {} records, {intact} frames intact", scan.records.len());
    assert_eq!(scan.records[..intact], pristine.records[..intact], "{mutation:?}");
    assert_eq!(scan.offsets[..intact], starts[..intact], "{mutation:?}");
    match mutation {
        SegmentMutation::CutAtFrame { .. } | SegmentMutation::CutInsideFrame { .. } => {
            assert_eq!(scan.records.len(), intact, "{mutation:?}: a frame past the cut was read");
            assert_eq!(scan.valid_len, starts[intact], "{mutation:?}");
        }
        _ => {}
    }
    // A cut at a frame boundary leaves only whole frames and zeros. A cut
    // inside the last frame reads as Clean or TornTail, or as Corrupt when
    // its payload holds a frame-shaped byte string (`check_scan` has checked
    // that one does follow: the known limitation pinned in the tests below).
    if let SegmentMutation::CutAtFrame { .. } = mutation {
        assert_eq!(scan.end, ScanEnd::Clean, "a cut at a frame boundary");
    }
    let is_prefix =
        scan.records.len() <= pristine.records.len() && scan.records[..] == pristine.records[..scan.records.len()];
    let replayed = replay(&mut DurableState::default(), &scan.records);
    assert!(!is_prefix || replayed.is_ok(), "{mutation:?}: a prefix of the log does not replay: {replayed:?}");
}

/// What [`mutate_segment`] did to a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentMutation {
    None,
    /// Cut at the start of frame `frame`, then `zeros` zero bytes appended
    /// (a crash before the write, in a preallocated segment).
    CutAtFrame {
        frame: usize,
        zeros: usize,
    },
    /// Cut at byte `at`, inside frame `frame`, then `zeros` zero bytes (a
    /// torn last write).
    CutInsideFrame {
        frame: usize,
        at: usize,
        zeros: usize,
    },
    /// The bits of `mask` flipped in the byte at `at`.
    FlipBits {
        at: usize,
        mask: u8,
    },
    /// Two blocks swapped (a multi-block write landing out of order over
    /// stale contents). The segment is zero-padded to whole blocks first.
    SwapBlocks {
        first: usize,
        second: usize,
    },
    /// A block zeroed (one block of a multi-block write never landed).
    ZeroBlock {
        block: usize,
    },
}

/// Damages `segment`, whose frames start at `starts` (the end of the last
/// frame appended), as `input` decides, and says how.
pub fn mutate_segment(segment: &mut Vec<u8>, starts: &[usize], input: &mut Input) -> SegmentMutation {
    let frames = starts.len() - 1;
    let zeros = if input.bool() { input.below(2 * BLOCK_BYTES) } else { 0 };
    let mutation = match input.below(6) {
        0 => SegmentMutation::None,
        1 => SegmentMutation::CutAtFrame { frame: input.below(frames + 1), zeros },
        2 if frames > 0 => {
            // Inside the last frame by default: the torn-tail case.
            let frame = frames - 1 - input.below(frames).min(input.below(frames));
            let at = starts[frame] + 1 + input.below(starts[frame + 1] - starts[frame] - 1);
            SegmentMutation::CutInsideFrame { frame, at, zeros }
        }
        3 if !segment.is_empty() => {
            SegmentMutation::FlipBits { at: input.below(segment.len()), mask: input.u8().max(1) }
        }
        4 => {
            pad_to_block(segment);
            let blocks = segment.len() / BLOCK_BYTES + 1;
            SegmentMutation::SwapBlocks { first: input.below(blocks), second: input.below(blocks) }
        }
        _ => {
            pad_to_block(segment);
            SegmentMutation::ZeroBlock { block: input.below(segment.len() / BLOCK_BYTES + 1) }
        }
    };
    match mutation {
        SegmentMutation::None => {}
        SegmentMutation::CutAtFrame { frame, zeros } => cut(segment, starts[frame], zeros),
        SegmentMutation::CutInsideFrame { at, zeros, .. } => cut(segment, at, zeros),
        SegmentMutation::FlipBits { at, mask } => segment[at] ^= mask,
        SegmentMutation::SwapBlocks { first, second } => {
            // One block past the end swaps with zeros: a write into the
            // preallocated region landing early.
            segment.resize(segment.len().max(first.max(second) * BLOCK_BYTES + BLOCK_BYTES), 0);
            let (low, high) = (first.min(second), first.max(second));
            if low != high {
                let (head, tail) = segment.split_at_mut(high * BLOCK_BYTES);
                head[low * BLOCK_BYTES..][..BLOCK_BYTES].swap_with_slice(&mut tail[..BLOCK_BYTES]);
            }
        }
        SegmentMutation::ZeroBlock { block } => {
            let start = (block * BLOCK_BYTES).min(segment.len());
            let end = (start + BLOCK_BYTES).min(segment.len());
            segment[start..end].fill(0);
        }
    }
    mutation
}

fn cut(segment: &mut Vec<u8>, at: usize, zeros: usize) {
    segment.truncate(at);
    segment.resize(at + zeros, 0);
}

fn pad_to_block(segment: &mut Vec<u8>) {
    segment.resize(segment.len().div_ceil(BLOCK_BYTES) * BLOCK_BYTES, 0);
}

/// How many frames from the first are still byte for byte in place.
fn intact_frames(segment: &[u8], original: &[u8], starts: &[usize]) -> usize {
    starts.windows(2).take_while(|frame| segment.get(frame[0]..frame[1]) == original.get(frame[0]..frame[1])).count()
}

/// The rules `storage::scan` documents, checked against the bytes
/// independently of how the scanner finds frames: the records are the
/// valid frames from offset 0, back to back; `Clean` leaves only zeros
/// after them; a `TornTail` has no valid frame anywhere after its offset
/// (truncating it loses nothing written whole); `Corrupt` has one (it is
/// not a crash artefact).
pub fn check_scan(bytes: &[u8], scan: &Scan) {
    assert_eq!(scan.records.len(), scan.offsets.len());
    assert!(scan.valid_len <= bytes.len());
    assert!(scan.offsets.windows(2).all(|pair| pair[0] < pair[1]), "offsets not increasing: {:?}", scan.offsets);
    assert!(scan.offsets.first().is_none_or(|&first| first == 0));
    assert!(scan.offsets.last().is_none_or(|&last| last < scan.valid_len));
    match &scan.end {
        ScanEnd::Clean => {
            assert!(bytes[scan.valid_len..].iter().all(|&byte| byte == 0), "Clean but non-zero bytes follow");
        }
        ScanEnd::TornTail { offset, .. } => {
            assert_eq!(*offset, scan.valid_len);
            let later = valid_frame_after(bytes, *offset);
            assert_eq!(later, None, "a torn tail at {offset} would truncate the valid frame at {later:?}");
        }
        ScanEnd::Corrupt { offset, .. } => {
            assert_eq!(*offset, scan.valid_len);
            assert!(valid_frame_after(bytes, *offset).is_some(), "Corrupt at {offset} but no valid frame follows");
        }
    }
}

/// The first offset after `offset` where a whole frame that scans on its
/// own as one valid record starts.
fn valid_frame_after(bytes: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..bytes.len()).find(|&start| {
        let Some(header) = bytes.get(start..start + FRAME_HEADER_BYTES) else { return false };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(frame) = bytes.get(start..start + FRAME_HEADER_BYTES + len) else { return false };
        let scan = scan_segment(frame, 0);
        len > 0 && scan.records.len() == 1 && scan.end == ScanEnd::Clean
    })
}

/// Ops a core could persist: promises, contiguous accepts, chosen values,
/// and commits that never pass the last accepted slot.
fn ops_from(input: &mut Input) -> Vec<PersistOp> {
    let (mut round, mut next_slot, mut commit) = (1u64, 0u64, 0u64);
    let mut ops = Vec::new();
    for _ in 0..1 + input.below(8) {
        let ballot = Ballot::new(round, 1 + input.below(3) as u32);
        match input.below(5) {
            0 => {
                round += input.below(3) as u64;
                ops.push(PersistOp::Promise { ballot: Ballot::new(round, ballot.node) });
            }
            1 | 2 => {
                let values = values_from(input);
                let first_slot = next_slot;
                next_slot += values.len() as u64;
                ops.push(PersistOp::Accept { ballot, first_slot, values });
            }
            3 => {
                let first_slot = input.below(next_slot as usize + 1) as u64;
                ops.push(PersistOp::Chosen { first_slot, values: values_from(input) });
            }
            _ => {
                commit = commit.max(input.below(next_slot as usize + 1) as u64);
                ops.push(PersistOp::Commit { commit });
            }
        }
    }
    ops
}

/// One to three values; batch commands are fuzz bytes, as client data is.
fn values_from(input: &mut Input) -> Vec<Value> {
    (0..1 + input.below(3))
        .map(|_| match input.below(3) {
            0 => Value::Noop,
            _ => Value::batch((0..input.below(4)).map(|_| Bytes::copy_from_slice(input.bytes(48))).collect()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::encode_record;

    fn segment_of(ops: &[PersistOp]) -> Vec<u8> {
        let mut segment = Vec::new();
        encode_ops(ops, &mut segment);
        segment
    }

    /// Found by the fuzz target in its own harness: a block swapped with
    /// itself split the segment inside that block.
    #[test]
    fn swapping_a_block_with_itself_changes_nothing() {
        let ops = [PersistOp::Promise { ballot: Ballot::new(1, 1) }];
        let mut segment = segment_of(&ops);
        let starts = [0, segment.len()];
        // Mode: no padding; mutation 4 (swap), blocks 0 and 0.
        let mutation = mutate_segment(&mut segment, &starts, &mut Input::new(&[0, 4, 0, 0]));
        assert_eq!(mutation, SegmentMutation::SwapBlocks { first: 0, second: 0 });
        let mut expected = segment_of(&ops);
        pad_to_block(&mut expected);
        assert_eq!(segment, expected);
    }

    /// A known limitation of the current format, which the per-write framing
    /// is to remove: client bytes inside a record can form a valid frame, so
    /// a torn last record whose payload holds one reads as mid-log
    /// corruption, and startup stops. `check_scan` accepts that `Corrupt`
    /// (a valid frame does follow); update this test with the new format.
    #[test]
    fn a_frame_inside_a_torn_last_record_reads_as_corrupt() {
        let mut planted = Vec::new();
        encode_record(&crate::storage::Record::Op(PersistOp::Commit { commit: 0 }), &mut planted);
        let command = [&[0xEE; 8][..], &planted, &[0xEE; 8]].concat();
        let ops = [
            PersistOp::Promise { ballot: Ballot::new(1, 1) },
            PersistOp::Accept {
                ballot: Ballot::new(1, 1),
                first_slot: 0,
                values: vec![Value::batch(vec![command.into()])],
            },
        ];
        let segment = segment_of(&ops);
        let torn = &segment[..segment.len() - 4];
        let scan = scan_segment(torn, 0);
        check_scan(torn, &scan);
        assert_eq!(scan.records.len(), 1);
        assert!(matches!(scan.end, ScanEnd::Corrupt { .. }), "{:?}", scan.end);
    }

    #[test]
    fn check_scan_accepts_what_the_seed_segments_scan_to() {
        let ops = ops_from(&mut Input::new(&[7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]));
        let segment = segment_of(&ops);
        for cut in 0..=segment.len() {
            check_scan(&segment[..cut], &scan_segment(&segment[..cut], 0));
        }
    }
}
