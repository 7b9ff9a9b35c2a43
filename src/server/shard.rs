//! One shard of one node, as glommio runs it: the sans-IO [`Node`] (the
//! replica, the store and the request table, `src/node`) plus the things
//! only a shell can do: sockets, the WAL's files, timers, the clock.
//!
//! Tasks on the shard's executor:
//! - the *driver* runs the node's Ready loop whenever an input kicked it
//!   and carries out its output: peer frames, WAL appends, client replies,
//!   snapshot jobs, events (logs and metrics);
//! - the *syncer* makes appended records durable (group commit: one write
//!   covers every append made meanwhile) once the node waits for them
//!   (`Node::sync_wanted`), and tells the node (`on_synced`);
//! - the *ticker* calls `Node::tick` at the node's next deadline, woken by
//!   its alarm thread (`alarm`). After a stall it first yields, so the
//!   reader tasks hand the node what arrived during the stall before its
//!   timeouts fire (see `src/node/mod.rs`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::alarm::Alarm;
use super::links::Link;
use super::metrics::ShardMetrics;
use super::util::{Broadcast, Notify, ReplySender};
use super::Shared;
use crate::kv::Reply;
use crate::net::peer::PeerFrame;
use crate::node::{Node, NodeEvent, Output, Request, SnapshotJob, Stage};
use crate::paxos::{Event, NodeId};
use crate::server_log;
use crate::storage::{Wal, WRITES_IN_FLIGHT_MAX};

/// How a client of this node waits for its reply.
pub enum ClientWaiter {
    /// A connection on this executor.
    Local(ReplySender<Reply>),
    /// A connection on another executor of this node (reply over the mesh).
    Mesh { executor: usize, token: u64 },
}

pub struct Shard {
    pub node: Node<ClientWaiter>,
    pub index: usize,
    wal: Rc<Wal>,
    /// Appends handed to the WAL and not yet synced: (WAL sequence, node token).
    appended: VecDeque<(u64, u64)>,
    pub links: HashMap<NodeId, Rc<Link>>,
    /// Node-local time starts here.
    clock_start: Instant,
    /// The wall clock `Shard::now` hands the node.
    wall: WallClock,
    pub kick: Notify,
    sync_kick: Notify,
    /// When the ticker will next tick the node (node-local µs), and how to
    /// wake it sooner: an input may move the node's deadline earlier.
    tick_at_us: u64,
    /// The ticker ticks no sooner than this (once per `tick_ms` at most).
    tick_floor_us: u64,
    tick_sooner: Notify,
    /// Woken when the node takes requests again after backpressure
    /// (`Node::taking_requests`).
    pub accepting: Broadcast,
    pub metrics: ShardMetrics,
    pub shared: Rc<Shared>,
    /// The leader last published, for the "leader is now" log line.
    published_leader: Option<NodeId>,
    /// `NodeStatus::reads_served` as last added to the metrics.
    published_reads: u64,
    /// The identity marker is on disk (`identity.rs`): written after the
    /// first sync, before anything that sync covered may leave.
    identity_written: bool,
    /// The protocol trace, when on (`[trace]`, `server --trace-dir`).
    pub trace: Option<super::trace::ShardTrace>,
}

pub type ShardRef = Rc<RefCell<Shard>>;

impl Shard {
    pub fn new(
        index: usize,
        node: Node<ClientWaiter>,
        wal: Rc<Wal>,
        shared: Rc<Shared>,
        identity_written: bool,
    ) -> Shard {
        let metrics = shared.monitor.shards[index].clone();
        Shard {
            node,
            index,
            wal,
            appended: VecDeque::new(),
            links: HashMap::new(),
            clock_start: Instant::now(),
            wall: WallClock::default(),
            kick: Notify::default(),
            sync_kick: Notify::default(),
            tick_at_us: 0,
            tick_floor_us: 0,
            tick_sooner: Notify::default(),
            accepting: Broadcast::default(),
            metrics,
            shared,
            published_leader: None,
            published_reads: 0,
            trace: None,
            identity_written,
        }
    }

    /// Node-local time: microseconds since this shard started.
    pub fn now_us(&self) -> u64 {
        self.clock_start.elapsed().as_micros() as u64
    }

    /// The clocks before an input: hands the node the wall clock (batch
    /// stamps, lease reads' expiry; see [`WallClock`]) and returns
    /// node-local time, one clock read per input (every request is one).
    fn now(&mut self) -> u64 {
        let now_us = self.now_us();
        let wall_us = self.wall.at(now_us, super::util::unix_micros);
        self.node.set_wall_clock(wall_us / 1000);
        now_us
    }

    /// Node-local microseconds of a wall-clock deadline.
    pub fn deadline_us(&self, deadline: Instant) -> u64 {
        deadline.saturating_duration_since(self.clock_start).as_micros() as u64
    }

    pub fn submit(&mut self, request: Request<ClientWaiter>) {
        let now = self.now();
        self.node.submit(now, request);
        self.kick.notify();
    }

    pub fn on_peer_frame(&mut self, from: NodeId, frame: PeerFrame) {
        self.metrics.peer_frames_in.inc();
        let now = self.now();
        if let Some(trace) = &mut self.trace {
            trace.on_deliver(now, from, &frame);
        }
        self.node.on_peer_frame(now, from, frame);
        self.kick.notify();
    }

    pub fn on_link_up(&mut self, peer: NodeId) {
        if let Some(trace) = &mut self.trace {
            trace.on_link(self.clock_start.elapsed().as_micros() as u64, peer, true);
        }
        self.node.on_link_up(peer);
    }

    /// What was forwarded to `peer` may be lost: the node retries it.
    pub fn on_link_down(&mut self, peer: NodeId) {
        let now = self.now();
        if let Some(trace) = &mut self.trace {
            trace.on_link(now, peer, false);
        }
        self.node.on_link_down(now, peer);
        self.kick.notify();
    }

    /// Run the node's Ready loop and carry out everything it asks for.
    pub fn drain(&mut self) {
        self.node.drain();
        let output = self.node.take_output();
        self.perform(output);
        self.publish();
        if self.node.next_tick_us().is_some_and(|due| due.max(self.tick_floor_us) < self.tick_at_us) {
            self.tick_sooner.notify();
        }
    }

    fn perform(&mut self, output: Output<ClientWaiter>) {
        let Output { messages, appends, replies, events, snapshot } = output;
        if let Some(trace) = &mut self.trace {
            let now = self.clock_start.elapsed().as_micros() as u64;
            trace.on_output(now, &events, self.node.replica());
            for (to, frame) in &messages {
                trace.on_send(now, *to, frame);
            }
        }
        // Peer links first, client replies next, the syncer last: tasks run
        // in the order they were woken, and with `wal_writes = "inline"` the
        // syncer's write blocks the executor, so whatever this drain has
        // ready leaves before it (through io_uring the order changes
        // nothing: its writes are submitted when the executor next polls).
        for (to, frame) in messages {
            if let Some(link) = self.links.get(&to) {
                link.send(&frame);
                self.metrics.peer_frames_out.inc();
            }
        }
        for append in appends {
            let seq = self.wal.append(&append.ops);
            self.appended.push_back((seq, append.token));
        }
        for (waiter, reply) in replies {
            match waiter {
                ClientWaiter::Local(sender) => sender.send(reply),
                ClientWaiter::Mesh { executor, token } => self.shared.mesh_reply(executor, token, reply),
            }
        }
        if self.node.sync_wanted() {
            self.sync_kick.notify();
        }
        for event in events {
            self.on_event(event);
        }
        if let Some(job) = snapshot {
            self.spawn_snapshot(job);
        }
    }

    /// Encode the store's image on glommio's blocking thread pool: the
    /// executor goes on serving meanwhile.
    fn spawn_snapshot(&self, job: SnapshotJob) {
        let SnapshotJob { slot, image } = job;
        let shared = self.shared.clone();
        glommio::spawn_local(async move {
            let data = glommio::executor().spawn_blocking(move || image.encode()).await;
            let Some(shard) = shared.shard.borrow().clone() else { return };
            let mut s = shard.borrow_mut();
            let now = s.now();
            s.node.on_snapshot_ready(now, slot, data);
            s.kick.notify();
        })
        .detach();
    }

    fn on_event(&mut self, event: NodeEvent) {
        let (node, index) = (self.shared.node, self.index);
        match event {
            NodeEvent::Core(event) => self.on_core_event(event),
            NodeEvent::Applied { commands, .. } => {
                self.metrics.commits.inc();
                self.metrics.batch_size.observe(commands as f64);
                self.metrics.commands_applied.inc_by(commands as u64);
            }
            NodeEvent::Proposed => {
                self.metrics.proposals.inc();
            }
            NodeEvent::Forwarded { .. } => {
                self.metrics.forwarded.inc();
            }
            NodeEvent::ForwardReadWindowFull => {
                self.metrics.forward_read_window_full.inc();
            }
            NodeEvent::ReadRegistered { .. } | NodeEvent::ReadServed { .. } | NodeEvent::Executed { .. } => {}
            NodeEvent::PeerMessageRefused { from, error } => {
                self.metrics.peer_errors.inc();
                server_log!(node, index, "dropped a message from node {from}: {error}");
            }
            NodeEvent::BadForward { from, detail } => {
                self.metrics.peer_errors.inc();
                server_log!(node, index, "a forwarded request or reply from node {from} did not decode: {detail}");
            }
            NodeEvent::SnapshotInstalled { slot } => {
                server_log!(node, index, "installed a snapshot from a peer covering slots < {slot}");
            }
            NodeEvent::SnapshotStarted { .. } => {
                self.metrics.snapshots.inc();
            }
            NodeEvent::Stage { stage, us } => self.metrics.stages.record(stage, us),
            NodeEvent::Backpressure { unsynced_bytes } => {
                self.metrics.backpressure_holds.inc();
                server_log!(node, index, "holding client requests: {unsynced_bytes} bytes wait for the disk");
            }
            NodeEvent::PeerFrameDropped { from, first } => {
                self.metrics.peer_frames_dropped.inc();
                if first {
                    server_log!(
                        node,
                        index,
                        "dropping entries from node {from}: the disk is behind and the entries held are over \
                         unsynced_bytes_max (they are sent again, or fetched once the disk catches up)"
                    );
                }
            }
            NodeEvent::Fatal(detail) => {
                server_log!(node, index, "FATAL: {detail}");
                std::process::exit(3);
            }
        }
    }

    fn on_core_event(&mut self, event: Event) {
        let (node, index) = (self.shared.node, self.index);
        match event {
            Event::PreVoteStarted { .. }
            | Event::Chosen { .. }
            | Event::LeaseGranted { .. }
            | Event::LeaseReleased { .. }
            | Event::LeaseExtended { .. } => {}
            Event::ElectionStarted { ballot } => {
                self.metrics.elections.inc();
                server_log!(node, index, "election started at ballot {ballot}");
            }
            Event::BecameLeader { ballot, recovered_slots } => {
                self.metrics.leader_changes.inc();
                server_log!(node, index, "became leader at ballot {ballot} (re-proposed {recovered_slots} slots)");
            }
            Event::SteppedDown { ballot, reason } => {
                server_log!(node, index, "stepped down from ballot {ballot}: {reason:?}");
            }
            Event::RecoveryStarted => server_log!(
                node,
                index,
                "this replica lost its durable state: it neither promises nor accepts until it has relearned \
                 them from a majority of its peers"
            ),
            Event::Recovered { promised, commit } => server_log!(
                node,
                index,
                "recovered: promised ballot {promised}, log learned up to slot {commit}; voting again"
            ),
        }
    }

    /// Refresh what `INFO` and the metrics show.
    fn publish(&mut self) {
        let status = self.node.replica().status();
        if self.node.replica().is_leader() {
            self.metrics.window_occupancy.observe(status.in_flight_slots as f64);
            self.metrics.proposal_queue_depth.set(status.queued_commands as i64);
        }
        let node = self.node.status();
        self.metrics.waiting_requests.set(node.requests as i64);
        self.metrics.unsynced_bytes.set(node.unsynced_bytes as i64);
        self.metrics.held_peer_frames.set(node.held_frames as i64);
        self.metrics.reads_lease.inc_by(node.reads_served - self.published_reads);
        self.published_reads = node.reads_served;
        if node.leader != self.published_leader {
            match node.leader {
                Some(l) => server_log!(self.shared.node, self.index, "leader is now node {l}"),
                None => server_log!(self.shared.node, self.index, "leader unknown"),
            }
            self.published_leader = node.leader;
        }
        let st = &self.shared.monitor.status[self.index];
        st.publish(&crate::paxos::Status { leader: node.leader, ..status }, &node);
        // Wakes the cross-core channel, which checks the gate
        // (`taking_requests`).
        if self.node.taking_requests() {
            self.accepting.notify_all();
        }
    }
}

/// The driver task: drain the node whenever something kicked it.
pub async fn run_driver(shard: ShardRef) {
    let kick = shard.borrow().kick.clone();
    loop {
        kick.wait().await;
        loop {
            let more = {
                let mut s = shard.borrow_mut();
                s.drain();
                s.node.wants_another_drain()
            };
            if !more {
                break;
            }
            // Work that goes a share per drain (what was held while the
            // disk was behind, a snapshot's copy of the store): heartbeats,
            // peer readers and replies run in between.
            super::turns::step_aside().await;
        }
    }
}

/// The syncer task: group commit, then tell the node what is durable.
/// Up to `WRITES_IN_FLIGHT_MAX` syncs at once, each its own task: while
/// one group commit is on the disk, the records appended since go out in
/// the next beside it (`Wal::sync` decides whether they may), rather than
/// waiting for it.
pub async fn run_syncer(shard: ShardRef) {
    let kick = shard.borrow().sync_kick.clone();
    let running = Rc::new(Cell::new(0));
    // The highest target handed to a sync task.
    let mut requested = 0;
    loop {
        kick.wait().await;
        while running.get() < WRITES_IN_FLIGHT_MAX {
            // Everything appended, but only once something waits for it
            // (`Node::sync_wanted`: commit-index records ride along).
            let target = {
                let s = shard.borrow();
                match s.appended.back() {
                    Some(&(target, _)) if s.node.sync_wanted() && target > requested => target,
                    _ => break,
                }
            };
            requested = target;
            running.set(running.get() + 1);
            glommio::spawn_local(sync_to(shard.clone(), target, running.clone())).detach();
        }
    }
}

/// One group commit: sync the WAL up to `target`, then hand the node the
/// newest token it covers (syncs complete in order, `Wal::sync`; a task
/// that finds its tokens taken by a later sync's task hands none).
async fn sync_to(shard: ShardRef, target: u64, running: Rc<Cell<u64>>) {
    let wal = shard.borrow().wal.clone();
    let started = Instant::now();
    if let Err(e) = wal.sync(target).await {
        let s = shard.borrow();
        server_log!(s.shared.node, s.index, "FATAL: the WAL failed, stopping so nothing unsafe is acknowledged: {e}");
        std::process::exit(2);
    }
    let mut s = shard.borrow_mut();
    let took = started.elapsed();
    s.metrics.fsync_seconds.observe(took.as_secs_f64());
    s.metrics.stages.record(Stage::WalSync, took.as_micros() as u64);
    if !s.identity_written {
        if let Err(e) = super::identity::write(&s.shared.file, s.shared.node, s.index) {
            server_log!(s.shared.node, s.index, "FATAL: {e}");
            std::process::exit(2);
        }
        s.identity_written = true;
    }
    // Everything durable by now, which may be more than `target`: a sync
    // that waited for the write in flight wrote all appended meanwhile.
    let durable = wal.synced().max(target);
    let mut token = None;
    while s.appended.front().is_some_and(|(seq, _)| *seq <= durable) {
        token = s.appended.pop_front().map(|(_, token)| token);
    }
    if let Some(token) = token {
        let now = s.now();
        s.node.on_synced(now, token);
    }
    running.set(running.get() - 1);
    s.kick.notify();
    s.sync_kick.notify();
}

/// The ticker task: `Node::tick` at the node's next deadline
/// (`Node::next_tick_us`), or sooner when an input moved it earlier (the
/// driver wakes it), and at least every [`TICK_IDLE_MAX`]. Between
/// deadlines a tick does nothing (the simulator checks it), so an idle node
/// wakes for its heartbeats and little else, not every `tick_ms`. A late
/// wake-up (the executor stalled) yields first, so that frames and
/// requests that arrived meanwhile reach the node before its timeouts fire.
pub async fn run_ticker(shard: ShardRef, tick_ms: u64) {
    let tick_us = tick_ms * 1000;
    let sooner = shard.borrow().tick_sooner.clone();
    // The deadline's alarm, on a thread of its own (`alarm`); without it
    // (no thread or socket to be had) a glommio timer.
    let mut alarm = {
        let s = shard.borrow();
        Alarm::start(format!("alarm-{}", s.index), s.clock_start)
            .inspect_err(|e| {
                server_log!(s.shared.node, s.index, "no alarm thread for the ticker ({e}): it uses a glommio timer")
            })
            .ok()
    };
    let mut last_tick_us = 0;
    loop {
        let (now_us, at_us) = {
            let mut s = shard.borrow_mut();
            let now_us = s.now_us();
            let idle_max = TICK_IDLE_MAX.as_micros() as u64;
            let due = s.node.next_tick_us().unwrap_or(u64::MAX).min(now_us + idle_max);
            // Never more often than every `tick_ms`: a deadline that stays
            // in the past (a key's expiry by a wall clock that went back)
            // must not turn this loop into a spin that starves the executor.
            s.tick_floor_us = last_tick_us + tick_us;
            let at_us = due.max(s.tick_floor_us);
            s.tick_at_us = at_us;
            (now_us, at_us)
        };
        if alarm.as_ref().is_some_and(Alarm::is_broken) {
            let s = shard.borrow();
            server_log!(s.shared.node, s.index, "the ticker's alarm thread stopped: the ticker uses a glommio timer");
            alarm = None;
        }
        if at_us > now_us {
            match &alarm {
                Some(alarm) => {
                    alarm.set(at_us);
                    futures_lite::future::or(alarm.rang(), sooner.wait()).await;
                }
                None => {
                    let sleep = glommio::timer::sleep(Duration::from_micros(at_us - now_us));
                    futures_lite::future::or(sleep, sooner.wait()).await;
                }
            }
        }
        let late_us = shard.borrow().now_us().saturating_sub(at_us);
        if late_us > 3 * tick_us {
            for _ in 0..4 {
                futures_lite::future::yield_now().await;
            }
        }
        let mut s = shard.borrow_mut();
        let now = s.now();
        if super::LEAVING.load(std::sync::atomic::Ordering::Relaxed) {
            s.node.leave();
        }
        if now >= s.tick_at_us {
            last_tick_us = now;
            if s.node.tick(now) {
                s.kick.notify();
            }
        }
    }
}

/// The wall clock read at most once per [`WALL_CLOCK_REREAD_US`] of
/// node-local time, and in between that reading moved on by the node-local
/// time since. A step of the wall clock (it may go backwards; the node's
/// stamps do not) reaches the node within that interval, and its slew in
/// between (at most about 0.05% of its rate) is not seen for that long.
#[derive(Debug, Default)]
struct WallClock {
    /// The last reading: (node-local µs, Unix µs) then.
    read: Option<(u64, u64)>,
}

impl WallClock {
    /// Unix µs at node-local time `now_us` (which never goes backwards);
    /// `read_wall` reads the wall clock.
    fn at(&mut self, now_us: u64, read_wall: impl FnOnce() -> u64) -> u64 {
        match self.read {
            Some((read_us, wall_us)) if now_us.wrapping_sub(read_us) < WALL_CLOCK_REREAD_US => {
                wall_us + (now_us - read_us)
            }
            _ => {
                let wall_us = read_wall();
                self.read = Some((now_us, wall_us));
                wall_us
            }
        }
    }
}

const WALL_CLOCK_REREAD_US: u64 = 1000;

/// The longest the ticker sleeps, whatever the node's deadline: a bound
/// on the cost of a deadline the node got wrong, or of a wall-clock jump
/// (key expiry is on the wall clock).
const TICK_IDLE_MAX: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_is_read_once_per_interval_and_moved_on_in_between() {
        let mut clock = WallClock::default();
        let never = || -> u64 { panic!("read within the interval") };
        assert_eq!(clock.at(10, || 5_000_000), 5_000_000);
        assert_eq!(clock.at(10, never), 5_000_000);
        assert_eq!(clock.at(400, never), 5_000_390);
        assert_eq!(clock.at(10 + WALL_CLOCK_REREAD_US - 1, never), 5_000_000 + WALL_CLOCK_REREAD_US - 1);
        // Read again: a step back of the wall clock is seen at once.
        assert_eq!(clock.at(10 + WALL_CLOCK_REREAD_US, || 4_000_000), 4_000_000);
        assert_eq!(clock.at(20 + WALL_CLOCK_REREAD_US, never), 4_000_010);
    }
}
