//! Elections: pre-vote (Raft thesis section 9.6), Phase 1 over the whole log
//! suffix, taking office once a majority promised, and stepping down.

use super::ballot::{Ballot, NodeSet};
use super::lease::leader_lease_ticks;
use super::message::*;
use super::proposer::{Candidate, PreCandidate, Role};
use super::replica::{Event, ReadOutcome, Replica, StepDownReason};
use super::slotmap::SlotMap;

impl Replica {
    // ---- elections --------------------------------------------------------

    pub(super) fn on_election_timeout(&mut self) {
        // No leader heard from for a whole election timeout: stop naming
        // one (etcd-io/raft's `becomePreCandidate` sets `lead = None` for
        // the same reason). The node layer forwards client requests to the
        // leader named here; a node cut off from its leader would otherwise
        // keep queueing forwards (and their retries) on a connection that
        // delivers none of them until the partition heals, and then all at
        // once. Without a name, they wait here until a leader is heard.
        self.leader_hint = None;
        if self.recovery.is_some() {
            return; // a replica relearning its state never campaigns
        }
        self.reset_election_timeout();
        if !self.candidacy {
            return; // the shell says this replica is unfit to lead now
        }
        let ballot = Ballot::new(self.max_round_seen.saturating_add(1), self.id);
        self.out.events.push(Event::PreVoteStarted { ballot });
        let mut granted = NodeSet::default();
        if self.acceptor.would_promise(self.now, ballot) {
            granted.insert(self.index);
        }
        self.role = Role::PreCandidate(PreCandidate { ballot, granted });
        self.broadcast(Message::PreVote(PreVote { ballot }));
        self.check_pre_vote_majority();
    }

    /// The leader of `m.ballot` stepped down and asks `m.to` to campaign
    /// (`Message::HandOver`). Only that leader speaks for its ballot, and a
    /// ballot below what this acceptor promised is old news: ignored.
    pub(super) fn on_hand_over(&mut self, from: usize, m: HandOver) {
        if self.config.members[from] != m.ballot.node || m.ballot < self.acceptor.promised() {
            return;
        }
        self.handed_over = Some(m.ballot);
        self.learn_leader_commit(from, m.ballot, m.commit);
        if self.acceptor.release_lease(self.now, m.ballot) {
            self.out.events.push(Event::LeaseReleased { holder: m.ballot });
            // A PreVote or Prepare the grant refused may come from the
            // successor: answer it now (as if it had arrived late).
            if let Some((candidate, pre_vote)) = self.refused_for_lease_pre_vote.take() {
                self.on_pre_vote(candidate, pre_vote);
            }
            if let Some((candidate, prepare)) = self.refused_for_lease.take() {
                self.on_prepare(candidate, prepare);
            }
        }
        if self.leader_hint == Some(m.ballot.node) {
            self.leader_hint = None;
        }
        if m.to == self.id && matches!(self.role, Role::Follower) {
            // What an election timeout would do now, pre-vote included: a
            // member that has since heard from a newer leader refuses it.
            self.on_election_timeout();
        }
    }

    pub(super) fn on_pre_vote_reply(&mut self, from: usize, m: PreVoteReply) {
        self.max_round_seen = self.max_round_seen.max(m.promised.round);
        if let Role::PreCandidate(p) = &mut self.role {
            if p.ballot == m.ballot && m.granted {
                p.granted.insert(from);
                self.check_pre_vote_majority();
            }
        }
    }

    pub(super) fn check_pre_vote_majority(&mut self) {
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
            accepted: SlotMap::new(),
        });
        self.out.events.push(Event::ElectionStarted { ballot });
        let prepare = Prepare { ballot, first_unchosen };
        self.broadcast(Message::Prepare(prepare.clone()));
        self.on_prepare(self.index, prepare);
    }

    pub(super) fn on_promise(&mut self, from: usize, mut m: Promise) {
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
        for entry in &m.accepted {
            self.note_stamp(&entry.value);
        }
        self.note_reported_horizon(m.horizon);
        let Role::Candidate(c) = &mut self.role else { return };
        if c.absorb(from, &m) && c.promised_by.len() >= self.config.majority() {
            self.become_leader();
        }
    }

    pub(super) fn on_reject(&mut self, m: Reject) {
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
            self.out.aborted.extend(leader.queue.into_commands());
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
