//! One shard of one node: the shard's replica of its Multi-Paxos group, its
//! WAL, its store, and the glue that drives them (ARCHITECTURE.md §2, §5).
//!
//! Three tasks share the `Shard` on its executor:
//! - the *driver* drains `Replica::ready()` whenever an input kicked it:
//!   sends `send_now`, appends `persist` to the WAL, applies `committed`,
//!   answers reads and hands aborted commands back to routing;
//! - the *syncer* makes appended records durable (group commit: one fsync
//!   covers every Ready appended meanwhile), then releases those Readys'
//!   `send_after_persist` and calls `on_persisted`, in order;
//! - the *ticker* turns wall-clock time into core ticks, catching up on
//!   ticks it missed so that the core's sense of time never runs slow (a
//!   leader whose ticks ran slow would overestimate its lease).
//!
//! Client requests reach `submit` from this executor's connections, from
//! other executors (the channel mesh) or from other nodes (forwarded over a
//! peer link). A request this replica cannot serve because another node
//! leads is forwarded there; with no leader known it is parked and retried
//! on every tick until its deadline.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::links::Link;
use super::metrics::ShardMetrics;
use super::util::{Notify, ReplySender};
use super::Shared;
use crate::kv::{Command, KvStore, Op, Reply, SessionId};
use crate::net::peer::{ForwardRefusal, PeerFrame};
use crate::paxos::{Envelope, Event, NodeId, ProposeError, ReadOutcome, Ready, Replica, RoleKind, Slot};
use crate::server_log;
use crate::storage::Wal;

/// Ticks between retries of parked requests while the leader hint is unchanged.
const PARKED_RETRY_TICKS: u64 = 10;

/// Client sessions each shard's store remembers (exactly-once retries).
pub const SESSIONS_MAX: usize = 100_000;

/// Who waits for a request's reply.
pub enum Waiter {
    /// A connection on this executor.
    Local(ReplySender<Reply>),
    /// A connection on another executor of this node (reply over the mesh).
    Mesh { executor: usize, token: u64 },
    /// Another node forwarded the request to us as leader.
    Remote { peer: NodeId, id: u64 },
}

/// A client request on its way to a slot (or a read).
pub struct Request {
    pub command: Command,
    pub waiter: Waiter,
    pub deadline: Instant,
    /// Arrival order at this shard (0: not yet arrived). Parked requests
    /// are kept in this order, so retries do not reorder a client's commands.
    arrival: u64,
    /// The request was handed to another node at least once: it may have
    /// been applied there, so a timeout must not claim otherwise.
    left_node: bool,
}

impl Request {
    pub fn new(command: Command, waiter: Waiter, deadline: Instant) -> Request {
        Request { command, waiter, deadline, arrival: 0, left_node: false }
    }
}

struct Waiting {
    waiter: Waiter,
    deadline: Instant,
}

#[derive(Default)]
struct SessionWaiting {
    writes: usize,
    held_reads: VecDeque<Request>,
}

struct WaitingRead {
    session: SessionId,
    op: Op,
    waiter: Waiter,
    deadline: Instant,
}

/// A request this node forwarded to `leader`, kept to retry it elsewhere.
struct Forwarded {
    request: Request,
    leader: NodeId,
}

/// A Ready whose records are appended but not yet durable.
struct Unsynced {
    wal_seq: u64,
    number: u64,
    sends: Vec<Envelope>,
}

pub struct Shard {
    pub node: NodeId,
    pub index: usize,
    pub replica: Replica,
    pub kv: KvStore,
    /// Slots below this were applied to `kv`.
    pub applied: Slot,
    wal: Rc<Wal>,
    /// The WAL sequence of the last append.
    wal_seq: u64,
    unsynced: VecDeque<Unsynced>,
    pub links: HashMap<NodeId, Rc<Link>>,
    waiting_writes: HashMap<(SessionId, u64), Waiting>,
    /// Per session: its writes in `waiting_writes`, and its reads held
    /// until those are applied. A connection's commands take effect in the
    /// order it sent them (Redis's pipelining contract): a read must see
    /// the writes pipelined before it, though they are not acknowledged yet.
    sessions_waiting: HashMap<SessionId, SessionWaiting>,
    released_reads: VecDeque<Request>,
    waiting_reads: HashMap<u64, WaitingRead>,
    next_read_id: u64,
    forwarded: HashMap<u64, Forwarded>,
    next_forward_id: u64,
    /// Requests waiting for a leader to be known, in arrival order.
    parked: VecDeque<Request>,
    arrivals: u64,
    /// Parked requests are retried every `PARKED_RETRY_TICKS`, or at once
    /// when the leader hint changes.
    parked_retry_leader: Option<NodeId>,
    parked_retry_ticks: u64,
    /// Wall-clock time drives the core's ticks (see `catch_up_ticks`).
    clock_start: Instant,
    tick_ms: u64,
    ticks_done: u64,
    pub kick: Notify,
    sync_kick: Notify,
    pub metrics: ShardMetrics,
    pub shared: Rc<Shared>,
    snapshot_every_slots: u64,
    snapshot_every_bytes: u64,
    /// Slots and command bytes applied since the last snapshot.
    since_snapshot_slots: u64,
    since_snapshot_bytes: u64,
}

pub type ShardRef = Rc<RefCell<Shard>>;

impl Shard {
    pub fn new(index: usize, replica: Replica, kv: KvStore, applied: Slot, wal: Rc<Wal>, shared: Rc<Shared>) -> Shard {
        let metrics = shared.monitor.shards[index].clone();
        Shard {
            node: shared.node,
            index,
            replica,
            kv,
            applied,
            wal,
            wal_seq: 0,
            unsynced: VecDeque::new(),
            links: HashMap::new(),
            waiting_writes: HashMap::new(),
            sessions_waiting: HashMap::new(),
            released_reads: VecDeque::new(),
            waiting_reads: HashMap::new(),
            next_read_id: 0,
            forwarded: HashMap::new(),
            next_forward_id: 0,
            parked: VecDeque::new(),
            arrivals: 0,
            parked_retry_leader: None,
            parked_retry_ticks: 0,
            clock_start: Instant::now(),
            tick_ms: shared.file.tuning.tick_ms,
            ticks_done: 0,
            kick: Notify::default(),
            sync_kick: Notify::default(),
            metrics,
            snapshot_every_slots: shared.file.tuning.snapshot_every_slots,
            snapshot_every_bytes: shared.file.tuning.snapshot_every_bytes,
            since_snapshot_slots: 0,
            since_snapshot_bytes: 0,
            shared,
        }
    }

    // ---- requests -----------------------------------------------------------

    /// Serve, forward or park a client request for this shard.
    pub fn submit(&mut self, mut request: Request) {
        self.arrivals += 1;
        request.arrival = self.arrivals;
        if !self.parked.is_empty() && !matches!(request.waiter, Waiter::Remote { .. }) {
            self.park(request); // keep a client's order behind earlier parked requests
            return;
        }
        self.try_submit(request);
    }

    /// Park a request until a leader is known, in arrival order.
    fn park(&mut self, request: Request) {
        let at = self.parked.partition_point(|r| r.arrival <= request.arrival);
        self.parked.insert(at, request);
    }

    fn try_submit(&mut self, request: Request) {
        let session = request.command.session;
        if request.command.op.is_read_only() {
            self.catch_up_ticks();
        }
        if request.command.op.is_read_only() {
            if let Some(waiting) = self.sessions_waiting.get_mut(&session) {
                waiting.held_reads.push_back(request);
                return;
            }
        }
        let result = if request.command.op.is_read_only() {
            let id = self.next_read_id;
            match self.replica.read(id) {
                Ok(()) => {
                    self.next_read_id += 1;
                    let Request { command, waiter, deadline, .. } = request;
                    self.waiting_reads.insert(id, WaitingRead { session, op: command.op, waiter, deadline });
                    self.metrics.reads_lease.inc();
                    Ok(())
                }
                Err(e) => Err((e, request)),
            }
        } else {
            match self.replica.propose(vec![request.command.encode()]) {
                Ok(()) => {
                    self.metrics.proposals.inc();
                    let key = (request.command.session, request.command.seq);
                    let Request { waiter, deadline, .. } = request;
                    if let Some(old) = self.waiting_writes.insert(key, Waiting { waiter, deadline }) {
                        // A retry of a command still waiting here: the new
                        // waiter takes over; the old one learns nothing more.
                        self.deliver(old.waiter, Reply::Error("ERR request superseded by its retry".into()));
                    } else {
                        self.sessions_waiting.entry(session).or_default().writes += 1;
                    }
                    Ok(())
                }
                Err(e) => Err((e, request)),
            }
        };
        match result {
            Ok(()) => self.kick.notify(),
            Err((ProposeError::NotLeader { leader }, request)) => self.route(request, leader),
            Err((ProposeError::QueueFull, request)) => self.refuse(request, ForwardRefusal::Busy),
            Err((ProposeError::TooLarge, request)) => self.refuse(request, ForwardRefusal::TooLarge),
        }
    }

    /// Forget a waiting write; once a session has none left, its held
    /// reads are released (they now read after those writes).
    fn take_waiting_write(&mut self, key: (SessionId, u64)) -> Option<Waiting> {
        let waiting = self.waiting_writes.remove(&key)?;
        let session = self.sessions_waiting.get_mut(&key.0).expect("counted when inserted");
        session.writes -= 1;
        if session.writes == 0 {
            let held = self.sessions_waiting.remove(&key.0).expect("present").held_reads;
            self.released_reads.extend(held);
        }
        Some(waiting)
    }

    /// Submit the reads `take_waiting_write` released. Callers run it after
    /// handling the write itself (a resubmitted write goes first).
    fn submit_released_reads(&mut self) {
        while let Some(read) = self.released_reads.pop_front() {
            self.try_submit(read);
        }
    }

    fn refuse(&mut self, request: Request, reason: ForwardRefusal) {
        match request.waiter {
            Waiter::Remote { peer, id } => self.send_frame(peer, &PeerFrame::ForwardRefused { id, reason }),
            waiter => self.deliver(waiter, refusal_reply(&reason)),
        }
    }

    /// This replica does not lead: hand the request to the leader, or park it.
    fn route(&mut self, request: Request, leader: Option<NodeId>) {
        if let Waiter::Remote { peer, id } = request.waiter {
            // Never forward twice: the entry node retries with a better hint.
            let reason = ForwardRefusal::NotLeader { leader };
            self.send_frame(peer, &PeerFrame::ForwardRefused { id, reason });
            return;
        }
        let link = leader.filter(|&l| l != self.node).and_then(|l| self.links.get(&l)).filter(|l| l.is_up());
        let Some(link) = link.cloned() else {
            self.park(request);
            return;
        };
        let id = self.next_forward_id;
        self.next_forward_id += 1;
        let command = request.command.encode();
        let frame = if request.command.op.is_read_only() {
            PeerFrame::ForwardRead { id, command }
        } else {
            PeerFrame::Forward { id, command }
        };
        link.send(&frame);
        self.metrics.forwarded.inc();
        let request = Request { left_node: true, ..request };
        self.forwarded.insert(id, Forwarded { request, leader: link.peer });
    }

    /// Answer a waiter, wherever it is.
    fn deliver(&mut self, waiter: Waiter, reply: Reply) {
        match waiter {
            Waiter::Local(sender) => sender.send(reply),
            Waiter::Mesh { executor, token } => self.shared.mesh_reply(executor, token, reply),
            Waiter::Remote { peer, id } => {
                self.send_frame(peer, &PeerFrame::ForwardReply { id, reply: reply.encode() });
            }
        }
    }

    fn send_frame(&self, peer: NodeId, frame: &PeerFrame) {
        if let Some(link) = self.links.get(&peer) {
            link.send(frame);
        }
    }

    // ---- peers --------------------------------------------------------------

    pub fn on_peer_frame(&mut self, from: NodeId, frame: PeerFrame) {
        self.metrics.peer_frames_in.inc();
        match frame {
            PeerFrame::Paxos(message) => {
                if let Err(e) = self.replica.step(from, message) {
                    self.metrics.peer_errors.inc();
                    server_log!(self.node, self.index, "dropped a message from node {from}: {e}");
                }
                self.kick.notify();
            }
            PeerFrame::Forward { id, command } | PeerFrame::ForwardRead { id, command } => {
                let deadline = Instant::now() + self.request_timeout();
                match Command::decode(&command) {
                    Ok(command) => self.try_submit(Request::new(command, Waiter::Remote { peer: from, id }, deadline)),
                    Err(e) => {
                        let reply = Reply::Error(format!("ERR malformed forwarded command: {e}"));
                        self.deliver(Waiter::Remote { peer: from, id }, reply);
                    }
                }
            }
            PeerFrame::ForwardReply { id, reply } => {
                let Some(forwarded) = self.forwarded.remove(&id) else { return };
                let reply = Reply::decode(&reply)
                    .unwrap_or_else(|e| Reply::Error(format!("ERR malformed reply from node {from}: {e}")));
                self.deliver(forwarded.request.waiter, reply);
            }
            PeerFrame::ForwardRefused { id, reason } => {
                let Some(forwarded) = self.forwarded.remove(&id) else { return };
                match reason {
                    // Retry on the next tick, when the hint may be better.
                    ForwardRefusal::NotLeader { .. } => self.park(forwarded.request),
                    reason => self.deliver(forwarded.request.waiter, refusal_reply(&reason)),
                }
            }
        }
    }

    /// The link to `peer` went down: what was forwarded there may be lost.
    /// Retry it (same session and sequence: the store applies it once).
    pub fn on_link_down(&mut self, peer: NodeId) {
        let ids: Vec<u64> = self.forwarded.iter().filter(|(_, f)| f.leader == peer).map(|(id, _)| *id).collect();
        for id in ids {
            let forwarded = self.forwarded.remove(&id).expect("listed");
            self.park(forwarded.request);
        }
    }

    // ---- time ---------------------------------------------------------------

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.file.tuning.request_timeout_ms)
    }

    /// Give the core every tick that wall-clock time owes it. Called by the
    /// ticker and before every read: after the executor stalled (a long
    /// apply, a slow disk), a read must not be judged against a lease
    /// clock that has not yet seen the stall, or a deposed leader could
    /// serve a stale value.
    pub fn catch_up_ticks(&mut self) {
        let due = self.clock_start.elapsed().as_millis() as u64 / self.tick_ms;
        if self.ticks_done >= due {
            return;
        }
        while self.ticks_done < due {
            self.replica.tick();
            self.ticks_done += 1;
        }
        self.parked_retry_ticks += 1;
        self.retry_parked();
        self.kick.notify();
    }

    fn retry_parked(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let leader = if self.replica.is_leader() { Some(self.node) } else { self.replica.leader() };
        if leader.is_none() {
            return;
        }
        // A stale hint gets refusals: retry on a new hint at once, else
        // only every few ticks, not on each one.
        if leader == self.parked_retry_leader && self.parked_retry_ticks < PARKED_RETRY_TICKS {
            return;
        }
        self.parked_retry_leader = leader;
        self.parked_retry_ticks = 0;
        for request in std::mem::take(&mut self.parked) {
            self.try_submit(request);
        }
    }

    /// Answer every request past its deadline with an error (its outcome is unknown).
    pub fn expire(&mut self, now: Instant) {
        let ms = self.shared.file.tuning.request_timeout_ms;
        let timeout = || Reply::Error(format!("ERR request timed out after {ms} ms; its outcome is unknown"));
        let expired: Vec<_> = self.waiting_writes.iter().filter(|(_, w)| w.deadline <= now).map(|(k, _)| *k).collect();
        for key in expired {
            let w = self.take_waiting_write(key).expect("listed");
            self.deliver(w.waiter, timeout());
        }
        self.submit_released_reads();
        let expired: Vec<_> = self.waiting_reads.iter().filter(|(_, w)| w.deadline <= now).map(|(k, _)| *k).collect();
        for id in expired {
            let w = self.waiting_reads.remove(&id).expect("listed");
            self.deliver(w.waiter, timeout());
        }
        let expired: Vec<_> =
            self.forwarded.iter().filter(|(_, f)| f.request.deadline <= now).map(|(k, _)| *k).collect();
        for id in expired {
            let f = self.forwarded.remove(&id).expect("listed");
            self.deliver(f.request.waiter, timeout());
        }
        let (late, fresh): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.parked).into_iter().partition(|r| r.deadline <= now);
        self.parked = fresh.into();
        for request in late {
            let reply = if request.left_node {
                timeout()
            } else {
                Reply::Error(format!(
                    "CLUSTERDOWN no leader for shard {} within {ms} ms; the request was not applied",
                    self.index
                ))
            };
            self.deliver(request.waiter, reply);
        }
        let waiting = self.waiting_writes.len() + self.waiting_reads.len() + self.forwarded.len() + self.parked.len();
        self.metrics.waiting_requests.set(waiting as i64);
    }

    // ---- the Ready loop -----------------------------------------------------

    /// Drain the replica until it has nothing more to say.
    pub fn drain(&mut self) {
        loop {
            let ready = self.replica.ready();
            if ready.is_empty() {
                if self.unsynced.is_empty() && self.replica.awaiting_persist() {
                    self.replica.on_persisted(ready.number);
                    continue;
                }
                break;
            }
            self.handle_ready(ready);
        }
        self.publish();
    }

    fn handle_ready(&mut self, ready: Ready) {
        let Ready { number, persist, send_now, send_after_persist, committed, reads, aborted, events, snapshot } =
            ready;
        for event in events {
            self.on_event(event);
        }
        self.transmit(send_now);
        if let Some(image) = snapshot {
            match KvStore::restore(&image.data) {
                Ok(kv) => {
                    self.kv = kv;
                    self.applied = image.slot;
                    server_log!(
                        self.node,
                        self.index,
                        "installed a snapshot from a peer covering slots < {}",
                        image.slot
                    );
                }
                Err(e) => {
                    // The core accepted it whole: a corrupt image is unrecoverable here.
                    server_log!(
                        self.node,
                        self.index,
                        "FATAL: a peer's snapshot at slot {} does not restore: {e}",
                        image.slot
                    );
                    std::process::exit(3);
                }
            }
        }
        for (slot, value) in committed {
            self.apply(slot, &value);
        }
        for outcome in reads {
            self.on_read_outcome(outcome);
        }
        for command in aborted {
            let Ok(command) = Command::decode(&command) else { continue };
            if let Some(w) = self.take_waiting_write((command.session, command.seq)) {
                let request = Request::new(command, w.waiter, w.deadline);
                self.try_submit(request);
            }
            self.submit_released_reads();
        }
        if self.replica.is_leader() {
            let status = self.replica.status();
            self.metrics.window_occupancy.observe(status.in_flight_slots as f64);
            self.metrics.proposal_queue_depth.set(status.queued_commands as i64);
        }
        if !persist.is_empty() {
            self.wal_seq = self.wal.append(&persist);
        }
        if persist.is_empty() && send_after_persist.is_empty() && self.unsynced.is_empty() {
            self.replica.on_persisted(number);
            return;
        }
        self.unsynced.push_back(Unsynced { wal_seq: self.wal_seq, number, sends: send_after_persist });
        self.sync_kick.notify();
    }

    fn transmit(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            if let Some(link) = self.links.get(&envelope.to) {
                link.send(&PeerFrame::Paxos(envelope.message));
                self.metrics.peer_frames_out.inc();
            }
        }
    }

    fn apply(&mut self, slot: Slot, value: &crate::paxos::Value) {
        assert_eq!(slot, self.applied, "committed slots arrive in order");
        self.applied = slot + 1;
        self.metrics.commits.inc();
        let commands = value.commands();
        self.metrics.batch_size.observe(commands.len() as f64);
        self.metrics.commands_applied.inc_by(commands.len() as u64);
        for bytes in commands {
            let Ok(command) = Command::decode(bytes) else {
                self.kv.apply_bytes(bytes); // the store's own, deterministic error path
                continue;
            };
            let reply = self.kv.apply(&command);
            if let Some(w) = self.take_waiting_write((command.session, command.seq)) {
                self.deliver(w.waiter, reply);
            }
        }
        self.submit_released_reads();
        self.since_snapshot_slots += 1;
        self.since_snapshot_bytes += value.size_bytes() as u64;
        let due = |count: u64, every: u64| every > 0 && count >= every;
        if due(self.since_snapshot_slots, self.snapshot_every_slots)
            || due(self.since_snapshot_bytes, self.snapshot_every_bytes)
        {
            self.since_snapshot_slots = 0;
            self.since_snapshot_bytes = 0;
            let data = self.kv.snapshot();
            self.replica.compact(self.applied, data);
        }
    }

    fn on_read_outcome(&mut self, outcome: ReadOutcome) {
        match outcome {
            ReadOutcome::Ready { id, read_index } => {
                let Some(read) = self.waiting_reads.remove(&id) else { return };
                assert!(self.applied >= read_index, "read released before its index was applied");
                let reply = self.kv.read(&read.op);
                self.deliver(read.waiter, reply);
            }
            ReadOutcome::Failed { id } => {
                if let Some(read) = self.waiting_reads.remove(&id) {
                    let command = Command { session: read.session, seq: 0, op: read.op };
                    self.try_submit(Request::new(command, read.waiter, read.deadline));
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::PreVoteStarted { .. } => {}
            Event::ElectionStarted { ballot } => {
                self.metrics.elections.inc();
                server_log!(self.node, self.index, "election started at ballot {}.{}", ballot.round, ballot.node);
            }
            Event::BecameLeader { ballot, recovered_slots } => {
                self.metrics.leader_changes.inc();
                server_log!(
                    self.node,
                    self.index,
                    "became leader at ballot {}.{} (re-proposed {recovered_slots} slots)",
                    ballot.round,
                    ballot.node
                );
            }
            Event::SteppedDown { ballot, reason } => {
                server_log!(
                    self.node,
                    self.index,
                    "stepped down from ballot {}.{}: {reason:?}",
                    ballot.round,
                    ballot.node
                );
            }
        }
    }

    fn publish(&self) {
        let status = self.replica.status();
        let st = &self.shared.monitor.status[self.index];
        let previous_leader = st.leader.load(std::sync::atomic::Ordering::Relaxed);
        let leader = if status.role == RoleKind::Leader { Some(self.node) } else { status.leader };
        if leader.unwrap_or(0) != previous_leader {
            match leader {
                Some(l) => server_log!(self.node, self.index, "leader is now node {l}"),
                None => server_log!(self.node, self.index, "leader unknown"),
            }
        }
        let status = crate::paxos::Status { leader, ..status };
        st.publish(&status, self.applied, self.kv.len(), self.replica.log_start());
    }
}

fn refusal_reply(reason: &ForwardRefusal) -> Reply {
    match reason {
        ForwardRefusal::Busy => Reply::Error("BUSY the shard's proposal queue is full; retry later".into()),
        ForwardRefusal::TooLarge => Reply::Error("ERR command larger than the batch limit".into()),
        ForwardRefusal::NotLeader { .. } => Reply::Error("CLUSTERDOWN no leader".into()),
    }
}

/// The driver task: drain the replica whenever something kicked it.
pub async fn run_driver(shard: ShardRef) {
    let kick = shard.borrow().kick.clone();
    loop {
        kick.wait().await;
        shard.borrow_mut().drain();
    }
}

/// The syncer task: group commit, then release what waited for the disk.
pub async fn run_syncer(shard: ShardRef) {
    let (kick, wal) = {
        let s = shard.borrow();
        (s.sync_kick.clone(), s.wal.clone())
    };
    loop {
        kick.wait().await;
        loop {
            let Some(target) = shard.borrow().unsynced.back().map(|u| u.wal_seq) else { break };
            let started = Instant::now();
            if let Err(e) = wal.sync(target).await {
                let s = shard.borrow();
                server_log!(s.node, s.index, "FATAL: the WAL failed, stopping so nothing unsafe is acknowledged: {e}");
                std::process::exit(2);
            }
            let mut s = shard.borrow_mut();
            s.metrics.fsync_seconds.observe(started.elapsed().as_secs_f64());
            let mut sends = Vec::new();
            let mut number = None;
            while s.unsynced.front().is_some_and(|u| u.wal_seq <= target) {
                let u = s.unsynced.pop_front().expect("front exists");
                sends.extend(u.sends);
                number = Some(u.number);
            }
            s.transmit(sends);
            if let Some(number) = number {
                s.replica.on_persisted(number);
            }
            s.kick.notify();
        }
    }
}

/// The ticker task: one core tick per `tick_ms` of wall-clock time.
pub async fn run_ticker(shard: ShardRef, tick_ms: u64) {
    let mut last_expire = Instant::now();
    loop {
        glommio::timer::sleep(Duration::from_millis(tick_ms)).await;
        let now = Instant::now();
        let mut s = shard.borrow_mut();
        s.catch_up_ticks();
        if now - last_expire >= Duration::from_millis(50) {
            s.expire(now);
            last_expire = now;
        }
    }
}
