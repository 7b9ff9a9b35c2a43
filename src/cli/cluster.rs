//! `paxoskv cluster`: a local cluster of server processes on loopback, from
//! defaults, with no file to write. It writes the cluster file it uses into
//! the data directory, starts one `paxoskv server` per node, prefixes their
//! logs, prints where to connect and who leads each shard, and stops them
//! all on Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use paxoskv::server::config::{ClusterFile, TuningArgs};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    paxoskv cluster                       # 3 nodes, clients on 127.0.0.1:7001..7003\n  \
    paxoskv cluster --shards 2 --durability none --window-slots 1\n\n\
    Node i listens for clients on BASE+i, for peers on BASE+1000+100*i (+shard), and serves \
    Prometheus metrics on http://127.0.0.1:BASE+2000+i/metrics. Data persists in --data-dir \
    across runs (use --fresh to start empty). Any RESP client works: redis-cli -p 7001.")]
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
    args.tuning.apply(&mut file.tuning);
    file.validate()?;
    let config_path = data_dir.join("cluster.toml");
    std::fs::write(&config_path, file.to_toml()).map_err(|e| format!("writing {}: {e}", config_path.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).map_err(|e| format!("handling Ctrl-C: {e}"))?;

    let exe = std::env::current_exe().map_err(|e| format!("finding the paxoskv binary: {e}"))?;
    let mut children = Vec::new();
    for node in &file.nodes {
        let mut command = Command::new(&exe);
        command.arg("server").arg("--config").arg(&config_path).arg("--node-id").arg(node.id.to_string());
        if args.pin {
            command.arg("--pin");
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("starting node {}: {e}", node.id))?;
        forward_output(node.id, child.stdout.take());
        forward_output(node.id, child.stderr.take());
        children.push((node.id, child));
    }
    println!(
        "paxoskv cluster: {} nodes, {} shards each, data in {}",
        file.nodes.len(),
        file.shards,
        data_dir.display()
    );
    for node in &file.nodes {
        println!(
            "  node {}: clients 127.0.0.1:{}  metrics http://127.0.0.1:{}/metrics",
            node.id,
            node.client_port,
            node.metrics_port.unwrap_or(0)
        );
    }
    let ports: Vec<u16> = file.nodes.iter().map(|n| n.client_port).collect();
    match wait_for_leaders(&ports, file.shards, Duration::from_secs(30), &stop) {
        Some(leaders) => {
            for (shard, leader) in leaders.iter().enumerate() {
                println!("  shard {shard}: leader node {leader}");
            }
            println!("ready: try `redis-cli -p {}`; Ctrl-C stops the cluster", ports[0]);
        }
        None if !stop.load(Ordering::SeqCst) => {
            println!("warning: not every shard elected a leader within 30 s; the nodes keep trying")
        }
        None => {}
    }
    let deadline = args.run_seconds.map(|s| Instant::now() + Duration::from_secs(s));
    // A node that dies (a crash, or kill -9 to watch a failover) is
    // reported; the others keep serving while a majority lives.
    let mut exited = vec![false; children.len()];
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        for (index, (id, child)) in children.iter_mut().enumerate() {
            if exited[index] {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                exited[index] = true;
                eprintln!(
                    "node {id} exited ({status}); the others keep serving while a majority lives. Restart it with: \
                     {} server --config {} --node-id {id}",
                    exe.display(),
                    config_path.display()
                );
            }
        }
        if exited.iter().all(|&e| e) {
            eprintln!("every node has exited");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let running: Vec<(u32, Child)> =
        children.into_iter().zip(&exited).filter(|(_, &e)| !e).map(|(child, _)| child).collect();
    let mut running = running;
    println!("stopping {} nodes", running.len());
    stop_children(&mut running);
    Ok(if exited.iter().any(|&e| e) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
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
fn wait_for_leaders(ports: &[u16], shards: usize, limit: Duration, stop: &AtomicBool) -> Option<Vec<u32>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        let infos: Vec<Option<String>> = ports.iter().map(|&p| info(p, "replication")).collect();
        let leaders: Option<Vec<u32>> = (0..shards)
            .map(|s| {
                let key = format!("shard{s}_leader:");
                let seen: Vec<u32> = infos.iter().flatten().filter_map(|text| field(text, &key)).collect();
                let first = *seen.first()?;
                (first != 0 && seen.len() == ports.len() && seen.iter().all(|&l| l == first)).then_some(first)
            })
            .collect();
        if leaders.is_some() {
            return leaders;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn field(text: &str, key: &str) -> Option<u32> {
    text.lines().find_map(|line| line.strip_prefix(key)).and_then(|v| v.trim().parse().ok())
}

/// `INFO section` over a plain socket (a bulk-string reply).
pub fn info(port: u16, section: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let request = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0u8; len + 2];
    reader.read_exact(&mut body).ok()?;
    body.truncate(len);
    String::from_utf8(body).ok()
}
