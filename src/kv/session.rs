//! [`SessionTable`]: the bounded memory of client sessions behind
//! exactly-once apply (Raft thesis §6.3).
//!
//! A session is one client connection's stream of commands to one shard.
//! Each command carries, besides its sequence number `seq`:
//! - `ack`: the lowest sequence number whose reply the session has not yet
//!   received. Every number below it is *settled*: the client has its
//!   answer (or was told the outcome is unknown), so no retry of it can
//!   matter, and the table forgets its reply;
//! - `prev`: the session's previous command on this shard, or 0. A command
//!   runs only after `prev` ran (or settled): a pipeline that a leader
//!   change split across slots out of order still takes effect in the
//!   order the client sent it. A command that arrives early waits in the
//!   session (at most [`SESSION_WAITING_MAX`] per session).
//!
//! So the table keeps, per session, the replies from `ack` on: a retry of
//! any of them replays its reply, never runs twice and never gets an error
//! for a command that ran.
//!
//! Lifetime: the table holds at most `sessions_max` sessions and evicts the
//! least recently applied one, identically on every replica (recency is the
//! store's apply counter). Session ids are `(entry node, counter)` with a
//! counter that only grows on its node ([`session_id`]); an eviction raises
//! that node's *retired* watermark to the evicted counter, and a command of
//! an unknown session at or below the watermark is refused on every
//! replica with an error saying its outcome is unknown: a command of an
//! evicted session may have run before, so it never runs a second time.
//!
//! Invariants (checked by `check_invariants` in debug builds and tests):
//! - `sessions.len() <= sessions_max`, and the eviction queue's live
//!   entries are exactly `(apply_index_last, id)` of every session, in
//!   ascending apply index;
//! - per session, every cached reply and waiting command has `seq >= floor`;
//! - `SESSION_NONE` is never recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::command::{Command, SessionId, SESSION_NONE};
use super::reply::Reply;

/// Commands of one session that may wait for an earlier one.
pub const SESSION_WAITING_MAX: usize = 1024;

/// Bits of a session id that hold the entry node's counter.
const COUNTER_BITS: u32 = 52;
/// Entry node ids must fit in the bits above the counter.
pub const SESSION_NODE_MAX: u32 = (1 << (64 - COUNTER_BITS)) - 1;

/// The id of the session `counter` of entry node `node` (1..=SESSION_NODE_MAX).
/// Counters must grow on each node, across restarts too (the server uses
/// wall-clock microseconds, which fit 52 bits until 2112).
pub fn session_id(node: u32, counter: u64) -> SessionId {
    debug_assert!((1..=SESSION_NODE_MAX).contains(&node), "node {node} cannot own sessions");
    (u64::from(node) << COUNTER_BITS) | (counter & ((1 << COUNTER_BITS) - 1))
}

fn session_node(id: SessionId) -> u32 {
    (id >> COUNTER_BITS) as u32
}

fn session_counter(id: SessionId) -> u64 {
    id & ((1 << COUNTER_BITS) - 1)
}

/// What the store remembers of one client session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// Every sequence number below this is settled (the highest `ack` seen).
    pub(crate) floor: u64,
    /// Replies of the commands that ran, for `seq >= floor`: replayed on retry.
    pub(crate) replies: Replies,
    /// Commands that arrived before their `prev` ran, by `seq`.
    pub(crate) waiting: BTreeMap<u64, Command>,
    /// The store's apply counter when this session was last applied:
    /// the eviction order, unique per session.
    pub(crate) apply_index_last: u64,
}

impl Session {
    fn new(apply_index: u64) -> Session {
        Session { floor: 0, replies: Replies::default(), waiting: BTreeMap::new(), apply_index_last: apply_index }
    }

    /// Every number below `ack` is settled: forget their replies.
    pub(crate) fn settle(&mut self, ack: u64) {
        if ack > self.floor {
            self.floor = ack;
            self.replies.forget_below(ack);
        }
    }

    /// Must `command` wait for its `prev` to run first?
    pub(crate) fn must_wait(&self, command: &Command) -> bool {
        command.prev != 0 && command.prev >= self.floor && !self.replies.contains_key(&command.prev)
    }

    /// Is `command` a read that a later command of its session already ran
    /// before? It would see that command's effect, out of its connection's
    /// order: it is refused instead (`ERROR_READ_OVERTAKEN`). A write
    /// whose `prev` ran runs (the `prev` chain is the order writes owe);
    /// a read through the log can be overtaken when its entry node let a
    /// later write go ahead without naming it (`node/order.rs`).
    pub(crate) fn overtaken(&self, command: &Command) -> bool {
        command.op.is_read_only() && self.replies.last_key().is_some_and(|last| last > command.seq)
    }

    /// The waiting command with the lowest seq that may run now.
    pub(crate) fn next_runnable(&self) -> Option<u64> {
        self.waiting.iter().find(|(_, command)| !self.must_wait(command)).map(|(&seq, _)| seq)
    }
}

/// A session's cached replies by seq, ascending. A session's commands run
/// mostly in seq order and settle oldest first, so a reply is appended at
/// the back and forgotten from the front: a deque, not a tree (a
/// `BTreeMap` holding a pipeline's few dozen replies split and merged its
/// nodes all the time: about 9% of a follower's time under pipelined SETs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replies {
    /// Strictly ascending by seq.
    entries: VecDeque<(u64, Reply)>,
}

/// A deque that held a burst keeps at most this many slots once mostly
/// empty.
const REPLIES_SPARE_MAX: usize = 64;

impl Replies {
    /// Just `seq`'s reply.
    pub(crate) fn one(seq: u64, reply: Reply) -> Replies {
        Replies { entries: VecDeque::from([(seq, reply)]) }
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        match self.entries.back() {
            Some(&(last, _)) if seq > last => Err(self.entries.len()),
            // A command's `prev` is most often the last reply cached.
            Some(&(last, _)) if seq == last => Ok(self.entries.len() - 1),
            None => Err(0),
            _ => self.entries.binary_search_by_key(&seq, |&(s, _)| s),
        }
    }

    pub(crate) fn get(&self, seq: &u64) -> Option<&Reply> {
        self.position(*seq).ok().map(|at| &self.entries[at].1)
    }

    pub(crate) fn contains_key(&self, seq: &u64) -> bool {
        self.position(*seq).is_ok()
    }

    /// Set `seq`'s reply; returns the one it replaces.
    pub(crate) fn insert(&mut self, seq: u64, reply: Reply) -> Option<Reply> {
        match self.position(seq) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, reply)),
            Err(at) if at == self.entries.len() => {
                self.entries.push_back((seq, reply));
                None
            }
            Err(at) => {
                self.entries.insert(at, (seq, reply));
                None
            }
        }
    }

    /// Forget every reply below `seq`.
    pub(crate) fn forget_below(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|&(s, _)| s < seq) {
            self.entries.pop_front();
        }
        if self.entries.capacity() > REPLIES_SPARE_MAX && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(REPLIES_SPARE_MAX.max(self.entries.len() * 2));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last_key(&self) -> Option<u64> {
        self.entries.back().map(|&(seq, _)| seq)
    }

    /// `(seq, reply)` in ascending seq.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &Reply)> {
        self.entries.iter().map(|(seq, reply)| (*seq, reply))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|&(seq, _)| seq)
    }
}

/// How a command's session stands, before it runs.
pub(crate) enum Admission {
    /// Known (or newly created): go on.
    Open,
    /// An unknown session at or below its node's retired watermark.
    Retired,
}

/// A fixed multiply-rotate hash (FxHash's step) for keys made of
/// integers the nodes assign (session ids and sequence numbers; no client
/// chooses them). Fixed, so a table hashed with it behaves the same in
/// every run.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Tables pick buckets by the low bits: bring the product's
        // well-mixed high bits down.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SessionTable {
    /// Session id -> its state. A hash table with a fixed hasher: every
    /// applied command looks its session up three or four times, which
    /// in a `BTreeMap` of a few dozen sessions took about 8% of the
    /// instructions of applying a SET (`benches/record-kv.sh`). Its order
    /// is never seen: digests and snapshots go through [`SessionTable::sorted`].
    pub(crate) sessions: HashMap<SessionId, Session, BuildHasherDefault<IdHasher>>,
    /// `(apply_index, session)`, ascending: the eviction queue, least
    /// recently applied first. Applying a session appends it again and
    /// leaves its older entry in place, stale (its index is no longer the
    /// session's `apply_index_last`); stale entries are skipped when
    /// evicting and dropped when they outnumber the live ones. A `BTreeMap`
    /// from index to session, with a removal and an insertion per command,
    /// rebalanced its nodes on nearly every one: about a fifth of the
    /// instructions of applying a SET (`benches/record-kv.sh`).
    applied: VecDeque<(u64, SessionId)>,
    /// Entry node -> the highest counter of its sessions evicted so far.
    pub(crate) retired: BTreeMap<u32, u64>,
    /// Bound on `sessions.len()`. With 0 nothing is remembered (no dedup).
    pub(crate) sessions_max: usize,
}

impl SessionTable {
    pub(crate) fn new(sessions_max: usize) -> SessionTable {
        SessionTable { sessions: HashMap::default(), applied: VecDeque::new(), retired: BTreeMap::new(), sessions_max }
    }

    /// Every session, by ascending id (digests, snapshots).
    pub(crate) fn sorted(&self) -> Vec<(SessionId, &Session)> {
        let mut sessions: Vec<_> = self.sessions.iter().map(|(&id, session)| (id, session)).collect();
        sessions.sort_unstable_by_key(|&(id, _)| id);
        sessions
    }

    /// The id of the session restored last (snapshots list them by
    /// ascending id; the queue is in restore order until
    /// [`SessionTable::restored`]).
    pub(crate) fn last_restored(&self) -> Option<SessionId> {
        self.applied.back().map(|&(_, id)| id)
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn sessions_max(&self) -> usize {
        self.sessions_max
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// Was session `id` forgotten (evicted)? It is unknown and at or below
    /// its node's retired watermark: any of its commands may have run.
    pub(crate) fn is_retired(&self, id: SessionId) -> bool {
        !self.sessions.contains_key(&id)
            && self.retired.get(&session_node(id)).is_some_and(|&watermark| session_counter(id) <= watermark)
    }

    /// Find or create session `id`, marking it applied at `apply_index`
    /// (which must exceed every index recorded before: the caller's counter
    /// is monotonic). A new session may evict the least recently applied
    /// one; an unknown session already retired is not recreated.
    pub(crate) fn admit(&mut self, id: SessionId, apply_index: u64) -> Admission {
        assert_ne!(id, SESSION_NONE, "the no-session id is never recorded");
        if let Some(&(newest, _)) = self.applied.back() {
            assert!(apply_index > newest, "apply index went backwards: {apply_index} after {newest}");
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.apply_index_last = apply_index;
            self.applied.push_back((apply_index, id));
            self.drop_stale();
            return Admission::Open;
        }
        if self.retired.get(&session_node(id)).is_some_and(|&watermark| session_counter(id) <= watermark) {
            return Admission::Retired;
        }
        if self.sessions_max == 0 {
            return Admission::Open; // remembered nowhere: no deduplication
        }
        if self.sessions.len() >= self.sessions_max {
            if let Some(oldest) = self.pop_least_recent() {
                self.sessions.remove(&oldest);
                let watermark = self.retired.entry(session_node(oldest)).or_insert(0);
                *watermark = (*watermark).max(session_counter(oldest));
            }
        }
        self.sessions.insert(id, Session::new(apply_index));
        self.applied.push_back((apply_index, id));
        self.check_invariants();
        Admission::Open
    }

    /// Is the queue's entry `(index, id)` the session's current one?
    fn live(&self, (index, id): (u64, SessionId)) -> bool {
        self.sessions.get(&id).is_some_and(|session| session.apply_index_last == index)
    }

    /// The least recently applied session, taken off the queue.
    fn pop_least_recent(&mut self) -> Option<SessionId> {
        while let Some(entry) = self.applied.pop_front() {
            if self.live(entry) {
                return Some(entry.1);
            }
        }
        None
    }

    /// Once stale entries outnumber the live ones three to one, keep only
    /// the live (each pass looks every entry's session up, so the queue may
    /// grow well past the live ones between passes: memory for a few
    /// stale entries is cheaper than lookups).
    fn drop_stale(&mut self) {
        if self.applied.len() > 4 * self.sessions.len() + 64 {
            let mut applied = std::mem::take(&mut self.applied);
            applied.retain(|&entry| self.live(entry));
            self.applied = applied;
        }
    }

    /// Records a session read from a snapshot. The caller checked that no
    /// other has its id or its apply index; the queue is ordered by
    /// [`SessionTable::restored`].
    pub(crate) fn restore(&mut self, id: SessionId, session: Session) {
        self.applied.push_back((session.apply_index_last, id));
        self.sessions.insert(id, session);
    }

    /// After the last [`SessionTable::restore`]: the queue in apply order.
    pub(crate) fn restored(&mut self) {
        self.applied.make_contiguous().sort_unstable();
        self.check_invariants();
    }
    pub(crate) fn check_invariants(&self) {
        // Unit tests run in release builds too (`.ci/run`): they check them.
        if cfg!(any(debug_assertions, test)) {
            assert!(self.sessions.len() <= self.sessions_max, "session table over its bound");
            assert!(!self.sessions.contains_key(&SESSION_NONE), "the no-session id was recorded");
            let live: Vec<(u64, SessionId)> = self.applied.iter().copied().filter(|&entry| self.live(entry)).collect();
            assert_eq!(live.len(), self.sessions.len(), "eviction queue out of sync");
            assert!(live.windows(2).all(|pair| pair[0].0 < pair[1].0), "eviction queue out of order");
            assert!(self.applied.iter().zip(self.applied.iter().skip(1)).all(|(a, b)| a.0 < b.0));
            for session in self.sessions.values() {
                assert!(session.replies.keys().chain(session.waiting.keys().copied()).all(|seq| seq >= session.floor));
                assert!(session.replies.keys().zip(session.replies.keys().skip(1)).all(|(a, b)| a < b));
                assert!(session.waiting.len() <= SESSION_WAITING_MAX);
            }
        }
    }
}

/// Equal tables hold the same sessions, watermarks and bound; the
/// eviction queue follows from the sessions' apply indices (its stale
/// entries are a matter of when it last dropped them).
impl PartialEq for SessionTable {
    fn eq(&self, other: &SessionTable) -> bool {
        self.sessions == other.sessions && self.retired == other.retired && self.sessions_max == other.sessions_max
    }
}

impl Eq for SessionTable {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(table: &SessionTable) -> Vec<SessionId> {
        table.sorted().into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn session_ids_pack_node_and_counter() {
        let id = session_id(3, 12345);
        assert_eq!((session_node(id), session_counter(id)), (3, 12345));
        assert!(session_id(1, 5) < session_id(1, 6));
        assert_ne!(session_id(1, 0), SESSION_NONE);
    }

    #[test]
    fn full_table_evicts_the_least_recently_applied_and_retires_it() {
        let mut table = SessionTable::new(3);
        for (index, counter) in [1, 2, 3].into_iter().enumerate() {
            assert!(matches!(table.admit(session_id(1, counter), index as u64 + 1), Admission::Open));
        }
        table.admit(session_id(1, 1), 4); // session 1 is now the most recent
        table.admit(session_id(2, 9), 5); // evicts (1, 2)
        assert_eq!(ids(&table), [session_id(1, 1), session_id(1, 3), session_id(2, 9)]);
        assert_eq!(table.retired.get(&1), Some(&2));
        // An evicted session, and an unknown older one of the same node,
        // are not recreated; a newer one and other nodes' are.
        assert!(matches!(table.admit(session_id(1, 2), 6), Admission::Retired));
        assert!(matches!(table.admit(session_id(1, 0), 7), Admission::Retired));
        assert!(matches!(table.admit(session_id(1, 4), 8), Admission::Open));
        assert!(matches!(table.admit(session_id(3, 1), 9), Admission::Open));
        assert_eq!(table.len(), 3);
        table.check_invariants();
    }

    #[test]
    fn eviction_skips_stale_entries_and_the_queue_stays_bounded() {
        let mut table = SessionTable::new(3);
        let mut index = 0;
        let mut apply = |table: &mut SessionTable, counter| {
            index += 1;
            table.admit(session_id(1, counter), index)
        };
        for round in 0..1000 {
            for counter in [1, 2, 3] {
                if counter != 2 || round % 100 == 0 {
                    apply(&mut table, counter);
                }
            }
        }
        assert!(table.applied.len() <= 4 * 3 + 64 + 1, "queue of {}", table.applied.len());
        table.check_invariants();
        // Session 2 was applied least recently, under many stale entries of 1 and 3.
        apply(&mut table, 4);
        assert_eq!(ids(&table), [session_id(1, 1), session_id(1, 3), session_id(1, 4)]);
        assert_eq!(table.retired.get(&1), Some(&2));
        table.check_invariants();
    }

    #[test]
    fn settling_forgets_replies_below_the_ack() {
        let mut session = Session::new(1);
        for seq in 1..=4 {
            session.replies.insert(seq, Reply::Int(seq as i64));
        }
        session.settle(3);
        assert_eq!(session.replies.keys().collect::<Vec<_>>(), [3, 4]);
        session.settle(2);
        assert_eq!(session.floor, 3, "the floor never goes down");
    }

    #[test]
    fn replies_stay_ascending_whatever_order_they_arrive_in() {
        let mut replies = Replies::default();
        for seq in [5, 2, 9, 7, 1, 9] {
            replies.insert(seq, Reply::Int(seq as i64));
        }
        assert_eq!(replies.insert(7, Reply::Ok), Some(Reply::Int(7)), "a second insert replaces");
        assert_eq!(replies.keys().collect::<Vec<_>>(), [1, 2, 5, 7, 9]);
        assert_eq!(replies.get(&7), Some(&Reply::Ok));
        assert!(replies.contains_key(&2) && !replies.contains_key(&3) && !replies.contains_key(&10));
        assert_eq!(replies.last_key(), Some(9));
        replies.forget_below(6);
        assert_eq!(replies.keys().collect::<Vec<_>>(), [7, 9]);
        replies.forget_below(100);
        assert!(replies.len() == 0 && replies.get(&9).is_none());
    }

    #[test]
    fn replies_give_back_a_burst_s_memory() {
        let mut replies = Replies::default();
        for seq in 0..10_000 {
            replies.insert(seq, Reply::Ok);
        }
        replies.forget_below(9_990);
        assert_eq!(replies.len(), 10);
        assert!(replies.entries.capacity() < 10_000 / 2, "capacity {}", replies.entries.capacity());
    }

    #[test]
    fn zero_bound_records_nothing() {
        let mut table = SessionTable::new(0);
        assert!(matches!(table.admit(session_id(1, 1), 1), Admission::Open));
        assert_eq!(table.len(), 0);
        table.check_invariants();
    }

    #[test]
    #[should_panic(expected = "apply index went backwards")]
    fn apply_index_must_increase() {
        let mut table = SessionTable::new(2);
        table.admit(session_id(1, 1), 5);
        table.admit(session_id(1, 2), 5);
    }
}
