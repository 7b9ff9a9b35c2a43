//! The replica: ties acceptor, proposer and learner together behind the
//! sans-IO interface the shells drive.
//!
//! Inputs: [`Replica::propose`], [`Replica::read`], [`Replica::step`],
//! [`Replica::tick`], [`Replica::on_persisted`]. Output: [`Replica::ready`]
//! returns a [`Ready`]. The shell must, for each `Ready` in order:
//! 1. make `persist` durable (in order, after every earlier Ready's);
//! 2. then send `send_after_persist` and call `on_persisted(number)`;
//!
//! and may at once send `send_now`, apply `committed`, then answer `reads`.
//! Nothing here reads a clock, spawns, or draws ambient randomness: the same
//! inputs give the same outputs, byte for byte.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::acceptor::{AcceptDecision, Acceptor, PrepareDecision};
use super::ballot::{Ballot, NodeId, NodeSet, Slot};
use super::config::{Config, ConfigError};
use super::learner::Learner;
use super::lease::{leader_lease_ticks, LeaseGrant};
use super::message::*;
use super::persist::{DurableState, PersistOp, SnapshotImage};
use super::proposer::{Candidate, PreCandidate, Role, RoleKind};
use super::timeout::Timeout;
use crate::rng::Rng;

/// What the shell must do after feeding inputs. See the module docs for the order.
#[derive(Debug, Default)]
pub struct Ready {
    /// Pass to `on_persisted` once `persist` is durable.
    pub number: u64,
    pub persist: Vec<PersistOp>,
    pub send_now: Vec<Envelope>,
    /// Promise/Accepted replies: they report state that must be on disk first.
    pub send_after_persist: Vec<Envelope>,
    /// Newly chosen slots, contiguous and in order, to apply to the state machine.
    pub committed: Vec<(Slot, Value)>,
    /// Reads that may now be answered (after applying `committed`) or that failed.
    pub reads: Vec<ReadOutcome>,
    /// Commands that never got a slot because this replica stopped leading.
    pub aborted: Vec<Bytes>,
    /// A snapshot received from a peer: replace the state machine with it
    /// before applying `committed` (which then continues from its slot).
    pub snapshot: Option<SnapshotImage>,
    /// Role changes, for logs, traces and metrics.
    pub events: Vec<Event>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.send_now.is_empty()
            && self.send_after_persist.is_empty()
            && self.committed.is_empty()
            && self.reads.is_empty()
            && self.aborted.is_empty()
            && self.events.is_empty()
            && self.snapshot.is_none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Answer read `id` from the state machine now: it has applied every
    /// slot below `read_index`, which covers every write acknowledged before
    /// the read was issued.
    Ready { id: u64, read_index: Slot },
    /// Leadership was lost; retry elsewhere.
    Failed { id: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PreVoteStarted { ballot: Ballot },
    ElectionStarted { ballot: Ballot },
    BecameLeader { ballot: Ballot, recovered_slots: u64 },
    SteppedDown { ballot: Ballot, reason: StepDownReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepDownReason {
    HigherBallot,
    LostMajorityContact,
}

/// Why `step` dropped a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    UnknownSender(NodeId),
    FromSelf,
    Malformed(&'static str),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::UnknownSender(node) => write!(f, "message from node {node}, which is not a member"),
            StepError::FromSelf => write!(f, "message claims to come from this replica"),
            StepError::Malformed(why) => write!(f, "malformed message: {why}"),
        }
    }
}

impl std::error::Error for StepError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Not the leader; `leader` is the last leader heard from, if any.
    NotLeader { leader: Option<NodeId> },
    /// The proposal queue is at `proposal_queue_max`: back off.
    QueueFull,
    /// A command is larger than `batch_bytes_max`.
    TooLarge,
}

/// A snapshot of the replica for status pages, tests and the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: RoleKind,
    pub promised: Ballot,
    pub leader: Option<NodeId>,
    pub commit: Slot,
    pub in_flight_slots: usize,
    pub queued_commands: usize,
    pub holds_lease: bool,
}

/// A stalled snapshot transfer is resumed this many times before it starts over.
const SNAPSHOT_RESUME_ATTEMPTS: u32 = 3;

pub struct Replica {
    pub(super) id: NodeId,
    /// Our index in `config.members`.
    pub(super) index: usize,
    pub(super) config: Config,
    /// Ticks since this replica (process) started.
    pub(super) now: u64,
    pub(super) rng: Rng,
    pub(super) acceptor: Acceptor,
    pub(super) learner: Learner,
    pub(super) role: Role,
    /// The leader last heard from (ourselves when leading).
    pub(super) leader_hint: Option<NodeId>,
    /// Highest round seen in any ballot: a new campaign uses one above it.
    pub(super) max_round_seen: u64,
    /// Per member index, the highest commit index it reported.
    pub(super) peer_commit: Vec<Slot>,
    /// The member asked for catch-up, while a request is outstanding.
    pub(super) catchup_target: Option<usize>,
    pub(super) heartbeat_timeout: Timeout,
    pub(super) election_timeout: Timeout,
    pub(super) catchup_timeout: Timeout,
    /// The commit index last put in a `PersistOp::Commit`.
    pub(super) persisted_commit: Slot,
    pub(super) ready_number: u64,
    /// Our own acceptor's replies to ourselves, held until the Ready with
    /// that number is persisted (like `send_after_persist` for peers).
    pub(super) self_pending: VecDeque<(u64, Message)>,
    /// Our latest snapshot, served to replicas that fell behind it.
    pub(super) snapshot: Option<SnapshotImage>,
    /// A snapshot being received: (slot, total bytes, bytes so far).
    /// Invariant: the buffer never exceeds `snapshot_bytes_max`.
    pub(super) incoming_snapshot: Option<(Slot, u64, Vec<u8>)>,
    /// Times the incoming transfer was resumed after a timeout without progress.
    pub(super) snapshot_retries: u32,
    /// Per member index, the snapshot image it is being sent (kept until
    /// its last chunk goes out). At most one per member.
    pub(super) snapshot_transfers: BTreeMap<usize, SnapshotImage>,
    pub(super) out: Ready,
}

impl Replica {
    /// A brand-new replica with empty durable state.
    pub fn new(config: Config, id: NodeId, seed: u64) -> Result<Replica, ConfigError> {
        let mut replica = Replica::build(config, id, seed, DurableState::default())?;
        replica.acceptor = Acceptor::new(Ballot::ZERO, BTreeMap::new(), LeaseGrant::expired());
        Ok(replica)
    }

    /// A replica restarted from what it had made durable. It refuses to
    /// promise anyone for one lease (it may have granted one before the crash).
    pub fn recover(config: Config, id: NodeId, seed: u64, durable: DurableState) -> Result<Replica, ConfigError> {
        Replica::build(config, id, seed, durable)
    }

    fn build(config: Config, id: NodeId, seed: u64, durable: DurableState) -> Result<Replica, ConfigError> {
        config.validate()?;
        let index = config
            .index_of(id)
            .ok_or_else(|| ConfigError(format!("node {id} is not in members {:?}", config.members)))?;
        let members = config.members.len();
        let grant = LeaseGrant::quarantine(0, config.lease_ticks);
        let mut replica = Replica {
            id,
            index,
            now: 0,
            rng: Rng::new(seed ^ (u64::from(id) << 32)),
            acceptor: Acceptor::new(durable.promised, durable.accepted, grant),
            learner: Learner::new(durable.chosen, durable.commit, durable.snapshot.as_ref().map_or(0, |s| s.slot)),
            snapshot: durable.snapshot,
            incoming_snapshot: None,
            snapshot_retries: 0,
            snapshot_transfers: BTreeMap::new(),
            role: Role::Follower,
            leader_hint: None,
            max_round_seen: durable.promised.round,
            peer_commit: vec![0; members],
            catchup_target: None,
            heartbeat_timeout: Timeout::new(config.heartbeat_ticks),
            election_timeout: Timeout::new(config.election_timeout_max_ticks),
            catchup_timeout: Timeout::new(config.catchup_retry_ticks),
            persisted_commit: durable.commit,
            ready_number: 0,
            self_pending: VecDeque::new(),
            out: Ready::default(),
            config,
        };
        replica.reset_election_timeout();
        Ok(replica)
    }

    // ---- inspection -------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader_hint
    }

    pub fn commit_index(&self) -> Slot {
        self.learner.commit()
    }

    /// The chosen value at `slot`, if known here.
    pub fn chosen_value(&self, slot: Slot) -> Option<&Value> {
        self.learner.value(slot)
    }

    pub fn holds_lease(&self) -> bool {
        match &self.role {
            Role::Leader(l) => self.config.lease_reads && self.now < l.lease_until_tick,
            _ => false,
        }
    }

    pub fn status(&self) -> Status {
        let (in_flight_slots, queued_commands) = match &self.role {
            Role::Leader(l) => (l.in_flight.len(), l.queue.len()),
            _ => (0, 0),
        };
        Status {
            id: self.id,
            role: self.role.kind(),
            promised: self.acceptor.promised(),
            leader: self.leader_hint,
            commit: self.learner.commit(),
            in_flight_slots,
            queued_commands,
            holds_lease: self.holds_lease(),
        }
    }

    // ---- inputs -----------------------------------------------------------

    /// Queue client commands for the log. They go out at the next `ready()`.
    /// All or nothing: on error none of them was queued.
    pub fn propose(&mut self, commands: Vec<Bytes>) -> Result<(), ProposeError> {
        let Role::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader { leader: self.leader_hint });
        };
        if commands.iter().any(|c| c.len() > self.config.batch_bytes_max) {
            return Err(ProposeError::TooLarge);
        }
        let bytes: usize = commands.iter().map(Bytes::len).sum();
        if leader.queue.len() + commands.len() > self.config.proposal_queue_max
            || leader.queue_bytes + bytes > self.config.proposal_queue_bytes_max
        {
            return Err(ProposeError::QueueFull);
        }
        leader.queue_bytes += bytes;
        leader.queue.extend(commands);
        Ok(())
    }

    /// Ask for a linearizable read. Answered in a later `Ready::reads`:
    /// at once under a lease, else after a read-index heartbeat round.
    pub fn read(&mut self, id: u64) -> Result<(), ProposeError> {
        let lease = self.holds_lease();
        let commit = self.learner.commit();
        let Role::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader { leader: self.leader_hint });
        };
        if leader.reads.len() >= self.config.read_queue_max {
            return Err(ProposeError::QueueFull);
        }
        let read_index = commit.max(leader.recovery_end);
        let confirm_round = if lease {
            0
        } else {
            leader.read_round_due = true;
            leader.heartbeat_round + 1
        };
        leader.reads.push_back(super::proposer::PendingRead { id, read_index, confirm_round });
        self.release_reads();
        Ok(())
    }

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        self.now += 1;
        if self.is_leader() {
            if self.heartbeat_timeout.tick() {
                self.on_heartbeat_timeout();
            }
        } else if self.election_timeout.tick() {
            self.on_election_timeout();
        }
        if self.catchup_timeout.tick() {
            self.on_catchup_timeout();
        }
    }

    /// Handle one message from a peer. A message from a non-member, from
    /// ourselves, or malformed is dropped with an error for the shell to log;
    /// the replica's state is untouched.
    pub fn step(&mut self, from: NodeId, message: Message) -> Result<(), StepError> {
        let Some(from_index) = self.config.index_of(from) else {
            return Err(StepError::UnknownSender(from));
        };
        if from == self.id {
            return Err(StepError::FromSelf); // our own traffic never crosses the network
        }
        message.check_well_formed().map_err(StepError::Malformed)?;
        self.handle(from_index, message);
        Ok(())
    }

    /// Everything in Ready `number` (and before) is durable.
    pub fn on_persisted(&mut self, number: u64) {
        while self.self_pending.front().is_some_and(|(n, _)| *n <= number) {
            let (_, message) = self.self_pending.pop_front().expect("front exists");
            self.handle(self.index, message);
        }
    }

    /// The shell took a snapshot of the state machine after applying every
    /// slot below `slot`: persist it, forget the log before it, and serve it
    /// to replicas that fall behind. `slot` must not exceed what was handed
    /// out in `Ready::committed` (a shell bug otherwise).
    pub fn compact(&mut self, slot: Slot, data: Bytes) {
        assert!(slot <= self.learner.emitted(), "snapshot at {slot} covers slots not yet applied");
        if slot <= self.learner.compacted() {
            return;
        }
        let image = SnapshotImage { slot, data };
        self.learner.compact(slot);
        self.acceptor.prune_below(slot);
        self.out.persist.push(PersistOp::Snapshot(image.clone()));
        self.snapshot = Some(image);
    }

    /// Chosen values held in memory (bounded by the snapshot interval).
    pub fn log_len(&self) -> usize {
        self.learner.log_len()
    }

    /// The first slot still in the log (the latest snapshot's slot).
    pub fn log_start(&self) -> Slot {
        self.learner.compacted()
    }

    /// Replies from our own acceptor wait for a persist (`on_persisted`).
    pub fn awaiting_persist(&self) -> bool {
        !self.self_pending.is_empty()
    }

    /// Collect the output produced since the last call.
    pub fn ready(&mut self) -> Ready {
        self.flush_proposals();
        self.flush_read_round();
        if self.learner.commit() > self.persisted_commit {
            self.persisted_commit = self.learner.commit();
            self.out.persist.push(PersistOp::Commit { commit: self.persisted_commit });
        }
        self.out.committed = self.learner.take_committed();
        self.ready_number += 1;
        let mut ready = std::mem::take(&mut self.out);
        ready.number = self.ready_number;
        ready
    }

    // ---- dispatch ---------------------------------------------------------

    fn handle(&mut self, from: usize, message: Message) {
        // Pre-vote ballots are hypothetical: they must not inflate rounds.
        let hypothetical = matches!(message, Message::PreVote(_) | Message::PreVoteReply(_));
        if let Some(ballot) = message.ballot().filter(|_| !hypothetical) {
            self.max_round_seen = self.max_round_seen.max(ballot.round);
        }
        match message {
            Message::PreVote(m) => self.on_pre_vote(from, m),
            Message::PreVoteReply(m) => self.on_pre_vote_reply(from, m),
            Message::Prepare(m) => self.on_prepare(from, m),
            Message::Promise(m) => self.on_promise(from, m),
            Message::Accept(m) => self.handle_accept(from, m),
            Message::Accepted(m) => self.on_accepted(from, m),
            Message::Reject(m) => self.on_reject(m),
            Message::Heartbeat(m) => self.on_heartbeat(from, m),
            Message::HeartbeatReply(m) => self.on_heartbeat_reply(from, m),
            Message::CatchUp(m) => self.on_catch_up(from, m),
            Message::CatchUpReply(m) => self.on_catch_up_reply(from, m),
            Message::SnapshotChunk(m) => self.on_snapshot_chunk(from, m),
            Message::FetchSnapshot(m) => self.send_snapshot_chunk(from, m.slot, m.offset),
        }
    }

    pub(super) fn send(&mut self, to_index: usize, message: Message) {
        let to = self.config.members[to_index];
        self.out.send_now.push(Envelope { from: self.id, to, message });
    }

    /// Send a reply that reports durable state: after this Ready is persisted.
    pub(super) fn send_after_persist(&mut self, to_index: usize, message: Message) {
        if to_index == self.index {
            self.self_pending.push_back((self.ready_number + 1, message));
            return;
        }
        let to = self.config.members[to_index];
        if self.config.injected_bug == super::config::InjectedBug::ReplyBeforePersist {
            self.out.send_now.push(Envelope { from: self.id, to, message });
            return;
        }
        self.out.send_after_persist.push(Envelope { from: self.id, to, message });
    }

    pub(super) fn broadcast(&mut self, message: Message) {
        for index in 0..self.config.members.len() {
            if index != self.index {
                self.send(index, message.clone());
            }
        }
    }

    pub(super) fn reset_election_timeout(&mut self) {
        let ticks =
            self.rng.range_inclusive(self.config.election_timeout_min_ticks, self.config.election_timeout_max_ticks);
        self.election_timeout.reset_to(ticks);
    }

    // ---- acceptor side ----------------------------------------------------

    fn on_pre_vote(&mut self, from: usize, m: PreVote) {
        let granted = self.acceptor.would_promise(self.now, m.ballot);
        let promised = self.acceptor.promised();
        self.send(from, Message::PreVoteReply(PreVoteReply { ballot: m.ballot, granted, promised }));
    }

    fn on_prepare(&mut self, from: usize, m: Prepare) {
        let commit = self.learner.commit();
        match self.acceptor.on_prepare(self.now, &m, commit) {
            PrepareDecision::Promise { mut promise, newly_promised } => {
                promise.chosen = self.learner.chosen_run(
                    m.first_unchosen,
                    self.config.catchup_chunk_slots,
                    self.config.catchup_chunk_bytes,
                );
                if newly_promised {
                    self.out.persist.push(PersistOp::Promise { ballot: m.ballot });
                }
                if from != self.index {
                    // Someone else campaigns with a ballot we now promised: our
                    // own leadership or campaign with a lower ballot is over.
                    if self.role.ballot().is_some_and(|b| b < m.ballot) {
                        self.step_down(StepDownReason::HigherBallot);
                    }
                    self.reset_election_timeout();
                }
                self.send_after_persist(from, Message::Promise(promise));
            }
            PrepareDecision::Reject { promised, reason } => {
                if from == self.index {
                    // Our own acceptor will not promise us: give up this campaign.
                    self.role = Role::Follower;
                } else {
                    self.send(from, Message::Reject(Reject { ballot: m.ballot, promised, reason }));
                }
            }
        }
    }

    pub(super) fn handle_accept(&mut self, from: usize, m: Accept) {
        let learner = &self.learner;
        match self.acceptor.on_accept(&m, |slot| learner.is_chosen(slot)) {
            AcceptDecision::Accepted { stored, newly_promised } => {
                let ack = Accepted { ballot: m.ballot, first_slot: m.first_slot, count: m.values.len() as u64 };
                let leader_commit = m.commit;
                let ballot = m.ballot;
                if stored.is_empty() && newly_promised {
                    self.out.persist.push(PersistOp::Promise { ballot });
                }
                for (first_slot, values) in stored {
                    self.out.persist.push(PersistOp::Accept { ballot, first_slot, values });
                }
                self.send_after_persist(from, Message::Accepted(ack));
                if from != self.index {
                    self.on_leader_contact(from, ballot, leader_commit);
                }
            }
            AcceptDecision::Reject { promised } => {
                if from == self.index {
                    self.step_down(StepDownReason::HigherBallot);
                } else {
                    let reject = Reject { ballot: m.ballot, promised, reason: RejectReason::HigherBallot };
                    self.send(from, Message::Reject(reject));
                }
            }
        }
    }

    fn on_heartbeat(&mut self, from: usize, m: Heartbeat) {
        let promised = self.acceptor.promised();
        if m.ballot < promised {
            let reject = Reject { ballot: m.ballot, promised, reason: RejectReason::HigherBallot };
            self.send(from, Message::Reject(reject));
            return;
        }
        self.on_leader_contact(from, m.ballot, m.commit);
        let commit = self.learner.commit();
        self.send(from, Message::HeartbeatReply(HeartbeatReply { ballot: m.ballot, round: m.round, commit }));
    }

    /// A valid Accept or Heartbeat from the leader of `ballot` (>= promised).
    fn on_leader_contact(&mut self, from: usize, ballot: Ballot, leader_commit: Slot) {
        if self.role.ballot().is_some_and(|b| b < ballot) {
            self.step_down(StepDownReason::HigherBallot);
        }
        if self.is_leader() {
            return; // a stale message of our own ballot cannot arrive from a peer
        }
        self.role = Role::Follower;
        self.leader_hint = Some(self.config.members[from]);
        self.reset_election_timeout();
        self.acceptor.grant_lease(self.now, ballot, self.config.lease_ticks);
        self.peer_commit[from] = self.peer_commit[from].max(leader_commit);
        // Commit knowledge: a slot below the leader's commit index whose
        // value we accepted in the leader's own ballot holds the chosen value
        // (a leader proposes one value per slot per ballot). Anything else
        // must be fetched.
        let mut slot = self.learner.commit();
        while slot < leader_commit {
            match self.acceptor.accepted(slot) {
                Some((b, value)) if *b == ballot => {
                    let value = value.clone();
                    self.learn_chosen(slot, value);
                }
                _ if self.learner.is_chosen(slot) => {}
                _ => break,
            }
            slot += 1;
        }
        self.after_learning();
        self.maybe_catch_up();
    }

    fn on_catch_up(&mut self, from: usize, m: CatchUp) {
        if m.first_slot < self.learner.compacted() {
            // Those slots exist only in our snapshot now.
            let slot = self.learner.compacted();
            self.send_snapshot_chunk(from, slot, 0);
            return;
        }
        let values =
            self.learner.chosen_run(m.first_slot, self.config.catchup_chunk_slots, self.config.catchup_chunk_bytes);
        let commit = self.learner.commit();
        self.send(from, Message::CatchUpReply(CatchUpReply { first_slot: m.first_slot, values, commit }));
    }

    fn on_catch_up_reply(&mut self, from: usize, m: CatchUpReply) {
        self.peer_commit[from] = self.peer_commit[from].max(m.commit);
        for (slot, value) in (m.first_slot..).zip(m.values) {
            self.learn_chosen(slot, value);
        }
        self.after_learning();
        // An answer with nothing we need (the peer compacted past us, or is
        // no further along) leaves the retry timer running: asking again at
        // once would loop.
        let progressed = self.learner.commit() > m.first_slot;
        if self.catchup_target == Some(from) && progressed {
            self.catchup_target = None;
            self.catchup_timeout.stop();
            self.maybe_catch_up();
        }
    }

    /// Send the chunk at `offset` of the snapshot `to` is receiving. A
    /// transfer keeps the image it started with even if we compact again
    /// meanwhile (the image is shared, not copied); otherwise a replica could
    /// never finish a transfer while the others compact faster than it
    /// downloads. A request for an image we no longer hold starts over with
    /// our latest one.
    fn send_snapshot_chunk(&mut self, to: usize, slot: Slot, offset: u64) {
        let image = match self.snapshot_transfers.get(&to) {
            Some(image) if image.slot == slot => image.clone(),
            _ => {
                let Some(latest) = self.snapshot.clone() else { return };
                self.snapshot_transfers.insert(to, latest.clone());
                latest
            }
        };
        let total_bytes = image.data.len() as u64;
        let offset = if image.slot == slot && offset <= total_bytes { offset } else { 0 };
        let end = (offset + self.config.snapshot_chunk_bytes as u64).min(total_bytes);
        if end == total_bytes {
            self.snapshot_transfers.remove(&to);
        }
        let data = image.data.slice(offset as usize..end as usize);
        let chunk = SnapshotChunk { slot: image.slot, total_bytes, offset, data };
        self.send(to, Message::SnapshotChunk(chunk));
    }

    fn on_snapshot_chunk(&mut self, from: usize, m: SnapshotChunk) {
        if m.slot <= self.learner.commit() {
            self.incoming_snapshot = None; // stale: we are past it
            return;
        }
        if m.total_bytes > self.config.snapshot_bytes_max {
            return; // too large to hold
        }
        if m.offset == 0 {
            self.incoming_snapshot = Some((m.slot, m.total_bytes, Vec::new()));
        }
        let Some((slot, total, buffer)) = &mut self.incoming_snapshot else { return };
        if *slot != m.slot || *total != m.total_bytes || buffer.len() as u64 != m.offset {
            return; // out of order: the retry timer asks again
        }
        buffer.extend_from_slice(&m.data);
        self.snapshot_retries = 0;
        if (buffer.len() as u64) < *total {
            let request = FetchSnapshot { slot: *slot, offset: buffer.len() as u64 };
            self.catchup_target = Some(from);
            self.catchup_timeout.reset();
            self.send(from, Message::FetchSnapshot(request));
            return;
        }
        let (slot, _, buffer) = self.incoming_snapshot.take().expect("assembling");
        let image = SnapshotImage { slot, data: Bytes::from(buffer) };
        self.learner.install_snapshot(slot);
        self.acceptor.prune_below(slot);
        self.out.persist.push(PersistOp::Snapshot(image.clone()));
        self.out.snapshot = Some(image.clone());
        self.snapshot = Some(image);
        self.after_learning();
        if self.catchup_target == Some(from) {
            self.catchup_target = None;
            self.catchup_timeout.stop();
        }
        self.maybe_catch_up(); // the log suffix after the snapshot
    }

    // ---- learning ---------------------------------------------------------

    /// `value` is chosen at `slot`. Records it durably unless our acceptor's
    /// accepted value (already on its way to disk) is that same value.
    pub(super) fn learn_chosen(&mut self, slot: Slot, value: Value) {
        if self.learner.is_chosen(slot) {
            self.learner.learn(slot, value); // asserts agreement
            return;
        }
        let on_disk = self.acceptor.accepted(slot).is_some_and(|(_, v)| *v == value);
        if !on_disk {
            self.out.persist.push(PersistOp::Chosen { first_slot: slot, values: vec![value.clone()] });
        }
        self.learner.learn(slot, value);
    }

    /// Housekeeping after the commit index may have moved.
    pub(super) fn after_learning(&mut self) {
        let commit = self.learner.commit();
        self.acceptor.prune_below(commit);
        self.peer_commit[self.index] = commit;
        self.release_reads();
    }

    /// Remember that member `index` reported commit index `commit`, and
    /// fetch what we lack if it is ahead of us.
    pub(super) fn note_peer_commit(&mut self, index: usize, commit: Slot) {
        self.peer_commit[index] = self.peer_commit[index].max(commit);
        if commit > self.learner.commit() {
            self.maybe_catch_up();
        }
    }

    /// Ask the most advanced peer we know of for chosen values we lack
    /// (one request outstanding at a time).
    pub(super) fn maybe_catch_up(&mut self) {
        if self.catchup_target.is_some() {
            return;
        }
        let commit = self.learner.commit();
        let best = (0..self.peer_commit.len())
            .filter(|&i| i != self.index && self.peer_commit[i] > commit)
            .max_by_key(|&i| (self.peer_commit[i], std::cmp::Reverse(i)));
        if let Some(target) = best {
            self.request_catch_up(target);
        }
    }

    fn request_catch_up(&mut self, target: usize) {
        self.catchup_target = Some(target);
        self.catchup_timeout.reset();
        let first_slot = self.learner.commit();
        self.send(target, Message::CatchUp(CatchUp { first_slot }));
    }

    /// No answer (lost message or dead peer): ask the next member, in
    /// index order after the last one, that claims to be ahead of us.
    fn on_catchup_timeout(&mut self) {
        let Some(last) = self.catchup_target.take() else { return };
        // A snapshot transfer in progress resumes where it stopped, from
        // the same peer, a few times before starting over elsewhere.
        if let Some((slot, _, buffer)) = &self.incoming_snapshot {
            if self.snapshot_retries < SNAPSHOT_RESUME_ATTEMPTS {
                self.snapshot_retries += 1;
                let request = FetchSnapshot { slot: *slot, offset: buffer.len() as u64 };
                self.catchup_target = Some(last);
                self.catchup_timeout.reset();
                self.send(last, Message::FetchSnapshot(request));
                return;
            }
            self.incoming_snapshot = None;
        }
        let commit = self.learner.commit();
        let members = self.peer_commit.len();
        let next = (1..=members)
            .map(|step| (last + step) % members)
            .find(|&i| i != self.index && self.peer_commit[i] > commit);
        if let Some(target) = next {
            self.request_catch_up(target);
        }
    }

    // ---- elections --------------------------------------------------------

    fn on_election_timeout(&mut self) {
        let ballot = Ballot::new(self.max_round_seen.saturating_add(1), self.id);
        self.reset_election_timeout();
        self.out.events.push(Event::PreVoteStarted { ballot });
        let mut granted = NodeSet::default();
        if self.acceptor.would_promise(self.now, ballot) {
            granted.insert(self.index);
        }
        self.role = Role::PreCandidate(PreCandidate { ballot, granted });
        self.broadcast(Message::PreVote(PreVote { ballot }));
        self.check_pre_vote_majority();
    }

    fn on_pre_vote_reply(&mut self, from: usize, m: PreVoteReply) {
        self.max_round_seen = self.max_round_seen.max(m.promised.round);
        if let Role::PreCandidate(p) = &mut self.role {
            if p.ballot == m.ballot && m.granted {
                p.granted.insert(from);
                self.check_pre_vote_majority();
            }
        }
    }

    fn check_pre_vote_majority(&mut self) {
        let Role::PreCandidate(p) = &self.role else { return };
        if p.granted.len() < self.config.majority() {
            return;
        }
        // Phase 1 with a ballot above everything seen, including in pre-vote replies.
        let ballot = Ballot::new(self.max_round_seen.max(p.ballot.round - 1) + 1, self.id);
        self.max_round_seen = ballot.round;
        let first_unchosen = self.learner.commit();
        self.role = Role::Candidate(Candidate {
            ballot,
            first_unchosen,
            promised_by: NodeSet::default(),
            accepted: BTreeMap::new(),
        });
        self.out.events.push(Event::ElectionStarted { ballot });
        let prepare = Prepare { ballot, first_unchosen };
        self.broadcast(Message::Prepare(prepare.clone()));
        self.on_prepare(self.index, prepare);
    }

    fn on_promise(&mut self, from: usize, mut m: Promise) {
        let Role::Candidate(c) = &self.role else {
            self.note_peer_commit(from, m.commit);
            return;
        };
        if c.ballot != m.ballot {
            return;
        }
        let first_unchosen = c.first_unchosen;
        // Learn what the promiser knows chosen: the new leader must never
        // re-propose those slots with anything else, and must not depend on
        // one peer staying alive to fetch them later.
        let chosen = std::mem::take(&mut m.chosen);
        let covered = first_unchosen.saturating_add(chosen.len() as u64);
        for (slot, value) in (first_unchosen..).zip(chosen) {
            self.learn_chosen(slot, value);
        }
        self.after_learning();
        if m.commit > covered.max(self.learner.commit()) {
            // Too far behind this promiser to lead: catch up first.
            self.role = Role::Follower;
            self.note_peer_commit(from, m.commit);
            return;
        }
        let Role::Candidate(c) = &mut self.role else { return };
        if c.absorb(from, m) && c.promised_by.len() >= self.config.majority() {
            self.become_leader();
        }
    }

    fn on_reject(&mut self, m: Reject) {
        self.max_round_seen = self.max_round_seen.max(m.promised.round);
        if m.reason == RejectReason::HigherBallot && self.role.ballot() == Some(m.ballot) && m.promised > m.ballot {
            self.step_down(StepDownReason::HigherBallot);
        }
    }

    /// Leave any proposer role. Queued commands and waiting reads fail back
    /// to the shell; in-flight slots may still be chosen (the next leader
    /// recovers them), so their commands are not reported as aborted.
    pub(super) fn step_down(&mut self, reason: StepDownReason) {
        let role = std::mem::replace(&mut self.role, Role::Follower);
        if let Role::Leader(leader) = role {
            self.out.events.push(Event::SteppedDown { ballot: leader.ballot, reason });
            self.out.aborted.extend(leader.queue);
            for read in leader.reads {
                self.out.reads.push(ReadOutcome::Failed { id: read.id });
            }
            self.leader_hint = None;
        }
        self.heartbeat_timeout.stop();
        self.reset_election_timeout();
    }

    pub(super) fn leader_lease_ticks(&self) -> u64 {
        leader_lease_ticks(&self.config)
    }
}
