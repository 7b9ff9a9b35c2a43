//! [`SessionTable`]: the bounded memory of client sessions behind
//! exactly-once apply. For each session it keeps the last executed sequence
//! number and its reply, and it evicts the least recently applied session
//! when full (Raft thesis §6.3 bounds its session table the same way).
//!
//! Recency is measured by the store's apply counter, a logical clock that
//! every replica advances identically, so eviction is deterministic.
//!
//! Invariants (checked by `check_invariants` after every change in debug
//! builds and tests):
//! - `sessions.len() == sessions_by_apply.len() <= sessions_max`;
//! - `sessions_by_apply[s.apply_index_last] == id` for every `(id, s)` in
//!   `sessions`: the two maps are exact inverses;
//! - `SESSION_NONE` is never recorded.

use super::command::{SessionId, SESSION_NONE};
use super::reply::Reply;
use std::collections::BTreeMap;

/// What the store remembers of one client session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// The highest sequence number executed for this session.
    pub(crate) seq_last: u64,
    /// The reply produced when `seq_last` was executed, replayed on retry.
    pub(crate) reply_last: Reply,
    /// The store's apply counter when this session was last applied
    /// (executed or replayed): the eviction order, unique per session.
    pub(crate) apply_index_last: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionTable {
    /// Session id -> its last command. Ordered for digests and snapshots.
    sessions: BTreeMap<SessionId, Session>,
    /// `apply_index_last -> session`: the eviction queue, oldest first.
    sessions_by_apply: BTreeMap<u64, SessionId>,
    /// Bound on `sessions.len()`. With 0 nothing is remembered (no dedup).
    sessions_max: usize,
}

impl SessionTable {
    pub(crate) fn new(sessions_max: usize) -> SessionTable {
        SessionTable { sessions: BTreeMap::new(), sessions_by_apply: BTreeMap::new(), sessions_max }
    }

    /// Rebuilds a table from a snapshot's sessions. The caller (`snapshot.rs`)
    /// has already rejected bad input: at most `sessions_max` sessions, none
    /// `SESSION_NONE`, and `sessions_by_apply` is exactly the inverse of
    /// `sessions`. Anything else here is a bug, hence asserted.
    pub(crate) fn from_parts(
        sessions_max: usize,
        sessions: BTreeMap<SessionId, Session>,
        sessions_by_apply: BTreeMap<u64, SessionId>,
    ) -> SessionTable {
        let table = SessionTable { sessions, sessions_by_apply, sessions_max };
        table.check_invariants();
        table
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn sessions_max(&self) -> usize {
        self.sessions_max
    }

    /// All sessions in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SessionId, &Session)> {
        self.sessions.iter()
    }

    /// Records `(seq, reply)` as session `id`'s last command, applied at
    /// `apply_index`. A new session evicts the least recently applied one
    /// when the table is full.
    ///
    /// `apply_index` must exceed every index recorded before (the caller's
    /// counter is monotonic) and `id` must not be `SESSION_NONE`: both are
    /// bugs of the caller, so they are asserted.
    pub(crate) fn record(&mut self, id: SessionId, seq: u64, reply: Reply, apply_index: u64) {
        assert_ne!(id, SESSION_NONE, "the no-session id is never recorded");
        if let Some((&newest, _)) = self.sessions_by_apply.last_key_value() {
            assert!(apply_index > newest, "apply index went backwards: {apply_index} after {newest}");
        }
        let session = Session { seq_last: seq, reply_last: reply, apply_index_last: apply_index };
        if let Some(existing) = self.sessions.get_mut(&id) {
            self.sessions_by_apply.remove(&existing.apply_index_last);
            *existing = session;
        } else {
            if self.sessions_max == 0 {
                return;
            }
            if self.sessions.len() >= self.sessions_max {
                if let Some((_, oldest)) = self.sessions_by_apply.pop_first() {
                    self.sessions.remove(&oldest);
                }
            }
            self.sessions.insert(id, session);
        }
        self.sessions_by_apply.insert(apply_index, id);
        self.check_invariants();
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(table: &SessionTable) -> Vec<SessionId> {
        table.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn records_and_replaces_a_session() {
        let mut table = SessionTable::new(2);
        table.record(5, 1, Reply::Int(1), 1);
        table.record(5, 2, Reply::Int(2), 2);
        assert_eq!(table.len(), 1);
        let session = table.get(5).expect("recorded");
        assert_eq!((session.seq_last, &session.reply_last, session.apply_index_last), (2, &Reply::Int(2), 2));
        assert_eq!(table.get(6), None);
    }

    #[test]
    fn full_table_evicts_the_least_recently_applied() {
        let mut table = SessionTable::new(3);
        table.record(1, 1, Reply::Ok, 1);
        table.record(2, 1, Reply::Ok, 2);
        table.record(3, 1, Reply::Ok, 3);
        table.record(1, 1, Reply::Ok, 4); // session 1 is now the most recent
        table.record(4, 1, Reply::Ok, 5); // evicts session 2
        assert_eq!(ids(&table), [1, 3, 4]);
        table.record(5, 1, Reply::Ok, 6); // evicts session 3
        assert_eq!(ids(&table), [1, 4, 5]);
        for id in 100..1000 {
            table.record(id, 1, Reply::Ok, id);
            assert_eq!(table.len(), table.sessions_max());
        }
        assert_eq!(ids(&table), [997, 998, 999]);
        table.check_invariants();
    }

    #[test]
    fn zero_bound_records_nothing() {
        let mut table = SessionTable::new(0);
        table.record(1, 1, Reply::Ok, 1);
        assert_eq!(table.len(), 0);
        table.check_invariants();
    }

    #[test]
    #[should_panic(expected = "apply index went backwards")]
    fn apply_index_must_increase() {
        let mut table = SessionTable::new(2);
        table.record(1, 1, Reply::Ok, 5);
        table.record(2, 1, Reply::Ok, 5);
    }
}
