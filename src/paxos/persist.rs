//! What the core asks the shell to make durable, and the state a replica is
//! rebuilt from after a crash. `storage/` (the WAL) and the simulator's disk
//! model both implement exactly this: apply the ops in order, and after a
//! restart hand the result to `Replica::recover`.

use bytes::Bytes;

use super::ballot::{Ballot, Slot};
use super::message::Value;
use super::slotmap::SlotMap;

/// One durable change, in the order the core produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistOp {
    /// The acceptor promised `ballot` (Phase 1b).
    Promise { ballot: Ballot },
    /// The acceptor accepted `values` at consecutive slots from `first_slot`
    /// in `ballot` (Phase 2b); this also promises `ballot`.
    Accept { ballot: Ballot, first_slot: Slot, values: Vec<Value> },
    /// Chosen values learned from elsewhere (catch-up, or a slot chosen
    /// without this acceptor's vote).
    Chosen { first_slot: Slot, values: Vec<Value> },
    /// Every slot below `commit` is chosen. Emitted only once each such slot
    /// has a `Chosen` op or an `Accept` op carrying its chosen value.
    Commit { commit: Slot },
    /// A state-machine snapshot covering every slot below `slot` (taken
    /// locally, or received from a peer). Everything below it may be
    /// forgotten: the log is bounded by the distance between snapshots.
    Snapshot(SnapshotImage),
    /// This replica lost its durable state and starts recovering it: until
    /// `RecoveryDone`, it neither promises nor accepts (see `recovery.rs`).
    /// Persisted first, so a crash during recovery resumes it.
    RecoveryBegun,
    /// Recovery is complete: the promise and accepted values relearned from
    /// a majority were persisted before this op.
    RecoveryDone,
    /// The acceptor stores a leader's time horizon (Unix ms; see
    /// `Heartbeat::horizon`). It only grows.
    Horizon { ms: u64 },
}

/// A state-machine snapshot: the applied effect of every slot below `slot`.
/// The core treats `data` as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotImage {
    pub slot: Slot,
    pub data: Bytes,
}

/// Everything a replica must not forget. Invariants: every accepted ballot
/// is <= `promised`; every slot in `[snapshot slot, commit)` has a value in
/// `chosen`, and nothing below the snapshot slot is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The latest snapshot; the log before it is gone.
    pub snapshot: Option<SnapshotImage>,
    pub promised: Ballot,
    /// Accepted (ballot, value) per slot at or above `commit`.
    pub accepted: SlotMap<(Ballot, Value)>,
    /// Chosen values: every slot below `commit`, plus any learned above it.
    pub chosen: SlotMap<Value>,
    pub commit: Slot,
    /// Between `RecoveryBegun` and `RecoveryDone`: the replica must not vote.
    pub recovering: bool,
    /// The highest time horizon stored.
    pub horizon: u64,
}

impl DurableState {
    /// The first slot the log holds (the snapshot's slot, or 0).
    pub fn log_start(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.slot)
    }

    /// Apply `op`, moving its values in (a shell that is done with the op
    /// saves a clone of each value: a reference-count increment, and a
    /// decrement when the op is dropped).
    pub fn apply_owned(&mut self, op: PersistOp) {
        match op {
            PersistOp::Accept { ballot, first_slot, values } => self.accept(ballot, first_slot, values),
            PersistOp::Chosen { first_slot, values } => self.learn_chosen(first_slot, values),
            op => self.apply(&op),
        }
    }

    pub fn apply(&mut self, op: &PersistOp) {
        match op {
            PersistOp::Promise { ballot } => self.promised = self.promised.max(*ballot),
            PersistOp::Accept { ballot, first_slot, values } => {
                self.accept(*ballot, *first_slot, values.iter().cloned())
            }
            PersistOp::Chosen { first_slot, values } => self.learn_chosen(*first_slot, values.iter().cloned()),
            PersistOp::Commit { commit } => {
                // `accepted` is sorted: its entries below the old commit
                // index are stale (a snapshot moved the index past them),
                // and each newly committed slot's accepted value, if any,
                // is then at its front. Moved, not looked up and cloned.
                let target = (*commit).max(self.commit);
                while self.accepted.first_key_value().is_some_and(|(&slot, _)| slot < self.commit) {
                    self.accepted.pop_first();
                }
                // The common case: nothing is chosen past the old commit
                // index, and `accepted` starts with every newly committed
                // slot. They move over as one run.
                let none_chosen_past = self.chosen.last_key_value().is_none_or(|(&last, _)| last < self.commit);
                if none_chosen_past {
                    if let Some(run) = self.accepted.take_front_run(self.commit, target - self.commit) {
                        self.chosen.insert_run(self.commit, run.map(|(_, (_, value))| value));
                        self.commit = target;
                        return;
                    }
                }
                for slot in self.commit..target {
                    let accepted = match self.accepted.first_key_value() {
                        Some((&first, _)) if first == slot => self.accepted.pop_first().map(|(_, (_, value))| value),
                        _ => None,
                    };
                    if !self.chosen.contains_key(&slot) {
                        let value =
                            accepted.unwrap_or_else(|| panic!("commit {commit} covers slot {slot} with no value"));
                        self.chosen.insert(slot, value);
                    }
                }
                self.commit = target;
            }
            PersistOp::RecoveryBegun => self.recovering = true,
            PersistOp::Horizon { ms } => self.horizon = self.horizon.max(*ms),
            PersistOp::RecoveryDone => self.recovering = false,
            PersistOp::Snapshot(image) => drop(self.compact(image)),
        }
    }

    /// Apply a snapshot op (if it is newer than ours), handing back the
    /// log it compacts away instead of dropping it: a snapshot interval's
    /// log is hundreds of thousands of commands, whose freeing took a
    /// shard's executor 3-12 ms in one go (issue 11); the WAL frees it a
    /// share at a time (`Compacted::free_some`).
    pub fn compact(&mut self, image: &SnapshotImage) -> Compacted {
        if self.snapshot.as_ref().is_some_and(|s| s.slot >= image.slot) {
            return Compacted::default();
        }
        self.snapshot = Some(image.clone());
        let compacted =
            Compacted { chosen: self.chosen.take_below(image.slot), accepted: self.accepted.take_below(image.slot) };
        self.commit = self.commit.max(image.slot);
        while self.chosen.contains_key(&self.commit) {
            self.commit += 1;
        }
        compacted
    }

    fn accept(&mut self, ballot: Ballot, first_slot: Slot, values: impl IntoIterator<Item = Value>) {
        self.promised = self.promised.max(ballot);
        // The common case: every slot is past the commit index and every
        // chosen one, so each is stored (as one run: `insert_run`).
        if first_slot >= self.commit && self.chosen.last_key_value().is_none_or(|(&last, _)| first_slot > last) {
            self.accepted.insert_run(first_slot, values.into_iter().map(|value| (ballot, value)));
            return;
        }
        for (slot, value) in (first_slot..).zip(values) {
            // A chosen value is final; the core never sends an Accept op
            // for one, and a replayed log must not undo it either.
            if slot >= self.commit && !self.chosen.contains_key(&slot) {
                self.accepted.insert(slot, (ballot, value));
            }
        }
    }

    fn learn_chosen(&mut self, first_slot: Slot, values: impl IntoIterator<Item = Value>) {
        let log_start = self.log_start();
        for (slot, value) in (first_slot..).zip(values) {
            if slot >= log_start {
                self.chosen.insert(slot, value);
            }
        }
    }
}

/// The log a snapshot compacted away ([`DurableState::compact`]).
#[derive(Debug, Default)]
pub struct Compacted {
    chosen: SlotMap<Value>,
    accepted: SlotMap<(Ballot, Value)>,
}

impl Compacted {
    /// Free up to `slots` more slots' values; true while some remain.
    pub fn free_some(&mut self, slots: usize) -> bool {
        for _ in 0..slots {
            if self.chosen.pop_first().is_none() && self.accepted.pop_first().is_none() {
                return false;
            }
        }
        !(self.chosen.is_empty() && self.accepted.is_empty())
    }
}
