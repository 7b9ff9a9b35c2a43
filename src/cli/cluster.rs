//! `paxoskv cluster`: a local cluster of server processes on loopback, from
//! defaults, with no file to write. It writes the cluster file it uses into
//! the data directory, starts one `paxoskv server` per node, prefixes their
//! logs, prints where to connect and who leads each shard, and stops them
//! all on Ctrl-C.
//!
//! Each data directory is its own cluster: the first start in a directory
//! draws a random cluster id and peer secret, and later starts reuse them
//! from its `cluster.toml` (written readable by its owner only). Two local
//! clusters with different data directories never join each other's links.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use paxoskv::server::config::{parse_password, ClusterFile, Secret, TuningArgs};

use super::control::{self, Control};
use super::netns::Netns;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    paxoskv cluster                       # 3 nodes, clients on 127.0.0.1:7001..7003\n  \
    paxoskv cluster --shards 2 --durability none --window-slots 1\n\n\
    Node i listens for clients on BASE+i, for peers on BASE+1000+100*i (+shard), and serves \
    Prometheus metrics on http://127.0.0.1:BASE+2000+i/metrics. Data persists in --data-dir \
    across runs (use --fresh to start empty). The first start in a data directory draws a random \
    cluster id and peer secret and keeps them in DIR/cluster.toml (mode 0600), so clusters in \
    different directories never join each other. Any RESP client works: redis-cli -p 7001.")]
pub struct ClusterArgs {
    /// Number of server processes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    nodes: u32,
    /// Node i's client port is BASE+i.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Where the nodes keep their data (and the generated cluster.toml).
    #[arg(long, default_value = "paxoskv-data")]
    data_dir: PathBuf,
    /// Shards (executors, Paxos groups) per node.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Delete the data directory first.
    #[arg(long)]
    fresh: bool,
    /// Pin executors to CPUs (production); the default lets the kernel place them.
    #[arg(long)]
    pin: bool,
    /// Stop after this many seconds (for scripts); default: run until Ctrl-C.
    #[arg(long)]
    run_seconds: Option<u64>,
    /// Clients must authenticate with this password before any other
    /// command (written to the generated cluster.toml, not onto the
    /// servers' command lines). Give it on every start: the file is
    /// rewritten from this run's flags, only the cluster id and peer
    /// secret are kept.
    #[arg(long, value_name = "PASSWORD", value_parser = parse_password)]
    requirepass: Option<Secret>,
    /// Every node writes its protocol trace to DIR/node-ID-shard-S.jsonl
    /// (written to the generated cluster.toml's [trace]); `paxoskv viz
    /// DIR/*.jsonl --out cluster.html` draws them as one diagram. Off by
    /// default.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// With --trace-dir: trace one in N peer messages as arrows; 0 for
    /// none.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "trace_dir")]
    trace_messages_every: u64,
    /// Run each node in its own network namespace on a bridge (needs root
    /// and iproute2), node i at 10.H.L.i where H.L are the base port's two
    /// bytes, so that `--control-stdin`'s `isolate` and `split` can cut the
    /// links between nodes while clients on this host still reach every
    /// node. The namespaces are removed when the cluster stops.
    #[arg(long)]
    netns: bool,
    /// Read fault commands from stdin, one per line, each answered by one
    /// stdout line starting `control: ok` or `control: error`: `kill N`
    /// (SIGKILL), `stop N` (SIGTERM: a planned stop, the node hands its
    /// leadership over first; waits for it to exit), `restart N` (same
    /// command line and data), `pause N`
    /// (SIGSTOP), `resume N` (SIGCONT), `isolate N` and `split 1,2/3` (need
    /// --netns), `heal`, `pids`. Paused nodes are resumed when the cluster
    /// stops. `loadgen --nemesis` drives this.
    #[arg(long)]
    control_stdin: bool,
    #[command(flatten)]
    tuning: TuningArgs,
}

pub fn run(args: ClusterArgs) -> ExitCode {
    match run_cluster(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_cluster(args: ClusterArgs) -> Result<ExitCode, String> {
    if args.fresh && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir).map_err(|e| format!("removing {}: {e}", args.data_dir.display()))?;
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("creating {}: {e}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize().map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let mut file = ClusterFile::local(args.nodes as usize, args.base_port, args.shards, &data_dir)?;
    let config_path = data_dir.join("cluster.toml");
    let (cluster_id, peer_secret) = cluster_identity(&config_path)?;
    file.cluster_id = cluster_id;
    file.peer_secret = Some(peer_secret);
    file.requirepass = args.requirepass.clone();
    if let Some(dir) = &args.trace_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut settings = paxoskv::server::TraceSettings::new(dir);
        settings.messages_every = args.trace_messages_every;
        file.trace = Some(settings);
    }
    args.tuning.apply(&mut file.tuning);
    file.validate()?;
    paxoskv::server::config::check_injected_bug_allowed_by_environment(&file.tuning)?;

    let netns = match args.netns {
        true => {
            let ids: Vec<u32> = file.nodes.iter().map(|n| n.id).collect();
            let netns = Netns::create(args.base_port, &ids)?;
            for node in &mut file.nodes {
                node.host = netns.node_ip(node.id);
            }
            Some(netns)
        }
        false => None,
    };
    write_private(&config_path, &file.to_toml())?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).map_err(|e| format!("handling Ctrl-C: {e}"))?;

    let exe = std::env::current_exe().map_err(|e| format!("finding the paxoskv binary: {e}"))?;
    let mut nodes = Nodes { exe, config_path, pin: args.pin, netns, running: Vec::new() };
    for node in &file.nodes {
        let child = nodes.spawn(node.id)?;
        nodes.running.push(NodeProcess { id: node.id, child: Some(child), paused: false, exit_reported: false });
    }
    println!(
        "paxoskv cluster {:?}: {} nodes, {} shards each, data in {}{}",
        file.cluster_id,
        file.nodes.len(),
        file.shards,
        data_dir.display(),
        if nodes.netns.is_some() { ", each node in its own network namespace" } else { "" }
    );
    for (node, process) in file.nodes.iter().zip(&nodes.running) {
        println!(
            "  node {}: clients {}:{}  metrics http://{}:{}/metrics  pid {}",
            node.id,
            node.host,
            node.client_port,
            node.host,
            node.metrics_port.unwrap_or(0),
            process.pid().unwrap_or(0)
        );
    }
    let clients: Vec<(String, u16)> = file.nodes.iter().map(|n| (n.host.clone(), n.client_port)).collect();
    let password = file.requirepass.as_ref().map(Secret::expose);
    let mut exited = || nodes.running.iter_mut().find_map(|p| p.child.as_mut()?.try_wait().ok()?.map(|_| p.id));
    match wait_for_leaders(&clients, password, file.shards, Duration::from_secs(30), &stop, &mut exited) {
        Ok(leaders) => {
            for (shard, leader) in leaders.iter().enumerate() {
                println!("  shard {shard}: leader node {leader}");
            }
            let auth = if password.is_some() { " -a PASSWORD" } else { "" };
            let (host, port) = &clients[0];
            println!("ready: try `redis-cli -h {host} -p {port}{auth}`; Ctrl-C stops the cluster");
        }
        // `Child` keeps the status: the loop below still reports the exit.
        Err(LeaderWait::NodeExited(id)) => {
            println!("warning: not every shard elected a leader: node {id} exited while the cluster started")
        }
        Err(LeaderWait::TimedOut) if !stop.load(Ordering::SeqCst) => {
            println!("warning: not every shard elected a leader within 30 s; the nodes keep trying")
        }
        Err(LeaderWait::TimedOut) => {}
    }
    let controls = args.control_stdin.then(control::read_stdin);
    let deadline = args.run_seconds.map(|s| Instant::now() + Duration::from_secs(s));
    // A node that dies (a crash, or kill -9 to watch a failover) is
    // reported; the others keep serving while a majority lives.
    let mut crashed = false;
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        for process in nodes.running.iter_mut() {
            let Some(child) = process.child.as_mut() else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                process.child = None;
                if !process.exit_reported {
                    crashed = true;
                    eprintln!(
                        "node {} exited ({status}); the others keep serving while a majority lives. Restart it \
                         with: {} server --config {} --node-id {}",
                        process.id,
                        nodes.exe.display(),
                        nodes.config_path.display(),
                        process.id
                    );
                }
            }
        }
        if nodes.running.iter().all(|p| p.child.is_none()) && controls.is_none() {
            eprintln!("every node has exited");
            break;
        }
        match &controls {
            Some(lines) => match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let reply = control::parse(&line).and_then(|command| nodes.apply(&command));
                    match reply {
                        Ok(done) => println!("control: ok {done}"),
                        Err(e) => println!("control: error {e}"),
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                // stdin closed: the controller is gone; keep serving.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(100)),
            },
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let running = nodes.running.iter().filter(|p| p.child.is_some()).count();
    println!("stopping {running} nodes");
    nodes.stop_all();
    // `nodes.netns` drops here: namespaces and the bridge are removed.
    Ok(if crashed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One node's server process (none while killed).
struct NodeProcess {
    id: u32,
    child: Option<Child>,
    /// Stopped with SIGSTOP by a `pause` command: resumed before stopping.
    paused: bool,
    /// Its exit was caused or reported already (a `kill` command).
    exit_reported: bool,
}

impl NodeProcess {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: libc::c_int) -> Result<(), String> {
        let pid = self.pid().ok_or(format!("node {} is not running", self.id))?;
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
            Ok(())
        } else {
            Err(format!("signalling node {}: {}", self.id, std::io::Error::last_os_error()))
        }
    }
}

/// The cluster's server processes and what they run in.
struct Nodes {
    exe: PathBuf,
    config_path: PathBuf,
    pin: bool,
    netns: Option<Netns>,
    running: Vec<NodeProcess>,
}

impl Nodes {
    /// Starts node `id`'s server (in its namespace under `--netns`), its
    /// output prefixed onto ours.
    fn spawn(&self, id: u32) -> Result<Child, String> {
        let mut command = Command::new(&self.exe);
        command.arg("server").arg("--config").arg(&self.config_path).arg("--node-id").arg(id.to_string());
        if self.pin {
            command.arg("--pin");
        }
        if let Some(netns) = &self.netns {
            let handle = netns.handle(id)?;
            // SAFETY: the closure only calls setns(2), async-signal-safe,
            // on a descriptor the parent keeps open until after the spawn.
            unsafe {
                command.pre_exec(move || Netns::enter(&handle));
            }
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("starting node {id}: {e}"))?;
        forward_output(id, child.stdout.take());
        forward_output(id, child.stderr.take());
        Ok(child)
    }

    fn node(&mut self, id: u32) -> Result<&mut NodeProcess, String> {
        self.running.iter_mut().find(|p| p.id == id).ok_or(format!("no node {id}"))
    }

    fn netns(&self) -> Result<&Netns, String> {
        self.netns.as_ref().ok_or_else(|| "partitions need a cluster started with --netns".to_string())
    }

    /// Carries out one control command; says what was done.
    fn apply(&mut self, command: &Control) -> Result<String, String> {
        match command {
            Control::Kill(id) => {
                let process = self.node(*id)?;
                process.signal(libc::SIGKILL)?;
                let mut child = process.child.take().expect("signalled, so running");
                let _ = child.wait();
                process.paused = false;
                process.exit_reported = true;
                Ok(format!("kill {id}"))
            }
            Control::Stop(id) => {
                let process = self.node(*id)?;
                if process.paused {
                    process.signal(libc::SIGCONT)?;
                    process.paused = false;
                }
                let child = process.child.take().ok_or(format!("node {id} is not running"))?;
                process.exit_reported = true;
                // SIGTERM, then SIGKILL after 5 s.
                stop_children(&mut [(*id, child)]);
                Ok(format!("stop {id}"))
            }
            Control::Restart(id) => {
                if self.node(*id)?.child.is_some() {
                    return Err(format!("node {id} is running"));
                }
                let child = self.spawn(*id)?;
                let pid = child.id();
                let process = self.node(*id)?;
                process.child = Some(child);
                process.exit_reported = false;
                Ok(format!("restart {id} pid {pid}"))
            }
            Control::Pause(id) => {
                let process = self.node(*id)?;
                process.signal(libc::SIGSTOP)?;
                process.paused = true;
                Ok(format!("pause {id}"))
            }
            Control::Resume(id) => {
                let process = self.node(*id)?;
                process.signal(libc::SIGCONT)?;
                process.paused = false;
                Ok(format!("resume {id}"))
            }
            Control::Isolate(id) => {
                self.netns()?.isolate(*id)?;
                Ok(format!("isolate {id}"))
            }
            Control::Split(groups) => {
                self.netns()?.split(groups)?;
                Ok(format!("split {}", control::groups_text(groups)))
            }
            Control::Heal => {
                if let Some(netns) = &self.netns {
                    netns.heal()?;
                }
                Ok("heal".into())
            }
            Control::Pids => {
                let pids: Vec<String> =
                    self.running.iter().map(|p| format!("{}={}", p.id, p.pid().unwrap_or(0))).collect();
                Ok(format!("pids {}", pids.join(" ")))
            }
        }
    }

    /// Resumes paused nodes, then stops every running one.
    fn stop_all(&mut self) {
        for process in &mut self.running {
            if process.paused {
                let _ = process.signal(libc::SIGCONT);
                process.paused = false;
            }
        }
        let mut children: Vec<(u32, Child)> =
            self.running.iter_mut().filter_map(|p| p.child.take().map(|c| (p.id, c))).collect();
        stop_children(&mut children);
    }
}

impl Drop for Nodes {
    /// On an error or a panic between spawning and `stop_all`: no node
    /// outlives the cluster, none stays stopped.
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The cluster id and peer secret of the cluster in this data directory:
/// those its `cluster.toml` holds, else fresh random ones. A file written
/// before secrets existed keeps its id (its shards' identity markers name
/// it) and gets a new secret.
fn cluster_identity(config_path: &Path) -> Result<(String, Secret), String> {
    let kept = match std::fs::read_to_string(config_path) {
        Ok(text) => {
            // Only these two fields: the rest of the file is rewritten from
            // this run's flags, whatever it held.
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                format!("{}: {e} (remove it, or use --fresh to start an empty cluster)", config_path.display())
            })?;
            let field = |name: &str| table.get(name).and_then(|value| value.as_str()).map(str::to_owned);
            (field("cluster_id"), field("peer_secret"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => return Err(format!("reading {}: {e}", config_path.display())),
    };
    let cluster_id = match kept.0 {
        Some(id) => id,
        None => format!("local-{}", hex(&random_bytes::<8>()?)),
    };
    let secret = match kept.1 {
        Some(secret) => Secret::new(secret),
        None => Secret::new(hex(&random_bytes::<32>()?)),
    };
    Ok((cluster_id, secret))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("drawing random bytes for the cluster id and secret: {e}"))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Replace `path` with `text`, readable and writable by its owner only (it
/// holds the peer secret): written beside it and renamed over it, so a
/// crash leaves the old file or the new one, never a torn one.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let temporary = path.with_extension("toml.new");
    let written = (|| {
        let mut out =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
        // `mode` applies only to a new file: a leftover one keeps its own.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|e| format!("writing {}: {e}", path.display()))
}

fn forward_output(node: u32, stream: Option<impl Read + Send + 'static>) {
    let Some(stream) = stream else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "n{node} | {line}");
        }
    });
}

fn stop_children(children: &mut [(u32, Child)]) {
    for (_, child) in children.iter() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (id, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    eprintln!("node {id} did not stop within 5 s; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
    }
}

/// Poll `INFO replication` until every shard has a leader that the
/// nodes agree on. Returns the leader of each shard.
/// Why [`wait_for_leaders`] gave up.
#[derive(Debug, PartialEq)]
enum LeaderWait {
    /// The limit passed (or Ctrl-C) before every node named each leader.
    TimedOut,
    /// A node's process exited (say, its port was taken): every node can
    /// no longer agree, so waiting out the limit would only hide it.
    NodeExited(u32),
}

/// Every shard's leader, once every node names the same one; `exited`
/// returns a node whose process has exited.
fn wait_for_leaders(
    clients: &[(String, u16)],
    password: Option<&str>,
    shards: usize,
    limit: Duration,
    stop: &AtomicBool,
    exited: &mut dyn FnMut() -> Option<u32>,
) -> Result<Vec<u32>, LeaderWait> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        if let Some(id) = exited() {
            return Err(LeaderWait::NodeExited(id));
        }
        let infos: Vec<Option<String>> =
            clients.iter().map(|(host, port)| info(host, *port, password, "replication")).collect();
        let leaders: Option<Vec<u32>> = (0..shards)
            .map(|s| {
                let key = format!("shard{s}_leader:");
                let seen: Vec<u32> = infos.iter().flatten().filter_map(|text| field(text, &key)).collect();
                let first = *seen.first()?;
                (first != 0 && seen.len() == clients.len() && seen.iter().all(|&l| l == first)).then_some(first)
            })
            .collect();
        if let Some(leaders) = leaders {
            return Ok(leaders);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(LeaderWait::TimedOut)
}

fn field(text: &str, key: &str) -> Option<u32> {
    text.lines().find_map(|line| line.strip_prefix(key)).and_then(|v| v.trim().parse().ok())
}

/// `INFO section` over a plain socket (a bulk-string reply), after `AUTH`
/// when the cluster has a password.
pub fn info(host: &str, port: u16, password: Option<&str>, section: &str) -> Option<String> {
    let mut stream = TcpStream::connect((host, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut request = String::new();
    if let Some(password) = password {
        request.push_str(&format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n", password.len()));
    }
    request.push_str(&format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len()));
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    if password.is_some() {
        reader.read_line(&mut header).ok()?;
        if header != "+OK\r\n" {
            return None;
        }
        header.clear();
    }
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0u8; len + 2];
    reader.read_exact(&mut body).ok()?;
    body.truncate(len);
    String::from_utf8(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed when it passes.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("paxoskv-cluster-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// A node that exits while the cluster starts ends the wait at once,
    /// named, instead of after the whole limit as "no leader".
    #[test]
    fn a_node_that_exits_during_start_up_ends_the_wait_for_leaders() {
        // Port 1 on loopback: nothing listens, so no node ever answers.
        let clients = vec![("127.0.0.1".to_string(), 1), ("127.0.0.1".to_string(), 1)];
        let stop = AtomicBool::new(false);
        let mut polls = 0;
        let mut exited = || {
            polls += 1;
            (polls == 3).then_some(2)
        };
        let wait = wait_for_leaders(&clients, None, 1, Duration::from_secs(3600), &stop, &mut exited);
        assert_eq!(wait, Err(LeaderWait::NodeExited(2)));
        stop.store(true, Ordering::SeqCst);
        let wait = wait_for_leaders(&clients, None, 1, Duration::from_secs(3600), &stop, &mut || None);
        assert_eq!(wait, Err(LeaderWait::TimedOut), "Ctrl-C ends the wait too");
    }

    /// What `run_cluster` writes into a data directory on its first start.
    fn first_start(dir: &Path) -> (String, Secret) {
        let config_path = dir.join("cluster.toml");
        let (cluster_id, secret) = cluster_identity(&config_path).unwrap();
        let mut file = ClusterFile::local(3, 7000, 1, dir).unwrap();
        file.cluster_id = cluster_id.clone();
        file.peer_secret = Some(secret.clone());
        write_private(&config_path, &file.to_toml()).unwrap();
        (cluster_id, secret)
    }

    #[test]
    fn each_data_directory_gets_its_own_cluster_id_and_secret_and_keeps_them() {
        let (a, b) = (Scratch::new("identity-a"), Scratch::new("identity-b"));
        let (id_a, secret_a) = first_start(&a.0);
        let (id_b, secret_b) = first_start(&b.0);
        assert!(id_a.starts_with("local-") && id_a.len() == "local-".len() + 16, "{id_a}");
        assert_eq!(secret_a.expose().len(), 64, "32 random bytes in hex");
        assert_ne!(id_a, id_b);
        assert_ne!(secret_a, secret_b);
        // A restart in the same directory reads them back.
        assert_eq!(cluster_identity(&a.0.join("cluster.toml")).unwrap(), (id_a, secret_a));
        // Only its owner may read the file that holds the secret.
        let mode = std::fs::metadata(a.0.join("cluster.toml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_directory_from_before_secrets_keeps_its_cluster_id() {
        // Its shards' identity markers name the id, so it must not change.
        let dir = Scratch::new("identity-old");
        let old = ClusterFile::local(3, 7000, 1, &dir.0).unwrap();
        std::fs::write(dir.0.join("cluster.toml"), old.to_toml()).unwrap();
        let (cluster_id, secret) = cluster_identity(&dir.0.join("cluster.toml")).unwrap();
        assert_eq!(cluster_id, "local");
        assert_eq!(secret.expose().len(), 64);
    }
}
