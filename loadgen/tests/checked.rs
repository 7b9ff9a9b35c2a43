//! Checked benchmarks end to end: `loadgen compare` starts a real 3-node
//! paxoskv cluster, injects faults during the measured window and checks
//! the run's history for linearizability; the bundle must say what
//! happened. Partitions need root (network namespaces): without it that
//! test says so and passes vacuously.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Base ports of the three tests, which run at once. A local cluster on
/// BASE takes client ports BASE+1.., peer ports BASE+1000+100*node (+shard)
/// and metrics ports BASE+2001..: bases 100 apart collide on peer ports
/// (the first cluster's node 3 and the third's node 1 both want
/// BASE+1300), and the node that loses the race exits, so its cluster
/// never reports a leader on every node. Bases 10 apart share nothing while
/// a cluster has fewer than 10 nodes and 10 shards. All of it stays below
/// the kernel's ephemeral ports (32768 and up): there, any outgoing
/// connection of these very tests may hold a port as its local end (a run
/// at bases 33100.. once lost a node to "metrics port 35122 ... is already
/// in use").
const KILL_PAUSE_PORTS: u16 = 10100;
const PARTITION_PORTS: u16 = 10110;
const STALE_READS_PORTS: u16 = 10120;

fn loadgen() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))
}

/// The server binary of the same build (`cargo test --workspace` builds it).
fn paxoskv() -> PathBuf {
    let path = loadgen().with_file_name("paxoskv");
    assert!(path.exists(), "no {} (run the tests with --workspace)", path.display());
    path
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A scratch directory for one test, removed when it passes.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("loadgen-checked-{name}-{}", std::process::id()));
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

/// What `loadgen compare` left: the run bundle, the comparison README and
/// its standard output.
struct Compared {
    bundle: serde_json::Value,
    readme: String,
    stdout: String,
}

/// Runs `loadgen compare PROFILE` with `extra` flags (and `env`).
fn compare(scratch: &Scratch, profile: &Path, base_port: u16, extra: &[&str], env: &[(&str, &str)]) -> Compared {
    let out = scratch.0.join("out");
    let mut command = Command::new(loadgen());
    command
        .current_dir(workspace())
        .envs(env.iter().copied())
        .arg("compare")
        .arg(profile)
        .args(["--repeats", "1", "--rate", "800", "--warmup-s", "1", "--duration-s", "8"])
        .args(["--base-port", &base_port.to_string()])
        .arg("--paxoskv")
        .arg(paxoskv())
        .arg("--data-dir")
        .arg(scratch.0.join("data"))
        .arg("--out")
        .arg(&out)
        .args(extra);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "loadgen compare failed:\n{stdout}\n{stderr}");
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let bundle = std::fs::read_to_string(runs[0].join("bundle.json")).unwrap();
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    Compared { bundle: serde_json::from_str(&bundle).unwrap(), readme, stdout: stdout.into_owned() }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_checked_run_through_kills_and_pauses_is_linearizable_and_shows_its_faults() {
    let scratch = Scratch::new("kill-pause");
    let profile = workspace().join("tuning/all.toml");
    let nemesis = ["--nemesis", "kill,pause", "--nemesis-interval-s", "1", "--nemesis-duration-s", "1.5"];
    let Compared { bundle, readme, .. } =
        compare(&scratch, &profile, KILL_PAUSE_PORTS, &[&["--check", "linearizable"][..], &nemesis].concat(), &[]);
    let run = &bundle["runs"][0];
    let check = &run["check"];
    assert_eq!(check["verdict"], "linearizable", "{check:#}");
    assert_eq!(check["lost_acknowledged_writes"], 0);
    assert!(check["operations"].as_u64().unwrap() > 4_000, "{check:#}");
    assert_eq!(check["keys"], 1000, "--check's default key space");
    let faults = run["faults"].as_array().unwrap();
    let kinds: Vec<&str> = faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["kill", "pause"], "{faults:#?}");
    assert!(faults.iter().all(|f| f.get("error").is_none()), "{faults:#?}");
    let events: Vec<&str> = run["events"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert!(events.iter().any(|e| e.starts_with("fault: kill node")), "{events:?}");
    assert!(events.iter().any(|e| e.ends_with("restarted") && e.starts_with("fault:")), "{events:?}");
    // The table has the verdict, the README the faults; the run's timeline
    // chart marks them; the trace directory has them in the trace schema.
    assert!(readme.contains("| linearizable | 0 |"), "{readme}");
    assert!(readme.contains("## Faults") && readme.contains("| kill |"), "{readme}");
    let run_dir = scratch.0.join("out/runs/all-r1");
    let timeline = std::fs::read_to_string(run_dir.join("timeline.svg")).unwrap();
    assert!(timeline.contains("\nkill node "), "the timeline marks the faults");
    let trace = std::fs::read_to_string(run_dir.join("trace/nemesis-run0.jsonl")).unwrap();
    assert!(trace.contains(r#""event":"crash""#) && trace.contains(r#""event":"stall_start""#), "{trace}");
}

#[test]
fn partitions_run_in_network_namespaces_that_are_gone_afterwards() {
    if !is_root() {
        eprintln!("skipped: partitions need root (network namespaces)");
        return;
    }
    let scratch = Scratch::new("partition");
    let profile = workspace().join("tuning/all.toml");
    let flags = ["--check", "linearizable", "--nemesis", "partition", "--nemesis-target", "leader"];
    let timing = ["--nemesis-interval-s", "1", "--nemesis-duration-s", "3"];
    let Compared { bundle, .. } = compare(&scratch, &profile, PARTITION_PORTS, &[&flags[..], &timing].concat(), &[]);
    let run = &bundle["runs"][0];
    assert_eq!(run["check"]["verdict"], "linearizable", "{:#}", run["check"]);
    let faults = run["faults"].as_array().unwrap();
    assert!(!faults.is_empty() && faults.iter().all(|f| f["kind"] == "partition" && f.get("error").is_none()));
    // The isolated leader was replaced while cut off.
    let events: Vec<&str> = run["events"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert!(events.iter().any(|e| e.contains("stands for election")), "{events:?}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(!namespaces.contains(&format!("paxoskv-{PARTITION_PORTS}")), "namespaces left behind:\n{namespaces}");
}

/// The checker fails when it should, on real processes: servers with the
/// injected bug stale-lease-reads answer reads from their own state. Few
/// keys, so that reads at followers often follow a write they have not
/// applied yet; no faults needed.
#[test]
fn servers_with_an_injected_stale_read_bug_are_reported_not_linearizable() {
    let scratch = Scratch::new("stale-reads");
    let profile = workspace().join("benches/faults/stale-reads-bug.toml");
    let flags = ["--read-ratio", "0.5", "--keys", "20", "--check", "linearizable"];
    let Compared { bundle, stdout, .. } =
        compare(&scratch, &profile, STALE_READS_PORTS, &flags, &[("PAXOSKV_ALLOW_INJECTED_BUGS", "1")]);
    assert!(stdout.contains("check: not linearizable"), "{stdout}");
    assert!(stdout.contains("<- cannot be placed"), "the offending operations are shown:\n{stdout}");
    let check = &bundle["runs"][0]["check"];
    assert_eq!(check["verdict"], "not linearizable");
    assert!(check["keys_failing"].as_u64().unwrap() > 0 && !check["violations"].as_array().unwrap().is_empty());
    assert_eq!(bundle["labels"]["injected_bug"], "stale-lease-reads");
}
