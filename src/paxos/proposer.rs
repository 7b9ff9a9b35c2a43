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
    /// When it was last sent (proposed, or re-sent).
    pub sent_at_tick: u64,
    /// When it was proposed.
    pub proposed_tick: u64,
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
    /// How long a slot takes to be chosen from its proposal, smoothed
    /// (ticks x 8, as TCP keeps its SRTT; `Replica::resend_after_ticks`).
    /// 0: no sample yet.
    pub choose_ticks_x8: u64,
    /// Commands waiting for a slot. Invariants: `queue.len() <=
    /// proposal_queue_max`, `queue.bytes() <= proposal_queue_bytes_max`.
    pub queue: ProposalQueue,
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
    /// Per member index, the tick we last heard from it in this ballot
    /// (starting at the election's tick: a grace period).
    pub last_heard_tick: Vec<u64>,
    /// The members actually heard from in this ballot (an Accepted or a
    /// heartbeat reply), with no grace period: a hand-over counts on them.
    pub heard: NodeSet,
    /// Per member index, the highest horizon it reported stored (`time.rs`).
    pub horizon_acks: Vec<u64>,
    /// Seal a batch at the next chance even if no command waits.
    pub stamp_due: bool,
    /// The time floor when this leader took office: the latest time an
    /// earlier leader may have judged a read at. No read is judged before
    /// a majority stored a horizon at least this (`paxos::time`).
    pub elected_floor: u64,
}

/// Commands waiting for a slot, in the chunks they were proposed in: a
/// chunk that fits a batch becomes the batch as it is (one move of the
/// caller's `Vec`, not one per command, and no pass over its commands:
/// each chunk keeps its byte count); only a chunk that straddles a batch
/// limit is split.
#[derive(Debug, Default)]
pub struct ProposalQueue {
    /// Each chunk with its payload bytes. No chunk is empty.
    chunks: VecDeque<(Vec<Bytes>, usize)>,
    len: usize,
    bytes: usize,
}

impl ProposalQueue {
    /// Commands queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queue `commands`, whose payload is `bytes` bytes in all.
    pub fn push(&mut self, commands: Vec<Bytes>, bytes: usize) {
        if commands.is_empty() {
            return;
        }
        self.len += commands.len();
        self.bytes += bytes;
        self.chunks.push_back((commands, bytes));
    }

    /// Queue one command (`bytes` long) after the others: it joins the last
    /// chunk while that chunk still fits one batch of at most `count_max`
    /// commands and `bytes_max` bytes (so chunks built this way are taken
    /// whole), else it starts a chunk. No allocation per command: a shell
    /// that proposes one request at a time would otherwise build a `Vec`
    /// for each.
    pub fn push_one(&mut self, command: Bytes, bytes: usize, count_max: usize, bytes_max: usize) {
        self.len += 1;
        self.bytes += bytes;
        match self.chunks.back_mut() {
            Some((chunk, chunk_bytes)) if chunk.len() < count_max && *chunk_bytes + bytes <= bytes_max => {
                chunk.push(command);
                *chunk_bytes += bytes;
            }
            _ => self.chunks.push_back((vec![command], bytes)),
        }
    }

    /// The next batch, in queue order: at most `count_max` commands and
    /// `bytes_max` payload bytes, but never empty while commands wait (a
    /// command alone over the limit goes alone).
    pub fn take_batch(&mut self, count_max: usize, bytes_max: usize) -> Vec<Bytes> {
        let mut batch: Vec<Bytes> = Vec::new();
        let mut bytes = 0usize;
        while let Some((front, front_bytes)) = self.chunks.front_mut() {
            let (fit, fit_bytes) = if batch.len() + front.len() <= count_max && bytes + *front_bytes <= bytes_max {
                (front.len(), *front_bytes)
            } else {
                let (mut fit, mut fit_bytes) = (0, 0);
                for command in front.iter() {
                    let full = batch.len() + fit >= count_max || bytes + fit_bytes + command.len() > bytes_max;
                    if full && batch.len() + fit > 0 {
                        break;
                    }
                    fit += 1;
                    fit_bytes += command.len();
                }
                (fit, fit_bytes)
            };
            if fit == 0 {
                break;
            }
            let whole = fit == front.len();
            let taken = if whole {
                self.chunks.pop_front().expect("front exists").0
            } else {
                *front_bytes -= fit_bytes;
                let rest = front.split_off(fit);
                std::mem::replace(front, rest)
            };
            self.len -= fit;
            self.bytes -= fit_bytes;
            bytes += fit_bytes;
            if batch.is_empty() {
                batch = taken;
            } else {
                batch.extend(taken);
            }
            if !whole {
                break;
            }
        }
        batch
    }

    /// Every command, in queue order (for aborting them).
    pub fn into_commands(self) -> impl Iterator<Item = Bytes> {
        self.chunks.into_iter().flat_map(|(chunk, _)| chunk)
    }
}

impl Leader {
    pub fn new(ballot: Ballot, next_slot: Slot, now: u64, members: usize) -> Leader {
        Leader {
            ballot,
            next_slot,
            in_flight: SlotMap::new(),
            choose_ticks_x8: 0,
            queue: ProposalQueue::default(),
            recovery_end: next_slot,
            heartbeat_round: 0,
            rounds: VecDeque::new(),
            confirmed_round: 0,
            lease_until_tick: 0,
            reads: VecDeque::new(),
            read_round_due: false,
            last_heard_tick: vec![now; members],
            heard: NodeSet::default(),
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
        self.stamp_due = false;
        Some(self.queue.take_batch(config.batch_count_max, config.batch_bytes_max))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Batches cut from chunks (pushed whole or one command at a time) are
    /// exactly the batches the one-command-at-a-time rule cuts: same
    /// commands, same order, same limits.
    #[test]
    fn chunked_queue_cuts_the_batches_a_command_queue_would() {
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed);
            let (count_max, bytes_max) = (1 + rng.below(8) as usize, 1 + rng.below(64) as usize);
            let mut queue = ProposalQueue::default();
            let mut model: VecDeque<Bytes> = VecDeque::new();
            let mut next = 0u32;
            for step in 0..200 {
                if rng.chance(0.2) {
                    next += 1;
                    let mut c = next.to_be_bytes().to_vec();
                    c.resize(rng.below(20) as usize + 4, 0);
                    let c = Bytes::from(c);
                    model.push_back(c.clone());
                    let len = c.len();
                    queue.push_one(c, len, count_max, bytes_max);
                } else if rng.chance(0.5) {
                    let chunk: Vec<Bytes> = (0..rng.below(6))
                        .map(|_| {
                            next += 1;
                            let mut c = next.to_be_bytes().to_vec();
                            c.resize(rng.below(20) as usize + 4, 0);
                            Bytes::from(c)
                        })
                        .collect();
                    let bytes = chunk.iter().map(Bytes::len).sum();
                    model.extend(chunk.iter().cloned());
                    queue.push(chunk, bytes);
                } else {
                    let mut expected = Vec::new();
                    let mut bytes = 0;
                    while let Some(c) = model.front() {
                        if (expected.len() >= count_max || bytes + c.len() > bytes_max) && !expected.is_empty() {
                            break;
                        }
                        bytes += c.len();
                        expected.push(model.pop_front().unwrap());
                    }
                    assert_eq!(queue.take_batch(count_max, bytes_max), expected, "seed {seed} step {step}");
                }
                assert_eq!(queue.len(), model.len(), "seed {seed} step {step}");
                assert_eq!(queue.bytes(), model.iter().map(Bytes::len).sum::<usize>(), "seed {seed} step {step}");
            }
            assert!(queue.into_commands().eq(model), "seed {seed}: what is left, in order");
        }
    }
}
