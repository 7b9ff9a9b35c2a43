//! The simulator as a node's shell: it hands the node its inputs (with the
//! node's local time), runs its Ready loop, and carries out its output on
//! the simulated network, disk and clients, where the checkers watch.

use super::checker::Violation;
use super::cluster::{Cluster, EventKind, LeaderChange};
use super::node::Input;
use crate::net::peer::PeerFrame;
use crate::node::{Boot, Node, NodeEvent, Output};
use crate::paxos::{Ballot, Event, NodeId, StepDownReason};
use crate::trace::{DropReason, Event as TraceEvent, MessageId};

/// A node collects its output at most this long after a delivery.
const STEP_BATCH_WINDOW_US: u64 = 50;
/// A server that drains again for more work that goes a share per drain
/// (held requests, a snapshot's copy) does so after its other tasks had a
/// turn (`Node::wants_another_drain`).
const RELEASE_YIELD_US: u64 = 10;

/// Link connect/reset notices arrive this long after the cause.
const LINK_NOTICE_US: u64 = 1_000;

impl Cluster {
    /// Start node `id` from its disk (at cluster start, or a restart):
    /// brand new, restarted, or rejoining after its state was lost.
    pub(super) fn boot(&mut self, id: NodeId, rejoin: bool, first_tick_us: u64) {
        let (seed, core) = (self.seed, self.paxos_config.clone());
        let config = self.config.node_config(id);
        let (now, tracing) = (self.now_us, self.tracer.enabled());
        let n = self.node_mut(id);
        let durable = match n.disk.recover() {
            Ok(durable) => durable,
            Err(detail) => {
                // The disk model damages only what was never synced, so
                // recovery must cope: anything else is a bug in the WAL or
                // the model. The node stays down (an operator would move
                // the directory aside and rejoin it).
                let detail = format!("node {id} failed to recover: {detail}");
                self.checker.violations.push(Violation::Recovery { detail });
                return;
            }
        };
        let recovered = (tracing && n.disk.initialized && !rejoin)
            .then(|| format!("from its disk: promised {}, commit {}", durable.promised, durable.commit));
        let boot = Boot::decide(durable, n.disk.initialized, rejoin);
        let seed = seed.wrapping_add(n.epoch.wrapping_mul(0x9E37_79B9)).wrapping_add(u64::from(id));
        match Node::boot(config, core, seed, boot) {
            Ok(node) => n.node = Some(node),
            Err(detail) => {
                self.checker.violations.push(Violation::Recovery { detail: format!("node {id}: {detail}") });
                return;
            }
        }
        n.booted_at_us = now;
        n.clock(now);
        let epoch = n.epoch;
        self.tracer.node_restarted(id);
        if let Some(detail) = recovered {
            self.tracer.emit(now, TraceEvent::Recovery { node: id, detail });
        }
        // Links to every live peer come up (both ends learn it).
        let peers: Vec<NodeId> = self.config.members().into_iter().filter(|&p| p != id && self.is_up(p)).collect();
        for peer in peers {
            let peer_epoch = self.node(peer).epoch;
            self.schedule(LINK_NOTICE_US, EventKind::LinkUp { node: id, peer, epoch });
            self.schedule(LINK_NOTICE_US, EventKind::LinkUp { node: peer, peer: id, epoch: peer_epoch });
        }
        self.schedule(first_tick_us, EventKind::Tick { node: id, epoch });
        self.drain(id);
    }

    /// Hand an input to node `id`, or queue it while the node is stalled.
    pub(super) fn input(&mut self, id: NodeId, input: Input) {
        let now = self.now_us;
        let n = self.node_mut(id);
        if n.node.is_none() {
            return;
        }
        if n.is_stalled() {
            n.backlog.push_back(input);
            return;
        }
        let batch = matches!(input, Input::Deliver { .. });
        let synced = matches!(input, Input::Synced { .. });
        n.apply(now, input);
        if synced {
            self.start_sync(id);
        }
        if !batch {
            self.drain(id);
            return;
        }
        // Like a real shell that steps its whole inbound queue before one
        // Ready, collect output a little later, so other messages may be
        // stepped in between.
        let n = self.node_mut(id);
        if !n.drain_scheduled {
            n.drain_scheduled = true;
            let epoch = n.epoch;
            let after = self.net_rng.below(STEP_BATCH_WINDOW_US + 1);
            self.schedule(after, EventKind::Drain { node: id, epoch });
        }
    }

    pub(super) fn on_tick(&mut self, id: NodeId, epoch: u64) {
        let now = self.now_us;
        let n = self.node_mut(id);
        if n.epoch != epoch || n.node.is_none() || n.is_stalled() {
            return; // a chain from before a crash, or paused by a stall (it resumes after)
        }
        let local = n.clock(now);
        let interval = n.tick_interval_us(1_000);
        self.tick_node(id, local);
        self.schedule(interval, EventKind::Tick { node: id, epoch });
        self.drain(id);
    }

    /// Tick node `id` at local time `local`, as the simulator does every
    /// tick; the server's ticker instead sleeps until the node's reported
    /// deadline (`Node::next_tick_us`). A tick that acts before it is a
    /// violation: the server would have acted late, or never.
    pub(super) fn tick_node(&mut self, id: NodeId, local: u64) {
        let now = self.now_us;
        let node = self.node_mut(id).node.as_mut().expect("live");
        let due_us = node.next_tick_us();
        let acted = node.tick(local);
        if acted && due_us.is_none_or(|due| local < due) {
            // The first per node: the same fault tends to repeat every tick.
            let known =
                self.checker.violations.iter().any(|v| matches!(v, Violation::EarlyTick { node, .. } if *node == id));
            if !known {
                self.checker.violations.push(Violation::EarlyTick { node: id, local_us: local, due_us, t_us: now });
            }
        }
    }

    pub(super) fn on_deliver(&mut self, from: NodeId, to: NodeId, id: MessageId, frame: PeerFrame) {
        if !self.is_up(to) {
            let reason = DropReason::ReceiverDown;
            self.tracer.emit(self.now_us, TraceEvent::Drop { id, from, to, reason });
            return;
        }
        self.messages_delivered += 1;
        self.tracer.emit(self.now_us, TraceEvent::Deliver { id, from, to });
        self.input(to, Input::Deliver { from, frame });
    }

    /// Node `id`'s sync covering `token` finished: the disk holds it now,
    /// whether or not the node's executor runs. The node learns what is
    /// durable when it does, and only once every sync before this one
    /// finished too (`SimDisk::complete`).
    pub(super) fn on_synced(&mut self, id: NodeId, epoch: u64, token: u64) {
        let n = self.node_mut(id);
        if n.epoch != epoch || n.node.is_none() {
            return;
        }
        if let Some(token) = n.disk.complete(token) {
            self.input(id, Input::Synced { token });
        }
    }

    /// Start a sync of everything appended, if the node waits for one
    /// (`Node::sync_wanted`) and the disk takes it: idle, or beside a lone
    /// write (`SimDisk::start_sync`).
    pub(super) fn start_sync(&mut self, id: NodeId) {
        let n = self.node_mut(id);
        if !n.node.as_ref().is_some_and(|node| node.sync_wanted()) {
            return;
        }
        let Some(token) = n.disk.start_sync() else { return };
        let epoch = n.epoch;
        let jitter = 1.0 + self.disk_rng.unit() * self.config.fsync_jitter;
        let after = (self.config.fsync_us as f64 * jitter) as u64 * self.config.fsync_factor(id);
        self.schedule(after, EventKind::Synced { node: id, epoch, token });
    }

    /// Run node `id`'s Ready loop and carry out its output.
    pub(super) fn drain(&mut self, id: NodeId) {
        let n = self.node_mut(id);
        if n.is_stalled() {
            return;
        }
        let Some(node) = n.node.as_mut() else { return };
        node.drain();
        let more = node.wants_another_drain();
        let output = node.take_output();
        self.perform(id, output);
        // What the node held while its disk was behind goes a share per
        // drain: it drains again once its other tasks had a turn.
        let n = self.node_mut(id);
        if more && !n.drain_scheduled {
            n.drain_scheduled = true;
            let epoch = n.epoch;
            self.schedule(RELEASE_YIELD_US, EventKind::Drain { node: id, epoch });
        }
    }

    fn perform(&mut self, id: NodeId, output: Output<super::client::SimWaiter>) {
        let Output { messages, appends, replies, events, snapshot } = output;
        if self.tracer.enabled() {
            self.trace_output(id, &events);
        }
        for event in events {
            self.on_node_event(id, event);
        }
        for (to, frame) in messages {
            self.watch_frame(id, to, &frame);
            self.transmit(id, to, frame);
        }
        let n = self.node_mut(id);
        for append in appends {
            n.disk.append(append.token, &append.ops);
        }
        self.start_sync(id);
        for (waiter, reply) in replies {
            let delay = self.network.delay(&mut self.net_rng);
            self.schedule(delay, EventKind::ClientReply { waiter, reply });
        }
        if let Some(job) = snapshot {
            let data = job.image.encode();
            let epoch = self.node(id).epoch;
            let kind = EventKind::SnapshotDone { node: id, epoch, slot: job.slot, data };
            self.schedule(self.config.snapshot_us, kind);
        }
    }

    /// Put a frame on the simulated network.
    pub(super) fn transmit(&mut self, from: NodeId, to: NodeId, frame: PeerFrame) {
        use super::network::{DropReason as Lost, Fate};
        let id = self.tracer.next_message_id();
        let now = self.now_us;
        self.tracer.emit_with(now, || TraceEvent::Send(crate::trace::frame_send(id, from, to, &frame)));
        match self.network.fate(&mut self.net_rng, from, to) {
            Fate::Dropped(reason) => {
                let reason = match reason {
                    Lost::Loss => {
                        self.faults.messages_lost += 1;
                        DropReason::Loss
                    }
                    Lost::Partition => {
                        self.faults.messages_cut += 1;
                        DropReason::Partition
                    }
                };
                self.tracer.emit(now, TraceEvent::Drop { id, from, to, reason });
            }
            Fate::Delivered(delays) => {
                if delays.len() > 1 {
                    self.faults.messages_duplicated += 1;
                }
                for delay in delays {
                    self.schedule(delay, EventKind::Deliver { from, to, id, frame: frame.clone() });
                }
            }
        }
    }

    /// Where the checkers watch the nodes.
    fn on_node_event(&mut self, id: NodeId, event: NodeEvent) {
        match event {
            NodeEvent::Core(event) => self.on_core_event(id, event),
            NodeEvent::Applied { slot, .. } => {
                let value = self.node(id).replica().and_then(|r| r.chosen_value(slot)).cloned();
                match value {
                    Some(value) => self.checker.on_commit(id, slot, &value, self.now_us),
                    None => self.checker.note_committed(slot + 1, self.now_us),
                }
            }
            NodeEvent::ReadRegistered { id: read, at_us, promised } => {
                // As of when the node took the read in, not when its output
                // was collected: a node that stalls right after taking a
                // read in hands over the event only when it wakes, and the
                // commits of that whole stall are not the read's business.
                let begun_us = self.node(id).real_us(at_us).min(self.now_us);
                let committed = self.checker.committed_end_at(begun_us);
                self.reads_begun.insert((id, read), (begun_us, committed, promised));
            }
            NodeEvent::ReadServed { id: read, read_index, at_ms, session, seq } => {
                self.read_times.entry((session, seq)).or_default().push(at_ms);
                if let Some((begun_us, committed, ballot)) = self.reads_begun.remove(&(id, read)) {
                    self.checker.on_read(id, read_index, committed, self.now_us);
                    self.watch_read(id, begun_us, ballot);
                }
            }
            NodeEvent::Stage { .. } => {}
            NodeEvent::Executed { session, seq, reply, at_ms } => {
                self.executions.entry((session, seq)).or_insert((self.now_us, reply, at_ms));
            }
            NodeEvent::SnapshotInstalled { slot } => {
                self.snapshots_installed += 1;
                self.tracer.emit_with(self.now_us, || {
                    let detail = format!("installed a snapshot from a peer covering slots below {slot}");
                    TraceEvent::Recovery { node: id, detail }
                });
            }
            NodeEvent::PeerMessageRefused { from, error } => {
                // Every message here came from a real node: refusing one is a bug.
                let message = format!("node {id} refused a message from node {from}: {error}");
                self.checker.violations.push(Violation::Panic { message });
            }
            NodeEvent::BadForward { from, detail } => {
                let detail = format!("node {id} could not decode a forward from node {from}: {detail}");
                self.checker.violations.push(Violation::BadReply { detail });
            }
            NodeEvent::Fatal(detail) => {
                self.checker.violations.push(Violation::Panic { message: format!("node {id}: {detail}") });
            }
            NodeEvent::ForwardReadWindowFull => self.forward_read_waits += 1,
            NodeEvent::Backpressure { .. } => self.backpressure_holds += 1,
            NodeEvent::PeerFrameDropped { .. } => self.peer_frames_dropped += 1,
            NodeEvent::Proposed | NodeEvent::Forwarded { .. } | NodeEvent::SnapshotStarted { .. } => {}
        }
    }

    fn on_core_event(&mut self, id: NodeId, event: Event) {
        match event {
            Event::ElectionStarted { ballot } => {
                self.elections_started.push(LeaderChange { t_us: self.now_us, node: id, ballot });
            }
            Event::BecameLeader { ballot, .. } => {
                self.leader_changes.push(LeaderChange { t_us: self.now_us, node: id, ballot });
                self.check_no_lease_held_elsewhere(id, ballot);
            }
            Event::Chosen { slot, ballot, voters } => self.watch_chosen(id, slot, ballot, voters),
            Event::LeaseGranted { holder, .. } => {
                if holder.node != id {
                    self.watch_grant(id, holder);
                }
            }
            Event::LeaseReleased { holder } => self.watch_release(id, holder),
            Event::LeaseExtended { ballot, until_tick, ackers } => self.watch_lease(id, ballot, until_tick, ackers),
            Event::Recovered { .. } => {
                self.recoveries += 1;
                self.watch_recovered(id);
            }
            Event::SteppedDown { reason: StepDownReason::HandedOver, .. } => {
                self.hand_overs += 1;
                self.last_hand_over_us = Some(self.now_us);
            }
            Event::PreVoteStarted { .. } | Event::SteppedDown { .. } | Event::RecoveryStarted => {}
        }
    }

    /// Lease safety: a new leader needs promises from a majority, which
    /// must have waited out every lease they granted. So no replica of a
    /// lower ballot may still hold a lease now, judged at its own current
    /// local time (a stalled replica's clock moves on when it wakes, before
    /// any read). A "leader" of a lower ballot than the lease holder's (its
    /// promises came before the holder's) can never have anything chosen or
    /// confirm a round: it is deposed as it takes office.
    fn check_no_lease_held_elsewhere(&mut self, new_leader: NodeId, ballot: Ballot) {
        let now = self.now_us;
        let holders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.id != new_leader)
            .filter(|n| n.replica().is_some_and(|r| r.status().promised < ballot))
            .filter(|n| n.replica().is_some_and(|r| r.holds_lease_at(n.local_us(now) / 1_000)))
            .map(|n| n.id)
            .collect();
        for holder in holders {
            self.checker.violations.push(Violation::LeaseOverlap { holder, new_leader, t_us: now });
        }
    }
}
