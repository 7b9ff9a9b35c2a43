//! The simulator's faults: crashes (with torn writes), lost disks,
//! restarts, partitions (with or without connection resets), executor
//! stalls, and healing.

use super::cluster::{Cluster, EventKind};
use super::node::Input;
use crate::paxos::NodeId;
use crate::trace::Event as TraceEvent;

/// Peers notice a crashed process's connections closing this long after.
const LINK_RESET_NOTICE_US: u64 = 500;

impl Cluster {
    /// The node a client that dials `node` ends up connected to: the first
    /// that is up from `node` on (a down node refuses the connection, and
    /// the client dials the next); `node` itself if none is.
    pub(super) fn reachable_from(&self, node: NodeId) -> NodeId {
        let replicas = self.config.replicas;
        (0..replicas).map(|i| (node - 1 + i) % replicas + 1).find(|&n| self.is_up(n)).unwrap_or(node)
    }

    /// Tell `node` to leave, as a server asked to stop does (`Node::leave`):
    /// as the leader it hands over at its next heartbeat round. False if
    /// it is down.
    pub fn leave(&mut self, node: NodeId) -> bool {
        match self.node_mut(node).node.as_mut() {
            Some(running) => {
                running.leave();
                true
            }
            None => false,
        }
    }

    /// Crash `node`: it loses everything not yet fsynced; with disk faults
    /// the sync in progress may be torn, and deleted blocks may show past
    /// its log's end.
    pub fn crash(&mut self, node: NodeId) {
        self.crash_node(node, true);
    }

    /// A crash; with `may_expose`, deleted blocks may show past the log's
    /// end (not for a crash that loses the disk anyway).
    fn crash_node(&mut self, node: NodeId, may_expose: bool) {
        if !self.is_up(node) {
            return;
        }
        self.faults.crashes += 1;
        let faults = self.config.disk_faults;
        let n = &mut self.nodes[(node - 1) as usize];
        if n.disk.writes_beside() {
            self.faults.crashes_beside += 1;
        }
        let torn = n.disk.crash(faults, &mut self.disk_rng);
        n.node = None;
        n.epoch += 1;
        n.drain_scheduled = false;
        n.stalled_until_us = None;
        n.backlog.clear();
        self.tracer.emit(self.now_us, TraceEvent::Crash { node });
        if torn {
            self.faults.torn_writes += 1;
            self.tracer.emit_with(self.now_us, || TraceEvent::DiskFault {
                node,
                detail: "the crash tore the write in flight".to_string(),
            });
        }
        if faults && may_expose && self.expose_stale(node) {
            self.faults.stale_exposures += 1;
            self.tracer.emit_with(self.now_us, || TraceEvent::DiskFault {
                node,
                detail: "the crash exposed a deleted segment's blocks past the log's end".to_string(),
            });
        }
        // Its peers see the connections close.
        let peers: Vec<NodeId> = self.config.members().into_iter().filter(|&p| p != node && self.is_up(p)).collect();
        for peer in peers {
            let epoch = self.node(peer).epoch;
            self.schedule(LINK_RESET_NOTICE_US, EventKind::LinkDown { node: peer, peer: node, epoch });
        }
        // Its clients' connections close too (the kernel resets them when
        // the process dies): each reconnects to the next node that is up,
        // its operations in flight left open (indeterminate). Keeping the
        // session across the crash would model nothing real, and it stalls:
        // a later command waits in the store for one the crash lost.
        let target = self.reachable_from(node % self.config.replicas + 1);
        for client in self.clients.iter_mut().filter(|c| c.target == node) {
            client.reconnect(target);
            self.faults.reconnects += 1;
        }
    }

    /// After a crash of `node`: with even odds, a deleted segment's blocks
    /// show past its log's end. The replicas share one device here, as a
    /// local cluster's do, so the segment may be any replica's: one a peer
    /// ahead of it deleted holds nearly the same writes, at nearly the same
    /// offsets, as the segment being written.
    fn expose_stale(&mut self, node: NodeId) -> bool {
        if !self.stale_rng.chance(0.5) {
            return false;
        }
        let freed: Vec<&Vec<u8>> = self.nodes.iter().flat_map(|n| n.disk.freed()).collect();
        if freed.is_empty() {
            return false;
        }
        let stale = freed[self.stale_rng.below(freed.len() as u64) as usize].clone();
        self.node_mut(node).disk.expose(&stale)
    }

    /// Crash `node` and lose its disk. With `keep_marker`, only the log is
    /// gone (the replica finds its marker without a log); otherwise the
    /// operator restarts it with `--rejoin`. Either way it must relearn
    /// its state before it votes.
    pub fn lose_disk(&mut self, node: NodeId, keep_marker: bool) {
        self.crash_node(node, false); // the disk goes: nothing to expose
        self.faults.disk_losses += 1;
        if self.node(node).disk.initialized {
            self.watch_disk_lost(node); // it had state, and may have voted with it
        }
        self.node_mut(node).disk.wipe(keep_marker);
        let detail = if keep_marker { "the log is lost" } else { "the disk is replaced (restarts with --rejoin)" };
        self.tracer.emit_with(self.now_us, || TraceEvent::DiskFault { node, detail: detail.to_string() });
    }

    /// Restart `node` from its disk (a lost disk rejoins).
    pub fn restart(&mut self, node: NodeId) {
        if self.is_up(node) {
            return;
        }
        self.faults.restarts += 1;
        // A lost disk without its marker: the operator says --rejoin.
        let rejoin = self.node(node).disk.lost_marker;
        self.tracer.emit(self.now_us, TraceEvent::Restart { node });
        self.boot(node, rejoin, 1_000);
    }

    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        self.faults.partitions += 1;
        self.network.partition(side_a, side_b);
        self.tracer.emit_with(self.now_us, || TraceEvent::Partition {
            side_a: side_a.to_vec(),
            side_b: side_b.to_vec(),
            one_way: false,
        });
    }

    pub fn block_one_way(&mut self, senders: &[NodeId], receivers: &[NodeId]) {
        self.faults.one_way_partitions += 1;
        self.network.block_one_way(senders, receivers);
        self.tracer.emit_with(self.now_us, || TraceEvent::Partition {
            side_a: senders.to_vec(),
            side_b: receivers.to_vec(),
            one_way: true,
        });
    }

    /// The partition also reset the TCP connections between the sides (a
    /// middlebox timing them out): both ends see their links go down, and
    /// up again once the network heals.
    pub fn reset_links(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                for (node, peer) in [(a, b), (b, a)] {
                    if self.is_up(node) {
                        let epoch = self.node(node).epoch;
                        self.schedule(LINK_RESET_NOTICE_US, EventKind::LinkDown { node, peer, epoch });
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        if self.network.is_partitioned() {
            self.faults.heals += 1;
            self.tracer.emit(self.now_us, TraceEvent::Heal {});
        }
        self.network.heal();
        // Every live pair reconnects (a no-op for links that stayed up).
        let live: Vec<NodeId> = self.config.members().into_iter().filter(|&n| self.is_up(n)).collect();
        for &node in &live {
            for &peer in live.iter().filter(|&&p| p != node) {
                let epoch = self.node(node).epoch;
                self.schedule(LINK_RESET_NOTICE_US, EventKind::LinkUp { node, peer, epoch });
            }
        }
    }

    /// Stop message loss, duplication and slow stragglers from now on, and
    /// cap delays: the liveness phase's network, whose delays bound the
    /// latency checker.
    pub fn calm_network(&mut self) {
        self.network.config.loss = 0.0;
        self.network.config.duplicate = 0.0;
        self.network.config.slow_probability = 0.0;
        self.network.cap_delays();
    }

    /// `node`'s executor stops for `duration_us` while time goes on.
    pub fn stall(&mut self, node: NodeId, duration_us: u64) {
        let now = self.now_us;
        let n = self.node_mut(node);
        if n.node.is_none() || n.is_stalled() {
            return;
        }
        n.stalled_until_us = Some(now + duration_us);
        let epoch = n.epoch;
        self.faults.stalls += 1;
        self.schedule(duration_us, EventKind::StallEnd { node, epoch });
        self.tracer.emit(now, TraceEvent::StallStart { node });
    }

    /// The executor runs again: it works through everything that arrived
    /// during the stall, in arrival order, and only then fires its timers.
    pub(super) fn end_stall(&mut self, node: NodeId, epoch: u64) {
        let now = self.now_us;
        let n = self.node_mut(node);
        if n.epoch != epoch || n.node.is_none() {
            return;
        }
        n.stalled_until_us = None;
        let backlog: Vec<Input> = n.backlog.drain(..).collect();
        for input in backlog {
            let synced = matches!(input, Input::Synced { .. });
            self.node_mut(node).apply(now, input);
            if synced {
                self.start_sync(node);
            }
        }
        let n = self.node_mut(node);
        let local = n.clock(now);
        let interval = n.tick_interval_us(1_000);
        self.tick_node(node, local);
        self.schedule(interval, EventKind::Tick { node, epoch });
        self.tracer.emit(now, TraceEvent::StallEnd { node });
        self.drain(node);
    }

    pub(super) fn schedule_fault(&mut self, at_us: u64, kind: EventKind) {
        self.schedule_at(at_us, kind);
    }
}

/// How long after a stall of the followers the leader may be cut off.
const ISOLATE_AFTER_STALL_US: u64 = 2_000;

impl Cluster {
    /// One fault of the safety phase, chosen now from what the cluster
    /// looks like: faults aimed at the leader, at a node in the middle of
    /// an fsync, or at several nodes at once (processes on one host stall
    /// together) reach the windows where protocol bugs live far more often
    /// than faults drawn blindly in advance.
    pub(super) fn inject_fault(&mut self) {
        let plan = self.fault_plan.clone();
        // A group of one has no link between replicas to cut.
        let partitions = plan.partitions && self.config.members().len() > 1;
        let kinds: Vec<u8> = [(partitions, 0), (plan.crashes, 1), (plan.stalls, 2)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, kind)| kind)
            .collect();
        if kinds.is_empty() {
            return;
        }
        match kinds[self.fault_rng.below(kinds.len() as u64) as usize] {
            0 => self.inject_partition(),
            1 => self.inject_crash(),
            _ => self.inject_stall(plan.stall_max_ms),
        }
    }

    fn pick(&mut self, nodes: &[NodeId]) -> NodeId {
        nodes[self.fault_rng.below(nodes.len() as u64) as usize]
    }

    fn followers(&self, leader: Option<NodeId>) -> Vec<NodeId> {
        self.config.members().into_iter().filter(|&n| Some(n) != leader).collect()
    }

    /// Cut the leader off (lease and read bugs show there), deafen one
    /// follower to the leader (it campaigns while the others still follow),
    /// or split the nodes at random; one way or both, sometimes resetting
    /// the connections.
    fn inject_partition(&mut self) {
        let members = self.config.members();
        let leader = self.leader();
        let followers = self.followers(leader);
        let roll = self.fault_rng.below(20);
        let (side_a, side_b, one_way) = match leader {
            Some(leader) if roll < 7 => (vec![leader], followers, self.fault_rng.chance(0.3)),
            Some(leader) if roll < 12 => (vec![leader], vec![self.pick(&followers)], true),
            _ => {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for &m in &members {
                    if self.fault_rng.chance(0.5) {
                        a.push(m)
                    } else {
                        b.push(m)
                    }
                }
                (a, b, self.fault_rng.chance(0.3))
            }
        };
        if side_a.is_empty() || side_b.is_empty() {
            return;
        }
        let (side_a, side_b) =
            if one_way && roll >= 12 && self.fault_rng.chance(0.5) { (side_b, side_a) } else { (side_a, side_b) };
        let deafened = (side_a.len(), side_b.len(), one_way, leader) == (1, 1, true, Some(side_a[0]));
        let resets = self.fault_rng.chance(0.3);
        self.dispatch_partition(side_a, side_b.clone(), one_way, resets);
        let heal_after = self.fault_rng.range_inclusive(100_000, 800_000);
        self.schedule(heal_after, EventKind::Heal);
        if deafened && self.fault_plan.crashes && self.fault_rng.chance(0.8) {
            // While the deafened follower campaigns, another follower
            // restarts within a lease and comes back out of the leader's
            // reach: its forgotten grant is what the restart quarantine
            // protects.
            let others: Vec<NodeId> = self.followers(leader).into_iter().filter(|n| !side_b.contains(n)).collect();
            if let (false, Some(leader)) = (others.is_empty(), leader) {
                let node = self.pick(&others);
                let crash_at = self.fault_rng.range_inclusive(100_000, 300_000).min(heal_after - 1);
                let down_us = self.fault_rng.range_inclusive(2_000, 40_000);
                self.schedule(crash_at, EventKind::CrashRestart { node, down_us });
                let cut =
                    EventKind::Partition { side_a: vec![leader], side_b: vec![node], one_way: true, resets: false };
                self.schedule(crash_at, cut);
            }
        }
    }

    /// Crash one node (often one in the middle of an fsync: torn writes,
    /// and replies that left before their state was durable; often the
    /// leader), or two at once (a rack's power): the leader with another.
    /// Some crashes lose the disk; some restarts come back within a lease.
    fn inject_crash(&mut self) {
        let members = self.config.members();
        let leader = self.leader();
        let syncing: Vec<NodeId> =
            members.iter().copied().filter(|&n| self.is_up(n) && self.node(n).disk.is_syncing()).collect();
        let mut victims = vec![match self.fault_rng.below(3) {
            0 if !syncing.is_empty() => self.pick(&syncing),
            1 if leader.is_some() => leader.expect("checked"),
            _ => self.pick(&members),
        }];
        // A second victim needs a second member (a group of one has none).
        if members.len() > 1 && self.fault_rng.chance(0.25) {
            let others: Vec<NodeId> = members.iter().copied().filter(|n| !victims.contains(n)).collect();
            let syncing_others: Vec<NodeId> = syncing.iter().copied().filter(|n| others.contains(n)).collect();
            let second = match leader.filter(|l| !victims.contains(l)) {
                Some(leader) if self.fault_rng.chance(0.5) => leader,
                _ if !syncing_others.is_empty() => self.pick(&syncing_others),
                _ => self.pick(&others),
            };
            victims.push(second);
        }
        if victims.len() == 1 && members.len() > 1 && self.fault_rng.chance(0.2) {
            // A planned stop (SIGTERM to a server, `server::stop_on_signal`):
            // the node leaves first, and as the leader hands its
            // leadership over at its next heartbeat round; it goes down a
            // little later (the server waits until it leads nothing).
            let node = victims[0];
            if self.leave(node) {
                self.faults.planned_stops += 1;
                let down_after = self.fault_rng.range_inclusive(2_000, 40_000);
                let down_us = self.fault_rng.range_inclusive(5_000, 500_000);
                self.schedule(down_after, EventKind::StopRestart { node, down_us });
                return;
            }
        }
        for node in victims {
            let lose_disk = self.config.disk_faults && self.disk_losses_left > 0 && self.fault_rng.chance(0.15);
            if lose_disk {
                self.disk_losses_left -= 1;
                let keep_marker = self.fault_rng.chance(0.5);
                self.lose_disk(node, keep_marker);
            } else {
                self.crash(node);
            }
            let restart_after = if self.fault_rng.chance(0.3) {
                self.fault_rng.range_inclusive(5_000, 100_000)
            } else {
                self.fault_rng.range_inclusive(50_000, 1_000_000)
            };
            self.schedule(restart_after, EventKind::Restart { node });
        }
    }

    /// Stall the followers together (one host's processes), and perhaps
    /// cut the leader off right as they wake; or stall the leader (its
    /// backlog holds its successor's messages and its clients' reads); or
    /// any one node.
    fn inject_stall(&mut self, stall_max_ms: u64) {
        let max_us = stall_max_ms.max(1) * 1000;
        let duration_us = self.fault_rng.range_inclusive(1_000.min(max_us), max_us);
        let members = self.config.members();
        let leader = self.leader();
        let stalled: Vec<NodeId> = match (self.fault_rng.below(5), leader) {
            (0 | 1, Some(leader)) => {
                let followers = self.followers(Some(leader));
                if self.fault_rng.chance(0.6) {
                    let at = duration_us + self.fault_rng.below(ISOLATE_AFTER_STALL_US);
                    let side_b = followers.clone();
                    self.schedule(
                        at,
                        EventKind::Partition { side_a: vec![leader], side_b, one_way: false, resets: false },
                    );
                    let heal_after = at + self.fault_rng.range_inclusive(100_000, 400_000);
                    self.schedule(heal_after, EventKind::Heal);
                }
                followers
            }
            (2, Some(leader)) => vec![leader],
            _ => vec![self.pick(&members)],
        };
        for node in stalled {
            self.stall(node, duration_us);
        }
    }

    pub(super) fn dispatch_partition(&mut self, side_a: Vec<NodeId>, side_b: Vec<NodeId>, one_way: bool, resets: bool) {
        if one_way {
            self.block_one_way(&side_a, &side_b);
        } else {
            self.partition(&side_a, &side_b);
        }
        if resets {
            self.reset_links(&side_a, &side_b);
        }
    }
}
