//! Whole-write framing: each group-commit write (the records of one
//! `sync`, or a checkpoint) is one checksummed unit on disk.
//!
//! ```text
//! segment = (write | gap write)*         then zeros, or stale bytes of an older use of the file
//! gap     = zeros up to a multiple of WRITE_GAP_ALIGN_BYTES, at most the next multiple of WRITE_ALIGN_BYTES
//! write   = header body
//! header  = magic: u32 "PXWR" | epoch: u64 | seq: u64 | body_len: u32 | body_crc: u32 | header_crc: u32
//! body    = frame*                       (record.rs; body_crc = CRC32C(body), header_crc over the 28 bytes before it)
//! ```
//!
//! `epoch` is the segment's salt, 64 random bits drawn when it was created
//! and kept in its file name (`wal.rs`; a segment from before salts uses
//! its index): bytes of any other segment, of this log or of another one
//! on the filesystem (a deleted file's blocks that a power loss exposes
//! past the end), carry another epoch and read as the end of the log,
//! never as records. `seq` counts the writes of a segment from 1.
//!
//! Why: one write spans several disk blocks, and after a power loss a later
//! block of it can be on disk without an earlier one. Frame by frame, that
//! looks like an invalid frame followed by valid ones: mid-log corruption.
//! Write by write it is what it is: a write that fails its checksum is one
//! of the last [`WRITES_IN_FLIGHT_MAX`] (two), because the writer issues
//! write `n + 2` only after write `n` is durable, and reports write `n + 1`
//! durable only once write `n` is too (`wal.rs`). Write `n + 1` may start
//! while write `n` is in flight; it then starts at the next multiple of
//! the device's block size after write `n`'s end (a multiple of
//! [`WRITE_GAP_ALIGN_BYTES`], no further than the next multiple of
//! [`WRITE_ALIGN_BYTES`]), with zeros between, so that the two never write
//! the same block (a block written by both could land as either). So:
//!
//! - an invalid write followed by no valid write of this segment, or only
//!   by the write after it (`seq + 1`, which was in flight with it), is the
//!   torn tail: nothing in either was acknowledged, and recovery truncates
//!   it ([`ScanEnd::TornTail`]) and zeroes what follows;
//! - an invalid write followed by a valid write two or more `seq` later is
//!   damage to a write that had been made durable ([`ScanEnd::Corrupt`]):
//!   recovery refuses to start, because skipping it could forget a promise.
//!
//! What cannot be told apart: damage to one of the last two durable writes
//! (a bit that rots after the sync) reads as a torn tail. Nothing
//! distinguishes the two on disk; the records lost are at most two group
//! commits', and the replica's peers hold them (a majority acknowledged
//! every chosen value). A log written with gaps is not readable by a build
//! from before them, which reads the gap as corruption.

use super::record::{FRAME_HEADER_BYTES, RECORD_BYTES_MAX};
use super::scan::{scan_frames, Scan, ScanEnd};

/// The first four bytes of every write header.
pub const WRITE_MAGIC: [u8; 4] = *b"PXWR";
/// Bytes of a write header.
pub const WRITE_HEADER_BYTES: usize = 4 + 8 + 8 + 4 + 4 + 4;
/// A write issued while the one before it is in flight starts at a
/// multiple of this many bytes, a sector (the least block size a device
/// has), after zeros: at the next multiple of the device's block size
/// (`wal.rs`), so at most a few hundred bytes on a disk of 512-byte blocks.
/// (A fixed page here tripled the bytes a node wrote at 2k ops/s, and its
/// zero top-ups with them.)
pub const WRITE_GAP_ALIGN_BYTES: usize = 512;
/// ... and no further than the next multiple of this: the largest device
/// block size the writer writes beside another write on.
pub const WRITE_ALIGN_BYTES: usize = 4096;
/// Writes of a segment in flight at once, at most (module doc).
pub const WRITES_IN_FLIGHT_MAX: u64 = 2;
/// The largest body a write may have: a generous bound on one group commit
/// (a header claiming more is damage, not a reason to read gigabytes).
pub const WRITE_BODY_BYTES_MAX: u32 = 1 << 30;

/// Append one write holding `body` (whole frames) to `out`.
pub fn encode_write(epoch: u64, seq: u64, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&write_header(epoch, seq, body));
    out.extend_from_slice(body);
}

/// The header of the write holding `body` (whole frames): what
/// [`encode_write`] puts before the body, for a writer that places the two
/// in its own buffer.
pub fn write_header(epoch: u64, seq: u64, body: &[u8]) -> [u8; WRITE_HEADER_BYTES] {
    let body_len = u32::try_from(body.len()).ok().filter(|len| *len <= WRITE_BODY_BYTES_MAX);
    let body_len = body_len.unwrap_or_else(|| panic!("a WAL write of {} bytes exceeds the bound", body.len()));
    let mut header = [0u8; WRITE_HEADER_BYTES];
    header[..4].copy_from_slice(&WRITE_MAGIC);
    header[4..12].copy_from_slice(&epoch.to_le_bytes());
    header[12..20].copy_from_slice(&seq.to_le_bytes());
    header[20..24].copy_from_slice(&body_len.to_le_bytes());
    header[24..28].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[..28]);
    header[28..].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// A write header that checks out on its own.
struct Header {
    epoch: u64,
    seq: u64,
    body_len: usize,
    body_crc: u32,
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

/// The header at `offset`, if its magic and checksum are right.
fn read_header(bytes: &[u8], offset: usize) -> Option<Header> {
    let header = bytes.get(offset..offset.checked_add(WRITE_HEADER_BYTES)?)?;
    if header[..4] != WRITE_MAGIC || crc32c::crc32c(&header[..28]) != le_u32(&header[28..32]) {
        return None;
    }
    let body_len = le_u32(&header[20..24]);
    if body_len > WRITE_BODY_BYTES_MAX {
        return None;
    }
    Some(Header {
        epoch: le_u64(&header[4..12]),
        seq: le_u64(&header[12..20]),
        body_len: body_len as usize,
        body_crc: le_u32(&header[24..28]),
    })
}

/// The body of the write whose header is at `offset`, if all of it is
/// there and its checksum is right.
fn read_body<'a>(bytes: &'a [u8], offset: usize, header: &Header) -> Option<&'a [u8]> {
    let start = offset + WRITE_HEADER_BYTES;
    let body = bytes.get(start..start.checked_add(header.body_len)?)?;
    (crc32c::crc32c(body) == header.body_crc).then_some(body)
}

/// Scan segment `epoch`'s bytes write by write. Records and their offsets
/// are those of the valid writes' frames (offsets count from the segment's
/// start); `valid_len` is the end of the last valid write. Never panics.
pub fn scan_segment(bytes: &[u8], epoch: u64) -> Scan {
    let mut scan = Scan {
        records: Vec::new(),
        offsets: Vec::new(),
        valid_len: 0,
        writes: 0,
        write_offsets: Vec::new(),
        end: ScanEnd::Clean,
    };
    let mut offset = 0;
    let mut next_seq = 1;
    loop {
        let rest = &bytes[offset..];
        if rest.iter().all(|byte| *byte == 0) {
            break; // the end: zeros (or nothing) follow
        }
        if let Some(next) = after_gap(bytes, offset, epoch, next_seq) {
            offset = next; // a write issued while the one before it was in flight
        }
        let header = read_header(bytes, offset);
        if header.as_ref().is_some_and(|h| h.epoch != epoch) {
            break; // an older use of this file: not ours
        }
        let body = header.as_ref().and_then(|h| read_body(bytes, offset, h).map(|body| (h, body)));
        let Some((header, body)) = body else {
            scan.end = classify(
                bytes,
                offset,
                epoch,
                next_seq,
                "an incomplete write (bad header, short or checksum-failing body)",
            );
            break;
        };
        if header.seq != next_seq {
            let reason = format!("write {} where write {next_seq} was expected", header.seq);
            scan.end = ScanEnd::Corrupt { offset, reason };
            break;
        }
        let frames = scan_frames(body);
        if frames.end != ScanEnd::Clean || frames.valid_len != body.len() {
            // The checksum matched, so the writer wrote bad frames: a bug or
            // a coincidence, never a crash.
            let reason = format!("write {} passes its checksum but holds invalid records", header.seq);
            scan.end = ScanEnd::Corrupt { offset, reason };
            break;
        }
        let body_start = offset + WRITE_HEADER_BYTES;
        scan.write_offsets.push(offset);
        scan.offsets.extend(frames.offsets.iter().map(|frame| body_start + frame));
        scan.records.extend(frames.records);
        offset = body_start + body.len();
        scan.valid_len = offset;
        scan.writes += 1;
        next_seq += 1;
    }
    scan
}

/// Where write `seq` starts if it follows a gap at `offset`: zeros up to a
/// multiple of [`WRITE_GAP_ALIGN_BYTES`], no further than the next multiple
/// of [`WRITE_ALIGN_BYTES`], then that whole valid write.
fn after_gap(bytes: &[u8], offset: usize, epoch: u64, seq: u64) -> Option<usize> {
    let limit = offset.next_multiple_of(WRITE_ALIGN_BYTES).min(bytes.len());
    let gap = bytes[offset..limit].iter().position(|byte| *byte != 0).unwrap_or(limit - offset);
    let start = offset + gap;
    if gap == 0 || !start.is_multiple_of(WRITE_GAP_ALIGN_BYTES) {
        return None;
    }
    let header = read_header(bytes, start)?;
    let whole = header.epoch == epoch && header.seq == seq && read_body(bytes, start, &header).is_some();
    whole.then_some(start)
}

/// May a valid write `seq` follow a torn write `torn_seq`? Only if it was
/// in flight with it. An earlier `seq` is a stale one, of no account; the
/// same `seq` again (after damaged gap bytes) or a later one is damage.
fn may_follow_torn(torn_seq: u64, seq: u64) -> bool {
    seq < torn_seq || (torn_seq + 1..torn_seq + WRITES_IN_FLIGHT_MAX).contains(&seq)
}

/// The write at `offset` is invalid: torn if no valid write of this segment
/// starts after it but for one that may have been in flight with it,
/// corrupt otherwise.
fn classify(bytes: &[u8], offset: usize, epoch: u64, next_seq: u64, what: &str) -> ScanEnd {
    let later = (offset + 1..bytes.len().saturating_sub(WRITE_HEADER_BYTES - 1))
        .filter(|&at| bytes[at..at + 4] == WRITE_MAGIC)
        .find(|&at| {
            read_header(bytes, at).is_some_and(|h| {
                h.epoch == epoch && !may_follow_torn(next_seq, h.seq) && read_body(bytes, at, &h).is_some()
            })
        });
    match later {
        None => ScanEnd::TornTail { offset, reason: format!("{what}: the last write was torn") },
        Some(at) => ScanEnd::Corrupt {
            offset,
            reason: format!("{what}, followed by a valid later write at offset {at}: damage, not a torn write"),
        },
    }
}

/// Frames in a body must fit a write; checked at compile time.
const _: () = assert!(RECORD_BYTES_MAX as usize + FRAME_HEADER_BYTES <= WRITE_BODY_BYTES_MAX as usize);

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::{Ballot, PersistOp, Value};
    use crate::rng::Rng;
    use crate::storage::encode_ops;

    fn ops(n: u64) -> Vec<PersistOp> {
        let value = |i: u64| Value::batch(vec![Bytes::from(vec![i as u8; 300])]);
        (0..n).map(|i| PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: i, values: vec![value(i)] }).collect()
    }

    /// Segment `epoch` with `writes` writes of 3 ops each; returns the
    /// bytes and each write's start.
    fn segment(epoch: u64, writes: u64) -> (Vec<u8>, Vec<usize>) {
        segment_with_gaps(epoch, writes, |_| 0)
    }

    /// As [`segment`], but write `seq` starts at the next multiple of
    /// `beside(seq)` bytes, zeros between, where that is not 0: it was
    /// issued while the write before it was in flight, on a device of
    /// blocks of that size.
    fn segment_with_gaps(epoch: u64, writes: u64, beside: impl Fn(u64) -> usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for seq in 1..=writes {
            let mut body = Vec::new();
            encode_ops(&ops(3), &mut body);
            if beside(seq) > 0 {
                out.resize(out.len().next_multiple_of(beside(seq)), 0);
            }
            starts.push(out.len());
            encode_write(epoch, seq, &body, &mut out);
        }
        (out, starts)
    }

    #[test]
    fn a_write_issued_beside_the_one_before_follows_a_zero_gap_and_scans_clean() {
        for block in [512, 4096] {
            let (bytes, starts) = segment_with_gaps(4, 4, |seq| if seq == 2 || seq == 4 { block } else { 0 });
            assert!(starts[3] % block == 0 && bytes[starts[3] - 1] == 0, "a gap: {starts:?}");
            let scan = scan_segment(&bytes, 4);
            assert_eq!((scan.end, scan.records.len(), &scan.write_offsets), (ScanEnd::Clean, 12, &starts), "{block}");
            assert_eq!(scan.valid_len, bytes.len());
        }
        // A gap ending off a sector boundary, or past the next page, is not one.
        let (bytes, starts) = segment_with_gaps(4, 3, |seq| if seq == 3 { 4096 } else { 0 });
        for extra in [100, 4096] {
            let mut moved = bytes.clone();
            moved.splice(starts[2]..starts[2], vec![0; extra]);
            assert!(matches!(scan_segment(&moved, 4).end, ScanEnd::Corrupt { .. }), "{extra} more zeros");
        }
    }

    /// Writes 3 and 4 were in flight together (4 beside 3), and 4 landed
    /// while 3 did not, or only in part: neither was acknowledged, so both
    /// are the torn tail, not damage; and write 4 is never read as the
    /// write after 2.
    #[test]
    fn a_lost_write_with_the_one_beside_it_landed_is_a_torn_tail() {
        let (bytes, starts) = segment_with_gaps(5, 4, |seq| if seq == 4 { 512 } else { 0 });
        let third = starts[2]..starts[3];
        for (what, lose) in
            [("none", 0..third.len()), ("its header", WRITE_HEADER_BYTES..third.len()), ("all but a byte", 40..41)]
        {
            let mut torn = bytes.clone();
            for byte in &mut torn[third.start + lose.start..third.start + lose.end] {
                *byte = if lose.len() == 1 { !*byte } else { 0 };
            }
            let scan = scan_segment(&torn, 5);
            let at_third = matches!(scan.end, ScanEnd::TornTail { offset, .. } if offset == third.start);
            assert!(at_third, "{what} of write 3 landed: {:?}", scan.end);
            assert_eq!((scan.records.len(), scan.valid_len), (6, third.start), "{what} of write 3 landed");
        }
    }

    #[test]
    fn bytes_in_a_gap_or_a_write_two_after_an_invalid_one_are_corruption() {
        // A bit set in the zeros before the next write: damage, not a tear.
        let (mut bytes, starts) = segment_with_gaps(6, 3, |seq| if seq == 3 { 4096 } else { 0 });
        let gap_end = starts[2];
        bytes[gap_end - 1] = 1;
        let scan = scan_segment(&bytes, 6);
        assert!(matches!(scan.end, ScanEnd::Corrupt { .. }), "{:?}", scan.end);
        assert_eq!(scan.records.len(), 6);
        // Write 2 invalid, write 4 valid: 4 was issued after 2 was durable.
        let (mut bytes, starts) = segment_with_gaps(6, 4, |seq| if seq == 4 { 512 } else { 0 });
        bytes[starts[1] + WRITE_HEADER_BYTES + 5] ^= 0x10;
        bytes[starts[2]..starts[3]].fill(0);
        let scan = scan_segment(&bytes, 6);
        assert!(matches!(scan.end, ScanEnd::Corrupt { offset, .. } if offset == starts[1]), "{:?}", scan.end);
    }

    #[test]
    fn whole_writes_scan_clean_with_zero_padding_or_stale_bytes_after() {
        let (mut bytes, _) = segment(4, 5);
        let scan = scan_segment(&bytes, 4);
        assert_eq!((scan.end.clone(), scan.records.len(), scan.valid_len), (ScanEnd::Clean, 15, bytes.len()));
        let end = bytes.len();
        bytes.extend_from_slice(&[0; 4096]);
        assert_eq!(scan_segment(&bytes, 4).valid_len, end);
        // A reused file: an older segment's writes after the end are not ours.
        let (old, _) = segment(1, 9);
        bytes.truncate(end);
        bytes.extend_from_slice(&old[end..]);
        let scan = scan_segment(&bytes, 4);
        assert_eq!((scan.end, scan.valid_len), (ScanEnd::Clean, end));
        assert!(scan_segment(&bytes, 9).records.is_empty(), "another epoch's reader sees nothing of ours");
    }

    /// The last write's blocks land in any order: always a torn tail, and
    /// every earlier write survives.
    #[test]
    fn a_last_write_torn_at_block_granularity_is_a_torn_tail() {
        let (bytes, starts) = segment(2, 4);
        let last = *starts.last().unwrap();
        let mut rng = Rng::new(5);
        for round in 0..500 {
            let mut torn = bytes[..last].to_vec();
            torn.resize(bytes.len(), 0);
            let block = [64, 512, 4096][round % 3];
            let mut at = last / block * block;
            while at < bytes.len() {
                let end = (at + block).min(bytes.len());
                if rng.chance(0.5) {
                    torn[at.max(last)..end].copy_from_slice(&bytes[at.max(last)..end]);
                }
                at = end;
            }
            if torn == bytes {
                continue;
            }
            let scan = scan_segment(&torn, 2);
            let nothing_landed = torn[last..].iter().all(|b| *b == 0);
            let expected_torn = matches!(scan.end, ScanEnd::TornTail { offset, .. } if offset == last);
            assert!(expected_torn || (nothing_landed && scan.end == ScanEnd::Clean), "round {round}: {:?}", scan.end);
            assert_eq!(scan.valid_len, last);
            assert_eq!(scan.records.len(), 9);
        }
    }

    #[test]
    fn damage_before_a_valid_write_is_corruption() {
        let (mut bytes, starts) = segment(3, 4);
        let at = starts[1] + WRITE_HEADER_BYTES + 10;
        bytes[at] ^= 0x40;
        let scan = scan_segment(&bytes, 3);
        assert!(matches!(scan.end, ScanEnd::Corrupt { offset, .. } if offset == starts[1]), "{:?}", scan.end);
        assert_eq!(scan.records.len(), 3, "the writes before the damage are kept");
    }

    #[test]
    fn a_missing_write_in_the_sequence_is_corruption() {
        let (bytes, starts) = segment(3, 4);
        let mut gap = bytes[..starts[1]].to_vec();
        gap.extend_from_slice(&bytes[starts[2]..]);
        assert!(matches!(scan_segment(&gap, 3).end, ScanEnd::Corrupt { .. }));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(11);
        let (bytes, _) = segment(1, 3);
        for _ in 0..2_000 {
            let mut input = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(input.len() as u64) as usize;
                input[at] = rng.next_u64() as u8;
            }
            input.truncate(rng.below(input.len() as u64 + 1) as usize);
            let scan = scan_segment(&input, 1);
            assert!(scan.valid_len <= input.len());
        }
    }
}
