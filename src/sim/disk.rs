//! The simulator's disk: one replica's write-ahead log as real WAL bytes
//! (the `storage` formats: record frames inside checksummed writes), its
//! snapshot file, and its identity marker, with the real WAL's group
//! commit: appends wait in memory until a sync takes all of them, writes
//! them (one write per run of records, a snapshot where it was appended),
//! and completes after the fsync delay.
//!
//! A crash keeps what was synced, loses what was only appended, and may
//! tear the sync in progress: its writes before the crash point landed,
//! the one at the crash point landed block by block in any order (with
//! disk faults on, a landed block may also have a flipped bit), and those
//! after it never happened. As in the real WAL, a second sync may go out
//! beside a lone write in flight (at most two at once, the later one's
//! write at the next sector boundary); the node hears of it only once the
//! first completed too, and a crash may find it complete behind a torn or
//! lost first one. Restart recovers through the real scanner,
//! exactly as a server does: a torn last write is truncated; anything else
//! is an error. A disk loss wipes everything (the marker too, unless the
//! fault keeps it).
//!
//! Each segment's writes carry its epoch, a salt drawn when the segment
//! starts, as the real WAL's do (`storage/wal.rs`). Deleted segments (the
//! ones a snapshot retires, and the whole log of a lost disk) leave their
//! bytes on the device: a crash with disk faults may expose one past a
//! log's end ([`SimDisk::expose`]), as a power loss can expose a deleted
//! file's blocks in a file that was growing over them. With
//! [`InjectedBug::WalIndexEpochs`] the epoch is the segment's index, as it
//! was before salts, and a log takes a deleted segment's writes of the
//! same index for its own.
//!
//! [`InjectedBug::WalIndexEpochs`]: crate::paxos::InjectedBug::WalIndexEpochs

use std::collections::VecDeque;

use crate::paxos::{DurableState, PersistOp, SnapshotImage};
use crate::rng::Rng;
use crate::storage::{
    encode_checkpoint, encode_ops, encode_write, replay, scan_segment, ScanEnd, SALT_MARK, WRITES_IN_FLIGHT_MAX,
    WRITE_HEADER_BYTES,
};

/// The sector size torn writes are cut at.
const BLOCK_BYTES: usize = 512;

/// Deleted segments whose bytes the device keeps for exposure (the newest).
const FREED_SEGMENTS_MAX: usize = 4;

/// One device step of a sync.
#[derive(Clone, Debug)]
enum Step {
    /// Append one write (whole record frames of `ops`) to the current segment.
    Write { frames: Vec<u8>, ops: Vec<PersistOp> },
    /// Write the snapshot file, then start segment `segment` with a
    /// checkpoint write (`checkpoint` frames): atomic here, as the real
    /// WAL's temp-file, fsync, rename, fsync-directory sequence is.
    Snapshot { image: SnapshotImage, checkpoint: Vec<u8> },
}

/// A sync in progress.
#[derive(Clone, Debug)]
struct SimSync {
    /// The last token it covers.
    token: u64,
    steps: Vec<Step>,
    /// Its writes completed; they land once every sync before it did.
    done: bool,
    /// Issued beside the sync before it (both one write): its write's
    /// offset and sequence number, fixed when it was issued, as the real
    /// WAL fixes them (`Wal::place`): at the next sector boundary
    /// boundary after the write before it, zeros between.
    beside: Option<(usize, u64)>,
}

#[derive(Clone, Debug)]
pub struct SimDisk {
    /// The current segment's index, its writes' epoch, and its durable bytes.
    segment: u64,
    epoch: u64,
    wal: Vec<u8>,
    /// Where segment salts come from (kept across a lost disk: the new
    /// log's segments get new salts, as the real WAL draws fresh ones).
    salts: Rng,
    /// [`InjectedBug::WalIndexEpochs`](crate::paxos::InjectedBug::WalIndexEpochs):
    /// a segment's epoch is its index.
    index_epochs: bool,
    /// The bytes of deleted segments, oldest first, still on the device.
    freed: Vec<Vec<u8>>,
    /// The sequence number of the segment's next write.
    next_write_seq: u64,
    /// The durable snapshot file.
    snapshot: Option<SnapshotImage>,
    /// The identity marker (`server/identity.rs`): written once the first
    /// sync completed, so it means "this replica made state durable" (and
    /// may have voted); a replica that crashed before that is still new.
    pub initialized: bool,
    /// The disk was lost with its marker: the operator restarts the
    /// replica with `--rejoin` until it has synced state again.
    pub lost_marker: bool,
    /// Appended, not yet taken by a sync: (token, steps).
    pending: Vec<(u64, Vec<Step>)>,
    /// The syncs in progress, oldest first: at most `WRITES_IN_FLIGHT_MAX`,
    /// a second one only beside a lone write (`SimDisk::start_sync`).
    in_flight: VecDeque<SimSync>,
    /// What the durable bytes replay to, kept in step for inspection.
    state: DurableState,
    /// What everything appended amounts to (checkpoints are cut from it).
    appended_state: DurableState,
    /// Torn tails truncated at recovery (exposed deleted blocks after the
    /// log's last block read as one too).
    pub torn_tails_recovered: u64,
}

impl SimDisk {
    /// A new, empty disk; `salt_seed` seeds its segments' salts.
    pub fn new(salt_seed: u64) -> SimDisk {
        SimDisk::blank(Rng::new(salt_seed), false)
    }

    /// Nothing on it yet; its first segment's epoch comes from `salts`
    /// (or is 0, with `index_epochs`).
    fn blank(salts: Rng, index_epochs: bool) -> SimDisk {
        let mut disk = SimDisk {
            segment: 0,
            epoch: 0,
            wal: Vec::new(),
            salts,
            index_epochs,
            freed: Vec::new(),
            next_write_seq: 1,
            snapshot: None,
            initialized: false,
            lost_marker: false,
            pending: Vec::new(),
            in_flight: VecDeque::new(),
            state: DurableState::default(),
            appended_state: DurableState::default(),
            torn_tails_recovered: 0,
        };
        disk.epoch = disk.new_epoch();
        disk
    }

    /// [`InjectedBug::WalIndexEpochs`](crate::paxos::InjectedBug::WalIndexEpochs),
    /// on a disk nothing was written to yet.
    pub fn use_index_epochs(&mut self) {
        assert!(self.wal.is_empty() && self.segment == 0, "index epochs from the start only");
        self.index_epochs = true;
        self.epoch = self.new_epoch();
    }

    /// The epoch of a segment starting now (`self.segment` is its index).
    fn new_epoch(&mut self) -> u64 {
        if self.index_epochs {
            self.segment
        } else {
            self.salts.next_u64() | SALT_MARK
        }
    }

    /// The current segment is deleted: its bytes stay on the device.
    fn free_segment(&mut self) {
        let bytes = std::mem::take(&mut self.wal);
        if !bytes.is_empty() {
            if self.freed.len() == FREED_SEGMENTS_MAX {
                self.freed.remove(0);
            }
            self.freed.push(bytes);
        }
    }

    /// The bytes of this disk's deleted segments still on the device.
    pub fn freed(&self) -> &[Vec<u8>] {
        &self.freed
    }

    /// The state the durable bytes hold.
    pub fn state(&self) -> &DurableState {
        &self.state
    }

    pub fn wal_bytes(&self) -> usize {
        self.wal.len()
    }

    pub fn is_syncing(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// A sync is in flight beside another (`start_sync`).
    pub fn writes_beside(&self) -> bool {
        self.in_flight.iter().any(|sync| sync.beside.is_some())
    }

    /// Queue one append (a node's `Append`).
    pub fn append(&mut self, token: u64, ops: &[PersistOp]) {
        let mut steps = Vec::new();
        let mut run = Vec::new();
        let mut run_ops = Vec::new();
        for op in ops {
            match op {
                PersistOp::Snapshot(image) => {
                    if self.appended_state.snapshot.as_ref().is_some_and(|s| s.slot >= image.slot) {
                        continue; // not newer: the real WAL skips it too
                    }
                    if !run.is_empty() {
                        let (frames, ops) = (std::mem::take(&mut run), std::mem::take(&mut run_ops));
                        steps.push(Step::Write { frames, ops });
                    }
                    self.appended_state.apply(op);
                    let mut checkpoint = Vec::new();
                    encode_checkpoint(&self.appended_state, image.slot, &mut checkpoint);
                    steps.push(Step::Snapshot { image: image.clone(), checkpoint });
                }
                op => {
                    self.appended_state.apply(op);
                    encode_ops(std::slice::from_ref(op), &mut run);
                    run_ops.push(op.clone());
                }
            }
        }
        if !run.is_empty() {
            steps.push(Step::Write { frames: run, ops: run_ops });
        }
        self.pending.push((token, steps));
    }

    /// Start a sync of everything appended, if there is something to sync
    /// and either none runs or this one may go out beside those that do,
    /// as the real WAL's `Wal::sync` decides: one run of records (or
    /// nothing) beside lone record writes, at most `WRITES_IN_FLIGHT_MAX`
    /// at once. The appends' runs of records merge into one write, as the
    /// real WAL's do. Returns the last token it covers.
    pub fn start_sync(&mut self) -> Option<u64> {
        let token = self.pending.last().map(|(t, _)| *t)?;
        let mut steps: Vec<Step> = Vec::new();
        for step in self.pending.iter().flat_map(|(_, steps)| steps) {
            match (steps.last_mut(), step) {
                (Some(Step::Write { frames, ops }), Step::Write { frames: more, ops: more_ops }) => {
                    frames.extend_from_slice(more);
                    ops.extend_from_slice(more_ops);
                }
                _ => steps.push(step.clone()),
            }
        }
        let lone = |steps: &[Step]| matches!(steps, [] | [Step::Write { .. }]);
        let beside = match self.in_flight.back() {
            None => None,
            Some(_)
                if self.in_flight.len() < WRITES_IN_FLIGHT_MAX as usize
                    && self.in_flight.iter().all(|sync| lone(&sync.steps))
                    && lone(&steps) =>
            {
                // The write before this one: its end, and this one's seq.
                let (end, seq) = match self.in_flight.back().map(|sync| (&sync.steps[..], sync.beside)) {
                    Some(([Step::Write { frames, .. }], Some((at, seq)))) => {
                        (at + WRITE_HEADER_BYTES + frames.len(), seq + 1)
                    }
                    Some(([Step::Write { frames, .. }], None)) => {
                        (self.wal.len() + WRITE_HEADER_BYTES + frames.len(), self.next_write_seq + 1)
                    }
                    Some((_, Some((at, seq)))) => (at, seq),
                    _ => (self.wal.len(), self.next_write_seq),
                };
                Some((end.next_multiple_of(BLOCK_BYTES), seq))
            }
            Some(_) => return None,
        };
        self.pending.clear();
        self.in_flight.push_back(SimSync { token, steps, done: false, beside });
        Some(token)
    }

    /// The sync that covers `token` completed. Returns the last token now
    /// durable, if that moved: a sync's steps land, and the node hears of
    /// it, only once every sync before it completed too.
    pub fn complete(&mut self, token: u64) -> Option<u64> {
        if let Some(sync) = self.in_flight.iter_mut().find(|sync| sync.token == token) {
            sync.done = true;
        }
        let mut durable = None;
        while self.in_flight.front().is_some_and(|sync| sync.done) {
            let sync = self.in_flight.pop_front().expect("a front");
            if !sync.steps.is_empty() {
                self.initialized = true;
                self.lost_marker = false;
            }
            for step in sync.steps {
                self.land(step, sync.beside);
            }
            durable = Some(sync.token);
        }
        durable
    }

    /// `beside`: the write's offset and seq, if it went out beside another.
    fn land(&mut self, step: Step, beside: Option<(usize, u64)>) {
        match step {
            Step::Write { frames, ops } => {
                if let Some((at, seq)) = beside {
                    debug_assert!(at >= self.wal.len(), "a write beside lands past the one before it");
                    self.wal.resize(at, 0);
                    self.next_write_seq = seq;
                }
                encode_write(self.epoch, self.next_write_seq, &frames, &mut self.wal);
                self.next_write_seq += 1;
                for op in &ops {
                    self.state.apply(op);
                }
            }
            Step::Snapshot { image, checkpoint } => {
                self.state.apply(&PersistOp::Snapshot(image.clone()));
                self.snapshot = Some(image);
                self.free_segment();
                self.segment += 1;
                self.epoch = self.new_epoch();
                encode_write(self.epoch, 1, &checkpoint, &mut self.wal);
                self.next_write_seq = 2;
            }
        }
    }

    /// A crash. `faults`: a sync in progress may be torn (else it is lost
    /// whole). A sync that completed while one before it had not lands
    /// whole: its write is on the disk, past the torn or lost one, where
    /// recovery must take it for part of the torn tail.
    pub fn crash(&mut self, faults: bool, rng: &mut Rng) -> bool {
        self.pending.clear();
        let mut torn = false;
        for sync in std::mem::take(&mut self.in_flight) {
            if sync.done {
                // Behind one that did not complete (a completed front
                // sync has landed): its bytes are on the disk, its ops are
                // durable only if recovery reads them.
                if let (Some((at, seq)), [Step::Write { frames, .. }]) = (sync.beside, &sync.steps[..]) {
                    debug_assert!(at >= self.wal.len(), "a write beside lands past the one before it");
                    self.wal.resize(at, 0);
                    encode_write(self.epoch, seq, frames, &mut self.wal);
                }
                continue;
            }
            if faults && !sync.steps.is_empty() {
                let cut = rng.below(sync.steps.len() as u64) as usize;
                let mut steps = sync.steps.into_iter();
                for step in steps.by_ref().take(cut) {
                    self.land(step, None);
                }
                if let Some(Step::Write { frames, .. }) = steps.next() {
                    let (at, seq) = sync.beside.unwrap_or((self.wal.len(), self.next_write_seq));
                    self.tear(&frames, at, seq, rng);
                    torn = true;
                }
            }
        }
        self.appended_state = self.state.clone();
        torn
    }

    /// Write one write (sequence number `seq`) at `start` block by block,
    /// each block landing or not, one landed block perhaps with a flipped
    /// bit.
    fn tear(&mut self, frames: &[u8], start: usize, seq: u64, rng: &mut Rng) {
        let mut bytes = Vec::new();
        encode_write(self.epoch, seq, frames, &mut bytes);
        self.wal.resize(start + bytes.len(), 0);
        let mut at = start / BLOCK_BYTES * BLOCK_BYTES;
        let mut landed = Vec::new();
        while at < start + bytes.len() {
            let end = (at + BLOCK_BYTES).min(start + bytes.len());
            if rng.chance(0.5) {
                let from = at.max(start);
                self.wal[from..end].copy_from_slice(&bytes[from - start..end - start]);
                landed.push((from, end));
            }
            at = end;
        }
        if let Some(&(from, end)) = landed.get(rng.below(landed.len() as u64 + 1) as usize) {
            let byte = from + rng.below((end - from) as u64) as usize;
            self.wal[byte] ^= 1 << rng.below(8);
        }
        // Trailing zeros are a segment's preallocated tail, not data.
        while self.wal.last() == Some(&0) && self.wal.len() > start {
            self.wal.pop();
        }
    }

    /// After a crash: the blocks past the log's end (from the first whole
    /// block after it) hold `stale`'s bytes at the same offsets, a deleted
    /// segment's, as if the segment file had grown over that segment's
    /// freed blocks. Stronger than the real WAL on purpose: it zeroes the
    /// blocks ahead of its end durably before it writes there
    /// (`WalOptions::zero_ahead`), so only a file system that exposes
    /// deleted data could show them; here they show after any crash, and
    /// the write format alone must tell them from the log. Returns whether
    /// any block was exposed (`stale` reaches past it).
    pub fn expose(&mut self, stale: &[u8]) -> bool {
        let from = self.wal.len().next_multiple_of(BLOCK_BYTES);
        if stale.len() <= from {
            return false;
        }
        self.wal.resize(from, 0);
        self.wal.extend_from_slice(&stale[from..]);
        true
    }

    /// The disk is gone (the data directory deleted, or the disk replaced:
    /// the model keeps one device, so the old log's blocks stay on it,
    /// freed, either way). The marker survives only if `keep_marker`.
    pub fn wipe(&mut self, keep_marker: bool) {
        let (initialized, lost) = (self.initialized, self.lost_marker);
        self.free_segment();
        let mut fresh = SimDisk::blank(self.salts.clone(), self.index_epochs);
        fresh.freed = std::mem::take(&mut self.freed);
        fresh.initialized = keep_marker && initialized;
        fresh.lost_marker = lost || (!keep_marker && initialized);
        *self = fresh;
    }

    fn replayed(&self) -> Result<DurableState, String> {
        let scan = scan_segment(&self.wal, self.epoch);
        let mut state = DurableState::default();
        if let Some(image) = &self.snapshot {
            state.apply(&PersistOp::Snapshot(image.clone()));
        }
        replay(&mut state, &scan.records).map_err(|e| e.to_string())?;
        Ok(state)
    }

    /// Rebuild the durable state from the bytes, as a restarting server does.
    pub fn recover(&mut self) -> Result<DurableState, String> {
        let scan = scan_segment(&self.wal, self.epoch);
        match &scan.end {
            // What follows the last write (zeros, or another segment's
            // stale writes) is not the log: the next write goes there.
            // The real WAL overwrites those bytes in place; the model
            // appends at the end of its buffer, so it cuts them first.
            ScanEnd::Clean => self.wal.truncate(scan.valid_len),
            ScanEnd::TornTail { offset, .. } => {
                self.wal.truncate(*offset);
                self.torn_tails_recovered += 1;
            }
            ScanEnd::Corrupt { offset, reason } => {
                return Err(format!("WAL corrupt at offset {offset}: {reason}"));
            }
        }
        self.next_write_seq = scan.writes + 1;
        let state = self.replayed()?;
        self.state = state.clone();
        self.appended_state = state.clone();
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::{Ballot, Value};

    fn value(text: &'static str) -> Value {
        Value::batch(vec![Bytes::from(text.repeat(200))])
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

    fn sync(disk: &mut SimDisk, token: u64, ops: &[PersistOp]) {
        disk.append(token, ops);
        assert_eq!(disk.start_sync(), Some(token));
        assert_eq!(disk.complete(token), Some(token));
    }

    #[test]
    fn recovery_from_the_bytes_equals_the_synced_state() {
        let mut disk = SimDisk::new(7);
        for (token, ops) in workload().iter().enumerate() {
            sync(&mut disk, token as u64, ops);
            let expected = disk.state().clone();
            let mut copy = disk.clone();
            assert_eq!(copy.recover().unwrap(), expected);
        }
    }

    /// A sync torn at any step and any block landing keeps everything synced
    /// before it, and recovery never reports corruption.
    #[test]
    fn a_torn_sync_is_truncated_and_nothing_synced_is_lost() {
        let mut rng = Rng::new(9);
        let steps = workload();
        for cut in 0..steps.len() {
            for round in 0..300 {
                let mut disk = SimDisk::new(7);
                for (token, ops) in steps[..cut].iter().enumerate() {
                    sync(&mut disk, token as u64, ops);
                }
                let synced = disk.state().clone();
                // Several appends in one sync: their runs of records merge
                // into one write, a snapshot splits them: several steps to
                // tear among.
                for (token, ops) in steps[cut..].iter().enumerate() {
                    disk.append(100 + token as u64, ops);
                }
                disk.start_sync();
                disk.crash(true, &mut rng);
                let recovered = disk.recover().unwrap_or_else(|e| panic!("cut {cut} round {round}: {e}"));
                assert!(recovered.promised >= synced.promised, "cut {cut} round {round}");
                assert!(recovered.commit >= synced.commit);
                for (slot, value) in &synced.chosen {
                    assert!(recovered.chosen.get(slot) == Some(value) || recovered.log_start() > *slot);
                }
            }
        }
    }

    /// Issue 11: a sync issued while a lone write is in flight goes out
    /// beside it, after a gap. If it completes first, nothing is durable
    /// until the first one completes; a crash then, with the first torn or
    /// lost, truncates both and never reads as corruption.
    #[test]
    fn a_sync_beside_another_is_durable_after_it_and_torn_with_it() {
        let b = Ballot::new(1, 1);
        let accept =
            |slot: u64, text| vec![PersistOp::Accept { ballot: b, first_slot: slot, values: vec![value(text)] }];
        let mut rng = Rng::new(11);
        for round in 0..400 {
            let mut disk = SimDisk::new(7);
            sync(&mut disk, 1, &accept(0, "a"));
            disk.append(2, &accept(1, "b"));
            assert_eq!(disk.start_sync(), Some(2));
            disk.append(3, &accept(2, "c"));
            assert_eq!(disk.start_sync(), Some(3), "beside the lone write in flight");
            disk.append(4, &accept(3, "d"));
            assert_eq!(disk.start_sync(), None, "two in flight at most");
            assert_eq!(disk.complete(3), None, "the write before it is still in flight");
            assert_eq!(disk.state().accepted.len(), 1);
            if round == 0 {
                let mut whole = disk.clone();
                assert_eq!(whole.complete(2), Some(3), "both durable once the first is");
                let scan = scan_segment(&whole.wal, whole.epoch);
                assert_eq!((scan.end, scan.writes), (ScanEnd::Clean, 3));
                assert_eq!(scan.write_offsets[2] % BLOCK_BYTES, 0, "{:?}", scan.write_offsets);
                assert_eq!(whole.clone().recover().unwrap(), *whole.state());
            }
            disk.crash(round % 2 == 0, &mut rng);
            let recovered = disk.recover().unwrap_or_else(|e| panic!("round {round}: {e}"));
            let slots: Vec<u64> = recovered.accepted.keys().copied().collect();
            // The first write's blocks may all have landed unflipped.
            assert!(slots == [0] || slots == [0, 1, 2], "round {round}: {slots:?}");
        }
    }

    /// A lost log's disk, re-created: the old log's writes fill the device
    /// past the new log's first write, exposed by a crash. Returns what
    /// the new log synced and what recovery makes of the bytes.
    fn stale_log_after_a_lost_one(index_epochs: bool) -> (DurableState, Result<DurableState, String>) {
        let mut disk = SimDisk::new(7);
        if index_epochs {
            disk.use_index_epochs();
        }
        let b = Ballot::new(1, 1);
        for slot in 0..8 {
            sync(&mut disk, slot, &[PersistOp::Accept { ballot: b, first_slot: slot, values: vec![value("o")] }]);
        }
        disk.wipe(true);
        sync(&mut disk, 20, &[PersistOp::Promise { ballot: Ballot::new(2, 2) }]);
        let synced = disk.state().clone();
        disk.append(21, &[PersistOp::Accept { ballot: Ballot::new(2, 2), first_slot: 0, values: vec![value("n")] }]);
        disk.start_sync();
        disk.crash(false, &mut Rng::new(3));
        let old_log = disk.freed()[0].clone();
        assert!(disk.expose(&old_log));
        let recovered = disk.recover();
        (synced, recovered)
    }

    #[test]
    fn a_deleted_logs_blocks_past_the_end_are_not_read_as_writes() {
        let (synced, recovered) = stale_log_after_a_lost_one(false);
        assert_eq!(recovered.unwrap(), synced);
        // The injected bug: with the index as the epoch, the old log's
        // later writes read as this one's, behind a gap.
        let (_, recovered) = stale_log_after_a_lost_one(true);
        let error = recovered.expect_err("index epochs take the old log's writes for this one's");
        assert!(error.contains("followed by a valid later write"), "{error}");
    }

    #[test]
    fn a_wiped_disk_forgets_everything_but_perhaps_its_marker() {
        let mut disk = SimDisk::new(7);
        assert!(!disk.initialized, "nothing synced yet");
        sync(&mut disk, 1, &workload()[1]);
        assert!(disk.initialized, "the first sync writes the marker");
        disk.wipe(true);
        assert!(disk.initialized);
        assert_eq!(disk.recover().unwrap(), DurableState::default());
        disk.wipe(false);
        assert!(!disk.initialized);
    }
}
