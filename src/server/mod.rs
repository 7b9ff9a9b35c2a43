//! The glommio shell: one executor per shard, each running that shard's
//! replica, WAL, timers and peer links, and serving its share of the
//! client connections (ARCHITECTURE.md §5). Runtime calls live here and in
//! `storage::wal` only.
//!
//! - `config`: the cluster file and tuning flags;
//! - `shard`: the Ready loop, group commit, ticks, request routing;
//! - `links`: peer connections, handshake, coalesced writes;
//! - `ports`: binding the node's ports, refused when anyone else holds one;
//! - `client`: RESP connections and cross-shard routing over the mesh;
//! - `metrics`: Prometheus metrics, `INFO`, the `/metrics` endpoint.

mod alarm;
pub mod client;
mod clients;
pub mod config;
pub mod executors;
mod identity;
pub mod links;
pub mod metrics;
mod ports;
pub mod shard;
pub mod stages;
mod trace;
pub mod turns;
pub mod util;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::PoolPlacement;

use self::config::ClusterFile;
pub use self::config::TraceSettings;
use self::links::{accept_forever, dial_forever, Link, LinkContext};
use self::metrics::Monitor;
use self::ports::ClaimedPorts;
use self::shard::{ClientWaiter, Shard, ShardRef};
use self::util::{Notify, ReplySender};
use crate::kv::{Command, Reply};
use crate::net::peer_auth::PeerKey;
use crate::node::{Boot, Node, Request, Waiter};
use crate::paxos::{InjectedBug, NodeId};
use crate::server_log;
use crate::storage::{Wal, WalOptions};

/// Messages between the executors of one node.
pub enum MeshMessage {
    /// A client command for the receiver's shard; answer with `Reply { token }`.
    Request {
        from: usize,
        token: u64,
        command: Command,
        deadline: Instant,
    },
    Reply {
        token: u64,
        reply: Reply,
    },
}

/// Capacity of each executor-to-executor channel.
const MESH_CHANNEL_CAPACITY: usize = 4096;

/// Set on the first stop signal (`stop_on_signal`): every shard's node
/// hands its leadership over and campaigns no more (`Node::leave`).
pub(crate) static LEAVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The running node's monitor, for the stop signal to see which shards
/// it still leads.
static RUNNING: std::sync::OnceLock<Arc<Monitor>> = std::sync::OnceLock::new();

/// How long a stopping node waits for the shards it leads to hand over.
/// A leader hands over at its next heartbeat round once both (all other)
/// members were heard within the shortest election timeout; one that
/// cannot (a member down) is left to lose its leadership the usual way.
pub const LEAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Once it leads nothing, how long a stopping node stays for the others to
/// name a new leader of each shard: its vote may be the one a successor
/// needs (a member the hand-over reached late still refuses it). When
/// every node is stopped at once, no new leader comes.
pub const LEAVE_LINGER: std::time::Duration = std::time::Duration::from_millis(300);

/// The process was asked to stop (SIGINT or SIGTERM). The first time:
/// each shard this node leads hands its leadership over to the follower
/// furthest along (`Node::leave`, then `Message::HandOver` in the core),
/// so that a planned restart leaves the group without a leader for a round
/// trip rather than for a lease and an election timeout; the process
/// exits once no shard is led here and another node leads each (or
/// [`LEAVE_LINGER`] after it led nothing), at the latest after
/// [`LEAVE_WAIT`]. A second
/// signal exits at once. Either way everything acknowledged is already
/// durable: stopping early loses nothing, it only costs the group an
/// election.
pub fn stop_on_signal(node: NodeId) {
    if LEAVING.swap(true, Ordering::SeqCst) {
        server_log!(node, "-", "stopping now, on a second signal (everything acknowledged is already durable)");
        std::process::exit(0);
    }
    let Some(monitor) = RUNNING.get().cloned() else {
        server_log!(node, "-", "stopping on a signal (everything acknowledged is already durable)");
        std::process::exit(0);
    };
    server_log!(node, "-", "stopping on a signal: handing over the leadership of the shards led here first (a second signal stops at once)");
    let started = Instant::now();
    let mut led_nothing_since: Option<Instant> = None;
    let spawned = std::thread::Builder::new().name("leave".into()).spawn(move || loop {
        let shards = 0..monitor.status.len();
        let leading: Vec<usize> = shards.clone().filter(|&s| monitor.status[s].is_leader()).collect();
        if leading.is_empty() {
            let since = *led_nothing_since.get_or_insert_with(Instant::now);
            let named = |s: usize| ![0, node].contains(&monitor.status[s].leader.load(Ordering::Relaxed));
            let lingered = since.elapsed() >= LEAVE_LINGER;
            if shards.clone().all(named) || lingered {
                let how = if lingered { "no new leader named yet" } else { "another node leads each shard" };
                server_log!(node, "-", "stopping: no shard is led here, {how} (after {} ms; everything acknowledged is already durable)", started.elapsed().as_millis());
                std::process::exit(0);
            }
        }
        if started.elapsed() >= LEAVE_WAIT {
            if leading.is_empty() {
                server_log!(node, "-", "stopping: no shard is led here, no new leader named after {} ms", LEAVE_WAIT.as_millis());
            } else {
                server_log!(node, "-", "stopping: shards {leading:?} are still led here after {} ms (a member not heard from?); the others elect a leader once the lease runs out", LEAVE_WAIT.as_millis());
            }
            std::process::exit(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    });
    if let Err(e) = spawned {
        server_log!(node, "-", "stopping at once: no thread to wait for the hand-over ({e})");
        std::process::exit(0);
    }
}

/// What every task on one executor shares.
pub struct Shared {
    pub node: NodeId,
    /// This executor's index, which is also the shard it runs.
    pub executor: usize,
    pub file: ClusterFile,
    pub monitor: Arc<Monitor>,
    pub shard: RefCell<Option<ShardRef>>,
    pub config_summary: String,
    senders: Senders<MeshMessage>,
    mesh_waiters: RefCell<HashMap<u64, ReplySender<Reply>>>,
    next_token: Cell<u64>,
    outbox: RefCell<VecDeque<(usize, MeshMessage)>>,
    outbox_kick: Notify,
    next_client_id: Cell<u64>,
    /// Client connections open on this executor.
    pub clients: Cell<usize>,
    /// When the executor's task queue last drained: client tasks give way
    /// to the ticker, the driver and the peer links once it has not for a
    /// while.
    pub turns: turns::Turns,
}

impl Shared {
    /// The password clients must give (`requirepass`), if any.
    pub fn requirepass(&self) -> Option<&str> {
        self.file.requirepass.as_ref().map(config::Secret::expose)
    }

    /// A connection id, unique on this node.
    pub fn new_client_id(&self) -> u64 {
        let id = self.next_client_id.get();
        self.next_client_id.set(id + 1);
        id * self.file.shards as u64 + self.executor as u64
    }

    /// A session counter greater than every earlier one on this node, across
    /// executors and restarts: wall-clock microseconds, bumped past the last
    /// one handed out (`kv::session_id`).
    pub fn new_session_counter(&self) -> u64 {
        let now = util::unix_micros();
        let previous = self
            .monitor
            .session_counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(last.max(now - 1) + 1))
            .expect("the update always succeeds");
        previous.max(now - 1) + 1
    }

    pub fn register_mesh_waiter(&self, sender: ReplySender<Reply>) -> u64 {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.mesh_waiters.borrow_mut().insert(token, sender);
        token
    }

    pub fn take_mesh_waiter(&self, token: u64) -> Option<ReplySender<Reply>> {
        self.mesh_waiters.borrow_mut().remove(&token)
    }

    pub async fn mesh_send(&self, to: usize, message: MeshMessage) -> Result<(), ()> {
        self.senders.send_to(to, message).await.map_err(|_| ())
    }

    /// Queue a reply to another executor; never blocks the caller.
    pub fn mesh_reply(&self, executor: usize, token: u64, reply: Reply) {
        self.outbox.borrow_mut().push_back((executor, MeshMessage::Reply { token, reply }));
        self.outbox_kick.notify();
    }
}

/// Run node `node` of the cluster until the process is stopped.
pub fn run(file: ClusterFile, node: NodeId, pin: bool, rejoin: bool) -> Result<(), String> {
    file.validate()?;
    config::check_injected_bug_allowed_by_environment(&file.tuning)?;
    let spec = file.node(node).ok_or_else(|| format!("node {node} is not in the cluster file"))?.clone();
    let shards = file.shards;
    let bug = file.core_config().injected_bug;
    if bug != InjectedBug::None {
        for _ in 0..3 {
            server_log!(node, "-", "WARNING: injected bug `{}` is ON ({}=1): {}. The cluster's guarantees for acknowledged data and consistency are OFF. Use it to measure, never to keep data.", bug.name(), config::ALLOW_INJECTED_BUGS_ENV, injected_bug_effect(bug));
        }
    }
    if file.tuning.durability == config::DurabilityMode::None {
        for _ in 0..3 {
            server_log!(node, "-", "WARNING: durability is `none`: the WAL writes into the page cache and nothing is fsynced; a power loss or kernel crash can lose acknowledged writes. Use it to measure, never to keep data.");
        }
    }
    server_log!(
        node,
        "-",
        "starting: cluster {:?}, {} nodes, {shards} shards, clients on {}:{}, peers on {}:{}..{}, data in {}",
        file.cluster_id,
        file.nodes.len(),
        spec.host,
        spec.client_port,
        spec.host,
        spec.peer_port,
        spec.peer_port as usize + shards - 1,
        file.data_dir.display()
    );
    let peer_key = Arc::new(peer_key(&file, node)?);
    let _lock = lock_node_dir(&file, node)?;
    // After the lock: a second process for this very node is told so, not
    // that its ports are taken.
    let ports = Arc::new(ports::claim(&spec, shards)?);
    raise_open_files_limit(node);
    if !file.tuning.transparent_huge_pages {
        disable_transparent_huge_pages(node);
    }
    let monitor = Monitor::new(node, shards);
    let _ = RUNNING.set(monitor.clone());
    executors::watch_start(node, monitor.clone());
    let mesh: MeshBuilder<MeshMessage, Full> = MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY);
    let placement = if pin { PoolPlacement::MaxSpread(shards, None) } else { PoolPlacement::Unbound(shards) };
    let handles = executors::pool(placement)
        // glommio clones this closure for each executor on this thread;
        // each executor then moves its copy into its future, never cloning
        // the mesh builder there: its peer list sits behind a plain `Rc`,
        // whose count must not change on two threads at once.
        .on_all_shards(move || {
            async move {
                let result = run_executor(file, node, rejoin, monitor, mesh, peer_key, ports).await;
                if let Err(e) = &result {
                    // One shard down with the others serving would be a
                    // half-alive node that a supervisor never restarts.
                    server_log!(node, "-", "FATAL: {e}");
                    std::process::exit(1);
                }
                result
            }
        })
        .map_err(|e| format!("starting executors: {e}"))?;
    for result in handles.join_all() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("executor failed: {e}")),
        }
    }
    Ok(())
}

/// The key peers prove in the handshake: the configured peer secret, or,
/// in a cluster whose every node is on loopback, the empty one with a
/// warning. A cluster that spans hosts does not start without a secret:
/// anything that reaches a peer port could join it.
fn peer_key(file: &ClusterFile, node: NodeId) -> Result<PeerKey, String> {
    match file.peer_secret()? {
        Some(secret) => {
            if secret.len() < config::PEER_SECRET_BYTES_MIN_RECOMMENDED {
                server_log!(node, "-", "WARNING: the peer secret is only {} bytes: someone who records a peer handshake can guess it offline; use 32 random bytes (e.g. `head -c 32 /dev/urandom | base64`)", secret.len());
            }
            Ok(PeerKey::new(&secret))
        }
        None if file.all_nodes_on_loopback() => {
            server_log!(node, "-", "WARNING: no peer secret (peer_secret or peer_secret_file): any local process can join this cluster's peer links. Fine for a local test; set one for anything else.");
            Ok(PeerKey::new(b""))
        }
        None => Err("no peer secret: a cluster whose nodes are not all on loopback needs peer_secret or \
                     peer_secret_file in the cluster file (or --peer-secret-file), the same on every node; \
                     without one, anything that reaches a peer port could join the cluster"
            .into()),
    }
}

/// Hold an exclusive lock on the node's data directory for the life of
/// the process: two processes running one node would be two acceptors with
/// one identity, and could break agreement.
fn lock_node_dir(file: &ClusterFile, node: NodeId) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let dir = file.data_dir.join(format!("node-{node}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join("LOCK");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: flock(2) on a descriptor we own.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(format!(
            "{} is locked: another process is already running node {node} with this data directory",
            path.display()
        ));
    }
    Ok(lock)
}

/// Client connections, WAL segments and peer links all take descriptors:
/// raise the soft limit to the hard one.
fn raise_open_files_limit(node: NodeId) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                server_log!(node, "-", "could not raise the open-files limit");
            }
        }
    }
}

/// `tuning.transparent_huge_pages = false`: no huge page for this process
/// from now on, whatever the allocator asks (mimalloc marks its arenas
/// with `madvise(MADV_HUGEPAGE)`): the kernel checks the flag at every
/// fault, so memory mapped before this call is covered too.
fn disable_transparent_huge_pages(node: NodeId) {
    // SAFETY: prctl with integer arguments only.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0 as libc::c_ulong, 0, 0) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        server_log!(
            node,
            "-",
            "could not turn transparent huge pages off for this process ({error}); running with the system's setting"
        );
    }
}

/// What an injected bug a server may run with does, for its startup warning.
fn injected_bug_effect(bug: InjectedBug) -> &'static str {
    match bug {
        InjectedBug::StaleLeaseReads => {
            "every node answers reads from its own applied state at once, with no lease, no read-index round and \
             no forward to the leader, so a follower or a deposed leader returns stale values"
        }
        _ => "a protocol rule is broken on purpose",
    }
}

fn config_summary(file: &ClusterFile) -> String {
    let t = &file.tuning;
    format!(
        "shards:{}\r\nwindow_slots:{}\r\nbatch_count_max:{}\r\nbatch_bytes_max:{}\r\nlease_reads:{}\r\ndurability:{:?}\r\nwal_writes:{:?}\r\npeer_write_coalescing:{}\r\ntransparent_huge_pages:{}\r\ninjected_bug:{}",
        file.shards,
        t.window_slots,
        t.batch_count_max,
        t.batch_bytes_max,
        t.lease_reads,
        t.durability,
        t.wal_writes,
        t.peer_write_coalescing,
        t.transparent_huge_pages,
        file.core_config().injected_bug.name()
    )
    .to_lowercase()
}

async fn run_executor(
    file: ClusterFile,
    node: NodeId,
    rejoin: bool,
    monitor: Arc<Monitor>,
    mesh: MeshBuilder<MeshMessage, Full>,
    peer_key: Arc<PeerKey>,
    ports: Arc<ClaimedPorts>,
) -> Result<(), String> {
    let (senders, receivers) = mesh.join().await.map_err(|_| "joining the executor mesh failed".to_string())?;
    let index = senders.peer_id();
    executors::StartPhase::Recovering.record(&monitor.status[index]);
    let spec = file.node(node).expect("validated").clone();
    let listeners = ports.take(index);

    // Recover this shard's state from its data directory.
    let dir = file.shard_dir(node, index);
    let initialized = identity::prepare(&file, node, index).map_err(|e| format!("shard {index}: {e}"))?;
    let mut options = WalOptions::new(&dir);
    options.durability = file.tuning.durability.storage();
    options.inline_writes = file.tuning.wal_writes == config::WalWrites::Inline;
    let (wal, durable, report) = Wal::open(options).await.map_err(|e| format!("shard {index}: {e}"))?;
    server_log!(
        node,
        index,
        "recovered from {}: {} segments, {} records, snapshot {}, promised {}, commit {}{}",
        dir.display(),
        report.segments,
        report.records,
        report.snapshot_slot.map_or("none".to_string(), |s| format!("at slot {s}")),
        durable.promised,
        durable.commit,
        report.torn_tail.as_ref().map_or(String::new(), |(file, offset, why)| format!(
            "; discarded a torn tail of {} at byte {offset} ({why})",
            file.display()
        ))
    );
    let boot = Boot::decide(durable, initialized, rejoin);
    let seed = util::unix_millis() as u64 ^ (u64::from(node) << 40) ^ (index as u64) << 32;
    let node_state: Node<ClientWaiter> = Node::boot(file.node_config(node), file.core_config(), seed, boot)
        .map_err(|e| format!("shard {index}: {e}"))?;

    let shared = Rc::new(Shared {
        node,
        executor: index,
        config_summary: config_summary(&file),
        file: file.clone(),
        monitor: monitor.clone(),
        shard: RefCell::new(None),
        senders,
        mesh_waiters: RefCell::new(HashMap::new()),
        next_token: Cell::new(0),
        outbox: RefCell::new(VecDeque::new()),
        outbox_kick: Notify::default(),
        next_client_id: Cell::new(1),
        clients: Cell::new(0),
        turns: turns::Turns::default(),
    });
    let shard: ShardRef =
        Rc::new(RefCell::new(Shard::new(index, node_state, Rc::new(wal), shared.clone(), initialized)));
    *shared.shard.borrow_mut() = Some(shard.clone());
    if let Some(settings) = &file.trace {
        let mut s = shard.borrow_mut();
        let wall_start_us = util::unix_micros().saturating_sub(s.now_us());
        let trace = trace::ShardTrace::open(settings, &file, node, index, wall_start_us, initialized)
            .map_err(|e| format!("shard {index}: {e}"))?;
        server_log!(node, index, "writing the protocol trace to {}", settings.path(node, index).display());
        s.trace = Some(trace);
    }

    // Peer links: dial peers with higher ids, accept the lower ones.
    let ctx = LinkContext {
        cluster_id: file.cluster_id.clone(),
        node,
        shard: index,
        shard_ref: shard.clone(),
        key: Rc::new((*peer_key).clone()),
        shards: file.shards as u32,
        members: {
            let mut ids = file.member_ids();
            ids.sort_unstable();
            ids
        },
    };
    let metrics = monitor.shards[index].clone();
    let mut accepted = Vec::new();
    for peer in file.nodes.iter().filter(|n| n.id != node) {
        let t = &file.tuning;
        let link = Rc::new(Link::new(peer.id, t.peer_write_coalescing, t.peer_queue_bytes_max, metrics.clone()));
        shard.borrow_mut().links.insert(peer.id, link.clone());
        if peer.id > node {
            let addr = links::resolve(&peer.host, peer.peer_port + index as u16)
                .map_err(|e| format!("peer node {}: {e}", peer.id))?;
            glommio::spawn_local(dial_forever(ctx.clone(), link, addr)).detach();
        } else {
            accepted.push(link);
        }
    }
    let peer_listener = ports::into_glommio(listeners.peer);
    glommio::spawn_local(accept_forever(ctx, peer_listener, accepted)).detach();

    glommio::spawn_local(shard::run_driver(shard.clone())).detach();
    glommio::spawn_local(shard::run_syncer(shard.clone())).detach();
    glommio::spawn_local(shard::run_ticker(shard.clone(), file.tuning.tick_ms)).detach();
    spawn_mesh_tasks(shared.clone(), receivers);
    if let Some(listener) = listeners.metrics {
        glommio::spawn_local(serve_metrics(ports::into_glommio(listener), monitor.clone())).detach();
    }
    shard.borrow_mut().kick.notify();

    let listener = ports::into_glommio(listeners.client);
    if executors::now_serving(&monitor, index) {
        server_log!(node, "-", "ready: serving RESP clients on {}:{}", spec.host, spec.client_port);
    }
    loop {
        // A backlog of connections is accepted without the queue ever
        // draining: give way to the rest of the executor (`turns`).
        shared.turns.give_way(Instant::now()).await;
        match listener.accept().await {
            Ok(stream) => {
                if shared.clients.get() >= file.tuning.clients_max {
                    glommio::spawn_local(client::refuse(stream)).detach();
                    continue;
                }
                glommio::spawn_local(client::serve(shared.clone(), stream)).detach();
            }
            Err(e) => {
                server_log!(node, index, "accepting a client failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn spawn_mesh_tasks(shared: Rc<Shared>, mut receivers: Receivers<MeshMessage>) {
    for (_, receiver) in receivers.streams() {
        let shared = shared.clone();
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                match message {
                    MeshMessage::Request { from, token, command, deadline } => {
                        let shard = shared.shard.borrow().clone().expect("set at start");
                        // Backpressure: hold the channel (its senders block)
                        // while the node holds requests for its disk.
                        loop {
                            let gate = {
                                let s = shard.borrow();
                                if s.node.taking_requests() {
                                    break;
                                }
                                s.accepting.clone()
                            };
                            gate.wait().await;
                        }
                        let mut s = shard.borrow_mut();
                        let waiter = Waiter::Client(ClientWaiter::Mesh { executor: from, token });
                        let request = Request::new(command, waiter, s.deadline_us(deadline));
                        s.submit(request);
                    }
                    MeshMessage::Reply { token, reply } => {
                        if let Some(sender) = shared.take_mesh_waiter(token) {
                            sender.send(reply);
                        }
                    }
                }
            }
        })
        .detach();
    }
    glommio::spawn_local(async move {
        loop {
            shared.outbox_kick.wait().await;
            loop {
                let next = shared.outbox.borrow_mut().pop_front();
                let Some((to, message)) = next else { break };
                let _ = shared.senders.send_to(to, message).await;
            }
        }
    })
    .detach();
}

/// Metrics connections open at once at most, per node; one more is
/// answered 503 and closed. A scraper needs one or two.
pub const METRICS_CONNECTIONS_MAX: usize = 64;
/// How long a metrics client may take to send its request, and to take
/// the answer, before its connection is closed.
const METRICS_IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A minimal HTTP/1.0 responder for Prometheus: `GET /metrics`.
async fn serve_metrics(listener: TcpListener, monitor: Arc<Monitor>) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let Ok(mut stream) = listener.accept().await else {
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        // Counted here, in accept order, so the connection one over the
        // limit is the one refused.
        let full = open.get() >= METRICS_CONNECTIONS_MAX;
        open.set(open.get() + 1);
        let monitor = monitor.clone();
        let open = open.clone();
        glommio::spawn_local(async move {
            let _ = stream.set_read_timeout(Some(METRICS_IO_TIMEOUT));
            let _ = stream.set_write_timeout(Some(METRICS_IO_TIMEOUT));
            let response = if full {
                let body = format!("too many metrics connections open (at most {METRICS_CONNECTIONS_MAX})\n");
                format!("HTTP/1.0 503 Service Unavailable\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            } else {
                metrics_response(&mut stream, &monitor).await
            };
            if !response.is_empty() {
                let _ = stream.write_all(response.as_bytes()).await;
            }
            let _ = stream.close().await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Read one request (at most 8 KiB of it) and say what to answer: the
/// metrics, a 404, or nothing (the client closed, or timed out).
async fn metrics_response(stream: &mut glommio::net::TcpStream, monitor: &Monitor) -> String {
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return String::new(),
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    if request.starts_with(b"GET /metrics") {
        let body = monitor.encode_metrics();
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.0 404 Not Found\r\nContent-Length: 22\r\n\r\ntry GET /metrics here\n".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::server::config::Secret;

    #[test]
    fn a_cluster_beyond_loopback_does_not_start_without_a_peer_secret() {
        let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
        assert!(peer_key(&file, 1).is_ok(), "all on loopback: a warning only");
        file.nodes[2].host = "10.0.0.3".into();
        let error = peer_key(&file, 1).unwrap_err();
        assert!(error.contains("no peer secret") && error.contains("peer_secret_file"), "{error}");
        file.peer_secret = Some(Secret::new("a secret of 32 random bytes, say"));
        assert!(peer_key(&file, 1).is_ok());
    }

    #[test]
    fn info_server_names_the_injected_bug_or_none() {
        let mut file = ClusterFile::local(3, 7000, 1, Path::new("/d")).unwrap();
        assert!(config_summary(&file).ends_with("\r\ninjected_bug:none"), "{}", config_summary(&file));
        file.tuning.unsafe_inject_bug = Some("stale-lease-reads".into());
        assert!(config_summary(&file).ends_with("\r\ninjected_bug:stale-lease-reads"));
    }
}
