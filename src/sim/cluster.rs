//! The simulated cluster: N real nodes (`src/node`: the core, the store
//! and the request table), a simulated network, disks and clocks,
//! simulated clients, and one seeded event queue that owns time. One seed
//! reproduces a run exactly.
//!
//! Scenario tests drive it directly and read like a transcript:
//! `cluster.partition(&[1], &[2, 3]); cluster.run_for_ms(500); cluster.heal();`
//!
//! The node plumbing is in `io.rs`, faults in `faults.rs`, clients in
//! `clients.rs`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use bytes::Bytes;

use super::checker::Checker;
use super::client::{History, SimClient, SimWaiter};
use super::network::{Network, NetworkConfig};
use super::node::SimNode;
use super::trace::Tracer;
use crate::kv::{Command, KvStore, Reply};
use crate::net::peer::PeerFrame;
use crate::node::NodeConfig;
use crate::paxos::{Ballot, Config, InjectedBug, NodeId, Replica, Slot};
use crate::rng::Rng;
use crate::trace::MessageId;

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
    /// Operations a client may have in flight at once on its connection.
    pub pipeline: usize,
    pub network: NetworkConfig,
    /// Mean time from the start of a sync to its fsync completing.
    pub fsync_us: u64,
    /// Each sync takes `fsync_us` times a factor in `[1, 1 + fsync_jitter]`.
    pub fsync_jitter: f64,
    /// Per node (by index), a further factor on its fsync time (a slow
    /// disk); missing entries are 1.
    pub fsync_factors: Vec<u64>,
    /// Bound on clock drift, parts per thousand: each node's local clock
    /// runs at a rate within it (the core is told the same bound).
    pub drift_permille: u64,
    /// Put every node's clock at one end of the drift range (either end),
    /// where lease bugs show; else rates are uniform within the bound.
    pub drift_extremes: bool,
    /// Bound on wall-clock offsets (ms): each node's wall clock is off the
    /// true time by a fixed amount within it (expiry, batch stamps).
    pub clock_offset_ms: u64,
    pub read_mode: ReadMode,
    pub window_slots: usize,
    pub batch_count_max: usize,
    /// A request unanswered this long gets an error from its node.
    pub request_timeout_us: u64,
    /// A client gives up on a connection after this long without an answer
    /// and reconnects elsewhere.
    pub client_timeout_us: u64,
    /// Pause between a client's operations.
    pub think_us: u64,
    /// After an answer, a client reconnects (a new session) with this probability.
    pub churn: f64,
    /// Client sessions each store remembers (small values: eviction pressure).
    pub sessions_max: usize,
    pub injected_bug: InjectedBug,
    /// Each node snapshots its store every this many applied slots and
    /// compacts its log (0: never).
    pub snapshot_every_slots: u64,
    /// Serializing a snapshot takes this long (the node goes on meanwhile).
    pub snapshot_us: u64,
    /// A snapshot's copy of the store takes this many keys per drain
    /// (`NodeConfig::snapshot_copy_keys`): a few, so that with the sim's
    /// handful of keys a copy spans drains that apply commands between.
    pub snapshot_copy_keys: usize,
    /// Snapshot transfer chunk size (small, so transfers take several chunks).
    pub snapshot_chunk_bytes: usize,
    /// A crash may tear the sync in progress (blocks land in any order, a
    /// bit may flip) and some crashes lose the whole disk.
    pub disk_faults: bool,
    /// Override the core's election timeout range `(min, max)` in ticks
    /// (equal bounds make replicas time out together: dueling proposers).
    pub election_timeout_ticks: Option<(u64, u64)>,
    /// Reads each node may have forwarded and unanswered at once
    /// (`NodeConfig::forward_read_window`).
    pub forward_read_window: usize,
    /// The node's backpressure bound (`NodeConfig::unsynced_bytes_max`).
    pub unsynced_bytes_max: usize,
    /// A leader with an append waiting this long for its fsync hands
    /// leadership over
    /// (`NodeConfig::hand_over_after_us`; 0: never).
    pub hand_over_after_us: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            replicas: 3,
            clients: 4,
            keys: 6,
            pipeline: 1,
            network: NetworkConfig::default(),
            fsync_us: 200,
            fsync_jitter: 0.0,
            fsync_factors: Vec::new(),
            drift_permille: 50,
            drift_extremes: false,
            clock_offset_ms: 0,
            read_mode: ReadMode::Lease,
            window_slots: 16,
            batch_count_max: 64,
            request_timeout_us: 2_000_000,
            client_timeout_us: 5_000_000,
            think_us: 2_000,
            churn: 0.0,
            sessions_max: 1024,
            injected_bug: InjectedBug::None,
            snapshot_every_slots: 64,
            snapshot_us: 0,
            snapshot_copy_keys: 2,
            snapshot_chunk_bytes: 64,
            disk_faults: false,
            election_timeout_ticks: None,
            forward_read_window: 64,
            unsynced_bytes_max: 64 << 10,
            hand_over_after_us: 200_000,
        }
    }
}

impl SimConfig {
    pub fn members(&self) -> Vec<NodeId> {
        (1..=self.replicas).collect()
    }

    /// Node `id`'s fsync factor (a slow disk), 1 by default.
    pub fn fsync_factor(&self, id: NodeId) -> u64 {
        self.fsync_factors.get((id - 1) as usize).copied().unwrap_or(1).max(1)
    }

    /// The longest an fsync can take on any node.
    pub fn fsync_max_us(&self) -> u64 {
        let slowest = self.members().into_iter().map(|id| self.fsync_factor(id)).max().unwrap_or(1);
        (self.fsync_us as f64 * (1.0 + self.fsync_jitter)) as u64 * slowest
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

    /// The node layer's configuration for node `id`.
    pub fn node_config(&self, id: NodeId) -> NodeConfig {
        let mut c = NodeConfig::new(id, self.members());
        c.tick_us = 1_000;
        c.request_timeout_us = self.request_timeout_us;
        c.snapshot_every_slots = self.snapshot_every_slots;
        c.snapshot_every_bytes = 0;
        c.snapshot_copy_keys = self.snapshot_copy_keys;
        c.sessions_max = self.sessions_max;
        c.reads_via_log = self.read_mode == ReadMode::Log;
        c.unsynced_bytes_max = self.unsynced_bytes_max;
        c.hand_over_after_us = self.hand_over_after_us;
        c.trace_checks = true;
        c.forward_read_window = self.forward_read_window;
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
        from: NodeId,
        to: NodeId,
        /// The trace's message id (0 when not tracing).
        id: MessageId,
        frame: PeerFrame,
    },
    /// Collect a node's output after a burst of deliveries.
    Drain {
        node: NodeId,
        epoch: u64,
    },
    /// A node's fsync completed: the sync covering `token`.
    Synced {
        node: NodeId,
        epoch: u64,
        token: u64,
    },
    /// A node's snapshot job is serialized.
    SnapshotDone {
        node: NodeId,
        epoch: u64,
        slot: Slot,
        data: Bytes,
    },
    ClientStart {
        client: usize,
    },
    /// A client's request reaches its node.
    ClientArrive {
        node: NodeId,
        waiter: SimWaiter,
        command: Command,
    },
    /// A node's answer reaches its client.
    ClientReply {
        waiter: SimWaiter,
        reply: Reply,
    },
    /// A client checks whether its connection still answers.
    ClientCheck {
        client: usize,
    },
    /// Time for the next fault of the safety phase: what it is and whom it
    /// hits is decided now, from the cluster's state (`faults.rs`).
    Fault,
    Restart {
        node: NodeId,
    },
    /// Crash `node` and restart it `down_us` later.
    CrashRestart {
        node: NodeId,
        down_us: u64,
    },
    /// The end of a planned stop: the node was told to leave
    /// (`Node::leave`) and now goes down, to restart `down_us` later.
    /// Not skipped once the faults are over, unlike a crash: a node left
    /// leaving would never lead again.
    StopRestart {
        node: NodeId,
        down_us: u64,
    },
    Partition {
        side_a: Vec<NodeId>,
        side_b: Vec<NodeId>,
        one_way: bool,
        resets: bool,
    },
    Heal,
    StallEnd {
        node: NodeId,
        epoch: u64,
    },
    LinkUp {
        node: NodeId,
        peer: NodeId,
        epoch: u64,
    },
    LinkDown {
        node: NodeId,
        peer: NodeId,
        epoch: u64,
    },
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
    /// Crashes that tore the sync in flight (blocks in any order, maybe a flipped bit).
    pub torn_writes: u64,
    /// Crashes with two syncs in flight, the second's write beside the
    /// first's (either may have completed).
    pub crashes_beside: u64,
    /// Disks lost (the replica rejoined and relearned its state).
    pub disk_losses: u64,
    /// Crashes that left a deleted segment's bytes past a log's end.
    pub stale_exposures: u64,
    pub stalls: u64,
    /// Client reconnections (timeouts and session churn).
    pub reconnects: u64,
    /// Planned stops: a node told to leave (`Node::leave`, as a server
    /// on SIGTERM), taken down a few ms later (counted in `crashes` too).
    pub planned_stops: u64,
}

pub struct Cluster {
    pub config: SimConfig,
    pub paxos_config: Config,
    pub seed: u64,
    pub now_us: u64,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    pub(super) net_rng: Rng,
    pub(super) client_rng: Rng,
    pub(super) disk_rng: Rng,
    /// Whether a crash exposes deleted segments' blocks (its own stream,
    /// so that the other faults of a seed are those it had without it).
    pub(super) stale_rng: Rng,
    /// Decides each fault of the safety phase.
    pub(super) fault_rng: Rng,
    /// Which fault kinds the safety phase injects.
    pub(super) fault_plan: super::run::FaultPlan,
    /// Disks that may still be lost this run (more at once lose data for real).
    pub(super) disk_losses_left: usize,
    pub network: Network,
    pub nodes: Vec<SimNode>,
    pub(super) clients: Vec<SimClient>,
    pub history: History,
    pub checker: Checker,
    pub tracer: Tracer,
    /// Violations already written to the trace.
    pub(super) violations_traced: usize,
    pub leader_changes: Vec<LeaderChange>,
    /// Phase 1 campaigns started (after a successful pre-vote).
    pub elections_started: Vec<LeaderChange>,
    pub faults: FaultCounts,
    pub messages_delivered: u64,
    /// Snapshots replicas received from peers and installed.
    pub snapshots_installed: u64,
    /// Replicas that finished relearning a lost state.
    pub recoveries: u64,
    /// Reads that found their node's forward read window full and waited.
    pub forward_read_waits: u64,
    /// Times a node began holding client requests (its disk behind).
    pub backpressure_holds: u64,
    /// Entry-bearing peer frames nodes dropped, held ones over their bound.
    pub peer_frames_dropped: u64,
    /// Leaders that handed leadership over, their disk slow to sync.
    pub hand_overs: u64,
    /// The real time of the latest hand-over, if any.
    pub last_hand_over_us: Option<u64>,
    /// Per (node, read id): the cluster-wide commit end when the read began.
    /// Per (node, read id): when the read began, the cluster-wide commit
    /// end then, and the ballot its leader served it under.
    pub(super) reads_begun: BTreeMap<(NodeId, u64), (u64, Slot, Ballot)>,
    /// After this real time, requests must finish within `latency_bound_us`.
    pub(super) quiet_since_us: Option<u64>,
    /// The liveness phase began: faults still scheduled are not injected.
    pub(super) faults_over: bool,
    /// The rule watchers' records (`watch.rs`).
    pub(super) watch: super::watch::Watch,
    /// When each client command first ran in a store, its reply, and the
    /// log's time then.
    pub(super) executions: BTreeMap<(crate::kv::SessionId, u64), (u64, Reply, u64)>,
    /// The times each read served outside the log was judged at (more than
    /// one when a retry inside the cluster served it again).
    pub(super) read_times: BTreeMap<(crate::kv::SessionId, u64), Vec<u64>>,
}

impl Cluster {
    pub fn new(config: SimConfig, seed: u64) -> Cluster {
        let paxos_config = config.paxos_config();
        paxos_config.validate().expect("simulator builds a valid core config");
        let mut rng = Rng::new(seed);
        let mut node_rng = rng.fork();
        let bound = config.drift_permille as i64;
        let mut nodes = config
            .members()
            .into_iter()
            .map(|id| {
                let drift = if config.drift_extremes {
                    if node_rng.chance(0.5) {
                        bound
                    } else {
                        -bound
                    }
                } else {
                    node_rng.range_inclusive(0, 2 * bound as u64) as i64 - bound
                };
                let mut node = SimNode::new(id, drift);
                if config.injected_bug == InjectedBug::WalIndexEpochs {
                    node.disk.use_index_epochs();
                }
                node
            })
            .collect::<Vec<SimNode>>();
        let mut clock_rng = Rng::new(seed ^ 0xC10C_5EED);
        let offset_max = config.clock_offset_ms;
        for n in &mut nodes {
            n.wall_offset_ms = clock_rng.range_inclusive(0, 2 * offset_max) as i64 - offset_max as i64;
        }
        let clients = (0..config.clients)
            .map(|i| SimClient::new(i, (i as u32 % config.replicas) + 1, config.keys, config.pipeline))
            .collect();
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
            stale_rng: Rng::new(seed ^ 0x57A1_E5EED),
            fault_rng: Rng::new(seed ^ 0xFA17_5EED),
            fault_plan: super::run::FaultPlan::default(),
            disk_losses_left: 0,
            nodes,
            clients,
            history: History::default(),
            checker: Checker::default(),
            tracer: Tracer::default(),
            violations_traced: 0,
            leader_changes: Vec::new(),
            elections_started: Vec::new(),
            faults: FaultCounts::default(),
            messages_delivered: 0,
            snapshots_installed: 0,
            recoveries: 0,
            forward_read_waits: 0,
            backpressure_holds: 0,
            peer_frames_dropped: 0,
            hand_overs: 0,
            last_hand_over_us: None,
            reads_begun: BTreeMap::new(),
            quiet_since_us: None,
            faults_over: false,
            executions: BTreeMap::new(),
            read_times: BTreeMap::new(),
            watch: super::watch::Watch::default(),
            config,
        };
        for id in cluster.config.members() {
            let phase = node_rng.below(1_000);
            cluster.boot(id, false, phase);
        }
        cluster
    }

    pub(super) fn schedule(&mut self, after_us: u64, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Scheduled { at_us: self.now_us + after_us, seq, kind });
    }

    pub(super) fn schedule_at(&mut self, at_us: u64, kind: EventKind) {
        let after = at_us.saturating_sub(self.now_us);
        self.schedule(after, kind);
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn node(&self, id: NodeId) -> &SimNode {
        &self.nodes[(id - 1) as usize]
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
            if self.tracer.enabled() {
                self.trace_new_violations();
            }
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
            EventKind::Deliver { from, to, id, frame } => self.on_deliver(from, to, id, frame),
            EventKind::Drain { node, epoch } => {
                let n = self.node_mut(node);
                if n.epoch == epoch {
                    n.drain_scheduled = false;
                    self.drain(node);
                }
            }
            EventKind::Synced { node, epoch, token } => self.on_synced(node, epoch, token),
            EventKind::SnapshotDone { node, epoch, slot, data } => {
                if self.node(node).epoch == epoch {
                    self.input(node, super::node::Input::SnapshotDone { slot, data });
                }
            }
            EventKind::ClientStart { client } => self.on_client_start(client),
            EventKind::ClientArrive { node, waiter, command } => self.on_client_arrive(node, waiter, command),
            EventKind::ClientReply { waiter, reply } => self.on_client_reply(waiter, reply),
            EventKind::ClientCheck { client } => self.on_client_check(client),
            EventKind::Fault | EventKind::CrashRestart { .. } | EventKind::Partition { .. } if self.faults_over => {}
            EventKind::Fault => self.inject_fault(),
            EventKind::Restart { node } => self.restart(node),
            EventKind::CrashRestart { node, down_us } | EventKind::StopRestart { node, down_us } => {
                if self.is_up(node) {
                    self.crash(node);
                    self.schedule(down_us, EventKind::Restart { node });
                }
            }
            EventKind::Partition { side_a, side_b, one_way, resets } => {
                self.dispatch_partition(side_a, side_b, one_way, resets)
            }
            EventKind::Heal => self.heal(),
            EventKind::StallEnd { node, epoch } => self.end_stall(node, epoch),
            EventKind::LinkUp { node, peer, epoch } => {
                if self.node(node).epoch == epoch {
                    self.trace_link(node, peer, true);
                    self.input(node, super::node::Input::LinkUp { peer });
                }
            }
            EventKind::LinkDown { node, peer, epoch } => {
                if self.node(node).epoch == epoch {
                    self.trace_link(node, peer, false);
                    self.input(node, super::node::Input::LinkDown { peer });
                }
            }
        }
    }

    // ---- inspection -------------------------------------------------------

    /// The live node's replica, `None` while crashed.
    pub fn replica(&self, id: NodeId) -> Option<&Replica> {
        self.node(id).replica()
    }

    /// The live node's store.
    pub fn kv(&self, id: NodeId) -> Option<&KvStore> {
        self.node(id).node.as_ref().map(|n| n.kv())
    }

    /// Slots the live node applied (0 while crashed).
    pub fn applied(&self, id: NodeId) -> Slot {
        self.node(id).node.as_ref().map_or(0, |n| n.applied())
    }

    /// The live leader with the highest ballot, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.replica())
            .filter(|r| r.is_leader())
            .max_by_key(|r| r.status().promised)
            .map(|r| r.id())
    }

    /// Live replicas that believe they lead (more than one is allowed
    /// transiently; only one can commit).
    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes.iter().filter_map(|n| n.replica()).filter(|r| r.is_leader()).map(|r| r.id()).collect()
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.node(node).node.is_some()
    }

    /// Commit index per live replica.
    pub fn commit_indexes(&self) -> Vec<(NodeId, u64)> {
        self.nodes.iter().filter_map(|n| n.replica().map(|r| (n.id, r.commit_index()))).collect()
    }

    /// One line per node: role, commit, applied, recovering or down.
    pub fn node_summaries(&self) -> String {
        let line = |n: &SimNode| match &n.node {
            None => format!("node {} down", n.id),
            Some(node) => {
                let s = node.status();
                let recovering = if s.recovering { " recovering" } else { "" };
                let behind = if node.accepting() { "" } else { " (disk behind)" };
                format!(
                    "node {} {:?}{recovering} commit {} applied {}, {} bytes unsynced{behind}, {} peer frames held",
                    n.id, s.role, s.commit, s.applied, s.unsynced_bytes, s.held_frames,
                )
            }
        };
        self.nodes.iter().map(line).collect::<Vec<_>>().join("; ")
    }

    /// Remaining scheduled events (for tests that want a quiet end).
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }
}
