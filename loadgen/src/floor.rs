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
//! `--runtime glommio` runs each replica on a glommio executor instead (as
//! paxoskv's nodes run), which splits the server's part once more: what
//! the runtime costs per message, and what the node's own work adds.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    /// and poll(2)), or `glommio` (a glommio executor each, as paxoskv's
    /// nodes run: io_uring, its reactor and timers; the disk writes, if
    /// any, stay blocking). The client is the same blocking thread in both.
    #[arg(long, value_enum, default_value_t = Runtime::Blocking)]
    pub runtime: Runtime,
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
    pub ops: u64,
    pub sync: bool,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// User + system CPU of the replica threads, per op (warm-up included).
    pub replica_cpu_us_per_op: f64,
}

pub fn run(args: FloorArgs) -> ExitCode {
    match floor(&args) {
        Ok(result) => {
            let mode = if result.sync { "O_DIRECT write + fdatasync per replica" } else { "no disk" };
            println!(
                "loadgen floor ({} replicas, {:?} runtime, {mode}), {} round trips: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us; \
                 replicas' CPU {:.1} us per op",
                result.replicas, result.runtime, result.ops, result.p50_us, result.p90_us, result.p99_us, result.max_us, result.replica_cpu_us_per_op
            );
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&result).expect("serializable");
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("loadgen floor: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A follower's answer: the op's number.
const ACK_BYTES: usize = 8;
/// The disk write each replica makes per op.
const BLOCK: usize = 4096;

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
    let n = args.replicas;
    let _files = args.sync_dir.as_ref().map(|dir| RemoveOnDrop((0..n).map(|i| disk_path(dir, i)).collect()));
    let mut disks: Vec<Option<Disk>> = match &args.sync_dir {
        Some(dir) => (0..n).map(|i| Disk::create(&disk_path(dir, i)).map(Some)).collect::<Result<_, _>>()?,
        None => (0..n).map(|_| None).collect(),
    };

    let listen = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a loopback port: {e}"));
    let leader_listener = listen()?;
    let leader_addr = leader_listener.local_addr().map_err(|e| e.to_string())?;
    let (cpu_tx, cpu_rx) = mpsc::channel::<Result<Duration, String>>();
    let total = args.warmup + args.ops;
    let request_bytes = args.request_bytes;
    let runtime = args.runtime;

    let mut threads = Vec::new();
    let mut follower_addrs = Vec::new();
    for disk in disks.drain(1..) {
        let listener = listen()?;
        follower_addrs.push(listener.local_addr().map_err(|e| e.to_string())?);
        let cpu_tx = cpu_tx.clone();
        threads.push(std::thread::spawn(move || {
            let result = (|| {
                let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                match runtime {
                    Runtime::Blocking => follower(stream, disk, request_bytes, total)?,
                    Runtime::Glommio => {
                        on_glommio("floor-follower", move || glommio_follower(stream, disk, request_bytes, total))?
                    }
                }
                Ok(thread_cpu())
            })();
            let _ = cpu_tx.send(result);
        }));
    }
    let leader_disk = disks.pop().flatten();
    threads.push(std::thread::spawn(move || {
        let result = (|| {
            let followers = follower_addrs.into_iter().map(connect).collect::<Result<Vec<_>, _>>()?;
            let (client, _) = leader_listener.accept().map_err(|e| e.to_string())?;
            client.set_nodelay(true).map_err(|e| e.to_string())?;
            match runtime {
                Runtime::Blocking => leader(client, followers, leader_disk, request_bytes, total)?,
                Runtime::Glommio => on_glommio("floor-leader", move || {
                    glommio_leader(client, followers, leader_disk, request_bytes, total)
                })?,
            }
            Ok(thread_cpu())
        })();
        let _ = cpu_tx.send(result);
    }));

    let client = drive(leader_addr, args, request_bytes, total);
    if let Err(e) = client {
        // A replica's error explains the client's (it only sees a closed
        // socket); a replica still waiting for its peers is abandoned.
        while let Ok(result) = cpu_rx.recv_timeout(Duration::from_secs(1)) {
            result?;
        }
        return Err(e);
    }
    let mut cpu = Duration::ZERO;
    for result in cpu_rx.iter() {
        cpu += result?;
    }
    for thread in threads {
        thread.join().map_err(|_| "a replica thread panicked".to_string())?;
    }
    let mut latencies = client?;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(FloorResult {
        replicas: n,
        runtime: args.runtime,
        ops: args.ops,
        sync: args.sync_dir.is_some(),
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        max_us: at(1.0),
        replica_cpu_us_per_op: cpu.as_nanos() as f64 / 1000.0 / total as f64,
    })
}

/// The client: `total` round trips, one at a time; the latencies (µs) of
/// those after the warm-up.
fn drive(leader: std::net::SocketAddr, args: &FloorArgs, request_bytes: usize, total: u64) -> Result<Vec<f64>, String> {
    let mut stream = connect(leader)?;
    let mut request = vec![0x5a; request_bytes];
    let mut reply = [0u8; ACK_BYTES];
    let mut latencies = Vec::with_capacity(args.ops as usize);
    for op in 0..total {
        request[..ACK_BYTES].copy_from_slice(&op.to_le_bytes());
        let started = Instant::now();
        stream.write_all(&request).map_err(|e| format!("client: sending: {e}"))?;
        stream.read_exact(&mut reply).map_err(|e| format!("client: reading the reply: {e}"))?;
        let took = started.elapsed();
        if u64::from_le_bytes(reply) != op {
            return Err(format!("client: reply for op {} to op {op}", u64::from_le_bytes(reply)));
        }
        if op >= args.warmup {
            latencies.push(took.as_nanos() as f64 / 1000.0);
        }
    }
    Ok(latencies)
}

fn disk_path(dir: &Path, replica: usize) -> PathBuf {
    dir.join(format!("loadgen-floor-{}-{replica}.dat", std::process::id()))
}

/// The replicas' files go when the run ends, however it ends.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn connect(addr: std::net::SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Each request in, made durable if asked, answered with its op number.
fn follower(mut stream: TcpStream, mut disk: Option<Disk>, request_bytes: usize, total: u64) -> Result<(), String> {
    let mut request = vec![0u8; request_bytes];
    for _ in 0..total {
        stream.read_exact(&mut request).map_err(|e| format!("follower: reading: {e}"))?;
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        stream.write_all(&request[..ACK_BYTES]).map_err(|e| format!("follower: answering: {e}"))?;
    }
    Ok(())
}

/// The leader: a request goes to every follower (then to its own disk);
/// the client's answer leaves once a majority has it (the leader and
/// half the followers); later answers are read whenever they arrive
/// (poll(2) over all the sockets).
fn leader(
    mut client: TcpStream,
    mut followers: Vec<TcpStream>,
    mut disk: Option<Disk>,
    request_bytes: usize,
    total: u64,
) -> Result<(), String> {
    let needed = followers.len() / 2;
    let mut request = vec![0u8; request_bytes];
    let mut acks = vec![0u64; followers.len()];
    let mut served = 0u64;
    while served < total || acks.iter().any(|a| *a < total) {
        // A socket with nothing more to come is left out (poll(2) skips a
        // negative descriptor): at its end it would read as ready forever.
        let client_fd = if served < total { client.as_raw_fd() } else { -1 };
        if read_answers(&mut followers, &mut acks, total, Some(client_fd))? {
            client.read_exact(&mut request).map_err(|e| format!("leader: reading the client: {e}"))?;
            for follower in &mut followers {
                follower.write_all(&request).map_err(|e| format!("leader: sending: {e}"))?;
            }
            if let Some(disk) = &mut disk {
                disk.write_and_sync()?;
            }
            // This op is op number `served`: wait for a majority's answers.
            while acks.iter().filter(|a| **a > served).count() < needed {
                read_answers(&mut followers, &mut acks, total, None)?;
            }
            client.write_all(&request[..ACK_BYTES]).map_err(|e| format!("leader: answering: {e}"))?;
            served += 1;
        }
    }
    Ok(())
}

/// Wait until a follower's answer (or the client's request, with
/// `client`) can be read; read the answers. True if the client's request is ready.
fn read_answers(
    followers: &mut [TcpStream],
    acks: &mut [u64],
    total: u64,
    client: Option<i32>,
) -> Result<bool, String> {
    let mut fds: Vec<libc::pollfd> = followers
        .iter()
        .zip(acks.iter())
        .map(|(f, a)| if *a < total { f.as_raw_fd() } else { -1 })
        .chain(client)
        .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
        .collect();
    // SAFETY: poll(2) on descriptors this thread owns, in a local vector.
    if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(format!("leader: poll: {error}"));
    }
    let mut ack = [0u8; ACK_BYTES];
    for (i, follower) in followers.iter_mut().enumerate() {
        if fds[i].revents != 0 {
            follower.read_exact(&mut ack).map_err(|e| format!("leader: reading follower {i}: {e}"))?;
            acks[i] += 1;
        }
    }
    Ok(client.is_some() && fds.last().is_some_and(|fd| fd.revents != 0))
}

/// Run `task` on a glommio executor made on this thread (unbound, like a
/// local paxoskv cluster's), until it ends.
fn on_glommio<F, T>(name: &str, task: F) -> Result<(), String>
where
    F: FnOnce() -> T,
    T: std::future::Future<Output = Result<(), String>>,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?
        .run(task())
}

/// A blocking socket handed to the calling glommio executor.
fn to_glommio(stream: TcpStream) -> Result<glommio::net::TcpStream, String> {
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    // SAFETY: the descriptor comes out of a `TcpStream` that gives it up.
    Ok(unsafe { glommio::net::TcpStream::from_raw_fd(stream.into_raw_fd()) })
}

/// [`follower`] on glommio.
async fn glommio_follower(
    stream: TcpStream,
    mut disk: Option<Disk>,
    request_bytes: usize,
    total: u64,
) -> Result<(), String> {
    let mut stream = to_glommio(stream)?;
    let mut request = vec![0u8; request_bytes];
    for _ in 0..total {
        stream.read_exact(&mut request).await.map_err(|e| format!("follower: reading: {e}"))?;
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        stream.write_all(&request[..ACK_BYTES]).await.map_err(|e| format!("follower: answering: {e}"))?;
    }
    Ok(())
}

/// [`leader`] on glommio: a task per follower reads its answers and
/// passes them on through a channel, as a node's peer readers hand frames
/// to its driver.
async fn glommio_leader(
    client: TcpStream,
    followers: Vec<TcpStream>,
    mut disk: Option<Disk>,
    request_bytes: usize,
    total: u64,
) -> Result<(), String> {
    let needed = followers.len() / 2;
    let mut client = to_glommio(client)?;
    let (answers, answered) = glommio::channels::local_channel::new_unbounded::<usize>();
    // The channel closes when the last reader task lets go of it.
    let answers = std::rc::Rc::new(answers);
    let mut writers = Vec::new();
    for (i, follower) in followers.into_iter().enumerate() {
        let (mut reader, writer) = futures_lite::io::split(to_glommio(follower)?);
        writers.push(writer);
        let answers = answers.clone();
        glommio::spawn_local(async move {
            let mut ack = [0u8; ACK_BYTES];
            for _ in 0..total {
                if reader.read_exact(&mut ack).await.is_err() || answers.send(i).await.is_err() {
                    break; // the leader sees the channel close short of its answers
                }
            }
        })
        .detach();
    }
    drop(answers);
    let mut request = vec![0u8; request_bytes];
    let mut acks = vec![0u64; writers.len()];
    for served in 0..total {
        client.read_exact(&mut request).await.map_err(|e| format!("leader: reading the client: {e}"))?;
        for writer in &mut writers {
            writer.write_all(&request).await.map_err(|e| format!("leader: sending: {e}"))?;
        }
        if let Some(disk) = &mut disk {
            disk.write_and_sync()?;
        }
        while acks.iter().filter(|a| **a > served).count() < needed {
            acks[answered.recv().await.ok_or("leader: a follower's connection closed")?] += 1;
        }
        client.write_all(&request[..ACK_BYTES]).await.map_err(|e| format!("leader: answering: {e}"))?;
    }
    while acks.iter().any(|a| *a < total) {
        acks[answered.recv().await.ok_or("leader: a follower's connection closed")?] += 1;
    }
    Ok(())
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

/// One replica's file: a 4 KiB block overwritten in place, O_DIRECT, each
/// write followed by fdatasync (the raw-disk reference of
/// `benches/record-goals.sh`).
struct Disk {
    file: File,
    path: PathBuf,
    block: AlignedBlock,
}

impl Disk {
    fn create(path: &Path) -> Result<Disk, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| format!("opening {} with O_DIRECT: {e}", path.display()))?;
        let mut disk = Disk { file, path: path.to_path_buf(), block: AlignedBlock::new() };
        disk.write_and_sync()?; // the block exists: later writes overwrite it
        Ok(disk)
    }

    fn write_and_sync(&mut self) -> Result<(), String> {
        let block = self.block.bytes();
        block[0] = block[0].wrapping_add(1);
        self.file.write_all_at(block, 0).map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        self.file.sync_data().map_err(|e| format!("syncing {}: {e}", self.path.display()))
    }
}

/// A zeroed 4 KiB buffer aligned for O_DIRECT.
struct AlignedBlock(*mut u8);

impl AlignedBlock {
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(BLOCK, BLOCK) {
        Ok(layout) => layout,
        Err(_) => panic!("4 KiB aligned to 4 KiB is a valid layout"),
    };

    fn new() -> AlignedBlock {
        // SAFETY: a non-zero-sized layout; the null case is handled.
        let ptr = unsafe { std::alloc::alloc_zeroed(Self::LAYOUT) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(Self::LAYOUT);
        }
        AlignedBlock(ptr)
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `self.0` points to BLOCK bytes this value owns.
        unsafe { std::slice::from_raw_parts_mut(self.0, BLOCK) }
    }
}

impl Drop for AlignedBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0, Self::LAYOUT) }
    }
}

// SAFETY: the block is owned by one `Disk`, moved to one thread.
unsafe impl Send for AlignedBlock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_answers_every_op_in_order() {
        let args = FloorArgs {
            replicas: 3,
            runtime: Runtime::Blocking,
            ops: 200,
            warmup: 10,
            request_bytes: 64,
            sync_dir: None,
            json: None,
        };
        let result = floor(&args).expect("the floor runs");
        assert_eq!(result.ops, 200);
        assert!(result.p50_us <= result.p99_us && result.p99_us <= result.max_us);
    }

    #[test]
    fn a_short_run_on_glommio_answers_every_op_in_order() {
        let args = FloorArgs {
            replicas: 3,
            runtime: Runtime::Glommio,
            ops: 200,
            warmup: 10,
            request_bytes: 64,
            sync_dir: None,
            json: None,
        };
        let result = floor(&args).expect("the floor runs on glommio");
        assert_eq!((result.ops, result.runtime), (200, Runtime::Glommio));
    }

    #[test]
    fn a_durable_run_writes_and_removes_its_files() {
        let dir = std::env::temp_dir().join(format!("loadgen-floor-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = FloorArgs {
            replicas: 3,
            runtime: Runtime::Blocking,
            ops: 20,
            warmup: 2,
            request_bytes: 16,
            sync_dir: Some(dir.clone()),
            json: None,
        };
        let result = floor(&args);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        std::fs::remove_dir_all(&dir).unwrap();
        // tmpfs has no O_DIRECT: a clear error there, never a panic.
        match result {
            Ok(result) => assert!(result.sync),
            Err(e) => assert!(e.contains("O_DIRECT"), "{e}"),
        }
        assert!(left.is_empty(), "the floor's files are removed: {left:?}");
    }

    #[test]
    fn a_request_too_short_for_its_op_number_is_refused() {
        let args = FloorArgs {
            replicas: 3,
            runtime: Runtime::Blocking,
            ops: 1,
            warmup: 0,
            request_bytes: 4,
            sync_dir: None,
            json: None,
        };
        assert!(floor(&args).unwrap_err().contains("--request-bytes"));
    }
}
