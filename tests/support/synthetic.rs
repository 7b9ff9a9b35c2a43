//! A synthetic trace, written by hand rather than by the simulator (which
//! does not emit this schema yet): five replicas, an election, pipelined
//! accepts with a lost and a duplicated message, a forwarded command, the
//! leader's crash and a new leader's Phase 1 that recovers an accepted slot,
//! a partition, a stall, a restart with a disk fault and catch-up, a one-way
//! partition that makes the leader step down, a leader that hands over to
//! a successor it names, and a checker violation.
//! Deterministic: the same arguments give the same records.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use paxoskv::paxos::Ballot;
use paxoskv::trace::{Clock, DropReason, Event, Header, MessageKind, Outcome, Record, RoleName, Send, Source};

/// How long a lease or grant lasts, µs.
const LEASE_US: u64 = 12_000;
const NODES: [u32; 5] = [1, 2, 3, 4, 5];

/// The synthetic run with `steady_rounds` accept rounds under the first
/// leader (8 messages each, plus heartbeats).
pub fn synthetic(steady_rounds: u64) -> (Header, Vec<Record>) {
    let mut g = Gen::default();
    let mut header = Header::new(Source::Sim, Clock::Sim, NODES.to_vec());
    header.seed = Some(42);
    header.command = Some("synthetic (tests/support/synthetic.rs)".to_string());
    let (b1, b2, b4) = (Ballot::new(1, 1), Ballot::new(2, 3), Ballot::new(3, 4));
    for n in NODES {
        g.emit(0, Event::Role { node: n, role: RoleName::Follower, ballot: None });
    }
    // 1. Node 1 wins the first election.
    let t = g.elect(800, 1, b1, None);
    let mut c = Cluster { leader: 1, ballot: b1, slot: 0, t };
    g.heartbeat(&mut c);
    // 2. Steady state: pipelined rounds, one accept lost, one reply duplicated.
    for r in 0..steady_rounds {
        if r == 3 {
            g.lose.insert((1, 4, MessageKind::Accept));
        }
        if r == 4 {
            g.duplicate.insert((3, 1, MessageKind::Accepted));
        }
        g.client_round(&mut c, r % 5 == 2);
        if r % 3 == 2 {
            g.heartbeat(&mut c);
        }
    }
    // 3. The leader crashes with slot `c.slot` accepted by two followers but
    //    not chosen: its clients time out or hear "unknown outcome".
    let lost_op = g.invoke(c.t - 200, 1, "SET k1 7", "k1");
    let pending_slot = c.slot;
    for to in [2, 3] {
        g.msg(c.t, 1, to, MessageKind::Accept, g.payload(b1, pending_slot, 1));
    }
    let crash_t = c.t + 150;
    g.crash(crash_t, 1);
    g.emit(crash_t + 9_000, Event::Complete { op: lost_op, outcome: Outcome::Timeout, output: None });
    // 4. After the grants to 1.1 run out, node 3 is elected: Phase 1 over the
    //    suffix finds the accepted slot, which it re-proposes in ballot 2.3.
    let t = g.elect(g.last_grant + 1_000, 3, b2, Some(pending_slot));
    c = Cluster { leader: 3, ballot: b2, slot: pending_slot, t };
    g.heartbeat(&mut c);
    let retry = g.invoke(c.t - 100, 3, "SET k1 7", "k1");
    g.round(&mut c, 1, &[retry], &["OK"]);
    // 5. Node 2 is cut off; node 4 stalls; both come back.
    g.partition(c.t, &[2], &[1, 3, 4, 5], false);
    g.emit(c.t + 2_500, Event::Role { node: 2, role: RoleName::PreCandidate, ballot: Some(Ballot::new(3, 2)) });
    let wrote = g.client_round(&mut c, false);
    g.stall(c.t + 200, 4, 3_500);
    g.client_round(&mut c, false);
    g.client_round(&mut c, false);
    g.heal(c.t);
    g.heartbeat(&mut c);
    g.emit(c.t + 300, Event::Role { node: 2, role: RoleName::Follower, ballot: Some(b2) });
    // 6. Node 1 restarts from a torn WAL tail and catches up.
    g.restart(c.t + 500, 1, b2);
    g.catch_up(c.t + 900, 1, 3, b2, c.slot);
    c.t += 2_500;
    let read = g.client_round(&mut c, true);
    g.heartbeat(&mut c);
    // 7. Nothing reaches node 3 any more: its lease lapses, it steps down,
    //    and node 4 is elected.
    g.partition(c.t, &[1, 2, 4, 5], &[3], true);
    g.client_round(&mut c, false);
    let lapse = g.lease_until;
    g.emit(lapse, Event::LeaseExpired { node: 3, ballot: b2 });
    g.emit(lapse + 3_000, Event::StepDown { node: 3, ballot: b2, reason: "lost_majority_contact".into() });
    g.emit(lapse + 3_000, Event::Role { node: 3, role: RoleName::Follower, ballot: Some(b2) });
    let t = g.elect(g.last_grant.max(lapse + 3_000) + 1_500, 4, b4, None);
    g.heal(t + 1_500);
    g.emit(t + 1_700, Event::Role { node: 3, role: RoleName::Follower, ballot: Some(b4) });
    c = Cluster { leader: 4, ballot: b4, slot: c.slot, t: t + 1_600 };
    g.heartbeat(&mut c);
    g.client_round(&mut c, false);
    // 8. Node 4 finds itself unfit to lead (a slow disk): it steps down,
    //    gives its lease up and names node 5, which campaigns at once; the
    //    others give up the grants they made to 3.4 as the hand-over
    //    reaches them.
    let b5 = Ballot::new(4, 5);
    let t = c.t + 500;
    g.emit(t, Event::LeaseExpired { node: 4, ballot: b4 });
    g.emit(t, Event::StepDown { node: 4, ballot: b4, reason: "handed_over".into() });
    g.emit(t, Event::Role { node: 4, role: RoleName::Follower, ballot: Some(b4) });
    g.emit(t, Event::LeaseRelease { node: 4, holder: b4 });
    let mut named = t;
    for to in NODES.into_iter().filter(|&n| n != 4) {
        if let Some(at) = g.msg(t, 4, to, MessageKind::HandOver, Gen::bare(b4)) {
            g.emit(at, Event::LeaseRelease { node: to, holder: b4 });
            if to == 5 {
                named = at;
            }
        }
    }
    let t = g.elect(named + 10, 5, b5, None);
    c = Cluster { leader: 5, ballot: b5, slot: c.slot, t };
    g.heartbeat(&mut c);
    g.client_round(&mut c, false);
    g.emit(
        c.t,
        Event::Violation {
            checker: "linearizability".into(),
            message: "GET k1 returned an older value than a SET that completed before it began".into(),
            ops: vec![wrote[0], read[0]],
            slot: Some(pending_slot),
        },
    );
    g.records.sort_by_key(|r| r.t_us); // stable: same-time events keep their order
    (header, g.records)
}

/// The current leader and the next slot it fills.
struct Cluster {
    leader: u32,
    ballot: Ballot,
    slot: u64,
    t: u64,
}

#[derive(Default)]
struct Gen {
    records: Vec<Record>,
    next_id: u64,
    next_op: u64,
    random: u64,
    down: BTreeSet<u32>,
    cut: BTreeSet<(u32, u32)>,
    /// Stalled node -> when it runs again.
    stalled: BTreeMap<u32, u64>,
    /// The next message of this (from, to, kind) is lost / delivered twice.
    lose: BTreeSet<(u32, u32, MessageKind)>,
    duplicate: BTreeSet<(u32, u32, MessageKind)>,
    /// The latest lease grant's end, and the leader's lease end.
    last_grant: u64,
    lease_until: u64,
}

impl Gen {
    fn emit(&mut self, t_us: u64, event: Event) {
        self.records.push(Record { t_us, event });
    }

    /// A network delay, 120..480 µs, from a fixed LCG.
    fn delay(&mut self) -> u64 {
        self.random = self.random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        120 + (self.random >> 33) % 360
    }

    fn payload(&self, ballot: Ballot, slot: u64, commands: u64) -> Send {
        Send {
            id: 0,
            from: 0,
            to: 0,
            kind: MessageKind::Accept,
            ballot: Some(ballot),
            slot: Some(slot),
            slots: 1,
            commands,
            bytes: 48 + 40 * commands,
            digest: Some(digest(slot)),
        }
    }

    fn bare(ballot: Ballot) -> Send {
        Send {
            id: 0,
            from: 0,
            to: 0,
            kind: MessageKind::Heartbeat,
            ballot: Some(ballot),
            slot: None,
            slots: 0,
            commands: 0,
            bytes: 32,
            digest: None,
        }
    }

    /// Send a message at `t`; the delivery time, or None if it is lost.
    fn msg(&mut self, t: u64, from: u32, to: u32, kind: MessageKind, mut m: Send) -> Option<u64> {
        self.next_id += 1;
        let id = self.next_id;
        (m.id, m.from, m.to, m.kind) = (id, from, to, kind);
        self.emit(t, Event::Send(m));
        let lost = |reason| Event::Drop { id, from, to, reason };
        if self.cut.contains(&(from, to)) {
            self.emit(t, lost(DropReason::Partition));
            return None;
        }
        if self.lose.remove(&(from, to, kind)) {
            self.emit(t, lost(DropReason::Loss));
            return None;
        }
        let mut at = t + self.delay();
        if self.down.contains(&to) {
            self.emit(at, lost(DropReason::ReceiverDown));
            return None;
        }
        if let Some(&until) = self.stalled.get(&to).filter(|&&until| until > at) {
            at = until + 10 * (id % 7); // the backlog, worked through in order
        }
        self.emit(at, Event::Deliver { id, from, to });
        if self.duplicate.remove(&(from, to, kind)) {
            let again = at + self.delay();
            self.emit(again, Event::Deliver { id, from, to });
        }
        Some(at)
    }

    /// A request to every other node and the replies; the reply arrival
    /// times, sorted.
    fn poll(&mut self, t: u64, from: u32, ask: MessageKind, reply: MessageKind, m: &Send) -> Vec<(u64, u32)> {
        let mut replies = Vec::new();
        for to in NODES.into_iter().filter(|&n| n != from) {
            if let Some(at) = self.msg(t, from, to, ask, m.clone()) {
                if let Some(back) = self.msg(at + 15, to, from, reply, m.clone()) {
                    replies.push((back, to));
                }
            }
            if ask == MessageKind::Accept || ask == MessageKind::Heartbeat {
                self.grant(t, to, from, m.ballot.unwrap());
            }
        }
        replies.sort_unstable();
        replies
    }

    /// The time a majority (the sender counts) has answered, if it does.
    fn quorum(replies: &[(u64, u32)]) -> Option<u64> {
        let others_needed = NODES.len() / 2;
        replies.get(others_needed - 1).map(|&(t, _)| t)
    }

    /// Acceptor `to`, if the leader's message reached it, grants a lease.
    fn grant(&mut self, t: u64, to: u32, leader: u32, ballot: Ballot) {
        let reached = !self.down.contains(&to) && !self.cut.contains(&(leader, to));
        if reached {
            let until = t + 300 + LEASE_US;
            self.last_grant = self.last_grant.max(until);
            self.emit(t + 300, Event::LeaseGrant { node: to, holder: ballot, until_us: until });
        }
    }

    /// Pre-vote, Phase 1, leadership; `recovered` is a slot a promise
    /// reports accepted, re-proposed by the new leader. Returns when it leads.
    fn elect(&mut self, t: u64, node: u32, ballot: Ballot, recovered: Option<u64>) -> u64 {
        self.emit(t, Event::Role { node, role: RoleName::PreCandidate, ballot: Some(ballot) });
        let votes = self.poll(t, node, MessageKind::PreVote, MessageKind::PreVoteReply, &Self::bare(ballot));
        let t = Self::quorum(&votes).expect("a majority pre-votes") + 10;
        self.emit(t, Event::Role { node, role: RoleName::Candidate, ballot: Some(ballot) });
        self.emit(t, Event::Election { node, ballot });
        let mut prepare = Self::bare(ballot);
        prepare.slot = recovered;
        let reached: Vec<u32> = NODES
            .into_iter()
            .filter(|&n| n != node && !self.down.contains(&n) && !self.cut.contains(&(node, n)))
            .collect();
        for to in reached {
            self.emit(t + 200, Event::Role { node: to, role: RoleName::Follower, ballot: Some(ballot) });
        }
        let promises = self.poll(t, node, MessageKind::Prepare, MessageKind::Promise, &prepare);
        let t = Self::quorum(&promises).expect("a majority promises") + 10;
        self.emit(t, Event::Role { node, role: RoleName::Leader, ballot: Some(ballot) });
        t
    }

    /// Heartbeats; the leader's lease runs from the send once a majority acked.
    fn heartbeat(&mut self, c: &mut Cluster) {
        let acks = self.poll(c.t, c.leader, MessageKind::Heartbeat, MessageKind::HeartbeatReply, &Self::bare(c.ballot));
        if let Some(t) = Self::quorum(&acks) {
            self.lease_until = c.t + LEASE_US - 1_000;
            self.emit(t, Event::Lease { node: c.leader, ballot: c.ballot, until_us: self.lease_until });
        }
        for (at, to) in acks {
            self.emit(at - 20, Event::Commit { node: to, index: c.slot });
        }
        c.t += 1_200;
    }

    /// One slot through Phase 2 carrying `ops`; they complete with `outputs`
    /// once it is chosen.
    fn round(&mut self, c: &mut Cluster, commands: u64, ops: &[u64], outputs: &[&str]) {
        let accepts = self.poll(
            c.t,
            c.leader,
            MessageKind::Accept,
            MessageKind::Accepted,
            &self.payload(c.ballot, c.slot, commands),
        );
        if let Some(t) = Self::quorum(&accepts) {
            let chosen =
                Event::Chosen { node: c.leader, slot: c.slot, ballot: c.ballot, commands, digest: digest(c.slot) };
            self.emit(t, chosen);
            self.emit(t, Event::Commit { node: c.leader, index: c.slot + 1 });
            for (op, output) in ops.iter().zip(outputs) {
                let output = Some(output.to_string());
                self.emit(t + 40, Event::Complete { op: *op, outcome: Outcome::Ok, output });
            }
            c.slot += 1;
        }
        c.t += 1_500;
    }

    /// Client operations into one slot (one through a follower, forwarded,
    /// when `forward`); returns their op ids.
    fn client_round(&mut self, c: &mut Cluster, forward: bool) -> Vec<u64> {
        let n = c.slot;
        let (set, get) = (format!("SET k{} {}", n % 3, n), format!("GET k{}", (n + 1) % 3));
        let entry = match forward {
            true => NODES.into_iter().find(|&x| x != c.leader && !self.down.contains(&x)).unwrap(),
            false => c.leader,
        };
        let ops = vec![
            self.invoke(c.t - 400, c.leader, &set, &format!("k{}", n % 3)),
            self.invoke(c.t - 600, entry, &get, &format!("k{}", (n + 1) % 3)),
        ];
        if forward {
            let m = Self::bare(c.ballot);
            self.msg(c.t - 590, entry, c.leader, MessageKind::Forward, m.clone());
            self.msg(c.t + 700, c.leader, entry, MessageKind::ForwardReply, m);
        }
        self.round(c, 2, &ops, &["OK", if n.is_multiple_of(4) { "(nil)" } else { "\"4\"" }]);
        ops
    }

    fn invoke(&mut self, t: u64, node: u32, command: &str, key: &str) -> u64 {
        self.next_op += 1;
        let op = self.next_op;
        let event = Event::Invoke { op, client: op % 3 + 1, node, command: command.into(), key: Some(key.into()) };
        self.emit(t, event);
        op
    }

    fn crash(&mut self, t: u64, node: u32) {
        self.down.insert(node);
        self.emit(t, Event::Crash { node });
        for peer in NODES.into_iter().filter(|&n| n != node) {
            self.emit(t + 60, Event::PeerDown { node: peer, peer: node });
        }
    }

    fn restart(&mut self, t: u64, node: u32, ballot: Ballot) {
        self.down.remove(&node);
        self.emit(t, Event::Restart { node });
        let detail = "torn write at the tail of wal-00000000000000000000.log: 512 bytes truncated".to_string();
        self.emit(t + 100, Event::DiskFault { node, detail });
        self.emit(t + 400, Event::Recovery { node, detail: "no snapshot, 14 log slots".into() });
        self.emit(t + 400, Event::Role { node, role: RoleName::Recovering, ballot: Some(ballot) });
        for peer in NODES.into_iter().filter(|&n| n != node) {
            self.emit(t + 450, Event::PeerUp { node: peer, peer: node });
        }
    }

    /// `node` asks `leader` for the slots it misses, then for a snapshot.
    fn catch_up(&mut self, t: u64, node: u32, leader: u32, ballot: Ballot, slots: u64) {
        let mut ask = Self::bare(ballot);
        ask.slot = Some(0);
        let at = self.msg(t, node, leader, MessageKind::CatchUp, ask.clone()).unwrap();
        let mut reply = self.payload(ballot, 0, 2 * slots);
        reply.slots = slots;
        let back = self.msg(at + 50, leader, node, MessageKind::CatchUpReply, reply).unwrap();
        let at = self.msg(back + 100, node, leader, MessageKind::FetchSnapshot, ask).unwrap();
        let mut chunk = Self::bare(ballot);
        chunk.bytes = 65_536;
        let done = self.msg(at + 50, leader, node, MessageKind::SnapshotChunk, chunk).unwrap();
        self.emit(done + 100, Event::Commit { node, index: slots });
        self.emit(done + 100, Event::Role { node, role: RoleName::Follower, ballot: Some(ballot) });
    }

    fn partition(&mut self, t: u64, side_a: &[u32], side_b: &[u32], one_way: bool) {
        for &a in side_a {
            for &b in side_b {
                self.cut.insert((a, b));
                if !one_way {
                    self.cut.insert((b, a));
                }
            }
        }
        self.emit(t, Event::Partition { side_a: side_a.to_vec(), side_b: side_b.to_vec(), one_way });
    }

    fn heal(&mut self, t: u64) {
        self.cut.clear();
        self.emit(t, Event::Heal {});
    }

    fn stall(&mut self, t: u64, node: u32, length_us: u64) {
        self.stalled.insert(node, t + length_us);
        self.emit(t, Event::StallStart { node });
        self.emit(t + length_us, Event::StallEnd { node });
    }
}

/// A stand-in for the CRC of a slot's value: the same slot, the same digest.
fn digest(slot: u64) -> String {
    format!("{:08x}", (slot.wrapping_mul(2_654_435_761) ^ 0x5bd1_e995) as u32)
}
