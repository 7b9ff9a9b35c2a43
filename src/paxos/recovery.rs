//! A replica that lost its durable state (a wiped or replaced disk, a
//! corrupt log moved aside) must not vote as if it were new: it may have
//! promised a ballot, or accepted a value that was chosen with its vote,
//! and forgetting either can lose an acknowledged write ("Paxos Made Live"
//! section 5.1 keeps such a replica out of the votes for the same reason).
//!
//! The recovering replica:
//! 1. neither promises nor accepts (PreVote: refused; Prepare, Accept:
//!    unanswered), and never campaigns; it still follows the leader,
//!    answers heartbeats (granting a lease only restricts itself) and
//!    catches up;
//! 2. asks every member for its acceptor state ([`RecoveryQuery`], with a
//!    nonce fresh for this recovery, so only answers given after the loss
//!    count) until it holds answers from every other member, or, once
//!    `election_timeout_max_ticks` have passed, from a majority of the
//!    membership counted among the *others* and only among those that are
//!    not recovering themselves (either way at least a majority: a group
//!    of one that lost its state has no one to relearn from and never
//!    votes again, `server/` refuses to start it);
//! 3. learns the chosen log up to the highest commit index reported;
//! 4. adopts the highest promised ballot reported, and per slot above its
//!    commit index the highest-ballot accepted value reported (as Phase 1
//!    would), persists them, then `RecoveryDone`, and votes again.
//!
//! Why this is enough: a value chosen with the lost vote was accepted by a
//! majority Q; Q without this replica has at least `majority - 1` members,
//! and the answering majority has `majority` members among the `n - 1`
//! others, so they share a member (2 * majority - 1 > n - 1), which reports
//! the value (accepted) or knows it chosen (learned in step 3). A ballot
//! the replica promised before the loss came from a proposer whose own
//! acceptor holds that promise in memory while the campaign lives; waiting
//! for every member first makes that proposer answer. The residual case:
//! a Prepare that reached this replica just before its disk was lost, from
//! a proposer that does not answer within the grace period while its
//! Prepare is still in flight to the answering majority (n >= 5 only; with
//! three members the answering majority is both others). Membership change
//! would close it; we name it in the README instead.
//!
//! A replica that never had state (a brand-new cluster) does not recover:
//! the shell tells the two apart by an on-disk marker written at first
//! initialization (or the operator's `--rejoin`).

use super::ballot::{Ballot, NodeSet, Slot};
use super::message::*;
use super::persist::PersistOp;
use super::replica::{Event, Replica};
use super::slotmap::SlotMap;

/// What a recovering replica has learned so far.
#[derive(Debug)]
pub struct Recovery {
    /// Answers count only if they echo this.
    pub nonce: u64,
    /// The tick recovery started; a majority suffices after the grace period.
    pub started_at_tick: u64,
    /// Members (by index) whose non-recovering answer arrived.
    pub answered: NodeSet,
    /// The highest promised ballot reported.
    pub promised: Ballot,
    /// The highest commit index reported: the log is learned up to it.
    pub commit_target: Slot,
    /// Per slot, the highest-ballot accepted value reported.
    pub accepted: SlotMap<(Ballot, Value)>,
    /// The highest time horizon reported.
    pub horizon: u64,
}

impl Replica {
    pub fn is_recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// Enter the recovering state (at construction).
    pub(super) fn begin_recovery(&mut self) {
        let nonce = self.rng.next_u64();
        self.recovery = Some(Recovery {
            nonce,
            started_at_tick: self.now,
            answered: NodeSet::default(),
            promised: self.acceptor.promised(),
            commit_target: 0,
            accepted: SlotMap::new(),
            horizon: 0,
        });
        self.out.events.push(Event::RecoveryStarted);
        self.election_timeout.stop();
        self.send_recovery_query();
    }

    fn send_recovery_query(&mut self) {
        let Some(recovery) = &self.recovery else { return };
        let query = RecoveryQuery { nonce: recovery.nonce };
        self.broadcast(Message::RecoveryQuery(query));
        self.recovery_timeout.reset(self.now);
    }

    pub(super) fn on_recovery_timeout(&mut self) {
        if self.recovery.is_some() {
            self.send_recovery_query();
            self.maybe_finish_recovery();
        }
    }

    pub(super) fn on_recovery_query(&mut self, from: usize, m: RecoveryQuery) {
        let commit = self.learner.commit();
        let accepted = self.acceptor.accepted_from(commit);
        let reply = RecoveryReply {
            nonce: m.nonce,
            recovering: self.recovery.is_some(),
            promised: self.acceptor.promised(),
            commit,
            accepted,
            horizon: self.horizon_stored,
        };
        self.send(from, Message::RecoveryReply(reply));
    }

    pub(super) fn on_recovery_reply(&mut self, from: usize, m: RecoveryReply) {
        self.max_round_seen = self.max_round_seen.max(m.promised.round);
        let Some(recovery) = &mut self.recovery else { return };
        if m.nonce != recovery.nonce || m.recovering {
            return;
        }
        recovery.answered.insert(from);
        recovery.promised = recovery.promised.max(m.promised);
        recovery.commit_target = recovery.commit_target.max(m.commit);
        recovery.horizon = recovery.horizon.max(m.horizon);
        for entry in m.accepted {
            match recovery.accepted.get(&entry.slot) {
                Some((ballot, _)) if *ballot >= entry.ballot => {}
                _ => {
                    recovery.accepted.insert(entry.slot, (entry.ballot, entry.value));
                }
            }
        }
        self.note_peer_commit(from, m.commit);
        self.maybe_finish_recovery();
    }

    /// Finish once enough members answered and the log is learned.
    ///
    /// Inlined: called at every commit, and a check when not recovering.
    #[inline]
    pub(super) fn maybe_finish_recovery(&mut self) {
        if self.recovery.is_some() {
            self.finish_recovery_if_done();
        }
    }

    fn finish_recovery_if_done(&mut self) {
        let Some(recovery) = &self.recovery else { return };
        let others = self.config.members.len() - 1;
        let grace_over = self.now >= recovery.started_at_tick + self.config.election_timeout_max_ticks;
        // A majority among the others, always: with every other member
        // answered that is all of them (n >= 3), and a group of one, which
        // has no other member, never finishes (nothing to relearn from).
        let answered = recovery.answered.len();
        let enough = answered >= self.config.majority() && (answered == others || grace_over);
        if !enough || self.learner.commit() < recovery.commit_target {
            return;
        }
        let recovery = self.recovery.take().expect("checked above");
        self.recovery_timeout.stop();
        let commit = self.learner.commit();
        for (slot, (ballot, value)) in recovery.accepted.range(commit..) {
            if self.learner.is_chosen(*slot) {
                continue;
            }
            self.acceptor.adopt_accepted(*slot, *ballot, value.clone());
            self.out.persist.push(PersistOp::Accept {
                ballot: *ballot,
                first_slot: *slot,
                values: vec![value.clone()],
            });
        }
        self.store_horizon(recovery.horizon);
        self.note_reported_horizon(recovery.horizon);
        let promised = recovery.promised.max(self.acceptor.promised());
        self.acceptor.adopt_promise(promised);
        self.max_round_seen = self.max_round_seen.max(promised.round);
        self.out.persist.push(PersistOp::Promise { ballot: promised });
        self.out.persist.push(PersistOp::RecoveryDone);
        self.out.events.push(Event::Recovered { promised, commit });
        self.reset_election_timeout();
    }

    /// Does recovery forbid answering this message as an acceptor?
    pub(super) fn recovery_blocks(&self, message: &Message) -> bool {
        self.recovery.is_some() && matches!(message, Message::Prepare(_) | Message::Accept(_))
    }
}
