//! What a node's outputs say in the trace: [`NodeTracer`] turns one node's
//! events (`NodeEvent`, the core's `Event`) and its state after each drain
//! into trace events, for the simulator and for live servers alike, so a
//! simulated run and a live cluster describe roles, ballots, leases and
//! commits the same way. The drivers add what only they know: messages on
//! their network, faults, clients, and the clock.
//!
//! Roles are read from the replica after every drain and traced when they
//! change (the core has no event for a candidate that falls back to
//! follower, or a follower that promises a higher ballot); elections,
//! step-downs and recoveries come from the core's events. A leader's lease
//! that is neither extended nor given up is traced as expired at the first
//! drain after its end (the viewer draws it to its exact end either way).
//!
//! Live nodes renew leases on every heartbeat and commit thousands of slots
//! a second: [`NodeTraceConfig`] coalesces lease renewals and commit
//! progress there, while the simulator keeps every one.

use super::kinds::RoleName;
use super::schema::Event;
use crate::node::NodeEvent;
use crate::paxos::{Ballot, Event as CoreEvent, NodeId, Replica, RoleKind, Slot};

/// How much detail a node's trace keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeTraceConfig {
    /// Microseconds per core tick (the unit of the core's lease ends).
    pub tick_us: u64,
    /// Trace a `commit` at most this often (trace-clock µs); 0: every change.
    pub commit_interval_us: u64,
    /// Trace a lease or grant renewal only once it moves the end by this
    /// much (trace-clock µs); 0: every renewal. A new holder or ballot is
    /// always traced.
    pub lease_step_us: u64,
    /// Trace a `chosen` event per slot the leader learns chosen.
    pub chosen: bool,
}

impl NodeTraceConfig {
    /// Everything, as the simulator records it.
    pub fn every_event(tick_us: u64) -> NodeTraceConfig {
        NodeTraceConfig { tick_us, commit_interval_us: 0, lease_step_us: 0, chosen: true }
    }
}

/// A lease (the leader's) or grant (an acceptor's) as traced so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    ballot: Ballot,
    /// The end last written to the trace.
    traced_until_us: u64,
    /// The end as the node knows it (later renewals may be untraced).
    until_us: u64,
}

/// One node's trace state: what was last traced, to trace changes only.
#[derive(Clone, Debug)]
pub struct NodeTracer {
    node: NodeId,
    config: NodeTraceConfig,
    role: Option<(RoleName, Option<Ballot>)>,
    /// The ballot of the latest pre-vote, election or leadership.
    campaign: Option<Ballot>,
    lease: Option<Held>,
    grant: Option<Held>,
    commit: Slot,
    commit_traced_us: Option<u64>,
    links_up: Vec<NodeId>,
}

impl NodeTracer {
    /// A node that just started: nothing traced yet.
    pub fn new(node: NodeId, config: NodeTraceConfig) -> NodeTracer {
        NodeTracer {
            node,
            config,
            role: None,
            campaign: None,
            lease: None,
            grant: None,
            commit: 0,
            commit_traced_us: None,
            links_up: Vec::new(),
        }
    }

    /// One drain's `events` at trace time `t_us`, then whatever changed in
    /// `replica`'s state. `to_trace_us` maps the node's local microseconds
    /// (its clock) to the trace clock; `emit` receives each event.
    pub fn on_output(
        &mut self,
        t_us: u64,
        events: &[NodeEvent],
        replica: &Replica,
        to_trace_us: impl Fn(u64) -> u64,
        mut emit: impl FnMut(u64, Event),
    ) {
        let node = self.node;
        for event in events {
            let NodeEvent::Core(event) = event else { continue };
            match *event {
                CoreEvent::PreVoteStarted { ballot } => self.campaign = Some(ballot),
                CoreEvent::ElectionStarted { ballot } => {
                    self.campaign = Some(ballot);
                    emit(t_us, Event::Election { node, ballot });
                }
                CoreEvent::BecameLeader { ballot, .. } => self.campaign = Some(ballot),
                CoreEvent::SteppedDown { ballot, reason } => {
                    self.give_up_lease(t_us, &mut emit);
                    let reason = match reason {
                        crate::paxos::StepDownReason::HigherBallot => "higher_ballot",
                        crate::paxos::StepDownReason::LostMajorityContact => "lost_majority_contact",
                        crate::paxos::StepDownReason::HandedOver => "handed_over",
                    };
                    emit(t_us, Event::StepDown { node, ballot, reason: reason.to_string() });
                }
                CoreEvent::Chosen { slot, ballot, .. } => {
                    if self.config.chosen {
                        let value = replica.chosen_value(slot);
                        let commands = value.map_or(0, |v| v.commands().len() as u64);
                        let digest = value.and_then(|v| super::value_digest([v])).unwrap_or_default();
                        emit(t_us, Event::Chosen { node, slot, ballot, commands, digest });
                    }
                }
                CoreEvent::LeaseGranted { holder, until_tick } => {
                    if holder.node != node {
                        let until_us = to_trace_us(until_tick * self.config.tick_us);
                        if let Some(until_us) = renew(&mut self.grant, holder, until_us, self.config.lease_step_us) {
                            emit(t_us, Event::LeaseGrant { node, holder, until_us });
                        }
                    }
                }
                CoreEvent::LeaseReleased { holder } => {
                    if self.grant.as_ref().is_some_and(|g| g.ballot == holder) {
                        self.grant = None;
                    }
                    emit(t_us, Event::LeaseRelease { node, holder });
                }
                CoreEvent::LeaseExtended { ballot, until_tick, .. } => {
                    let until_us = to_trace_us(until_tick * self.config.tick_us);
                    if let Some(until_us) = renew(&mut self.lease, ballot, until_us, self.config.lease_step_us) {
                        emit(t_us, Event::Lease { node, ballot, until_us });
                    }
                }
                CoreEvent::RecoveryStarted => {}
                CoreEvent::Recovered { promised, commit } => {
                    let detail = format!("relearned from a majority: promised {promised}, log to slot {commit}");
                    emit(t_us, Event::Recovery { node, detail });
                }
            }
        }
        self.after_drain(t_us, replica, &mut emit);
    }

    /// The role, lease expiry and commit progress after a drain.
    fn after_drain(&mut self, t_us: u64, replica: &Replica, emit: &mut impl FnMut(u64, Event)) {
        let node = self.node;
        let status = replica.status();
        let role = match (replica.is_recovering(), status.role) {
            (true, _) => RoleName::Recovering,
            (false, RoleKind::Follower) => RoleName::Follower,
            (false, RoleKind::PreCandidate) => RoleName::PreCandidate,
            (false, RoleKind::Candidate) => RoleName::Candidate,
            (false, RoleKind::Leader) => RoleName::Leader,
        };
        let ballot = match role {
            RoleName::PreCandidate | RoleName::Candidate | RoleName::Leader => self.campaign,
            _ => Some(status.promised),
        };
        let ballot = ballot.filter(|b| *b != Ballot::ZERO);
        if role != RoleName::Leader {
            self.give_up_lease(t_us, emit);
        }
        if self.role != Some((role, ballot)) {
            self.role = Some((role, ballot));
            emit(t_us, Event::Role { node, role, ballot });
        }
        if let Some(lease) = self.lease.filter(|l| l.until_us <= t_us) {
            self.lease = None;
            emit(t_us, Event::LeaseExpired { node, ballot: lease.ballot });
        }
        if self.grant.is_some_and(|g| g.until_us <= t_us) {
            self.grant = None;
        }
        let due = self.commit_traced_us.is_none_or(|at| t_us >= at + self.config.commit_interval_us);
        if status.commit != self.commit && due {
            self.commit = status.commit;
            self.commit_traced_us = Some(t_us);
            emit(t_us, Event::Commit { node, index: status.commit });
        }
    }

    /// The leader's lease ends now, before its time (it stepped down): a
    /// lease already run out was traced as expired when it did.
    fn give_up_lease(&mut self, t_us: u64, emit: &mut impl FnMut(u64, Event)) {
        if let Some(lease) = self.lease.take() {
            if lease.until_us > t_us {
                emit(t_us, Event::LeaseExpired { node: self.node, ballot: lease.ballot });
            }
        }
    }

    /// The link to `peer` went up or down; traced when that changes what
    /// was traced last (a heal reconnects links that never went down).
    pub fn on_link(&mut self, t_us: u64, peer: NodeId, up: bool, mut emit: impl FnMut(u64, Event)) {
        let was_up = self.links_up.contains(&peer);
        if was_up == up {
            return;
        }
        let node = self.node;
        if up {
            self.links_up.push(peer);
            emit(t_us, Event::PeerUp { node, peer });
        } else {
            self.links_up.retain(|&p| p != peer);
            emit(t_us, Event::PeerDown { node, peer });
        }
    }
}

/// Record a renewal of `held` for `ballot` until `until_us`; the end to
/// trace, if the renewal is worth a line (a new ballot, an end after the
/// traced one ran out, or one `step_us` past it).
fn renew(held: &mut Option<Held>, ballot: Ballot, until_us: u64, step_us: u64) -> Option<u64> {
    match held {
        Some(h) if h.ballot == ballot => {
            h.until_us = h.until_us.max(until_us);
            if h.until_us >= h.traced_until_us + step_us.max(1) {
                h.traced_until_us = h.until_us;
                return Some(h.until_us);
            }
            None
        }
        _ => {
            *held = Some(Held { ballot, traced_until_us: until_us, until_us });
            Some(until_us)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_are_coalesced_by_the_step_but_a_new_ballot_always_shows() {
        let (b1, b2) = (Ballot::new(1, 1), Ballot::new(2, 2));
        let mut held = None;
        assert_eq!(renew(&mut held, b1, 100, 50), Some(100));
        assert_eq!(renew(&mut held, b1, 120, 50), None, "20 µs later: not worth a line");
        assert_eq!(renew(&mut held, b1, 150, 50), Some(150));
        assert_eq!(held.unwrap().until_us, 150);
        assert_eq!(renew(&mut held, b2, 160, 50), Some(160), "a new holder");
        let mut every = None;
        assert_eq!(renew(&mut every, b1, 100, 0), Some(100));
        assert_eq!(renew(&mut every, b1, 101, 0), Some(101));
        assert_eq!(renew(&mut every, b1, 101, 0), None, "no later end, nothing new");
    }

    #[test]
    fn a_link_is_traced_when_it_changes() {
        let mut t = NodeTracer::new(1, NodeTraceConfig::every_event(1000));
        let mut lines = Vec::new();
        t.on_link(5, 2, true, |at, e| lines.push((at, e)));
        t.on_link(6, 2, true, |at, e| lines.push((at, e)));
        t.on_link(7, 2, false, |at, e| lines.push((at, e)));
        assert_eq!(lines, vec![(5, Event::PeerUp { node: 1, peer: 2 }), (7, Event::PeerDown { node: 1, peer: 2 })]);
    }
}
