//! The simulator's disk: one replica's write-ahead log as real WAL bytes
//! (the `storage` record format) plus its snapshot file. Only fsynced bytes
//! survive a crash; with disk faults on, a crash may also leave a torn
//! prefix of the write that was in flight, possibly with a flipped bit.
//! Restart recovers from the bytes with the real scanner, exactly as a
//! server would: a torn tail is truncated, anything else is an error.

use crate::paxos::{DurableState, PersistOp, SnapshotImage};
use crate::rng::Rng;
use crate::storage::{encode_checkpoint, encode_ops, replay, scan_segment, ScanEnd};

#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    /// Durable WAL bytes: one segment, rewritten (atomically) at each snapshot.
    wal: Vec<u8>,
    /// The durable snapshot file.
    snapshot: Option<SnapshotImage>,
    /// What the durable bytes replay to, kept in step for inspection.
    state: DurableState,
    /// Torn tails truncated at recovery.
    pub torn_tails_recovered: u64,
}

/// How a crash treats the write in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashWrite {
    /// Lost entirely (the usual outcome).
    Lost,
    /// A prefix of it reached the disk.
    Torn,
    /// A prefix reached the disk with one bit flipped.
    TornAndFlipped,
}

impl SimDisk {
    /// The state the durable bytes hold.
    pub fn state(&self) -> &DurableState {
        &self.state
    }

    pub fn wal_bytes(&self) -> usize {
        self.wal.len()
    }

    /// One Ready's ops became durable (its fsync completed).
    pub fn sync(&mut self, ops: &[PersistOp]) {
        for op in ops {
            self.state.apply(op);
            match op {
                PersistOp::Snapshot(image) => {
                    // Snapshot file: temp, fsync, rename, fsync dir. Then the
                    // log is rewritten to what the snapshot does not cover.
                    if self.snapshot.as_ref().is_none_or(|s| s.slot < image.slot) {
                        self.snapshot = Some(image.clone());
                    }
                    self.wal.clear();
                    encode_checkpoint(&self.state, image.slot, &mut self.wal);
                }
                op => encode_ops(std::slice::from_ref(op), &mut self.wal),
            }
        }
    }

    /// A crash while `in_flight` (the next Ready's ops) was being written.
    pub fn crash(&mut self, in_flight: Option<&[PersistOp]>, how: CrashWrite, rng: &mut Rng) {
        let Some(ops) = in_flight else { return };
        if how == CrashWrite::Lost {
            return;
        }
        let mut bytes = Vec::new();
        let mut frame_starts = Vec::new();
        for op in ops.iter().filter(|op| !matches!(op, PersistOp::Snapshot(_))) {
            frame_starts.push(bytes.len());
            encode_ops(std::slice::from_ref(op), &mut bytes);
        }
        if bytes.is_empty() {
            return;
        }
        let torn = rng.below(bytes.len() as u64) as usize;
        let start = self.wal.len();
        self.wal.extend_from_slice(&bytes[..torn]);
        // The model (and the scanner's contract): a write reaches the disk
        // in order and a crash cuts it short, so damage is confined to the
        // last, incomplete record. Damage followed by an intact record is
        // mid-log corruption, which recovery refuses by design.
        let last_frame = frame_starts.iter().copied().filter(|&f| f < torn).max().unwrap_or(0);
        if how == CrashWrite::TornAndFlipped && torn > last_frame {
            let at = start + last_frame + rng.below((torn - last_frame) as u64) as usize;
            self.wal[at] ^= 1 << rng.below(8);
        }
    }

    /// Rebuild the durable state from the bytes, as a restarting server does.
    pub fn recover(&mut self) -> Result<DurableState, String> {
        let scan = scan_segment(&self.wal);
        match &scan.end {
            ScanEnd::Clean => {}
            ScanEnd::TornTail { offset, .. } => {
                self.wal.truncate(*offset);
                self.torn_tails_recovered += 1;
            }
            ScanEnd::Corrupt { offset, reason } => {
                return Err(format!("WAL corrupt at offset {offset}: {reason}"));
            }
        }
        let mut state = DurableState::default();
        if let Some(image) = &self.snapshot {
            state.apply(&PersistOp::Snapshot(image.clone()));
        }
        replay(&mut state, &scan.records).map_err(|e| e.to_string())?;
        self.state = state.clone();
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::{Ballot, Value};

    fn value(text: &'static str) -> Value {
        Value::batch(vec![Bytes::from_static(text.as_bytes())])
    }

    fn workload() -> Vec<Vec<PersistOp>> {
        let b = Ballot::new(1, 1);
        vec![
            vec![PersistOp::Promise { ballot: b }],
            vec![PersistOp::Accept { ballot: b, first_slot: 0, values: vec![value("a"), value("b")] }],
            vec![PersistOp::Commit { commit: 2 }],
            vec![PersistOp::Snapshot(SnapshotImage { slot: 2, data: Bytes::from_static(b"kv@2") })],
            vec![PersistOp::Accept { ballot: b, first_slot: 2, values: vec![value("c")] }],
            vec![PersistOp::Chosen { first_slot: 2, values: vec![value("c")] }, PersistOp::Commit { commit: 3 }],
        ]
    }

    #[test]
    fn recovery_from_the_bytes_equals_the_synced_state() {
        let mut disk = SimDisk::default();
        for ops in workload() {
            disk.sync(&ops);
            let expected = disk.state().clone();
            let mut copy = disk.clone();
            assert_eq!(copy.recover().unwrap(), expected);
        }
    }

    #[test]
    fn a_torn_or_flipped_tail_is_truncated_and_nothing_synced_is_lost() {
        let mut rng = Rng::new(9);
        let steps = workload();
        for cut in 0..steps.len() {
            for round in 0..200 {
                let mut disk = SimDisk::default();
                for ops in &steps[..cut] {
                    disk.sync(ops);
                }
                let synced = disk.state().clone();
                let how = if round % 2 == 0 { CrashWrite::Torn } else { CrashWrite::TornAndFlipped };
                let pending = steps.get(cut).map(Vec::as_slice);
                disk.crash(pending, how, &mut rng);
                let recovered = disk.recover().unwrap_or_else(|e| panic!("cut {cut} round {round}: {e}"));
                // Whole records of the torn write may survive; nothing before it is lost.
                assert!(recovered.promised >= synced.promised, "cut {cut} round {round}");
                assert!(recovered.commit >= synced.commit);
                for (slot, value) in &synced.chosen {
                    assert_eq!(recovered.chosen.get(slot), Some(value));
                }
            }
        }
    }
}
