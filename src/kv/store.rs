//! [`KvStore`]: the replicated state machine. Every replica applies the same
//! chosen commands in slot order and so reaches the same state.
//!
//! Exactly-once ("Paxos Made Moderately Complex" §3, the replica's
//! duplicate check; Raft thesis §6.3 for the bounded session table): a
//! client may propose one command several times (it retried after a timeout,
//! or a new leader re-proposed it), so the same (session, seq) can be chosen
//! in several slots. Only the first is executed; later copies get the reply
//! cached the first time.
//!
//! Invariants:
//! - `apply` / `apply_bytes` are deterministic functions of the state and
//!   the input: no clocks, no randomness, no hash-order iteration.
//! - Bad input never panics: a malformed entry or a wrong-type value yields
//!   a `Reply::Error` and leaves the state unchanged.
//! - Per session, executed sequence numbers strictly increase; a command
//!   is executed at most once while its session is in the table.
//! - `apply_count` is strictly monotonic and is the only clock (session
//!   eviction order, see `session.rs`).
//!
//! Limitation of a bounded table (as in the Raft thesis): once a session is
//! evicted its history is gone, so a very late retry of its last command
//! would execute again. `sessions_max` must exceed the number of clients
//! active within one retry horizon.

use super::command::{Command, Op, SetCondition, SESSION_NONE};
use super::reply::Reply;
use super::session::SessionTable;
use bytes::Bytes;
use std::collections::BTreeMap;

/// The Redis reply to INCRBY on a value that is not a decimal i64.
pub const ERROR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// The Redis reply to an INCRBY whose result does not fit in an i64.
pub const ERROR_INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";

/// The key-value state plus the client session table.
#[derive(Clone, Debug, PartialEq, Eq)]
///
/// The fields are visible to `snapshot.rs`, which writes and validates the
/// whole state; nothing else in the crate sees them.
pub struct KvStore {
    /// The data. A BTreeMap so iteration (digest, snapshots) is ordered.
    pub(super) data: BTreeMap<Bytes, Bytes>,
    /// Last command and reply per client session; bounded.
    pub(super) sessions: SessionTable,
    /// Commands applied so far (decode failures excluded). Strictly
    /// monotonic: the logical clock of session eviction.
    /// Invariant: `>=` every session's `apply_index_last`.
    pub(super) apply_count: u64,
}

impl KvStore {
    /// An empty store remembering at most `sessions_max` sessions.
    pub fn new(sessions_max: usize) -> KvStore {
        KvStore { data: BTreeMap::new(), sessions: SessionTable::new(sessions_max), apply_count: 0 }
    }

    /// Applies one committed command, exactly once per (session, seq).
    ///
    /// With `command.session != 0`:
    /// - `seq` above the session's last: execute, remember `(seq, reply)`;
    /// - `seq` equal to it: a retry, return the cached reply unexecuted;
    /// - `seq` below it: return `Reply::Error("ERR stale sequence number ...")`.
    ///
    /// A new session evicts the least recently applied one when the table is
    /// full.
    pub fn apply(&mut self, command: &Command) -> Reply {
        self.apply_count += 1;
        if command.session == SESSION_NONE {
            return self.execute(&command.op);
        }
        let reply = match self.sessions.get(command.session) {
            Some(session) if command.seq < session.seq_last => {
                return Reply::Error(format!(
                    "ERR stale sequence number {} for session {}: already applied {}",
                    command.seq, command.session, session.seq_last
                ));
            }
            Some(session) if command.seq == session.seq_last => session.reply_last.clone(),
            _ => self.execute(&command.op),
        };
        self.sessions.record(command.session, command.seq, reply.clone(), self.apply_count);
        reply
    }

    /// Decodes a committed log entry and applies it. A malformed entry
    /// returns `Reply::Error` and leaves the state unchanged, identically on
    /// every replica.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Reply {
        match Command::decode(bytes) {
            Ok(command) => self.apply(&command),
            Err(error) => Reply::Error(format!("ERR malformed command: {error}")),
        }
    }

    /// Evaluates a read-only op on the current state, without touching the
    /// session table (lease and read-index reads). A write op is an error.
    pub fn read(&self, op: &Op) -> Reply {
        match op {
            Op::Get { key } => self.data.get(key).map_or(Reply::Nil, |value| Reply::Bulk(value.clone())),
            Op::Exists { keys } => Reply::Int(count_i64(keys.iter().filter(|key| self.data.contains_key(*key)))),
            Op::MGet { keys } => Reply::Array(keys.iter().map(|key| self.data.get(key).cloned()).collect()),
            Op::Set { .. } | Op::Del { .. } | Op::IncrBy { .. } | Op::MSet { .. } => {
                Reply::Error("ERR write command cannot be served as a read".to_string())
            }
        }
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.data.get(key)
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
        hasher.u64(self.data.len() as u64);
        for (key, value) in &self.data {
            hasher.bytes(key);
            hasher.bytes(value);
        }
        hasher.u64(self.sessions.len() as u64);
        for (id, session) in self.sessions.iter() {
            hasher.u64(*id);
            hasher.u64(session.seq_last);
            hasher.u64(session.apply_index_last);
            hasher.bytes(&session.reply_last.encode());
        }
        hasher.u64(self.sessions.sessions_max() as u64);
        hasher.u64(self.apply_count);
        hasher.finish()
    }

    /// Runs `op` against the data (no session logic).
    fn execute(&mut self, op: &Op) -> Reply {
        match op {
            Op::Get { .. } | Op::Exists { .. } | Op::MGet { .. } => self.read(op),
            Op::Set { key, value, condition: SetCondition::Always } => {
                // The common case: one tree walk, not a lookup then an insert.
                self.data.insert(key.clone(), value.clone());
                Reply::Ok
            }
            Op::Set { key, value, condition } => {
                let current = self.data.get(key);
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfNotExists => current.is_none(),
                    SetCondition::IfExists => current.is_some(),
                    SetCondition::IfEqual(old) => current == Some(old),
                };
                if !allowed {
                    return Reply::Nil;
                }
                self.data.insert(key.clone(), value.clone());
                Reply::Ok
            }
            // Redis DEL counts keys actually removed: `DEL a a` removes one.
            Op::Del { keys } => Reply::Int(count_i64(keys.iter().filter(|key| self.data.remove(*key).is_some()))),
            Op::IncrBy { key, delta } => {
                let current = match self.data.get(key) {
                    None => 0,
                    Some(value) => match parse_i64_strict(value) {
                        Some(current) => current,
                        None => return Reply::Error(ERROR_NOT_INTEGER.to_string()),
                    },
                };
                let Some(new) = current.checked_add(*delta) else {
                    return Reply::Error(ERROR_INCR_OVERFLOW.to_string());
                };
                self.data.insert(key.clone(), Bytes::from(new.to_string()));
                Reply::Int(new)
            }
            Op::MSet { pairs } => {
                for (key, value) in pairs {
                    self.data.insert(key.clone(), value.clone());
                }
                Reply::Ok
            }
        }
    }
}

/// Counts an iterator's items as the i64 of an integer reply.
fn count_i64<T>(items: impl Iterator<Item = T>) -> i64 {
    // A count of keys in one command is far below i64::MAX.
    items.count() as i64
}

/// Parses a value as Redis' `string2ll` does: an optional `-`, then decimal
/// digits with no leading zero (except "0" itself), no `+`, no spaces,
/// within the i64 range. Returns `None` for anything else.
fn parse_i64_strict(value: &[u8]) -> Option<i64> {
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

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn set(key: &str, value: &str, condition: SetCondition) -> Op {
        Op::Set { key: b(key), value: b(value), condition }
    }

    /// Applies `op` without a session.
    fn run(store: &mut KvStore, op: Op) -> Reply {
        store.apply(&Command { session: SESSION_NONE, seq: 0, op })
    }

    fn error(message: &str) -> Reply {
        Reply::Error(message.to_string())
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
        assert_eq!(store.read(&exists), Reply::Int(3));
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
        let expected = Reply::Array(vec![Some(b("1")), None, Some(b("1"))]);
        assert_eq!(run(&mut store, mget.clone()), expected);
        assert_eq!(store.read(&mget), expected);
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
        assert_eq!(store.read(&Op::Get { key: b("k") }), Reply::Bulk(b("v")));
        assert!(matches!(store.read(&Op::IncrBy { key: b("k"), delta: 1 }), Reply::Error(_)));
        assert!(matches!(store.read(&set("k", "w", SetCondition::Always)), Reply::Error(_)));
        assert_eq!(store.get(b"k"), Some(&b("v")));
        assert_eq!(store.digest(), digest, "read must not change any state");
        assert_eq!(store.sessions_len(), 0);
    }

    #[test]
    fn retry_returns_first_reply_and_applies_once() {
        let mut store = KvStore::new(8);
        let incr = Command { session: 7, seq: 1, op: Op::IncrBy { key: b("n"), delta: 10 } };
        assert_eq!(store.apply(&incr), Reply::Int(10));
        assert_eq!(store.apply(&incr), Reply::Int(10), "a retry replays the cached reply");
        assert_eq!(store.apply_bytes(&incr.encode()), Reply::Int(10));
        assert_eq!(store.get(b"n"), Some(&b("10")), "incremented once");
        let next = Command { session: 7, seq: 2, op: Op::IncrBy { key: b("n"), delta: 10 } };
        assert_eq!(store.apply(&next), Reply::Int(20));
        // Sessionless commands are never deduplicated.
        let anonymous = Command { session: SESSION_NONE, seq: 1, op: Op::IncrBy { key: b("n"), delta: 1 } };
        assert_eq!(store.apply(&anonymous), Reply::Int(21));
        assert_eq!(store.apply(&anonymous), Reply::Int(22));
        assert_eq!(store.sessions_len(), 1);
    }

    #[test]
    fn retry_replays_a_cached_error_and_nil() {
        let mut store = KvStore::new(8);
        run(&mut store, set("k", "x", SetCondition::Always));
        let nx = Command { session: 3, seq: 1, op: set("k", "y", SetCondition::IfNotExists) };
        assert_eq!(store.apply(&nx), Reply::Nil);
        run(&mut store, Op::Del { keys: vec![b("k")] });
        assert_eq!(store.apply(&nx), Reply::Nil, "the retry must not execute against the new state");
        assert_eq!(store.get(b"k"), None);

        run(&mut store, set("n", "abc", SetCondition::Always));
        let incr = Command { session: 3, seq: 2, op: Op::IncrBy { key: b("n"), delta: 1 } };
        assert_eq!(store.apply(&incr), error(ERROR_NOT_INTEGER));
        run(&mut store, set("n", "1", SetCondition::Always));
        assert_eq!(store.apply(&incr), error(ERROR_NOT_INTEGER), "the cached error is replayed");
        assert_eq!(store.get(b"n"), Some(&b("1")));
    }

    #[test]
    fn stale_sequence_number_is_an_error_and_not_executed() {
        let mut store = KvStore::new(8);
        store.apply(&Command { session: 4, seq: 5, op: set("k", "five", SetCondition::Always) });
        let stale = Command { session: 4, seq: 3, op: set("k", "three", SetCondition::Always) };
        let reply = store.apply(&stale);
        let Reply::Error(message) = reply else { panic!("expected an error, got {reply:?}") };
        assert!(message.starts_with("ERR stale sequence number 3"), "{message}");
        assert_eq!(store.get(b"k"), Some(&b("five")));
        // The stale command did not replace the cached reply of seq 5.
        assert_eq!(store.apply(&Command { session: 4, seq: 5, op: Op::Get { key: b("x") } }), Reply::Ok);
    }

    #[test]
    fn session_table_is_bounded_and_evicts_least_recently_applied() {
        let sessions_max = 3;
        let mut store = KvStore::new(sessions_max);
        let incr = |session, seq| Command { session, seq, op: Op::IncrBy { key: b("n"), delta: 1 } };
        for session in 1..=3 {
            store.apply(&incr(session, 1));
        }
        assert_eq!(store.sessions_len(), 3);
        // Session 1 becomes the most recent (a retry counts as an apply).
        assert_eq!(store.apply(&incr(1, 1)), Reply::Int(1));
        // A fourth session evicts session 2, the least recently applied.
        store.apply(&incr(4, 1));
        assert_eq!(store.sessions_len(), sessions_max);
        assert_eq!(store.apply(&incr(1, 1)), Reply::Int(1), "session 1 kept: still deduplicated");
        assert_eq!(store.apply(&incr(3, 1)), Reply::Int(3), "session 3 kept: still deduplicated");
        // Session 2 was evicted, so its late retry executes again (the
        // documented limit of a bounded table).
        assert_eq!(store.apply(&incr(2, 1)), Reply::Int(5));
        assert_eq!(store.sessions_len(), sessions_max);
    }

    #[test]
    fn zero_sessions_max_remembers_nothing() {
        let mut store = KvStore::new(0);
        let incr = Command { session: 1, seq: 1, op: Op::IncrBy { key: b("n"), delta: 1 } };
        assert_eq!(store.apply(&incr), Reply::Int(1));
        assert_eq!(store.apply(&incr), Reply::Int(2));
        assert_eq!(store.sessions_len(), 0);
    }

    #[test]
    fn malformed_entry_is_an_error_and_leaves_state_unchanged() {
        let mut store = KvStore::new(8);
        store.apply(&Command { session: 1, seq: 1, op: set("k", "v", SetCondition::Always) });
        let before = store.clone();
        let mut encoded = Command { session: 2, seq: 1, op: set("j", "w", SetCondition::Always) }.encode().to_vec();
        encoded.pop();
        for input in [&encoded[..], &[], &[0xff, 1, 2]] {
            let reply = store.apply_bytes(input);
            let Reply::Error(message) = reply else { panic!("expected an error, got {reply:?}") };
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
                    0 => Op::Set { key, value: b(&i.to_string()), condition: SetCondition::Always },
                    1 => Op::IncrBy { key, delta: i as i64 },
                    2 => Op::Del { keys: vec![key] },
                    3 => Op::MSet { pairs: vec![(key, b("x")), (b("other"), b(&i.to_string()))] },
                    _ => Op::Get { key },
                };
                Command { session: i % 11, seq: i / 11 + 1, op }
            })
            .collect();
        let mut first = KvStore::new(4);
        let mut second = KvStore::new(4);
        let replies_first: Vec<Reply> = log.iter().map(|c| first.apply(c)).collect();
        let replies_second: Vec<Reply> = log.iter().map(|c| second.apply_bytes(&c.encode())).collect();
        assert_eq!(replies_first, replies_second);
        assert_eq!(first.digest(), second.digest());
        assert_eq!(first, second);

        // One more command makes them differ; the same one makes them equal again.
        let extra = Command { session: 99, seq: 1, op: set("z", "1", SetCondition::Always) };
        first.apply(&extra);
        assert_ne!(first.digest(), second.digest());
        second.apply(&extra);
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
