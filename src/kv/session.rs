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
//! - `sessions.len() == sessions_by_apply.len() <= sessions_max`, and the two
//!   maps are exact inverses;
//! - per session, every cached reply and waiting command has `seq >= floor`;
//! - `SESSION_NONE` is never recorded.

use std::collections::BTreeMap;

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
    pub(crate) replies: BTreeMap<u64, Reply>,
    /// Commands that arrived before their `prev` ran, by `seq`.
    pub(crate) waiting: BTreeMap<u64, Command>,
    /// The store's apply counter when this session was last applied:
    /// the eviction order, unique per session.
    pub(crate) apply_index_last: u64,
}

impl Session {
    fn new(apply_index: u64) -> Session {
        Session { floor: 0, replies: BTreeMap::new(), waiting: BTreeMap::new(), apply_index_last: apply_index }
    }

    /// Every number below `ack` is settled: forget their replies.
    pub(crate) fn settle(&mut self, ack: u64) {
        if ack > self.floor {
            self.floor = ack;
            // Usually a few of the oldest replies: popped, not split off
            // (a split builds a new map for the rest every time).
            while let Some(entry) = self.replies.first_entry() {
                if *entry.key() >= ack {
                    break;
                }
                entry.remove();
            }
        }
    }

    /// Must `command` wait for its `prev` to run first?
    pub(crate) fn must_wait(&self, command: &Command) -> bool {
        command.prev != 0 && command.prev >= self.floor && !self.replies.contains_key(&command.prev)
    }

    /// The waiting command with the lowest seq that may run now.
    pub(crate) fn next_runnable(&self) -> Option<u64> {
        self.waiting.iter().find(|(_, command)| !self.must_wait(command)).map(|(&seq, _)| seq)
    }
}

/// How a command's session stands, before it runs.
pub(crate) enum Admission {
    /// Known (or newly created): go on.
    Open,
    /// An unknown session at or below its node's retired watermark.
    Retired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionTable {
    /// Session id -> its state. Ordered for digests and snapshots.
    pub(crate) sessions: BTreeMap<SessionId, Session>,
    /// `apply_index_last -> session`: the eviction queue, oldest first.
    pub(crate) sessions_by_apply: BTreeMap<u64, SessionId>,
    /// Entry node -> the highest counter of its sessions evicted so far.
    pub(crate) retired: BTreeMap<u32, u64>,
    /// Bound on `sessions.len()`. With 0 nothing is remembered (no dedup).
    pub(crate) sessions_max: usize,
}

impl SessionTable {
    pub(crate) fn new(sessions_max: usize) -> SessionTable {
        SessionTable {
            sessions: BTreeMap::new(),
            sessions_by_apply: BTreeMap::new(),
            retired: BTreeMap::new(),
            sessions_max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn sessions_max(&self) -> usize {
        self.sessions_max
    }

    pub(crate) fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// Find or create session `id`, marking it applied at `apply_index`
    /// (which must exceed every index recorded before: the caller's counter
    /// is monotonic). A new session may evict the least recently applied
    /// one; an unknown session already retired is not recreated.
    pub(crate) fn admit(&mut self, id: SessionId, apply_index: u64) -> Admission {
        assert_ne!(id, SESSION_NONE, "the no-session id is never recorded");
        if let Some((&newest, _)) = self.sessions_by_apply.last_key_value() {
            assert!(apply_index > newest, "apply index went backwards: {apply_index} after {newest}");
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            self.sessions_by_apply.remove(&session.apply_index_last);
            session.apply_index_last = apply_index;
            self.sessions_by_apply.insert(apply_index, id);
            return Admission::Open;
        }
        if self.retired.get(&session_node(id)).is_some_and(|&watermark| session_counter(id) <= watermark) {
            return Admission::Retired;
        }
        if self.sessions_max == 0 {
            return Admission::Open; // remembered nowhere: no deduplication
        }
        if self.sessions.len() >= self.sessions_max {
            if let Some((_, oldest)) = self.sessions_by_apply.pop_first() {
                self.sessions.remove(&oldest);
                let watermark = self.retired.entry(session_node(oldest)).or_insert(0);
                *watermark = (*watermark).max(session_counter(oldest));
            }
        }
        self.sessions.insert(id, Session::new(apply_index));
        self.sessions_by_apply.insert(apply_index, id);
        self.check_invariants();
        Admission::Open
    }

    pub(crate) fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            assert!(self.sessions.len() <= self.sessions_max, "session table over its bound");
            assert_eq!(self.sessions.len(), self.sessions_by_apply.len(), "eviction index out of sync");
            assert!(!self.sessions.contains_key(&SESSION_NONE), "the no-session id was recorded");
            for (index, id) in &self.sessions_by_apply {
                let recorded = self.sessions.get(id).map(|session| session.apply_index_last);
                assert_eq!(recorded, Some(*index), "eviction index stale for session {id}");
            }
            for session in self.sessions.values() {
                assert!(session.replies.keys().chain(session.waiting.keys()).all(|&seq| seq >= session.floor));
                assert!(session.waiting.len() <= SESSION_WAITING_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(table: &SessionTable) -> Vec<SessionId> {
        table.sessions.keys().copied().collect()
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
    fn settling_forgets_replies_below_the_ack() {
        let mut session = Session::new(1);
        for seq in 1..=4 {
            session.replies.insert(seq, Reply::Int(seq as i64));
        }
        session.settle(3);
        assert_eq!(session.replies.keys().copied().collect::<Vec<_>>(), [3, 4]);
        session.settle(2);
        assert_eq!(session.floor, 3, "the floor never goes down");
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
