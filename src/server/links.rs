//! Peer links: one TCP connection per (peer node, shard), reused for the
//! life of both processes. The node with the lower id dials, the other
//! accepts; both directions share the connection.
//!
//! A link starts with a handshake (cluster id, node id, shard, protocol
//! version, nonce, cluster file, state-machine formats) from the dialer;
//! the acceptor answers with a challenge (its nonce and its proof of the
//! peer secret), the dialer checks that proof and sends its own, and the
//! acceptor checks it and answers Accepted (`net::peer`,
//! `net::peer_auth`). Whichever side finds something wrong (another
//! cluster, node or shard, another protocol version or state-machine
//! format, another cluster file, a wrong proof) tells the other why, logs
//! the reason and drops the connection;
//! neither the secret nor a proof ever appears in a log. After it, both sides exchange
//! CRC-checked frames (`net::peer`). Outgoing frames are encoded into two
//! queues, one for the protocol's own messages (Paxos) and one for client
//! data (forwarded requests and their answers), and written by one task:
//! every Paxos frame queued since its last write, then forwarded frames
//! up to [`FORWARD_SLICE_BYTES`], go out in a single write (coalescing),
//! unless coalescing is off. So a heartbeat never waits behind more than
//! a slice of client data: a follower's forwarded GETs of a large value
//! once queued tens of megabytes ahead of the leader's heartbeats.
//!
//! While a link is down its messages are dropped, and so is whatever
//! exceeds `peer_queue_bytes_max` (per queue): Paxos tolerates loss (the
//! core retransmits on its timers), a lost forward or answer is forwarded
//! again (`node`'s `forward_retry_ticks`), and memory stays bounded.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::metrics::ShardMetrics;
use super::shard::ShardRef;
use super::util::{LogLimiter, Notify};
use crate::kv::FORMATS;
use crate::net::peer::{
    decode_frame, decode_handshake, decode_handshake_proof, decode_handshake_reply, encode_frame, encode_handshake,
    encode_handshake_proof, encode_handshake_reply, split_frame, write_frame_body, Handshake, HandshakeProof,
    HandshakeReply, PeerFrame, NONCE_BYTES, PROTOCOL_VERSION,
};
use crate::net::peer_auth::{PeerKey, Role, Transcript};
use crate::paxos::NodeId;
use crate::server_log;

/// Frames larger than this end the connection (a catch-up reply or a
/// recovery Accept is the largest legitimate frame).
pub const FRAME_BYTES_MAX: usize = 256 << 20;
/// Handshake frames are tiny: garbage claiming more is refused early.
const HANDSHAKE_BYTES_MAX: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How long a peer link's reader works through frames already in its
/// socket, without waiting once, before it steps aside: well inside the heartbeat interval and
/// election timeout (10 ms and 150 ms by default). Measured on our own
/// clock, not by glommio's preemption timer (see `executors`).
const PEER_READ_SLICE: Duration = Duration::from_millis(5);
/// Refused peer connections logged per second at most, per shard.
const REFUSALS_LOGGED_PER_SECOND: u32 = 10;
/// Forwarded frames per write at most, after the Paxos frames (a larger
/// frame goes alone).
pub const FORWARD_SLICE_BYTES: usize = 256 * 1024;

/// The sending side of the link to one peer, for one shard.
pub struct Link {
    pub peer: NodeId,
    /// Paxos frames.
    out: RefCell<BytesMut>,
    /// Where each frame in `out` ends (one write each when not coalescing).
    out_frames: RefCell<Vec<usize>>,
    /// Forwarded requests and answers, in order, and each one's length.
    forwards: RefCell<BytesMut>,
    forward_frames: RefCell<VecDeque<usize>>,
    /// Bumped per connection; a connection's tasks stop when it moves on.
    generation: Cell<u64>,
    up: Cell<bool>,
    /// The current connection's writer waits on it. Each connection gets a
    /// fresh one: a single shared waker slot would let an old writer's
    /// registration overwrite the new writer's, and the link would go silent.
    wake_writer: RefCell<Notify>,
    coalesce: bool,
    queue_bytes_max: usize,
    metrics: ShardMetrics,
}

impl Link {
    pub fn new(peer: NodeId, coalesce: bool, queue_bytes_max: usize, metrics: ShardMetrics) -> Link {
        Link {
            peer,
            out: RefCell::new(BytesMut::with_capacity(64 * 1024)),
            out_frames: RefCell::new(Vec::new()),
            forwards: RefCell::new(BytesMut::new()),
            forward_frames: RefCell::new(VecDeque::new()),
            generation: Cell::new(0),
            up: Cell::new(false),
            wake_writer: RefCell::new(Notify::default()),
            coalesce,
            queue_bytes_max,
            metrics,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.get()
    }

    /// Queue a frame; dropped while the link is down or its queue is full.
    pub fn send(&self, frame: &PeerFrame) {
        if !self.up.get() {
            return;
        }
        let forward = !matches!(frame, PeerFrame::Paxos(_));
        let mut out = if forward { self.forwards.borrow_mut() } else { self.out.borrow_mut() };
        if out.len() >= self.queue_bytes_max {
            self.metrics.peer_errors.inc();
            return;
        }
        let start = out.len();
        encode_frame(frame, &mut out);
        if forward {
            self.forward_frames.borrow_mut().push_back(out.len() - start);
        } else if !self.coalesce {
            self.out_frames.borrow_mut().push(out.len());
        }
        drop(out);
        self.wake_writer.borrow().notify();
    }

    /// What the writer writes next: every queued Paxos frame, then the
    /// oldest forwarded frames up to [`FORWARD_SLICE_BYTES`] in all (at
    /// least one, if there are no Paxos frames); and where each frame ends
    /// in it, when not coalescing. Empty when nothing is queued.
    fn next_write(&self) -> (Bytes, Vec<usize>) {
        let mut data = self.out.borrow_mut().split();
        let mut ends = std::mem::take(&mut *self.out_frames.borrow_mut());
        let mut lens = self.forward_frames.borrow_mut();
        let mut take = 0;
        let mut frames = 0;
        while let Some(&len) = lens.get(frames) {
            let first = data.is_empty() && frames == 0;
            if !first && data.len() + take + len > FORWARD_SLICE_BYTES {
                break;
            }
            take += len;
            frames += 1;
        }
        if frames > 0 {
            let slice = self.forwards.borrow_mut().split_to(take);
            if data.is_empty() {
                data = slice;
            } else {
                data.extend_from_slice(&slice);
            }
            if !self.coalesce {
                let mut end = data.len() - take;
                for len in lens.drain(..frames) {
                    end += len;
                    ends.push(end);
                }
            } else {
                lens.drain(..frames);
            }
        }
        (data.freeze(), ends)
    }

    /// Make a new connection current; returns its generation and the
    /// notifier its writer waits on. The previous writer is woken to exit.
    fn attach(&self) -> (u64, Notify) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let notify = Notify::default();
        std::mem::replace(&mut *self.wake_writer.borrow_mut(), notify.clone()).notify();
        self.clear();
        self.up.set(true);
        self.metrics.peer_connects.inc();
        (generation, notify)
    }

    fn clear(&self) {
        self.out.borrow_mut().clear();
        self.out_frames.borrow_mut().clear();
        self.forwards.borrow_mut().clear();
        self.forward_frames.borrow_mut().clear();
    }

    fn detach(&self, generation: u64) -> bool {
        if self.generation.get() != generation {
            return false; // a newer connection already replaced this one
        }
        self.up.set(false);
        self.clear();
        self.wake_writer.borrow().notify();
        true
    }
}

/// What a link task needs to know about its own side.
#[derive(Clone)]
pub struct LinkContext {
    pub cluster_id: String,
    pub node: NodeId,
    pub shard: usize,
    pub shard_ref: ShardRef,
    /// The cluster's peer secret, which both sides of a link prove.
    pub key: Rc<PeerKey>,
    /// This node's cluster file: shard count and member ids, ascending
    /// (`Handshake::members`).
    pub shards: u32,
    pub members: Vec<NodeId>,
}

impl LinkContext {
    fn handshake(&self, nonce: [u8; NONCE_BYTES]) -> Handshake {
        Handshake {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node,
            shard: self.shard as u32,
            protocol_version: PROTOCOL_VERSION,
            nonce,
            shards: self.shards,
            members: self.members.clone(),
            formats: FORMATS,
        }
    }

    /// The transcript of a handshake on this shard between `dialer` and `acceptor`.
    fn transcript<'a>(
        &'a self,
        dialer: NodeId,
        acceptor: NodeId,
        dialer_nonce: &'a [u8; NONCE_BYTES],
        acceptor_nonce: &'a [u8; NONCE_BYTES],
    ) -> Transcript<'a> {
        Transcript {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: &self.cluster_id,
            dialer,
            acceptor,
            shard: self.shard as u32,
            dialer_nonce,
            acceptor_nonce,
        }
    }
}

/// A fresh nonce from the OS for one handshake.
fn fresh_nonce() -> Result<[u8; NONCE_BYTES], String> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::getrandom(&mut nonce).map_err(|e| format!("drawing a handshake nonce: {e}"))?;
    Ok(nonce)
}

/// What the log and the other side are told when the proofs disagree.
const SECRETS_DIFFER: &str =
    "its proof of the peer secret is wrong: the two nodes have different peer secrets (peer_secret, peer_secret_file)";

/// Read one whole frame body, with a size limit. `scratch` is the
/// connection's read buffer, reused for every read.
async fn read_frame<R: futures_lite::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    scratch: &mut [u8],
    limit: usize,
) -> Result<bytes::Bytes, String> {
    loop {
        if let Some(body) = split_frame(buf, limit).map_err(|e| e.to_string())? {
            // Copy the frame out: its commands may live in the log until the
            // next snapshot, and a zero-copy slice would pin the whole read
            // buffer for that long (and make every later read allocate a
            // fresh one). Dropping the slice here lets `buf` reuse its space.
            return Ok(bytes::Bytes::copy_from_slice(&body));
        }
        match reader.read(scratch).await {
            Err(e) => return Err(e.to_string()),
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => buf.extend_from_slice(&scratch[..n]),
        }
    }
}

/// Read one handshake frame (small, and due within [`HANDSHAKE_TIMEOUT`]).
async fn read_handshake_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<bytes::Bytes, String> {
    glommio::timer::timeout(HANDSHAKE_TIMEOUT, async {
        read_frame(stream, buf, &mut [0u8; HANDSHAKE_BYTES_MAX], HANDSHAKE_BYTES_MAX)
            .await
            .map_err(|e| glommio::GlommioError::IoError(std::io::Error::other(e)))
    })
    .await
    .map_err(|e| e.to_string())
}

/// Write one handshake frame whose body `encode` appends.
async fn write_handshake_frame(stream: &mut TcpStream, encode: impl FnOnce(&mut BytesMut)) -> Result<(), String> {
    let mut out = BytesMut::new();
    write_frame_body(&mut out, encode);
    stream.write_all(&out).await.map_err(|e| e.to_string())
}

/// Resolve a peer's address once, at start (a blocking lookup must not
/// stall the executor later).
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))
}

/// Keep a connection to `peer` (whose id is higher than ours) up forever.
pub async fn dial_forever(ctx: LinkContext, link: Rc<Link>, addr: SocketAddr) {
    let (host, port) = (addr.ip().to_string(), addr.port());
    let mut backoff = BACKOFF_MIN;
    let mut last_error = String::new();
    loop {
        match dial_once(&ctx, addr, link.peer).await {
            Ok((stream, buffered)) => {
                backoff = BACKOFF_MIN;
                last_error.clear();
                server_log!(ctx.node, ctx.shard, "peer node {} up ({host}:{port})", link.peer);
                run_connection(&ctx, &link, stream, buffered).await;
                server_log!(ctx.node, ctx.shard, "peer node {} down", link.peer);
            }
            Err(e) => {
                if e != last_error {
                    server_log!(ctx.node, ctx.shard, "no link to peer node {} at {host}:{port}: {e}", link.peer);
                    last_error = e;
                }
            }
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connect to `peer` and run the dialer's side of the handshake: send our
/// nonce, check the acceptor's identity and proof before proving anything
/// ourselves, then prove and wait to be accepted.
async fn dial_once(ctx: &LinkContext, addr: SocketAddr, peer: NodeId) -> Result<(TcpStream, BytesMut), String> {
    let mut stream = TcpStream::connect_timeout(addr, HANDSHAKE_TIMEOUT).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let dialer_nonce = fresh_nonce()?;
    let hello = ctx.handshake(dialer_nonce);
    write_handshake_frame(&mut stream, |body| encode_handshake(&hello, body)).await?;
    let mut buf = BytesMut::new();
    let wrong_peer = |node_id: u32, shard: u32| {
        format!(
            "{addr} answered as node {node_id} shard {shard}, not node {peer} shard {}: check the cluster file",
            ctx.shard
        )
    };
    let reply = read_handshake_frame(&mut stream, &mut buf).await.map_err(|e| format!("handshake: {e}"))?;
    let (acceptor_nonce, acceptor_proof) =
        match decode_handshake_reply(&reply).map_err(|e| format!("handshake reply: {e}"))? {
            HandshakeReply::Challenge { node_id, shard, nonce, proof }
                if node_id == peer && shard as usize == ctx.shard =>
            {
                (nonce, proof)
            }
            HandshakeReply::Challenge { node_id, shard, .. } => return Err(wrong_peer(node_id, shard)),
            HandshakeReply::Accepted { .. } => return Err("accepted us without a challenge: not a paxoskv peer".into()),
            HandshakeReply::Refused(reason) => return Err(format!("refused our handshake: {reason}")),
        };
    let transcript = ctx.transcript(ctx.node, peer, &dialer_nonce, &acceptor_nonce);
    if !ctx.key.verify(Role::Acceptor, &transcript, &acceptor_proof) {
        let refusal = HandshakeProof::Refused(format!("node {} refused node {peer}: {SECRETS_DIFFER}", ctx.node));
        // Best effort: the acceptor logs the reason if it gets it.
        let _ = write_handshake_frame(&mut stream, |body| encode_handshake_proof(&refusal, body)).await;
        return Err(format!("refused {addr}: {SECRETS_DIFFER}"));
    }
    let proof = HandshakeProof::Proof(ctx.key.prove(Role::Dialer, &transcript));
    write_handshake_frame(&mut stream, |body| encode_handshake_proof(&proof, body)).await?;
    let reply = read_handshake_frame(&mut stream, &mut buf).await.map_err(|e| format!("handshake: {e}"))?;
    match decode_handshake_reply(&reply).map_err(|e| format!("handshake reply: {e}"))? {
        HandshakeReply::Accepted { node_id, shard } if node_id == peer && shard as usize == ctx.shard => {
            Ok((stream, buf))
        }
        HandshakeReply::Accepted { node_id, shard } => Err(wrong_peer(node_id, shard)),
        HandshakeReply::Challenge { .. } => Err("a second challenge in one handshake".into()),
        HandshakeReply::Refused(reason) => Err(format!("refused our handshake: {reason}")),
    }
}

/// Accept peer connections for this shard; each must handshake first.
/// Refusals are logged at most ten a second (then with a count of the ones
/// left out): anyone can open connections to a peer port.
pub async fn accept_forever(ctx: LinkContext, listener: TcpListener, links: Vec<Rc<Link>>) {
    let refusals = Rc::new(LogLimiter::new(Duration::from_secs(1), REFUSALS_LOGGED_PER_SECOND));
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                server_log!(ctx.node, ctx.shard, "peer accept failed: {e}");
                glommio::timer::sleep(BACKOFF_MIN).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let links = links.clone();
        let refusals = refusals.clone();
        glommio::spawn_local(async move {
            let peer_addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
            match accept_handshake(&ctx, stream).await {
                Ok((peer, stream, buffered)) => {
                    let Some(link) = links.iter().find(|l| l.peer == peer).cloned() else { return };
                    server_log!(ctx.node, ctx.shard, "peer node {peer} up (from {peer_addr})");
                    run_connection(&ctx, &link, stream, buffered).await;
                    server_log!(ctx.node, ctx.shard, "peer node {peer} down");
                }
                Err(e) => {
                    ctx.shard_ref.borrow().metrics.peer_errors.inc();
                    match refusals.admit(Instant::now()) {
                        Some(0) => server_log!(ctx.node, ctx.shard, "refused a peer connection from {peer_addr}: {e}"),
                        Some(left_out) => server_log!(
                            ctx.node,
                            ctx.shard,
                            "refused a peer connection from {peer_addr}: {e} ({left_out} more refused since the last \
                             line, not logged; paxoskv_peer_errors_total counts them)"
                        ),
                        None => {}
                    }
                }
            }
        })
        .detach();
    }
}

/// The acceptor's side of the handshake: check who dials, challenge it
/// with our nonce and proof, check its proof, accept.
async fn accept_handshake(ctx: &LinkContext, mut stream: TcpStream) -> Result<(NodeId, TcpStream, BytesMut), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    let body = read_handshake_frame(&mut stream, &mut buf).await.map_err(|e| format!("no valid handshake: {e}"))?;
    let handshake = match decode_handshake(&body) {
        Ok(handshake) => handshake,
        Err(e) => {
            // Tell the other side why (a node of another version can still read a refusal).
            return Err(refuse(&mut stream, format!("bad handshake: {e}")).await);
        }
    };
    let refusal = if handshake.protocol_version != PROTOCOL_VERSION {
        Some(format!("protocol version {} (this node speaks {PROTOCOL_VERSION})", handshake.protocol_version))
    } else if handshake.cluster_id != ctx.cluster_id {
        // The dialer has proved nothing yet: it learns that its cluster id
        // is not ours, not what ours is; our log names both.
        let told = format!("cluster id {:?}, not this node's cluster", handshake.cluster_id);
        let _ = refuse(&mut stream, told).await;
        return Err(format!("cluster id {:?} (this node is in cluster {:?})", handshake.cluster_id, ctx.cluster_id));
    } else if handshake.shards != ctx.shards || handshake.members != ctx.members {
        let list = |ids: &[NodeId]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        Some(format!(
            "cluster files differ: node {}'s lists nodes {} and {} shards, node {}'s lists nodes {} and {} shards \
             (every node needs the same [[nodes]] and shards)",
            handshake.node_id,
            list(&handshake.members),
            handshake.shards,
            ctx.node,
            list(&ctx.members),
            ctx.shards
        ))
    } else if handshake.formats != FORMATS {
        Some(format!(
            "builds differ: node {} speaks {}, node {} speaks {} (replicas of different builds would apply the log \
             differently; upgrade one node at a time: nodes of the new build link once they are a majority)",
            handshake.node_id, handshake.formats, ctx.node, FORMATS
        ))
    } else if handshake.shard as usize != ctx.shard {
        Some(format!("shard {} on the port of shard {}", handshake.shard, ctx.shard))
    } else if !ctx.members.contains(&handshake.node_id) || handshake.node_id == ctx.node {
        Some(format!("node id {}, which is not a peer of node {}", handshake.node_id, ctx.node))
    } else if handshake.node_id > ctx.node {
        Some(format!("node {} dialed node {}, but the lower id dials", handshake.node_id, ctx.node))
    } else {
        None
    };
    if let Some(reason) = refusal {
        return Err(refuse(&mut stream, reason).await);
    }
    // Unproven until its proof checks out: "claims to be".
    let dialer = handshake.node_id;
    let acceptor_nonce = fresh_nonce()?;
    let transcript = ctx.transcript(dialer, ctx.node, &handshake.nonce, &acceptor_nonce);
    let challenge = HandshakeReply::Challenge {
        node_id: ctx.node,
        shard: ctx.shard as u32,
        nonce: acceptor_nonce,
        proof: ctx.key.prove(Role::Acceptor, &transcript),
    };
    write_handshake_frame(&mut stream, |body| encode_handshake_reply(&challenge, body)).await?;
    let body = read_handshake_frame(&mut stream, &mut buf)
        .await
        .map_err(|e| format!("a peer claiming to be node {dialer} sent no proof: {e}"))?;
    match decode_handshake_proof(&body) {
        Err(e) => return Err(refuse(&mut stream, format!("bad handshake proof: {e}")).await),
        Ok(HandshakeProof::Refused(reason)) => {
            return Err(format!("a peer claiming to be node {dialer} refused our challenge: {reason}"))
        }
        Ok(HandshakeProof::Proof(proof)) if ctx.key.verify(Role::Dialer, &transcript, &proof) => {}
        Ok(HandshakeProof::Proof(_)) => {
            let reason = format!("node {} refused a peer claiming to be node {dialer}: {SECRETS_DIFFER}", ctx.node);
            return Err(refuse(&mut stream, reason).await);
        }
    }
    let accepted = HandshakeReply::Accepted { node_id: ctx.node, shard: ctx.shard as u32 };
    write_handshake_frame(&mut stream, |body| encode_handshake_reply(&accepted, body)).await?;
    Ok((dialer, stream, buf))
}

/// Tell the dialer why it is refused (best effort: it logs the reason if it
/// gets it) and return the reason for our own log.
async fn refuse(stream: &mut TcpStream, reason: String) -> String {
    let reply = HandshakeReply::Refused(reason.clone());
    let _ = write_handshake_frame(stream, |body| encode_handshake_reply(&reply, body)).await;
    reason
}

/// Write one of [`Link::next_write`]'s buffers: in one write, or one per
/// frame when not coalescing (`boundaries`: where each frame ends).
async fn write_frames(
    link: &Link,
    writer: &mut (impl futures_lite::AsyncWrite + Unpin),
    data: &[u8],
    boundaries: Vec<usize>,
) -> std::io::Result<()> {
    link.metrics.peer_bytes_out.inc_by(data.len() as u64);
    if link.coalesce || boundaries.is_empty() {
        link.metrics.peer_writes.inc();
        return writer.write_all(data).await;
    }
    let mut start = 0;
    for end in boundaries {
        link.metrics.peer_writes.inc();
        writer.write_all(&data[start..end]).await?;
        start = end;
    }
    Ok(())
}

/// Run an established connection until it fails: a reader feeding the
/// shard, and a writer draining the link's queue.
async fn run_connection(ctx: &LinkContext, link: &Rc<Link>, stream: TcpStream, mut buf: BytesMut) {
    let fd = stream.as_raw_fd();
    let (generation, wake) = link.attach();
    ctx.shard_ref.borrow_mut().on_link_up(link.peer);
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let writer_link = link.clone();
    let writer_task = glommio::spawn_local(async move {
        let link = writer_link;
        'connection: loop {
            wake.wait().await;
            loop {
                if link.generation.get() != generation || !link.up.get() {
                    break 'connection;
                }
                let (data, boundaries) = link.next_write();
                if data.is_empty() {
                    break;
                }
                if write_frames(&link, &mut writer, &data, boundaries).await.is_err() {
                    break 'connection;
                }
            }
        }
        // Unblock the reader: the connection is over.
        // SAFETY: shutdown(2) on a descriptor this task's connection owns; at
        // worst it fails with EBADF.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    })
    .detach();
    let peer = link.peer;
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    // When the reader last had to wait (for the socket, or for the disk
    // at the gate below): the start of its current run of work.
    let mut slice_start = Instant::now();
    let reason = loop {
        let read = read_frame(&mut reader, &mut buf, &mut scratch, FRAME_BYTES_MAX);
        futures_lite::pin!(read);
        let body = match futures_lite::future::poll_once(&mut read).await {
            Some(result) => result,
            None => {
                let result = read.await;
                slice_start = Instant::now();
                result
            }
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => break e,
        };
        match decode_frame(body) {
            Ok(frame) => ctx.shard_ref.borrow_mut().on_peer_frame(peer, frame),
            Err(e) => break format!("undecodable frame: {e}"),
        }
        // No gate here: while the disk is behind, the node holds or drops
        // the entries its peers send and steps the rest (acks, heartbeats,
        // answers for its clients) at once (`Node::on_peer_frame`).
        if link.generation.get() != generation {
            break "replaced by a newer connection".into();
        }
        // A socket full of frames (a peer's backlog after a partition
        // heals) reads without ever waiting: step aside once it has
        // worked a slice without a wait, so that the driver sends what the
        // node has to say, and the ticker keeps the heartbeats going,
        // while the backlog is worked through. A reader that waits between
        // frames (any ordinary load) never steps aside.
        if slice_start.elapsed() >= PEER_READ_SLICE {
            super::turns::step_aside().await;
            slice_start = Instant::now();
        }
    };
    if reason != "connection closed" && !reason.contains("replaced") {
        ctx.shard_ref.borrow().metrics.peer_errors.inc();
        server_log!(ctx.node, ctx.shard, "dropping the link to node {peer}: {reason}");
    }
    if link.detach(generation) {
        ctx.shard_ref.borrow_mut().on_link_down(peer);
    }
    drop(writer_task);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{Ballot, Heartbeat, Message};
    use crate::server::metrics::Monitor;

    fn link(coalesce: bool) -> Link {
        let link = Link::new(2, coalesce, 64 << 20, Monitor::new(1, 1).shards[0].clone());
        link.up.set(true);
        link
    }

    fn heartbeat(round: u64) -> PeerFrame {
        PeerFrame::Paxos(Message::Heartbeat(Heartbeat { ballot: Ballot::new(1, 1), commit: 0, round, horizon: 0 }))
    }

    fn reply(id: u64, bytes: usize) -> PeerFrame {
        PeerFrame::ForwardReply { id, reply: Bytes::from(vec![7u8; bytes]) }
    }

    /// The frames in one write, in order.
    fn frames(data: Bytes) -> Vec<PeerFrame> {
        let mut buf = BytesMut::from(&data[..]);
        let mut frames = Vec::new();
        while let Some(body) = split_frame(&mut buf, FRAME_BYTES_MAX).expect("well formed") {
            frames.push(decode_frame(body).expect("decodes"));
        }
        assert!(buf.is_empty(), "whole frames only");
        frames
    }

    /// Seen on real processes: a client at a follower pipelining GETs of
    /// a 900 KB value put tens of megabytes of answers in the leader's
    /// queue to that follower, ahead of its heartbeats, and the follower
    /// stopped hearing its leader. A heartbeat now goes out in the next
    /// write, whatever client data waits.
    #[test]
    fn a_heartbeat_goes_out_before_forwarded_data_queued_ahead_of_it() {
        let link = link(true);
        for id in 0..8 {
            link.send(&reply(id, 900_000));
        }
        link.send(&heartbeat(1));
        assert_eq!(frames(link.next_write().0), vec![heartbeat(1)]);
        for id in 0..8 {
            link.send(&heartbeat(id + 2));
            let got = frames(link.next_write().0);
            assert_eq!(got, vec![heartbeat(id + 2)], "the heartbeat alone: the answer is over a slice");
            assert_eq!(frames(link.next_write().0), vec![reply(id, 900_000)]);
        }
        assert!(link.next_write().0.is_empty());
    }

    #[test]
    fn small_forwards_ride_with_the_paxos_frames_a_slice_at_a_time_in_order() {
        let link = link(true);
        for id in 0..1_000 {
            link.send(&reply(id, 1_000));
        }
        link.send(&heartbeat(1));
        let mut all = Vec::new();
        loop {
            let (data, ends) = link.next_write();
            if data.is_empty() {
                break;
            }
            assert!(ends.is_empty(), "coalescing: one write");
            assert!(data.len() <= FORWARD_SLICE_BYTES, "{} bytes in one write", data.len());
            all.extend(frames(data));
        }
        let expected: Vec<PeerFrame> =
            std::iter::once(heartbeat(1)).chain((0..1_000).map(|id| reply(id, 1_000))).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn without_coalescing_each_frame_of_both_queues_is_its_own_write() {
        let link = link(false);
        link.send(&reply(1, 10));
        link.send(&heartbeat(1));
        link.send(&heartbeat(2));
        link.send(&reply(2, 20));
        let (data, ends) = link.next_write();
        let mut start = 0;
        let mut each = Vec::new();
        for end in ends {
            each.extend(frames(data.slice(start..end)).into_iter().map(|f| vec![f]));
            start = end;
        }
        assert_eq!(start, data.len());
        assert_eq!(each, vec![vec![heartbeat(1)], vec![heartbeat(2)], vec![reply(1, 10)], vec![reply(2, 20)]]);
    }
}
