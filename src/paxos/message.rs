//! Values and the typed messages replicas exchange (STYLE item 5: one struct
//! per message kind, every field meaningful).
//!
//! Terminology follows "Paxos Made Moderately Complex" (van Renesse): Phase 1
//! is Prepare/Promise, Phase 2 is Accept/Accepted. `commit` fields carry the
//! sender's *commit index*: every slot below it is known chosen.

use std::rc::Rc;

use bytes::Bytes;

use super::ballot::{Ballot, NodeId, Slot};

/// What one slot of the log holds: a no-op (hole filler chosen by a new
/// leader) or a batch of opaque client commands, applied in order, with
/// the time the leader sealed it (`stamp`: Unix milliseconds of the
/// leader's clock, never below an earlier stamp or any time a read was
/// judged at; 0 from builds before stamps, see `replica.rs` "Time").
///
/// A batch is shared, not copied: a value travels to every peer, into the
/// acceptor, the learner and the committed output, and each of those is a
/// reference-count increment, whatever the batch size. It holds the `Vec`
/// its commands were proposed in (an `Rc<[Bytes]>` copied every batch into
/// a new allocation and freed the `Vec`: 3% of a core-compare round), and
/// the value is 16 bytes, so the per-slot maps move less. The count is an
/// `Rc`'s, not an `Arc`'s: a replica lives on its shard's thread (thread
/// per core), and the atomic increments and decrements of an `Arc`, some
/// nine of each per slot across three replicas, cost about 7% of a round
/// of 16 slots of 64 commands (`benches/core-compare`, harness included).
/// So a `Value`, and with it every message, persist op and `Replica`, is
/// not `Send`: build them on the thread that uses them.
#[derive(Clone, Debug, Eq)]
pub enum Value {
    Noop,
    Batch { stamp: u64, commands: Rc<Vec<Bytes>> },
}

/// By content, but the same shared batch is equal without reading it: the
/// core compares a learned value with the accepted one for every slot,
/// and they are nearly always one `Rc` (`Rc<Vec<Bytes>>`'s own `==`
/// compares every command's bytes; 10% of the core's time at 64 commands
/// per slot, issue 11).
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Noop, Value::Noop) => true,
            (Value::Batch { stamp: s1, commands: c1 }, Value::Batch { stamp: s2, commands: c2 }) => {
                s1 == s2 && (Rc::ptr_eq(c1, c2) || c1[..] == c2[..])
            }
            _ => false,
        }
    }
}

/// By content, as `==` is.
impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Value::Noop => state.write_u8(0),
            Value::Batch { stamp, commands } => {
                state.write_u8(1);
                stamp.hash(state);
                commands[..].hash(state);
            }
        }
    }
}

impl Value {
    /// Payload bytes (what batching limits count).
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Noop => 0,
            Value::Batch { commands, .. } => commands.iter().map(Bytes::len).sum(),
        }
    }

    /// A batch without a stamp (stamp 0).
    pub fn batch(commands: Vec<Bytes>) -> Value {
        Value::Batch { stamp: 0, commands: Rc::new(commands) }
    }

    /// A batch sealed at `stamp`.
    pub fn stamped(stamp: u64, commands: Vec<Bytes>) -> Value {
        Value::Batch { stamp, commands: Rc::new(commands) }
    }

    pub fn commands(&self) -> &[Bytes] {
        match self {
            Value::Noop => &[],
            Value::Batch { commands, .. } => commands,
        }
    }

    /// The leader's time when it sealed the batch (0: none, or a no-op).
    pub fn stamp(&self) -> u64 {
        match self {
            Value::Noop => 0,
            Value::Batch { stamp, .. } => *stamp,
        }
    }
}

/// A message with its addressing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    PreVote(PreVote),
    PreVoteReply(PreVoteReply),
    Prepare(Prepare),
    Promise(Promise),
    Accept(Accept),
    Accepted(Accepted),
    Reject(Reject),
    Heartbeat(Heartbeat),
    HeartbeatReply(HeartbeatReply),
    CatchUp(CatchUp),
    CatchUpReply(CatchUpReply),
    SnapshotChunk(SnapshotChunk),
    FetchSnapshot(FetchSnapshot),
    RecoveryQuery(RecoveryQuery),
    RecoveryReply(RecoveryReply),
    HandOver(HandOver),
}

/// Rounds above this are refused as malformed: every legitimate campaign
/// adds one to the highest round it has seen, so a cluster would need 2^62
/// elections to get here, and a peer that claims more is broken.
pub const ROUND_MAX: u64 = 1 << 62;

/// A message whose ballot round is more than this above the highest round
/// the receiver has seen is refused: a correct cluster moves rounds up by
/// one per campaign, and a single forged message must not push them near
/// [`ROUND_MAX`], where no campaign could go higher.
pub const ROUND_JUMP_MAX: u64 = 1 << 32;

/// Every [`AcceptedEntry`] a [`Promise`] or [`RecoveryReply`] reports must
/// lie in `[commit, commit + ACCEPTED_AHEAD_MAX)` of the message's `commit`
/// (the sender's commit index); a message with one outside is refused as
/// malformed.
///
/// Why: a correct acceptor reports only what it accepted at or above its
/// own commit index (`Acceptor::on_prepare`, `accepted_from`), and it
/// accepts only slots a leader proposed; a leader keeps at most
/// `window_slots` slots in flight (at most `WINDOW_SLOTS_MAX`, 1/16 of this
/// bound, `Config::validate`), so what an acceptor holds runs about a
/// window above its commit index, plus whatever a lagging acceptor has yet
/// to learn chosen. A million slots is far beyond both. A candidate
/// re-proposes every slot up to the highest one reported
/// (`become_leader`): without the bound one forged entry at slot 2^60
/// would make it allocate 2^60 slots. With it, and a candidate that
/// abandons its campaign when a promiser's commit index is beyond what it
/// learned (`on_promise`), a candidate allocates at most about this many.
/// Refusing a message only costs liveness (the sender's answer does not
/// count), never safety.
pub const ACCEPTED_AHEAD_MAX: u64 = 1 << 20;

impl Message {
    /// A short stable name, for traces and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote(_) => "pre_vote",
            Message::PreVoteReply(_) => "pre_vote_reply",
            Message::Prepare(_) => "prepare",
            Message::Promise(_) => "promise",
            Message::Accept(_) => "accept",
            Message::Accepted(_) => "accepted",
            Message::Reject(_) => "reject",
            Message::Heartbeat(_) => "heartbeat",
            Message::HeartbeatReply(_) => "heartbeat_reply",
            Message::CatchUp(_) => "catch_up",
            Message::CatchUpReply(_) => "catch_up_reply",
            Message::SnapshotChunk(_) => "snapshot_chunk",
            Message::FetchSnapshot(_) => "fetch_snapshot",
            Message::RecoveryQuery(_) => "recovery_query",
            Message::RecoveryReply(_) => "recovery_reply",
            Message::HandOver(_) => "hand_over",
        }
    }

    /// The ballot the message speaks for, if any (for traces).
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Message::PreVote(m) => Some(m.ballot),
            Message::PreVoteReply(m) => Some(m.ballot),
            Message::Prepare(m) => Some(m.ballot),
            Message::Promise(m) => Some(m.ballot),
            Message::Accept(m) => Some(m.ballot),
            Message::Accepted(m) => Some(m.ballot),
            Message::Reject(m) => Some(m.ballot),
            Message::Heartbeat(m) => Some(m.ballot),
            Message::HeartbeatReply(m) => Some(m.ballot),
            Message::HandOver(m) => Some(m.ballot),
            Message::CatchUp(_)
            | Message::CatchUpReply(_)
            | Message::SnapshotChunk(_)
            | Message::FetchSnapshot(_)
            | Message::RecoveryQuery(_)
            | Message::RecoveryReply(_) => None,
        }
    }

    /// The highest ballot round the message carries (the one it speaks for
    /// and the ones it reports), 0 if none: for range checks.
    pub fn max_round(&self) -> u64 {
        let own = self.ballot().map_or(0, |b| b.round);
        let entries = |entries: &[AcceptedEntry]| entries.iter().map(|e| e.ballot.round).max().unwrap_or(0);
        let reported = match self {
            Message::Promise(m) => entries(&m.accepted),
            Message::Reject(m) => m.promised.round,
            Message::PreVoteReply(m) => m.promised.round,
            Message::RecoveryReply(m) => m.promised.round.max(entries(&m.accepted)),
            _ => 0,
        };
        own.max(reported)
    }

    /// Reject what no correct peer sends: slot ranges that overflow, a
    /// ballot round at the top of the range (a campaign must be able to go
    /// one higher), or accepted values reported outside
    /// `[commit, commit + ACCEPTED_AHEAD_MAX)`. The replica drops such a
    /// message and reports it.
    pub fn check_well_formed(&self) -> Result<(), &'static str> {
        self.check_well_formed_at(self.max_round())
    }

    /// `check_well_formed`, given the message's `max_round()` (the replica
    /// needs it too: one walk of the message instead of two).
    pub(super) fn check_well_formed_at(&self, max_round: u64) -> Result<(), &'static str> {
        if max_round > ROUND_MAX {
            return Err("ballot round out of range");
        }
        let reported_in_reach = |commit: Slot, entries: &[AcceptedEntry]| {
            entries.iter().all(|e| e.slot.checked_sub(commit).is_some_and(|ahead| ahead < ACCEPTED_AHEAD_MAX))
        };
        let reach_ok = match self {
            Message::Promise(m) => reported_in_reach(m.commit, &m.accepted),
            Message::RecoveryReply(m) => reported_in_reach(m.commit, &m.accepted),
            _ => true,
        };
        if !reach_ok {
            return Err("an accepted slot below the sender's commit index or ACCEPTED_AHEAD_MAX above it");
        }
        // Handlers walk `(first..).zip(values)`, which steps one past the
        // last slot (even for no values), so that end must stay below
        // u64::MAX, as `storage::record` requires of WAL records.
        let fits = |first: Slot, len: u64| first.checked_add(len).is_some_and(|end| end < u64::MAX);
        let ok = match self {
            Message::Accept(m) => fits(m.first_slot, m.values.len() as u64),
            Message::Accepted(m) => fits(m.first_slot, m.count),
            Message::CatchUpReply(m) => fits(m.first_slot, m.values.len() as u64),
            Message::SnapshotChunk(m) => {
                m.offset.checked_add(m.data.len() as u64).is_some_and(|end| end <= m.total_bytes)
            }
            Message::Promise(m) => m.accepted.iter().all(|e| e.slot < u64::MAX),
            Message::RecoveryReply(m) => m.accepted.iter().all(|e| e.slot < u64::MAX),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err("slot range or ballot out of range")
        }
    }

    /// The first slot the message is about, if any (for traces).
    pub fn slot(&self) -> Option<Slot> {
        match self {
            Message::Prepare(m) => Some(m.first_unchosen),
            Message::Accept(m) => Some(m.first_slot),
            Message::Accepted(m) => Some(m.first_slot),
            Message::CatchUp(m) => Some(m.first_slot),
            Message::CatchUpReply(m) => Some(m.first_slot),
            Message::SnapshotChunk(m) => Some(m.slot),
            Message::FetchSnapshot(m) => Some(m.slot),
            _ => None,
        }
    }
}

/// "Would you promise `ballot` if I asked?" A dry run of Prepare that changes
/// no state (the Raft thesis's PreVote, section 9.6): a replica cut off in a
/// minority keeps failing pre-votes instead of inflating ballots, so when it
/// rejoins it does not depose a healthy leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreVote {
    pub ballot: Ballot,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreVoteReply {
    pub ballot: Ballot,
    pub granted: bool,
    /// The replier's promised ballot, so a refused candidate can pick a larger round.
    pub promised: Ballot,
}

/// Phase 1a for the whole log suffix starting at `first_unchosen`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepare {
    pub ballot: Ballot,
    /// The candidate's commit index: it asks about every slot from here on.
    pub first_unchosen: Slot,
}

/// Phase 1b. Sent only after the promise is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promise {
    pub ballot: Ballot,
    /// The acceptor's commit index: slots below it are chosen.
    pub commit: Slot,
    /// The chosen values of slots `first_unchosen ..` (the Prepare's), as
    /// far as the acceptor knows them, at most `catchup_chunk_slots`. A
    /// candidate that still lacks some slot below `commit` after this is too
    /// far behind to lead: it abandons the campaign and catches up first.
    pub chosen: Vec<Value>,
    /// Every value the acceptor accepted at a slot >= max(first_unchosen,
    /// commit), with the ballot it was accepted in. Ascending by slot.
    pub accepted: Vec<AcceptedEntry>,
    /// The highest time horizon the acceptor stored (see [`Heartbeat`]): a
    /// new leader stamps nothing below the highest reported.
    pub horizon: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedEntry {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: Value,
}

/// Phase 2a for consecutive slots `first_slot ..`, one value each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    pub ballot: Ballot,
    pub first_slot: Slot,
    pub values: Vec<Value>,
    /// The leader's commit index (commit knowledge piggybacked).
    pub commit: Slot,
}

/// Phase 2b for `first_slot .. first_slot + count`. Sent only after the
/// accepted values are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub ballot: Ballot,
    pub first_slot: Slot,
    pub count: u64,
}

/// A refusal of a Prepare, Accept or Heartbeat for `ballot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub ballot: Ballot,
    pub promised: Ballot,
    pub reason: RejectReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The acceptor promised a higher ballot.
    HigherBallot,
    /// The acceptor granted a lease to a live leader that has not expired.
    LeaseHeld,
}

/// Leader liveness, lease renewal, commit knowledge and read-index
/// confirmation, all in one small message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub ballot: Ballot,
    pub commit: Slot,
    /// Heartbeat round number, echoed in the reply.
    pub round: u64,
    /// The leader's time horizon (Unix ms): it judges reads at no time
    /// beyond the horizon a majority has stored durably, and every later
    /// leader learns it in Phase 1 and stamps no batch below it.
    pub horizon: u64,
}

/// The leader of `ballot` has stepped down because its shell found it
/// unfit to lead (`StepDownReason::HandedOver`), and names `to`, the member
/// it heard from with the highest commit index, to campaign at once
/// (Raft's TimeoutNow, thesis section 3.10). Every receiver whose lease
/// grant is held by exactly `ballot` drops it: the lease protected that
/// leader's local reads, and it serves none after stepping down, which it
/// did before sending this. Without it the members would refuse every
/// candidate until the grant ran out and then wait out an election
/// timeout, with no leader meanwhile. `commit` is that leader's commit
/// index: a member learns from it what it accepted below it was chosen
/// before it campaigns (as from a heartbeat), else a successor whose
/// commit index lagged the leader's last commits, which the leader may
/// have compacted away, gave its campaign up to catch up first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOver {
    pub ballot: Ballot,
    pub to: NodeId,
    pub commit: Slot,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub ballot: Ballot,
    pub round: u64,
    /// The follower's commit index.
    pub commit: Slot,
    /// The highest horizon the follower has stored durably.
    pub horizon: u64,
}

/// "Send me chosen values from `first_slot` on."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    pub first_slot: Slot,
}

/// Chosen values for `first_slot ..` (at most `catchup_chunk_slots`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUpReply {
    pub first_slot: Slot,
    pub values: Vec<Value>,
    /// The sender's commit index, so the receiver knows whether to ask again.
    pub commit: Slot,
}

/// A piece of the sender's latest state-machine snapshot, which covers
/// every slot below `slot`. Sent to a replica that asked for slots the
/// sender has compacted away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub slot: Slot,
    pub total_bytes: u64,
    pub offset: u64,
    /// At most `snapshot_chunk_bytes`.
    pub data: Bytes,
}

/// "Send me the snapshot at `slot` from byte `offset` on."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSnapshot {
    pub slot: Slot,
    pub offset: u64,
}

/// "I lost my durable state: tell me yours." Sent by a recovering replica
/// (see `recovery.rs`); `nonce` is fresh per recovery, so that only answers
/// given after the state was lost count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryQuery {
    pub nonce: u64,
}

/// A member's acceptor state, for a recovering replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReply {
    pub nonce: u64,
    /// The replier is itself recovering: its answer does not count.
    pub recovering: bool,
    /// The replier's promised ballot (in memory, durable or not).
    pub promised: Ballot,
    /// The replier's commit index: slots below it are chosen.
    pub commit: Slot,
    /// Every value the replier accepted at a slot >= `commit`. Ascending by slot.
    pub accepted: Vec<AcceptedEntry>,
    /// The replier's highest stored time horizon.
    pub horizon: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{Config, Replica, StepError};

    fn promise(commit: Slot, slots: &[Slot]) -> Promise {
        let entry = |slot| AcceptedEntry { slot, ballot: Ballot::new(1, 3), value: Value::Noop };
        Promise {
            ballot: Ballot::new(1, 1),
            commit,
            chosen: vec![],
            accepted: slots.iter().map(|&s| entry(s)).collect(),
            horizon: 0,
        }
    }

    #[test]
    fn values_are_equal_by_content_whether_or_not_they_share_a_batch() {
        let a = Value::stamped(5, vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")]);
        let copy = Value::stamped(5, vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")]);
        assert_eq!(a, a.clone());
        assert_eq!(a, copy);
        assert_ne!(a, Value::stamped(6, vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")]));
        assert_ne!(a, Value::stamped(5, vec![Bytes::from_static(b"x"), Bytes::from_static(b"z")]));
        assert_ne!(a, Value::stamped(5, vec![Bytes::from_static(b"x")]));
        assert_ne!(a, Value::Noop);
        assert_eq!(Value::Noop, Value::Noop);
    }

    fn recovery_reply(commit: Slot, slots: &[Slot]) -> RecoveryReply {
        let Promise { accepted, .. } = promise(commit, slots);
        RecoveryReply { nonce: 1, recovering: false, promised: Ballot::new(1, 3), commit, accepted, horizon: 0 }
    }

    /// Found by the paxos_step fuzz target: a Promise reporting an accepted
    /// slot far above the candidate's log made `become_leader` re-propose
    /// every slot up to it at once (a capacity overflow near u64::MAX, out
    /// of memory below). Reported slots must lie in
    /// `[commit, commit + ACCEPTED_AHEAD_MAX)`; the same rule for RecoveryReply.
    #[test]
    fn accepted_entries_must_lie_within_reach_of_the_commit_index() {
        let why = "an accepted slot below the sender's commit index or ACCEPTED_AHEAD_MAX above it";
        let far = ACCEPTED_AHEAD_MAX;
        for (commit, slots, ok) in [
            (0, vec![], true),
            (0, vec![0, far - 1], true),
            (7, vec![7, 7 + far - 1], true),
            (0, vec![far], false),
            (0, vec![3, u64::MAX - 1], false),
            (5, vec![4], false),
            (u64::MAX - far, vec![u64::MAX - 1], true),
        ] {
            let expected = if ok { Ok(()) } else { Err(why) };
            let promise = Message::Promise(promise(commit, &slots));
            assert_eq!(promise.check_well_formed(), expected, "{promise:?}");
            let reply = Message::RecoveryReply(recovery_reply(commit, &slots));
            assert_eq!(reply.check_well_formed(), expected, "{reply:?}");
            if !ok {
                let mut replica = Replica::new(Config::new(vec![1, 2, 3]), 1, 7).unwrap();
                assert_eq!(replica.step(2, promise), Err(StepError::Malformed(why)));
                assert_eq!(replica.step(3, reply), Err(StepError::Malformed(why)));
            }
        }
        // Within reach but at u64::MAX: a slot range that ends past u64::MAX.
        let top = Message::Promise(promise(u64::MAX - 1, &[u64::MAX]));
        assert_eq!(top.check_well_formed(), Err("slot range or ballot out of range"));
    }

    /// Found by the paxos_step fuzz target: an Accept at slot u64::MAX,
    /// even with no values, made the acceptor's `(first_slot..)` overflow.
    #[test]
    fn slot_ranges_must_end_below_u64_max() {
        let ballot = Ballot::new(1, 2);
        let accept = |first_slot, values| Message::Accept(Accept { ballot, first_slot, values, commit: 0 });
        let catch_up = |first_slot| Message::CatchUpReply(CatchUpReply { first_slot, values: vec![], commit: 0 });
        let accepted = |first_slot, count| Message::Accepted(Accepted { ballot, first_slot, count });
        for message in [accept(u64::MAX, vec![]), accept(u64::MAX - 1, vec![Value::Noop]), catch_up(u64::MAX)] {
            assert_eq!(message.check_well_formed(), Err("slot range or ballot out of range"), "{message:?}");
            let mut replica = Replica::new(Config::new(vec![1, 2, 3]), 1, 7).unwrap();
            assert_eq!(replica.step(2, message), Err(StepError::Malformed("slot range or ballot out of range")));
        }
        assert!(accepted(u64::MAX - 1, 1).check_well_formed().is_err());
        assert_eq!(accept(u64::MAX - 2, vec![Value::Noop]).check_well_formed(), Ok(()));
        assert_eq!(accepted(u64::MAX - 2, 1).check_well_formed(), Ok(()));
    }
}
