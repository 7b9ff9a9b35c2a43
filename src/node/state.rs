//! [`Node`]: the replica, the store and the request table of one shard,
//! its constructor, inspection and clock. See the module docs (`mod.rs`)
//! for the inputs and outputs; the request table is handled in
//! `requests.rs`, the Ready loop and durability in `ready.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::anatomy::Anatomy;
use super::config::NodeConfig;
use super::output::Output;
use super::request::{Forwarded, Request, SessionsWaiting, Unsynced, WaitingRead, WaitingWrites};
use crate::kv::{Command, ImageStart, KvStore, SessionId};
use crate::net::peer::PeerFrame;
use crate::paxos::{InjectedBug, NodeId, Replica, RoleKind, Slot, SlotMap};

/// Ticks between scans for requests past their deadline.
const EXPIRE_EVERY_TICKS: u64 = 10;
/// While keys wait to be reclaimed, the leader seals a stamped (empty)
/// batch at most this often, and only with no slot in flight, so expired
/// keys go without client writes.
const RECLAIM_EVERY_TICKS: u64 = 10;

/// A summary for status pages and the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub role: RoleKind,
    pub leader: Option<NodeId>,
    pub commit: Slot,
    pub applied: Slot,
    pub log_start: Slot,
    pub keys: usize,
    /// Keys with an expiry.
    pub expires: usize,
    /// Requests in the table (waiting, held, forwarded, parked).
    pub requests: usize,
    pub unsynced_bytes: usize,
    /// Peer frames bringing entries, held while the disk is behind.
    pub held_frames: usize,
    pub recovering: bool,
    /// Reads answered without a log slot (lease or read-index round), ever.
    pub reads_served: u64,
}

pub struct Node<C> {
    /// `InjectedBug::SplitMultiKeyWrites` only: the rest of a split MSET.
    pub(super) split_rest: Option<Command>,
    pub(super) config: NodeConfig,
    pub(super) replica: Replica,
    pub(super) kv: KvStore,
    /// Slots below this were applied to `kv`. Invariant: `applied <= replica.commit_index()`.
    pub(super) applied: Slot,
    /// Node-local time of the latest input.
    pub(super) now_us: u64,
    /// The shell's wall clock (Unix ms) at the latest input; 0: none given.
    pub(super) wall_ms: u64,
    pub(super) last_expire_tick: u64,
    pub(super) last_reclaim_tick: u64,

    // ---- the request table ----
    pub(super) waiting_writes: WaitingWrites<C>,
    pub(super) sessions_waiting: SessionsWaiting<C>,
    /// Requests their session's order let go (`order.rs`), submitted
    /// after what let them go.
    pub(super) released: VecDeque<Request<C>>,
    /// Sessions with a read whose write ran below the slots committed when
    /// the read arrived: it is answered once those are applied, by read
    /// index (`Node::answer_reads_due`). An entry may outlive its read
    /// (expired, refused); it goes once the index is applied.
    pub(super) reads_due: BTreeSet<(Slot, SessionId)>,
    /// By read id. Ids only grow and reads mostly finish in order, so this
    /// is the core's `SlotMap` (a sorted deque: append at the back, take
    /// from the front), not a `BTreeMap`, whose node shifts moved every
    /// waiting read at each insert and removal (3% of a leader's CPU
    /// under pipelined GETs, issue 11).
    pub(super) waiting_reads: SlotMap<WaitingRead<C>>,
    pub(super) next_read_id: u64,
    pub(super) forwarded: BTreeMap<u64, Forwarded<C>>,
    /// The forwards by when they are sent again: (`due_tick`, id).
    pub(super) forwards_due: BTreeSet<(u64, u64)>,
    /// How long a forward takes to be answered from its first send,
    /// smoothed (ticks x 8, as TCP keeps its SRTT). 0: no sample yet.
    pub(super) forward_ticks_x8: u64,
    /// Reads among them (`NodeConfig::forward_read_window`).
    pub(super) forwarded_reads: usize,
    pub(super) next_forward_id: u64,
    /// Requests waiting for a leader to be known, in arrival order.
    pub(super) parked: VecDeque<Request<C>>,
    pub(super) parked_retry_leader: Option<NodeId>,
    pub(super) parked_retry_tick: u64,
    /// Requests held while the disk is behind, in arrival order.
    pub(super) held: VecDeque<Request<C>>,
    /// Peer frames that bring entries, held while the disk is behind, in
    /// arrival order (`Node::on_peer_frame`), and their bytes on the wire.
    pub(super) held_frames: VecDeque<(NodeId, PeerFrame)>,
    pub(super) held_frames_bytes: usize,
    /// Entry-bearing frames dropped since the node last held none.
    pub(super) frames_dropped_while_held: u64,
    pub(super) arrivals: u64,
    /// Reads answered without a log slot so far (`NodeStatus::reads_served`).
    pub(super) reads_served: u64,
    /// Peers whose link is up (forwarding goes only over a live link).
    pub(super) links_up: BTreeSet<NodeId>,
    /// The node is shutting down (`Node::leave`): unfit to lead or to
    /// campaign from now on.
    pub(super) leaving: bool,

    // ---- durability ----
    /// Readys whose records are appended but not yet durable, in order.
    pub(super) unsynced: VecDeque<Unsynced>,
    /// Appends not yet synced: (token, approximate bytes, node time µs
    /// appended).
    pub(super) appends_unsynced: VecDeque<(u64, usize, u64)>,
    pub(super) unsynced_bytes: usize,
    /// The token of the latest append (0: none).
    pub(super) last_append: u64,
    /// The latest append something waits for (0: none): a reply, our own
    /// vote, a horizon, or any record but the commit index. Appends after
    /// it, holding only commit-index records, become durable with the next
    /// sync (`Node::sync_wanted`).
    pub(super) wanted_append: u64,
    /// The latest append covered by a completed sync.
    pub(super) synced_append: u64,

    // ---- snapshots ----
    pub(super) since_snapshot_slots: u64,
    pub(super) since_snapshot_bytes: u64,
    pub(super) snapshot_pending: Option<Slot>,
    /// The image of the store at this slot, being copied a share per drain
    /// (`Node::continue_snapshot_copy`).
    pub(super) snapshot_copy: Option<(Slot, ImageStart)>,

    pub(super) anatomy: Anatomy,
    pub(super) out: Output<C>,
}

impl<C> Node<C> {
    /// A node around `replica` and the store recovered with it (`applied`:
    /// the slot the store's snapshot covers).
    pub fn new(config: NodeConfig, replica: Replica, kv: KvStore, applied: Slot) -> Node<C> {
        let since_snapshot_slots = config.phase(config.snapshot_every_slots);
        let since_snapshot_bytes = config.phase(config.snapshot_every_bytes);
        Node {
            split_rest: None,
            replica,
            kv,
            applied,
            now_us: 0,
            wall_ms: 0,
            last_expire_tick: 0,
            last_reclaim_tick: 0,
            waiting_writes: WaitingWrites::default(),
            sessions_waiting: SessionsWaiting::default(),
            released: VecDeque::new(),
            reads_due: BTreeSet::new(),
            waiting_reads: SlotMap::new(),
            next_read_id: 0,
            forwarded: BTreeMap::new(),
            forwards_due: BTreeSet::new(),
            forward_ticks_x8: 0,
            forwarded_reads: 0,
            next_forward_id: 0,
            parked: VecDeque::new(),
            parked_retry_leader: None,
            parked_retry_tick: 0,
            held: VecDeque::new(),
            held_frames: VecDeque::new(),
            held_frames_bytes: 0,
            frames_dropped_while_held: 0,
            arrivals: 0,
            reads_served: 0,
            links_up: BTreeSet::new(),
            leaving: false,
            unsynced: VecDeque::new(),
            appends_unsynced: VecDeque::new(),
            unsynced_bytes: 0,
            last_append: 0,
            wanted_append: 0,
            synced_append: 0,
            since_snapshot_slots,
            since_snapshot_bytes,
            snapshot_pending: None,
            snapshot_copy: None,
            anatomy: Anatomy::new(config.anatomy_every),
            out: Output::default(),
            config,
        }
    }

    // ---- inspection ---------------------------------------------------------

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    pub fn applied(&self) -> Slot {
        self.applied
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// False while the disk is behind: requests are held until an fsync
    /// completes, and the shell may stop taking more (the server stops
    /// its cross-core channel; each client connection is bounded by
    /// `client_pending_max`). Peers are read whatever the disk does: what
    /// the node holds of theirs is bounded by dropping
    /// (`Node::on_peer_frame`).
    pub fn accepting(&self) -> bool {
        self.unsynced_bytes <= self.config.unsynced_bytes_max
    }

    /// False while new requests wait for the disk: only at a leader whose
    /// disk is behind (`accepting`), where they would become entries for
    /// it. A follower forwards its clients' requests to the leader, whose
    /// answers it reads whatever its own disk does (`Node::on_peer_frame`):
    /// holding them behind its own disk made its clients wait for a disk
    /// their requests never touch (stop 55). The server's gates (the
    /// cross-core channel) follow this one.
    pub fn taking_requests(&self) -> bool {
        self.accepting() || !self.replica.is_leader()
    }

    /// Has an append waited `NodeConfig::hand_over_after_us` for its
    /// fsync? Then this node is unfit to lead: as the leader every write
    /// waits that long for its disk, and once the disk is behind
    /// (`accepting` false) every new request is held until it catches up,
    /// however long that takes (a disk with a quarter of the load's
    /// bandwidth: section 31 of `results/README.md`), while the others
    /// could serve them. The core hands leadership over at its next
    /// heartbeat round if the others can elect a leader without this node
    /// (`Replica::set_fitness`). With the rule on, a node whose disk is
    /// behind starts no election (`Node::may_campaign`).
    ///
    /// Until stop 57 the rule asked for the disk to have been behind for
    /// that long without a break. A leader holding requests for its disk
    /// sees each completed sync take it under the bound, and the requests
    /// it then takes fill it again: every such break restarted the count.
    /// With a throttled leader disk each run handed over 1.6 s after it
    /// first held, its log showing a second "holding" 0.6 s after the
    /// first (`results/slow-leader-disk`, bundle `retries-capped`). An
    /// append's wait for its fsync does not restart: it is what the
    /// clients wait for. It asks for no backlog either: a leader whose
    /// fsyncs take 400 ms under a light load never reaches the bound, and
    /// in the simulator kept leading, each write waiting for its disk
    /// (scenario `a_leader_whose_fsyncs_are_slow_hands_over_under_the_bound`).
    /// A fast disk behind for a burst keeps its leadership: its appends
    /// are synced young.
    pub(super) fn hand_over_due(&self) -> bool {
        let after = self.config.hand_over_after_us;
        after > 0 && self.appends_unsynced.front().is_some_and(|&(_, _, at)| self.now_us.saturating_sub(at) >= after)
    }

    /// The node is about to stop (its server was asked to, on a signal):
    /// from the next tick it campaigns no more and, as the leader, hands
    /// its leadership over at its next heartbeat round as a node on a slow
    /// disk does (`hand_over_due`): it names its successor, which
    /// campaigns at once, so a planned restart leaves the group without a
    /// leader for a round trip or two, not for a lease and an election
    /// timeout. It still serves as a follower until the process exits.
    pub fn leave(&mut self) {
        self.leaving = true;
    }

    /// May this node start an election? Not while its disk is behind,
    /// with the hand-over rule on: it would hold every request it won.
    /// A node with an old append but no backlog may: asking that too
    /// (`hand_over_due`) failed the simulator's latency checker (seed 54
    /// of the 5-replica sweep: a GET waited 411 ms in a fault-free
    /// stretch of a run with no hand-over; not traced further).
    pub(super) fn may_campaign(&self) -> bool {
        self.config.hand_over_after_us == 0 || self.accepting()
    }

    /// The leader as this node sees it (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        if self.replica.is_leader() {
            Some(self.config.node)
        } else {
            self.replica.leader()
        }
    }

    pub fn status(&self) -> NodeStatus {
        let status = self.replica.status();
        NodeStatus {
            role: status.role,
            leader: self.leader(),
            commit: status.commit,
            applied: self.applied,
            log_start: self.replica.log_start(),
            keys: self.kv.len_live(),
            expires: self.kv.len_expiring(),
            requests: self.waiting_writes.len()
                + self.waiting_reads.len()
                + self.forwarded.len()
                + self.parked.len()
                + self.held.len()
                + self.sessions_waiting.values().map(|s| s.held.len() + s.after_writes.len()).sum::<usize>(),
            unsynced_bytes: self.unsynced_bytes,
            held_frames: self.held_frames.len(),
            recovering: self.replica.is_recovering(),
            reads_served: self.reads_served,
        }
    }

    /// Does anything wait for an append not yet durable? The shell starts
    /// a sync (of everything appended) only then. A commit-index record
    /// alone is not waited for: no reply, vote or read depends on it, and a
    /// crash that loses it recovers an older commit index (the state of the
    /// moment before it was appended) and relearns the rest from its peers.
    /// So a leader's "slot n is chosen" record rides with the Accept of
    /// slot n + 1 instead of costing a sync of its own. Unless the records
    /// waiting are over the backpressure bound: then the node holds
    /// requests and entries until a sync, and with commit-index records
    /// alone nothing it steps would ever ask for one.
    pub fn sync_wanted(&self) -> bool {
        self.wanted_append > self.synced_append || (!self.accepting() && self.last_append > self.synced_append)
    }

    /// Everything the node wants done since the last call.
    pub fn take_output(&mut self) -> Output<C> {
        std::mem::take(&mut self.out)
    }

    // ---- time ---------------------------------------------------------------

    /// Move the clock (and the core's) to `now_us`. It never goes back.
    /// Move the node's clock, and the core's, to `now_us` before an input
    /// (the fix for stale lease grants: whatever the core stamps or judges
    /// uses the current time, even after an executor stall).
    pub(super) fn advance(&mut self, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
        if self.replica.config().injected_bug != InjectedBug::StaleGrantClock {
            self.replica.set_now(self.now_us / self.config.tick_us);
        }
    }

    /// The wall clock (Unix milliseconds) before an input: the core stamps
    /// batches and judges lease reads with it (`paxos::time`). It may go
    /// backwards; stamps do not.
    pub fn set_wall_clock(&mut self, wall_ms: u64) {
        self.wall_ms = wall_ms;
        self.replica.set_wall(wall_ms);
    }

    pub(super) fn tick_now(&self) -> u64 {
        self.now_us / self.config.tick_us
    }

    /// The timer: fire the core's due timeouts, retry parked requests, and
    /// answer requests past their deadline. Call it after the inputs that
    /// arrived before `now_us` (see the module docs), at the latest at
    /// [`Node::next_tick_us`]; calls in between are allowed and do nothing.
    /// True if it did something (the simulator checks it never does before
    /// `next_tick_us`).
    pub fn tick(&mut self, now_us: u64) -> bool {
        self.advance(now_us);
        // Injected bug `StaleGrantClock`: the core's clock moves only here,
        // on the timer, as the shell's ticker once moved it.
        self.replica.set_now(self.now_us / self.config.tick_us);
        let output_before = self.out.len();
        let leaving = self.leaving;
        self.replica.set_fitness(self.may_campaign() && !leaving, !self.hand_over_due() && !leaving);
        let mut acted = self.replica.fire_timeouts();
        acted |= self.retry_forwarded();
        acted |= self.retry_parked();
        // Only while no slot is in flight: every batch carries a stamp, so
        // the next one chosen moves the log's time on anyway. Sealing one
        // every RECLAIM_EVERY_TICKS regardless filled the whole window with
        // empty batches while the disk did not sync (a machine-wide fsync
        // stall: 64 slots in 640 ms, each persisted and retransmitted).
        if self.replica.is_leader()
            && self.kv.has_expired_at(self.wall_ms)
            && self.replica.status().in_flight_slots == 0
            && self.tick_now() >= self.last_reclaim_tick + RECLAIM_EVERY_TICKS
        {
            self.last_reclaim_tick = self.tick_now();
            self.replica.request_stamp();
            acted = true;
        }
        if self.tick_now() >= self.last_expire_tick + EXPIRE_EVERY_TICKS {
            self.last_expire_tick = self.tick_now();
            self.expire();
        }
        acted || self.out.len() != output_before
    }

    /// The node-local time (µs) of the earliest [`Node::tick`] that may do
    /// something; `None`: none would until an input arrives. A shell may
    /// sleep until then instead of ticking every `tick_us`, but must ask
    /// again after every input, which may move it earlier (a new leader's
    /// heartbeat, a request that starts to wait). Cheap: no scans.
    pub fn next_tick_us(&self) -> Option<u64> {
        let now_tick = self.tick_now();
        let mut due = self.replica.next_timeout_tick();
        let mut at = |tick: u64| due = Some(due.map_or(tick, |d| d.min(tick)));
        if let Some(&(due_tick, _)) = self.forwards_due.first() {
            at(due_tick);
        }
        let leader = self.leader();
        // A full read window opens on an answer, or on the retry or expiry
        // of a forward (both timed above).
        if leader.is_some() && self.parked_may_go() {
            // A new leader: at once (`retry_parked`).
            let later = self.parked_retry_tick + self.config.parked_retry_ticks;
            at(if leader != self.parked_retry_leader { now_tick } else { later });
        }
        if self.replica.is_leader() && self.replica.status().in_flight_slots == 0 {
            if let Some(expiry_ms) = self.kv.next_expiry_ms() {
                // Expired once the wall clock passes `expiry_ms`; a tick
                // early, as the wall clock is known to the millisecond only.
                let wait_ms = u64::try_from(expiry_ms.saturating_add(1)).unwrap_or(0).saturating_sub(self.wall_ms);
                let expired_tick = (self.now_us + wait_ms * 1000) / self.config.tick_us;
                at(expired_tick.saturating_sub(1).max(self.last_reclaim_tick + RECLAIM_EVERY_TICKS));
            }
        }
        let waiting = !(self.waiting_writes.is_empty()
            && self.sessions_waiting.is_empty()
            && self.released.is_empty()
            && self.waiting_reads.is_empty()
            && self.forwarded.is_empty()
            && self.parked.is_empty()
            && self.held.is_empty());
        if waiting {
            at(self.last_expire_tick + EXPIRE_EVERY_TICKS);
        }
        let due = due?;
        let due = if self.replica.config().injected_bug == InjectedBug::LateTickDeadline { due + 1 } else { due };
        Some(due.max(now_tick).saturating_mul(self.config.tick_us))
    }
}
