//! The cluster file (TOML) and the tuning flags, resolved into what one
//! server process runs with. Plain Rust: no runtime, testable on its own.
//!
//! ```toml
//! cluster_id = "local"
//! shards = 2
//! data_dir = "/var/lib/paxoskv"      # node i keeps shard s in data_dir/node-i/shard-s
//! peer_secret_file = "peer.secret"   # or peer_secret = "..."; relative to this file
//! requirepass = "..."                # optional: clients must AUTH first
//!
//! [[nodes]]
//! id = 1
//! host = "10.0.0.1"
//! client_port = 7001                 # RESP, shared by every shard (SO_REUSEPORT)
//! peer_port = 8001                   # shard s of this node listens on peer_port + s
//! metrics_port = 9001                # optional: Prometheus /metrics
//!
//! [tuning]                           # every field optional; these are the defaults
//! window_slots = 64
//! batch_count_max = 1024
//! batch_bytes_max = 1048576
//! lease_reads = true
//! durability = "sync"                # or "none": no fsync, for measuring only
//! wal_writes = "async"               # or "inline": the shard's thread writes its WAL itself
//! peer_write_coalescing = true
//! # unsafe_inject_bug = "stale-lease-reads"  # measurement only: breaks consistency,
//! #                                          # refused unless PAXOSKV_ALLOW_INJECTED_BUGS=1
//!
//! [trace]                            # optional: protocol traces for `paxoskv viz`
//! dir = "/var/log/paxoskv-trace"
//! messages_every = 16                # 1 in 16 peer messages as arrows (0: none)
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kv::SESSION_NODE_MAX;
use crate::node::NodeConfig;
use crate::paxos::{Config, InjectedBug, NodeId};

/// Client sessions each shard's store remembers (exactly-once retries).
pub const SESSIONS_MAX: usize = 100_000;
use crate::storage::Durability;

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: NodeId,
    pub host: String,
    pub client_port: u16,
    /// Shard `s` listens for peers on `peer_port + s`.
    pub peer_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
}

/// The optimization flags and limits. Every default is the fast, safe setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Slots in flight at once (pipelining). 1 = one slot at a time.
    pub window_slots: usize,
    /// Commands per slot at most (batching). 1 = no batching.
    pub batch_count_max: usize,
    /// Payload bytes per slot at most; also the largest single command.
    pub batch_bytes_max: usize,
    /// Serve reads locally at a leader holding a majority lease; otherwise
    /// every read waits for a read-index heartbeat round.
    pub lease_reads: bool,
    /// "sync": fdatasync before any acknowledgement; "none": never fsync.
    pub durability: DurabilityMode,
    /// How a shard makes its WAL writes (`WalWrites`).
    pub wal_writes: WalWrites,
    /// Coalesce peer messages into one write per wake-up (else one write each).
    pub peer_write_coalescing: bool,
    /// Milliseconds per core tick (the unit of the `*_ticks` settings).
    pub tick_ms: u64,
    pub heartbeat_ticks: u64,
    pub election_timeout_min_ticks: u64,
    pub election_timeout_max_ticks: u64,
    pub lease_ticks: u64,
    /// Bound on the relative clock-rate difference between nodes, per mille.
    pub clock_drift_permille: u64,
    /// Take a state-machine snapshot and compact the log after this many
    /// slots, or after `snapshot_every_bytes` of commands, whichever comes
    /// first (0 disables that trigger). Together they bound the log kept in
    /// memory and replayed at restart. A snapshot is taken on the shard's
    /// executor and pauses it (tens of ms for 100k keys): rarer is smoother.
    pub snapshot_every_slots: u64,
    pub snapshot_every_bytes: u64,
    /// Largest value a client may SET.
    pub value_bytes_max: usize,
    /// A client request unanswered after this long gets an error.
    pub request_timeout_ms: u64,
    /// Replies a client connection may have outstanding before the server
    /// stops reading from it (backpressure).
    pub client_pending_max: usize,
    /// Client connections per executor; more are refused with an error.
    pub clients_max: usize,
    /// Bytes queued for one peer link before further messages to it are dropped
    /// (the protocol retransmits; memory stays bounded).
    pub peer_queue_bytes_max: usize,
    /// Commands queued at a leader beyond the window before proposals are refused.
    pub proposal_queue_max: usize,
    /// Reads a node may have forwarded to its shard's leader and unanswered
    /// at once (`NodeConfig::forward_read_window`): what one follower makes
    /// the leader send back in one go. Larger: more pipelined reads through
    /// a follower; smaller: less leader memory under a flood of large GETs.
    pub forward_read_window: usize,
    /// A leader with a WAL append that has waited this long for its fsync
    /// hands leadership over, if the rest of the group can elect a leader
    /// without it (`NodeConfig::hand_over_after_us`); a node whose WAL is
    /// behind its backpressure bound (`unsynced_bytes_max`) starts no
    /// election. 0: neither (a leader on
    /// a slow disk keeps leading, holding requests until its disk catches
    /// up).
    pub hand_over_after_ms: u64,
    /// Bytes of WAL appends a shard may have waiting for their fsync
    /// before it holds new client requests and its peers' entries
    /// (`NodeConfig::unsynced_bytes_max`): the backpressure bound, and the
    /// memory a slow disk may cost. Smaller: a slow disk is felt sooner
    /// (and a leader on one hands over sooner); larger: more room for a
    /// disk's hiccups.
    pub unsynced_bytes_max: usize,
    /// Keys a snapshot copies from the store per pass of the shard's
    /// executor (`NodeConfig::snapshot_copy_keys`), its other work in
    /// between. Larger: snapshots finish sooner; smaller: shorter pauses
    /// for the requests and heartbeats beside them.
    pub snapshot_copy_keys: usize,
    /// Let the server's memory use transparent huge pages as the system
    /// sets them (`true`), or turn them off for the server's own process
    /// (`false`, the default: `prctl(PR_SET_THP_DISABLE)`, what Redis's
    /// `disable-thp yes` does). mimalloc marks its arenas for huge pages,
    /// and each one faulted in is zeroed whole (2 MiB): 17.6% of the
    /// servers' samples under pipelined SETs in `perf`, 0.7% without. In
    /// `results/thp` a SET costs 4-14% less CPU without them (13 of 15
    /// interleaved pairs), and GETs show no consistent difference.
    pub transparent_huge_pages: bool,
    /// Measurement only: break a protocol rule on purpose (an injected bug
    /// of `paxoskv sim --inject-bug`; a server accepts only those in
    /// [`SERVER_INJECTED_BUGS`]), to measure what the rule costs. The
    /// cluster then no longer keeps its consistency guarantees. A server
    /// refuses to start with it unless the environment variable
    /// [`ALLOW_INJECTED_BUGS_ENV`] is `1` ([`check_injected_bug_allowed`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsafe_inject_bug: Option<String>,
}

impl Default for Tuning {
    fn default() -> Tuning {
        let core = Config::new(vec![1]);
        Tuning {
            window_slots: core.window_slots,
            batch_count_max: core.batch_count_max,
            batch_bytes_max: core.batch_bytes_max,
            lease_reads: true,
            durability: DurabilityMode::Sync,
            wal_writes: WalWrites::Async,
            peer_write_coalescing: true,
            tick_ms: 1,
            heartbeat_ticks: core.heartbeat_ticks,
            election_timeout_min_ticks: core.election_timeout_min_ticks,
            election_timeout_max_ticks: core.election_timeout_max_ticks,
            lease_ticks: core.lease_ticks,
            clock_drift_permille: core.clock_drift_permille,
            snapshot_every_slots: 1_000_000,
            snapshot_every_bytes: 256 << 20,
            value_bytes_max: (1 << 20) - COMMAND_OVERHEAD_BYTES,
            request_timeout_ms: 1_500,
            client_pending_max: 1024,
            clients_max: 10_000,
            peer_queue_bytes_max: 64 << 20,
            proposal_queue_max: 1 << 16,
            forward_read_window: 64,
            hand_over_after_ms: 1_000,
            unsynced_bytes_max: 64 << 20,
            snapshot_copy_keys: 1024,
            transparent_huge_pages: false,
            unsafe_inject_bug: None,
        }
    }
}

/// The environment variable that must be `1` for a server to run with
/// `tuning.unsafe_inject_bug` (`--unsafe-inject-bug`).
pub const ALLOW_INJECTED_BUGS_ENV: &str = "PAXOSKV_ALLOW_INJECTED_BUGS";

/// The injected bugs a server may run with; the others are for the
/// simulator only. `stale-lease-reads`: every node answers reads from its
/// own state, what reads would cost without leases, read-index rounds and
/// forwarding.
pub const SERVER_INJECTED_BUGS: [InjectedBug; 1] = [InjectedBug::StaleLeaseReads];

/// The injected bug `name` names, if a server may run with it.
pub fn parse_server_injected_bug(name: &str) -> Result<InjectedBug, String> {
    let allowed: Vec<&str> = SERVER_INJECTED_BUGS.iter().map(|bug| bug.name()).collect();
    let allowed = allowed.join(", ");
    match InjectedBug::from_name(name) {
        Some(bug) if SERVER_INJECTED_BUGS.contains(&bug) => Ok(bug),
        Some(InjectedBug::None) => {
            Err(format!("`none`: leave it out for no injected bug (a server accepts: {allowed})"))
        }
        Some(_) => Err(format!(
            "`{name}` is an injected bug for the simulator only (paxoskv sim --inject-bug {name}); a server accepts: \
             {allowed}"
        )),
        None => Err(format!("`{name}` is not an injected bug; a server accepts: {allowed}")),
    }
}

/// The gate in front of `tuning.unsafe_inject_bug`: a server runs with an
/// injected bug only when the environment variable
/// [`ALLOW_INJECTED_BUGS_ENV`] holds exactly `1` (`env_value`: its value,
/// if set). Nothing to allow without a bug.
pub fn check_injected_bug_allowed(tuning: &Tuning, env_value: Option<&str>) -> Result<(), String> {
    match &tuning.unsafe_inject_bug {
        Some(name) if env_value != Some("1") => Err(format!(
            "refusing to start with the injected bug `{name}` (--unsafe-inject-bug, or tuning.unsafe_inject_bug): \
             it breaks the cluster's consistency guarantees on purpose and is for measurement only; set the \
             environment variable {ALLOW_INJECTED_BUGS_ENV}=1 to allow it"
        )),
        _ => Ok(()),
    }
}

/// [`check_injected_bug_allowed`] with this process's environment: what
/// `server::run` checks before anything else starts.
pub fn check_injected_bug_allowed_by_environment(tuning: &Tuning) -> Result<(), String> {
    let value = std::env::var(ALLOW_INJECTED_BUGS_ENV).ok();
    check_injected_bug_allowed(tuning, value.as_deref())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    Sync,
    None,
}

impl DurabilityMode {
    pub fn storage(self) -> Durability {
        match self {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::None => Durability::None,
        }
    }
}

/// How a shard makes its WAL's record writes with `durability = "sync"`
/// (`storage::WalOptions::inline_writes`). The durability is the same
/// either way: a write is acknowledged once it is on stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WalWrites {
    /// Through io_uring: the shard goes on serving clients and peers while
    /// the disk syncs (on a disk without FUA writes, a kernel worker thread
    /// waits for it: two cross-thread wake-ups per group commit).
    Async,
    /// A blocking write on the executor's own thread: less CPU per
    /// operation, but nothing else runs on that executor while its disk
    /// syncs, so latency under load, and through a disk stall, is higher.
    Inline,
}

/// A secret from the cluster file or a flag (the peer secret, the client
/// password): a plain string in TOML, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself: for comparing or keying, never for a log line.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Longest peer secret, in bytes (file or inline).
pub const PEER_SECRET_BYTES_MAX: usize = 4096;
/// A peer secret shorter than this draws a warning at start: a recorded
/// handshake lets an eavesdropper test guesses offline (`net::peer_auth`).
pub const PEER_SECRET_BYTES_MIN_RECOMMENDED: usize = 16;

/// The whole cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Every peer handshake carries it: nodes of different clusters refuse each other.
    pub cluster_id: String,
    #[serde(default = "default_shards")]
    pub shards: usize,
    pub data_dir: PathBuf,
    /// The secret every node proves it knows when a peer link opens (an
    /// HMAC challenge-response in the handshake; the secret never crosses
    /// the wire). At most one of `peer_secret` and `peer_secret_file`;
    /// with neither, only a cluster whose nodes are all on loopback starts
    /// (with a warning), on the empty secret. See [`ClusterFile::peer_secret`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_secret: Option<Secret>,
    /// A file holding the peer secret (its bytes, one trailing newline
    /// dropped). [`ClusterFile::load`] makes a relative path relative to
    /// the cluster file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_secret_file: Option<PathBuf>,
    /// Redis's `requirepass`: clients must authenticate (AUTH, or HELLO
    /// with AUTH) with this password before any other command. None: no
    /// password. Never empty (validated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirepass: Option<Secret>,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub tuning: Tuning,
    /// Protocol traces for `paxoskv viz` (off when absent; `server
    /// --trace-dir` turns them on too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSettings>,
}

/// `[trace]`: each node and shard appends its protocol events (roles,
/// ballots, elections, leases and grants, commit progress, peer links,
/// recovery, and a sample of its peer messages) with wall-clock times to
/// `DIR/node-ID-shard-S.jsonl`, a file capped at `bytes_max` and rotated
/// (`.1`, `.2`, ... up to `files_max` old files). `paxoskv viz DIR/*`
/// merges every node's files into one diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    /// Where the trace files go (created if missing).
    pub dir: PathBuf,
    /// A trace file is rotated once it holds this many bytes.
    #[serde(default = "default_trace_bytes_max")]
    pub bytes_max: u64,
    /// Rotated files kept per node and shard (older ones are deleted).
    #[serde(default = "default_trace_files_max")]
    pub files_max: u32,
    /// Trace one in this many peer messages (sends and deliveries; both
    /// ends pick the same ones), 0 for none. Roles, leases, commits and
    /// links are always traced.
    #[serde(default)]
    pub messages_every: u64,
}

fn default_trace_bytes_max() -> u64 {
    64 << 20
}

fn default_trace_files_max() -> u32 {
    4
}

impl TraceSettings {
    pub fn new(dir: PathBuf) -> TraceSettings {
        TraceSettings {
            dir,
            bytes_max: default_trace_bytes_max(),
            files_max: default_trace_files_max(),
            messages_every: 0,
        }
    }

    /// Node `node`'s trace file for shard `shard`.
    pub fn path(&self, node: NodeId, shard: usize) -> PathBuf {
        self.dir.join(format!("node-{node}-shard-{shard}.jsonl"))
    }
}

fn default_shards() -> usize {
    1
}

/// Room in a slot for a command's key and framing beside its largest value.
pub const COMMAND_OVERHEAD_BYTES: usize = 64 * 1024;

/// Shards per node at most (one executor and one Paxos group each).
pub const SHARDS_MAX: usize = 256;

impl ClusterFile {
    pub fn load(path: &Path) -> Result<ClusterFile, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("reading cluster file {}: {e}", path.display()))?;
        let mut file = ClusterFile::parse(&text).map_err(|e| format!("cluster file {}: {e}", path.display()))?;
        if let Some(secret_path) = &mut file.peer_secret_file {
            if secret_path.is_relative() {
                *secret_path = path.parent().unwrap_or(Path::new("")).join(&*secret_path);
            }
        }
        Ok(file)
    }

    /// The peer secret's bytes, read from `peer_secret_file` if that is
    /// where it lives; None when neither field is set.
    pub fn peer_secret(&self) -> Result<Option<Vec<u8>>, String> {
        let secret = match (&self.peer_secret, &self.peer_secret_file) {
            (Some(secret), None) => secret.expose().as_bytes().to_vec(),
            (None, Some(path)) => {
                let mut bytes =
                    std::fs::read(path).map_err(|e| format!("reading peer_secret_file {}: {e}", path.display()))?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                if bytes.is_empty() || bytes.len() > PEER_SECRET_BYTES_MAX {
                    return Err(format!(
                        "peer_secret_file {} must hold 1 to {PEER_SECRET_BYTES_MAX} bytes, not {}",
                        path.display(),
                        bytes.len()
                    ));
                }
                bytes
            }
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => return Err("give peer_secret or peer_secret_file, not both".into()),
        };
        Ok(Some(secret))
    }

    /// Whether every node's host is a loopback address (or `localhost`):
    /// the one kind of cluster that may run without a peer secret.
    pub fn all_nodes_on_loopback(&self) -> bool {
        self.nodes.iter().all(|node| {
            node.host.eq_ignore_ascii_case("localhost") || node.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        })
    }

    pub fn parse(text: &str) -> Result<ClusterFile, String> {
        let file: ClusterFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        Ok(file)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the cluster file serializes")
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn member_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The core's configuration for one shard's Paxos group.
    pub fn core_config(&self) -> Config {
        let t = &self.tuning;
        let mut config = Config::new(self.member_ids());
        config.window_slots = t.window_slots;
        config.batch_count_max = t.batch_count_max;
        config.batch_bytes_max = t.batch_bytes_max;
        config.lease_reads = t.lease_reads;
        config.heartbeat_ticks = t.heartbeat_ticks;
        config.election_timeout_min_ticks = t.election_timeout_min_ticks;
        config.election_timeout_max_ticks = t.election_timeout_max_ticks;
        config.lease_ticks = t.lease_ticks;
        config.clock_drift_permille = t.clock_drift_permille;
        config.proposal_queue_max = t.proposal_queue_max;
        // Checked by `validate`; a name it refuses runs no bug.
        let bug = t.unsafe_inject_bug.as_deref().map(parse_server_injected_bug);
        config.injected_bug = bug.and_then(Result::ok).unwrap_or_default();
        config
    }

    /// The node layer's configuration for one shard of node `id`.
    pub fn node_config(&self, id: NodeId) -> NodeConfig {
        let t = &self.tuning;
        let mut config = NodeConfig::new(id, self.member_ids());
        config.tick_us = t.tick_ms * 1000;
        config.request_timeout_us = t.request_timeout_ms * 1000;
        config.snapshot_every_slots = t.snapshot_every_slots;
        config.snapshot_every_bytes = t.snapshot_every_bytes;
        config.sessions_max = SESSIONS_MAX;
        config.forward_read_window = t.forward_read_window;
        config.hand_over_after_us = t.hand_over_after_ms.saturating_mul(1000);
        config.unsynced_bytes_max = t.unsynced_bytes_max;
        config.snapshot_copy_keys = t.snapshot_copy_keys;
        config
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.cluster_id.is_empty() || self.cluster_id.len() > 255 {
            return Err("cluster_id must be 1 to 255 bytes".into());
        }
        if self.trace.as_ref().is_some_and(|t| t.bytes_max < 4096) {
            return Err("trace.bytes_max must be at least 4096".into());
        }
        if self.peer_secret.is_some() && self.peer_secret_file.is_some() {
            return Err("give peer_secret or peer_secret_file, not both".into());
        }
        if let Some(secret) = &self.peer_secret {
            if secret.expose().is_empty() || secret.expose().len() > PEER_SECRET_BYTES_MAX {
                return Err(format!("peer_secret must be 1 to {PEER_SECRET_BYTES_MAX} bytes"));
            }
        }
        if self.requirepass.as_ref().is_some_and(|password| password.expose().is_empty()) {
            return Err("requirepass is empty: leave it out for no password".into());
        }
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(format!("shards must be 1 to {SHARDS_MAX}, not {}", self.shards));
        }
        if self.nodes.is_empty() {
            return Err("no [[nodes]]".into());
        }
        let mut ids = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for node in &self.nodes {
            if !ids.insert(node.id) {
                return Err(format!("node id {} appears twice", node.id));
            }
            if node.id == 0 || node.id > SESSION_NODE_MAX {
                return Err(format!("node id {} is outside 1..={SESSION_NODE_MAX}", node.id));
            }
            if usize::from(node.peer_port) + self.shards > 65536 {
                return Err(format!("node {}: peer ports {}+{} overflow", node.id, node.peer_port, self.shards));
            }
            let named = [("client_port", Some(node.client_port)), ("peer_port", Some(node.peer_port))];
            for (name, port) in named.into_iter().chain([("metrics_port", node.metrics_port)]) {
                if port == Some(0) {
                    return Err(format!(
                        "node {}: {name} is 0, a port the system would choose, which no client or peer could find",
                        node.id
                    ));
                }
            }
            let mut ports = vec![node.client_port];
            ports.extend((0..self.shards).map(|s| node.peer_port + s as u16));
            ports.extend(node.metrics_port);
            for port in ports {
                if !addresses.insert((node.host.clone(), port)) {
                    return Err(format!("node {}: port {port} on {} is used twice", node.id, node.host));
                }
            }
        }
        let t = &self.tuning;
        if t.tick_ms == 0 {
            return Err("tuning.tick_ms must be at least 1".into());
        }
        if t.value_bytes_max == 0
            || t.client_pending_max == 0
            || t.request_timeout_ms == 0
            || t.clients_max == 0
            || t.forward_read_window == 0
            || t.snapshot_copy_keys == 0
        {
            return Err("tuning.value_bytes_max, client_pending_max, request_timeout_ms, clients_max, \
                        forward_read_window and snapshot_copy_keys must be positive"
                .into());
        }
        if t.snapshot_every_slots == 0 && t.snapshot_every_bytes == 0 {
            return Err("tuning.snapshot_every_slots and snapshot_every_bytes are both 0: the log would never be \
                        compacted and would grow in memory without bound"
                .into());
        }
        if let Some(name) = &t.unsafe_inject_bug {
            parse_server_injected_bug(name).map_err(|e| format!("tuning.unsafe_inject_bug: {e}"))?;
        }
        // The largest command (a SET of the largest value and its key) must fit a slot.
        if t.batch_bytes_max < t.value_bytes_max + COMMAND_OVERHEAD_BYTES {
            return Err(format!(
                "tuning.batch_bytes_max ({}) must exceed value_bytes_max ({}) by at least {COMMAND_OVERHEAD_BYTES}",
                t.batch_bytes_max, t.value_bytes_max
            ));
        }
        self.core_config().validate().map_err(|e| format!("tuning: {}", e.0))
    }

    /// A cluster of `nodes` processes on loopback: node i (1-based) gets
    /// client port `base_port + i`, peer ports from `base_port + 1000 + 100 * i`,
    /// metrics port `base_port + 2000 + i`.
    pub fn local(nodes: usize, base_port: u16, shards: usize, data_dir: &Path) -> Result<ClusterFile, String> {
        let port = |offset: usize| {
            u16::try_from(usize::from(base_port) + offset)
                .map_err(|_| format!("base port {base_port} leaves no room for {nodes} nodes"))
        };
        let nodes = (1..=nodes)
            .map(|i| {
                Ok(NodeSpec {
                    id: i as NodeId,
                    host: "127.0.0.1".into(),
                    client_port: port(i)?,
                    peer_port: port(1000 + 100 * i)?,
                    metrics_port: Some(port(2000 + i)?),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let file = ClusterFile {
            cluster_id: "local".into(),
            shards,
            data_dir: data_dir.to_path_buf(),
            peer_secret: None,
            peer_secret_file: None,
            requirepass: None,
            nodes,
            tuning: Tuning::default(),
            trace: None,
        };
        Ok(file)
    }

    /// Where node `id` keeps shard `shard`.
    pub fn shard_dir(&self, id: NodeId, shard: usize) -> PathBuf {
        self.data_dir.join(format!("node-{id}")).join(format!("shard-{shard}"))
    }
}

/// Tuning flags on the command line: each overrides the cluster file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TuningArgs {
    /// Slots in flight at once (pipelining window; 1 = off); must be the
    /// same on every node: a new leader closes this many slots past the
    /// log it recovered before serving reads [default: 64]
    #[arg(long)]
    pub window_slots: Option<usize>,
    /// Commands per slot at most (1 = no batching) [default: 1024]
    #[arg(long)]
    pub batch_count_max: Option<usize>,
    /// Payload bytes per slot at most [default: 1 MiB]
    #[arg(long)]
    pub batch_bytes_max: Option<usize>,
    /// Serve reads under a leader lease (true) or by a read-index round (false) [default: true]
    #[arg(long)]
    pub lease_reads: Option<bool>,
    /// sync: O_DSYNC WAL writes before acknowledging; none: page-cache writes, never fsync (loses data on power loss) [default: sync]
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityMode>,
    /// With durability sync: async: WAL writes through io_uring, the executor serves on while the disk syncs; inline: the executor's own thread makes each record write (blocking), less CPU per op but higher latency under load and through disk stalls [default: async]
    #[arg(long, value_enum)]
    pub wal_writes: Option<WalWrites>,
    /// One write per wake-up for all queued peer messages (true) or one write per message [default: true]
    #[arg(long)]
    pub peer_write_coalescing: Option<bool>,
    /// Milliseconds per core tick [default: 1]
    #[arg(long)]
    pub tick_ms: Option<u64>,
    /// Election timeout range in ticks, as MIN..MAX [default: 150..300]
    #[arg(long, value_parser = parse_range)]
    pub election_timeout_ticks: Option<(u64, u64)>,
    /// Snapshot and compact the log every this many slots; 0: not by slots
    /// (one of the two must trigger) [default: 1000000]
    #[arg(long)]
    pub snapshot_every_slots: Option<u64>,
    /// ... or every this many bytes of commands; 0: not by bytes
    /// [default: 268435456]
    #[arg(long)]
    pub snapshot_every_bytes: Option<u64>,
    /// Largest value a client may SET, in bytes [default: 983040 = 1 MiB - 64 KiB]
    #[arg(long)]
    pub value_bytes_max: Option<usize>,
    /// Milliseconds before an unanswered request gets an error (below the
    /// common clients' own read timeouts: Jedis 2 s, go-redis 3 s, redis-py
    /// 5 s, so that they read the error instead of timing out and
    /// resending) [default: 1500]
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Ticks between a leader's heartbeats [default: 10, or less with --election-timeout-ticks]
    #[arg(long)]
    pub heartbeat_ticks: Option<u64>,
    /// Ticks a leader lease lasts; below the election timeout [default: 100, or less with --election-timeout-ticks]
    #[arg(long)]
    pub lease_ticks: Option<u64>,
    /// Bound on the clock-rate difference between nodes, per mille (shortens the lease) [default: 50]
    #[arg(long)]
    pub clock_drift_permille: Option<u64>,
    /// Replies a client connection may have outstanding before it is not read [default: 1024]
    #[arg(long)]
    pub client_pending_max: Option<usize>,
    /// Client connections per executor; more are refused with an error [default: 10000]
    #[arg(long)]
    pub clients_max: Option<usize>,
    /// Bytes queued for one peer link before its messages are dropped [default: 64 MiB]
    #[arg(long)]
    pub peer_queue_bytes_max: Option<usize>,
    /// Commands queued at a leader beyond the window before proposals are refused [default: 65536]
    #[arg(long)]
    pub proposal_queue_max: Option<usize>,
    /// Reads this node may have forwarded to the shard's leader and unanswered at once; more wait in arrival order (larger: more pipelined reads through a follower; smaller: less leader memory under a flood of large GETs) [default: 64]
    #[arg(long)]
    pub forward_read_window: Option<usize>,
    /// A leader with a WAL append that has waited this long for its fsync hands leadership over, if the other nodes can elect a leader without it; a node unsynced_bytes_max behind starts no election (0: neither; a leader on a slow disk keeps leading and holds requests until its disk catches up) [default: 1000]
    #[arg(long)]
    pub hand_over_after_ms: Option<u64>,
    /// Bytes of WAL appends a shard may have waiting for their fsync before it holds new requests and its peers' entries (the backpressure bound, and the memory a slow disk may cost; 0: each append waits for the last one's fsync) [default: 64 MiB]
    #[arg(long)]
    pub unsynced_bytes_max: Option<usize>,
    /// Keys a snapshot copies from the store per executor pass, the shard's other work in between (larger: snapshots finish sooner; smaller: shorter pauses beside them) [default: 1024]
    #[arg(long)]
    pub snapshot_copy_keys: Option<usize>,
    /// Let this node's memory use transparent huge pages as the system sets them (true), or turn them off for its process like Redis's disable-thp (false: huge pages are zeroed whole when faulted in, which cost 4-14% of a SET's CPU; see results/thp) [default: false]
    #[arg(long)]
    pub transparent_huge_pages: Option<bool>,
    /// UNSAFE, FOR MEASUREMENT ONLY: run with a protocol bug injected on
    /// purpose; the cluster's consistency guarantees are then off. Only
    /// `stale-lease-reads` (every node answers reads from its own state at
    /// once, possibly stale: no lease, no read-index round, no forward to
    /// the leader), to measure what safe reads cost. Refused unless the
    /// environment variable PAXOSKV_ALLOW_INJECTED_BUGS=1 is set.
    #[arg(long, value_name = "BUG", value_parser = parse_server_injected_bug_name)]
    pub unsafe_inject_bug: Option<String>,
}

/// `--unsafe-inject-bug`: a name [`parse_server_injected_bug`] accepts.
fn parse_server_injected_bug_name(name: &str) -> Result<String, String> {
    parse_server_injected_bug(name).map(|bug| bug.name().to_string())
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text.split_once("..").ok_or("expected MIN..MAX")?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if a == 0 || a > b {
        return Err("expected 0 < MIN <= MAX".into());
    }
    Ok((a, b))
}

impl TuningArgs {
    /// Settings every node must share, refused on one node's command line
    /// when they differ from the cluster file: `window_slots` (a new leader
    /// closes that many slots past its log, sized by what any earlier
    /// leader could have in flight; `paxos::time`).
    pub fn check_cluster_wide(&self, file: &Tuning) -> Result<(), String> {
        match self.window_slots {
            Some(0) => Err("--window-slots must be at least 1 (1 turns pipelining off)".into()),
            Some(window) if window != file.window_slots => Err(format!(
                "--window-slots {window} differs from the cluster file's window_slots = {}: it must be the same on \
                 every node; change it in the cluster file for all of them",
                file.window_slots
            )),
            _ => Ok(()),
        }
    }

    pub fn apply(&self, t: &mut Tuning) {
        if let Some(v) = self.window_slots {
            t.window_slots = v;
        }
        if let Some(v) = self.batch_count_max {
            t.batch_count_max = v;
        }
        if let Some(v) = self.batch_bytes_max {
            t.batch_bytes_max = v;
        }
        if let Some(v) = self.lease_reads {
            t.lease_reads = v;
        }
        if let Some(v) = self.durability {
            t.durability = v;
        }
        if let Some(v) = self.wal_writes {
            t.wal_writes = v;
        }
        if let Some(v) = self.peer_write_coalescing {
            t.peer_write_coalescing = v;
        }
        if let Some(v) = self.tick_ms {
            t.tick_ms = v;
        }
        if let Some((min, max)) = self.election_timeout_ticks {
            t.election_timeout_min_ticks = min;
            t.election_timeout_max_ticks = max;
            // Keep the defaults' proportions: lease below the election timeout.
            t.heartbeat_ticks = t.heartbeat_ticks.min((min / 10).max(1));
            t.lease_ticks = t.lease_ticks.min(min * 2 / 3);
        }
        if let Some(v) = self.snapshot_every_slots {
            t.snapshot_every_slots = v;
        }
        if let Some(v) = self.snapshot_every_bytes {
            t.snapshot_every_bytes = v;
        }
        if let Some(v) = self.value_bytes_max {
            t.value_bytes_max = v;
            t.batch_bytes_max = t.batch_bytes_max.max(v.saturating_add(COMMAND_OVERHEAD_BYTES));
        }
        if let Some(v) = self.request_timeout_ms {
            t.request_timeout_ms = v;
        }
        if let Some(v) = self.heartbeat_ticks {
            t.heartbeat_ticks = v;
        }
        if let Some(v) = self.lease_ticks {
            t.lease_ticks = v;
        }
        if let Some(v) = self.clock_drift_permille {
            t.clock_drift_permille = v;
        }
        if let Some(v) = self.client_pending_max {
            t.client_pending_max = v;
        }
        if let Some(v) = self.clients_max {
            t.clients_max = v;
        }
        if let Some(v) = self.peer_queue_bytes_max {
            t.peer_queue_bytes_max = v;
        }
        if let Some(v) = self.proposal_queue_max {
            t.proposal_queue_max = v;
        }
        if let Some(v) = self.forward_read_window {
            t.forward_read_window = v;
        }
        if let Some(v) = self.hand_over_after_ms {
            t.hand_over_after_ms = v;
        }
        if let Some(v) = self.unsynced_bytes_max {
            t.unsynced_bytes_max = v;
        }
        if let Some(v) = self.snapshot_copy_keys {
            t.snapshot_copy_keys = v;
        }
        if let Some(v) = self.transparent_huge_pages {
            t.transparent_huge_pages = v;
        }
        if let Some(v) = &self.unsafe_inject_bug {
            t.unsafe_inject_bug = Some(v.clone());
        }
    }
}

/// `--requirepass`: the client password on the command line (visible to
/// other local users in `ps`; the cluster file keeps it private).
pub fn parse_password(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("empty: leave the flag out for no password".into());
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests;
