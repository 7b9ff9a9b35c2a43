//! The proposer role: pre-candidate, candidate (Phase 1), leader (Phase 2,
//! batching, pipelining, heartbeats, lease and read-index reads).
//!
//! The role's state lives here; the replica drives it (see `replica.rs`).

use std::collections::VecDeque;

use bytes::Bytes;

use super::ballot::{Ballot, NodeSet, Slot};
use super::config::Config;
use super::message::{Promise, Value};
use super::slotmap::SlotMap;

/// What this replica is doing as a proposer.
#[derive(Debug)]
pub enum Role {
    Follower,
    PreCandidate(PreCandidate),
    Candidate(Candidate),
    Leader(Box<Leader>),
}

/// Role names for status and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Follower => RoleKind::Follower,
            Role::PreCandidate(_) => RoleKind::PreCandidate,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }

    /// The ballot this role campaigns or leads with.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Role::Follower => None,
            Role::PreCandidate(p) => Some(p.ballot),
            Role::Candidate(c) => Some(c.ballot),
            Role::Leader(l) => Some(l.ballot),
        }
    }
}

/// Collecting pre-votes for `ballot`.
#[derive(Debug)]
pub struct PreCandidate {
    pub ballot: Ballot,
    pub granted: NodeSet,
}

/// Phase 1 in progress.
#[derive(Debug)]
pub struct Candidate {
    pub ballot: Ballot,
    /// The Prepare covers every slot from here on (our commit index at start).
    pub first_unchosen: Slot,
    pub promised_by: NodeSet,
    /// Per slot, the highest-ballot accepted value reported so far (P2c:
    /// the new leader must propose it).
    pub accepted: SlotMap<(Ballot, Value)>,
}

impl Candidate {
    /// Merge one promise. Returns false for a duplicate.
    pub fn absorb(&mut self, member_index: usize, promise: &Promise) -> bool {
        if !self.promised_by.insert(member_index) {
            return false;
        }
        for entry in &promise.accepted {
            match self.accepted.get(&entry.slot) {
                Some((ballot, _)) if *ballot >= entry.ballot => {}
                _ => {
                    self.accepted.insert(entry.slot, (entry.ballot, entry.value.clone()));
                }
            }
        }
        true
    }
}

/// One slot proposed and not yet chosen.
#[derive(Debug)]
pub struct InFlight {
    pub value: Value,
    pub acks: NodeSet,
    pub sent_at_tick: u64,
}

/// One heartbeat round: who acknowledged it, and when it left.
#[derive(Debug)]
pub struct HeartbeatRound {
    pub round: u64,
    pub sent_at_tick: u64,
    pub acks: NodeSet,
}

/// A linearizable read waiting at the leader.
#[derive(Debug)]
pub struct PendingRead {
    pub id: u64,
    /// Serve once the commit index reaches this (every write acknowledged
    /// before the read arrived sits below it).
    pub read_index: Slot,
    /// Serve once a heartbeat round >= this is acknowledged by a majority
    /// (read-index); 0 for a read taken under a lease.
    pub confirm_round: u64,
}

/// Heartbeat rounds remembered for acknowledgement (older replies are ignored).
pub const HEARTBEAT_ROUNDS_KEPT: usize = 16;

#[derive(Debug)]
pub struct Leader {
    pub ballot: Ballot,
    /// The next slot to propose. Invariant: every in-flight slot is below it.
    pub next_slot: Slot,
    /// Proposed, not yet known chosen. At most `window_slots` entries, plus
    /// the slots re-proposed at election.
    pub in_flight: SlotMap<InFlight>,
    /// Commands waiting for a slot. Invariant: `queue.len() <= proposal_queue_max`.
    pub queue: VecDeque<Bytes>,
    /// Payload bytes in `queue`. Invariant: `<= proposal_queue_bytes_max`.
    pub queue_bytes: usize,
    /// Slots below this were chosen or re-proposed at election: a read
    /// must wait for them (they may hold writes a previous leader acknowledged).
    pub recovery_end: Slot,
    /// The last heartbeat round sent.
    pub heartbeat_round: u64,
    pub rounds: VecDeque<HeartbeatRound>,
    /// The highest round a majority acknowledged.
    pub confirmed_round: u64,
    /// Lease reads are safe while `now < lease_until_tick`.
    pub lease_until_tick: u64,
    /// Invariant: `reads.len() <= read_queue_max`.
    pub reads: VecDeque<PendingRead>,
    /// A read is waiting for a heartbeat round not sent yet.
    pub read_round_due: bool,
    /// Per member index, the tick we last heard from it in this ballot.
    pub last_heard_tick: Vec<u64>,
    /// Per member index, the highest horizon it reported stored (`time.rs`).
    pub horizon_acks: Vec<u64>,
    /// Seal a batch at the next chance even if no command waits.
    pub stamp_due: bool,
    /// The time floor when this leader took office: the latest time an
    /// earlier leader may have judged a read at. No read is judged before
    /// a majority stored a horizon at least this (`paxos::time`).
    pub elected_floor: u64,
}

impl Leader {
    pub fn new(ballot: Ballot, next_slot: Slot, now: u64, members: usize) -> Leader {
        Leader {
            ballot,
            next_slot,
            in_flight: SlotMap::new(),
            queue: VecDeque::new(),
            queue_bytes: 0,
            recovery_end: next_slot,
            heartbeat_round: 0,
            rounds: VecDeque::new(),
            confirmed_round: 0,
            lease_until_tick: 0,
            reads: VecDeque::new(),
            read_round_due: false,
            last_heard_tick: vec![now; members],
            horizon_acks: vec![0; members],
            stamp_due: false,
            elected_floor: 0,
        }
    }

    /// Take the next batch from the queue, if the window has room.
    ///
    /// Natural batching (Santos & Schiper, "Tuning Paxos for High-Throughput
    /// with Batching and Pipelining"): commands go out as soon as a slot of
    /// the window is free; they accumulate only while the window is full,
    /// so there is no fixed batching delay at low load.
    pub fn next_batch(&mut self, config: &Config) -> Option<Vec<Bytes>> {
        if self.in_flight.len() >= config.window_slots {
            return None;
        }
        if self.queue.is_empty() {
            // A stamped empty batch, when asked for: it advances the log's
            // time (expired keys are reclaimed as stamps advance).
            return std::mem::take(&mut self.stamp_due).then(Vec::new);
        }
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some(command) = self.queue.front() {
            let full = batch.len() >= config.batch_count_max || bytes + command.len() > config.batch_bytes_max;
            if full && !batch.is_empty() {
                break;
            }
            bytes += command.len();
            self.queue_bytes -= command.len();
            batch.push(self.queue.pop_front().expect("front exists"));
        }
        self.stamp_due = false;
        Some(batch)
    }

    pub fn start_round(&mut self, now: u64) -> u64 {
        self.heartbeat_round += 1;
        if self.rounds.len() == HEARTBEAT_ROUNDS_KEPT {
            self.rounds.pop_front();
        }
        self.rounds.push_back(HeartbeatRound {
            round: self.heartbeat_round,
            sent_at_tick: now,
            acks: NodeSet::default(),
        });
        self.heartbeat_round
    }

    /// Record `member_index`'s ack of `round`. Returns the round's send tick
    /// and who acked it if this ack gave it a majority.
    pub fn ack_round(&mut self, round: u64, member_index: usize, majority: usize) -> Option<(u64, NodeSet)> {
        let entry = self.rounds.iter_mut().find(|r| r.round == round)?;
        if entry.acks.insert(member_index) && entry.acks.len() == majority {
            return Some((entry.sent_at_tick, entry.acks));
        }
        None
    }
}
