//! The latency anatomy: where a sampled request's time goes, stage by
//! stage, as the node sees it. The shell adds the stages only it can time
//! (socket to node, node to socket) and keeps the histograms (`INFO
//! latency`, `/metrics`); the node only measures, in its own local time,
//! so the simulator runs the same code.
//!
//! A write at the leader: `queue` (submitted until its batch is sealed in
//! an Accept), `local_sync` (sealed until the leader's own WAL append is
//! durable), `quorum` (durable until a majority accepted and the command
//! was applied and answered). A read: `read_wait` (submitted until the
//! lease or read-index round let it be served). A request forwarded to the
//! leader: `forward` (handed over until the leader's answer came back).
//! One request in `NodeConfig::anatomy_every` is sampled (0: none).
//!
//! Besides the stages of sampled requests the shell times every WAL sync
//! (`wal_sync`: a group commit's sync task from its start until its write
//! is durable; a write issued beside another one, `storage/wal.rs`, counts
//! its wait for that one too, as does a sync that had to wait for the
//! write in flight), the figure to set beside a raw write + fdatasync.

use std::collections::{BTreeMap, VecDeque};

use crate::paxos::{PersistOp, Slot};

/// A stage of a request's life. The node times all but `Parse`, `Reply`
/// and `WalSync`, which only the shell sees (`WalSync` is every group
/// commit, not a sampled request's stage: it overlaps `LocalSync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Parse,
    Queue,
    LocalSync,
    Quorum,
    ReadWait,
    Forward,
    Reply,
    WalSync,
}

impl Stage {
    /// In the order a request meets them (`ALL[stage as usize] == stage`).
    pub const ALL: [Stage; 8] = [
        Stage::Parse,
        Stage::Queue,
        Stage::LocalSync,
        Stage::Quorum,
        Stage::ReadWait,
        Stage::Forward,
        Stage::Reply,
        Stage::WalSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Reply => "reply",
            Stage::Queue => "queue",
            Stage::LocalSync => "local_sync",
            Stage::Quorum => "quorum",
            Stage::ReadWait => "read_wait",
            Stage::Forward => "forward",
            Stage::WalSync => "wal_sync",
        }
    }
}

/// When this node, as leader, sealed a slot and when its own copy was durable.
#[derive(Clone, Copy, Debug)]
struct SlotTimes {
    sealed_us: u64,
    durable_us: Option<u64>,
}

/// The node's sampling state. Bounded: slot times are kept only while
/// requests are sampled, and only for slots not yet applied.
#[derive(Debug, Default)]
pub(super) struct Anatomy {
    every: u64,
    counter: u64,
    /// Sampled writes waiting for their slot.
    writes_sampled: usize,
    slots: BTreeMap<Slot, SlotTimes>,
    /// Appends (token) holding sealed slots, not yet durable.
    pending: VecDeque<(u64, Slot, u64)>,
}

impl Anatomy {
    pub fn new(every: u64) -> Anatomy {
        Anatomy { every, ..Anatomy::default() }
    }

    /// Should the request arriving now be sampled? Returns its start time.
    pub fn sample(&mut self, now_us: u64) -> Option<u64> {
        if self.every == 0 {
            return None;
        }
        self.counter += 1;
        self.counter.is_multiple_of(self.every).then_some(now_us)
    }

    pub fn write_sampled(&mut self) {
        self.writes_sampled += 1;
    }

    /// A leader's Ready appended `ops` under `token` at `now_us`: its Accepts seal slots.
    pub fn on_append(&mut self, leader: bool, token: u64, ops: &[PersistOp], now_us: u64) {
        if !leader || self.writes_sampled == 0 {
            return;
        }
        for op in ops {
            if let PersistOp::Accept { first_slot, values, .. } = op {
                for slot in *first_slot..*first_slot + values.len() as u64 {
                    self.slots.entry(slot).or_insert(SlotTimes { sealed_us: now_us, durable_us: None });
                }
                self.pending.push_back((token, *first_slot, values.len() as u64));
            }
        }
    }

    /// Every append up to `token` is durable.
    pub fn on_synced(&mut self, token: u64, now_us: u64) {
        while self.pending.front().is_some_and(|(t, _, _)| *t <= token) {
            let (_, first, count) = self.pending.pop_front().expect("front exists");
            for (_, times) in self.slots.range_mut(first..first + count) {
                times.durable_us.get_or_insert(now_us);
            }
        }
    }

    /// A sampled write that started at `start_us` was answered from `slot` at `now_us`.
    pub fn write_answered(&mut self, slot: Slot, start_us: u64, now_us: u64, out: &mut Vec<(Stage, u64)>) {
        self.writes_sampled = self.writes_sampled.saturating_sub(1);
        let Some(times) = self.slots.get(&slot) else { return };
        let sealed = times.sealed_us.max(start_us);
        let durable = times.durable_us.unwrap_or(now_us).max(sealed);
        out.push((Stage::Queue, sealed - start_us));
        out.push((Stage::LocalSync, durable - sealed));
        out.push((Stage::Quorum, now_us.saturating_sub(durable)));
    }

    /// A sampled write left without an answer from a slot (timed out, routed elsewhere).
    pub fn write_dropped(&mut self) {
        self.writes_sampled = self.writes_sampled.saturating_sub(1);
    }

    /// Slots below `applied` are done; with no sampled write left, forget all.
    pub fn applied(&mut self, applied: Slot) {
        if self.writes_sampled == 0 {
            self.slots.clear();
            self.pending.clear();
            return;
        }
        while self.slots.first_key_value().is_some_and(|(&slot, _)| slot < applied) {
            self.slots.pop_first();
        }
        while self.pending.front().is_some_and(|(_, first, count)| first + count <= applied) {
            self.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{Ballot, Value};

    fn accept(first_slot: Slot, count: usize) -> PersistOp {
        PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot, values: vec![Value::Noop; count] }
    }

    #[test]
    fn a_sampled_write_is_split_into_queue_local_sync_and_quorum() {
        let mut a = Anatomy::new(2);
        assert_eq!(a.sample(100), None);
        let start = a.sample(100).expect("every second request");
        a.write_sampled();
        a.on_append(true, 7, &[accept(3, 2)], 150);
        a.on_synced(7, 400);
        let mut out = Vec::new();
        a.write_answered(4, start, 1_000, &mut out);
        assert_eq!(out, [(Stage::Queue, 50), (Stage::LocalSync, 250), (Stage::Quorum, 600)]);
        a.applied(5);
        assert!(a.slots.is_empty() && a.pending.is_empty(), "nothing kept once no sampled write waits");
    }

    #[test]
    fn nothing_is_kept_without_a_sampled_write_or_off_the_leader() {
        let mut a = Anatomy::new(1);
        a.on_append(true, 1, &[accept(0, 4)], 10);
        assert!(a.slots.is_empty());
        a.write_sampled();
        a.on_append(false, 2, &[accept(0, 4)], 10);
        assert!(a.slots.is_empty());
        assert_eq!(Anatomy::new(0).sample(5), None, "0 samples nothing");
    }
}
