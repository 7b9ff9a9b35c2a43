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

use super::output::NodeEvent;
use super::request::{AfterWrite, Request, Waiter};
use super::state::Node;
use crate::kv::{Reply, SessionId, SESSION_NONE};
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
        let session = match self.sessions_waiting.get_mut(&request.command.session) {
            Some(session) if !unordered => session,
            _ if through_log => return Placement::Log(request),
            _ => return self.place_read(request),
        };
        if session.holds(&request.command, through_log) {
            session.hold(request);
            return Placement::Waits;
        }
        if through_log {
            // Its client named the last *write* before it as its `prev`;
            // a read this node sent through the log since runs before it
            // too, wherever the two land in the log.
            if let Some(last) = session.last_logged_before(&request.command) {
                request.command.prev = request.command.prev.max(last);
            }
            return Placement::Log(request);
        }
        let Some(write) = session.write_before(&request.command) else { return self.place_read(request) };
        // A lease read may be answered from any state at or past the
        // commit index it arrived at; the write's slot is past it. Without
        // a lease nothing here confirms this replica still leads, and a
        // write forwarded to the leader runs there: the read takes a slot
        // of its own, behind the write (its `prev`).
        let here = self.waiting_writes.contains_key(&(request.command.session, write));
        if !(here && (self.replica.holds_lease() || self.serves_stale_reads())) {
            request.via_log = true;
            request.command.prev = request.command.prev.max(write);
            return Placement::Log(request);
        }
        let id = self.next_read_id;
        self.next_read_id += 1;
        if self.config.trace_checks {
            self.out.events.push(self.read_registered(id));
        }
        let session = self.sessions_waiting.get_mut(&request.command.session).expect("looked up above");
        session.attach(AfterWrite { write, id, request });
        Placement::Waits
    }

    /// A read with nothing of its session before it here. A forwarded
    /// retry of a read that this leader sent through the log, and that ran
    /// there, gets the reply it ran with (its entry node, which retried
    /// it, does not know it went through the log). A client's own read
    /// here never ran: this node keeps its choice (`Request::via_log`).
    fn place_read(&mut self, request: Request<C>) -> Placement<C> {
        let (session, seq) = (request.command.session, request.command.seq);
        if session == SESSION_NONE || !matches!(request.waiter, Waiter::Remote { .. }) {
            return Placement::Read(request);
        }
        let Some(reply) = self.kv.ran_reply(session, seq).cloned() else { return Placement::Read(request) };
        self.deliver(request.waiter, reply);
        Placement::Waits
    }

    /// Answer the reads of `session` that wait for a write up to `upto`
    /// which ran without this node's apply seeing it run (its reply was a
    /// replay, or a snapshot from a peer holds it): from the state as it
    /// is if nothing of the session after them ran yet; if something did,
    /// they cannot be served in their connection's order any more.
    pub(super) fn answer_reads_after(&mut self, session: SessionId, upto: u64) {
        let Some(waiting) = self.sessions_waiting.get_mut(&session) else { return };
        let reads = waiting.reads_after(upto);
        let at_ms = self.kv.log_time();
        let mut kept = Vec::new();
        for read in reads {
            match self.kv.session_position(session, read.write, read.request.command.seq) {
                Some((_, true)) => self.answer_read_after(read, None, at_ms),
                Some((true, false)) => {
                    let reply = self.kv.read(&read.request.command.op, at_ms);
                    self.answer_read_after(read, Some(reply), at_ms);
                }
                _ => kept.push(read),
            }
        }
        let waiting = self.sessions_waiting.get_mut(&session).expect("looked up above");
        for read in kept.into_iter().rev() {
            waiting.after_writes.push_front(read);
        }
        self.forget_if_idle(session);
    }

    /// A snapshot from a peer replaced the store: the writes reads wait
    /// for may be in it.
    pub(super) fn answer_reads_after_snapshot(&mut self) {
        let sessions: Vec<SessionId> =
            self.sessions_waiting.iter().filter(|(_, w)| !w.after_writes.is_empty()).map(|(s, _)| *s).collect();
        for session in sessions {
            self.answer_reads_after(session, u64::MAX);
        }
    }

    /// Deliver a read's answer, read right after the write it waited for;
    /// `None`: a command of its session after it ran first.
    pub(super) fn answer_read_after(&mut self, read: AfterWrite<C>, reply: Option<Reply>, at_ms: u64) {
        let AfterWrite { id, request, .. } = read;
        let Some(reply) = reply else {
            let message = "ERR the read could not be served in its connection's order (a later command of the \
                           connection ran first: the leader changed, or the write before it was given up on); it \
                           was not applied";
            self.deliver(request.waiter, Reply::Error(message.into()));
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
    /// for the core to confirm it (a read), or forwarded to the leader.
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
