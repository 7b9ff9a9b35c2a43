//! Checks that watch the protocol's timing and durability rules as they
//! happen, from what only the simulator knows: real time, every clock's
//! rate, and every disk. A broken rule is caught at the step that broke
//! it, whether or not the faults that follow happen to turn it into a
//! wrong answer (the end-of-run checkers need that luck):
//!
//! - *grant honoured*: an acceptor that granted a lease to one leader
//!   promises no one else until the grant's end in real time (lease_ticks
//!   of its own clock from when it processed the leader's message). Grants
//!   made to a ballot after a higher one took office are exempt: that
//!   leader can never again collect a majority of grants (every majority
//!   holds a promiser of the higher ballot, which refuses it), so nothing
//!   rests on them, and an acceptor that then hears from the higher
//!   leader rightly moves its grant there (seed 799 of the 5-replica
//!   soak: a stalled acceptor stepped the deposed leader's heartbeat from
//!   its backlog, then the new leader's). A lease that did rest on such a
//!   grant is still caught by *lease within grants* and by *reads come from
//!   the newest leader*. A grant its holder gave up (`Message::HandOver`)
//!   binds no more, and giving it up is checked itself: its leader must
//!   hold no lease then (it stepped down before sending);
//! - *lease within grants*: a leader's lease ends, in real time, before
//!   the grants of the acceptors whose acks it rests on;
//! - *votes are durable*: a Promise or Accepted leaves only once what it
//!   reports is on the sender's disk, and a leader counts its own vote for
//!   a slot only once it is on its own disk (what was chosen survives any
//!   minority of crashes);
//! - *reads come from the newest leader*: a read served under ballot b
//!   began after no leader of a higher ballot had taken office (one that
//!   began later is ordered after the deposition... and could not be
//!   confirmed: the acceptor that promised the newer ballot refuses the old
//!   leader's round; a lease held that long would already be an overlap);
//! - *no vote from a lost state*: a replica whose disk was lost sends no
//!   Promise or Accepted before it reports it has relearned its state.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::Violation;
use super::cluster::Cluster;
use crate::net::peer::PeerFrame;
use crate::paxos::{Ballot, Message, NodeId, NodeSet, Slot};

#[derive(Default)]
pub(super) struct Watch {
    /// Per (acceptor, holder ballot): the real time its grant ends.
    grants: BTreeMap<(NodeId, Ballot), u64>,
    /// The same, counting only grants made while no higher ballot had
    /// taken office: the grants an acceptor must honour.
    binding_grants: BTreeMap<(NodeId, Ballot), u64>,
    /// Promises already checked: (acceptor, ballot).
    promises_seen: BTreeSet<(NodeId, Ballot)>,
    /// Replicas whose disk was lost and which have not recovered since.
    lost_state: BTreeSet<NodeId>,
    /// Slots some leader has counted chosen. A vote for a slot chosen
    /// before it is a formality (the acceptor acknowledges without storing,
    /// and a new leader re-proposes what it learned chosen): only the votes
    /// that first choose a slot must be durable.
    chosen: BTreeSet<Slot>,
}

impl Cluster {
    /// Real time at which node `id`'s local clock reads `local_us`.
    fn real_us(&self, id: NodeId, local_us: u64) -> u64 {
        self.node(id).real_us(local_us)
    }

    /// Acceptor `id` granted (or renewed) a lease to `holder` just now.
    pub(super) fn watch_grant(&mut self, id: NodeId, holder: Ballot) {
        // The core stamped the grant at its tick when it processed the
        // message, at most a drain window ago: one tick earlier, to be safe.
        let tick = (self.node(id).local_us(self.now_us) / 1_000).saturating_sub(1);
        let until = self.real_us(id, (tick + self.paxos_config.lease_ticks) * 1_000);
        let entry = self.watch.grants.entry((id, holder)).or_insert(until);
        *entry = (*entry).max(until);
        if !self.leader_changes.iter().any(|change| change.ballot > holder) {
            let entry = self.watch.binding_grants.entry((id, holder)).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// Acceptor `id` ended its grant to `holder` early, on that leader's
    /// hand-over: from now on it may promise others. That grant may have
    /// carried on one to a lower ballot (a grant passes to a higher
    /// leader with its end, `LeaseGrant::grant`), so it ends those too.
    /// Only safe if none of their leaders serves a lease read any more.
    pub(super) fn watch_release(&mut self, id: NodeId, holder: Ballot) {
        let now = self.now_us;
        let ended: BTreeSet<Ballot> = self
            .watch
            .binding_grants
            .range((id, Ballot::ZERO)..=(id, holder))
            .map(|((_, ballot), _)| *ballot)
            .chain(std::iter::once(holder))
            .collect();
        for ballot in ended {
            let leader = self.node(ballot.node);
            let still_held = leader.replica().is_some_and(|r| {
                r.status().promised == ballot && r.is_leader() && r.holds_lease_at(leader.local_us(now) / 1_000)
            });
            if still_held {
                let detail = format!(
                    "node {id} gave up its lease grant to ballot {holder} at {now} us, while node {} still led \
                     ballot {ballot} under its lease",
                    ballot.node
                );
                self.checker.violations.push(Violation::GrantBroken { detail });
            }
            self.watch.binding_grants.remove(&(id, ballot));
        }
    }

    /// Leader `id` may serve lease reads until its tick `until_tick`, on the
    /// grants of `ackers`.
    pub(super) fn watch_lease(&mut self, id: NodeId, ballot: Ballot, until_tick: u64, ackers: NodeSet) {
        let lease_end = self.real_us(id, until_tick * 1_000);
        let members = self.config.members();
        for (index, &acker) in members.iter().enumerate() {
            if acker == id || !ackers.contains(index) {
                continue;
            }
            let grant_end = self.watch.grants.get(&(acker, ballot)).copied().unwrap_or(0);
            if lease_end > grant_end {
                let detail = format!(
                    "leader {id} (ballot {ballot}) holds a lease until {lease_end} us on node {acker}'s grant, \
                     which ends at {grant_end} us"
                );
                self.checker.violations.push(Violation::LeaseWindow { detail });
            }
        }
    }

    /// Every frame a node sends: a vote from a lost state, a promise made
    /// during a grant to someone else.
    pub(super) fn watch_frame(&mut self, from: NodeId, to: NodeId, frame: &PeerFrame) {
        let PeerFrame::Paxos(message) = frame else { return };
        let vote = matches!(message, Message::Promise(_) | Message::Accepted(_));
        if vote {
            self.watch_vote(from, message);
        }
        if vote && self.watch.lost_state.contains(&from) {
            let detail = format!("node {from} lost its disk and sent a {} before relearning its state", message.kind());
            self.checker.violations.push(Violation::LostStateVoted { detail });
        }
        let Message::Promise(promise) = message else { return };
        if !self.watch.promises_seen.insert((from, promise.ballot)) {
            return; // a repeated answer to a repeated Prepare
        }
        if self.leader_changes.iter().any(|change| change.ballot == promise.ballot) {
            return; // its leader took office already: this promise elects no one
        }
        // A grant to H forbids promising a higher ballot to anyone but H's
        // leader; a promise of a lower ballot (made before the grant, sent
        // after its fsync) cannot outvote H.
        let now = self.now_us;
        let broken: Vec<(Ballot, u64)> = self
            .watch
            .binding_grants
            .range((from, Ballot::ZERO)..=(from, Ballot::new(u64::MAX, u32::MAX)))
            .filter(|((_, holder), until)| holder.node != to && promise.ballot > *holder && **until > now)
            // Once a higher ballot took office, a grant to `holder` binds
            // nothing: that leader held no lease then (lease overlap checks
            // it) and can never extend one (a majority refuses its ballot).
            // An acceptor passes a running grant on to a higher leader with
            // its end (`LeaseGrant::grant`), and since stop 58 a restarted
            // one does so in its quarantine too: that leader's node may be
            // promised again (seed 178 of the 5-replica sweep with a 5 ms
            // hand-over).
            .filter(|((_, holder), _)| !self.leader_changes.iter().any(|change| change.ballot > *holder))
            .map(|((_, holder), until)| (*holder, *until))
            .collect();
        for (holder, until) in broken {
            let detail = format!(
                "node {from} promised ballot {} to node {to} at {now} us during its lease grant to the leader of \
                 ballot {holder}, which runs until {until} us",
                promise.ballot
            );
            self.checker.violations.push(Violation::GrantBroken { detail });
        }
    }

    /// Does node `id`'s disk hold a vote for `slot` in `ballot` or later
    /// (or the slot's choice, or a snapshot past it)?
    fn disk_voted(&self, id: NodeId, slot: Slot, ballot: Ballot) -> bool {
        let state = self.node(id).disk.state();
        slot < state.log_start()
            || state.chosen.contains_key(&slot)
            || state.accepted.get(&slot).is_some_and(|(b, _)| *b >= ballot)
    }

    /// Leader `id` counted slot `slot` chosen on the votes of `voters`: its
    /// own vote among them must be on its disk now (the others' were checked
    /// when they left, in `watch_vote`).
    pub(super) fn watch_chosen(&mut self, id: NodeId, slot: Slot, ballot: Ballot, voters: NodeSet) {
        if !self.watch.chosen.insert(slot) {
            return;
        }
        let index = self.config.members().iter().position(|&m| m == id).expect("a member");
        if voters.contains(index) && !self.disk_voted(id, slot, ballot) {
            let state = self.node(id).disk.state();
            let detail = format!(
                "leader {id} counted its own vote for slot {slot} in ballot {ballot} before it was on its disk \
                 (the disk: promised {}, commit {}, accepted {:?}, syncing {})",
                state.promised,
                state.commit,
                state.accepted.get(&slot).map(|(b, _)| *b),
                self.node(id).disk.is_syncing()
            );
            self.checker.violations.push(Violation::NotDurable { detail });
        }
    }

    /// A Promise or Accepted leaves node `from`: what it reports must be on
    /// its disk already.
    fn watch_vote(&mut self, from: NodeId, message: &Message) {
        let durable = match message {
            Message::Promise(m) => self.node(from).disk.state().promised >= m.ballot,
            Message::Accepted(m) => (m.first_slot..m.first_slot.saturating_add(m.count))
                .filter(|slot| !self.watch.chosen.contains(slot))
                .all(|slot| self.disk_voted(from, slot, m.ballot)),
            _ => true,
        };
        if !durable {
            let detail = format!(
                "node {from} sent {} for ballot {:?} before it was on its disk",
                message.kind(),
                message.ballot()
            );
            self.checker.violations.push(Violation::NotDurable { detail });
        }
    }

    /// Node `id` served a read under `ballot` that began at `begun_us`.
    pub(super) fn watch_read(&mut self, id: NodeId, begun_us: u64, ballot: Ballot) {
        let newer = self.leader_changes.iter().find(|c| c.ballot > ballot && c.t_us < begun_us);
        if let Some(newer) = newer {
            let detail = format!(
                "node {id} served a read under ballot {ballot} that began at {begun_us} us, after node {} took \
                 office with ballot {} at {} us",
                newer.node, newer.ballot, newer.t_us
            );
            self.checker.violations.push(Violation::DeposedRead { detail });
        }
    }

    pub(super) fn watch_disk_lost(&mut self, id: NodeId) {
        self.watch.lost_state.insert(id);
    }

    pub(super) fn watch_recovered(&mut self, id: NodeId) {
        self.watch.lost_state.remove(&id);
    }
}
