//! The on-disk WAL record format: framing, encoding and validated decoding.
//!
//! A segment is a sequence of frames, back to back:
//!
//! ```text
//! frame   = len: u32 LE | crc: u32 LE | body (len bytes)      crc = CRC32C(body)
//! body    = kind: u8 | payload
//! kind 1  Promise         ballot
//! kind 2  Accept          ballot | first_slot: u64 | count: u32 | value * count
//! kind 3  Chosen          first_slot: u64 | count: u32 | value * count
//! kind 4  Commit          commit: u64
//! kind 5  SnapshotMarker  slot: u64 | snapshot_id: u64
//! kind 6  RecoveryBegun   (no payload)
//! kind 7  RecoveryDone    (no payload)
//! kind 8  Horizon         ms: u64
//! ballot  = round: u64 | node: u32
//! value   = 0 (Noop) | 1 commands (a batch, stamp 0) | 2 stamp: u64 (> 0) commands
//! commands = count: u32 | (len: u32 | bytes) * count
//! ```
//!
//! All integers are little-endian. Kind 0 is reserved as invalid, so that a
//! zero-filled (preallocated) region never decodes as a record. Every count
//! is checked against the bytes that remain before anything is allocated from
//! it: bytes from disk may be anything, and decoding them returns an error,
//! never a panic.

use std::fmt;

use bytes::Bytes;

use crate::paxos::{Ballot, PersistOp, Slot, Value};

/// Bytes of a frame header: `len: u32` then `crc: u32`.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest body a frame may carry. A header announcing more is corrupt, not
/// a reason to allocate or wait for 4 GiB. The core's batch and catch-up
/// bounds keep real records orders of magnitude below this.
pub const RECORD_BYTES_MAX: u32 = 64 << 20;

const KIND_PROMISE: u8 = 1;
const KIND_ACCEPT: u8 = 2;
const KIND_CHOSEN: u8 = 3;
const KIND_COMMIT: u8 = 4;
const KIND_SNAPSHOT_MARKER: u8 = 5;
const KIND_RECOVERY_BEGUN: u8 = 6;
const KIND_RECOVERY_DONE: u8 = 7;
const KIND_HORIZON: u8 = 8;

const VALUE_NOOP: u8 = 0;
const VALUE_BATCH: u8 = 1;
const VALUE_STAMPED_BATCH: u8 = 2;

/// Smallest encoding of one value (a Noop tag): bounds a value count.
const VALUE_BYTES_MIN: usize = 1;
/// Smallest encoding of one command (an empty one: its u32 length): bounds a
/// command count.
const COMMAND_BYTES_MIN: usize = 4;
/// Upper bound on capacity reserved up front from a (checked) count; beyond
/// it the vector grows only as elements actually decode.
const RESERVE_ITEMS_MAX: usize = 1024;

/// One WAL record: a durable change of the core, or a marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Op(PersistOp),
    /// A snapshot covering every slot below `slot` was durably written
    /// (temp file, fsync, rename, fsync directory) before this record.
    /// Recovery loads that snapshot and replays the log from here.
    SnapshotMarker {
        slot: Slot,
        snapshot_id: u64,
    },
}

/// Why bytes do not decode to a record, or why a decoded op cannot be
/// replayed onto the recovered state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The body has no kind byte at all.
    Empty,
    /// The input ends inside `field`.
    Truncated {
        field: &'static str,
        needed: usize,
        remaining: usize,
    },
    UnknownKind(u8),
    UnknownValueTag(u8),
    /// A count claims more elements than the remaining bytes could hold.
    CountTooLarge {
        field: &'static str,
        count: u32,
        remaining: usize,
    },
    /// The record decoded fully but `count` bytes follow it.
    TrailingBytes {
        count: usize,
    },
    /// `first_slot + count` does not leave room below `u64::MAX`.
    SlotRangeOverflow {
        first_slot: Slot,
        count: u64,
    },
    /// A Commit covers `slot`, which has neither a chosen nor an accepted
    /// value in the state it would be applied to.
    CommitCoversMissingValue {
        commit: Slot,
        slot: Slot,
    },
    /// A snapshot marker names a snapshot newer than the one the replayed
    /// state starts from (whose slot is `log_start`).
    SnapshotNotLoaded {
        slot: Slot,
        snapshot_id: u64,
        log_start: Slot,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Empty => write!(f, "empty record body (no kind byte)"),
            RecordError::Truncated { field, needed, remaining } => {
                write!(f, "record truncated in {field}: needs {needed} bytes, {remaining} remain")
            }
            RecordError::UnknownKind(kind) => write!(f, "unknown record kind {kind}"),
            RecordError::UnknownValueTag(tag) => write!(f, "unknown value tag {tag}"),
            RecordError::CountTooLarge { field, count, remaining } => {
                write!(f, "{field} {count} is larger than the {remaining} remaining bytes can hold")
            }
            RecordError::TrailingBytes { count } => write!(f, "{count} unexpected bytes after the record"),
            RecordError::SlotRangeOverflow { first_slot, count } => {
                write!(f, "slot range of {count} values from slot {first_slot} overflows u64")
            }
            RecordError::CommitCoversMissingValue { commit, slot } => {
                write!(f, "commit {commit} covers slot {slot}, which has no chosen or accepted value")
            }
            RecordError::SnapshotNotLoaded { slot, snapshot_id, log_start } => write!(
                f,
                "marker of snapshot {snapshot_id} at slot {slot} is newer than the snapshot replay started from \
                 (log start {log_start}): load that snapshot first"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// Appends one frame holding `record` to `out`.
///
/// Panics if the body exceeds [`RECORD_BYTES_MAX`] or a count or command
/// length exceeds `u32::MAX`: recovery would reject such a frame, so writing
/// it would lose an op the core believes durable. The core's batch and
/// catch-up limits make this a bug, not an input.
///
/// Panics on `Record::Op(PersistOp::Snapshot(_))`: a snapshot image is not a
/// WAL record. The writer stores it in a snapshot file (write temp, fsync,
/// rename, fsync directory) and then appends a [`Record::SnapshotMarker`].
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Op(op) => encode_op(op, out),
        Record::SnapshotMarker { slot, snapshot_id } => encode_frame(out, |out| {
            out.push(KIND_SNAPSHOT_MARKER);
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&snapshot_id.to_le_bytes());
        }),
    }
}

/// Appends the frames of each op, in order (a large Accept or Chosen op
/// takes several frames). Panics on a `PersistOp::Snapshot`,
/// as [`encode_record`] does: the caller handles those itself.
pub fn encode_ops(ops: &[PersistOp], out: &mut Vec<u8>) {
    for op in ops {
        encode_op(op, out);
    }
}

/// Values of one Accept or Chosen op go into records of at most about this
/// many bytes each (an op larger than a record is split by slot ranges,
/// which replays identically); a single value must fit on its own.
pub const RECORD_SPLIT_BYTES: usize = RECORD_BYTES_MAX as usize / 4;
const _: () = assert!(crate::paxos::BATCH_BYTES_LIMIT <= RECORD_SPLIT_BYTES);

fn value_encoded_len(value: &Value) -> usize {
    match value {
        Value::Noop => 1,
        Value::Batch { stamp, commands } => {
            5 + if *stamp == 0 { 0 } else { 8 } + commands.iter().map(|c| 4 + c.len()).sum::<usize>()
        }
    }
}

/// Call `emit` for each run of `values` (from `first_slot`) whose encoding
/// stays under [`RECORD_SPLIT_BYTES`]; at least one run, even for no values.
fn for_each_run(first_slot: Slot, values: &[Value], mut emit: impl FnMut(Slot, &[Value])) {
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, value) in values.iter().enumerate() {
        let len = value_encoded_len(value);
        if i > start && bytes + len > RECORD_SPLIT_BYTES {
            emit(first_slot + start as u64, &values[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    emit(first_slot + start as u64, &values[start..]);
}

/// Appends the frame(s) of one op (borrowed: the hot path copies nothing but bytes).
pub fn encode_op(op: &PersistOp, out: &mut Vec<u8>) {
    match op {
        PersistOp::Accept { ballot, first_slot, values } => {
            for_each_run(*first_slot, values, |first, run| {
                encode_frame(out, |out| {
                    out.push(KIND_ACCEPT);
                    put_ballot(out, *ballot);
                    put_values(out, first, run);
                })
            });
            return;
        }
        PersistOp::Chosen { first_slot, values } => {
            for_each_run(*first_slot, values, |first, run| {
                encode_frame(out, |out| {
                    out.push(KIND_CHOSEN);
                    put_values(out, first, run);
                })
            });
            return;
        }
        _ => {}
    }
    encode_frame(out, |out| match op {
        PersistOp::Accept { .. } | PersistOp::Chosen { .. } => unreachable!("split above"),
        PersistOp::Promise { ballot } => {
            out.push(KIND_PROMISE);
            put_ballot(out, *ballot);
        }
        PersistOp::Commit { commit } => {
            out.push(KIND_COMMIT);
            out.extend_from_slice(&commit.to_le_bytes());
        }
        PersistOp::RecoveryBegun => out.push(KIND_RECOVERY_BEGUN),
        PersistOp::RecoveryDone => out.push(KIND_RECOVERY_DONE),
        PersistOp::Horizon { ms } => {
            out.push(KIND_HORIZON);
            out.extend_from_slice(&ms.to_le_bytes());
        }
        PersistOp::Snapshot(image) => panic!(
            "PersistOp::Snapshot (slot {}) is not a WAL record: write the image to a snapshot file, \
             then append Record::SnapshotMarker",
            image.slot
        ),
    });
}

/// Frame the body `write_body` appends: length, crc32c, body.
fn encode_frame(out: &mut Vec<u8>, write_body: impl FnOnce(&mut Vec<u8>)) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    write_body(out);
    let body_start = frame_start + FRAME_HEADER_BYTES;
    let body_len = out.len() - body_start;
    assert!(
        body_len <= RECORD_BYTES_MAX as usize,
        "WAL record body of {body_len} bytes exceeds RECORD_BYTES_MAX ({RECORD_BYTES_MAX})"
    );
    let crc = crc32c::crc32c(&out[body_start..]);
    out[frame_start..frame_start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[frame_start + 4..body_start].copy_from_slice(&crc.to_le_bytes());
}

fn put_ballot(out: &mut Vec<u8>, ballot: Ballot) {
    out.extend_from_slice(&ballot.round.to_le_bytes());
    out.extend_from_slice(&ballot.node.to_le_bytes());
}

fn put_u32_len(out: &mut Vec<u8>, len: usize, what: &str) {
    let len = u32::try_from(len).unwrap_or_else(|_| panic!("WAL {what} {len} exceeds u32::MAX"));
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_values(out: &mut Vec<u8>, first_slot: Slot, values: &[Value]) {
    out.extend_from_slice(&first_slot.to_le_bytes());
    put_u32_len(out, values.len(), "value count");
    for value in values {
        match value {
            Value::Noop => out.push(VALUE_NOOP),
            Value::Batch { stamp, commands } => {
                if *stamp == 0 {
                    out.push(VALUE_BATCH);
                } else {
                    out.push(VALUE_STAMPED_BATCH);
                    out.extend_from_slice(&stamp.to_le_bytes());
                }
                put_u32_len(out, commands.len(), "command count");
                for command in commands.iter() {
                    put_u32_len(out, command.len(), "command length");
                    out.extend_from_slice(command);
                }
            }
        }
    }
}

/// Decodes one frame body (kind byte and payload), validating everything:
/// truncation, unknown kinds and tags, counts the input cannot hold, slot
/// ranges that overflow, and trailing bytes.
pub fn decode_body(body: &[u8]) -> Result<Record, RecordError> {
    let mut reader = Reader { bytes: body };
    let kind = match reader.bytes.split_first() {
        None => return Err(RecordError::Empty),
        Some((kind, rest)) => {
            reader.bytes = rest;
            *kind
        }
    };
    let record = match kind {
        KIND_PROMISE => Record::Op(PersistOp::Promise { ballot: reader.ballot()? }),
        KIND_ACCEPT => {
            let ballot = reader.ballot()?;
            let (first_slot, values) = reader.values()?;
            Record::Op(PersistOp::Accept { ballot, first_slot, values })
        }
        KIND_CHOSEN => {
            let (first_slot, values) = reader.values()?;
            Record::Op(PersistOp::Chosen { first_slot, values })
        }
        KIND_COMMIT => Record::Op(PersistOp::Commit { commit: reader.u64("commit slot")? }),
        KIND_RECOVERY_BEGUN => Record::Op(PersistOp::RecoveryBegun),
        KIND_RECOVERY_DONE => Record::Op(PersistOp::RecoveryDone),
        KIND_HORIZON => Record::Op(PersistOp::Horizon { ms: reader.u64("horizon")? }),
        KIND_SNAPSHOT_MARKER => {
            let slot = reader.u64("snapshot slot")?;
            let snapshot_id = reader.u64("snapshot id")?;
            Record::SnapshotMarker { slot, snapshot_id }
        }
        other => return Err(RecordError::UnknownKind(other)),
    };
    if !reader.bytes.is_empty() {
        return Err(RecordError::TrailingBytes { count: reader.bytes.len() });
    }
    Ok(record)
}

/// Checks that `count` values from `first_slot` can be applied without slot
/// arithmetic overflowing. `DurableState::apply` walks `(first_slot..)`,
/// whose iterator steps one past the last slot, so `first_slot + count`
/// itself must stay below `u64::MAX`.
pub(super) fn check_slot_range(first_slot: Slot, count: usize) -> Result<(), RecordError> {
    let count = count as u64;
    match first_slot.checked_add(count) {
        Some(end) if end < u64::MAX => Ok(()),
        _ => Err(RecordError::SlotRangeOverflow { first_slot, count }),
    }
}

/// A cursor over untrusted bytes; every read checks what remains.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, needed: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if needed > self.bytes.len() {
            return Err(RecordError::Truncated { field, needed, remaining: self.bytes.len() });
        }
        let (taken, rest) = self.bytes.split_at(needed);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut raw = [0; 4];
        raw.copy_from_slice(self.take(4, field)?);
        Ok(u32::from_le_bytes(raw))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        let mut raw = [0; 8];
        raw.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn ballot(&mut self) -> Result<Ballot, RecordError> {
        let round = self.u64("ballot round")?;
        let node = self.u32("ballot node")?;
        Ok(Ballot { round, node })
    }

    /// A count of elements each at least `element_bytes_min` long, checked
    /// against the remaining input.
    fn count(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize, RecordError> {
        let count = self.u32(field)?;
        let remaining = self.bytes.len();
        if count as usize > remaining / element_bytes_min {
            return Err(RecordError::CountTooLarge { field, count, remaining });
        }
        Ok(count as usize)
    }

    fn values(&mut self) -> Result<(Slot, Vec<Value>), RecordError> {
        let first_slot = self.u64("first slot")?;
        let count = self.count("value count", VALUE_BYTES_MIN)?;
        check_slot_range(first_slot, count)?;
        let mut values = Vec::with_capacity(count.min(RESERVE_ITEMS_MAX));
        for _ in 0..count {
            values.push(self.value()?);
        }
        Ok((first_slot, values))
    }

    fn value(&mut self) -> Result<Value, RecordError> {
        match self.u8("value tag")? {
            VALUE_NOOP => Ok(Value::Noop),
            tag @ (VALUE_BATCH | VALUE_STAMPED_BATCH) => {
                let stamp = if tag == VALUE_STAMPED_BATCH {
                    match self.u64("stamp")? {
                        0 => return Err(RecordError::UnknownValueTag(tag)), // stamp 0 is written as tag 1
                        stamp => stamp,
                    }
                } else {
                    0
                };
                let count = self.count("command count", COMMAND_BYTES_MIN)?;
                let mut commands = Vec::with_capacity(count.min(RESERVE_ITEMS_MAX));
                for _ in 0..count {
                    let len = self.u32("command length")? as usize;
                    commands.push(Bytes::copy_from_slice(self.take(len, "command bytes")?));
                }
                Ok(Value::stamped(stamp, commands))
            }
            other => Err(RecordError::UnknownValueTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::SnapshotImage;
    use crate::rng::Rng;

    fn batch(commands: &[&[u8]]) -> Value {
        Value::batch(commands.iter().map(|command| Bytes::copy_from_slice(command)).collect())
    }

    fn round_trip(record: Record) {
        let mut frame = Vec::new();
        encode_record(&record, &mut frame);
        let len = u32::from_le_bytes(frame[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(frame[4..8].try_into().unwrap());
        assert_eq!(frame.len(), FRAME_HEADER_BYTES + len, "{record:?}");
        assert_eq!(crc, crc32c::crc32c(&frame[FRAME_HEADER_BYTES..]), "{record:?}");
        assert_eq!(decode_body(&frame[FRAME_HEADER_BYTES..]), Ok(record));
    }

    /// One record of every kind, with edge-case values.
    fn every_kind() -> Vec<Record> {
        let large: Vec<Bytes> = (0..2000u32).map(|i| Bytes::from(vec![i as u8; (i % 97) as usize])).collect();
        vec![
            Record::Op(PersistOp::Promise { ballot: Ballot::ZERO }),
            Record::Op(PersistOp::Promise { ballot: Ballot::new(u64::MAX, u32::MAX) }),
            Record::Op(PersistOp::Accept { ballot: Ballot::new(3, 1), first_slot: 0, values: vec![] }),
            Record::Op(PersistOp::Accept {
                ballot: Ballot::new(3, 1),
                first_slot: 17,
                values: vec![Value::Noop, batch(&[]), batch(&[b"", b"set k v"]), Value::batch(large.clone())],
            }),
            Record::Op(PersistOp::Accept {
                ballot: Ballot::new(9, 2),
                first_slot: u64::MAX - 2,
                values: vec![Value::batch(vec![Bytes::from(vec![0xAB; 1 << 20])])],
            }),
            Record::Op(PersistOp::Chosen { first_slot: 5, values: vec![] }),
            Record::Op(PersistOp::Chosen { first_slot: 5, values: vec![Value::Noop, Value::Noop] }),
            Record::Op(PersistOp::Chosen { first_slot: 0, values: vec![Value::batch(large), batch(&[])] }),
            Record::Op(PersistOp::Commit { commit: 0 }),
            Record::Op(PersistOp::Commit { commit: u64::MAX }),
            Record::Op(PersistOp::Horizon { ms: 1_764_000_000_000 }),
            Record::Op(PersistOp::Chosen { first_slot: 9, values: vec![Value::stamped(1, vec![]), Value::Noop] }),
            Record::SnapshotMarker { slot: 0, snapshot_id: 0 },
            Record::SnapshotMarker { slot: 1 << 40, snapshot_id: u64::MAX },
        ]
    }

    #[test]
    fn every_record_kind_round_trips() {
        for record in every_kind() {
            round_trip(record);
        }
    }

    #[test]
    fn empty_batch_and_noop_stay_distinct() {
        let mut frames = Vec::new();
        for value in [Value::Noop, batch(&[])] {
            let record = Record::Op(PersistOp::Chosen { first_slot: 1, values: vec![value.clone()] });
            frames.clear();
            encode_record(&record, &mut frames);
            let decoded = decode_body(&frames[FRAME_HEADER_BYTES..]).unwrap();
            assert_eq!(decoded, Record::Op(PersistOp::Chosen { first_slot: 1, values: vec![value] }));
        }
    }

    #[test]
    fn crc_is_crc32c() {
        // The standard CRC-32C check value (RFC 3720 appendix B.4 family).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn promise_frame_bytes_are_pinned() {
        // Pins the format: a change here makes old logs unreadable.
        let mut frame = Vec::new();
        encode_record(&Record::Op(PersistOp::Promise { ballot: Ballot::new(1, 2) }), &mut frame);
        let body = [1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        let mut expected = vec![13, 0, 0, 0];
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(frame, expected);
    }

    #[test]
    fn accept_body_layout_is_pinned() {
        let mut frame = Vec::new();
        let op =
            PersistOp::Accept { ballot: Ballot::new(2, 3), first_slot: 7, values: vec![Value::Noop, batch(&[b"ab"])] };
        encode_record(&Record::Op(op), &mut frame);
        #[rustfmt::skip]
        let body: &[u8] = &[
            2,                              // kind Accept
            2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, // ballot (2, 3)
            7, 0, 0, 0, 0, 0, 0, 0,         // first_slot
            2, 0, 0, 0,                     // value count
            0,                              // Noop
            1, 1, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', // Batch of one 2-byte command
        ];
        assert_eq!(&frame[FRAME_HEADER_BYTES..], body);
    }

    #[test]
    fn encode_ops_appends_one_frame_per_op() {
        let ops = vec![
            PersistOp::Promise { ballot: Ballot::new(1, 1) },
            PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: 0, values: vec![batch(&[b"x"])] },
            PersistOp::Commit { commit: 1 },
        ];
        let mut out = vec![0xEE]; // appends, does not overwrite
        encode_ops(&ops, &mut out);
        let mut offset = 1;
        for op in ops {
            let len = u32::from_le_bytes(out[offset..offset + 4].try_into().unwrap()) as usize;
            let body = &out[offset + FRAME_HEADER_BYTES..offset + FRAME_HEADER_BYTES + len];
            assert_eq!(decode_body(body), Ok(Record::Op(op)));
            offset += FRAME_HEADER_BYTES + len;
        }
        assert_eq!(offset, out.len());
        assert_eq!(out[0], 0xEE);
    }

    #[test]
    #[should_panic(expected = "not a WAL record")]
    fn a_snapshot_op_is_not_encoded_inline() {
        let image = SnapshotImage { slot: 4, data: Bytes::from_static(b"kv state") };
        encode_ops(&[PersistOp::Snapshot(image)], &mut Vec::new());
    }

    #[test]
    fn empty_body_and_reserved_kinds_are_rejected() {
        assert_eq!(decode_body(&[]), Err(RecordError::Empty));
        assert_eq!(decode_body(&[0]), Err(RecordError::UnknownKind(0)));
        assert_eq!(decode_body(&[9]), Err(RecordError::UnknownKind(9)));
        assert_eq!(decode_body(&[0xFF; 32]), Err(RecordError::UnknownKind(0xFF)));
    }

    #[test]
    fn every_strict_prefix_of_a_body_is_truncated() {
        for record in every_kind() {
            let mut frame = Vec::new();
            encode_record(&record, &mut frame);
            let body = &frame[FRAME_HEADER_BYTES..];
            // Large bodies: every prefix near each end, and a stride between.
            let cuts = (1..body.len()).filter(|cut| *cut < 300 || body.len() - cut < 300 || cut % 997 == 0);
            for cut in cuts {
                match decode_body(&body[..cut]) {
                    Err(RecordError::Truncated { .. }) | Err(RecordError::CountTooLarge { .. }) => {}
                    other => panic!("{record:?} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut frame = Vec::new();
        encode_record(&Record::Op(PersistOp::Commit { commit: 4 }), &mut frame);
        frame.push(0);
        assert_eq!(decode_body(&frame[FRAME_HEADER_BYTES..]), Err(RecordError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn counts_beyond_the_input_are_rejected_before_allocating() {
        // Chosen, first_slot 0, value count u32::MAX, then nothing.
        let mut body = vec![KIND_CHOSEN];
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_body(&body),
            Err(RecordError::CountTooLarge { field: "value count", count: u32::MAX, remaining: 0 })
        );
        // One Batch value claiming 3 commands with only 8 bytes left (< 12).
        let mut body = vec![KIND_CHOSEN];
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(VALUE_BATCH);
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(&[0; 8]);
        assert_eq!(
            decode_body(&body),
            Err(RecordError::CountTooLarge { field: "command count", count: 3, remaining: 8 })
        );
        // A command length past the end.
        let mut body = vec![KIND_CHOSEN];
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(VALUE_BATCH);
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_body(&body),
            Err(RecordError::Truncated { field: "command bytes", needed: u32::MAX as usize, remaining: 0 })
        );
    }

    #[test]
    fn unknown_value_tag_is_rejected() {
        let mut body = vec![KIND_CHOSEN];
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(3);
        assert_eq!(decode_body(&body), Err(RecordError::UnknownValueTag(3)));
    }

    #[test]
    fn slot_ranges_that_overflow_are_rejected() {
        for (first_slot, count) in [(u64::MAX, 0u32), (u64::MAX - 1, 1), (u64::MAX - 3, 3)] {
            let mut body = vec![KIND_CHOSEN];
            body.extend_from_slice(&first_slot.to_le_bytes());
            body.extend_from_slice(&count.to_le_bytes());
            body.resize(body.len() + count as usize, VALUE_NOOP);
            assert_eq!(
                decode_body(&body),
                Err(RecordError::SlotRangeOverflow { first_slot, count: count as u64 }),
                "{first_slot} + {count}"
            );
        }
        assert_eq!(check_slot_range(u64::MAX - 2, 1), Ok(()));
        assert_eq!(check_slot_range(u64::MAX - 1, 0), Ok(()));
    }

    #[test]
    fn errors_display_clear_text() {
        let error = RecordError::Truncated { field: "ballot round", needed: 8, remaining: 3 };
        assert_eq!(error.to_string(), "record truncated in ballot round: needs 8 bytes, 3 remain");
        let error = RecordError::CommitCoversMissingValue { commit: 9, slot: 4 };
        assert_eq!(error.to_string(), "commit 9 covers slot 4, which has no chosen or accepted value");
        let boxed: Box<dyn std::error::Error> = Box::new(RecordError::UnknownKind(0));
        assert_eq!(boxed.to_string(), "unknown record kind 0");
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = Rng::new(0x5EED_0001);
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            // Bias towards valid kinds and small counts so decoding gets deep.
            if let Some(kind) = body.first_mut() {
                *kind = rng.below(7) as u8;
            }
            for byte in body.iter_mut().skip(1) {
                if rng.chance(0.5) {
                    *byte = rng.below(3) as u8;
                }
            }
            let _ = decode_body(&body);
        }
    }

    #[test]
    fn mutated_valid_bodies_never_panic() {
        let mut rng = Rng::new(0x5EED_0002);
        let bodies: Vec<Vec<u8>> = every_kind()
            .iter()
            .map(|record| {
                let mut frame = Vec::new();
                encode_record(record, &mut frame);
                frame.split_off(FRAME_HEADER_BYTES)
            })
            .filter(|body| body.len() < 4096)
            .collect();
        for _ in 0..20_000 {
            let mut body = bodies[rng.below(bodies.len() as u64) as usize].clone();
            for _ in 0..rng.range_inclusive(1, 4) {
                let position = rng.below(body.len() as u64) as usize;
                body[position] = rng.next_u64() as u8;
            }
            if rng.chance(0.3) {
                body.truncate(rng.below(body.len() as u64 + 1) as usize);
            }
            if let Ok(record) = decode_body(&body) {
                // Whatever decodes must re-encode to exactly those bytes.
                let mut frame = Vec::new();
                encode_record(&record, &mut frame);
                assert_eq!(&frame[FRAME_HEADER_BYTES..], &body[..]);
            }
        }
    }
}

#[cfg(test)]
mod split_tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::{Ballot, DurableState};
    use crate::storage::{replay, scan_frames, ScanEnd};

    #[test]
    fn an_accept_larger_than_a_record_is_split_and_replays_the_same() {
        let big = Bytes::from(vec![7u8; 5 << 20]);
        let values: Vec<Value> = (0..20).map(|_| Value::batch(vec![big.clone()])).collect();
        let op = PersistOp::Accept { ballot: Ballot::new(2, 1), first_slot: 10, values };
        let mut out = Vec::new();
        encode_ops(std::slice::from_ref(&op), &mut out);
        let scan = scan_frames(&out);
        assert_eq!(scan.end, ScanEnd::Clean);
        assert!(scan.records.len() > 1, "split into several records");
        let (mut direct, mut replayed) = (DurableState::default(), DurableState::default());
        direct.apply(&op);
        replay(&mut replayed, &scan.records).unwrap();
        assert_eq!(direct, replayed);
    }

    #[test]
    fn an_empty_accept_still_records_its_promise() {
        let op = PersistOp::Accept { ballot: Ballot::new(5, 2), first_slot: 0, values: vec![] };
        let mut out = Vec::new();
        encode_ops(std::slice::from_ref(&op), &mut out);
        let mut state = DurableState::default();
        replay(&mut state, &scan_frames(&out).records).unwrap();
        assert_eq!(state.promised, Ballot::new(5, 2));
    }
}
