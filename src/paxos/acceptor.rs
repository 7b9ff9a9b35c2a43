//! The acceptor role ("Paxos Made Simple" section 2.2; "Paxos Made
//! Moderately Complex" section 3). Pure decisions over `promised` and the
//! accepted values; the replica turns each decision into a persist op and a
//! reply that leaves only after that op is durable.

use super::ballot::{Ballot, Slot};
use super::lease::LeaseGrant;
use super::message::{Accept, AcceptedEntry, Prepare, Promise, RejectReason, Value};
use super::slotmap::SlotMap;

#[derive(Clone, Debug)]
pub struct Acceptor {
    /// The highest ballot promised. Invariant: every ballot in `accepted` is <= `promised`.
    promised: Ballot,
    /// The highest-ballot value accepted per slot, for slots not yet known
    /// chosen locally (slots below the learner's commit index are pruned).
    accepted: SlotMap<(Ballot, Value)>,
    /// Lease granted to the leader last heard from.
    grant: LeaseGrant,
}

/// The acceptor's answer to a Prepare.
pub enum PrepareDecision {
    /// Promise; `newly_promised` says whether `promised` changed (and must be persisted).
    Promise {
        promise: Promise,
        newly_promised: bool,
    },
    Reject {
        promised: Ballot,
        reason: RejectReason,
    },
}

/// Which of an Accept's slots were recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// Every one (the common case: the Accept's values go to disk as they are).
    All,
    /// Only these runs of consecutive slots (possibly none).
    Runs(Vec<(Slot, Vec<Value>)>),
}

/// The acceptor's answer to an Accept.
pub enum AcceptDecision {
    /// Accepted. `stored` says which slots were actually recorded (slots
    /// already known chosen are skipped: their chosen value must never be
    /// overwritten, in memory or on disk); `newly_promised` says whether
    /// `promised` rose. Both must be persisted.
    Accepted {
        stored: Stored,
        newly_promised: bool,
    },
    Reject {
        promised: Ballot,
    },
}

impl Acceptor {
    pub fn new(promised: Ballot, accepted: SlotMap<(Ballot, Value)>, grant: LeaseGrant) -> Acceptor {
        debug_assert!(accepted.values().all(|(b, _)| *b <= promised));
        Acceptor { promised, accepted, grant }
    }

    pub fn promised(&self) -> Ballot {
        self.promised
    }

    #[inline]
    pub fn accepted(&self, slot: Slot) -> Option<&(Ballot, Value)> {
        self.accepted.get(&slot)
    }

    /// Move out the value accepted at `slot` if it was accepted in
    /// `ballot`, for a learner that is about to learn it chosen and move
    /// the commit index past it: `prune_below` would drop it next, so the
    /// learner takes this copy instead of a clone of it. A slot that stays
    /// at or above the commit index must not be taken (its accepted value
    /// answers Prepares and recovery queries).
    #[inline]
    pub fn take_accepted_in(&mut self, slot: Slot, ballot: Ballot) -> Option<Value> {
        self.accepted.remove_if(slot, |(b, _)| *b == ballot).map(|(_, v)| v)
    }

    /// Would this acceptor promise `ballot` now? (PreVote: no state changes.)
    pub fn would_promise(&self, now: u64, ballot: Ballot) -> bool {
        ballot > self.promised && !self.grant.blocks(now, ballot.node)
    }

    /// Phase 1b. `commit` is the local commit index: values below it are
    /// chosen and the candidate learns them by catch-up, so they are not sent.
    pub fn on_prepare(&mut self, now: u64, prepare: &Prepare, commit: Slot) -> PrepareDecision {
        if prepare.ballot < self.promised {
            return PrepareDecision::Reject { promised: self.promised, reason: RejectReason::HigherBallot };
        }
        // A repeated Prepare for the ballot already promised is answered
        // again (the first Promise may have been lost).
        let newly_promised = prepare.ballot > self.promised;
        if newly_promised && self.grant.blocks(now, prepare.ballot.node) {
            return PrepareDecision::Reject { promised: self.promised, reason: RejectReason::LeaseHeld };
        }
        self.promised = prepare.ballot;
        let from = prepare.first_unchosen.max(commit);
        let accepted = self
            .accepted
            .range(from..)
            .map(|(&slot, (ballot, value))| AcceptedEntry { slot, ballot: *ballot, value: value.clone() })
            .collect();
        let promise = Promise { ballot: prepare.ballot, commit, chosen: Vec::new(), accepted, horizon: 0 };
        PrepareDecision::Promise { promise, newly_promised }
    }

    /// Phase 2b. Accepts iff `accept.ballot >= promised` (which also promises
    /// it). Slots for which `known_chosen` holds are acknowledged, not stored:
    /// a stale Accept of a lower ballot may carry another value for them.
    pub fn on_accept(&mut self, accept: &Accept, known_chosen: impl Fn(Slot) -> bool) -> AcceptDecision {
        if accept.ballot < self.promised {
            return AcceptDecision::Reject { promised: self.promised };
        }
        let newly_promised = accept.ballot > self.promised;
        self.promised = accept.ballot;
        let slots = accept.first_slot..accept.first_slot + accept.values.len() as u64;
        if !accept.values.is_empty() && !slots.clone().any(&known_chosen) {
            let values = accept.values.iter().map(|value| (accept.ballot, value.clone()));
            self.accepted.insert_run(accept.first_slot, values);
            return AcceptDecision::Accepted { stored: Stored::All, newly_promised };
        }
        let mut stored: Vec<(Slot, Vec<Value>)> = Vec::new();
        for (slot, value) in slots.zip(&accept.values) {
            if known_chosen(slot) {
                continue;
            }
            self.accepted.insert(slot, (accept.ballot, value.clone()));
            match stored.last_mut() {
                Some((first, values)) if *first + values.len() as u64 == slot => values.push(value.clone()),
                _ => stored.push((slot, vec![value.clone()])),
            }
        }
        AcceptDecision::Accepted { stored: Stored::Runs(stored), newly_promised }
    }

    /// Every value accepted at a slot >= `from`, ascending (for recovery answers).
    pub fn accepted_from(&self, from: Slot) -> Vec<AcceptedEntry> {
        self.accepted
            .range(from..)
            .map(|(&slot, (ballot, value))| AcceptedEntry { slot, ballot: *ballot, value: value.clone() })
            .collect()
    }

    /// Recovery: take over a value a majority reported accepted at `slot`
    /// (the highest-ballot one, as Phase 1 would), as if accepted here.
    pub fn adopt_accepted(&mut self, slot: Slot, ballot: Ballot, value: Value) {
        self.promised = self.promised.max(ballot);
        match self.accepted.get(&slot) {
            Some((existing, _)) if *existing >= ballot => {}
            _ => {
                self.accepted.insert(slot, (ballot, value));
            }
        }
    }

    /// Recovery: promise at least `ballot` (the highest a majority reported).
    pub fn adopt_promise(&mut self, ballot: Ballot) {
        self.promised = self.promised.max(ballot);
    }

    /// The leader of `ballot` gave its lease up (`Message::HandOver`).
    /// True if a running grant to it ended.
    pub fn release_lease(&mut self, now: u64, ballot: Ballot) -> bool {
        self.grant.release(now, ballot)
    }

    /// Record a lease grant to the leader of `ballot` (on a valid Accept or Heartbeat).
    pub fn grant_lease(&mut self, now: u64, ballot: Ballot, lease_ticks: u64) {
        self.grant.grant(now, ballot, lease_ticks);
    }

    /// Forget accepted values below `commit` (the learner holds the chosen ones).
    pub fn prune_below(&mut self, commit: Slot) {
        if self.accepted.first_key_value().is_some_and(|(&s, _)| s < commit) {
            self.accepted.drop_below(commit);
        }
    }
}
