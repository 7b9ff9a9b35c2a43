//! Monitoring: per-shard Prometheus metrics (prometheus-client), the shard
//! status every executor can read for `INFO`, and the `/metrics` endpoint.
//!
//! Metrics and status are atomics shared across executors (`Arc`): each
//! shard writes only its own, readers tolerate a slightly stale view.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::node::NodeStatus;
use crate::paxos::{Ballot, RoleKind, Status};

/// One shard's instruments.
#[derive(Clone)]
pub struct ShardMetrics {
    /// Client commands handed to the local replica as leader.
    pub proposals: Counter,
    /// Slots applied to the store.
    pub commits: Counter,
    /// Commands applied to the store.
    pub commands_applied: Counter,
    /// Commands per committed slot.
    pub batch_size: Histogram,
    /// Slots in flight at the leader, sampled at each Ready.
    pub window_occupancy: Histogram,
    /// Seconds per WAL write + fdatasync.
    pub fsync_seconds: Histogram,
    pub elections: Counter,
    pub leader_changes: Counter,
    /// Snapshots of the store this shard started (each compacts the log).
    pub snapshots: Counter,
    /// Commands this node handed to another node's leader.
    pub forwarded: Counter,
    /// Times the forward read window was found full (`NodeConfig::forward_read_window`).
    pub forward_read_window_full: Counter,
    /// Commands queued at the leader beyond the window.
    pub proposal_queue_depth: Gauge,
    /// Client requests waiting for an answer at this shard.
    pub waiting_requests: Gauge,
    /// Appended WAL bytes waiting for their fsync (`NodeStatus::unsynced_bytes`).
    pub unsynced_bytes: Gauge,
    /// Peer frames bringing entries, held while the disk is behind.
    pub held_peer_frames: Gauge,
    /// Times the node began holding requests, its disk behind.
    pub backpressure_holds: Counter,
    /// Entry-bearing peer frames dropped, the held ones over the bound.
    pub peer_frames_dropped: Counter,
    pub reads_lease: Counter,
    pub peer_frames_in: Counter,
    pub peer_frames_out: Counter,
    pub peer_bytes_out: Counter,
    pub peer_writes: Counter,
    pub peer_connects: Counter,
    pub peer_errors: Counter,
    /// The latency anatomy (`server::stages`).
    pub stages: super::stages::ShardStages,
}

impl ShardMetrics {
    fn register(registry: &mut Registry) -> ShardMetrics {
        let m = ShardMetrics {
            proposals: Counter::default(),
            commits: Counter::default(),
            commands_applied: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            window_occupancy: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            fsync_seconds: Histogram::new(exponential_buckets(25e-6, 2.0, 14)),
            elections: Counter::default(),
            leader_changes: Counter::default(),
            snapshots: Counter::default(),
            forwarded: Counter::default(),
            forward_read_window_full: Counter::default(),
            proposal_queue_depth: Gauge::default(),
            waiting_requests: Gauge::default(),
            unsynced_bytes: Gauge::default(),
            held_peer_frames: Gauge::default(),
            backpressure_holds: Counter::default(),
            peer_frames_dropped: Counter::default(),
            reads_lease: Counter::default(),
            peer_frames_in: Counter::default(),
            peer_frames_out: Counter::default(),
            peer_bytes_out: Counter::default(),
            peer_writes: Counter::default(),
            peer_connects: Counter::default(),
            peer_errors: Counter::default(),
            stages: super::stages::ShardStages::default(),
        };
        registry.register("proposals", "Client commands proposed by this shard as leader", m.proposals.clone());
        registry.register("commits", "Log slots applied to the store", m.commits.clone());
        registry.register("commands_applied", "Commands applied to the store", m.commands_applied.clone());
        registry.register("batch_size_commands", "Commands per committed slot", m.batch_size.clone());
        registry.register("window_occupancy_slots", "Slots in flight at the leader", m.window_occupancy.clone());
        registry.register("fsync_seconds", "WAL write and fdatasync latency", m.fsync_seconds.clone());
        registry.register("elections", "Elections this replica started", m.elections.clone());
        registry.register("leader_changes", "Times this replica became leader", m.leader_changes.clone());
        registry.register("snapshots", "Snapshots of the store started (each compacts the log)", m.snapshots.clone());
        registry.register("forwarded", "Client commands forwarded to another node's leader", m.forwarded.clone());
        registry.register(
            "forward_read_window_full",
            "Times this node found its window of forwarded reads full: commands then wait, in arrival order, for answers to make room",
            m.forward_read_window_full.clone(),
        );
        registry.register("proposal_queue_depth", "Commands waiting for a slot", m.proposal_queue_depth.clone());
        registry.register("waiting_requests", "Client requests awaiting an answer", m.waiting_requests.clone());
        registry.register(
            "unsynced_bytes",
            "Appended WAL bytes waiting for their fsync; past unsynced_bytes_max the node holds requests and entries",
            m.unsynced_bytes.clone(),
        );
        registry.register(
            "held_peer_frames",
            "Peer frames bringing entries, held until the disk catches up",
            m.held_peer_frames.clone(),
        );
        registry.register(
            "backpressure_holds",
            "Times this shard began holding requests because its disk was behind",
            m.backpressure_holds.clone(),
        );
        registry.register(
            "peer_frames_dropped",
            "Peer frames bringing entries dropped while the disk was behind and the held ones were over unsynced_bytes_max (the leader re-sends them, or catch-up fetches them)",
            m.peer_frames_dropped.clone(),
        );
        registry.register(
            "lease_reads",
            "Reads answered by this shard as leader without a log slot (lease, or read-index round)",
            m.reads_lease.clone(),
        );
        registry.register("peer_frames_in", "Frames received from peers", m.peer_frames_in.clone());
        registry.register("peer_frames_out", "Frames queued to peers", m.peer_frames_out.clone());
        registry.register("peer_bytes_out", "Bytes written to peers", m.peer_bytes_out.clone());
        registry.register("peer_writes", "Socket writes to peers", m.peer_writes.clone());
        registry.register("peer_connects", "Peer links established", m.peer_connects.clone());
        registry.register("peer_errors", "Peer links dropped or refused", m.peer_errors.clone());
        registry.register(
            "stage_seconds",
            "Latency anatomy: seconds a sampled request spent in each stage",
            m.stages.family(),
        );
        m
    }
}

/// What `INFO` and `paxoskv cluster` show of one shard.
#[derive(Default)]
pub struct ShardStatus {
    /// 0 follower, 1 pre-candidate, 2 candidate, 3 leader.
    pub role: AtomicU8,
    pub ballot_round: AtomicU64,
    pub ballot_node: AtomicU32,
    /// 0: none known.
    pub leader: AtomicU32,
    pub commit: AtomicU64,
    pub applied: AtomicU64,
    pub log_start: AtomicU64,
    pub keys: AtomicU64,
    pub expires: AtomicU64,
    pub holds_lease: AtomicU8,
    /// 1 while the replica relearns a lost durable state.
    pub recovering: AtomicU8,
    pub ops: AtomicU64,
    pub slots: AtomicU64,
    /// How far the shard's executor has come in its start
    /// (`executors::StartPhase`).
    pub start_phase: AtomicU8,
}

impl ShardStatus {
    /// Does this shard's replica lead (as last published)?
    pub fn is_leader(&self) -> bool {
        self.role.load(Relaxed) == 3
    }

    pub fn publish(&self, status: &Status, node: &NodeStatus) {
        let role = match status.role {
            RoleKind::Follower => 0,
            RoleKind::PreCandidate => 1,
            RoleKind::Candidate => 2,
            RoleKind::Leader => 3,
        };
        self.role.store(role, Relaxed);
        self.ballot_round.store(status.promised.round, Relaxed);
        self.ballot_node.store(status.promised.node, Relaxed);
        self.leader.store(status.leader.unwrap_or(0), Relaxed);
        self.commit.store(status.commit, Relaxed);
        self.applied.store(node.applied, Relaxed);
        self.keys.store(node.keys as u64, Relaxed);
        self.expires.store(node.expires as u64, Relaxed);
        self.log_start.store(node.log_start, Relaxed);
        self.holds_lease.store(status.holds_lease as u8, Relaxed);
        self.recovering.store(node.recovering as u8, Relaxed);
    }

    pub fn role_name(&self) -> &'static str {
        if self.recovering.load(Relaxed) == 1 {
            return "recovering";
        }
        match self.role.load(Relaxed) {
            3 => "leader",
            2 => "candidate",
            1 => "pre-candidate",
            _ => "follower",
        }
    }

    pub fn ballot(&self) -> Ballot {
        Ballot { round: self.ballot_round.load(Relaxed), node: self.ballot_node.load(Relaxed) }
    }
}

/// Everything the executors share for monitoring.
pub struct Monitor {
    pub registry: Registry,
    pub shards: Vec<ShardMetrics>,
    pub status: Vec<ShardStatus>,
    pub started_unix_ms: u128,
    /// The last session counter handed out on this node (see `Shared::new_session_counter`).
    pub session_counter: AtomicU64,
    /// Every client connection of the node, for CLIENT LIST / KILL and INFO.
    pub clients: super::clients::ClientRegistry,
    /// How many of the node's executors have finished starting.
    pub executors_serving: AtomicUsize,
}

impl Monitor {
    pub fn new(node: u32, shards: usize) -> Arc<Monitor> {
        let mut registry = Registry::with_prefix("paxoskv");
        let node_label = (Cow::Borrowed("node"), Cow::Owned(node.to_string()));
        let node_registry = registry.sub_registry_with_label(node_label);
        let metrics = (0..shards)
            .map(|s| {
                let label = (Cow::Borrowed("shard"), Cow::Owned(s.to_string()));
                ShardMetrics::register(node_registry.sub_registry_with_label(label))
            })
            .collect();
        let status = (0..shards).map(|_| ShardStatus::default()).collect();
        Arc::new(Monitor {
            registry,
            shards: metrics,
            status,
            started_unix_ms: super::util::unix_millis(),
            session_counter: AtomicU64::new(0),
            clients: super::clients::ClientRegistry::default(),
            executors_serving: AtomicUsize::new(0),
        })
    }

    pub fn encode_metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// The text of `INFO [section ...]`: Redis's `# Section` / `key:value`
    /// lines, the fields clients and tools read (same shape as Redis 7.0,
    /// figures this server does not have are 0), plus paxoskv's own.
    pub fn info(&self, node: u32, sections: &[String], config_summary: &str, clients_max: usize) -> String {
        let all = sections.is_empty() || sections.iter().any(|s| s == "all" || s == "everything" || s == "default");
        let want = |name: &str| all || sections.iter().any(|s| s == name);
        let mut out = String::new();
        // Redis separates sections with an empty line.
        let section = |out: &mut String, header: &str| {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(header);
        };
        if want("server") {
            let uptime = (super::util::unix_millis() - self.started_unix_ms) / 1000;
            section(&mut out, "# Server\r\n");
            out.push_str(&format!(
                "redis_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\n\
                 uptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\npaxoskv_version:{}\r\nnode_id:{node}\r\n{config_summary}\r\n",
                super::client::REDIS_VERSION,
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                uptime / 86_400,
                env!("CARGO_PKG_VERSION"),
            ));
        }
        if want("clients") {
            section(&mut out, "# Clients\r\n");
            out.push_str(&format!(
                "connected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\ntracking_clients:0\r\n",
                self.clients.len(),
                clients_max * self.status.len(),
            ));
        }
        if want("memory") {
            let rss = resident_bytes();
            section(&mut out, "# Memory\r\n");
            out.push_str(&format!(
                "used_memory:{rss}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{rss}\r\n\
                 maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n",
                rss as f64 / (1 << 20) as f64,
            ));
        }
        if want("persistence") {
            section(&mut out, "# Persistence\r\n");
            out.push_str("loading:0\r\nrdb_changes_since_last_save:0\r\naof_enabled:0\r\n");
        }
        if want("stats") {
            section(&mut out, "# Stats\r\n");
            let sum = |f: &dyn Fn(&ShardMetrics) -> u64| self.shards.iter().map(f).sum::<u64>();
            let applied = sum(&|m| m.commands_applied.get());
            let slots = sum(&|m| m.commits.get());
            out.push_str(&format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 total_commands_applied:{applied}\r\ntotal_slots_committed:{slots}\r\navg_batch_commands:{:.2}\r\n\
                 proposals:{}\r\nforwarded:{}\r\nelections:{}\r\n",
                self.clients.total_connections.load(Relaxed),
                self.clients.total_commands.load(Relaxed),
                if slots == 0 { 0.0 } else { applied as f64 / slots as f64 },
                sum(&|m| m.proposals.get()),
                sum(&|m| m.forwarded.get()),
                sum(&|m| m.elections.get()),
            ));
        }
        if want("replication") {
            section(&mut out, "# Replication\r\n");
            out.push_str(&format!(
                "role:master\r\nconnected_slaves:0\r\nnode_id:{node}\r\nshards:{}\r\n",
                self.status.len()
            ));
            for (s, st) in self.status.iter().enumerate() {
                let ballot = st.ballot();
                out.push_str(&format!(
                    "shard{s}_role:{}\r\nshard{s}_ballot:{}.{}\r\nshard{s}_leader:{}\r\nshard{s}_lease:{}\r\nshard{s}_commit:{}\r\nshard{s}_applied:{}\r\nshard{s}_log_start:{}\r\n",
                    st.role_name(),
                    ballot.round,
                    ballot.node,
                    st.leader.load(Relaxed),
                    st.holds_lease.load(Relaxed),
                    st.commit.load(Relaxed),
                    st.applied.load(Relaxed),
                    st.log_start.load(Relaxed),
                ));
            }
        }
        if want("cpu") {
            let (user, system) = cpu_seconds();
            section(&mut out, "# CPU\r\n");
            out.push_str(&format!("used_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n"));
        }
        // Redis 7.0's default sections also list loaded modules (none),
        // error counts (not kept here) and cluster mode (off).
        if want("modules") {
            section(&mut out, "# Modules\r\n");
        }
        if want("errorstats") {
            section(&mut out, "# Errorstats\r\n");
        }
        if want("cluster") {
            section(&mut out, "# Cluster\r\n");
            out.push_str("cluster_enabled:0\r\n");
        }
        // Not a default section (Redis's list stays as it is): `INFO
        // latency`, `INFO all` or `INFO everything`.
        if sections.iter().any(|s| s == "latency" || s == "all" || s == "everything") {
            section(&mut out, "# Latency\r\n");
            for (s, m) in self.shards.iter().enumerate() {
                for (stage, histogram) in m.stages.sampled() {
                    out.push_str(&format!("shard{s}_stage_{stage}_usec:{}\r\n", histogram.summary()));
                }
            }
        }
        if want("keyspace") {
            let keys: u64 = self.status.iter().map(|s| s.keys.load(Relaxed)).sum();
            let expires: u64 = self.status.iter().map(|s| s.expires.load(Relaxed)).sum();
            section(&mut out, "# Keyspace\r\n");
            if keys > 0 {
                out.push_str(&format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n"));
            }
        }
        out
    }

    pub fn dbsize(&self) -> u64 {
        self.status.iter().map(|s| s.keys.load(Relaxed)).sum()
    }
}

/// The process's resident memory in bytes (0 where /proc is missing).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|rss| rss.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}

/// User and system CPU seconds of the process.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `# Section` headers of INFO text, in order.
    fn headers(text: &str) -> Vec<&str> {
        text.split("\r\n").filter(|line| line.starts_with('#')).collect()
    }

    #[test]
    fn info_has_redis_7_0s_default_sections_separated_by_empty_lines() {
        let monitor = Monitor::new(1, 2);
        let text = monitor.info(1, &[], "shards:2", 100);
        assert_eq!(
            headers(&text),
            [
                "# Server",
                "# Clients",
                "# Memory",
                "# Persistence",
                "# Stats",
                "# Replication",
                "# CPU",
                "# Modules",
                "# Errorstats",
                "# Cluster",
                "# Keyspace"
            ]
        );
        assert!(text.starts_with("# Server\r\n") && text.ends_with("# Keyspace\r\n"), "{text:?}");
        for header in &headers(&text)[1..] {
            assert!(text.contains(&format!("\r\n\r\n{header}\r\n")), "no empty line before {header}");
        }
        assert!(text.contains("\r\ncluster_enabled:0\r\n"));
        let some = monitor.info(1, &["keyspace".into(), "server".into()], "shards:2", 100);
        assert_eq!(headers(&some), ["# Server", "# Keyspace"]);
        assert_eq!(monitor.info(1, &["nosuchsection".into()], "", 100), "");
    }
}
