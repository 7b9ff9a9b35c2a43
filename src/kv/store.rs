//! [`KvStore`]: the replicated state machine. Every replica applies the same
//! chosen commands in slot order and so reaches the same state.
//!
//! Exactly-once ("Paxos Made Moderately Complex" §3, the replica's
//! duplicate check; Raft thesis §6.3 for sessions): a client may propose one
//! command several times (its entry node retried after a link loss, or a
//! new leader re-proposed it), so the same (session, seq) can be chosen in
//! several slots. Only the first runs; later copies get the reply cached
//! the first time, for as long as the client may still be waiting for it
//! (`session.rs`: replies are kept from the session's `ack` on). A
//! session's commands run in the order it sent them, even when retries put
//! them in the log out of order.
//!
//! Invariants:
//! - `apply` / `apply_bytes` are deterministic functions of the state and
//!   the input: no clocks, no randomness, no hash-order iteration.
//! - Bad input never panics: a malformed entry or a wrong-type value yields
//!   a `Reply::Error` and leaves the state unchanged.
//! - A command runs at most once, on every replica alike: a command of an
//!   evicted session is refused with an error that says its outcome is
//!   unknown (the session table is bounded and evicts deterministically).
//! - `apply_count` is strictly monotonic and is the only clock of session
//!   eviction (`session.rs`) and of key versions (WATCH).
//!
//! Time (TTLs): apply never reads a clock. The leader stamps every slot it
//! proposes with its clock (never below any stamp or read time before it,
//! see `paxos::stamp`), and the node calls [`KvStore::advance_clock`] with
//! that stamp before applying the slot's commands: every replica decides
//! "expired" at the same log position alike. Reads served outside the log
//! (lease or read-index) are judged at the time the leader served them
//! ([`KvStore::read`]), which the next stamps never go below. Expired keys
//! are hidden at once and removed in bounded batches as stamps advance
//! ([`RECLAIM_PER_STAMP`]).

use super::command::{Command, Op, SessionId, SESSION_NONE};
use super::keyspace::{Entry, Keyspace};
use super::reply::Reply;
use super::session::{Admission, SessionTable, SESSION_WAITING_MAX};
use bytes::Bytes;

/// Expired keys removed at most per stamp applied: bounded work per slot.
pub const RECLAIM_PER_STAMP: usize = 256;

/// The reply to a command of a session the store no longer remembers (it
/// was evicted): the command may have run before, so it does not run now.
/// Entry nodes start a new session when they see it.
pub const ERROR_SESSION_EXPIRED: &str =
    "ERR session expired (too many client sessions); this command was not run now, but an earlier attempt of it \
     may have been: its outcome is unknown";

/// The reply to a read that a later command of its connection ran before
/// (`Session::overtaken`, `node/order.rs`): it is not served out of order.
pub const ERROR_READ_OVERTAKEN: &str = "ERR the read could not be served in its connection's order (a later \
     command of the connection ran first: the leader changed, a forward was retried, or the write before it was \
     given up on); it was not applied";

/// What applying one command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The command's reply; `None` while it waits for its session's earlier
    /// command (`Command::prev`).
    pub reply: Option<Reply>,
    /// The command ran now (its reply is not a replay, an error that
    /// refused it, or absent because it waits).
    pub ran: bool,
    /// Commands that waited and ran now, in order: (session, seq, reply).
    pub released: Vec<(SessionId, u64, Reply)>,
}

impl Applied {
    fn ran(reply: Reply) -> Applied {
        Applied { reply: Some(reply), ran: true, released: Vec::new() }
    }

    fn refused(reply: Reply) -> Applied {
        Applied { reply: Some(reply), ran: false, released: Vec::new() }
    }
}

/// The key-value state plus the client session table.
#[derive(Clone, Debug, PartialEq, Eq)]
///
/// The fields are visible to `snapshot.rs`, which writes and validates the
/// whole state; nothing else in the crate sees them.
pub struct KvStore {
    /// The data, in hash order (`keyspace.rs`).
    pub(super) keys: Keyspace,
    /// Last command and reply per client session; bounded.
    pub(super) sessions: SessionTable,
    /// Commands applied so far (decode failures excluded). Strictly
    /// monotonic: the logical clock of session eviction and key versions.
    /// Invariant: `>=` every session's `apply_index_last` and every key's version.
    pub(super) apply_count: u64,
    /// The log's time: the latest stamp applied, Unix milliseconds; never decreases.
    pub(super) now: i64,
    /// Keys removed so far (deleted, renamed away, expired, flushed): a
    /// WATCH of a missing key compares it.
    pub(super) removals: u64,
}

impl KvStore {
    /// An empty store remembering at most `sessions_max` sessions.
    pub fn new(sessions_max: usize) -> KvStore {
        KvStore {
            keys: Keyspace::default(),
            sessions: SessionTable::new(sessions_max),
            apply_count: 0,
            now: 0,
            removals: 0,
        }
    }

    /// Move the log's time to `stamp_ms` (the slot's stamp; a lower one
    /// changes nothing) and remove up to [`RECLAIM_PER_STAMP`] keys expired
    /// by then. Returns how many were removed.
    pub fn advance_clock(&mut self, stamp_ms: u64) -> usize {
        self.now = self.now.max(i64::try_from(stamp_ms).unwrap_or(i64::MAX));
        let reclaimed = self.keys.reclaim(self.now, RECLAIM_PER_STAMP);
        self.removals += reclaimed as u64;
        reclaimed
    }

    /// The log's time (the latest stamp applied), Unix milliseconds.
    pub fn log_time(&self) -> u64 {
        self.now as u64
    }

    /// Are there keys that expired by `at_ms` and wait to be removed? (The
    /// node then has a stamped no-op proposed.)
    /// The earliest expiry time (Unix ms) of any key, if one has a TTL.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.keys.next_expiry()
    }

    pub fn has_expired_at(&self, at_ms: u64) -> bool {
        self.keys.next_expiry().is_some_and(|t| i64::try_from(at_ms).unwrap_or(i64::MAX) > t)
    }

    /// Brings the entries of the keys `commands` (encoded) name into the
    /// cache, all at once, before they run: looked up one by one as each
    /// command runs, every key of a large keyspace is a cache miss the
    /// processor waits for; looked up in a row, the misses overlap.
    /// Changes nothing.
    pub fn warm(&self, commands: &[Bytes]) {
        self.keys.warm(commands.iter().filter_map(|command| Command::peek_key(command)));
    }

    /// Applies one committed command, exactly once per (session, seq), in
    /// its session's order (see `session.rs`). Without a session
    /// (`SESSION_NONE`) it simply runs. A command of a session whose `prev`
    /// is not below its `seq` is malformed: refused, the state unchanged.
    pub fn apply(&mut self, command: Command) -> Applied {
        self.apply_observed(command, &mut |_, _, _| {})
    }

    /// [`KvStore::apply`], calling `ran(store, session, seq)` right after
    /// each command of a session runs (this one, and each waiting one it
    /// lets run): the node answers there the reads due right after that
    /// command, before the next one runs (`node/order.rs`).
    pub fn apply_observed(&mut self, command: Command, ran: &mut dyn FnMut(&KvStore, SessionId, u64)) -> Applied {
        if command.session != SESSION_NONE && command.prev != 0 && command.prev >= command.seq {
            // No entry node writes one (`prev` names an earlier command),
            // but a peer's forwarded command could. Such a command would
            // wait for a later one of its own session even after its seq
            // settled, and a snapshot holding a waiting command below its
            // session's floor does not restore.
            return Applied::refused(Reply::Error(format!(
                "ERR malformed command: prev {} is not below seq {}",
                command.prev, command.seq
            )));
        }
        self.apply_count += 1;
        if command.session == SESSION_NONE {
            return Applied::ran(self.execute_owned(command.op));
        }
        if let Admission::Retired = self.sessions.admit(command.session, self.apply_count) {
            return Applied::refused(Reply::Error(ERROR_SESSION_EXPIRED.to_string()));
        }
        let Some(session) = self.sessions.get_mut(command.session) else {
            return Applied::ran(self.execute_owned(command.op)); // sessions_max == 0: no memory
        };
        let mut released = Vec::new();
        session.settle(command.ack);
        // Nothing waits in nearly every session: skip the walk and the
        // second lookup.
        let session = if session.waiting.is_empty() {
            session
        } else {
            self.run_released(command.session, &mut released, ran);
            self.sessions.get_mut(command.session).expect("admitted above")
        };
        let mut executed = false;
        let reply = if command.seq < session.floor {
            Some(Reply::Error(format!(
                "ERR command {} of session {} was already settled: its reply was delivered before",
                command.seq, command.session
            )))
        } else if let Some(cached) = session.replies.get(&command.seq) {
            Some(cached.clone())
        } else if session.waiting.contains_key(&command.seq) {
            None // a copy of a command that is already waiting
        } else if session.must_wait(&command) {
            if session.waiting.len() >= SESSION_WAITING_MAX {
                Some(Reply::Error(format!(
                    "ERR more than {SESSION_WAITING_MAX} commands of this session wait for an earlier one; not run"
                )))
            } else {
                session.waiting.insert(command.seq, command);
                None
            }
        } else if session.overtaken(&command) {
            Some(Reply::Error(ERROR_READ_OVERTAKEN.to_string()))
        } else {
            let (id, seq) = (command.session, command.seq);
            let reply = self.execute_owned(command.op);
            executed = true;
            ran(self, id, seq);
            let session = self.sessions.get_mut(id).expect("admitted above");
            session.replies.insert(seq, reply.clone());
            if !session.waiting.is_empty() {
                self.run_released(id, &mut released, ran);
            }
            Some(reply)
        };
        self.sessions.check_invariants();
        Applied { reply, ran: executed, released }
    }

    /// Run the session's waiting commands whose turn has come, in order.
    fn run_released(
        &mut self,
        id: SessionId,
        released: &mut Vec<(SessionId, u64, Reply)>,
        ran: &mut dyn FnMut(&KvStore, SessionId, u64),
    ) {
        loop {
            let session = self.sessions.get_mut(id).expect("the caller admitted it");
            let Some(seq) = session.next_runnable() else { return };
            // A command that settled while it waited (its client was told
            // the outcome is unknown) runs too, once, and caches nothing.
            let command = session.waiting.remove(&seq).expect("listed");
            if session.overtaken(&command) {
                released.push((id, seq, Reply::Error(ERROR_READ_OVERTAKEN.to_string())));
                continue;
            }
            let reply = self.execute_owned(command.op);
            ran(self, id, seq);
            let session = self.sessions.get_mut(id).expect("still present");
            if seq >= session.floor {
                session.replies.insert(seq, reply.clone());
            }
            released.push((id, seq, reply));
        }
    }

    /// The reply command `seq` of `session` ran with, while the store
    /// remembers it: a retry of it gets this, and does not run again.
    pub fn ran_reply(&self, session: SessionId, seq: u64) -> Option<&Reply> {
        self.sessions.get(session).and_then(|s| s.replies.get(&seq))
    }

    /// Where a session stands for a read of it pipelined after command
    /// `write`, as command `read`: has `write` run (or settled), and has
    /// any command after `read` run? `None`: the store does not know the
    /// session (nothing of it ran here yet). An evicted session counts as
    /// one whose later commands ran: nothing tells they did not.
    pub fn session_position(&self, session: SessionId, write: u64, read: u64) -> Option<(bool, bool)> {
        let Some(s) = self.sessions.get(session) else {
            return self.sessions.is_retired(session).then_some((false, true));
        };
        let write_done = write < s.floor || s.replies.contains_key(&write);
        let later_ran = s.replies.last_key().is_some_and(|last| last > read);
        Some((write_done, later_ran))
    }

    /// Decodes a committed log entry and applies it. A malformed entry
    /// returns `Reply::Error` and leaves the state unchanged, identically on
    /// every replica.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Applied {
        match Command::decode(bytes) {
            Ok(command) => self.apply(command),
            Err(error) => Applied::refused(Reply::Error(format!("ERR malformed command: {error}"))),
        }
    }

    /// Evaluates a read-only op without touching the session table (lease
    /// and read-index reads), judging expiry at `at_ms` (the leader's time
    /// when it served the read; never before the log's time). A write op
    /// is an error.
    pub fn read(&self, op: &Op, at_ms: u64) -> Reply {
        if !op.is_read_only() {
            return Reply::Error("ERR write command cannot be served as a read".to_string());
        }
        let at = self.now.max(i64::try_from(at_ms).unwrap_or(i64::MAX));
        self.evaluate(op, at)
    }

    /// The number of stored keys (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.keys.len_stored()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.len_stored() == 0
    }

    /// Keys alive at the log's time.
    pub fn len_live(&self) -> usize {
        self.keys.len_live(self.now)
    }

    /// Keys with an expiry (expired or not).
    pub fn len_expiring(&self) -> usize {
        self.keys.len_expiring()
    }

    /// The value of `key` if it is alive at the log's time.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.keys.live(&Bytes::copy_from_slice(key), self.now).map(|entry| &entry.value)
    }

    /// The entry of `key` (value, expiry, version) if alive at the log's time.
    pub fn entry(&self, key: &[u8]) -> Option<&Entry> {
        self.keys.live(&Bytes::copy_from_slice(key), self.now)
    }

    /// The number of remembered sessions; at most `sessions_max`.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// FNV-1a over the whole state (data, sessions, apply counter) in key
    /// order: equal for replicas that applied the same commands, whatever
    /// order their maps were filled in.
    pub fn digest(&self) -> u64 {
        let mut hasher = Fnv1a::new();
        hasher.u64(self.keys.len_stored() as u64);
        for (key, entry) in self.keys.iter() {
            hasher.bytes(key.key());
            hasher.bytes(&entry.value);
            match entry.expires_at {
                None => hasher.u64(0),
                Some(t) => {
                    hasher.u64(1);
                    hasher.u64(t as u64);
                }
            }
            hasher.u64(entry.version);
        }
        hasher.u64(self.now as u64);
        hasher.u64(self.removals);
        hasher.u64(self.sessions.len() as u64);
        for (id, session) in self.sessions.sorted() {
            hasher.u64(id);
            hasher.u64(session.floor);
            hasher.u64(session.apply_index_last);
            for (seq, reply) in session.replies.iter() {
                hasher.u64(seq);
                hasher.bytes(&reply.encode());
            }
            for command in session.waiting.values() {
                hasher.bytes(&command.encode());
            }
        }
        for (node, watermark) in &self.sessions.retired {
            hasher.u64(u64::from(*node));
            hasher.u64(*watermark);
        }
        hasher.u64(self.sessions.sessions_max() as u64);
        hasher.u64(self.apply_count);
        hasher.finish()
    }
}

/// Parses a value as Redis' `string2ll` does: an optional `-`, then decimal
/// digits with no leading zero (except "0" itself), no `+`, no spaces,
/// within the i64 range. Returns `None` for anything else.
pub(super) fn parse_i64_strict(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    match digits {
        [] => return None,
        [b'0'] => return if negative { None } else { Some(0) },
        [b'0', ..] => return None,
        _ => {}
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// 64-bit FNV-1a; each field is length-prefixed so adjacent fields cannot
/// run together ("ab"+"c" vs "a"+"bc").
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    fn bytes(&mut self, value: &[u8]) {
        self.u64(value.len() as u64);
        self.write(value);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{SetCondition, SetTtl, ERROR_INCR_OVERFLOW, ERROR_NOT_INTEGER};

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn set(key: &str, value: &str, condition: SetCondition) -> Op {
        Op::Set { key: b(key), value: b(value), condition, ttl: SetTtl::Clear, get: false }
    }

    /// Applies `op` without a session.
    fn run(store: &mut KvStore, op: Op) -> Reply {
        store.apply(Command::anonymous(op)).reply.expect("a sessionless command runs at once")
    }

    /// A command of `session` with every earlier one settled and no predecessor.
    fn cmd(session: SessionId, seq: u64, op: Op) -> Command {
        Command { session, seq, ack: seq, prev: 0, op }
    }

    fn reply(store: &mut KvStore, command: &Command) -> Option<Reply> {
        store.apply(command.clone()).reply
    }

    fn incr(key: &str) -> Op {
        Op::IncrBy { key: b(key), delta: 1 }
    }

    fn error(message: &str) -> Reply {
        Reply::Error(message.to_string())
    }

    /// Found by the kv_command fuzz target: a command carrying a limit of
    /// 1 GB made SETRANGE allocate 889 MB. No string passes Redis's bound.
    #[test]
    fn no_command_grows_a_string_past_the_hard_bound_whatever_limit_it_carries() {
        let mut store = KvStore::new(8);
        let big = crate::kv::exec::STRING_BYTES_MAX;
        let setrange = Op::SetRange { key: b("k"), offset: big, value: b("xy"), limit: u64::MAX };
        assert_eq!(run(&mut store, setrange), error(crate::kv::exec::ERROR_STRING_TOO_LONG));
        let append = Op::Append { key: b("k"), value: b("x"), limit: u64::MAX };
        assert_eq!(run(&mut store, append), Reply::Int(1), "under the bound it runs");
        assert_eq!(store.get(b"k"), Some(&b("x")));
    }

    /// MEMORY USAGE: the key, the value and the entry's fixed cost, the
    /// same on every replica; OBJECT ENCODING: raw. Both nil when missing.
    #[test]
    fn memory_usage_and_object_encoding() {
        let mut store = KvStore::new(8);
        let usage = || Op::MemoryUsage { key: b("key") };
        let encoding = || Op::ObjectEncoding { key: b("key") };
        assert_eq!(run(&mut store, usage()), Reply::Nil);
        assert_eq!(run(&mut store, encoding()), Reply::Nil);
        assert_eq!(run(&mut store, set("key", "12345", SetCondition::Always)), Reply::Ok);
        let expected = 3 + 5 + crate::kv::keyspace::ENTRY_BYTES;
        assert_eq!(run(&mut store, usage()), Reply::Int(expected as i64));
        assert_eq!(run(&mut store, encoding()), Reply::Bulk(b("raw")));
    }

    #[test]
    fn get_and_plain_set() {
        let mut store = KvStore::new(8);
        assert_eq!(run(&mut store, Op::Get { key: b("k") }), Reply::Nil);
        assert_eq!(run(&mut store, set("k", "v1", SetCondition::Always)), Reply::Ok);
        assert_eq!(run(&mut store, set("k", "v2", SetCondition::Always)), Reply::Ok);
        assert_eq!(run(&mut store, Op::Get { key: b("k") }), Reply::Bulk(b("v2")));
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
    }

    #[test]
    fn set_nx_only_when_missing() {
        let mut store = KvStore::new(8);
        assert_eq!(run(&mut store, set("k", "first", SetCondition::IfNotExists)), Reply::Ok);
        assert_eq!(run(&mut store, set("k", "second", SetCondition::IfNotExists)), Reply::Nil);
        assert_eq!(store.get(b"k"), Some(&b("first")));
    }

    #[test]
    fn set_xx_only_when_present() {
        let mut store = KvStore::new(8);
        assert_eq!(run(&mut store, set("k", "v", SetCondition::IfExists)), Reply::Nil);
        assert_eq!(store.get(b"k"), None);
        run(&mut store, set("k", "v", SetCondition::Always));
        assert_eq!(run(&mut store, set("k", "w", SetCondition::IfExists)), Reply::Ok);
        assert_eq!(store.get(b"k"), Some(&b("w")));
    }

    #[test]
    fn set_ifeq_only_when_equal_and_never_creates() {
        let mut store = KvStore::new(8);
        assert_eq!(run(&mut store, set("k", "v", SetCondition::IfEqual(b("old")))), Reply::Nil);
        assert_eq!(store.get(b"k"), None, "IFEQ must not create a missing key");
        run(&mut store, set("k", "old", SetCondition::Always));
        assert_eq!(run(&mut store, set("k", "v", SetCondition::IfEqual(b("other")))), Reply::Nil);
        assert_eq!(store.get(b"k"), Some(&b("old")));
        assert_eq!(run(&mut store, set("k", "new", SetCondition::IfEqual(b("old")))), Reply::Ok);
        assert_eq!(store.get(b"k"), Some(&b("new")));
    }

    #[test]
    fn del_counts_keys_removed() {
        let mut store = KvStore::new(8);
        run(&mut store, Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] });
        let del = Op::Del { keys: vec![b("a"), b("missing"), b("a"), b("b")] };
        assert_eq!(run(&mut store, del), Reply::Int(2));
        assert!(store.is_empty());
        assert_eq!(run(&mut store, Op::Del { keys: vec![b("a")] }), Reply::Int(0));
    }

    #[test]
    fn exists_counts_repeated_keys_repeatedly() {
        let mut store = KvStore::new(8);
        run(&mut store, set("a", "1", SetCondition::Always));
        let exists = Op::Exists { keys: vec![b("a"), b("a"), b("missing"), b("a")] };
        assert_eq!(run(&mut store, exists.clone()), Reply::Int(3));
        assert_eq!(store.read(&exists, 0), Reply::Int(3));
    }

    #[test]
    fn incrby_missing_key_starts_from_zero() {
        let mut store = KvStore::new(8);
        assert_eq!(run(&mut store, Op::IncrBy { key: b("n"), delta: 5 }), Reply::Int(5));
        assert_eq!(run(&mut store, Op::IncrBy { key: b("n"), delta: -8 }), Reply::Int(-3));
        assert_eq!(store.get(b"n"), Some(&b("-3")));
    }

    #[test]
    fn incrby_on_non_integer_is_an_error_and_changes_nothing() {
        let mut store = KvStore::new(8);
        for bad in ["abc", "", "+1", " 1", "1 ", "01", "-0", "-", "1.5", "99999999999999999999", "9223372036854775808"]
        {
            run(&mut store, set("n", bad, SetCondition::Always));
            assert_eq!(run(&mut store, Op::IncrBy { key: b("n"), delta: 1 }), error(ERROR_NOT_INTEGER), "{bad:?}");
            assert_eq!(store.get(b"n"), Some(&b(bad)));
        }
        for (good, expected) in [("0", 1), ("-9223372036854775808", i64::MIN + 1), ("9223372036854775806", i64::MAX)] {
            run(&mut store, set("n", good, SetCondition::Always));
            assert_eq!(run(&mut store, Op::IncrBy { key: b("n"), delta: 1 }), Reply::Int(expected), "{good:?}");
        }
    }

    #[test]
    fn incrby_overflow_is_an_error_and_changes_nothing() {
        let mut store = KvStore::new(8);
        run(&mut store, set("n", &i64::MAX.to_string(), SetCondition::Always));
        assert_eq!(run(&mut store, Op::IncrBy { key: b("n"), delta: 1 }), error(ERROR_INCR_OVERFLOW));
        assert_eq!(store.get(b"n"), Some(&b(&i64::MAX.to_string())));
        assert_eq!(run(&mut store, Op::IncrBy { key: b("m"), delta: i64::MIN }), Reply::Int(i64::MIN));
        assert_eq!(run(&mut store, Op::IncrBy { key: b("m"), delta: -1 }), error(ERROR_INCR_OVERFLOW));
    }

    #[test]
    fn mget_reports_missing_keys_as_nil() {
        let mut store = KvStore::new(8);
        run(&mut store, set("a", "1", SetCondition::Always));
        let mget = Op::MGet { keys: vec![b("a"), b("missing"), b("a")] };
        let expected = Reply::Array(vec![Reply::Bulk(b("1")), Reply::Nil, Reply::Bulk(b("1"))]);
        assert_eq!(run(&mut store, mget.clone()), expected);
        assert_eq!(store.read(&mget, 0), expected);
    }

    #[test]
    fn mset_sets_all_and_last_repeat_wins() {
        let mut store = KvStore::new(8);
        let mset = Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2")), (b("a"), b("3"))] };
        assert_eq!(run(&mut store, mset), Reply::Ok);
        assert_eq!(store.get(b"a"), Some(&b("3")));
        assert_eq!(store.get(b"b"), Some(&b("2")));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn read_serves_read_only_ops_and_refuses_writes() {
        let mut store = KvStore::new(8);
        run(&mut store, set("k", "v", SetCondition::Always));
        let digest = store.digest();
        assert_eq!(store.read(&Op::Get { key: b("k") }, 0), Reply::Bulk(b("v")));
        assert!(matches!(store.read(&Op::IncrBy { key: b("k"), delta: 1 }, 0), Reply::Error(_)));
        assert!(matches!(store.read(&set("k", "w", SetCondition::Always), 0), Reply::Error(_)));
        assert_eq!(store.get(b"k"), Some(&b("v")));
        assert_eq!(store.digest(), digest, "read must not change any state");
        assert_eq!(store.sessions_len(), 0);
    }

    #[test]
    fn retry_returns_first_reply_and_applies_once() {
        let mut store = KvStore::new(8);
        let first = cmd(7, 1, Op::IncrBy { key: b("n"), delta: 10 });
        assert_eq!(reply(&mut store, &first), Some(Reply::Int(10)));
        assert_eq!(reply(&mut store, &first), Some(Reply::Int(10)), "a retry replays the cached reply");
        assert_eq!(store.apply_bytes(&first.encode()).reply, Some(Reply::Int(10)));
        assert_eq!(store.get(b"n"), Some(&b("10")), "incremented once");
        let next = cmd(7, 2, Op::IncrBy { key: b("n"), delta: 10 });
        assert_eq!(reply(&mut store, &next), Some(Reply::Int(20)));
        // Sessionless commands are never deduplicated.
        let anonymous = Command::anonymous(incr("n"));
        assert_eq!(reply(&mut store, &anonymous), Some(Reply::Int(21)));
        assert_eq!(reply(&mut store, &anonymous), Some(Reply::Int(22)));
        assert_eq!(store.sessions_len(), 1);
    }

    #[test]
    fn retry_replays_a_cached_error_and_nil() {
        let mut store = KvStore::new(8);
        run(&mut store, set("k", "x", SetCondition::Always));
        let nx = cmd(3, 1, set("k", "y", SetCondition::IfNotExists));
        assert_eq!(reply(&mut store, &nx), Some(Reply::Nil));
        run(&mut store, Op::Del { keys: vec![b("k")] });
        assert_eq!(reply(&mut store, &nx), Some(Reply::Nil), "the retry must not execute against the new state");
        assert_eq!(store.get(b"k"), None);

        run(&mut store, set("n", "abc", SetCondition::Always));
        let incr = Command { session: 3, seq: 2, ack: 1, prev: 1, op: incr("n") };
        assert_eq!(reply(&mut store, &incr), Some(error(ERROR_NOT_INTEGER)));
        run(&mut store, set("n", "1", SetCondition::Always));
        assert_eq!(reply(&mut store, &incr), Some(error(ERROR_NOT_INTEGER)), "the cached error is replayed");
        assert_eq!(store.get(b"n"), Some(&b("1")));
    }

    /// Defect 3 of the node issue: two pipelined writes both ran, then both
    /// were re-sent after a link loss; the older one must get its own
    /// reply, not "stale sequence number" (a client would retry an INCRBY).
    #[test]
    fn a_pipelined_retry_of_an_older_command_replays_its_reply() {
        let mut store = KvStore::new(8);
        let first = Command { session: 4, seq: 1, ack: 1, prev: 0, op: incr("n") };
        let second = Command { session: 4, seq: 2, ack: 1, prev: 1, op: incr("n") };
        assert_eq!(reply(&mut store, &first), Some(Reply::Int(1)));
        assert_eq!(reply(&mut store, &second), Some(Reply::Int(2)));
        assert_eq!(reply(&mut store, &first), Some(Reply::Int(1)), "the retry of 1 replays its reply");
        assert_eq!(reply(&mut store, &second), Some(Reply::Int(2)));
        assert_eq!(store.get(b"n"), Some(&b("2")), "each ran once");
        // Once the client has both replies (ack 3), they are forgotten.
        let third = Command { session: 4, seq: 3, ack: 3, prev: 2, op: incr("n") };
        assert_eq!(reply(&mut store, &third), Some(Reply::Int(3)));
        let Some(Reply::Error(message)) = reply(&mut store, &first) else { panic!("a settled command is refused") };
        assert!(message.starts_with("ERR command 1 of session 4 was already settled"), "{message}");
        assert_eq!(store.get(b"n"), Some(&b("3")));
    }

    /// A leader change put a session's second write in the log before its
    /// first: the second waits, and runs right after the first.
    #[test]
    fn a_command_that_overtook_its_predecessor_waits_for_it() {
        let mut store = KvStore::new(8);
        let set_a = Command { session: 9, seq: 1, ack: 1, prev: 0, op: set("k", "a", SetCondition::Always) };
        let set_b = Command { session: 9, seq: 2, ack: 1, prev: 1, op: set("k", "b", SetCondition::Always) };
        let early = store.apply(set_b.clone());
        assert_eq!(early, Applied { reply: None, ran: false, released: vec![] }, "set_b waits for set_a");
        assert_eq!(store.get(b"k"), None);
        assert_eq!(store.apply(set_b.clone()).reply, None, "a copy of a waiting command waits too");
        let applied = store.apply(set_a.clone());
        assert_eq!(applied.reply, Some(Reply::Ok));
        assert_eq!(applied.released, vec![(9, 2, Reply::Ok)], "set_b ran right after");
        assert_eq!(store.get(b"k"), Some(&b("b")), "the client's order held");
        assert_eq!(reply(&mut store, &set_b), Some(Reply::Ok), "and its retry replays");
    }

    /// The predecessor was given up (its client was told the outcome is
    /// unknown, so a later command acknowledges past it): the waiting
    /// command runs at once.
    #[test]
    fn a_waiting_command_runs_once_its_predecessor_settles() {
        let mut store = KvStore::new(8);
        let waits = Command { session: 2, seq: 5, ack: 4, prev: 4, op: incr("n") };
        assert_eq!(reply(&mut store, &waits), None);
        let later = Command { session: 2, seq: 6, ack: 5, prev: 5, op: incr("m") };
        let applied = store.apply(later.clone());
        assert_eq!(applied.released, vec![(2, 5, Reply::Int(1))]);
        assert_eq!(applied.reply, Some(Reply::Int(1)));
        // Command 4 arriving now is settled: refused, never run.
        let given_up = Command { session: 2, seq: 4, ack: 4, prev: 0, op: incr("n") };
        assert!(matches!(reply(&mut store, &given_up), Some(Reply::Error(_))));
        assert_eq!(store.get(b"n"), Some(&b("1")));
    }

    #[test]
    fn waiting_commands_are_bounded_per_session() {
        let mut store = KvStore::new(8);
        for seq in 0..SESSION_WAITING_MAX as u64 {
            let waits = Command { session: 1, seq: 10 + seq, ack: 1, prev: 5, op: incr("n") };
            assert_eq!(reply(&mut store, &waits), None);
        }
        let one_too_many = Command { session: 1, seq: 5_000, ack: 1, prev: 5, op: incr("n") };
        assert!(matches!(reply(&mut store, &one_too_many), Some(Reply::Error(m)) if m.contains("wait")));
        assert_eq!(store.get(b"n"), None);
    }

    /// Defect 6 of the node issue: under connection churn an evicted
    /// session's late retry must not run again, on any replica.
    #[test]
    fn an_evicted_sessions_retry_is_refused_never_run_twice() {
        use crate::kv::session_id;
        let mut store = KvStore::new(2);
        let old = cmd(session_id(1, 10), 1, incr("n"));
        assert_eq!(reply(&mut store, &old), Some(Reply::Int(1)));
        assert_eq!(reply(&mut store, &cmd(session_id(1, 11), 1, incr("m"))), Some(Reply::Int(1)));
        assert_eq!(reply(&mut store, &cmd(session_id(2, 5), 1, incr("m"))), Some(Reply::Int(2)));
        assert_eq!(store.sessions_len(), 2, "session (1, 10) was evicted");
        assert_eq!(reply(&mut store, &old), Some(error(ERROR_SESSION_EXPIRED)), "its retry is refused");
        assert_eq!(store.get(b"n"), Some(&b("1")), "and did not run again");
        // A newer session of the same node is welcome.
        assert_eq!(reply(&mut store, &cmd(session_id(1, 12), 1, incr("n"))), Some(Reply::Int(2)));
    }

    /// Found by the kv_snapshot fuzz target: a command whose `prev` is not
    /// below its `seq` waited, a later command's ack raised the session's
    /// floor past it, and it kept waiting below the floor (the session
    /// table's invariant check panicked; without it, the next snapshot
    /// held a waiting command below its floor, which `restore` refuses).
    #[test]
    fn a_command_whose_prev_is_not_below_its_seq_is_refused() {
        let mut store = KvStore::new(8);
        let before = store.clone();
        for prev in [10, 3] {
            let malformed = Command { session: 4, seq: 3, ack: 0, prev, op: incr("n") };
            let applied = store.apply(malformed.clone());
            assert_eq!(applied.reply, Some(error(&format!("ERR malformed command: prev {prev} is not below seq 3"))));
            assert!(!applied.ran);
        }
        assert_eq!(store, before, "nothing changed, the apply counter included");
        let later = Command { session: 4, seq: 6, ack: 6, prev: 5, op: incr("n") };
        assert_eq!(reply(&mut store, &later), Some(Reply::Int(1)));
        assert_eq!(KvStore::restore(&store.snapshot()), Ok(store.clone()), "the snapshot restores");
        // Without a session, prev means nothing.
        let anonymous = Command { session: SESSION_NONE, seq: 0, ack: 0, prev: 9, op: incr("n") };
        assert_eq!(reply(&mut store, &anonymous), Some(Reply::Int(2)));
    }

    /// A read through the log that a later command of its connection ran
    /// before (its entry node let that command go without naming the
    /// read) is refused, not answered with that command's effect; one
    /// released from waiting for its `prev` too. A write whose `prev` ran
    /// runs.
    #[test]
    fn a_read_overtaken_by_a_later_command_of_its_session_is_refused() {
        let mut store = KvStore::new(8);
        let get = |seq, prev| Command { session: 5, seq, ack: 1, prev, op: Op::Get { key: Bytes::from_static(b"n") } };
        assert_eq!(
            reply(&mut store, &Command { session: 5, seq: 1, ack: 1, prev: 0, op: incr("n") }),
            Some(Reply::Int(1))
        );
        assert_eq!(
            reply(&mut store, &Command { session: 5, seq: 3, ack: 1, prev: 1, op: incr("n") }),
            Some(Reply::Int(2))
        );
        assert_eq!(reply(&mut store, &get(2, 1)), Some(error(ERROR_READ_OVERTAKEN)));
        // Waiting for its prev (seq 4) while seq 6, which names 4 too, is
        // waiting behind it: released in seq order, the read runs first.
        assert_eq!(reply(&mut store, &get(5, 4)), None);
        assert_eq!(reply(&mut store, &Command { session: 5, seq: 6, ack: 1, prev: 4, op: incr("n") }), None);
        let applied = store.apply(Command { session: 5, seq: 4, ack: 1, prev: 3, op: incr("n") });
        let released: Vec<(u64, Reply)> = applied.released.into_iter().map(|(_, seq, r)| (seq, r)).collect();
        assert_eq!(released, vec![(5, Reply::Bulk(Bytes::from_static(b"3"))), (6, Reply::Int(4))]);
        // A read waiting for its prev (seq 8) that seq 9 overtook: refused when released.
        assert_eq!(reply(&mut store, &get(8, 7)), None);
        assert_eq!(
            reply(&mut store, &Command { session: 5, seq: 9, ack: 1, prev: 6, op: incr("n") }),
            Some(Reply::Int(5))
        );
        let applied = store.apply(Command { session: 5, seq: 7, ack: 1, prev: 6, op: incr("n") });
        assert_eq!(applied.released, vec![(5, 8, error(ERROR_READ_OVERTAKEN))]);
    }

    #[test]
    fn zero_sessions_max_remembers_nothing() {
        let mut store = KvStore::new(0);
        let incr = cmd(1, 1, incr("n"));
        assert_eq!(reply(&mut store, &incr), Some(Reply::Int(1)));
        assert_eq!(reply(&mut store, &incr), Some(Reply::Int(2)));
        assert_eq!(store.sessions_len(), 0);
    }

    #[test]
    fn malformed_entry_is_an_error_and_leaves_state_unchanged() {
        let mut store = KvStore::new(8);
        store.apply(cmd(1, 1, set("k", "v", SetCondition::Always)));
        let before = store.clone();
        let mut encoded = cmd(2, 1, set("j", "w", SetCondition::Always)).encode().to_vec();
        encoded.pop();
        for input in [&encoded[..], &[], &[0xff, 1, 2]] {
            let reply = store.apply_bytes(input).reply;
            let Some(Reply::Error(message)) = reply else { panic!("expected an error, got {reply:?}") };
            assert!(message.starts_with("ERR malformed command: kv decode:"), "{message}");
        }
        assert_eq!(store, before);
        assert_eq!(store.digest(), before.digest());
    }

    #[test]
    fn same_log_gives_same_digest() {
        let log: Vec<Command> = (0..200u64)
            .map(|i| {
                let key = b(&format!("k{}", i % 7));
                let op = match i % 5 {
                    0 => Op::Set {
                        key,
                        value: b(&i.to_string()),
                        condition: SetCondition::Always,
                        ttl: SetTtl::Clear,
                        get: false,
                    },
                    1 => Op::IncrBy { key, delta: i as i64 },
                    2 => Op::Del { keys: vec![key] },
                    3 => Op::MSet { pairs: vec![(key, b("x")), (b("other"), b(&i.to_string()))] },
                    _ => Op::Get { key },
                };
                let seq = i / 11 + 1;
                Command { session: i % 11, seq, ack: seq.saturating_sub(i % 3), prev: seq - 1, op }
            })
            .collect();
        let mut first = KvStore::new(4);
        let mut second = KvStore::new(4);
        let replies_first: Vec<Applied> = log.iter().map(|c| first.apply(c.clone())).collect();
        let replies_second: Vec<Applied> = log.iter().map(|c| second.apply_bytes(&c.encode())).collect();
        assert_eq!(replies_first, replies_second);
        assert_eq!(first.digest(), second.digest());
        assert_eq!(first, second);

        // One more command makes them differ; the same one makes them equal again.
        let extra = cmd(99, 1, set("z", "1", SetCondition::Always));
        first.apply(extra.clone());
        assert_ne!(first.digest(), second.digest());
        second.apply(extra.clone());
        assert_eq!(first.digest(), second.digest());
    }

    #[test]
    fn digest_does_not_depend_on_insertion_order() {
        let mut first = KvStore::new(4);
        let mut second = KvStore::new(4);
        run(&mut first, Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] });
        run(&mut second, Op::MSet { pairs: vec![(b("b"), b("2")), (b("a"), b("1"))] });
        assert_eq!(first.digest(), second.digest());
    }

    #[test]
    fn strict_integer_parser_matches_redis() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-1"), Some(-1));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        for bad in
            [&b""[..], b"-", b"-0", b"00", b"+1", b"1a", b"\xff", b"-9223372036854775809", b"18446744073709551616"]
        {
            assert_eq!(parse_i64_strict(bad), None, "{bad:?}");
        }
    }
}
