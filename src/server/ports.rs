//! Ports that are ours: a node refuses to start when its client, peer or
//! metrics port is held by anything but its own executors, and names the
//! port (and, when `/proc` tells, the process holding it).
//!
//! The catch is SO_REUSEPORT. The executors share the client port through
//! it, and Linux lets any socket that also sets it, opened by the same
//! user, join the group: a second paxoskv (another cluster, another data
//! directory) would bind a live node's client port without an error, and
//! the kernel would deal its clients between two datasets. The rule the
//! kernel applies at bind(2): a new socket conflicts with every socket
//! already bound to an overlapping address and port unless both set
//! SO_REUSEPORT (same user), or both set SO_REUSEADDR and the old one is
//! not listening. So, on the main thread, before any executor runs:
//!
//! - **Peer and metrics ports** have one listener each: it is bound here
//!   *without* SO_REUSEPORT and handed to its executor. Its bind fails if
//!   anyone holds the port, and while it lives every later bind fails,
//!   with or without SO_REUSEPORT. No window at all.
//! - **The client port** must be shared by our executors, so it cannot be
//!   held that way. First a probe listener without SO_REUSEPORT: its bind
//!   fails if anyone holds the port, whatever their options (the clear
//!   error, in practice). Then the probe is closed and one SO_REUSEPORT
//!   listener per executor is bound. Between the two, another process
//!   could slip in with SO_REUSEPORT of its own; so after binding, every
//!   listening socket on the port (`/proc/net/tcp`, `/proc/net/tcp6`) must
//!   be one of ours, else the node refuses to start. A later paxoskv
//!   cannot join either: its own probe fails on our listeners, which lack
//!   nothing it needs to conflict. (A foreign program that sets
//!   SO_REUSEPORT, runs as our user and starts after us is beyond what a
//!   port can refuse; that is the kernel's rule.)
//!
//! Two leftovers of this node's own earlier life must not count as someone
//! else: its accepted connections in TIME_WAIT (every listener sets
//! SO_REUSEADDR, and so do the sockets it accepts), and its listeners
//! themselves, which outlive a killed process by the time the kernel takes
//! to tear down its io_uring (a port held by sockets of no visible process
//! is retried for [`ORPHAN_WAIT`]; one held by a process fails at once).

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::config::NodeSpec;

/// Pending connections per client listener (glommio's own `bind` uses the same).
const CLIENT_BACKLOG: i32 = 1024;

/// The listeners one executor serves, bound before the executors start.
pub struct ExecutorListeners {
    /// This executor's member of the client port's SO_REUSEPORT group.
    pub client: TcpListener,
    /// This shard's peer port (`peer_port + shard`), exclusive.
    pub peer: TcpListener,
    /// The metrics endpoint, exclusive: executor 0 only, if configured.
    pub metrics: Option<TcpListener>,
}

/// Every listener of the node, claimed by [`claim`]; each executor takes
/// its own.
pub struct ClaimedPorts {
    executors: Mutex<Vec<Option<ExecutorListeners>>>,
}

impl ClaimedPorts {
    /// Executor `index`'s listeners. Panics if taken twice (a bug).
    pub fn take(&self, index: usize) -> ExecutorListeners {
        let mut executors = self.executors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        executors[index].take().expect("each executor takes its listeners once")
    }
}

/// Bind every port of node `spec` for `shards` executors, or say which port
/// is taken and by whom.
pub fn claim(spec: &NodeSpec, shards: usize) -> Result<ClaimedPorts, String> {
    let host = spec.host.as_str();
    let mut peers = Vec::with_capacity(shards);
    for shard in 0..shards {
        let port = spec.peer_port + shard as u16;
        peers.push(bind_exclusive(host, port, &format!("peer port {port} (shard {shard})"))?);
    }
    let mut metrics = match spec.metrics_port {
        Some(port) => Some(bind_exclusive(host, port, &format!("metrics port {port}"))?),
        None => None,
    };
    let clients = bind_shared(host, spec.client_port, shards)?;
    // Executor 0 serves the metrics endpoint: the first to take it.
    let executors = clients
        .into_iter()
        .zip(peers)
        .map(|(client, peer)| Some(ExecutorListeners { client, peer, metrics: metrics.take() }))
        .collect();
    Ok(ClaimedPorts { executors: Mutex::new(executors) })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))
}

/// A listener that shares its port with no one (std sets SO_REUSEADDR, so
/// connections of an earlier life in TIME_WAIT do not block a restart).
fn bind_exclusive(host: &str, port: u16, what: &str) -> Result<TcpListener, String> {
    let addr = resolve(host, port)?;
    bind_patiently(what, addr, || TcpListener::bind(addr))
}

/// `count` listeners on the client port, one per executor, sharing it by
/// SO_REUSEPORT with each other and with no one else (see the module doc).
fn bind_shared(host: &str, port: u16, count: usize) -> Result<Vec<TcpListener>, String> {
    let what = format!("client port {port}");
    let addr = resolve(host, port)?;
    drop(bind_patiently(&what, addr, || TcpListener::bind(addr))?);
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = bind_patiently(&what, addr, || reuseport_listener(addr))?;
        listeners.push(TcpListener::from(socket));
    }
    let ours: BTreeSet<u64> = listeners.iter().filter_map(|listener| socket_inode(listener.as_raw_fd())).collect();
    if ours.len() == count {
        let strangers: Vec<u64> = listening_on(addr).into_iter().filter(|inode| !ours.contains(inode)).collect();
        if !strangers.is_empty() {
            return Err(format!(
                "{what} on {addr} is already in use{}: another process joined it with SO_REUSEPORT",
                describe_holders(&socket_holders(&strangers))
            ));
        }
    }
    Ok(listeners)
}

/// How long a start waits for listeners that no process holds to close. A
/// node killed a moment ago leaves its listening sockets open after it has
/// been reaped, until the kernel has torn down its io_uring instance
/// (asynchronously; tens of milliseconds, measured): a supervisor that
/// restarts it at once must not be told its own ports are taken.
const ORPHAN_WAIT: Duration = Duration::from_secs(5);
/// The pause between two binds while waiting for such listeners to close.
const ORPHAN_POLL: Duration = Duration::from_millis(10);

/// Run `bind` until it succeeds, or fails for another reason than the port
/// being in use, or the port is held by a process we can name (at once),
/// or by sockets no visible process holds for longer than [`ORPHAN_WAIT`].
fn bind_patiently<T>(what: &str, addr: SocketAddr, mut bind: impl FnMut() -> io::Result<T>) -> Result<T, String> {
    let deadline = Instant::now() + ORPHAN_WAIT;
    loop {
        let error = match bind() {
            Ok(bound) => return Ok(bound),
            Err(error) => error,
        };
        if error.kind() != io::ErrorKind::AddrInUse {
            return Err(format!("{what} on {addr}: {error}"));
        }
        let holders = socket_holders(&listening_on(addr));
        if holders.is_empty() && Instant::now() < deadline {
            std::thread::sleep(ORPHAN_POLL);
            continue;
        }
        let by = if holders.is_empty() {
            let hint = ephemeral_hint(addr.port(), ephemeral_range());
            format!(" (for {ORPHAN_WAIT:?}, by no process this user can see{hint})")
        } else {
            describe_holders(&holders)
        };
        return Err(format!(
            "{what} on {addr} is already in use{by}: another server (another cluster, or another data \
             directory?) holds it; stop it or give this node other ports"
        ));
    }
}

/// The ports this system gives outgoing connections
/// (`net.ipv4.ip_local_port_range`), if it says.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    Some((bounds.next()??, bounds.next()??))
}

/// Why a port that no listener holds may still be taken: outgoing
/// connections (any process's, or one in TIME_WAIT after it closed) take
/// their local port from the ephemeral range, and such a socket blocks a
/// listener on that port. Empty when `port` is outside `range`.
fn ephemeral_hint(port: u16, range: Option<(u16, u16)>) -> String {
    match range {
        Some((low, high)) if (low..=high).contains(&port) => format!(
            "; port {port} is in the range this system gives outgoing connections, {low}-{high} \
             (net.ipv4.ip_local_port_range), where a connection of any process, or one closed a moment ago, can \
             hold it: choose ports below {low}"
        ),
        _ => String::new(),
    }
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR as well, for the next life of this node: the sockets
    // this listener accepts inherit it, and when the node dies with clients
    // connected their ends linger in TIME_WAIT; the next life's probe (std
    // sets SO_REUSEADDR) may bind beside them only if they have it too. It
    // opens nothing to others: a listening socket conflicts whatever its
    // SO_REUSEADDR.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(CLIENT_BACKLOG)?;
    Ok(socket)
}

/// The inodes of the listening sockets whose address competes with `addr`.
fn listening_on(addr: SocketAddr) -> Vec<u64> {
    listening_sockets(addr.port())
        .into_iter()
        .filter(|(ip, _)| overlaps(*ip, addr.ip()))
        .map(|(_, inode)| inode)
        .collect()
}

/// Whether sockets bound to `a` and `b` (same port) compete: equal
/// addresses, or either one the wildcard.
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// " by pid 1234 (paxoskv)", or "" when no holder is known.
fn describe_holders(holders: &[(u32, String)]) -> String {
    if holders.is_empty() {
        return String::new();
    }
    let named: Vec<String> = holders.iter().map(|(pid, name)| format!("pid {pid} ({name})")).collect();
    format!(" by {}", named.join(", "))
}

/// The inode of the socket behind `fd` (what `/proc/net/tcp` lists).
fn socket_inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat(2) on a descriptor the caller owns, into a zeroed struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some(stat.st_ino)
}

/// Every listening TCP socket on `port` in this network namespace, as
/// (local address, inode), from `/proc/net/tcp` and `/proc/net/tcp6`.
/// Empty where `/proc` cannot be read.
fn listening_sockets(port: u16) -> Vec<(IpAddr, u64)> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        found.extend(
            text.lines().skip(1).filter_map(parse_proc_net_tcp_line).filter_map(|(ip, line_port, listening, inode)| {
                (listening && line_port == port).then_some((ip, inode))
            }),
        );
    }
    found
}

/// One row of `/proc/net/tcp{,6}`: `sl local_address rem_address st ... inode`,
/// the address as hex of its bytes in host order per 32-bit word, the port
/// as hex; state 0A is LISTEN. Returns (address, port, listening, inode).
fn parse_proc_net_tcp_line(line: &str) -> Option<(IpAddr, u16, bool, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, port) = fields.get(1)?.split_once(':')?;
    let state = fields.get(3)?;
    let inode = fields.get(9)?.parse().ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..address.len() / 8)
        .map(|i| u32::from_str_radix(&address[8 * i..8 * i + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip = match words.as_slice() {
        [word] => IpAddr::from(word.to_ne_bytes()),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some((ip, port, *state == "0A", inode))
}

/// The processes holding any of these socket inodes, as (pid, command
/// name), found through `/proc/*/fd` (best effort: another user's
/// processes are visible to root only).
fn socket_holders(inodes: &[u64]) -> Vec<(u32, String)> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: BTreeSet<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    let mut holders = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else { return holders };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target.to_str().is_some_and(|t| wanted.contains(t)))
        });
        if holds {
            let name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            holders.push((pid, name.trim().to_string()));
        }
    }
    holders
}

/// Hand a claimed listener to glommio (on the executor that serves it).
pub fn into_glommio(listener: TcpListener) -> glommio::net::TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptor is a bound, listening TCP socket whose only
    // owner was `listener`, consumed here; glommio takes it over.
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_rows_parse() {
        let v4 = "   0: 0100007F:1B59 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_proc_net_tcp_line(v4), Some(("127.0.0.1".parse().unwrap(), 7001, true, 123456)));
        let v6 = "   1: 00000000000000000000000001000000:1B5A 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000  1000        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_proc_net_tcp_line(v6), Some(("::1".parse().unwrap(), 7002, false, 77)));
        assert_eq!(parse_proc_net_tcp_line("  sl  local_address rem_address   st tx_queue"), None);
    }

    #[test]
    fn a_port_in_the_ephemeral_range_is_named_as_such() {
        let hint = ephemeral_hint(42001, Some((32768, 60999)));
        assert!(hint.contains("42001 is in the range") && hint.contains("choose ports below 32768"), "{hint}");
        assert_eq!(ephemeral_hint(7001, Some((32768, 60999))), "");
        assert_eq!(ephemeral_hint(42001, None), "");
    }

    #[test]
    fn a_held_port_is_refused_naming_the_port_and_the_holder() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let error = bind_shared("127.0.0.1", port, 2).map(|_| ()).unwrap_err();
        assert!(error.contains(&format!("client port {port} on 127.0.0.1:{port} is already in use")), "{error}");
        assert!(error.contains(&format!("pid {}", std::process::id())), "names this process: {error}");
        let error = bind_exclusive("127.0.0.1", port, "metrics port").map(|_| ()).unwrap_err();
        assert!(error.contains("already in use"), "{error}");
    }

    #[test]
    fn an_existing_reuseport_group_is_refused_and_ours_is_exclusive() {
        // Someone else's SO_REUSEPORT listener: our probe fails on it.
        let stranger = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = stranger.local_addr().unwrap().as_socket().unwrap();
        let error = bind_shared("127.0.0.1", addr.port(), 2).map(|_| ()).unwrap_err();
        assert!(error.contains("already in use"), "{error}");
        drop(stranger);
        // Ours: shared between our two listeners, closed to a later
        // SO_REUSEPORT binder's probe.
        let ours = bind_shared("127.0.0.1", addr.port(), 2).expect("a free port");
        assert_eq!(ours.len(), 2);
        assert!(bind_shared("127.0.0.1", addr.port(), 1).is_err());
    }

    /// A port no one holds right now.
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Whether `/proc/net/tcp` lists a socket on local `port` in TIME_WAIT (state 06).
    fn time_wait_on(port: u16) -> bool {
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        text.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].split_once(':').map(|(_, p)| u16::from_str_radix(p, 16).unwrap());
            local_port == Some(port) && fields[3] == "06"
        })
    }

    #[test]
    fn connections_of_an_earlier_life_do_not_block_a_restart() {
        use std::io::Read;
        // An earlier life of the node: its listener, and a client connection
        // the server closed first, so the server's end lingers in TIME_WAIT
        // (as when a node is killed with clients connected).
        let port = free_port();
        let mut earlier = bind_shared("127.0.0.1", port, 1).expect("a free port");
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, _) = earlier[0].accept().unwrap();
        drop(served);
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the server's FIN");
        drop(client);
        drop(earlier.pop());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !time_wait_on(port) {
            assert!(std::time::Instant::now() < deadline, "the server's end never reached TIME_WAIT");
            std::thread::yield_now();
        }
        // The next life binds the port again, every listener of it.
        let listeners = bind_shared("127.0.0.1", port, 2).expect("a restart despite TIME_WAIT");
        assert_eq!(listeners.len(), 2);
    }
}
