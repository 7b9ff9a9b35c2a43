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

use super::acceptor::Acceptor;
use super::ballot::{Ballot, NodeId, NodeSet, Slot};
use super::config::InjectedBug;
use super::config::{Config, ConfigError};
use super::learner::Learner;
use super::lease::LeaseGrant;
use super::message::*;
use super::persist::{DurableState, PersistOp, SnapshotImage};
use super::proposer::{ProposalQueue, Role, RoleKind};
use super::recovery::Recovery;
use super::slotmap::SlotMap;
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
    /// `at_ms`: the time the read is judged at (expiry; see `time.rs`), no
    /// later than the stamp of any batch the leader had in flight.
    Ready { id: u64, read_index: Slot, at_ms: u64 },
    /// Leadership was lost; retry elsewhere.
    Failed { id: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PreVoteStarted {
        ballot: Ballot,
    },
    ElectionStarted {
        ballot: Ballot,
    },
    BecameLeader {
        ballot: Ballot,
        recovered_slots: u64,
    },
    SteppedDown {
        ballot: Ballot,
        reason: StepDownReason,
    },
    /// As leader of `ballot`, this replica saw a majority accept `slot`
    /// (the members in `voters`, by index): its value is chosen.
    Chosen {
        slot: Slot,
        ballot: Ballot,
        voters: NodeSet,
    },
    /// As an acceptor, this replica granted (or renewed) a lease to the
    /// leader of `holder`: it promises no one else for `lease_ticks` from
    /// now, that is until `until_tick` of its clock.
    LeaseGranted {
        holder: Ballot,
        until_tick: u64,
    },
    /// As an acceptor, this replica ended its running lease grant to the
    /// leader of `holder` early: that leader stepped down and gave it up
    /// (`Message::HandOver`).
    LeaseReleased {
        holder: Ballot,
    },
    /// As leader of `ballot`, it may serve lease reads until `until_tick`
    /// of its clock, on the grants of the members in `ackers` (by index).
    LeaseExtended {
        ballot: Ballot,
        until_tick: u64,
        ackers: NodeSet,
    },
    /// The replica lost its durable state and stopped voting (`recovery.rs`).
    RecoveryStarted,
    /// Recovery finished: it adopted `promised` and the log up to `commit`.
    Recovered {
        promised: Ballot,
        commit: Slot,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepDownReason {
    HigherBallot,
    LostMajorityContact,
    /// The shell judged this replica unfit to lead (a node whose disk
    /// stays behind: [`Replica::set_fitness`]), and the others could elect
    /// a leader without it.
    HandedOver,
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
pub(super) const SNAPSHOT_RESUME_ATTEMPTS: u32 = 3;

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
    /// The leader heard from since the election timeout was last reset
    /// (ourselves when leading); `None` once it fires (`on_election_timeout`).
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
    /// Injected bug `CountOwnVoteBeforePersist` only: our own replies,
    /// handled at the next `ready()` without waiting for the disk.
    pub(super) self_unpersisted: VecDeque<Message>,
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
    /// Set while relearning a lost durable state (`recovery.rs`).
    pub(super) recovery: Option<Recovery>,
    pub(super) recovery_timeout: Timeout,
    /// The shell's word on this replica's fitness to lead
    /// ([`Replica::set_fitness`]): may it campaign, and should it, while
    /// leading, hand leadership over to the others.
    pub(super) candidacy: bool,
    pub(super) hand_over_wanted: bool,
    /// The last Prepare this acceptor refused for a lease it had granted
    /// (member index, message): answered again if that lease is given up
    /// (`Message::HandOver`). The successor sends its Prepare when the
    /// hand-over reaches it, which can be before the hand-over reaches
    /// this member, and a candidate does not re-send its Prepare.
    pub(super) refused_for_lease: Option<(usize, Prepare)>,
    /// The same for the last PreVote refused for a lease: the successor's
    /// pre-vote can beat the hand-over to a member just as its Prepare can.
    pub(super) refused_for_lease_pre_vote: Option<(usize, PreVote)>,
    /// The ballot of the last leader that handed over to others
    /// (`Message::HandOver`): its late messages renew no lease.
    pub(super) handed_over: Option<Ballot>,
    /// Time (`time.rs`): the shell's wall clock, Unix ms (0: none given).
    pub(super) wall_ms: u64,
    /// No stamp goes below this: every stamp sealed or learned, every read
    /// time judged, every horizon a promise reported.
    pub(super) time_floor: u64,
    /// The highest horizon our acceptor was asked to store (durable or in flight).
    pub(super) horizon_stored: u64,
    /// The highest horizon our acceptor has stored durably.
    pub(super) horizon_durable: u64,
    /// Horizons persisted by Ready number, waiting for `on_persisted`.
    pub(super) horizon_unsynced: VecDeque<(u64, u64)>,
    /// A horizon pushed into the Ready being built.
    pub(super) horizon_in_ready: Option<u64>,
    pub(super) out: Ready,
    /// A drained `Ready` handed back by the shell (`recycle`): the next
    /// one reuses its buffers.
    spare: Option<Ready>,
    /// Scratch for the slots one Accepted makes chosen (kept, not
    /// allocated per message).
    pub(super) newly_chosen: Vec<Slot>,
}

impl Replica {
    /// A brand-new replica with empty durable state.
    pub fn new(config: Config, id: NodeId, seed: u64) -> Result<Replica, ConfigError> {
        let mut replica = Replica::build(config, id, seed, DurableState::default())?;
        replica.acceptor = Acceptor::new(Ballot::ZERO, SlotMap::new(), LeaseGrant::expired());
        Ok(replica)
    }

    /// A replica restarted from what it had made durable. It refuses to
    /// promise anyone for one lease (it may have granted one before the
    /// crash), and resumes a recovery the crash interrupted.
    pub fn recover(config: Config, id: NodeId, seed: u64, durable: DurableState) -> Result<Replica, ConfigError> {
        let recovering = durable.recovering;
        let mut replica = Replica::build(config, id, seed, durable)?;
        if recovering {
            replica.begin_recovery();
        }
        Ok(replica)
    }

    /// A replica that had state once and lost it (the shell found its
    /// initialization marker but no log, or the operator said `--rejoin`):
    /// it relearns its promise and accepted values from a majority before
    /// it votes again (`recovery.rs`). The first Ready persists
    /// `RecoveryBegun`, so a crash during recovery resumes it.
    pub fn rejoin(config: Config, id: NodeId, seed: u64) -> Result<Replica, ConfigError> {
        let mut replica = Replica::recover(config, id, seed, DurableState::default())?;
        if replica.config.injected_bug != InjectedBug::EmptyReplicaVotes {
            replica.out.persist.push(PersistOp::RecoveryBegun);
            replica.begin_recovery();
        }
        Ok(replica)
    }

    fn build(config: Config, id: NodeId, seed: u64, durable: DurableState) -> Result<Replica, ConfigError> {
        config.validate()?;
        let index = config
            .index_of(id)
            .ok_or_else(|| ConfigError(format!("node {id} is not in members {:?}", config.members)))?;
        let members = config.members.len();
        let grant = if config.injected_bug == InjectedBug::NoRestartQuarantine {
            LeaseGrant::expired()
        } else {
            LeaseGrant::quarantine(0, config.lease_ticks)
        };
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
            recovery: None,
            recovery_timeout: Timeout::new(config.catchup_retry_ticks),
            candidacy: true,
            hand_over_wanted: false,
            refused_for_lease: None,
            refused_for_lease_pre_vote: None,
            handed_over: None,
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
            wall_ms: 0,
            time_floor: durable.horizon,
            horizon_stored: durable.horizon,
            horizon_durable: durable.horizon,
            horizon_unsynced: VecDeque::new(),
            horizon_in_ready: None,
            self_pending: VecDeque::new(),
            self_unpersisted: VecDeque::new(),
            out: Ready::default(),
            spare: None,
            newly_chosen: Vec::new(),
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

    /// The slot a read arriving now must see applied (what [`Replica::read`]
    /// would register it at): every slot committed, and the new leader's
    /// recovered log. `None`: not the leader.
    pub fn read_index(&self) -> Option<Slot> {
        match &self.role {
            Role::Leader(leader) => Some(self.learner.commit().max(leader.recovery_end)),
            _ => None,
        }
    }

    /// As the leader, the latest time (Unix ms) an earlier leader may have
    /// judged a read at (`Leader::elected_floor`): a read this leader
    /// answers must be judged no earlier. `None`: not the leader.
    pub fn elected_floor(&self) -> Option<u64> {
        match &self.role {
            Role::Leader(leader) => Some(leader.elected_floor),
            _ => None,
        }
    }

    pub fn holds_lease(&self) -> bool {
        self.holds_lease_at(self.now)
    }

    /// Would this replica serve a lease read at tick `now` (its clock
    /// moved there first)? For checkers that look at a replica whose clock
    /// has not been advanced lately (a stalled node).
    pub fn holds_lease_at(&self, now: u64) -> bool {
        match &self.role {
            Role::Leader(l) => self.config.lease_reads && now.max(self.now) < l.lease_until_tick,
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
        let bytes: usize = commands.iter().map(Bytes::len).sum();
        // No command is longer than all of them together: the longest is
        // looked for only when that bound is over a batch's bytes.
        let longest = if bytes > self.config.batch_bytes_max {
            commands.iter().map(Bytes::len).max().unwrap_or(0)
        } else {
            bytes
        };
        self.proposal_queue(commands.len(), bytes, longest)?.push(commands, bytes);
        Ok(())
    }

    /// `propose(vec![command])` without the `Vec`: one command, queued
    /// after the others (see `ProposalQueue::push_one`). The node proposes
    /// each write this way.
    pub fn propose_one(&mut self, command: Bytes) -> Result<(), ProposeError> {
        let (count_max, bytes_max) = (self.config.batch_count_max, self.config.batch_bytes_max);
        let bytes = command.len();
        self.proposal_queue(1, bytes, bytes)?.push_one(command, bytes, count_max, bytes_max);
        Ok(())
    }

    /// The leader's queue, if it takes `count` more commands of `bytes` in
    /// all, the longest `longest` bytes; else why not, checked in this order:
    /// not the leader, a command over a batch's bytes, the queue's bounds.
    fn proposal_queue(
        &mut self,
        count: usize,
        bytes: usize,
        longest: usize,
    ) -> Result<&mut ProposalQueue, ProposeError> {
        let Role::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader { leader: self.leader_hint });
        };
        if longest > self.config.batch_bytes_max {
            return Err(ProposeError::TooLarge);
        }
        if leader.queue.len() + count > self.config.proposal_queue_max
            || leader.queue.bytes() + bytes > self.config.proposal_queue_bytes_max
        {
            return Err(ProposeError::QueueFull);
        }
        Ok(&mut leader.queue)
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
        let confirm_round = if lease || self.config.injected_bug == InjectedBug::ReadIndexWithoutRound {
            0
        } else {
            leader.read_round_due = true;
            leader.heartbeat_round + 1
        };
        leader.reads.push_back(super::proposer::PendingRead { id, read_index, confirm_round });
        self.release_reads();
        Ok(())
    }

    /// The shell's word on whether this replica is fit to lead, e.g. the
    /// node whose disk is behind (`node::Node::accepting` false): as a
    /// leader it would hold every request until the disk caught up.
    /// `campaign` false: an election timeout starts no election (the
    /// replica still votes, and forgets its leader as usual). `lead` false:
    /// a leader steps down at its next heartbeat round
    /// (`StepDownReason::HandedOver`) if the other members it heard from in
    /// its ballot, each within the shortest election timeout, make a
    /// majority of the group without it, so they can elect a leader at
    /// once; else it leads on. Both hold until the shell
    /// says otherwise; set them before [`Replica::fire_timeouts`].
    pub fn set_fitness(&mut self, campaign: bool, lead: bool) {
        self.candidacy = campaign;
        self.hand_over_wanted = !lead;
    }

    /// Advance logical time by one tick and fire what is due.
    pub fn tick(&mut self) {
        self.set_now(self.now + 1);
        self.fire_timeouts();
    }

    /// Move the clock to `now` ticks without firing anything. The shell
    /// calls it before every input, so that what the core stamps (a lease
    /// grant) and judges (a lease read) uses the current time, even after
    /// an executor stall; timeouts wait for [`Replica::fire_timeouts`],
    /// which the shell calls only after working through the inputs that
    /// arrived during the stall. The clock never goes backwards.
    pub fn set_now(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Fire every timeout whose deadline has passed, once each. True if
    /// any fired.
    pub fn fire_timeouts(&mut self) -> bool {
        let now = self.now;
        let mut fired = false;
        if self.is_leader() {
            if self.heartbeat_timeout.fired(now) {
                self.on_heartbeat_timeout();
                fired = true;
            }
        } else if self.election_timeout.fired(now) {
            self.on_election_timeout();
            fired = true;
        }
        if self.catchup_timeout.fired(now) {
            self.on_catchup_timeout();
            fired = true;
        }
        if self.recovery_timeout.fired(now) {
            self.on_recovery_timeout();
            fired = true;
        }
        fired
    }

    /// The earliest tick at which [`Replica::fire_timeouts`] fires
    /// anything (`None`: nothing armed). Before it, firing does nothing,
    /// so a shell may sleep until then instead of ticking in between; any
    /// input may move it earlier (say, taking office arms the heartbeat).
    pub fn next_timeout_tick(&self) -> Option<u64> {
        let role = if self.is_leader() { &self.heartbeat_timeout } else { &self.election_timeout };
        [role, &self.catchup_timeout, &self.recovery_timeout].iter().filter_map(|t| t.deadline()).min()
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
        let max_round = message.max_round();
        message.check_well_formed_at(max_round).map_err(StepError::Malformed)?;
        if max_round > self.max_round_seen.saturating_add(ROUND_JUMP_MAX) {
            return Err(StepError::Malformed("ballot round jumps too far above any round seen"));
        }
        self.handle(from_index, message);
        Ok(())
    }

    /// Everything in Ready `number` (and before) is durable.
    pub fn on_persisted(&mut self, number: u64) {
        self.horizon_persisted(number);
        while self.self_pending.front().is_some_and(|(n, _)| *n <= number) {
            let (_, message) = self.self_pending.pop_front().expect("front exists");
            self.handle(self.index, message);
        }
        // Our own horizon may now complete a majority (`paxos::time`).
        self.release_reads();
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

    /// Replies from our own acceptor wait for the persist of Ready `number`
    /// (or of a later one): not only for an earlier Ready's, whose own
    /// persist the shell is already making durable.
    pub fn awaiting_persist_of(&self, number: u64) -> bool {
        self.self_pending.back().is_some_and(|(n, _)| *n >= number)
    }

    /// Whether `ready()` may have anything to hand out. False means it
    /// would return an empty `Ready` (and a shell may skip the call, as
    /// raft-rs's `has_ready` lets it); true means it may not be empty.
    /// The node checks that promise at every `ready()`, so the simulator's
    /// runs check it too.
    pub fn has_ready(&self) -> bool {
        let proposals = match &self.role {
            Role::Leader(leader) => {
                leader.read_round_due
                    || (leader.in_flight.len() < self.config.window_slots
                        && (!leader.queue.is_empty() || leader.stamp_due))
            }
            _ => false,
        };
        proposals
            || !self.out.is_empty()
            || !self.self_unpersisted.is_empty()
            || self.horizon_in_ready.is_some()
            || self.learner.commit() > self.persisted_commit
            || self.learner.emitted() < self.learner.commit()
    }

    /// Collect the output produced since the last call.
    pub fn ready(&mut self) -> Ready {
        while let Some(message) = self.self_unpersisted.pop_front() {
            self.handle(self.index, message);
        }
        self.flush_proposals();
        self.flush_read_round();
        if self.learner.commit() > self.persisted_commit {
            self.persisted_commit = self.learner.commit();
            self.out.persist.push(PersistOp::Commit { commit: self.persisted_commit });
        }
        self.learner.take_committed_into(&mut self.out.committed);
        self.ready_number += 1;
        if let Some(ms) = self.horizon_in_ready.take() {
            self.horizon_unsynced.push_back((self.ready_number, ms));
        }
        let spare = self.spare.take().unwrap_or_default();
        let mut ready = std::mem::replace(&mut self.out, spare);
        ready.number = self.ready_number;
        ready
    }

    /// Hand back a `Ready` the shell is done with: the next `ready()`
    /// reuses its buffers instead of allocating new ones (a shell that
    /// drains the vectors rather than moving them out saves an allocation
    /// per vector per input). Whatever it still holds is dropped.
    pub fn recycle(&mut self, mut ready: Ready) {
        let Ready { number, persist, send_now, send_after_persist, committed, reads, aborted, snapshot, events } =
            &mut ready;
        *number = 0;
        persist.clear();
        send_now.clear();
        send_after_persist.clear();
        committed.clear();
        reads.clear();
        aborted.clear();
        *snapshot = None;
        events.clear();
        self.spare = Some(ready);
    }

    // ---- dispatch ---------------------------------------------------------

    fn handle(&mut self, from: usize, message: Message) {
        // Pre-vote ballots are hypothetical: they must not inflate rounds.
        let hypothetical = matches!(message, Message::PreVote(_) | Message::PreVoteReply(_));
        if let Some(ballot) = message.ballot().filter(|_| !hypothetical) {
            self.max_round_seen = self.max_round_seen.max(ballot.round);
        }
        if self.recovery_blocks(&message) {
            // Not a vote, but the leader's commit knowledge still counts.
            if let Message::Accept(m) = message {
                if m.ballot >= self.acceptor.promised() {
                    self.on_leader_contact(from, m.ballot, m.commit);
                }
            }
            return;
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
            Message::RecoveryQuery(m) => self.on_recovery_query(from, m),
            Message::RecoveryReply(m) => self.on_recovery_reply(from, m),
            Message::HandOver(m) => self.on_hand_over(from, m),
        }
    }

    pub(super) fn send(&mut self, to_index: usize, message: Message) {
        let to = self.config.members[to_index];
        self.out.send_now.push(Envelope { from: self.id, to, message });
    }

    /// Send a reply that reports durable state: after this Ready is persisted.
    pub(super) fn send_after_persist(&mut self, to_index: usize, message: Message) {
        if to_index == self.index {
            if self.config.injected_bug == InjectedBug::CountOwnVoteBeforePersist {
                self.self_unpersisted.push_back(message);
                return;
            }
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
        // The last peer gets the message itself, the others a clone.
        let me = self.index;
        let Some(last) = (0..self.config.members.len()).rev().find(|&i| i != me) else { return };
        for index in (0..last).filter(|&i| i != me) {
            self.send(index, message.clone());
        }
        self.send(last, message);
    }

    pub(super) fn reset_election_timeout(&mut self) {
        let ticks =
            self.rng.range_inclusive(self.config.election_timeout_min_ticks, self.config.election_timeout_max_ticks);
        self.election_timeout.reset_to(self.now, ticks);
    }
}
