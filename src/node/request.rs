//! The request table's entries.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasherDefault;

use crate::kv::{Command, IdHasher, Op, SessionId};
use crate::paxos::NodeId;

/// Who waits for a request's answer.
#[derive(Debug)]
pub enum Waiter<C> {
    /// A client of this node; `C` is the shell's handle for it.
    Client(C),
    /// Another node forwarded the request to us as leader; `id` is its.
    Remote { peer: NodeId, id: u64 },
}

/// A client request on its way to a slot (or a read).
#[derive(Debug)]
pub struct Request<C> {
    pub command: Command,
    pub waiter: Waiter<C>,
    /// Node-local microseconds after which the client gets an error.
    pub deadline_us: u64,
    /// Arrival order at this node (0: not yet arrived). Parked and held
    /// requests keep this order, so retries never reorder a client's commands.
    pub(super) arrival: u64,
    /// The request may have been applied (it was handed to another node,
    /// or proposed here): a timeout must not claim otherwise.
    pub(super) maybe_applied: bool,
}

impl<C> Request<C> {
    pub fn new(command: Command, waiter: Waiter<C>, deadline_us: u64) -> Request<C> {
        Request { command, waiter, deadline_us, arrival: 0, maybe_applied: false }
    }
}

/// A write in the proposal queue or in flight.
pub(super) struct WaitingWrite<C> {
    /// Kept to route the command again if this replica stops leading.
    pub command: Command,
    pub waiter: Waiter<C>,
    pub deadline_us: u64,
    /// Sampled for the latency anatomy: when it was proposed.
    pub sampled_us: Option<u64>,
}

/// Per session: its writes waiting here, and its reads held until the
/// writes sent before them that its client has not settled are applied. A
/// connection's commands take effect in the order it sent them (Redis's
/// pipelining contract): a read must see the writes pipelined before it,
/// though they are not acknowledged yet, and need not wait for the writes
/// pipelined after it, nor for one its client was already answered for
/// (its outcome unknown: it timed out at the entry node).
pub(super) struct SessionWaiting<C> {
    /// Sequence numbers of the session's waiting writes.
    pub writes: BTreeSet<u64>,
    /// Held reads, in sequence order.
    pub held_reads: VecDeque<Request<C>>,
}

impl<C> Default for SessionWaiting<C> {
    fn default() -> Self {
        SessionWaiting { writes: BTreeSet::new(), held_reads: VecDeque::new() }
    }
}

impl<C> SessionWaiting<C> {
    /// Must `read`, arriving now, wait? Behind an earlier read held here
    /// (reads take effect in the order sent), and for the writes sent
    /// before it that its client has not settled.
    pub fn holds(&self, read: &Command) -> bool {
        self.held_reads.front().is_some_and(|held| held.command.seq < read.seq) || self.waits_for_a_write(read)
    }

    /// A write below the read's `ack` has had its answer (its outcome
    /// unknown, if it is still waiting here), so the read owes it no
    /// order; waiting for it could take as long as the write waits for its
    /// own `prev`, which the client may have given up on too.
    fn waits_for_a_write(&self, read: &Command) -> bool {
        self.writes.range(read.ack.min(read.seq)..read.seq).next().is_some()
    }

    /// The held reads (a prefix, in order) no write waits for any more.
    pub fn releasable(&mut self) -> Vec<Request<C>> {
        let count = self.held_reads.iter().take_while(|r| !self.waits_for_a_write(&r.command)).count();
        self.held_reads.drain(..count).collect()
    }
}

/// A read the core is confirming (lease or read-index).
pub(super) struct WaitingRead<C> {
    pub command: Command,
    pub waiter: Waiter<C>,
    pub deadline_us: u64,
    /// Sampled for the latency anatomy: when the core took it.
    pub sampled_us: Option<u64>,
}

impl<C> WaitingRead<C> {
    pub fn op(&self) -> &Op {
        &self.command.op
    }
}

/// A request this node forwarded to `leader`, kept to retry it elsewhere.
pub(super) struct Forwarded<C> {
    pub request: Request<C>,
    pub leader: NodeId,
    /// The tick it was sent: unanswered for `forward_retry_ticks`, it is
    /// sent again (the session applies it once).
    pub sent_tick: u64,
    /// Sampled for the latency anatomy: when it was sent.
    pub sampled_us: Option<u64>,
}

/// A Ready whose records are appended but not yet durable.
pub(super) struct Unsynced {
    /// The append this Ready's replies depend on (the latest one at its time).
    pub token: u64,
    /// The Ready number to pass to `Replica::on_persisted`.
    pub number: u64,
    pub sends: Vec<crate::paxos::Envelope>,
}

/// The waiting writes, by `(session, seq)`. A hash table, not a
/// `BTreeMap`: inserted in an order that interleaves sessions and removed
/// as slots apply, a tree shifted its 200-byte values within its nodes on
/// nearly every insertion and removal (about 10% of a leader's time under
/// pipelined SETs). Its hasher is fixed, so the table behaves the same in
/// every run, and the two places that go through every entry (expiry, a
/// step-down) sort the keys first: the table's order is never seen.
pub(super) type WaitingWrites<C> = HashMap<(SessionId, u64), WaitingWrite<C>, BuildHasherDefault<IdHasher>>;

/// Slots the waiting writes' table keeps however empty it gets.
pub(super) const WAITING_WRITES_SPARE: usize = 4096;
