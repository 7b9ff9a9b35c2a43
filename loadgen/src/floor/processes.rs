//! `--runtime glommio`: each replica a process of its own, as paxoskv's
//! nodes are. glommio issues a process-wide memory barrier
//! (`membarrier(2)`, private expedited) each time an executor goes to
//! sleep, which interrupts every CPU running another thread of the same
//! process: replicas as threads of one process pay for each other's
//! sleeps, which a cluster of separate processes does not. (Measured once
//! under `perf trace` on the 2-core VM: 35 µs a call as threads, 16 µs as
//! processes, 13 µs in a paxoskv node; the untraced CPU per op moved by
//! less than the host's run-to-run spread.)
//!
//! The parent makes every connection (a connected loopback pair per
//! client and per follower) and hands each replica its ends: the child is
//! this same executable, started with [`ENV`] saying its role and which
//! inherited descriptors are its sockets. Its CPU time is read when it is
//! reaped; the leader prints how many writes it replicated.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::disk::{disk_path, Disk};
use super::glommio_replicas::{glommio_follower, glommio_leader, on_glommio};
use super::FloorArgs;

/// Set in a replica process's environment: `follower REQUEST_BYTES FD` or
/// `leader REQUEST_BYTES CLIENT_FDS FOLLOWER_FDS` (comma-separated, `-`
/// for none).
const ENV: &str = "LOADGEN_FLOOR_REPLICA";
/// The replica's disk file, with `--sync-dir`.
const ENV_SYNC_FILE: &str = "LOADGEN_FLOOR_SYNC_FILE";
/// What the leader prints when it is done.
const REPLICATED: &str = "replicated ";

/// The replica processes of a run.
pub(super) struct Running {
    leader: Child,
    followers: Vec<Child>,
}

/// Connect everything, start the replicas; the clients' ends of their
/// connections to the leader.
pub(super) fn start(args: &FloorArgs) -> Result<(Vec<TcpStream>, Running), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a loopback port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let pair = || -> Result<(TcpStream, TcpStream), String> {
        let near = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
        let (far, _) = listener.accept().map_err(|e| format!("accepting on {addr}: {e}"))?;
        for s in [&near, &far] {
            s.set_nodelay(true).map_err(|e| e.to_string())?;
        }
        Ok((near, far))
    };
    let sync_file = |replica: usize| args.sync_dir.as_ref().map(|dir| disk_path(dir, replica));
    let mut followers = Vec::new();
    let mut to_followers = Vec::new();
    for replica in 1..args.replicas {
        let (near, far) = pair()?;
        let spec = format!("follower {} {}", args.request_bytes, far.as_raw_fd());
        followers.push(spawn(&spec, vec![far], sync_file(replica))?);
        to_followers.push(near);
    }
    let mut clients = Vec::new();
    let mut from_clients = Vec::new();
    for _ in 0..args.clients {
        let (near, far) = pair()?;
        clients.push(near);
        from_clients.push(far);
    }
    let fds = |streams: &[TcpStream]| -> String {
        let list: Vec<String> = streams.iter().map(|s| s.as_raw_fd().to_string()).collect();
        if list.is_empty() {
            "-".into()
        } else {
            list.join(",")
        }
    };
    let spec = format!("leader {} {} {}", args.request_bytes, fds(&from_clients), fds(&to_followers));
    from_clients.extend(to_followers);
    let leader = spawn(&spec, from_clients, sync_file(0))?;
    Ok((clients, Running { leader, followers }))
}

/// Start a replica process holding `streams` (and nothing else of ours).
fn spawn(spec: &str, streams: Vec<TcpStream>, sync_file: Option<PathBuf>) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding loadgen's own executable: {e}"))?;
    let mut command = Command::new(exe);
    command.args(CHILD_ARGS).env(ENV, spec).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path) = sync_file {
        command.env(ENV_SYNC_FILE, path);
    }
    let raw: Vec<RawFd> = streams.iter().map(|s| s.as_raw_fd()).collect();
    // SAFETY: between fork and exec the closure only calls fcntl(2), which
    // is async-signal-safe, on descriptors this process owns: the child
    // keeps exactly these across its exec (the rest are close-on-exec).
    unsafe {
        command.pre_exec(move || {
            for fd in &raw {
                if libc::fcntl(*fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn().map_err(|e| format!("starting a replica process: {e}"))
    // `streams` close here: the child holds them now.
}

/// How the child is started: the real binary needs no arguments (its
/// `main` looks at [`ENV`] first); the unit tests' binary runs the one
/// test that does.
#[cfg(not(test))]
const CHILD_ARGS: &[&str] = &[];
#[cfg(test)]
const CHILD_ARGS: &[&str] = &["--exact", "floor::tests::replica_process_entry", "--nocapture", "--test-threads=1"];

impl Running {
    /// Wait for every replica to end (if `client_failed`, at most a second
    /// each, then stop it): their CPU time, and the writes the leader
    /// replicated; or the first replica's error.
    pub(super) fn finish(self, client_failed: bool) -> Result<(Duration, u64), String> {
        let deadline = client_failed.then(|| Instant::now() + Duration::from_secs(1));
        let mut cpu = Duration::ZERO;
        let mut failure = None;
        let mut replicated = 0;
        for (child, leader) in
            std::iter::once((self.leader, true)).chain(self.followers.into_iter().map(|f| (f, false)))
        {
            match reap(child, deadline) {
                Ok((used, out)) => {
                    cpu += used;
                    if leader {
                        // The last such line (under the unit tests, after the harness's own words).
                        let line = out.lines().rev().find_map(|l| l.split_once(REPLICATED)).map(|(_, n)| n);
                        match line.and_then(|n| n.trim().parse().ok()) {
                            Some(n) => replicated = n,
                            None => {
                                failure =
                                    failure.or(Some(format!("the leader did not say what it replicated: {out:?}")))
                            }
                        }
                    }
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        failure.map_or(Ok((cpu, replicated)), Err)
    }
}

/// Wait for `child` (stopping it at `deadline`, if any): its user + system
/// CPU time and what it printed, or its error.
fn reap(mut child: Child, deadline: Option<Instant>) -> Result<(Duration, String), String> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage for wait4(2) to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let flags = if deadline.is_some() { libc::WNOHANG } else { 0 };
        // SAFETY: wait4(2) on our own child, into locals.
        let got = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if got == pid {
            break;
        }
        if got < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("waiting for a replica process: {error}"));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            // SAFETY: reaping our own child, just killed, into locals.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            return Err("a replica process did not end after its client failed (stopped)".into());
        }
        std::thread::sleep(Duration::from_millis(10)); // polling a child that is expected to end
    }
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let err = err.trim();
        return Err(if err.is_empty() {
            format!("a replica process failed (wait status {status})")
        } else {
            err.into()
        });
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Ok((Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime)), out))
}

/// In a replica process (started by [`start`]): run the replica and say
/// how it ended; None in any other process.
pub fn replica_from_env() -> Option<Result<(), String>> {
    let spec = std::env::var(ENV).ok()?;
    Some(run_replica(&spec).map(|replicated| {
        if let Some(n) = replicated {
            println!("{REPLICATED}{n}");
        }
    }))
}

fn run_replica(spec: &str) -> Result<Option<u64>, String> {
    let bad = || format!("{ENV}: not a replica's description: {spec:?}");
    let fields: Vec<&str> = spec.split(' ').collect();
    let request_bytes: usize = fields.get(1).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let streams = |list: &str| -> Result<Vec<TcpStream>, String> {
        if list == "-" {
            return Ok(Vec::new());
        }
        list.split(',')
            .map(|fd| {
                let fd: RawFd = fd.parse().map_err(|_| bad())?;
                // SAFETY: the parent handed this descriptor, a connected
                // TCP socket, to this process alone (see `spawn`).
                Ok(unsafe { TcpStream::from_raw_fd(fd) })
            })
            .collect()
    };
    let disk = match std::env::var_os(ENV_SYNC_FILE) {
        Some(path) => Some(Disk::create(std::path::Path::new(&path))?),
        None => None,
    };
    match (fields.first(), fields.len()) {
        (Some(&"follower"), 3) => {
            let stream = streams(fields[2])?.pop().ok_or_else(bad)?;
            on_glommio("floor-follower", move || glommio_follower(stream, disk, request_bytes))?;
            Ok(None)
        }
        (Some(&"leader"), 4) => {
            let (clients, followers) = (streams(fields[2])?, streams(fields[3])?);
            let replicated =
                on_glommio("floor-leader", move || glommio_leader(clients, followers, disk, request_bytes))?;
            Ok(Some(replicated))
        }
        _ => Err(bad()),
    }
}
