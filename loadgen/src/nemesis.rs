//! `--nemesis kill,stop,pause,partition`: a fault schedule on real server
//! processes during the measured window.
//!
//! The schedule is fixed by the flags and the seed: the first fault starts
//! `--nemesis-interval-s` into the window, each lasts
//! `--nemesis-duration-s`, the next starts an interval after the last one
//! healed, and the kinds take turns in the order given. A fault is planned
//! only if it heals at least `RECOVERY_MIN` before the window ends, so the
//! recovery is measured. Each fault hits one node: drawn with the seed, or
//! the shard-0 leader of the moment with `--nemesis-target leader`.
//!
//! - `kill`: SIGKILL, then at the fault's end a restart with the same
//!   command line and data directory;
//! - `stop`: a planned restart: SIGTERM (a paxoskv node hands the
//!   leadership of the shards it leads over, then exits), then the same
//!   restart;
//! - `pause`: SIGSTOP, then SIGCONT;
//! - `partition`: the node cut off from every other node (both directions),
//!   then healed; clients still reach it (that is where stale reads show).
//!
//! Faults are carried out by a [`Faults`]: the control channel of a
//! `paxoskv cluster --control-stdin` that loadgen started (partitions need
//! its `--netns`), or processes named by pid with a restart command.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::recorder::Window;
use crate::rng::SplitMix64;

/// A planned fault heals at least this long before the window ends.
const RECOVERY_MIN_NS: u64 = 2_000_000_000;
/// A `stop` waits this long for the process to exit, then kills it.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// A control command unanswered this long failed.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Kill,
    Stop,
    Pause,
    Partition,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
        }
    }
}

pub fn parse_kinds(text: &str) -> Result<Vec<FaultKind>, String> {
    text.split(',')
        .map(|word| match word.trim() {
            "kill" => Ok(FaultKind::Kill),
            "stop" => Ok(FaultKind::Stop),
            "pause" => Ok(FaultKind::Pause),
            "partition" => Ok(FaultKind::Partition),
            other => Err(format!("--nemesis {other:?}: expected kill, stop, pause or partition (comma-separated)")),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct NemesisSpec {
    pub kinds: Vec<FaultKind>,
    pub interval_ns: u64,
    pub duration_ns: u64,
    pub seed: u64,
    /// Hit the shard-0 leader of the moment instead of a drawn node.
    pub target_leader: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub kind: FaultKind,
    /// Nanoseconds since the run's epoch.
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The faults of one run, in order.
pub fn plan(spec: &NemesisSpec, window: Window) -> Vec<Planned> {
    let mut faults = Vec::new();
    let mut start = window.start_ns + spec.interval_ns;
    for kind in spec.kinds.iter().cycle() {
        let end = start + spec.duration_ns;
        if spec.kinds.is_empty() || end + RECOVERY_MIN_NS > window.end_ns {
            break;
        }
        faults.push(Planned { kind: *kind, start_ns: start, end_ns: end });
        start = end + spec.interval_ns;
    }
    faults
}

/// One thing done to a node; the words are `paxoskv cluster
/// --control-stdin`'s commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Kill(u32),
    Stop(u32),
    Restart(u32),
    Pause(u32),
    Resume(u32),
    Isolate(u32),
    Heal,
}

impl Action {
    pub fn command(self) -> String {
        match self {
            Action::Kill(n) => format!("kill {n}"),
            Action::Stop(n) => format!("stop {n}"),
            Action::Restart(n) => format!("restart {n}"),
            Action::Pause(n) => format!("pause {n}"),
            Action::Resume(n) => format!("resume {n}"),
            Action::Isolate(n) => format!("isolate {n}"),
            Action::Heal => "heal".into(),
        }
    }
}

/// Carries out actions on the nodes of a cluster.
pub trait Faults: Send {
    /// Node ids, in order.
    fn nodes(&self) -> Vec<u32>;
    fn supports_partitions(&self) -> bool;
    fn act(&mut self, action: Action) -> Result<(), String>;
}

/// One fault as it happened, in the bundle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: String,
    pub node: u32,
    /// Seconds since the measured window started.
    pub start_s: f64,
    pub end_s: f64,
    /// Unix microseconds (the trace schema's wall clock).
    pub start_unix_us: u64,
    pub end_unix_us: u64,
    /// Seconds from the fault's start to the end of the first second whose
    /// p99 is back within 2x of the p99 before the fault, with no errors
    /// (filled in by the report; none if it never was).
    #[serde(default)]
    pub recovered_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A schedule and the hands that carry it out, for one or more runs.
pub struct Nemesis {
    pub spec: NemesisSpec,
    faults: Mutex<Box<dyn Faults>>,
}

impl std::fmt::Debug for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nemesis").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl Nemesis {
    pub fn new(spec: NemesisSpec, faults: Box<dyn Faults>) -> Result<Arc<Nemesis>, String> {
        if spec.kinds.contains(&FaultKind::Partition) && !faults.supports_partitions() {
            return Err(
                "--nemesis partition needs a cluster loadgen starts itself (in network namespaces, as root)".into()
            );
        }
        Ok(Arc::new(Nemesis { spec, faults: Mutex::new(faults) }))
    }

    /// Carries out the schedule of a run that started at `epoch` (Unix µs
    /// `epoch_unix_us`); returns what was done. `addresses` find the leader.
    pub fn run(
        &self,
        epoch: Instant,
        epoch_unix_us: u64,
        window: Window,
        addresses: &[SocketAddr],
    ) -> Vec<FaultRecord> {
        let mut faults = self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let nodes = faults.nodes();
        let mut rng = SplitMix64::new(self.spec.seed);
        let now_ns = || epoch.elapsed().as_nanos() as u64;
        let to_s = |ns: u64| (ns as f64 - window.start_ns as f64) / 1e9;
        let mut records = Vec::new();
        for planned in plan(&self.spec, window) {
            sleep_until(epoch, planned.start_ns);
            let drawn = nodes[rng.below(nodes.len() as u64) as usize];
            let node = if self.spec.target_leader { leader(addresses).unwrap_or(drawn) } else { drawn };
            let (start, end) = match planned.kind {
                FaultKind::Kill => (Action::Kill(node), Action::Restart(node)),
                FaultKind::Stop => (Action::Stop(node), Action::Restart(node)),
                FaultKind::Pause => (Action::Pause(node), Action::Resume(node)),
                FaultKind::Partition => (Action::Isolate(node), Action::Heal),
            };
            let start_ns = now_ns();
            let mut record = FaultRecord {
                kind: planned.kind.name().into(),
                node,
                start_s: to_s(start_ns),
                start_unix_us: epoch_unix_us + start_ns / 1000,
                ..FaultRecord::default()
            };
            let started = faults.act(start);
            sleep_until(epoch, planned.end_ns);
            // The end action runs even if the start failed half way (a
            // partition with some routes in place is healed all the same).
            let ended = faults.act(end);
            let end_ns = now_ns();
            record.end_s = to_s(end_ns);
            record.end_unix_us = epoch_unix_us + end_ns / 1000;
            let errors: Vec<String> = [started, ended].into_iter().filter_map(Result::err).collect();
            record.error = (!errors.is_empty()).then(|| errors.join("; "));
            records.push(record);
        }
        records
    }
}

fn sleep_until(epoch: Instant, t_ns: u64) {
    let at = epoch + Duration::from_nanos(t_ns);
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// The shard-0 leader per any node's `INFO replication`.
fn leader(addresses: &[SocketAddr]) -> Option<u32> {
    addresses.iter().find_map(|address| {
        let text = crate::anatomy::info_text(*address, "replication")?;
        let id: u32 = text.lines().find_map(|l| l.strip_prefix("shard0_leader:"))?.trim().parse().ok()?;
        (id != 0).then_some(id)
    })
}

/// The timeline notes of faults: one at each start and each end.
pub fn notes(records: &[FaultRecord], window: Window) -> Vec<(u64, String)> {
    let at = |s: f64| (window.start_ns as f64 + s * 1e9).max(0.0) as u64;
    let mut notes = Vec::new();
    for r in records {
        let (start, end) = match r.kind.as_str() {
            "kill" => (format!("fault: kill node {}", r.node), format!("fault: node {} restarted", r.node)),
            "stop" => (format!("fault: stop node {}", r.node), format!("fault: node {} restarted", r.node)),
            "pause" => (format!("fault: pause node {}", r.node), format!("fault: node {} resumed", r.node)),
            _ => (format!("fault: node {} cut off", r.node), "fault: partition healed".to_string()),
        };
        let failed = r.error.as_ref().map_or(String::new(), |e| format!(" (failed: {e})"));
        notes.push((at(r.start_s), format!("{start}{failed}")));
        notes.push((at(r.end_s), end));
    }
    notes
}

/// The faults as a `paxoskv-trace` file (wall clock, one line per event:
/// `crash`/`restart`, `stall_start`/`stall_end`, `partition`/`heal`), for
/// `paxoskv viz` to draw with the nodes' own trace files.
pub fn trace_lines(records: &[FaultRecord], nodes: &[u32], command: &str) -> String {
    let header = serde_json::json!({
        "schema": "paxoskv-trace", "version": 1, "source": "node", "clock": "wall",
        "nodes": nodes, "shard": 0, "command": command,
    });
    let mut out = format!("{header}\n");
    for r in records {
        let others: Vec<u32> = nodes.iter().copied().filter(|&n| n != r.node).collect();
        let (start, end) = match r.kind.as_str() {
            "kill" | "stop" => (
                serde_json::json!({"t_us": r.start_unix_us, "event": "crash", "node": r.node}),
                serde_json::json!({"t_us": r.end_unix_us, "event": "restart", "node": r.node}),
            ),
            "pause" => (
                serde_json::json!({"t_us": r.start_unix_us, "event": "stall_start", "node": r.node}),
                serde_json::json!({"t_us": r.end_unix_us, "event": "stall_end", "node": r.node}),
            ),
            _ => (
                serde_json::json!({"t_us": r.start_unix_us, "event": "partition", "side_a": [r.node], "side_b": others}),
                serde_json::json!({"t_us": r.end_unix_us, "event": "heal"}),
            ),
        };
        out.push_str(&format!("{start}\n{end}\n"));
    }
    out
}

/// The control channel of a `paxoskv cluster --control-stdin` child.
pub struct ClusterControl {
    pub nodes: Vec<u32>,
    pub partitions: bool,
    pub stdin: std::process::ChildStdin,
    /// The cluster's `control:` reply lines.
    pub replies: mpsc::Receiver<String>,
}

impl Faults for ClusterControl {
    fn nodes(&self) -> Vec<u32> {
        self.nodes.clone()
    }

    fn supports_partitions(&self) -> bool {
        self.partitions
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        use std::io::Write;
        while self.replies.try_recv().is_ok() {} // stale replies of a timed-out command
        writeln!(self.stdin, "{}", action.command()).map_err(|e| format!("{}: {e}", action.command()))?;
        match self.replies.recv_timeout(CONTROL_TIMEOUT) {
            Ok(reply) if reply.starts_with("ok") => Ok(()),
            Ok(reply) => Err(format!("{}: {reply}", action.command())),
            Err(_) => Err(format!("{}: the cluster did not answer", action.command())),
        }
    }
}

/// Processes named on the command line (`--nemesis-pids`), restarted with
/// `--nemesis-restart` (`{n}` is replaced by the node's 1-based position).
pub struct Processes {
    pids: Vec<u32>,
    restart: Option<String>,
    /// Restarted processes: ours to reap.
    children: Vec<std::process::Child>,
}

impl Processes {
    pub fn new(pids: Vec<u32>, restart: Option<String>) -> Processes {
        install_resume_on_signal();
        Processes { pids, restart, children: Vec::new() }
    }

    fn pid(&self, node: u32) -> Result<u32, String> {
        self.pids.get(node as usize - 1).copied().ok_or(format!("no node {node}"))
    }

    fn signal(&self, node: u32, signal: libc::c_int) -> Result<(), String> {
        let pid = self.pid(node)?;
        // SAFETY: kill(2) on a pid the user named.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
            Ok(())
        } else {
            Err(format!("signalling pid {pid}: {}", std::io::Error::last_os_error()))
        }
    }
}

impl Faults for Processes {
    fn nodes(&self) -> Vec<u32> {
        (1..=self.pids.len() as u32).collect()
    }

    fn supports_partitions(&self) -> bool {
        false
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Kill(n) => {
                if self.restart.is_none() {
                    return Err("kill needs --nemesis-restart".into());
                }
                self.signal(n, libc::SIGKILL)
            }
            Action::Stop(n) => {
                if self.restart.is_none() {
                    return Err("stop needs --nemesis-restart".into());
                }
                self.signal(n, libc::SIGTERM)?;
                // The restart reuses its ports and data: wait for it to be
                // gone (SIGKILL after STOP_WAIT).
                let pid = self.pid(n)? as libc::pid_t;
                let deadline = Instant::now() + STOP_WAIT;
                loop {
                    // One we restarted is ours to reap (a zombie still has its pid).
                    let reaped = self
                        .children
                        .iter_mut()
                        .any(|c| c.id() as libc::pid_t == pid && matches!(c.try_wait(), Ok(Some(_))));
                    // SAFETY: kill(2) with signal 0 only checks that the pid exists.
                    if reaped || unsafe { libc::kill(pid, 0) } != 0 {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return self.signal(n, libc::SIGKILL);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Action::Restart(n) => {
                let command =
                    self.restart.as_ref().ok_or("kill needs --nemesis-restart")?.replace("{n}", &n.to_string());
                let child = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec {command}"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| format!("restarting node {n} with `{command}`: {e}"))?;
                self.pids[n as usize - 1] = child.id();
                self.children.push(child);
                Ok(())
            }
            Action::Pause(n) => {
                let pid = self.pid(n)?;
                PAUSED[(n as usize - 1) % PAUSED.len()].store(pid as i32, Ordering::SeqCst);
                self.signal(n, libc::SIGSTOP)
            }
            Action::Resume(n) => {
                PAUSED[(n as usize - 1) % PAUSED.len()].store(0, Ordering::SeqCst);
                self.signal(n, libc::SIGCONT)
            }
            Action::Isolate(_) | Action::Heal => Err("partitions need a cluster loadgen starts itself".into()),
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        resume_paused();
    }
}

/// Pids stopped by a `pause` and not yet resumed, for the signal handler.
static PAUSED: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];

fn resume_paused() {
    for slot in &PAUSED {
        let pid = slot.swap(0, Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    resume_paused();
    // SAFETY: restoring the default action and re-raising are
    // async-signal-safe; the process then dies of the signal as it would have.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Ctrl-C or SIGTERM while a process we paused is stopped resumes it first.
fn install_resume_on_signal() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe { libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn faults_take_turns_and_each_heals_in_time_to_see_the_recovery() {
        let spec = NemesisSpec {
            kinds: parse_kinds("kill,pause,partition").unwrap(),
            interval_ns: 5 * S,
            duration_ns: 3 * S,
            seed: 1,
            target_leader: false,
        };
        let window = Window { start_ns: 2 * S, end_ns: 32 * S };
        let planned = plan(&spec, window);
        let got: Vec<(FaultKind, u64, u64)> = planned.iter().map(|p| (p.kind, p.start_ns / S, p.end_ns / S)).collect();
        assert_eq!(
            got,
            [(FaultKind::Kill, 7, 10), (FaultKind::Pause, 15, 18), (FaultKind::Partition, 23, 26)],
            "a fourth (31..34) would heal after the window"
        );
        assert!(plan(&spec, Window { start_ns: 0, end_ns: 9 * S }).is_empty());
        assert!(parse_kinds("kill,reboot").unwrap_err().contains("reboot"));
        assert_eq!(parse_kinds("stop").unwrap(), [FaultKind::Stop]);
        assert_eq!(Action::Stop(2).command(), "stop 2");
    }

    #[test]
    fn faults_become_timeline_notes_and_trace_events() {
        let record = |kind: &str, start_s: f64| FaultRecord {
            kind: kind.into(),
            node: 2,
            start_s,
            end_s: start_s + 3.0,
            start_unix_us: 1_000_000 + (start_s * 1e6) as u64,
            end_unix_us: 4_000_000 + (start_s * 1e6) as u64,
            ..FaultRecord::default()
        };
        let records = [record("kill", 5.0), record("pause", 13.0), record("partition", 21.0)];
        let window = Window { start_ns: 2 * S, end_ns: 32 * S };
        let notes = notes(&records, window);
        assert_eq!(notes[0], (7 * S, "fault: kill node 2".to_string()));
        assert_eq!(notes[5], (26 * S, "fault: partition healed".to_string()));
        let trace = trace_lines(&records, &[1, 2, 3], "loadgen");
        let events: Vec<serde_json::Value> = trace.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events[0]["schema"], "paxoskv-trace");
        let names: Vec<&str> = events[1..].iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names, ["crash", "restart", "stall_start", "stall_end", "partition", "heal"]);
        assert_eq!(events[5]["side_b"], serde_json::json!([1, 3]));
    }
}
