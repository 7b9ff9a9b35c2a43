//! Real Redis clients, unmodified and with their default settings, against
//! a 3-node, 2-shard paxoskv cluster, connected once to a follower and once
//! to the leader: redis-py 8 (sync and asyncio), node-redis 6 (which opens
//! with HELLO 3) and 5, and ioredis. The scripts under `tests/clients/`
//! print PASS or FAIL per check (connect, SET/GET, pipelines with and
//! without MULTI, a WATCH conflict, a lock acquired and expired, SET EX and
//! TTL, INCRBYFLOAT, SCAN over 300 keys, KEYS, FLUSHDB, CLIENT commands);
//! they all pass against redis-server 7.0, so a failure here is paxoskv's.
//!
//! A client that is not installed is SKIPPED with a loud message, and the
//! test passes: `tests/clients/install.sh` installs them all.

#[path = "support/compat/mod.rs"]
mod compat;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use compat::cluster::{print_block, NodeId, TestCluster};

/// The longest one script may run before it is killed and fails (its own
/// checks poll under 20 s deadlines; a client stuck on a refused handshake
/// must not hang the test).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);
const POLL_PAUSE: Duration = Duration::from_millis(100);
const INSTALL: &str = "bash tests/clients/install.sh";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("clients")
}

/// Why `program args` cannot run here, or `None` if it exits 0.
fn missing(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    match Command::new(program).args(args).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => None,
        Ok(_) => Some(format!("`{program} {}` failed", args.join(" "))),
        Err(e) => Some(format!("{program} is not installed ({e})")),
    }
}

fn python_missing() -> Option<String> {
    let probe = "import redis, sys; sys.exit(int(redis.__version__.split('.')[0]) < 8)";
    missing("python3", &["-c", probe], &clients_dir()).map(|why| format!("python3 with redis-py >= 8: {why}"))
}

fn node_package_missing(package: &str) -> Option<String> {
    let dir = clients_dir().join("node");
    let probe = format!("require.resolve('{package}/package.json')");
    missing("node", &["-e", &probe], &dir).map(|why| format!("node with the {package} package: {why}"))
}

/// Run `program script HOST PORT extra...` from `tests/clients/` under a
/// deadline; its output, and whether it exited 0.
fn run_script(program: &str, script: &str, extra: &[&str], port: u16, log: &Path) -> (String, bool) {
    let out = std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    let mut child = Command::new(program)
        .args([script, "127.0.0.1", &port.to_string()])
        .args(extra)
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cloning the log handle"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(POLL_PAUSE);
    };
    let mut output = std::fs::read_to_string(log).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("FAIL: killed after {SCRIPT_DEADLINE:?}\n"));
    }
    (output, status.is_some_and(|s| s.success()))
}

/// Start a cluster and run the script against a follower and the leader of
/// shard 0; fail with every failing run's output.
fn run_against_cluster(name: &str, base_port: u16, program: &str, script: &str, extra: &[&str]) {
    let mut cluster = TestCluster::start(name, base_port, 3, 2, None);
    let leader = cluster.leader(0);
    let follower: NodeId = cluster.node_ids().into_iter().find(|&n| n != leader).expect("3 nodes");
    let mut failures = Vec::new();
    for (node, role) in [(follower, "a follower"), (leader, "the leader")] {
        let log = cluster.dir().join(format!("{name}-node-{node}.out"));
        let (output, passed) = run_script(program, script, extra, cluster.client_port(node), &log);
        let heading = format!("--- {program} {script} {} against node {node} ({role} of shard 0) ---", extra.join(" "));
        print_block(&format!("{heading}\n{output}"));
        if !passed {
            failures.push(heading);
        }
    }
    assert!(failures.is_empty(), "client checks failed (their output is above):\n{}", failures.join("\n"));
}

fn skip(why: &str) {
    print_block(&format!(
        "\n==================== SKIPPED: {why} ====================\n    install with: {INSTALL}\n\n"
    ));
}

#[test]
fn redis_py_sync_and_asyncio_with_default_settings() {
    if let Some(why) = python_missing() {
        return skip(&why);
    }
    run_against_cluster("clients_redis_py", 29000, "python3", "python/check_redis_py.py", &[]);
}

#[test]
fn node_redis_6_and_5_with_default_settings() {
    for package in ["redis", "redis5"] {
        if let Some(why) = node_package_missing(package) {
            return skip(&why);
        }
    }
    for package in ["redis", "redis5"] {
        run_against_cluster(&format!("clients_node_{package}"), 29020, "node", "node/check_node_redis.mjs", &[package]);
    }
}

#[test]
fn ioredis_with_default_settings() {
    if let Some(why) = node_package_missing("ioredis") {
        return skip(&why);
    }
    run_against_cluster("clients_ioredis", 29040, "node", "node/check_ioredis.mjs", &[]);
}
