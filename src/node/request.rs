//! The request table's entries.

use std::collections::{HashMap, VecDeque};
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
    /// A read this node sends through the log, behind writes of its
    /// session (`order.rs`).
    pub(super) via_log: bool,
}

impl<C> Request<C> {
    pub fn new(command: Command, waiter: Waiter<C>, deadline_us: u64) -> Request<C> {
        Request { command, waiter, deadline_us, arrival: 0, maybe_applied: false, via_log: false }
    }
}

/// A write in the proposal queue or in flight.
pub(super) struct WaitingWrite<C> {
    /// Kept to route the command again if this replica stops leading.
    pub command: Command,
    pub waiter: Waiter<C>,
    pub deadline_us: u64,
    /// Its request's arrival order (`Request::arrival`), kept if it is
    /// routed again.
    pub arrival: u64,
    /// Sampled for the latency anatomy: when it was proposed.
    pub sampled_us: Option<u64>,
}

/// Per session: what of it is pending at this node, kept so that a
/// connection's commands take effect in the order it sent them (Redis's
/// pipelining contract), though it pipelines them. A read must see the
/// writes pipelined before it, though they are not acknowledged yet, and
/// must not see those pipelined after it. It owes no order to a command
/// its client was already answered for (outcome unknown: it timed out at
/// the entry node), which its `ack` says; waiting for one could take as
/// long as that command waits for its own `prev`.
///
/// The rules (`order.rs`):
/// - a read behind a pending write is answered right after that write
///   runs, before anything after it (`after_writes`), if the write waits
///   here for its slot (or, for a forwarded read, has yet to arrive) and
///   this leader held a lease when the read arrived; if the write runs
///   below the slots committed then, the read waits for those
///   (`AfterWrite::read_index`). Otherwise a leader sends it
///   through the log, where the store runs it after its `prev`, the
///   session's last write, wherever the two land; a follower forwards it
///   as a read naming that write, and the leader places it
///   (`Node::place_forwarded_read`);
/// - a write behind a read the core is confirming waits until that read
///   is answered (`held`), and so does everything the session sends after
///   it. A follower holds nothing behind a read it forwarded: the leader
///   refuses a read that a later command of its connection overtook (a
///   forward retried, or a leader change), never answering it out of
///   order (`Node::overtaken`, `kv::Session::overtaken`).
pub(super) struct SessionWaiting<C> {
    /// The session's commands through the log pending here (waiting for a
    /// slot, or forwarded and unanswered): sequence number -> copies.
    pub writes: Counts,
    /// The session's reads the core is confirming here: sequence number ->
    /// copies.
    pub reads: Counts,
    /// Reads to answer right after a write of the session runs, in
    /// sequence order.
    pub after_writes: VecDeque<AfterWrite<C>>,
    /// Commands held behind a pending read, in sequence order.
    pub held: VecDeque<Request<C>>,
}

/// A multiset of sequence numbers: a forward retried while its first
/// copy is still waiting is two. Sorted `(seq, copies)` pairs in a deque:
/// a session's commands arrive in sequence order and mostly leave in it,
/// so an entry lands at the back and leaves near the front, and the
/// few entries (about a pipeline's depth) are searched in place. Every
/// read and write at the node passes through one (see `SessionsWaiting`).
#[derive(Default)]
pub(super) struct Counts(VecDeque<(u64, u32)>);

impl Counts {
    pub fn add(&mut self, seq: u64) {
        let at = self.0.partition_point(|&(s, _)| s < seq);
        match self.0.get_mut(at) {
            Some((s, count)) if *s == seq => *count += 1,
            _ => self.0.insert(at, (seq, 1)),
        }
    }

    pub fn remove(&mut self, seq: u64) {
        let at = self.0.partition_point(|&(s, _)| s < seq);
        if let Some((_, count)) = self.0.get_mut(at).filter(|(s, _)| *s == seq) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(at);
            }
        }
    }

    pub fn total(&self) -> usize {
        self.0.iter().map(|&(_, c)| c as usize).sum()
    }

    fn last_in(&self, range: std::ops::Range<u64>) -> Option<u64> {
        let end = self.0.partition_point(|&(s, _)| s < range.end);
        self.0.get(end.checked_sub(1)?).map(|&(seq, _)| seq).filter(|seq| range.contains(seq))
    }

    fn any_in(&self, range: std::ops::Range<u64>) -> bool {
        let start = self.0.partition_point(|&(s, _)| s < range.start);
        self.0.get(start).is_some_and(|(seq, _)| range.contains(seq))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<C> Default for SessionWaiting<C> {
    fn default() -> Self {
        SessionWaiting {
            writes: Counts::default(),
            reads: Counts::default(),
            after_writes: VecDeque::new(),
            held: VecDeque::new(),
        }
    }
}

/// The sequence numbers below `command`'s that it owes order to: those
/// its client has not settled.
fn owed(command: &Command) -> std::ops::Range<u64> {
    command.ack.min(command.seq)..command.seq
}

impl<C> SessionWaiting<C> {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.reads.is_empty() && self.after_writes.is_empty() && self.held.is_empty()
    }

    /// Must `command`, arriving now, be held? Behind an earlier held
    /// command; a write (or a read through the log) also behind a
    /// pending read.
    pub fn holds(&self, command: &Command, through_log: bool) -> bool {
        self.held.front().is_some_and(|held| held.command.seq < command.seq)
            || (through_log && self.reads.any_in(owed(command)))
    }

    /// The write a read arriving now must come after: the session's last
    /// pending one it owes order to, or the one an earlier read waits for
    /// (reads take effect in the order sent). Not a write that ran: an
    /// earlier read waiting for its read index after it holds nothing
    /// back (reads change nothing).
    pub fn write_before(&self, read: &Command) -> Option<u64> {
        let owed = owed(read);
        let write = self.writes.last_in(owed.clone());
        let earlier_read =
            self.after_writes.iter().rev().find(|a| !a.ran && owed.contains(&a.request.command.seq)).map(|a| a.write);
        write.max(earlier_read)
    }

    /// The session's last command through the log pending here that
    /// `command` owes order to.
    pub fn last_logged_before(&self, command: &Command) -> Option<u64> {
        self.writes.last_in(owed(command))
    }

    pub fn attach(&mut self, read: AfterWrite<C>) {
        let at = self.after_writes.partition_point(|a| a.request.command.seq < read.request.command.seq);
        self.after_writes.insert(at, read);
    }

    /// The reads to answer now that `write` ran (those after it, or after
    /// an earlier write).
    pub fn reads_after(&mut self, write: u64) -> Vec<AfterWrite<C>> {
        let count = self.after_writes.iter().take_while(|a| a.write <= write).count();
        self.after_writes.drain(..count).collect()
    }

    /// The reads whose write ran and whose read index is applied, in order.
    pub fn reads_due(&mut self, applied: u64) -> Vec<AfterWrite<C>> {
        let (due, kept): (VecDeque<_>, _) =
            std::mem::take(&mut self.after_writes).into_iter().partition(|a| a.ran && a.read_index <= applied);
        self.after_writes = kept;
        due.into_iter().collect()
    }

    /// The reads that wait for `write` alone (it expired).
    pub fn reads_waiting_for(&mut self, write: u64) -> Vec<Request<C>> {
        let (waiting, kept): (VecDeque<_>, _) =
            std::mem::take(&mut self.after_writes).into_iter().partition(|a| a.write == write && !a.ran);
        self.after_writes = kept;
        waiting.into_iter().map(|a| a.request).collect()
    }

    /// The held commands (a prefix, in order) no pending read holds any
    /// more. A read goes as soon as it leads: it is placed again, behind
    /// the commands released before it.
    pub fn releasable(&mut self) -> Vec<Request<C>> {
        let count = self
            .held
            .iter()
            .take_while(|r| (r.command.op.is_read_only() && !r.via_log) || !self.reads.any_in(owed(&r.command)))
            .count();
        self.held.drain(..count).collect()
    }

    pub fn hold(&mut self, request: Request<C>) {
        let at = self.held.partition_point(|r| r.command.seq < request.command.seq);
        self.held.insert(at, request);
    }
}

/// A read to answer right after a write of its session runs.
pub(super) struct AfterWrite<C> {
    /// The write's sequence number.
    pub write: u64,
    /// Its read id, for the checkers' events.
    pub id: u64,
    /// The slots it must see applied: those committed when it arrived
    /// (`Replica::read_index`). The write's slot is usually past them; if
    /// it is not (the write was committed but not yet applied here when
    /// the read arrived, or a copy of it from an earlier leader ran), the
    /// read is answered once they are applied, if no later command of its
    /// session ran by then.
    pub read_index: u64,
    /// Its write ran: it waits for `read_index` alone.
    pub ran: bool,
    pub request: Request<C>,
}

/// A read the core is confirming (lease or read-index).
pub(super) struct WaitingRead<C> {
    pub command: Command,
    pub waiter: Waiter<C>,
    pub deadline_us: u64,
    /// Its request's arrival order, kept if it is routed again.
    pub arrival: u64,
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
    /// Unanswered until this tick, it is sent again (the session applies
    /// it once; `Node::forward_retry_after`).
    pub due_tick: u64,
    /// When it was first sent to this leader (the retries' sample, too).
    pub first_sent_tick: u64,
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

/// The sessions with commands pending or held here. A hash table with a
/// fixed hasher, like `WaitingWrites`, not a `BTreeMap`: every read and
/// write at the node looks its session up, adds itself and leaves, and a
/// session's entry comes and goes with each pipeline. Under pipelined
/// GETs at a leader (`redis-benchmark -P 16`), `perf` put 7.8% of its
/// samples in that bookkeeping (`place`, `pending`, `left`) with a tree
/// here and in `Counts`, 5.2% with these tables. The places that visit
/// every entry in an order that shows sort the keys first: the table's
/// order is never seen, and a simulated run is the same event for event.
pub(super) type SessionsWaiting<C> = HashMap<SessionId, SessionWaiting<C>, BuildHasherDefault<IdHasher>>;

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Counts;
    use crate::rng::Rng;

    /// `Counts` answers as a multiset kept in an ordered map does, for
    /// sequence numbers added and removed mostly in order, out of order
    /// now and then, twice (a retried forward), and removed when absent.
    #[test]
    fn counts_answer_as_an_ordered_multiset_does() {
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed);
            let mut counts = Counts::default();
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            let mut next = 0u64;
            for step in 0..300 {
                let seq = if rng.chance(0.7) {
                    next += 1;
                    next
                } else {
                    rng.below(next + 2)
                };
                if rng.chance(0.55) {
                    counts.add(seq);
                    *model.entry(seq).or_default() += 1;
                } else {
                    let seq = model.keys().next().copied().filter(|_| rng.chance(0.6)).unwrap_or(seq);
                    counts.remove(seq);
                    if let Some(count) = model.get_mut(&seq) {
                        *count -= 1;
                        if *count == 0 {
                            model.remove(&seq);
                        }
                    }
                }
                let context = format!("seed {seed}, step {step}");
                assert_eq!(counts.total(), model.values().map(|&c| c as usize).sum::<usize>(), "{context}");
                assert_eq!(counts.is_empty(), model.is_empty(), "{context}");
                let low = rng.below(next + 2);
                let range = low..low + rng.below(6);
                assert_eq!(
                    counts.last_in(range.clone()),
                    model.range(range.clone()).next_back().map(|(&s, _)| s),
                    "{context}, {range:?}"
                );
                assert_eq!(counts.any_in(range.clone()), model.range(range.clone()).next().is_some(), "{context}");
            }
        }
    }
}
