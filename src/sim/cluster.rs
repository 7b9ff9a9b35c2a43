//! The simulated cluster: N replicas of the real core and the real store,
//! a simulated network and disk, simulated clients, and one seeded event
//! queue that owns time. One seed reproduces a run exactly.
//!
//! Scenario tests drive it directly and read like a transcript:
//! `cluster.partition(&[1], &[2, 3]); cluster.run_for_ms(500); cluster.heal();`

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::checker::Checker;
use super::client::{ClientReply, History, SimClient};
use super::disk::CrashWrite;
use super::network::{Fate, Network, NetworkConfig};
use super::node::SimNode;
use super::trace::{TraceEvent, Tracer};
use crate::kv::Command;
use crate::paxos::{Ballot, Config, Envelope, InjectedBug, NodeId};
use crate::rng::Rng;

/// A node collects its output at most this long after a delivery.
const STEP_BATCH_WINDOW_US: u64 = 50;

/// How reads reach the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// Local at a leader holding a lease, else a read-index round.
    Lease,
    /// Always a read-index round (lease reads off).
    ReadIndex,
    /// Reads are proposed and applied through the log like writes.
    Log,
}

impl ReadMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReadMode::Lease => "lease",
            ReadMode::ReadIndex => "read-index",
            ReadMode::Log => "log",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub replicas: u32,
    pub clients: usize,
    pub keys: u32,
    pub network: NetworkConfig,
    /// Time from a write to its fsync completing.
    pub fsync_us: u64,
    /// Each replica's tick clock runs at a rate within this many parts per
    /// thousand of real time (the core is told the same bound).
    pub drift_permille: u64,
    pub read_mode: ReadMode,
    pub window_slots: usize,
    pub batch_count_max: usize,
    /// A client gives up on a replica after this long and tries the next.
    pub client_timeout_us: u64,
    /// Pause between a client's operations.
    pub think_us: u64,
    pub injected_bug: InjectedBug,
    /// Each replica snapshots its store every this many applied slots and
    /// compacts its log (0: never).
    pub snapshot_every_slots: u64,
    /// Snapshot transfer chunk size (small, so transfers take several chunks).
    pub snapshot_chunk_bytes: usize,
    /// A crash may tear the write in flight and flip a bit in it.
    pub disk_faults: bool,
    /// Override the core's election timeout range `(min, max)` in ticks
    /// (equal bounds make replicas time out together: dueling proposers).
    pub election_timeout_ticks: Option<(u64, u64)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            replicas: 3,
            clients: 4,
            keys: 6,
            network: NetworkConfig::default(),
            fsync_us: 200,
            drift_permille: 50,
            read_mode: ReadMode::Lease,
            window_slots: 16,
            batch_count_max: 64,
            client_timeout_us: 60_000,
            think_us: 2_000,
            injected_bug: InjectedBug::None,
            snapshot_every_slots: 64,
            snapshot_chunk_bytes: 64,
            disk_faults: false,
            election_timeout_ticks: None,
        }
    }
}

impl SimConfig {
    pub fn members(&self) -> Vec<NodeId> {
        (1..=self.replicas).collect()
    }

    /// The core's configuration for this simulation (1 tick = 1 ms).
    pub fn paxos_config(&self) -> Config {
        let mut c = Config::new(self.members());
        c.window_slots = self.window_slots;
        c.batch_count_max = self.batch_count_max;
        c.clock_drift_permille = self.drift_permille;
        c.lease_reads = self.read_mode == ReadMode::Lease;
        c.injected_bug = self.injected_bug;
        c.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        if let Some((min, max)) = self.election_timeout_ticks {
            c.election_timeout_min_ticks = min;
            c.election_timeout_max_ticks = max;
        }
        c
    }
}

#[derive(Clone, Debug)]
pub(super) enum EventKind {
    Tick {
        node: NodeId,
        epoch: u64,
    },
    Deliver {
        envelope: Envelope,
    },
    /// Collect a node's output after a burst of deliveries.
    Drain {
        node: NodeId,
        epoch: u64,
    },
    Persisted {
        node: NodeId,
        epoch: u64,
        number: u64,
    },
    ClientStart {
        client: usize,
    },
    ClientRequest {
        node: NodeId,
        client: usize,
        attempt: u64,
        command: Command,
    },
    ClientReply {
        client: usize,
        attempt: u64,
        reply: ClientReply,
    },
    ClientTimeout {
        client: usize,
        attempt: u64,
    },
    ClientRetry {
        client: usize,
        attempt: u64,
    },
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Partition {
        side_a: Vec<NodeId>,
        side_b: Vec<NodeId>,
        one_way: bool,
    },
    Heal,
}

struct Scheduled {
    at_us: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Min-heap on (time, insertion order): equal times run in the order scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

/// A leader taking office, for the run summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    pub t_us: u64,
    pub node: NodeId,
    pub ballot: Ballot,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub crashes: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub one_way_partitions: u64,
    pub heals: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub messages_cut: u64,
    /// Crashes that tore the write in flight (some with a flipped bit).
    pub torn_writes: u64,
}

pub struct Cluster {
    pub config: SimConfig,
    pub paxos_config: Config,
    pub seed: u64,
    pub now_us: u64,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    pub(super) net_rng: Rng,
    client_rng: Rng,
    disk_rng: Rng,
    pub network: Network,
    pub nodes: Vec<SimNode>,
    pub(super) clients: Vec<SimClient>,
    pub history: History,
    pub checker: Checker,
    pub tracer: Tracer,
    pub leader_changes: Vec<LeaderChange>,
    /// Phase 1 campaigns started (after a successful pre-vote).
    pub elections_started: Vec<LeaderChange>,
    pub faults: FaultCounts,
    pub messages_delivered: u64,
    /// Snapshots replicas received from peers and installed.
    pub snapshots_installed: u64,
}

impl Cluster {
    pub fn new(config: SimConfig, seed: u64) -> Cluster {
        let paxos_config = config.paxos_config();
        paxos_config.validate().expect("simulator builds a valid core config");
        let mut rng = Rng::new(seed);
        let mut node_rng = rng.fork();
        let mut nodes = Vec::new();
        for id in config.members() {
            // A tick every 1 ms of the node's clock; its clock runs fast or
            // slow by up to `drift_permille`.
            let drift = node_rng.range_inclusive(0, 2 * config.drift_permille) as i64 - config.drift_permille as i64;
            let tick_interval_us = (1_000_000 / (1000 + drift)) as u64;
            nodes.push(SimNode::new(id, &paxos_config, seed, tick_interval_us));
        }
        let clients =
            (0..config.clients).map(|i| SimClient::new(i, (i as u32 % config.replicas) + 1, config.keys)).collect();
        let mut cluster = Cluster {
            network: Network::new(config.network.clone()),
            paxos_config,
            seed,
            now_us: 0,
            queue: BinaryHeap::new(),
            next_seq: 0,
            net_rng: rng.fork(),
            client_rng: rng.fork(),
            disk_rng: rng.fork(),
            nodes,
            clients,
            history: History::default(),
            checker: Checker::default(),
            tracer: Tracer::default(),
            leader_changes: Vec::new(),
            elections_started: Vec::new(),
            faults: FaultCounts::default(),
            messages_delivered: 0,
            snapshots_installed: 0,
            config,
        };
        for i in 0..cluster.nodes.len() {
            let phase = node_rng.below(cluster.nodes[i].tick_interval_us);
            let node = cluster.nodes[i].id;
            cluster.schedule(phase, EventKind::Tick { node, epoch: 0 });
        }
        cluster
    }

    pub(super) fn schedule(&mut self, after_us: u64, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Scheduled { at_us: self.now_us + after_us, seq, kind });
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn node(&self, id: NodeId) -> &SimNode {
        &self.nodes[(id - 1) as usize]
    }

    pub(super) fn trace(&mut self, event: TraceEvent<'_>) {
        self.tracer.emit(event);
    }

    // ---- running ----------------------------------------------------------

    /// Process events up to and including time `t_us`.
    pub fn run_until_us(&mut self, t_us: u64) {
        while let Some(next) = self.queue.peek() {
            if next.at_us > t_us {
                break;
            }
            let event = self.queue.pop().expect("peeked");
            self.now_us = event.at_us;
            self.dispatch(event.kind);
        }
        self.now_us = self.now_us.max(t_us);
    }

    pub fn run_for_ms(&mut self, ms: u64) {
        self.run_until_us(self.now_us + ms * 1000);
    }

    /// Run in 1 ms steps until `done` holds or `max_ms` pass. Returns whether it held.
    pub fn run_until(&mut self, max_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..max_ms {
            if done(self) {
                return true;
            }
            self.run_for_ms(1);
        }
        done(self)
    }

    fn dispatch(&mut self, kind: EventKind) {
        match kind {
            EventKind::Tick { node, epoch } => self.on_tick(node, epoch),
            EventKind::Deliver { envelope } => self.on_deliver(envelope),
            EventKind::Drain { node, epoch } => {
                let n = self.node_mut(node);
                if n.epoch == epoch {
                    n.drain_scheduled = false;
                    self.drain(node);
                }
            }
            EventKind::Persisted { node, epoch, number } => self.on_persisted(node, epoch, number),
            EventKind::ClientStart { client } => self.on_client_start(client),
            EventKind::ClientRequest { node, client, attempt, command } => {
                self.on_client_request(node, client, attempt, command)
            }
            EventKind::ClientReply { client, attempt, reply } => self.on_client_reply(client, attempt, reply),
            EventKind::ClientTimeout { client, attempt } => self.on_client_timeout(client, attempt),
            EventKind::ClientRetry { client, attempt } => {
                if self.clients[client].attempt == attempt && self.clients[client].current.is_some() {
                    self.send_client_request(client);
                }
            }
            EventKind::Crash { node } => self.crash(node),
            EventKind::Restart { node } => self.restart(node),
            EventKind::Partition { side_a, side_b, one_way } => {
                if one_way {
                    self.block_one_way(&side_a, &side_b);
                } else {
                    self.partition(&side_a, &side_b);
                }
            }
            EventKind::Heal => self.heal(),
        }
    }

    fn on_tick(&mut self, node: NodeId, epoch: u64) {
        let n = self.node_mut(node);
        if n.epoch != epoch {
            return; // a tick chain from before a crash
        }
        let interval = n.tick_interval_us;
        if let Some(replica) = n.replica.as_mut() {
            replica.tick();
            self.schedule(interval, EventKind::Tick { node, epoch });
            self.drain(node);
        }
    }

    /// Put a replica's messages on the simulated network.
    pub(super) fn transmit(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            let trace = self.tracer.enabled();
            let fate = self.network.fate(&mut self.net_rng, envelope.from, envelope.to);
            match fate {
                Fate::Dropped(reason) => {
                    match reason {
                        super::network::DropReason::Loss => self.faults.messages_lost += 1,
                        super::network::DropReason::Partition => self.faults.messages_cut += 1,
                    }
                    if trace {
                        self.trace_message("drop", &envelope, Some(reason.as_str()));
                    }
                }
                Fate::Delivered(delays) => {
                    if trace {
                        self.trace_message("send", &envelope, None);
                    }
                    if delays.len() > 1 {
                        self.faults.messages_duplicated += 1;
                    }
                    for delay in delays {
                        self.schedule(delay, EventKind::Deliver { envelope: envelope.clone() });
                    }
                }
            }
        }
    }

    fn trace_message(&mut self, event: &str, envelope: &Envelope, detail: Option<&str>) {
        let (node, peer) = if event == "deliver" { (envelope.to, envelope.from) } else { (envelope.from, envelope.to) };
        self.tracer.emit(TraceEvent {
            t_us: self.now_us,
            node: Some(node),
            event,
            kind: Some(envelope.message.kind()),
            ballot: envelope.message.ballot(),
            slot: envelope.message.slot(),
            peer: Some(peer),
            detail,
        });
    }

    fn on_deliver(&mut self, envelope: Envelope) {
        let to = envelope.to;
        if self.node(to).replica.is_none() {
            return; // the receiver is down
        }
        self.messages_delivered += 1;
        if self.tracer.enabled() {
            self.trace_message("deliver", &envelope, None);
        }
        let replica = self.node_mut(to).replica.as_mut().expect("checked live");
        // Every message here was produced by a real replica: refusing one is a bug.
        if let Err(e) = replica.step(envelope.from, envelope.message) {
            panic!("node {to} refused a message from node {}: {e}", envelope.from);
        }
        // Like a real shell that steps its whole inbound queue before one
        // `ready()` (group commit), collect output a little later, so other
        // messages may be stepped in between.
        let n = self.node_mut(to);
        if !n.drain_scheduled {
            n.drain_scheduled = true;
            let epoch = n.epoch;
            let after = self.net_rng.below(STEP_BATCH_WINDOW_US + 1);
            self.schedule(after, EventKind::Drain { node: to, epoch });
        }
    }

    // ---- faults -----------------------------------------------------------

    /// Crash `node`: it loses everything not yet fsynced.
    pub fn crash(&mut self, node: NodeId) {
        if self.node(node).replica.is_none() {
            return;
        }
        self.faults.crashes += 1;
        let how = if !self.config.disk_faults {
            CrashWrite::Lost
        } else {
            match self.disk_rng.below(3) {
                0 => CrashWrite::Lost,
                1 => CrashWrite::Torn,
                _ => CrashWrite::TornAndFlipped,
            }
        };
        if how != CrashWrite::Lost {
            self.faults.torn_writes += 1;
        }
        let mut rng = std::mem::replace(&mut self.disk_rng, Rng::new(0));
        self.node_mut(node).crash(how, &mut rng);
        self.disk_rng = rng;
        self.trace(TraceEvent { t_us: self.now_us, node: Some(node), event: "crash", ..Default::default() });
    }

    /// Restart `node` from its durable state.
    pub fn restart(&mut self, node: NodeId) {
        if self.node(node).replica.is_some() {
            return;
        }
        self.faults.restarts += 1;
        let config = self.paxos_config.clone();
        let seed = self.seed;
        let n = self.node_mut(node);
        if let Err(detail) = n.restart(&config, seed) {
            // Only unsynced bytes are ever damaged: recovery must cope.
            let detail = format!("node {node} failed to recover: {detail}");
            self.checker.violations.push(super::checker::Violation::Recovery { detail });
            return;
        }
        let n = self.node_mut(node);
        let (interval, epoch) = (n.tick_interval_us, n.epoch);
        self.trace(TraceEvent { t_us: self.now_us, node: Some(node), event: "restart", ..Default::default() });
        self.schedule(interval, EventKind::Tick { node, epoch });
        self.drain(node);
    }

    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        self.faults.partitions += 1;
        self.network.partition(side_a, side_b);
        let detail = format!("{side_a:?} | {side_b:?}");
        self.trace(TraceEvent { t_us: self.now_us, event: "partition", detail: Some(&detail), ..Default::default() });
    }

    pub fn block_one_way(&mut self, senders: &[NodeId], receivers: &[NodeId]) {
        self.faults.one_way_partitions += 1;
        self.network.block_one_way(senders, receivers);
        let detail = format!("{senders:?} -> {receivers:?}");
        let event =
            TraceEvent { t_us: self.now_us, event: "partition_one_way", detail: Some(&detail), ..Default::default() };
        self.trace(event);
    }

    pub fn heal(&mut self) {
        if self.network.is_partitioned() {
            self.faults.heals += 1;
        }
        self.network.heal();
        self.trace(TraceEvent { t_us: self.now_us, event: "heal", ..Default::default() });
    }

    /// Stop message loss and duplication from now on.
    pub fn calm_network(&mut self) {
        self.network.config.loss = 0.0;
        self.network.config.duplicate = 0.0;
    }

    pub(super) fn schedule_fault(&mut self, at_us: u64, kind: EventKind) {
        let after = at_us.saturating_sub(self.now_us);
        self.schedule(after, kind);
    }

    // ---- inspection -------------------------------------------------------

    /// The live leader with the highest ballot, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .filter(|r| r.is_leader())
            .max_by_key(|r| r.status().promised)
            .map(|r| r.id())
    }

    /// Live replicas that believe they lead (more than one is allowed
    /// transiently; only one can commit).
    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes.iter().filter_map(|n| n.replica.as_ref()).filter(|r| r.is_leader()).map(|r| r.id()).collect()
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.node(node).replica.is_some()
    }

    /// Commit index per live replica.
    pub fn commit_indexes(&self) -> Vec<(NodeId, u64)> {
        self.nodes.iter().filter_map(|n| n.replica.as_ref().map(|r| (n.id, r.commit_index()))).collect()
    }

    // ---- clients ----------------------------------------------------------

    /// Let every client start issuing operations.
    pub fn start_clients(&mut self) {
        for client in 0..self.clients.len() {
            self.clients[client].active = true;
            let jitter = self.client_rng.below(self.config.think_us.max(1));
            self.schedule(jitter, EventKind::ClientStart { client });
        }
    }

    /// Clients finish their current operation and start no new one.
    pub fn stop_clients(&mut self) {
        for client in &mut self.clients {
            client.active = false;
        }
    }

    /// Clients whose current operation has not completed.
    pub fn pending_clients(&self) -> Vec<usize> {
        self.clients.iter().filter(|c| c.current.is_some()).map(|c| c.index).collect()
    }

    fn on_client_start(&mut self, client: usize) {
        let keys = self.config.keys;
        let c = &mut self.clients[client];
        if !c.active || c.current.is_some() {
            return;
        }
        let (key, input) = c.next_input(&mut self.client_rng, keys);
        let seq = c.next_seq;
        c.next_seq += 1;
        let history_index = self.history.invoke(client, key, input, self.now_us);
        self.clients[client].current = Some(super::client::CurrentOp { key, input, seq, history_index });
        self.send_client_request(client);
    }

    pub(super) fn send_client_request(&mut self, client: usize) {
        let c = &mut self.clients[client];
        let Some(current) = c.current.clone() else { return };
        c.attempt += 1;
        let (attempt, node) = (c.attempt, c.target);
        let command =
            Command { session: c.session, seq: current.seq, op: super::client::kv_op(current.key, current.input) };
        let delay = self.network.delay(&mut self.net_rng);
        self.schedule(delay, EventKind::ClientRequest { node, client, attempt, command });
        self.schedule(self.config.client_timeout_us, EventKind::ClientTimeout { client, attempt });
    }

    pub(super) fn reply_to_client(&mut self, client: usize, attempt: u64, reply: ClientReply) {
        let delay = self.network.delay(&mut self.net_rng);
        self.schedule(delay, EventKind::ClientReply { client, attempt, reply });
    }

    fn on_client_reply(&mut self, client: usize, attempt: u64, reply: ClientReply) {
        let c = &self.clients[client];
        if c.attempt != attempt {
            return; // an answer to an attempt we gave up on
        }
        let Some(current) = c.current.clone() else { return };
        match reply {
            ClientReply::Done(reply) => {
                let Some(output) = super::client::register_output(current.input, &reply) else {
                    let detail = format!("client {client}: {:?} answered {reply:?}", current.input);
                    self.checker.violations.push(super::checker::Violation::BadReply { detail });
                    return;
                };
                self.history.complete(current.history_index, output, self.now_us);
                let c = &mut self.clients[client];
                c.observe(current.key, &output);
                c.current = None;
                if c.active {
                    let think = self.client_rng.below(self.config.think_us.max(1)) + 1;
                    self.schedule(think, EventKind::ClientStart { client });
                }
            }
            ClientReply::Redirect(hint) => {
                let replicas = self.config.replicas;
                let c = &mut self.clients[client];
                let (target, backoff_us) = match hint {
                    Some(leader) if leader != c.target => (leader, 100),
                    _ => (c.target % replicas + 1, 5_000),
                };
                c.target = target;
                self.schedule(backoff_us, EventKind::ClientRetry { client, attempt });
            }
            ClientReply::Busy => self.schedule(5_000, EventKind::ClientRetry { client, attempt }),
        }
    }

    fn on_client_timeout(&mut self, client: usize, attempt: u64) {
        let replicas = self.config.replicas;
        let c = &mut self.clients[client];
        if c.attempt != attempt || c.current.is_none() {
            return;
        }
        c.target = c.target % replicas + 1;
        self.send_client_request(client);
    }

    /// Remaining scheduled events (for tests that want a quiet end).
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }
}
