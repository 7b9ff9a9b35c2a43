//! A connection's order: its commands take effect in the order it sent
//! them, though it pipelines them (Redis's contract; the rules are on
//! `request::SessionWaiting`). Found by the simulator's session-order
//! checker (`sim/session_order.rs`): `SET k 1; GET k; INCR k; GET k` in one
//! pipeline answered `OK, 2, 2, 2` at every node, where Redis answers `OK,
//! 1, 2, 2`. The GET was held until the SET had run, but the INCR,
//! proposed at once, ran in the same batch before the GET was let go.
//!
//! Where a read must come right after a write, it is answered inside the
//! store's apply of that write (`KvStore::apply_observed`): the store may
//! run the session's next command, waiting for that write, in the same
//! call. Such a read stays with its write if this node stops leading (the
//! write still runs here, as a follower applies the log, at whatever slot
//! it lands in). If the session runs past the read before the write runs
//! here (this node learns of the write from a snapshot, or a later command
//! runs first because the client gave the write up), the read is refused
//! as not applied rather than answered out of order. If the write never
//! runs (the store refused it), the read waits for its deadline.
//!
//! The leader keeps the order of forwarded commands too: until stop 45 a
//! follower held a write behind a read it had forwarded until the read's
//! answer came back, and sent a read behind a forwarded write through the
//! log, which cost pipelines through followers a round trip or a group
//! commit at each turn between reading and writing (2k ops/s open-loop
//! p99 about 3.8 against 1.9 ms, `results/README.md` section 23).

use super::output::NodeEvent;
use super::request::{AfterWrite, Request, Waiter};
use super::state::Node;
use crate::kv::{Reply, SessionId, ERROR_READ_OVERTAKEN, SESSION_NONE};
use crate::net::peer::ForwardRefusal;
use crate::paxos::InjectedBug;

/// Where a client request goes, as its session's order allows.
pub(super) enum Placement<C> {
    /// Into the log, behind the session's writes.
    Log(Request<C>),
    /// To the core as a lease or read-index read.
    Read(Request<C>),
    /// Nowhere yet: it waits here (held, or answered after a write).
    Waits,
}

impl<C> Node<C> {
    /// Place `request` in its session's order.
    pub(super) fn place(&mut self, mut request: Request<C>) -> Placement<C> {
        let through_log = self.goes_through_log(&request);
        let unordered = self.replica.config().injected_bug == InjectedBug::SessionOrderIgnored;
        let remote = matches!(request.waiter, Waiter::Remote { .. });
        if let Some(session) = self.sessions_waiting.get_mut(&request.command.session).filter(|_| !unordered) {
            if session.holds(&request.command, through_log) {
                session.hold(request);
                return Placement::Waits;
            }
            if through_log {
                // Its client named the last *write* before it as its `prev`;
                // a read this node sent through the log since runs before
                // it too, wherever the two land in the log.
                if let Some(last) = session.last_logged_before(&request.command) {
                    request.command.prev = request.command.prev.max(last);
                }
                return Placement::Log(request);
            }
        } else if through_log {
            return Placement::Log(request);
        }
        if remote || request.maybe_applied {
            return self.place_forwarded_read(request, unordered);
        }
        let session = self.sessions_waiting.get(&request.command.session).filter(|_| !unordered);
        let Some(write) = session.and_then(|s| s.write_before(&request.command)) else {
            return Placement::Read(request);
        };
        // A lease read may be answered from any state at or past the
        // commit index it arrived at; the write's slot is past it.
        let here = self.waiting_writes.contains_key(&(request.command.session, write));
        if here && self.may_answer_after_a_write() {
            self.attach(write, request);
            return Placement::Waits;
        }
        request.command.prev = request.command.prev.max(write);
        if !self.replica.is_leader() && self.replica.config().lease_reads && !self.serves_stale_reads() {
            // A follower forwards it as a read naming the write: the
            // leader answers it right after that write runs there
            // (`place_forwarded_read`).
            return Placement::Read(request);
        }
        // Without leases nothing here confirms this replica still leads,
        // and a write forwarded to the leader runs there: the read takes
        // a slot of its own, behind the write (its `prev`).
        request.via_log = true;
        Placement::Log(request)
    }

    /// May a read arriving now be answered right after a write waiting
    /// here runs? With a lease, a read may be answered from any state at
    /// or past its read index, the slots committed when it arrived; the
    /// write's slot is past it, unless a copy of the write proposed by an
    /// earlier leader sits in a slot below, committed but not yet applied
    /// (found by the simulator: a new leader answered such a read at slot
    /// 318 after slots up to 359 were committed), or the write itself was
    /// committed but not yet applied when the read arrived. The read keeps
    /// its read index and, if the write runs below it, waits for it
    /// (`AfterWrite::read_index`).
    fn may_answer_after_a_write(&self) -> bool {
        self.replica.holds_lease() || self.serves_stale_reads()
    }

    /// The time a read answered now, right after its write ran here, is
    /// judged at: the log's time, that of the write's batch or a later
    /// one (the read is placed right after them), provided this node
    /// still leads under its lease and that time is no earlier than any
    /// an earlier leader may have judged a read at. A new leader's log can
    /// end with its predecessor's last batch, stamped before that
    /// predecessor's last reads (the simulator's linearizability checker,
    /// once a hand-over elected the next leader at once). `None`: it may
    /// not be answered here now; it is a read like any other.
    fn read_after_write_time(&self) -> Option<u64> {
        let log_ms = self.kv.log_time();
        if self.serves_stale_reads() {
            return Some(log_ms);
        }
        let floor = self.replica.elected_floor().filter(|_| self.replica.holds_lease())?;
        (log_ms >= floor).then_some(log_ms)
    }

    /// Answer `request` right after `write` of its session runs here.
    fn attach(&mut self, write: u64, request: Request<C>) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        if self.config.trace_checks {
            self.out.events.push(self.read_registered(id));
        }
        let read_index = if self.serves_stale_reads() { 0 } else { self.replica.read_index().unwrap_or(u64::MAX) };
        let session = self.sessions_waiting.entry(request.command.session).or_default();
        session.attach(AfterWrite { write, id, read_index, ran: false, request });
    }

    /// A read another node forwarded here. It names in `prev` the write of
    /// its connection it must see. Its entry node did not hold the
    /// connection's later commands for it, so one of them may have got
    /// here first (a forward retried, or sent to another leader): this
    /// node keeps the order.
    ///
    /// - A retry of a read this leader sent through the log gets the reply
    ///   it ran with, or waits for its slot (an entry node sends a read
    ///   through the log without leases).
    /// - If a later command of its connection ran here, it is refused.
    /// - If its write ran here (or it names none), it is served as a read
    ///   (the core's lease or read-index round; a later command of its
    ///   connection that runs meanwhile makes it refused then,
    ///   `Node::overtaken`).
    /// - If this leader holds its lease, it is answered right after its
    ///   write runs here, whether that write waits here for its slot or has
    ///   not arrived yet (a forward lost and sent again, or overtaken on a
    ///   network that reorders): it waits for it, until its deadline.
    /// - Else (no lease) the entry node is told to try again shortly. It
    ///   never goes through the log here: a copy in the log and a copy
    ///   served as a read, on two leaders, could answer differently.
    fn place_forwarded_read(&mut self, request: Request<C>, unordered: bool) -> Placement<C> {
        let (session, seq, prev) = (request.command.session, request.command.seq, request.command.prev);
        let remote = matches!(request.waiter, Waiter::Remote { .. });
        if session == SESSION_NONE {
            return Placement::Read(request);
        }
        if let Some(reply) = self.kv.ran_reply(session, seq).cloned() {
            self.deliver(request.waiter, reply);
            return Placement::Waits;
        }
        if self.waiting_writes.contains_key(&(session, seq)) {
            return Placement::Log(Request { via_log: true, ..request });
        }
        if unordered || !self.replica.is_leader() {
            return Placement::Read(request); // to the leader, or refused (never forwarded twice)
        }
        match self.kv.session_position(session, prev, seq) {
            Some((_, true)) => {
                self.deliver(request.waiter, Reply::Error(ERROR_READ_OVERTAKEN.into()));
                return Placement::Waits;
            }
            Some((true, false)) => return Placement::Read(request),
            _ if prev == 0 => return Placement::Read(request),
            _ => {}
        }
        let before = self.sessions_waiting.get(&session).and_then(|s| s.write_before(&request.command));
        let here = before.filter(|&w| w >= prev && self.waiting_writes.contains_key(&(session, w)));
        match here {
            Some(write) if self.may_answer_after_a_write() => {
                self.attach(write, request);
                Placement::Waits
            }
            None if remote && self.may_answer_after_a_write() => {
                // Its write has not arrived: forwards overtake each other
                // (one lost and sent again, a network that reorders). It
                // waits here for that write, whichever way it comes.
                self.attach(prev.max(before.unwrap_or(0)), request);
                Placement::Waits
            }
            _ if remote => {
                self.refuse(request, ForwardRefusal::NotLeader { leader: self.leader() });
                Placement::Waits
            }
            _ => {
                // A client's own read, forwarded before this node led: its
                // answer comes from here only, so the log is safe.
                let mut request = request;
                request.command.prev = prev.max(before.unwrap_or(0));
                request.via_log = true;
                Placement::Log(request)
            }
        }
    }

    /// A read confirmed by the core: a later command of its connection ran
    /// here meanwhile (it got here first: `place_forwarded_read`).
    pub(super) fn overtaken(&self, session: SessionId, seq: u64) -> bool {
        session != SESSION_NONE && self.kv.session_position(session, 0, seq).is_some_and(|(_, later_ran)| later_ran)
    }

    /// Answer the reads of `session` that wait for a write up to `upto`
    /// which ran without this node's apply seeing it run (its reply was a
    /// replay, or a snapshot from a peer holds it): from the state as it
    /// is if nothing of the session after them ran yet; if something did,
    /// they cannot be served in their connection's order any more.
    pub(super) fn answer_reads_after(&mut self, session: SessionId, upto: u64) {
        let Some(waiting) = self.sessions_waiting.get_mut(&session) else { return };
        let reads = waiting.reads_after(upto);
        self.settle_reads_after(session, reads);
    }

    /// Answer the reads whose read index the apply has reached: their
    /// writes ran below it (`AfterWrite::read_index`).
    pub(super) fn answer_reads_due(&mut self) {
        while let Some(&(index, session)) = self.reads_due.first() {
            if index > self.applied {
                break;
            }
            self.reads_due.pop_first();
            let Some(waiting) = self.sessions_waiting.get_mut(&session) else { continue };
            let reads = waiting.reads_due(self.applied);
            if !reads.is_empty() {
                self.settle_reads_after(session, reads);
            }
        }
    }

    /// `reads` of `session`, taken from those waiting after a write: a
    /// read whose write ran is answered from the state as it is, once its
    /// read index is applied (until then it waits, due by that index), if
    /// nothing of the session after it ran yet; if something did, it
    /// cannot be served in its connection's order any more. The others
    /// wait on.
    fn settle_reads_after(&mut self, session: SessionId, reads: Vec<AfterWrite<C>>) {
        let log_ms = self.kv.log_time();
        let mut kept = Vec::new();
        let mut unleased = Vec::new();
        for mut read in reads {
            match self.kv.session_position(session, read.write, read.request.command.seq) {
                Some((_, true)) => self.answer_read_after(read, None, log_ms),
                Some((true, false)) if self.applied >= read.read_index => match self.read_after_write_time() {
                    Some(at_ms) => {
                        let reply = self.kv.read(&read.request.command.op, at_ms);
                        self.answer_read_after(read, Some(reply), at_ms);
                    }
                    // Its write ran, but this node may no longer answer it
                    // (it stepped down, say on a hand-over, and the state
                    // here may be behind the new leader's): a read like
                    // any other now.
                    None => unleased.push(read.request),
                },
                Some((true, false)) => {
                    read.ran = true;
                    self.reads_due.insert((read.read_index, session));
                    kept.push(read);
                }
                _ => kept.push(read),
            }
        }
        let waiting = self.sessions_waiting.get_mut(&session).expect("looked up above");
        for read in kept.into_iter().rev() {
            waiting.after_writes.push_front(read);
        }
        self.forget_if_idle(session);
        for request in unleased {
            self.try_submit(request);
        }
    }

    /// A snapshot from a peer replaced the store: the writes reads wait
    /// for may be in it.
    pub(super) fn answer_reads_after_snapshot(&mut self) {
        let mut sessions: Vec<SessionId> =
            self.sessions_waiting.iter().filter(|(_, w)| !w.after_writes.is_empty()).map(|(s, _)| *s).collect();
        sessions.sort_unstable();
        for session in sessions {
            self.answer_reads_after(session, u64::MAX);
        }
    }

    /// Deliver a read's answer, read right after the write it waited for;
    /// `None`: a command of its session after it ran first.
    pub(super) fn answer_read_after(&mut self, read: AfterWrite<C>, reply: Option<Reply>, at_ms: u64) {
        let AfterWrite { id, request, .. } = read;
        let Some(reply) = reply else {
            self.deliver(request.waiter, Reply::Error(ERROR_READ_OVERTAKEN.into()));
            return;
        };
        if self.config.trace_checks {
            let (session, seq, read_index) = (request.command.session, request.command.seq, self.applied);
            self.out.events.push(NodeEvent::ReadServed { id, read_index, at_ms, session, seq });
        }
        self.reads_served += 1;
        self.deliver(request.waiter, reply);
    }

    /// Command `seq` of `session` expired: the reads that waited for it.
    pub(super) fn reads_after_expired(&mut self, session: SessionId, seq: u64) -> Vec<Request<C>> {
        let Some(waiting) = self.sessions_waiting.get_mut(&session) else { return Vec::new() };
        let reads = waiting.reads_waiting_for(seq);
        self.forget_if_idle(session);
        reads
    }

    /// Command `seq` of `session` is pending here: waiting for its slot or
    /// for the core to confirm it (a read), or forwarded to the leader (a
    /// write; a forwarded read holds nothing here, the leader keeps its
    /// order).
    pub(super) fn pending(&mut self, session: SessionId, seq: u64, read: bool) {
        let waiting = self.sessions_waiting.entry(session).or_default();
        if read {
            waiting.reads.add(seq);
        } else {
            waiting.writes.add(seq);
        }
    }

    /// It no longer is (answered, or on its way elsewhere): what a read
    /// held goes on, in order.
    pub(super) fn left(&mut self, session: SessionId, seq: u64, read: bool) {
        let Some(waiting) = self.sessions_waiting.get_mut(&session) else { return };
        if read {
            waiting.reads.remove(seq);
            let released = waiting.releasable();
            self.released.extend(released);
        } else {
            waiting.writes.remove(seq);
        }
        self.forget_if_idle(session);
    }

    pub(super) fn forget_if_idle(&mut self, session: SessionId) {
        if self.sessions_waiting.get(&session).is_some_and(|s| s.is_empty()) {
            self.sessions_waiting.remove(&session);
        }
    }

    /// Admit what `left` let go, in order, after whatever let it go (and
    /// behind the parked requests that arrived before it).
    pub(super) fn submit_released(&mut self) {
        while let Some(request) = self.released.pop_front() {
            self.admit_in_order(request);
        }
    }
}
