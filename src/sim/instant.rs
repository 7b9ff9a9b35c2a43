//! A minimal harness for the core alone: replicas connected by a perfect,
//! instantaneous network with instant persistence, driven step by step.
//! Protocol-rule tests use it to hand-feed messages and watch the output,
//! and the core benchmark uses it to measure the core's own cost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::paxos::{Config, Envelope, NodeId, ReadOutcome, Replica, Slot, Value};

pub struct InstantCluster {
    pub replicas: BTreeMap<NodeId, Replica>,
    /// Messages sent and not yet delivered, in send order.
    pub in_flight: VecDeque<Envelope>,
    /// Nodes cut off from everyone (their messages are dropped both ways).
    pub isolated: BTreeSet<NodeId>,
    /// Everything each replica committed, in order.
    pub committed: BTreeMap<NodeId, Vec<(Slot, Value)>>,
    /// Read outcomes per replica.
    pub reads: BTreeMap<NodeId, Vec<ReadOutcome>>,
    /// Commands handed back by a replica that stopped leading.
    pub aborted: BTreeMap<NodeId, Vec<Bytes>>,
    /// Keep a record of committed values (off for benchmarks).
    pub record: bool,
}

impl InstantCluster {
    /// Replicas `1..=n`, each built from `config(members)`.
    pub fn new(n: u32, seed: u64, config: impl Fn(Vec<NodeId>) -> Config) -> InstantCluster {
        let members: Vec<NodeId> = (1..=n).collect();
        let replicas = members
            .iter()
            .map(|&id| (id, Replica::new(config(members.clone()), id, seed).expect("valid config")))
            .collect();
        InstantCluster {
            replicas,
            in_flight: VecDeque::new(),
            isolated: BTreeSet::new(),
            committed: BTreeMap::new(),
            reads: BTreeMap::new(),
            aborted: BTreeMap::new(),
            record: true,
        }
    }

    pub fn replica(&mut self, id: NodeId) -> &mut Replica {
        self.replicas.get_mut(&id).expect("known replica")
    }

    /// Drain one replica's output; persistence is instant.
    pub fn process(&mut self, id: NodeId) {
        loop {
            let replica = self.replicas.get_mut(&id).expect("known replica");
            let promised = replica.has_ready();
            let ready = replica.ready();
            assert!(promised || ready.is_empty(), "Replica::has_ready said no, and ready() had output: {ready:?}");
            if ready.is_empty() && !replica.awaiting_persist() {
                return;
            }
            replica.on_persisted(ready.number);
            self.in_flight.extend(ready.send_now);
            self.in_flight.extend(ready.send_after_persist);
            if self.record {
                self.committed.entry(id).or_default().extend(ready.committed);
                self.reads.entry(id).or_default().extend(ready.reads);
                self.aborted.entry(id).or_default().extend(ready.aborted);
            }
        }
    }

    /// Deliver messages until none are left.
    pub fn deliver_all(&mut self) {
        while let Some(envelope) = self.in_flight.pop_front() {
            if self.isolated.contains(&envelope.from) || self.isolated.contains(&envelope.to) {
                continue;
            }
            let to = envelope.to;
            let from = envelope.from;
            if let Err(e) = self.replica(to).step(from, envelope.message) {
                panic!("node {to} refused a message from node {from}: {e}");
            }
            self.process(to);
        }
    }

    /// Advance every replica `ticks` ticks, delivering after each.
    pub fn tick_all(&mut self, ticks: u64) {
        let ids: Vec<NodeId> = self.replicas.keys().copied().collect();
        for _ in 0..ticks {
            for &id in &ids {
                self.replica(id).tick();
                self.process(id);
            }
            self.deliver_all();
        }
    }

    /// The replicas that believe they lead.
    pub fn leaders(&self) -> Vec<NodeId> {
        self.replicas.values().filter(|r| r.is_leader()).map(|r| r.id()).collect()
    }

    /// Tick until exactly one replica leads, at most `max_ticks`.
    pub fn elect(&mut self, max_ticks: u64) -> Option<NodeId> {
        for _ in 0..max_ticks {
            let leaders = self.leaders();
            if leaders.len() == 1 {
                return Some(leaders[0]);
            }
            self.tick_all(1);
        }
        None
    }

    /// Propose at `leader`, then run the protocol to quiescence.
    pub fn propose(&mut self, leader: NodeId, commands: Vec<Bytes>) {
        self.replica(leader).propose(commands).expect("leader accepts proposals");
        self.process(leader);
        self.deliver_all();
    }
}
