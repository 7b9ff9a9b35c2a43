//! `loadgen floor`: what one replicated write costs this machine when no
//! consensus code runs at all. Four threads play a 3-replica commit's
//! message pattern over loopback TCP with blocking syscalls: a client sends
//! a request to a *leader*, which sends it to two *followers*; each
//! follower answers; the leader answers the client once it has one
//! follower's answer (a majority with itself), and reads the other answer
//! whenever it comes. With `--sync-dir`, every replica also makes the op
//! durable before it counts: one O_DIRECT 4 KiB overwrite + fdatasync per
//! op per replica (the leader's beside the followers', as a real leader's
//! WAL write runs beside its Accepts).
//!
//! The latency is a floor for a replicated system's single-client write
//! on this host, and the replicas' CPU per op a floor for its cost: the
//! wake-ups, loopback sends and receives (and disk writes) any 3-replica
//! design with a leader pays, and nothing else. Set beside a server's
//! figures (`benches/record-floor.sh`), it splits the gap to the hardware
//! into what the machine charges and what the server adds. Threads wake
//! and switch like processes do, so four threads stand for four processes.
//! `--runtime glommio` runs each replica on a glommio executor in a process
//! of its own instead (as paxoskv's nodes run), which splits the server's
//! part once more: what the runtime costs per message, and what the node's
//! own work adds. Every mode but `--group-commit` and `--serve` runs on
//! either.
//!
//! A sync per batch on the replica's own thread stops everything else that
//! replica does, so at a high rate the blocking replicas fall behind.
//! `--group-commit` moves each replica's disk to a thread of its own that
//! syncs whatever batches arrived while its last sync ran, as a WAL's group
//! commit does (a batch counts at a replica once a sync that covers it is
//! done). What a durable write then costs depends on how many writes each
//! sync covers, latency traded for CPU: a curve over `--rate`, not one
//! floor.
//!
//! `--read-ratio` makes part of the ops reads, which the leader answers at
//! once with no follower and no disk (a read under a leader's lease), so
//! that an open-loop run of the goals' mix (half reads) has a floor of the
//! same shape: its tail is what the machine gives that mix, with every
//! client at the leader.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod disk;
mod glommio_replicas;
mod processes;
mod serve;

use disk::{disk_path, Disk, RemoveOnDrop, Syncer};
pub use processes::replica_from_env;

#[derive(clap::Args)]
pub struct FloorArgs {
    /// Replicas, the leader included (odd, 1 to 7). With 1 the leader
    /// answers at once: the single-hop floor a plain Redis is set beside.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Measured round trips (after --warmup more).
    #[arg(long, default_value_t = 20_000)]
    pub ops: u64,
    /// Round trips before measuring.
    #[arg(long, default_value_t = 2_000)]
    pub warmup: u64,
    /// Bytes of each request (the value a SET would carry, plus its framing).
    #[arg(long, default_value_t = 128)]
    pub request_bytes: usize,
    /// Make every op durable at each replica: an O_DIRECT 4 KiB overwrite +
    /// fdatasync of a file per replica in DIR (created, and removed after).
    /// Without it, nothing touches the disk (a `durability = none` floor).
    #[arg(long, value_name = "DIR")]
    pub sync_dir: Option<PathBuf>,
    /// How the replicas run: `blocking` (a thread each, blocking syscalls
    /// and poll(2)), or `glommio` (a glommio executor each, in a process of
    /// its own, as paxoskv's nodes run: io_uring, its reactor and timers;
    /// the disk writes, if any, stay blocking). The clients are the same
    /// blocking threads in both.
    #[arg(long, value_enum, default_value_t = Runtime::Blocking)]
    pub runtime: Runtime,
    /// Clients, each with one request outstanding on its own connection.
    /// With more than one the leader batches: the requests it read in one
    /// pass (of its poll(2) loop, or of its glommio executor) go to every
    /// follower as one message, with one disk write per replica under
    /// --sync-dir, as a leader that batches its accepts does.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// With --sync-dir (blocking runtime): each replica's disk on a thread
    /// of its own, one sync for every batch that arrived while the previous
    /// sync ran (a WAL's group commit), so that the replicas keep up at
    /// rates where a sync per batch on the replica's thread falls behind.
    #[arg(long)]
    pub group_commit: bool,
    /// Offered rate, ops/s over all clients: each client sends on a fixed
    /// schedule, and a latency counts from the request's scheduled time (a
    /// request held up by a late reply does not hide the delay). 0: each
    /// client sends as soon as its last reply came.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Fraction of the ops that are reads: the leader answers a read at
    /// once, with no follower and no disk, as a leader answers a read under
    /// its lease; the rest are replicated writes. The open-loop goals' mix
    /// is 0.5. 0: every op is a write.
    #[arg(long, default_value_t = 0.0)]
    pub read_ratio: f64,
    /// Serve RESP clients on ADDR instead of driving built-in clients:
    /// each pass the leader (blocking runtime) reads what every ready
    /// connection sent (up to 64 KiB each) and replicates the whole
    /// commands in it as one batch, so that `redis-benchmark -c 50 -P 16
    /// -t set` drives the floor as it drives paxoskv and Redis (the
    /// throughput is the client's figure). SET is answered +OK, PING
    /// +PONG, anything else an error; nothing is stored. --clients, --ops,
    /// --warmup and --rate do not apply.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
    /// With --serve: how long to serve at most (SIGTERM or SIGINT ends it
    /// sooner); then the commands in flight are answered and the floor
    /// prints what it served and exits.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub serve_seconds: f64,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Blocking,
    Glommio,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct FloorResult {
    pub replicas: usize,
    pub runtime: Runtime,
    pub clients: usize,
    /// The offered rate (0: closed loop) and the rate achieved over the run.
    pub rate: f64,
    pub achieved_ops_per_s: f64,
    /// The fraction of reads asked for (`--read-ratio`), and how many ops
    /// (warm-up included) the leader replicated: the writes.
    pub read_ratio: f64,
    pub replicated_ops: u64,
    pub ops: u64,
    pub sync: bool,
    pub group_commit: bool,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// User + system CPU of the replica threads (their disk threads
    /// included), per op (warm-up included).
    pub replica_cpu_us_per_op: f64,
}

pub fn run(args: FloorArgs) -> ExitCode {
    if args.serve.is_some() {
        let result = serve::catch_stop_signals().and_then(|()| serve::serve_floor(&args));
        return report(result, args.json.as_deref(), |r| {
            format!(
                "loadgen floor ({} replicas, serving RESP on {}, {}): {} commands on {} connections, {:.0} per \
                 second over the {:.2} s from the first command to the last reply; replicas' CPU {:.1} us per command",
                r.replicas,
                r.serve,
                mode(r.sync, r.group_commit),
                r.commands,
                r.connections,
                r.commands_per_busy_s,
                r.busy_s,
                r.replica_cpu_us_per_op
            )
        });
    }
    report(floor(&args), args.json.as_deref(), |r| {
        format!(
            "loadgen floor ({} replicas, {:?} runtime, {}{}), {} round trips: p50 {:.1} us, p90 {:.1} us, p99 {:.1} \
             us, max {:.1} us; replicas' CPU {:.1} us per op",
            r.replicas,
            r.runtime,
            mode(r.sync, r.group_commit),
            if r.read_ratio > 0.0 {
                format!(", {:.0}% reads at the leader", r.read_ratio * 100.0)
            } else {
                String::new()
            },
            r.ops,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.max_us,
            r.replica_cpu_us_per_op
        )
    })
}

fn mode(sync: bool, group_commit: bool) -> &'static str {
    match (sync, group_commit) {
        (false, _) => "no disk",
        (true, false) => "O_DIRECT write + fdatasync per replica",
        (true, true) => "O_DIRECT write + fdatasync per replica, group commit",
    }
}

/// Print a run's summary line (and write it as JSON, if asked), or its error.
fn report<T: serde::Serialize>(
    result: Result<T, String>,
    json: Option<&Path>,
    line: impl Fn(&T) -> String,
) -> ExitCode {
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            eprintln!("loadgen floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", line(&result));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&result).expect("serializable");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("loadgen floor: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// A follower's answer: the op's number.
const ACK_BYTES: usize = 8;
pub fn floor(args: &FloorArgs) -> Result<FloorResult, String> {
    if args.ops == 0 {
        return Err("--ops must be at least 1".into());
    }
    if args.request_bytes < ACK_BYTES {
        return Err(format!("--request-bytes must be at least {ACK_BYTES} (the op number)"));
    }
    if args.replicas.is_multiple_of(2) || !(1..=7).contains(&args.replicas) {
        return Err(format!("--replicas must be odd, 1 to 7 (not {})", args.replicas));
    }
    if !(1..=1024).contains(&args.clients) {
        return Err(format!("--clients must be 1 to 1024 (not {})", args.clients));
    }
    if args.group_commit && (args.sync_dir.is_none() || args.runtime != Runtime::Blocking) {
        return Err("--group-commit needs --sync-dir and --runtime blocking".into());
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        return Err(format!("--rate must be 0 (closed loop) or a positive number of ops/s (not {})", args.rate));
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err(format!("--read-ratio must be from 0 to 1 (not {})", args.read_ratio));
    }
    if args.read_ratio > 0.0 && args.request_bytes <= ACK_BYTES {
        return Err(format!("--read-ratio needs --request-bytes above {ACK_BYTES} (a request says it is a read)"));
    }
    let n = args.replicas;
    let _files = args.sync_dir.as_ref().map(|dir| RemoveOnDrop((0..n).map(|i| disk_path(dir, i)).collect()));
    let total = args.warmup + args.ops;
    let (streams, replicas) = match args.runtime {
        Runtime::Blocking => start_threads(args)?,
        Runtime::Glommio => processes::start(args).map(|(streams, running)| (streams, Replicas::Processes(running)))?,
    };
    let started = Instant::now();
    let client = drive_all(streams, args);
    let elapsed = started.elapsed();
    if let Err(e) = client {
        // A replica's error explains the client's (it only sees a closed
        // socket); a replica still waiting for its peers is abandoned.
        replicas.finish(true)?;
        return Err(e);
    }
    let (cpu, replicated) = replicas.finish(false)?;
    let mut latencies = client?;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(FloorResult {
        replicas: n,
        runtime: args.runtime,
        clients: args.clients,
        rate: args.rate,
        achieved_ops_per_s: total as f64 / elapsed.as_secs_f64(),
        read_ratio: args.read_ratio,
        replicated_ops: replicated,
        ops: args.ops,
        sync: args.sync_dir.is_some(),
        group_commit: args.group_commit,
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        max_us: at(1.0),
        replica_cpu_us_per_op: cpu.as_nanos() as f64 / 1000.0 / total as f64,
    })
}

/// The replicas of a run, until they end.
enum Replicas {
    /// Blocking replicas, a thread each; each sends its CPU time (or its
    /// error) on `cpu`, and the leader counts the writes it replicated.
    Threads {
        threads: Vec<std::thread::JoinHandle<()>>,
        cpu: mpsc::Receiver<Result<Duration, String>>,
        replicated: Arc<AtomicU64>,
    },
    /// Glommio replicas, a process each (`processes`).
    Processes(processes::Running),
}

impl Replicas {
    /// Wait for every replica to end: their CPU time and the writes the
    /// leader replicated, or the first replica's error. After a client
    /// failed, a replica still waiting for its peers is abandoned.
    fn finish(self, client_failed: bool) -> Result<(Duration, u64), String> {
        match self {
            Replicas::Threads { threads, cpu, replicated } => {
                if client_failed {
                    while let Ok(result) = cpu.recv_timeout(Duration::from_secs(1)) {
                        result?;
                    }
                    return Ok((Duration::ZERO, 0));
                }
                let mut total = Duration::ZERO;
                for result in cpu.iter() {
                    total += result?;
                }
                for thread in threads {
                    thread.join().map_err(|_| "a replica thread panicked".to_string())?;
                }
                Ok((total, replicated.load(Relaxed)))
            }
            Replicas::Processes(running) => running.finish(client_failed),
        }
    }
}

/// One blocking follower per disk in `disks`, a thread each, listening on
/// a loopback port of its own; their addresses, and the threads, each of
/// which sends its CPU time (or its error) on `cpu_tx`.
fn start_followers(
    disks: impl Iterator<Item = Option<Disk>>,
    args: &FloorArgs,
    cpu_tx: &mpsc::Sender<Result<Duration, String>>,
) -> Result<(Vec<std::net::SocketAddr>, Vec<std::thread::JoinHandle<()>>), String> {
    let (request_bytes, group_commit) = (args.request_bytes, args.group_commit);
    let mut threads = Vec::new();
    let mut addrs = Vec::new();
    for disk in disks {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a loopback port: {e}"))?;
        addrs.push(listener.local_addr().map_err(|e| e.to_string())?);
        let cpu_tx = cpu_tx.clone();
        threads.push(std::thread::spawn(move || {
            let result = (|| {
                let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let helpers = follower(stream, disk, request_bytes, group_commit)?;
                Ok(thread_cpu() + helpers)
            })();
            let _ = cpu_tx.send(result);
        }));
    }
    Ok((addrs, threads))
}

/// The blocking replicas, a thread each (the leader's on a loopback port,
/// each follower on one of its own); the clients' connections to the leader.
fn start_threads(args: &FloorArgs) -> Result<(Vec<TcpStream>, Replicas), String> {
    let n = args.replicas;
    let mut disks: Vec<Option<Disk>> = match &args.sync_dir {
        Some(dir) => (0..n).map(|i| Disk::create(&disk_path(dir, i)).map(Some)).collect::<Result<_, _>>()?,
        None => (0..n).map(|_| None).collect(),
    };
    let listen = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a loopback port: {e}"));
    let leader_listener = listen()?;
    let leader_addr = leader_listener.local_addr().map_err(|e| e.to_string())?;
    let (cpu_tx, cpu_rx) = mpsc::channel::<Result<Duration, String>>();
    let setup = LeaderSetup {
        request_bytes: args.request_bytes,
        total: args.warmup + args.ops,
        group_commit: args.group_commit,
        replicated: Arc::new(AtomicU64::new(0)),
    };
    let replicated = setup.replicated.clone();
    let client_count = args.clients;
    let (follower_addrs, mut threads) = start_followers(disks.drain(1..), args, &cpu_tx)?;
    let leader_disk = disks.pop().flatten();
    threads.push(std::thread::spawn(move || {
        let result = (|| {
            let followers = follower_addrs.into_iter().map(connect).collect::<Result<Vec<_>, _>>()?;
            let mut clients = Vec::new();
            for _ in 0..client_count {
                let (client, _) = leader_listener.accept().map_err(|e| e.to_string())?;
                client.set_nodelay(true).map_err(|e| e.to_string())?;
                clients.push(client);
            }
            let helpers = leader(clients, followers, leader_disk, setup)?;
            Ok(thread_cpu() + helpers)
        })();
        let _ = cpu_tx.send(result);
    }));
    // The leader accepts them in its thread (beyond the listen backlog a
    // connect waits for that).
    let streams = (0..client_count).map(|_| connect(leader_addr)).collect::<Result<Vec<_>, _>>()?;
    Ok((streams, Replicas::Threads { threads, cpu: cpu_rx, replicated }))
}

/// Every client on its own thread; the latencies (µs) of the measured
/// ops of all of them. Client `c` of `C` makes its share of the warm-up
/// and of the measured ops; with a rate, its requests are due every `C /
/// rate` seconds, offset by `c / rate`.
fn drive_all(streams: Vec<TcpStream>, args: &FloorArgs) -> Result<Vec<f64>, String> {
    let clients = args.clients as u64;
    let share = |total: u64, c: u64| total / clients + u64::from(c < total % clients);
    let start = Instant::now() + Duration::from_millis(10); // all clients connected by then
    let request_bytes = args.request_bytes;
    let threads: Vec<_> = (0..clients)
        .zip(streams)
        .map(|(c, stream)| {
            let (warmup, ops) = (share(args.warmup, c), share(args.ops, c));
            let schedule = (args.rate > 0.0).then(|| {
                (
                    start + Duration::from_secs_f64(c as f64 / args.rate),
                    Duration::from_secs_f64(clients as f64 / args.rate),
                )
            });
            let reads = Reads::new(args.read_ratio, c);
            std::thread::spawn(move || drive(stream, warmup, ops, request_bytes, schedule, reads))
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.ops as usize);
    let mut failure = None;
    for thread in threads {
        match thread.join().map_err(|_| "a client thread panicked".to_string()).and_then(|r| r) {
            Ok(some) => latencies.extend(some),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    failure.map_or(Ok(latencies), Err)
}

/// One client: `warmup + ops` round trips, one at a time, each sent at its
/// due time if there is a `schedule` (first due time, interval), else at
/// once; the latencies (µs) of the `ops` after the warm-up, from the due
/// time (else from the send).
fn drive(
    mut stream: TcpStream,
    warmup: u64,
    ops: u64,
    request_bytes: usize,
    schedule: Option<(Instant, Duration)>,
    reads: Reads,
) -> Result<Vec<f64>, String> {
    let mut request = vec![0x5a; request_bytes];
    let mut reply = [0u8; ACK_BYTES];
    let mut latencies = Vec::with_capacity(ops as usize);
    for op in 0..warmup + ops {
        request[..ACK_BYTES].copy_from_slice(&op.to_le_bytes());
        if reads.ratio > 0.0 {
            request[ACK_BYTES] = if reads.is_read(op) { READ } else { WRITE };
        }
        let due = match schedule {
            Some((first, interval)) => {
                let due = first + interval * op as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                due
            }
            None => Instant::now(),
        };
        stream.write_all(&request).map_err(|e| format!("client: sending: {e}"))?;
        stream.read_exact(&mut reply).map_err(|e| format!("client: reading the reply: {e}"))?;
        let took = due.elapsed();
        if u64::from_le_bytes(reply) != op {
            return Err(format!("client: reply for op {} to op {op}", u64::from_le_bytes(reply)));
        }
        if op >= warmup {
            latencies.push(took.as_nanos() as f64 / 1000.0);
        }
    }
    Ok(latencies)
}

/// Which of a client's ops are reads: `ratio` of them, spread evenly
/// (op `n` is a read when `n * ratio + phase` crosses an integer), each
/// client at its own phase so that the clients' reads do not line up.
#[derive(Clone, Copy)]
struct Reads {
    ratio: f64,
    phase: f64,
}

impl Reads {
    fn new(ratio: f64, client: u64) -> Reads {
        Reads { ratio, phase: (client as f64 * 0.618_033_988_75).fract() }
    }

    fn is_read(&self, op: u64) -> bool {
        let at = |n: u64| (n as f64 * self.ratio + self.phase).floor();
        at(op + 1) > at(op)
    }
}

/// The byte after the op number: a read the leader answers at once, or a
/// write it replicates (`--read-ratio`).
const READ: u8 = b'r';
const WRITE: u8 = b'w';

fn connect(addr: std::net::SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// A follower: each batch (`[count u32][count requests]`) in, made
/// durable if asked, answered with the number of the last batch it has
/// (every one before it too); it ends when the leader hangs up. With
/// `group_commit` its disk thread answers, once per sync. Returns the CPU
/// time of that thread.
fn follower(
    mut stream: TcpStream,
    mut disk: Option<Disk>,
    request_bytes: usize,
    group_commit: bool,
) -> Result<Duration, String> {
    // With group commit the disk moves to its thread; else it stays here.
    let mut syncer = None;
    if let Some(disk) = disk.take_if(|_| group_commit) {
        let mut answers = stream.try_clone().map_err(|e| format!("follower: {e}"))?;
        let closer = stream.try_clone().map_err(|e| format!("follower: {e}"))?;
        // A failed disk closes the connection: the leader sees it go
        // (as when a follower without a disk thread fails), and so does
        // this thread's read, which then reports the disk's error.
        let on_failure = move || drop(closer.shutdown(std::net::Shutdown::Both));
        let on_durable =
            move |batch: u64| answers.write_all(&batch.to_le_bytes()).map_err(|e| format!("follower: answering: {e}"));
        syncer = Some(Syncer::start(disk, on_durable, on_failure));
    }
    let mut header = [0u8; 4];
    let mut body = Vec::new();
    for batch in 0u64.. {
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(syncer.and_then(|s| s.finish().err()).unwrap_or(format!("follower: reading: {e}"))),
        }
        body.resize(u32::from_le_bytes(header) as usize * request_bytes, 0);
        stream.read_exact(&mut body).map_err(|e| format!("follower: reading a batch: {e}"))?;
        if let Some(handed) = syncer.take() {
            syncer = Some(handed.submit(batch)?);
            continue;
        }
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        stream.write_all(&batch.to_le_bytes()).map_err(|e| format!("follower: answering: {e}"))?;
    }
    syncer.map_or(Ok(Duration::ZERO), Syncer::finish)
}

/// The leader's side of replication, shared by both leaders: each batch
/// goes to every follower and is made durable here (at once, or by the
/// disk thread with group commit); it is answered once a majority has it,
/// the leader and half the followers. Nothing waits for a batch's answers
/// before the next batch goes out. `M`: what a batch's clients need to
/// be answered.
struct Replication<M> {
    followers: Vec<TcpStream>,
    /// Without group commit: the leader's disk, written in `send`.
    disk: Option<Disk>,
    syncer: Option<Syncer>,
    /// With group commit the disk thread says which batches are durable
    /// here through a socket pair, which the pass polls beside the others.
    durable_here: Option<std::os::unix::net::UnixStream>,
    /// Batches below this are durable here.
    own: u64,
    /// Per follower: batches below this are durable there.
    acks: Vec<u64>,
    sent: u64,
    unanswered: std::collections::VecDeque<(u64, M)>,
}

impl<M> Replication<M> {
    fn new(followers: Vec<TcpStream>, mut disk: Option<Disk>, group_commit: bool) -> Result<Self, String> {
        let mut durable_here = None;
        let mut syncer = None;
        if let Some(disk) = disk.take_if(|_| group_commit) {
            let (mut tell, told) =
                std::os::unix::net::UnixStream::pair().map_err(|e| format!("leader: a socket pair: {e}"))?;
            durable_here = Some(told);
            // A failed disk thread drops `tell`: the pass hears it close.
            let on_durable = move |batch: u64| {
                tell.write_all(&batch.to_le_bytes()).map_err(|e| format!("leader: its disk thread: {e}"))
            };
            syncer = Some(Syncer::start(disk, on_durable, || {}));
        }
        let acks = vec![0; followers.len()];
        Ok(Replication { followers, disk, syncer, durable_here, own: 0, acks, sent: 0, unanswered: Default::default() })
    }

    /// The descriptors a pass polls for this, in the order `hear` takes
    /// them: every follower, then the disk thread's socket, if any.
    fn poll_fds(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        self.followers.iter().map(|f| f.as_raw_fd()).chain(self.durable_here.iter().map(|d| d.as_raw_fd()))
    }

    /// Read what the ready ones among `fds` (polled as `poll_fds` listed
    /// them) say: a follower's or the disk thread's latest durable batch.
    fn hear(&mut self, fds: &[libc::pollfd]) -> Result<(), String> {
        let (follower_fds, durable_fd) = fds.split_at(self.followers.len());
        let mut ack = [0u8; ACK_BYTES];
        for (i, follower) in self.followers.iter_mut().enumerate() {
            if follower_fds[i].revents != 0 {
                follower.read_exact(&mut ack).map_err(|e| format!("leader: reading follower {i}: {e}"))?;
                self.acks[i] = self.acks[i].max(u64::from_le_bytes(ack) + 1);
            }
        }
        if let (Some(told), Some(fd)) = (&mut self.durable_here, durable_fd.first()) {
            if fd.revents != 0 {
                if let Err(e) = told.read_exact(&mut ack) {
                    let cause = self.syncer.take().and_then(|s| s.finish().err());
                    return Err(cause.unwrap_or(format!("leader: hearing its disk thread: {e}")));
                }
                self.own = self.own.max(u64::from_le_bytes(ack) + 1);
            }
        }
        Ok(())
    }

    /// Send `batch` (`[count u32][count requests]`) to every follower and
    /// make it durable here; `members` wait for a majority.
    fn send(&mut self, batch: &[u8], members: M) -> Result<(), String> {
        for follower in &mut self.followers {
            follower.write_all(batch).map_err(|e| format!("leader: sending: {e}"))?;
        }
        match self.syncer.take() {
            Some(handed) => self.syncer = Some(handed.submit(self.sent)?),
            None => {
                if let Some(disk) = &mut self.disk {
                    disk.write_and_sync()?;
                }
                self.own = self.sent + 1;
            }
        }
        self.unanswered.push_back((self.sent, members));
        self.sent += 1;
        Ok(())
    }

    /// The members of the oldest batch not yet answered, once a majority
    /// has it.
    fn next_answered(&mut self) -> Option<M> {
        let needed = self.followers.len() / 2;
        let (number, _) = self.unanswered.front()?;
        let majority = self.own > *number && self.acks.iter().filter(|a| **a > *number).count() >= needed;
        majority.then(|| self.unanswered.pop_front().expect("a front").1)
    }

    /// Has a follower not yet answered for every batch sent?
    fn followers_behind(&self) -> bool {
        self.acks.iter().any(|a| *a < self.sent)
    }

    fn is_idle(&self) -> bool {
        self.unanswered.is_empty()
    }

    /// Hang up on the followers (they see the end of their input and
    /// stop), sync what is left here; the disk thread's CPU time. Each
    /// connection is half-closed, then read to its end: closed with a
    /// follower's answers still unread, it would be reset, and the
    /// follower would read an error instead of the end of its input (a
    /// `--serve` run ending on SIGTERM failed so).
    fn finish(self) -> Result<Duration, String> {
        for mut follower in self.followers {
            let _ = follower.shutdown(std::net::Shutdown::Write);
            let _ = std::io::copy(&mut follower, &mut std::io::sink());
        }
        self.syncer.map_or(Ok(Duration::ZERO), Syncer::finish)
    }
}

/// poll(2) on `fds` for up to `timeout_ms` (-1: no limit); false if a
/// signal cut it short (poll again).
fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<bool, String> {
    // SAFETY: poll(2) on a caller's vector of descriptors it owns.
    if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) } < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(format!("leader: poll: {error}"));
    }
    Ok(true)
}

/// The leader: each pass (poll(2) over every socket) reads every client
/// request that is ready and replicates them as one batch (`Replication`);
/// with one client every batch is one request. Returns the CPU time of its
/// disk thread.
/// What the blocking leader runs with: the request size, the ops to serve
/// (warm-up included), whether its disk syncs on a thread of its own, and
/// where it counts the ops it replicated.
struct LeaderSetup {
    request_bytes: usize,
    total: u64,
    group_commit: bool,
    replicated: Arc<AtomicU64>,
}

fn leader(
    mut clients: Vec<TcpStream>,
    followers: Vec<TcpStream>,
    disk: Option<Disk>,
    setup: LeaderSetup,
) -> Result<Duration, String> {
    let LeaderSetup { request_bytes, total, group_commit, replicated } = setup;
    // Each member: its client, and the op number it is answered with.
    let mut replication = Replication::<Vec<(usize, [u8; ACK_BYTES])>>::new(followers, disk, group_commit)?;
    let mut request = vec![0u8; request_bytes];
    let mut batch = Vec::new();
    let mut done = vec![false; clients.len()];
    let mut served = 0u64;
    while served < total || replication.followers_behind() {
        let mut fds: Vec<libc::pollfd> = clients
            .iter()
            .zip(&done)
            .map(|(c, done)| if *done { -1 } else { c.as_raw_fd() })
            .chain(replication.poll_fds())
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        if !poll(&mut fds, -1)? {
            continue;
        }
        let (client_fds, rest) = fds.split_at(clients.len());
        replication.hear(rest)?;
        batch.clear();
        batch.extend_from_slice(&[0; 4]);
        let mut members = Vec::new();
        for (c, client) in clients.iter_mut().enumerate() {
            if client_fds[c].revents == 0 {
                continue;
            }
            match client.read_exact(&mut request) {
                Ok(()) if request.get(ACK_BYTES) == Some(&READ) => {
                    // A read under the lease: answered at once, by the leader alone.
                    client
                        .write_all(&request[..ACK_BYTES])
                        .map_err(|e| format!("leader: answering client {c}: {e}"))?;
                    served += 1;
                }
                Ok(()) => {
                    replicated.fetch_add(1, Relaxed);
                    batch.extend_from_slice(&request);
                    members.push((c, request[..ACK_BYTES].try_into().expect("8 bytes")));
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => done[c] = true,
                Err(e) => return Err(format!("leader: reading client {c}: {e}")),
            }
        }
        if !members.is_empty() {
            batch[..4].copy_from_slice(&(members.len() as u32).to_le_bytes());
            replication.send(&batch, members)?;
        }
        while let Some(members) = replication.next_answered() {
            for (c, op) in members {
                clients[c].write_all(&op).map_err(|e| format!("leader: answering client {c}: {e}"))?;
                served += 1;
            }
        }
    }
    replication.finish()
}

/// User + system CPU of the calling thread so far.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage(2) filling a zeroed struct on the stack.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[cfg(test)]
mod tests;
