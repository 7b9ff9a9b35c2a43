//! A local paxoskv cluster for one measurement: `paxoskv cluster` started as
//! a child process with a profile's flags, fresh data, and stopped after.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::nemesis::ClusterControl;

/// How long a cluster may take to elect every shard's leader.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct LocalCluster {
    child: Child,
    /// Client addresses, node 1 first.
    pub client_addrs: Vec<String>,
    /// Leader node id per shard, as printed at start.
    pub leaders: Vec<u32>,
    pub log_path: PathBuf,
    /// With `Faults::control`: the cluster's fault control channel.
    control: Option<ClusterControl>,
}

/// What a cluster must offer `--nemesis`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// `--control-stdin`: kill, restart, pause, resume.
    pub control: bool,
    /// `--netns` (root): partitions too.
    pub netns: bool,
}

/// Find the `paxoskv` binary: `--paxoskv PATH`, else next to this binary,
/// building it with cargo when run through `cargo run`.
pub fn find_paxoskv(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe().map_err(|e| format!("locating loadgen: {e}"))?;
    let beside = me.with_file_name("paxoskv");
    if let Ok(cargo) = std::env::var("CARGO") {
        // Under `cargo run`: make sure the server is built and current.
        eprintln!("building paxoskv (cargo build --release --bin paxoskv) ...");
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "paxoskv", "--bin", "paxoskv"])
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err("building paxoskv failed".into());
        }
    }
    if beside.exists() {
        Ok(beside)
    } else {
        Err(format!(
            "no paxoskv binary at {}: build it with `cargo build --release` or pass --paxoskv PATH",
            beside.display()
        ))
    }
}

impl LocalCluster {
    /// Start `paxoskv cluster --fresh` with `flags` (each `--name value`),
    /// and wait until it reports every shard's leader.
    /// The flag pair that makes a cluster of `paxoskv` write its protocol
    /// trace into `dir` (for `RunSpec::trace_dir`), if that binary can (an
    /// older one, say a "before" build, cannot: then none, and the run
    /// polls `INFO` as before).
    pub fn trace_flag(paxoskv: &Path, dir: &Path) -> Option<(String, String)> {
        let help = Command::new(paxoskv).args(["cluster", "--help"]).output().ok()?;
        String::from_utf8_lossy(&help.stdout)
            .contains("--trace-dir")
            .then(|| ("trace_dir".to_string(), dir.display().to_string()))
    }

    pub fn start(
        paxoskv: &Path,
        data_dir: &Path,
        base_port: u16,
        nodes: usize,
        flags: &[(String, String)],
        faults: Faults,
    ) -> Result<LocalCluster, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
        let log_path = data_dir.with_extension("log");
        let mut command = Command::new(paxoskv);
        command
            .arg("cluster")
            .arg("--fresh")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--base-port")
            .arg(base_port.to_string())
            .arg("--nodes")
            .arg(nodes.to_string());
        for (name, value) in flags {
            command.arg(format!("--{}", name.replace('_', "-"))).arg(value);
        }
        if faults.control {
            command.arg("--control-stdin").stdin(Stdio::piped());
        }
        if faults.netns {
            command.arg("--netns");
        }
        // The cluster's own errors (say, --netns without root) go to its log.
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("starting {}: {e}", paxoskv.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // Read the cluster's output on a thread: lines go to the log file,
        // and the start-up lines come back here.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let log_file = log_path.clone();
        let errors_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = errors_tx.send(format!("stderr: {line}"));
            }
        });
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(&log_file).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(log, "{line}");
                }
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut client_addrs, mut leaders, mut errors) = (Vec::new(), Vec::new(), Vec::<String>::new());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let why = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
                    return Err(format!("the cluster did not become ready{why}; see {}", log_path.display()));
                }
            };
            if let Some(error) = line.strip_prefix("stderr: error: ") {
                errors.push(error.to_string());
            } else if let Some((node, error)) = line.trim_start_matches("stderr: ").split_once(" | error: ") {
                // A node's own error, relayed with its name ("n1 | error: ...").
                errors.push(format!("{node}: {error}"));
            }
            if let Some(rest) = line.trim_start().strip_prefix("node ") {
                if let Some(addr) = rest.split_whitespace().nth(2) {
                    client_addrs.push(addr.to_string());
                }
            } else if let Some(rest) = line.trim_start().strip_prefix("shard ") {
                if let Some(leader) = rest.rsplit(' ').next().and_then(|l| l.parse().ok()) {
                    leaders.push(leader);
                }
            } else if line.starts_with("ready:") {
                break;
            } else if let Some(why) = line.strip_prefix("warning: not every shard elected a leader") {
                let _ = child.kill();
                let _ = child.wait();
                let why = why.trim_start_matches([':', ' ']);
                let errors = if errors.is_empty() { String::new() } else { format!("; {}", errors.join("; ")) };
                return Err(format!("the cluster did not elect leaders ({why}{errors}); see {}", log_path.display()));
            }
        }
        // Keep draining output so the cluster never blocks on a full pipe;
        // control replies go to the nemesis.
        let (replies_tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(line) = lines_rx.recv() {
                if let Some(reply) = line.strip_prefix("control: ") {
                    let _ = replies_tx.send(reply.to_string());
                }
            }
        });
        let control = child.stdin.take().map(|stdin| ClusterControl {
            nodes: (1..=client_addrs.len() as u32).collect(),
            partitions: faults.netns,
            stdin,
            replies,
        });
        Ok(LocalCluster { child, client_addrs, leaders, log_path, control })
    }

    /// The fault control channel (once), if the cluster was started with one.
    pub fn take_control(&mut self) -> Option<ClusterControl> {
        self.control.take()
    }

    /// `resp://` target over every node (connections spread round-robin).
    pub fn target(&self) -> String {
        format!("resp://{}", self.client_addrs.join(","))
    }

    /// Stop the cluster (SIGINT, as Ctrl-C would) and wait for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop_inner();
        }
    }
}
