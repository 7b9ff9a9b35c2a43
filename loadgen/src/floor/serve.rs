//! `loadgen floor --serve ADDR`: the floor's blocking leader as a RESP
//! server, so that a client no one here wrote drives the floor exactly as
//! it drives paxoskv and Redis (`redis-benchmark -c 50 -P 16 -t set`:
//! many connections, each with a pipeline of requests in flight).
//!
//! Each pass of the leader (poll(2) over the listener, every connection,
//! the followers and its own disk thread) reads what every ready
//! connection sent (up to 64 KiB each), takes every whole command out of
//! it, and sends all of them to every follower as one batch (`--request-bytes` per command on
//! the wire, as the floor's other modes do); with `--sync-dir` each replica
//! makes the batch durable (`--group-commit`: on its disk thread, one sync
//! for every batch that arrived while its last sync ran). A batch's
//! commands are answered, in order on each connection, once a majority has
//! it. SET is answered `+OK` and PING `+PONG`; anything else gets an error,
//! after the same round (a reply never overtakes an earlier one).
//!
//! Nothing is stored: this is the least work any 3-replica server with a
//! leader does for a pipelined durable write (the messages, the disk
//! writes, reading and answering the client), and its throughput under
//! `redis-benchmark -P 16` is the floor that issue 11's pipelined SET goal
//! is set beside.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use std::sync::mpsc;

use super::disk::{disk_path, Disk, RemoveOnDrop};
use super::{connect, poll, start_followers, thread_cpu, FloorArgs, Replication, Runtime, ACK_BYTES};

/// Connections served over a run (a connection's slot is not reused).
const CONNECTIONS_MAX: usize = 4096;
/// Bytes read from a connection in one pass.
const READ_BYTES: usize = 64 << 10;
/// The most a command's arguments may add up to (a SET with a large
/// value): a connection never holds more than one command's worth plus
/// one read.
const COMMAND_BYTES_MAX: usize = 64 << 20;
/// The most arguments a command may have.
const ARGUMENTS_MAX: usize = 1 << 20;
/// The longest inline command line (Redis's limit too).
const INLINE_BYTES_MAX: usize = 64 << 10;
/// How long a reply may wait for a client that does not read before
/// that connection is dropped (the leader's one thread serves them all).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest poll(2) while serving: a stop signal that lands just
/// before a poll is seen this soon.
const POLL_MS_MAX: u128 = 100;

/// Set by SIGTERM or SIGINT: stop serving, answer what is in flight,
/// print the summary.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// From now on SIGTERM and SIGINT end the serving early (`STOP`), as the
/// deadline does (for the command line: a test must not take them over).
pub(super) fn catch_stop_signals() -> Result<(), String> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an
        // atomic (async-signal-safe); no SA_RESTART, so a poll(2) in
        // progress returns EINTR and the loop sees `STOP` at once.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(format!("serve: catching signal {signal}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// What a command gets back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Set,
    Ping,
    Other,
    /// Not a RESP command: answered with an error, and the connection is
    /// read no further.
    Malformed,
}

impl Kind {
    fn of(name: &[u8]) -> Kind {
        if name.eq_ignore_ascii_case(b"SET") {
            Kind::Set
        } else if name.eq_ignore_ascii_case(b"PING") {
            Kind::Ping
        } else {
            Kind::Other
        }
    }

    fn reply(self) -> &'static [u8] {
        match self {
            Kind::Set => b"+OK\r\n",
            Kind::Ping => b"+PONG\r\n",
            Kind::Other => b"-ERR loadgen floor answers SET and PING only\r\n",
            Kind::Malformed => b"-ERR loadgen floor: not a RESP command; nothing more is read from this connection\r\n",
        }
    }
}

/// The number on the line that starts at `at` (`123\r\n`), and where the
/// next line starts; None if the line is not all there yet.
fn number_line(input: &[u8], at: usize) -> Result<Option<(usize, usize)>, String> {
    let rest = &input[at.min(input.len())..];
    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
        return if rest.len() > 20 { Err("a length line without its end".into()) } else { Ok(None) };
    };
    let digits = std::str::from_utf8(&rest[..end]).map_err(|_| "a length that is not a number".to_string())?;
    let number = digits.parse::<usize>().map_err(|_| format!("a length that is not a number: {digits:?}"))?;
    Ok(Some((number, at + end + 2)))
}

/// The first whole command in `input`: its length (empty inline lines
/// before it included: they are skipped, as Redis skips them) and what it
/// asks. None if it is not all there yet; an error for anything that is
/// not a RESP command (an array of bulk strings, or an inline command line).
fn next_command(input: &[u8]) -> Result<Option<(usize, Kind)>, String> {
    let mut skipped = 0;
    loop {
        let rest = &input[skipped..];
        let Some(&first) = rest.first() else { return Ok(None) };
        if first == b'*' {
            return Ok(multibulk(rest)?.map(|(len, kind)| (skipped + len, kind)));
        }
        // An inline command: one line, the command's name first.
        let Some(end) = rest.iter().take(INLINE_BYTES_MAX + 1).position(|b| *b == b'\n') else {
            return if rest.len() > INLINE_BYTES_MAX { Err("an inline command too long".into()) } else { Ok(None) };
        };
        match rest[..end].split(|b| b.is_ascii_whitespace()).find(|word| !word.is_empty()) {
            Some(name) => return Ok(Some((skipped + end + 1, Kind::of(name)))),
            None => skipped += end + 1,
        }
    }
}

/// The array of bulk strings at the start of `input` (see `next_command`).
fn multibulk(input: &[u8]) -> Result<Option<(usize, Kind)>, String> {
    let Some((count, mut at)) = number_line(input, 1)? else { return Ok(None) };
    if !(1..=ARGUMENTS_MAX).contains(&count) {
        return Err(format!("a command of {count} arguments"));
    }
    let mut kind = Kind::Other;
    for i in 0..count {
        match input.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err("an argument that is not a bulk string".into()),
        }
        let Some((len, start)) = number_line(input, at + 1)? else { return Ok(None) };
        if len > COMMAND_BYTES_MAX.saturating_sub(start) {
            return Err(format!("a command of more than {COMMAND_BYTES_MAX} bytes"));
        }
        let end = start + len + 2;
        if input.len() < end {
            return Ok(None);
        }
        if &input[start + len..end] != b"\r\n" {
            return Err("a bulk string without its line end".into());
        }
        if i == 0 {
            kind = Kind::of(&input[start..start + len]);
        }
        at = end;
    }
    Ok(Some((at, kind)))
}

/// A client connection: what it sent that is not yet a whole command,
/// and the replies this pass owes it.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// It sent something that is not a command: nothing more is read.
    broken: bool,
}

/// What a serving run did.
pub(super) struct Served {
    /// Commands answered.
    pub commands: u64,
    /// Connections accepted.
    pub connections: u64,
    /// From the first command read to the last reply written.
    pub busy: Duration,
    /// CPU time of the leader's disk thread, if any.
    pub disk_thread_cpu: Duration,
}

/// Serve RESP clients on `listener` for `seconds` (see the module doc),
/// then answer what is in flight and hang up on the followers.
pub(super) fn serve(
    listener: TcpListener,
    followers: Vec<TcpStream>,
    disk: Option<Disk>,
    request_bytes: usize,
    group_commit: bool,
    seconds: Duration,
) -> Result<Served, String> {
    listener.set_nonblocking(true).map_err(|e| format!("serve: {e}"))?;
    // Each member: its connection, and what it asked.
    let mut replication = Replication::<Vec<(usize, Kind)>>::new(followers, disk, group_commit)?;
    let deadline = Instant::now() + seconds;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut commands = 0u64;
    let (mut first_read, mut last_reply) = (None::<Instant>, None::<Instant>);
    let mut batch = Vec::new();
    let mut chunk = vec![0u8; READ_BYTES];
    // Off once accepting failed (out of descriptors, say).
    let mut accepting = true;
    loop {
        let open = Instant::now() < deadline && !STOP.load(std::sync::atomic::Ordering::Relaxed);
        if !open && replication.is_idle() {
            break;
        }
        // The listener and the connections (while open), then replication's.
        let conn_fds = conns.iter().map(|c| match c {
            Some(c) if open && !c.broken => c.stream.as_raw_fd(),
            _ => -1,
        });
        let listening = open && accepting && conns.len() < CONNECTIONS_MAX;
        let mut fds: Vec<libc::pollfd> = std::iter::once(if listening { listener.as_raw_fd() } else { -1 })
            .chain(conn_fds)
            .chain(replication.poll_fds())
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        let left_ms = deadline.saturating_duration_since(Instant::now()).as_millis() + 1;
        let timeout_ms = if open { left_ms.min(POLL_MS_MAX) as i32 } else { -1 };
        if !poll(&mut fds, timeout_ms)? {
            continue;
        }
        let (listener_fd, rest) = fds.split_at(1);
        let (conn_fds, rest) = rest.split_at(conns.len());
        replication.hear(rest)?;
        let mut members = Vec::new();
        for (c, slot) in conns.iter_mut().enumerate() {
            if conn_fds[c].revents == 0 {
                continue;
            }
            let Some(conn) = slot else { continue };
            // A client's error or hang-up ends its connection, not the run.
            let n = match conn.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    *slot = None;
                    continue;
                }
                Ok(n) => n,
            };
            first_read.get_or_insert_with(Instant::now);
            conn.input.extend_from_slice(&chunk[..n]);
            let mut at = 0;
            loop {
                match next_command(&conn.input[at..]) {
                    Ok(Some((len, kind))) => {
                        members.push((c, kind));
                        at += len;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // Answered in its turn, after what came before it.
                        members.push((c, Kind::Malformed));
                        conn.broken = true;
                        at = conn.input.len();
                        break;
                    }
                }
            }
            conn.input.drain(..at);
        }
        if listener_fd[0].revents != 0 {
            while conns.len() < CONNECTIONS_MAX {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // A connection that cannot be set up is dropped, not the run.
                        let ready =
                            stream.set_nodelay(true).and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
                        if ready.is_ok() {
                            conns.push(Some(Conn { stream, input: Vec::new(), output: Vec::new(), broken: false }));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::Interrupted) => {}
                    Err(e) => {
                        // Out of descriptors, say: serve the connections there are.
                        eprintln!("loadgen floor: accepting no more connections: {e}");
                        accepting = false;
                        break;
                    }
                }
            }
        }
        if !members.is_empty() {
            batch.clear();
            batch.extend_from_slice(&(members.len() as u32).to_le_bytes());
            batch.resize(4 + members.len() * request_bytes, 0x5a);
            replication.send(&batch, members)?;
        }
        let mut answered = false;
        while let Some(members) = replication.next_answered() {
            for (c, kind) in members {
                if let Some(conn) = &mut conns[c] {
                    conn.output.extend_from_slice(kind.reply());
                    commands += 1;
                    answered = true;
                }
            }
        }
        for slot in &mut conns {
            if let Some(conn) = slot.as_mut().filter(|c| !c.output.is_empty()) {
                if conn.stream.write_all(&conn.output).is_err() {
                    *slot = None;
                } else {
                    conn.output.clear();
                }
            }
        }
        if answered {
            last_reply = Some(Instant::now());
        }
    }
    let disk_thread_cpu = replication.finish()?;
    let busy = match (first_read, last_reply) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    Ok(Served { commands, connections: conns.len() as u64, busy, disk_thread_cpu })
}

/// What `--serve` measured.
#[derive(Debug, serde::Serialize)]
pub struct ServeResult {
    pub replicas: usize,
    pub serve: String,
    pub serve_seconds: f64,
    pub sync: bool,
    pub group_commit: bool,
    pub request_bytes: usize,
    pub connections: u64,
    pub commands: u64,
    /// From the first command read to the last reply written.
    pub busy_s: f64,
    /// `commands / busy_s`: near the client's own figure when the client
    /// kept the floor busy throughout.
    pub commands_per_busy_s: f64,
    /// User + system CPU of the replica threads (their disk threads
    /// included), per command.
    pub replica_cpu_us_per_op: f64,
}

/// `--serve`: the replicas with the leader serving RESP clients (the
/// `serve` module) for `--serve-seconds`.
pub(super) fn serve_floor(args: &FloorArgs) -> Result<ServeResult, String> {
    let Some(addr) = args.serve else { return Err("serve_floor needs --serve".into()) };
    check_serve_args(args)?;
    serve_floor_on(bind(addr)?, args)
}

fn check_serve_args(args: &FloorArgs) -> Result<(), String> {
    if args.replicas.is_multiple_of(2) || !(1..=7).contains(&args.replicas) {
        return Err(format!("--replicas must be odd, 1 to 7 (not {})", args.replicas));
    }
    if args.runtime != Runtime::Blocking {
        return Err("--serve needs --runtime blocking".into());
    }
    if args.group_commit && args.sync_dir.is_none() {
        return Err("--group-commit needs --sync-dir".into());
    }
    if !args.serve_seconds.is_finite() || args.serve_seconds <= 0.0 || args.serve_seconds > 86_400.0 {
        return Err(format!("--serve-seconds must be above 0, at most a day (not {})", args.serve_seconds));
    }
    if args.request_bytes < ACK_BYTES {
        return Err(format!("--request-bytes must be at least {ACK_BYTES} (the op number)"));
    }
    Ok(())
}

/// `serve_floor` on a listener already bound (to `args.serve`).
pub(super) fn serve_floor_on(listener: TcpListener, args: &FloorArgs) -> Result<ServeResult, String> {
    let addr = listener.local_addr().map_err(|e| format!("serve: {e}"))?;
    check_serve_args(args)?;
    let n = args.replicas;
    let _files = args.sync_dir.as_ref().map(|dir| RemoveOnDrop((0..n).map(|i| disk_path(dir, i)).collect()));
    let mut disks: Vec<Option<Disk>> = match &args.sync_dir {
        Some(dir) => (0..n).map(|i| Disk::create(&disk_path(dir, i)).map(Some)).collect::<Result<_, _>>()?,
        None => (0..n).map(|_| None).collect(),
    };
    let (cpu_tx, cpu_rx) = mpsc::channel::<Result<Duration, String>>();
    let (follower_addrs, threads) = start_followers(disks.drain(1..), args, &cpu_tx)?;
    drop(cpu_tx);
    let leader_disk = disks.pop().flatten();
    let followers = follower_addrs.into_iter().map(connect).collect::<Result<Vec<_>, _>>()?;
    println!("loadgen floor: serving RESP on {addr} for {} s", args.serve_seconds);
    let served = serve(
        listener,
        followers,
        leader_disk,
        args.request_bytes,
        args.group_commit,
        Duration::from_secs_f64(args.serve_seconds),
    )?;
    let mut cpu = thread_cpu() + served.disk_thread_cpu;
    for result in cpu_rx.iter() {
        cpu += result?;
    }
    for thread in threads {
        thread.join().map_err(|_| "a replica thread panicked".to_string())?;
    }
    let busy_s = served.busy.as_secs_f64();
    Ok(ServeResult {
        replicas: n,
        serve: addr.to_string(),
        serve_seconds: args.serve_seconds,
        sync: args.sync_dir.is_some(),
        group_commit: args.group_commit,
        request_bytes: args.request_bytes,
        connections: served.connections,
        commands: served.commands,
        busy_s,
        commands_per_busy_s: if busy_s > 0.0 { served.commands as f64 / busy_s } else { 0.0 },
        replica_cpu_us_per_op: cpu.as_nanos() as f64 / 1000.0 / served.commands.max(1) as f64,
    })
}

/// Bind `addr` for serving, with an error that names it.
fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("--serve {addr}: binding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_commands_are_cut_out_and_partial_ones_wait() {
        let set = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        assert_eq!(next_command(set), Ok(Some((set.len(), Kind::Set))));
        for cut in 0..set.len() {
            assert_eq!(next_command(&set[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = set.to_vec();
        two.extend_from_slice(b"*1\r\n$4\r\nping\r\n");
        assert_eq!(next_command(&two[set.len()..]), Ok(Some((14, Kind::Ping))));
        assert_eq!(next_command(b"CONFIG GET save\r\n"), Ok(Some((17, Kind::Other))));
        // Empty inline lines are skipped, as Redis skips them.
        assert_eq!(next_command(b"\r\n  \r\nPING\r\n"), Ok(Some((12, Kind::Ping))));
        assert_eq!(next_command(b"\r\n\r\n"), Ok(None));
        assert_eq!(next_command(b"*2\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n").map(|c| c.map(|c| c.1)), Ok(Some(Kind::Other)));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b"*0\r\n"[..],
            b"*x\r\n",
            b"*1\r\n:5\r\n",
            b"*1\r\n$3\r\nSETX\r\n",
            b"*1\r\n$99999999999999999999999\r\n",
            b"*1\r\n$123456789012345678901234567890",
        ] {
            assert!(next_command(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // Bounded: an inline line, and a command's declared size.
        assert!(next_command(&vec![b'x'; INLINE_BYTES_MAX + 1]).is_err());
        assert_eq!(next_command(&vec![b'x'; INLINE_BYTES_MAX]), Ok(None));
        assert!(next_command(format!("*2\r\n$3\r\nSET\r\n${COMMAND_BYTES_MAX}\r\n").as_bytes()).is_err());
    }
}
