//! A loopback paxoskv cluster for the compatibility tests: `paxoskv server`
//! processes from a cluster file written by `ClusterFile::local`, spoken to
//! over raw TCP only (no client library between the test and the bytes).
//!
//! The cluster lives in `target/compat-tests/<name>/` (cluster file, data,
//! one log per node), removed when the test passes and kept, with the last
//! lines of each log printed, when it fails. Conditions are awaited by
//! polling under a generous deadline, never by sleeping a guessed time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use paxoskv::server::config::ClusterFile;

use super::replay::{args, Connection};
use super::transcript::Outcome;

pub type NodeId = u32;

/// How long an awaited condition may take before the test fails. Generous:
/// a 2-core machine building in parallel can be very slow.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The pause between two polls of a condition.
const POLL_PAUSE: Duration = Duration::from_millis(50);
/// Lines of each node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// Layouts of ports tried for one cluster, this far apart: another test
/// run on the machine (another checkout's `cargo test`) may hold the ports
/// of the first, and a node refuses ports someone else holds.
const PORT_LAYOUTS_TRIED: u16 = 10;
const PORT_LAYOUT_STRIDE: u16 = 7;

/// One cluster at a time in a test binary (the CI machine has 2 cores).
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Poll `probe` until it yields a value; fail the test after [`DEADLINE`].
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up after {DEADLINE:?} waiting for {what}");
        thread::sleep(POLL_PAUSE);
    }
}

/// A loopback cluster of `paxoskv server` processes, killed on drop.
pub struct TestCluster {
    dir: PathBuf,
    config_path: PathBuf,
    file: ClusterFile,
    /// Clients must AUTH with it (the cluster file's `requirepass`).
    pub password: Option<String>,
    /// Indexed by node id - 1.
    children: Vec<Option<Child>>,
    /// Held for the cluster's life; dropped after the children are killed.
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl TestCluster {
    /// Start `nodes` nodes with `shards` shards on ports from `base_port`
    /// (node i: client port base+i, peer ports base+1000+100i+shard, metrics
    /// base+2000+i; or from a base a few strides up if another process holds
    /// one of those), requiring `requirepass` if given, and wait until every
    /// node answers PING and every shard has an agreed leader.
    pub fn start(name: &str, base_port: u16, nodes: usize, shards: usize, requirepass: Option<&str>) -> TestCluster {
        let one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("compat-tests").join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => panic!("removing {}: {e}", dir.display()),
            _ => {}
        }
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let file = free_port_layout(base_port, nodes, shards, &dir.join("data"));
        file.validate().expect("the test's cluster file is valid");
        let mut toml = file.to_toml();
        if let Some(password) = requirepass {
            // Written as text so this compiles before `ClusterFile` has its
            // `requirepass: Option<String>` field; a top-level key goes
            // before the first [table]. Once the field exists this can be
            // `file.requirepass = Some(password.into())`.
            toml = format!("requirepass = {}\n{toml}", toml_string(password));
        }
        let config_path = dir.join("cluster.toml");
        std::fs::write(&config_path, toml).expect("writing the cluster file");
        let mut cluster = TestCluster {
            dir,
            config_path,
            file,
            password: requirepass.map(str::to_string),
            children: (0..nodes).map(|_| None).collect(),
            _one_at_a_time: one_at_a_time,
        };
        for node in cluster.node_ids() {
            cluster.spawn(node);
        }
        for node in cluster.node_ids() {
            cluster.wait_serving(node);
        }
        for shard in 0..shards {
            cluster.leader(shard);
        }
        cluster
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.file.member_ids()
    }

    pub fn shards(&self) -> usize {
        self.file.shards
    }

    pub fn client_port(&self, node: NodeId) -> u16 {
        self.file.node(node).expect("a member").client_port
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    fn log_path(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("node-{node}.log"))
    }

    fn spawn(&mut self, node: NodeId) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(node))
            .unwrap_or_else(|e| panic!("opening the log of node {node}: {e}"));
        let child = Command::new(env!("CARGO_BIN_EXE_paxoskv"))
            .arg("server")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--node-id")
            .arg(node.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning node {node}: {e}"));
        self.children[node as usize - 1] = Some(child);
    }

    /// Fail at once if node `node` has exited on its own.
    fn assert_running(&mut self, node: NodeId) {
        if let Some(child) = &mut self.children[node as usize - 1] {
            if let Ok(Some(status)) = child.try_wait() {
                self.children[node as usize - 1] = None;
                panic!("node {node} exited unexpectedly ({status}); see its log below");
            }
        }
    }

    /// One command on a new connection (authenticated if the cluster
    /// requires it); `None` if the node does not answer right now.
    pub fn call(&self, node: NodeId, words: &[&str]) -> Option<Outcome> {
        let mut connection = Connection::open(self.client_port(node), 2).ok()?;
        if let Some(password) = &self.password {
            connection.call(&args(&["AUTH", password])).ok()?;
        }
        let outcome = connection.call(&args(words)).ok()?;
        connection.close().ok()?;
        Some(outcome)
    }

    /// Wait until node `node` answers on its client port, and it is our
    /// process that answers: another test run on this machine may use the
    /// same ports (a node whose port is taken exits, as it should), and a
    /// test must never talk to, or FLUSHDB, someone else's cluster.
    fn wait_serving(&mut self, node: NodeId) {
        let pid = self.children[node as usize - 1].as_ref().map(Child::id).expect("node spawned");
        let port = self.client_port(node);
        wait_until(&format!("node {node} (process {pid}) to answer PING on port {port}"), || {
            self.assert_running(node);
            if self.call(node, &["PING"])? != Outcome::Reply(b"+PONG\r\n".to_vec()) {
                return None;
            }
            (self.server_process_id(node)? == pid).then_some(())
        });
    }

    /// `process_id` from node `node`'s `INFO server`.
    fn server_process_id(&self, node: NodeId) -> Option<u32> {
        let text = self.call(node, &["INFO", "server"])?.reply()?.text()?.to_vec();
        let text = String::from_utf8_lossy(&text);
        text.lines().find_map(|line| line.strip_prefix("process_id:")).and_then(|pid| pid.trim().parse().ok())
    }

    /// `INFO replication` of `node` as field -> value.
    fn replication_info(&self, node: NodeId) -> Option<BTreeMap<String, String>> {
        let text = self.call(node, &["INFO", "replication"])?.reply()?.text()?.to_vec();
        Some(
            String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(field, value)| (field.to_string(), value.trim().to_string()))
                .collect(),
        )
    }

    /// The leader of `shard` once every node names the same node, and that
    /// node says it is the leader.
    pub fn leader(&mut self, shard: usize) -> NodeId {
        let role_field = format!("shard{shard}_role");
        let leader_field = format!("shard{shard}_leader");
        let nodes = self.node_ids();
        wait_until(&format!("nodes {nodes:?} to agree on a leader of shard {shard}"), || {
            let mut agreed = None;
            for &node in &nodes {
                self.assert_running(node);
                let info = self.replication_info(node)?;
                let named: NodeId = info.get(&leader_field)?.parse().ok()?;
                if !nodes.contains(&named) || *agreed.get_or_insert(named) != named {
                    return None;
                }
                if named == node && info.get(&role_field).map(String::as_str) != Some("leader") {
                    return None;
                }
            }
            agreed
        })
    }
}

/// The cluster file of the first port layout from `base_port` whose ports
/// nobody holds right now.
fn free_port_layout(base_port: u16, nodes: usize, shards: usize, data_dir: &std::path::Path) -> ClusterFile {
    let mut busy = Vec::new();
    for attempt in 0..PORT_LAYOUTS_TRIED {
        let base = base_port + attempt * PORT_LAYOUT_STRIDE;
        let file = ClusterFile::local(nodes, base, shards, data_dir).expect("a local cluster file");
        let mut ports = file.nodes.iter().flat_map(|node| {
            let peers = (0..shards).map(move |shard| node.peer_port + shard as u16);
            std::iter::once(node.client_port).chain(peers).chain(node.metrics_port)
        });
        match ports.find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_err()) {
            None => {
                if !busy.is_empty() {
                    print_block(&format!("(ports {busy:?} are held by another process: base port {base} instead)\n"));
                }
                return file;
            }
            Some(port) => busy.push(port),
        }
    }
    panic!("no free port layout from base port {base_port}: {busy:?} are held by other processes");
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            for node in self.node_ids() {
                let log = String::from_utf8_lossy(&std::fs::read(self.log_path(node)).unwrap_or_default()).into_owned();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                eprintln!("--- last {} lines of {} ---", tail.len(), self.log_path(node).display());
                for line in tail {
                    eprintln!("{line}");
                }
            }
            eprintln!("--- the cluster file, data and logs are kept in {} ---", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Write `text` to stderr line by line (cargo shows it for a failing test).
pub fn print_block(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}
