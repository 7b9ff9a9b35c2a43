//! The acceptor's side of the replica, run by every member (the leader
//! included): answering PreVote, Prepare, Accept and Heartbeat, granting
//! leases, and learning commit knowledge from the leader's messages.
//! The pure accept/promise decisions live in `acceptor.rs`; this file turns
//! them into persist ops and replies ("Paxos Made Simple" section 2.2).

use super::acceptor::{AcceptDecision, PrepareDecision, Stored};
use super::ballot::{Ballot, Slot};
use super::message::*;
use super::persist::PersistOp;
use super::proposer::Role;
use super::replica::{Event, Replica, StepDownReason};

impl Replica {
    pub(super) fn on_pre_vote(&mut self, from: usize, m: PreVote) {
        let granted = self.recovery.is_none() && self.acceptor.would_promise(self.now, m.ballot);
        if !granted && self.recovery.is_none() && m.ballot > self.acceptor.promised() {
            // Refused for a lease this acceptor granted: asked again if
            // that lease is given up (`on_hand_over`).
            self.refused_for_lease_pre_vote = Some((from, m.clone()));
        }
        let promised = self.acceptor.promised();
        self.send(from, Message::PreVoteReply(PreVoteReply { ballot: m.ballot, granted, promised }));
    }

    pub(super) fn on_prepare(&mut self, from: usize, m: Prepare) {
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
                promise.horizon = self.horizon_stored;
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
                    if reason == RejectReason::LeaseHeld {
                        self.refused_for_lease = Some((from, m.clone()));
                    }
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
                match stored {
                    Stored::All => {
                        let (first_slot, values) = (m.first_slot, m.values);
                        self.out.persist.push(PersistOp::Accept { ballot, first_slot, values });
                    }
                    Stored::Runs(runs) => {
                        if runs.is_empty() && newly_promised {
                            self.out.persist.push(PersistOp::Promise { ballot });
                        }
                        for (first_slot, values) in runs {
                            self.out.persist.push(PersistOp::Accept { ballot, first_slot, values });
                        }
                    }
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

    pub(super) fn on_heartbeat(&mut self, from: usize, m: Heartbeat) {
        let promised = self.acceptor.promised();
        if m.ballot < promised {
            let reject = Reject { ballot: m.ballot, promised, reason: RejectReason::HigherBallot };
            self.send(from, Message::Reject(reject));
            return;
        }
        self.on_leader_contact(from, m.ballot, m.commit);
        let commit = self.learner.commit();
        if self.store_horizon(m.horizon) {
            // The reply says the new horizon is stored: after the fsync.
            let reply = HeartbeatReply { ballot: m.ballot, round: m.round, commit, horizon: m.horizon };
            self.send_after_persist(from, Message::HeartbeatReply(reply));
        } else {
            let reply = HeartbeatReply { ballot: m.ballot, round: m.round, commit, horizon: self.horizon_durable };
            self.send(from, Message::HeartbeatReply(reply));
        }
    }

    /// A valid Accept or Heartbeat from the leader of `ballot` (>= promised).
    pub(super) fn on_leader_contact(&mut self, from: usize, ballot: Ballot, leader_commit: Slot) {
        if self.role.ballot().is_some_and(|b| b < ballot) {
            self.step_down(StepDownReason::HigherBallot);
        }
        if self.is_leader() {
            return; // a stale message of our own ballot cannot arrive from a peer
        }
        // A message its leader sent before it handed over, arriving after
        // the hand-over: that leader leads no more, so the message names
        // no leader and renews no lease (else it would end the successor's
        // campaign, or make this acceptor refuse it). Its commit knowledge
        // still counts.
        if self.handed_over != Some(ballot) {
            self.role = Role::Follower;
            self.leader_hint = Some(self.config.members[from]);
            self.reset_election_timeout();
            self.acceptor.grant_lease(self.now, ballot, self.config.lease_ticks);
            let until_tick = self.now + self.config.lease_ticks;
            self.out.events.push(Event::LeaseGranted { holder: ballot, until_tick });
        }
        self.learn_leader_commit(from, ballot, leader_commit);
    }

    /// What the leader of `ballot` (>= promised) says is chosen: every slot
    /// below `leader_commit`.
    pub(super) fn learn_leader_commit(&mut self, from: usize, ballot: Ballot, leader_commit: Slot) {
        self.peer_commit[from] = self.peer_commit[from].max(leader_commit);
        // Commit knowledge: a slot below the leader's commit index whose
        // value we accepted in the leader's own ballot holds the chosen value
        // (a leader proposes one value per slot per ballot). Anything else
        // must be fetched. Every slot learned here ends below the commit
        // index (the walk is contiguous from it), so `after_learning`
        // prunes the acceptor's copy: the learner takes it instead.
        let mut slot = self.learner.commit();
        while slot < leader_commit {
            match self.acceptor.take_accepted_in(slot, ballot) {
                Some(value) => self.learn_chosen_from(slot, value, true),
                None if self.learner.is_chosen(slot) => {}
                None => break,
            }
            slot += 1;
        }
        debug_assert!(slot <= self.learner.commit(), "a value taken from the acceptor is at or above the commit index");
        self.after_learning();
        self.maybe_catch_up();
    }
}
