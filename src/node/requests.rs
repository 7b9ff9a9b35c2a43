//! The request table: client requests submitted, held, parked, forwarded
//! to the leader, retried and expired, and the peer frames that carry
//! forwarded requests and their answers.

use std::collections::VecDeque;

use super::anatomy::Stage;
use super::order::Placement;
use super::output::NodeEvent;
use super::request::{Forwarded, Request, Waiter, WaitingRead, WaitingWrite, WAITING_WRITES_SPARE};
use super::state::Node;
use crate::kv::{Command, Reply, SessionId};
use crate::net::peer::{frame_bytes, ForwardRefusal, PeerFrame};
use crate::paxos::{smoothed_x8, InjectedBug, Message, NodeId, ProposeError};

/// Held requests let go per drain once the disk caught up (`release_held`).
pub const RELEASE_PER_DRAIN: usize = 256;
/// Held peer frames stepped per drain: each may carry a batch of entries.
pub const FRAMES_RELEASE_PER_DRAIN: usize = 16;

impl<C> Node<C> {
    // ---- requests -----------------------------------------------------------

    /// A client request for this shard.
    pub fn submit(&mut self, now_us: u64, mut request: Request<C>) {
        self.advance(now_us);
        self.arrivals += 1;
        request.arrival = self.arrivals;
        self.admit(request);
    }

    /// Hold, park or submit a request that arrived, keeping arrival order:
    /// behind what its session's order let go already (`order.rs`).
    pub(super) fn admit(&mut self, request: Request<C>) {
        self.submit_released();
        self.admit_in_order(request);
    }

    pub(super) fn admit_in_order(&mut self, request: Request<C>) {
        if !self.held.is_empty() || !self.taking_requests() {
            if self.held.is_empty() {
                self.out.events.push(NodeEvent::Backpressure { unsynced_bytes: self.unsynced_bytes });
            }
            let at = self.held.partition_point(|r| r.arrival <= request.arrival);
            self.held.insert(at, request);
            return;
        }
        self.admit_past_the_disk(request);
    }

    /// Let go of what was held while the disk was behind, once it caught
    /// up: at most [`RELEASE_PER_DRAIN`] requests and
    /// [`FRAMES_RELEASE_PER_DRAIN`] peer frames per drain, in arrival
    /// order; [`Node::wants_another_drain`] tells the shell to drain again
    /// (after letting its other tasks run) while more wait. Each request
    /// costs the executor tens of microseconds to propose, and a leader
    /// holds up to `client_pending_max` of them per connection: letting
    /// 16,000 go in one pass kept its executor from its heartbeats for
    /// 450 ms, and a follower timed it out (stop 53).
    pub(super) fn release_held(&mut self) {
        if self.taking_requests() {
            for _ in 0..self.held.len().min(RELEASE_PER_DRAIN) {
                self.submit_released();
                let Some(request) = self.held.pop_front() else { break };
                self.admit_past_the_disk(request);
            }
        }
        for _ in 0..FRAMES_RELEASE_PER_DRAIN {
            if !self.accepting() {
                break;
            }
            let Some((from, frame)) = self.held_frames.pop_front() else { break };
            self.held_frames_bytes -= frame_bytes(&frame);
            self.step_peer_frame(self.now_us, from, frame);
        }
        if self.held_frames.is_empty() {
            self.frames_dropped_while_held = 0;
        }
    }

    /// The node has work left that goes a share per drain: the shell
    /// should drain again soon, once its other tasks had a turn. Requests
    /// or peer frames held while the disk was behind wait to be let go and
    /// the disk has caught up (`release_held`), or a snapshot's copy of
    /// the store is in progress (`continue_snapshot_copy`).
    pub fn wants_another_drain(&self) -> bool {
        self.snapshot_copy.is_some()
            || (self.taking_requests() && !self.held.is_empty())
            || (self.accepting() && !self.held_frames.is_empty())
    }

    /// Park or submit a request the disk's backlog does not hold.
    fn admit_past_the_disk(&mut self, request: Request<C>) {
        if !self.parked.is_empty() && !matches!(request.waiter, Waiter::Remote { .. }) {
            self.park(request); // behind the client's earlier parked requests
            return;
        }
        self.try_submit(request);
    }

    pub(super) fn park(&mut self, request: Request<C>) {
        let at = self.parked.partition_point(|r| r.arrival <= request.arrival);
        self.parked.insert(at, request);
    }

    pub(super) fn goes_through_log(&self, request: &Request<C>) -> bool {
        request.via_log || !request.command.op.is_read_only() || self.config.reads_via_log
    }

    /// `InjectedBug::StaleLeaseReads`: every read not through the log is
    /// answered here, from this replica's applied state. (Reads through the
    /// log, the simulator's `--read-mode log`, stay there: their clients
    /// chain them into the session like writes, `ClientSession::command`.)
    pub(super) fn serves_stale_reads(&self) -> bool {
        self.replica.config().injected_bug == InjectedBug::StaleLeaseReads
    }

    pub(super) fn try_submit(&mut self, request: Request<C>) {
        let (request, through_log) = match self.place(request) {
            Placement::Waits => return,
            Placement::Log(request) => (request, true),
            Placement::Read(request) if self.serves_stale_reads() => return self.serve_stale_read(request),
            Placement::Read(request) => (request, false),
        };
        if through_log && self.is_duplicate_forward(&request) {
            return;
        }
        if through_log && self.replica.is_leader() {
            let key = (request.command.session, request.command.seq);
            if let Some(waiting) = self.waiting_writes.get_mut(&key) {
                // A retry of a command this leader already has queued or in
                // flight (a forward resent after `forward_retry_ticks`): it
                // will be chosen, or handed back to be routed again, without
                // a second copy in the log. The retry's waiter takes over.
                let old = std::mem::replace(&mut waiting.waiter, request.waiter);
                waiting.deadline_us = waiting.deadline_us.max(request.deadline_us);
                self.supersede(old);
                return;
            }
        }
        let outcome = if through_log {
            self.replica.propose_one(request.command.encode())
        } else {
            self.replica.read(self.next_read_id)
        };
        match outcome {
            Ok(()) if through_log => self.on_proposed(request),
            Ok(()) => self.on_read_started(request),
            Err(ProposeError::NotLeader { leader }) => self.route(request, leader),
            Err(ProposeError::QueueFull) => self.refuse(request, ForwardRefusal::Busy),
            Err(ProposeError::TooLarge) => self.refuse(request, ForwardRefusal::TooLarge),
        }
    }

    /// The checkers' record of read `id` entering the core, now.
    pub(super) fn read_registered(&self, id: u64) -> NodeEvent {
        NodeEvent::ReadRegistered { id, at_us: self.now_us, promised: self.replica.status().promised }
    }

    /// `InjectedBug::StaleLeaseReads`: answer a read at once from what this
    /// replica has applied, as if it held a lease it never asked for. A
    /// read behind its session's writes waiting here is still answered
    /// after them (that is the connection's order, not freshness:
    /// `order.rs`), but waits for nothing else: not for a lease, a
    /// read-index round or the leader. The checkers see it
    /// as the local read it is (read index: the slots applied here).
    fn serve_stale_read(&mut self, request: Request<C>) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        let (read_index, at_ms) = (self.applied, self.kv.log_time());
        if self.config.trace_checks {
            let (session, seq) = (request.command.session, request.command.seq);
            self.out.events.push(self.read_registered(id));
            self.out.events.push(NodeEvent::ReadServed { id, read_index, at_ms, session, seq });
        }
        let reply = self.kv.read(&request.command.op, at_ms);
        self.reads_served += 1;
        self.deliver(request.waiter, reply);
    }

    /// The same forward, delivered twice (a duplicating network).
    fn is_duplicate_forward(&self, request: &Request<C>) -> bool {
        let Waiter::Remote { peer, id } = request.waiter else { return false };
        let key = (request.command.session, request.command.seq);
        self.waiting_writes.get(&key).is_some_and(
            |existing| matches!(existing.waiter, Waiter::Remote { peer: p, id: i } if p == peer && i == id),
        )
    }

    /// The core took the command: it waits here for its slot.
    fn on_proposed(&mut self, request: Request<C>) {
        self.out.events.push(NodeEvent::Proposed);
        let Request { waiter, deadline_us, command, arrival, .. } = request;
        let key = (command.session, command.seq);
        let sampled_us = self.anatomy.sample(self.now_us);
        if sampled_us.is_some() {
            self.anatomy.write_sampled();
        }
        let waiting = WaitingWrite { command, waiter, deadline_us, arrival, sampled_us };
        if let Some(old) = self.waiting_writes.insert(key, waiting) {
            if old.sampled_us.is_some() {
                self.anatomy.write_dropped();
            }
            self.supersede(old.waiter);
        } else {
            self.pending(key.0, key.1, false);
        }
    }

    /// A retry of a command still waiting here took over: the old waiter (a
    /// forward the sender already gave up on) learns nothing more, and
    /// nothing it could act on.
    fn supersede(&mut self, old: Waiter<C>) {
        self.deliver(old, Reply::Error("ERR request superseded by its retry; its outcome is unknown".into()));
    }

    /// The core took the read: it waits here for the go-ahead.
    fn on_read_started(&mut self, request: Request<C>) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        if self.config.trace_checks {
            self.out.events.push(self.read_registered(id));
        }
        self.pending(request.command.session, request.command.seq, true);
        let Request { command, waiter, deadline_us, arrival, .. } = request;
        let sampled_us = self.anatomy.sample(self.now_us);
        self.waiting_reads.insert(id, WaitingRead { command, waiter, deadline_us, arrival, sampled_us });
    }

    /// Forget a waiting write. The reads that wait for it stay: the caller
    /// answers them (it ran) or times them out (it expired); a write routed
    /// to another leader keeps them, answered when it runs here.
    pub(super) fn take_waiting_write(&mut self, key: (SessionId, u64)) -> Option<WaitingWrite<C>> {
        let waiting = self.waiting_writes.remove(&key)?;
        // A hash table keeps its peak size: give a burst's back.
        let capacity = self.waiting_writes.capacity();
        if capacity > WAITING_WRITES_SPARE && self.waiting_writes.len() < capacity / 8 {
            self.waiting_writes.shrink_to(WAITING_WRITES_SPARE.max(self.waiting_writes.len() * 2));
        }
        if waiting.sampled_us.is_some() {
            self.anatomy.write_dropped();
        }
        self.left(key.0, key.1, false);
        Some(waiting)
    }

    pub(super) fn refuse(&mut self, request: Request<C>, reason: ForwardRefusal) {
        match request.waiter {
            Waiter::Remote { peer, id } => self.out.messages.push((peer, PeerFrame::ForwardRefused { id, reason })),
            waiter => self.deliver(waiter, refusal_reply(&reason)),
        }
    }

    /// This replica does not lead: hand the request to the leader, or park
    /// it (no leader to hand it to, or `forward_read_window` full).
    pub(super) fn route(&mut self, request: Request<C>, leader: Option<NodeId>) {
        self.route_again(request, leader, None);
    }

    /// [`Node::route`] a request first sent at `first_sent_tick` to the
    /// same leader, unanswered since.
    fn route_again(&mut self, request: Request<C>, leader: Option<NodeId>, first_sent_tick: Option<u64>) {
        if let Waiter::Remote { peer, id } = request.waiter {
            // Never forward twice: the entry node retries with a better hint.
            let reason = ForwardRefusal::NotLeader { leader };
            self.out.messages.push((peer, PeerFrame::ForwardRefused { id, reason }));
            return;
        }
        let Some(leader) = leader.filter(|&l| l != self.config.node && self.links_up.contains(&l)) else {
            self.park(request);
            return;
        };
        let read = !self.goes_through_log(&request);
        if read && self.forwarded_reads >= self.config.forward_read_window {
            self.out.events.push(NodeEvent::ForwardReadWindowFull);
            self.park(request);
            return;
        }
        let id = self.next_forward_id;
        self.next_forward_id += 1;
        let command = request.command.encode();
        let frame = if read {
            self.forwarded_reads += 1;
            PeerFrame::ForwardRead { id, command }
        } else {
            PeerFrame::Forward { id, command }
        };
        self.out.messages.push((leader, frame));
        self.out.events.push(NodeEvent::Forwarded { to: leader });
        // A forwarded read holds nothing here: the leader keeps its order
        // (`Node::place`).
        if !read {
            self.pending(request.command.session, request.command.seq, false);
        }
        let request = Request { maybe_applied: true, ..request };
        let sent_tick = self.tick_now();
        let first_sent_tick = first_sent_tick.unwrap_or(sent_tick);
        let due_tick = sent_tick + self.forward_retry_after();
        let sampled_us = self.anatomy.sample(self.now_us);
        self.forwards_due.insert((due_tick, id));
        let forwarded = Forwarded { request, leader, due_tick, first_sent_tick, sampled_us };
        self.forwarded.insert(id, forwarded);
    }

    /// How long (ticks) a forward waits for its answer before it is sent
    /// again: twice as long as forwards take to be answered (smoothed,
    /// from their first send), at least `forward_retry_ticks` and at most
    /// four times that. A forward is lost with its link (re-routed when
    /// the link goes down), to a lossy network or to a peer queue that
    /// overflowed; one merely slow is answered later. A fixed 200 ms
    /// re-sent every forward a leader was slower than that to answer, and
    /// a follower whose clients offered 20,000 SET/s sent its leader
    /// 27,000-84,000 forwards a second, each a second copy of a request
    /// the leader still had: overload feeding itself (stop 56, a leader
    /// handing over from a slow disk to a follower on two shared cores).
    /// Not doubled per retry, and capped: a forward lost as a partition
    /// healed, its wait grown from answers that took the partition's
    /// length, held its session's later commands in the quiet stretch
    /// after it (the simulator's latency checker, seed 676 of the log-read
    /// sweep).
    pub(super) fn forward_retry_after(&self) -> u64 {
        let least = self.config.forward_retry_ticks;
        (self.forward_ticks_x8 / 4).clamp(least, least.saturating_mul(4))
    }

    /// Answer a waiter, wherever it is.
    pub(super) fn deliver(&mut self, waiter: Waiter<C>, reply: Reply) {
        match waiter {
            Waiter::Client(client) => self.out.replies.push((client, reply)),
            Waiter::Remote { peer, id } => {
                self.out.messages.push((peer, PeerFrame::ForwardReply { id, reply: reply.encode() }))
            }
        }
    }

    /// True if it retried anything.
    pub(super) fn retry_parked(&mut self) -> bool {
        if !self.parked_may_go() {
            return false;
        }
        let leader = self.leader();
        if leader.is_none() {
            return false;
        }
        // A stale hint gets refusals: retry on a new hint at once, else
        // only every few ticks, not on each one.
        let due = self.tick_now() >= self.parked_retry_tick + self.config.parked_retry_ticks;
        if leader == self.parked_retry_leader && !due {
            return false;
        }
        self.parked_retry_leader = leader;
        self.parked_retry_tick = self.tick_now();
        self.submit_parked()
    }

    /// Submit parked requests in arrival order while they may go, until
    /// one is parked again (no route to a leader yet, or the window
    /// filled). True if it submitted any.
    pub(super) fn submit_parked(&mut self) -> bool {
        // What its session's order let go arrived before the parked
        // requests behind it: it takes its place among them first.
        self.submit_released();
        let mut submitted = false;
        while self.parked_may_go() {
            let Some(request) = self.parked.pop_front() else { break };
            let parked = self.parked.len();
            self.try_submit(request);
            submitted = true;
            if self.parked.len() > parked {
                break;
            }
        }
        submitted
    }

    /// The first parked request may go: to the core if this node leads, to
    /// the leader if it is a write or the read window has room.
    pub(super) fn parked_may_go(&self) -> bool {
        self.parked.front().is_some_and(|first| {
            self.replica.is_leader()
                || self.goes_through_log(first)
                || self.forwarded_reads < self.config.forward_read_window
        })
    }

    /// Forget forward `id` (answered, refused, retried, expired or lost
    /// with its link).
    pub(super) fn unforward(&mut self, id: u64) -> Option<Forwarded<C>> {
        let forwarded = self.forwarded.remove(&id)?;
        self.forwards_due.remove(&(forwarded.due_tick, id));
        let read = !self.goes_through_log(&forwarded.request);
        if read {
            self.forwarded_reads -= 1;
        } else {
            self.left(forwarded.request.command.session, forwarded.request.command.seq, false);
        }
        Some(forwarded)
    }

    /// Forward again what got no answer by its due tick
    /// (`Node::forward_retry_after`), the earliest due first (a retried
    /// read takes the window's place it frees). True if it retried anything.
    pub(super) fn retry_forwarded(&mut self) -> bool {
        let now = self.tick_now();
        // A retry gets a new id, after every one listed now, and a due
        // tick after now.
        let last = self.next_forward_id;
        let mut retried = false;
        while let Some(&(due_tick, id)) = self.forwards_due.first() {
            if due_tick > now || id >= last {
                break;
            }
            let forwarded = self.unforward(id).expect("listed");
            let leader = self.leader();
            // Timed from its first send while it goes to the same leader.
            let first_sent_tick = (leader == Some(forwarded.leader)).then_some(forwarded.first_sent_tick);
            self.route_again(forwarded.request, leader, first_sent_tick);
            retried = true;
        }
        retried
    }

    /// Answer every request past its deadline with an error that says
    /// whether it may have been applied.
    pub(super) fn expire(&mut self) {
        let now = self.now_us;
        let timeout_ms = self.config.request_timeout_us / 1000;
        let unknown = || Reply::Error(format!("ERR request timed out after {timeout_ms} ms; its outcome is unknown"));
        let mut late: Vec<_> =
            self.waiting_writes.iter().filter(|(_, w)| w.deadline_us <= now).map(|(k, _)| *k).collect();
        late.sort_unstable();
        // What waited behind its connection's earlier command and never ran.
        let behind = || {
            Reply::Error(format!(
                "ERR request timed out after {timeout_ms} ms behind an earlier command of its connection; \
                 it was not applied"
            ))
        };
        for key in late {
            let w = self.take_waiting_write(key).expect("listed");
            self.deliver(w.waiter, unknown());
            // The reads after it time out with it: the session's later
            // writes may run at any time now, and nothing could keep
            // these reads from seeing them.
            for read in self.reads_after_expired(key.0, key.1) {
                self.deliver(read.waiter, behind());
            }
        }
        let late: Vec<_> = self.waiting_reads.iter().filter(|(_, r)| r.deadline_us <= now).map(|(k, _)| *k).collect();
        for id in late {
            let read = self.waiting_reads.remove(&id).expect("listed");
            self.left(read.command.session, read.command.seq, true);
            self.deliver(read.waiter, unknown());
        }
        self.submit_released();
        let late: Vec<_> =
            self.forwarded.iter().filter(|(_, f)| f.request.deadline_us <= now).map(|(k, _)| *k).collect();
        for id in late {
            let forwarded = self.unforward(id).expect("listed");
            self.deliver(forwarded.request.waiter, unknown());
        }
        let not_applied = |request: &Request<C>| {
            if request.maybe_applied {
                unknown()
            } else {
                Reply::Error(format!(
                    "CLUSTERDOWN no leader for this shard within {timeout_ms} ms; the request was not applied"
                ))
            }
        };
        for queue in [&mut self.parked, &mut self.held] {
            let late = take_expired(queue, now, |r| r.deadline_us);
            for request in late {
                let reply = not_applied(&request);
                match request.waiter {
                    Waiter::Client(client) => self.out.replies.push((client, reply)),
                    Waiter::Remote { peer, id } => {
                        self.out.messages.push((peer, PeerFrame::ForwardReply { id, reply: reply.encode() }))
                    }
                }
            }
        }
        // Waiting behind their session's commands. A held write may have
        // been applied if it was handed here by another leader.
        let mut late = Vec::new();
        let mut sessions: Vec<SessionId> = self.sessions_waiting.keys().copied().collect();
        sessions.sort_unstable();
        for id in sessions {
            let session = self.sessions_waiting.get_mut(&id).expect("listed");
            late.extend(take_expired(&mut session.after_writes, now, |a| a.request.deadline_us).map(|a| a.request));
            late.extend(take_expired(&mut session.held, now, |r| r.deadline_us));
            // What an expired command held goes on.
            self.released.extend(session.releasable());
        }
        self.sessions_waiting.retain(|_, s| !s.is_empty());
        for request in late {
            let reply = if request.maybe_applied { unknown() } else { behind() };
            self.deliver(request.waiter, reply);
        }
        self.submit_released();
    }

    // ---- peers --------------------------------------------------------------

    pub fn on_link_up(&mut self, peer: NodeId) {
        self.links_up.insert(peer);
    }

    /// The link to `peer` went down: what was forwarded there may be lost.
    /// Retry it (same session and sequence: the store applies it once).
    pub fn on_link_down(&mut self, now_us: u64, peer: NodeId) {
        self.advance(now_us);
        self.links_up.remove(&peer);
        let ids: Vec<u64> = self.forwarded.iter().filter(|(_, f)| f.leader == peer).map(|(id, _)| *id).collect();
        for id in ids {
            let forwarded = self.unforward(id).expect("listed");
            self.park(forwarded.request);
        }
    }

    /// A frame from peer `from`. While the disk is behind, a frame that
    /// brings the disk entries (a leader's, a snapshot's chunk:
    /// [`brings_entries`]) is held, in arrival order, until an fsync lets
    /// the node accept again, and a forwarded request waits with the
    /// clients' requests; every other frame (acks, heartbeats, votes,
    /// answers) is stepped at once. So a leader whose disk is behind
    /// still commits with its followers' acks and keeps its leadership
    /// with their heartbeat replies, and a follower whose disk is behind
    /// still hands its clients the answers the leader sends them.
    ///
    /// Once the held frames are over `unsynced_bytes_max`, a frame that
    /// brings entries is dropped, as the network may drop it: the leader
    /// re-sends an Accept nobody acked (`accept_retry_ticks`), and a
    /// follower fetches what it missed of the committed log (catch-up),
    /// once its disk lets it take entries again. Holding a frame delays
    /// it, as the network may: the core takes messages in any order.
    /// Before, the shell stopped reading its peers at the bound, and a
    /// follower whose disk could not keep up with the load left its
    /// leader's answers to its clients unread, and its clients waiting,
    /// for as long as its disk was behind (stop 54's simulator failures).
    pub fn on_peer_frame(&mut self, now_us: u64, from: NodeId, frame: PeerFrame) {
        let over = self.held_frames_bytes > self.config.unsynced_bytes_max;
        if over && self.replica.config().injected_bug == InjectedBug::PeersUnreadWhileBehind {
            self.held_frames_bytes += frame_bytes(&frame);
            self.held_frames.push_back((from, frame));
            return;
        }
        if brings_entries(&frame) && (!self.accepting() || !self.held_frames.is_empty()) {
            if over {
                let first = self.frames_dropped_while_held == 0;
                self.frames_dropped_while_held += 1;
                self.out.events.push(NodeEvent::PeerFrameDropped { from, first });
                return;
            }
            self.held_frames_bytes += frame_bytes(&frame);
            self.held_frames.push_back((from, frame));
            return;
        }
        self.step_peer_frame(now_us, from, frame);
    }

    fn step_peer_frame(&mut self, now_us: u64, from: NodeId, frame: PeerFrame) {
        let via_log = matches!(frame, PeerFrame::Forward { .. });
        match frame {
            PeerFrame::Paxos(message) => {
                self.advance(now_us);
                if let Err(error) = self.replica.step(from, message) {
                    self.out.events.push(NodeEvent::PeerMessageRefused { from, error });
                }
            }
            PeerFrame::Forward { id, command } | PeerFrame::ForwardRead { id, command } => {
                self.advance(now_us);
                let deadline_us = self.now_us + self.config.request_timeout_us;
                // A read its entry node sent through the log (`order.rs`)
                // stays there.
                match Command::decode(&command) {
                    Ok(command) => {
                        self.arrivals += 1;
                        let mut request = Request::new(command, Waiter::Remote { peer: from, id }, deadline_us);
                        request.arrival = self.arrivals;
                        request.via_log = via_log;
                        // Held with the clients' requests while the disk
                        // is behind: the forwarding node's connection
                        // limits bound them, as they bound its clients.
                        self.admit(request);
                    }
                    Err(e) => {
                        self.out.events.push(NodeEvent::BadForward { from, detail: e.to_string() });
                        let reply = Reply::Error(format!("ERR malformed forwarded command: {e}"));
                        self.deliver(Waiter::Remote { peer: from, id }, reply);
                    }
                }
            }
            PeerFrame::ForwardReply { id, reply } => {
                self.advance(now_us);
                let Some(forwarded) = self.unforward(id) else { return };
                // From the first send, retried or not (the leader answers a
                // retry of a request it holds once, on the retry): errs
                // long, never short. Skipping retried ones (TCP's Karn's
                // rule) left a leader slower than the least wait with
                // no sample at all, and every forward retried.
                let sample = self.tick_now().saturating_sub(forwarded.first_sent_tick);
                self.forward_ticks_x8 = smoothed_x8(self.forward_ticks_x8, sample);
                let reply = Reply::decode(&reply).unwrap_or_else(|e| {
                    self.out.events.push(NodeEvent::BadForward { from, detail: e.to_string() });
                    Reply::Error(format!("ERR malformed reply from node {from}: {e}; the outcome is unknown"))
                });
                if let Some(start) = forwarded.sampled_us {
                    self.out
                        .events
                        .push(NodeEvent::Stage { stage: Stage::Forward, us: self.now_us.saturating_sub(start) });
                }
                self.deliver(forwarded.request.waiter, reply);
                self.submit_parked();
            }
            PeerFrame::ForwardRefused { id, reason } => {
                self.advance(now_us);
                let Some(forwarded) = self.unforward(id) else { return };
                match reason {
                    // Retry on the next tick, when the hint may be better.
                    ForwardRefusal::NotLeader { .. } => self.park(forwarded.request),
                    reason => self.deliver(forwarded.request.waiter, refusal_reply(&reason)),
                }
            }
        }
    }
}

/// Frames that bring the disk entries to write: a leader's (an Accept, a
/// catch-up's reply) and a snapshot's chunks.
fn brings_entries(frame: &PeerFrame) -> bool {
    matches!(frame, PeerFrame::Paxos(Message::Accept(_) | Message::CatchUpReply(_) | Message::SnapshotChunk(_)))
}

fn refusal_reply(reason: &ForwardRefusal) -> Reply {
    match reason {
        ForwardRefusal::Busy => Reply::Error("BUSY the shard's proposal queue is full; retry later".into()),
        ForwardRefusal::TooLarge => Reply::Error("ERR command larger than the batch limit".into()),
        ForwardRefusal::NotLeader { .. } => Reply::Error("CLUSTERDOWN no leader".into()),
    }
}

/// Take the entries of `queue` whose deadline (`deadline_us`) is `now` or
/// earlier, in order, keeping the rest in order. Leaves the queue as it is,
/// without rebuilding it, when nothing expired (the common case: this runs
/// for every waiting session every few ticks).
fn take_expired<T>(
    queue: &mut VecDeque<T>,
    now: u64,
    deadline_us: impl Fn(&T) -> u64,
) -> std::collections::vec_deque::IntoIter<T> {
    if !queue.iter().any(|item| deadline_us(item) <= now) {
        return VecDeque::new().into_iter();
    }
    let (late, fresh): (VecDeque<T>, VecDeque<T>) =
        std::mem::take(queue).into_iter().partition(|item| deadline_us(item) <= now);
    *queue = fresh;
    late.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_expired_keeps_both_sides_in_order_and_an_unexpired_queue_as_it_was() {
        let mut queue: VecDeque<u64> = [5, 1, 7, 3, 9].into_iter().collect();
        let capacity = queue.capacity();
        assert_eq!(take_expired(&mut queue, 0, |&d| d).count(), 0);
        assert_eq!(queue, [5, 1, 7, 3, 9], "nothing expired: untouched");
        assert_eq!(queue.capacity(), capacity);
        let late: Vec<u64> = take_expired(&mut queue, 5, |&d| d).collect();
        assert_eq!(late, [5, 1, 3], "the expired, in queue order (a deadline equal to now counts)");
        assert_eq!(queue, [7, 9], "the rest, in queue order");
    }
}
