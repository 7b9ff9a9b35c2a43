//! What each [`Op`] does to the store: Redis 7.0's semantics for strings,
//! expiry and the keyspace, on the log's time (see `store.rs`).
//!
//! Writes run in [`KvStore::execute`] at the log's time and stamp every key
//! they change with the command's apply index (its WATCH version). Reads
//! run in [`KvStore::evaluate`], at the log's time when they come through
//! the log and at the leader's time when it serves them from a lease.
//!
//! Bad input never panics: a wrong value is an error reply and the store
//! is unchanged (a command with several effects checks before it writes).

use bytes::{Bytes, BytesMut};

use super::command::{ExpireWhen, Expiry, Op, SetCondition, SetTtl, Watched, EXPIRE_COMMAND_NAMES};
use super::float;
use super::glob::{matches_all, Glob};
use super::keyspace::{Entry, ENTRY_BYTES};
use super::reply::Reply;
use super::store::{parse_i64_strict, KvStore};

/// The Redis reply to INCRBY on a value that is not a decimal i64.
pub const ERROR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// The Redis reply to an INCRBY whose result does not fit in an i64.
pub const ERROR_INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";
/// The Redis reply when a value would grow past the bound.
pub const ERROR_STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// No string grows past this, whatever `limit` a command carries (Redis's
/// own bound on a string): a forged or corrupt command cannot make a
/// replica allocate without bound (found by the kv_command fuzz target:
/// SETRANGE at offset 889 MB with a limit of 1 GB).
pub const STRING_BYTES_MAX: u64 = 512 << 20;
/// RENAME of a missing key.
pub const ERROR_NO_SUCH_KEY: &str = "ERR no such key";
/// SCAN's TYPE names this store holds: only strings.
const TYPE_STRING: &[u8] = b"string";

fn error(message: &str) -> Reply {
    Reply::Error(message.to_string())
}

fn expire_time_error(command: u8) -> Reply {
    let name = EXPIRE_COMMAND_NAMES.get(usize::from(command)).copied().unwrap_or("set");
    Reply::Error(format!("ERR invalid expire time in '{name}' command"))
}

fn count(n: usize) -> Reply {
    // A count of keys in one command is far below i64::MAX.
    Reply::Int(n as i64)
}

impl KvStore {
    /// The absolute expiry time `expiry` names at the log's time.
    fn resolve(&self, expiry: &Expiry) -> Result<i64, Reply> {
        match *expiry {
            Expiry::At(at) => Ok(at),
            Expiry::In { ms, command } => self.now.checked_add(ms).ok_or_else(|| expire_time_error(command)),
        }
    }

    fn live(&self, key: &Bytes) -> Option<&Entry> {
        self.keys.live(key, self.now)
    }

    /// Store `value` under `key` with `expires_at`, versioned by this apply.
    fn write(&mut self, key: &Bytes, value: Bytes, expires_at: Option<i64>) {
        self.write_owned(key.clone(), value, expires_at);
    }

    fn write_owned(&mut self, key: Bytes, value: Bytes, expires_at: Option<i64>) {
        self.keys.put(key, Entry { value, expires_at, version: self.apply_count });
    }

    /// Remove `key`; true if it was alive. Any removal (of an expired
    /// entry too) counts for WATCH.
    fn delete(&mut self, key: &Bytes) -> bool {
        let alive = self.live(key).is_some();
        if self.keys.remove(key).is_some() {
            self.removals += 1;
        }
        alive
    }

    /// Change `key`'s expiry (it is alive).
    fn set_expiry(&mut self, key: &Bytes, expires_at: Option<i64>) {
        let value = self.live(key).expect("the caller checked it is alive").value.clone();
        self.write(key, value, expires_at);
    }

    /// [`KvStore::execute`] of an op the caller gives up: a plain SET or
    /// MSET moves its keys and values into the keyspace instead of cloning
    /// them (each clone of a freshly decoded key or value allocated, and
    /// the op's own copies were dropped right after).
    pub(super) fn execute_owned(&mut self, op: Op) -> Reply {
        match op {
            Op::Set { key, value, condition: SetCondition::Always, ttl: SetTtl::Clear, get: false } => {
                self.write_owned(key, value, None);
                Reply::Ok
            }
            Op::MSet { pairs } => {
                for (key, value) in pairs {
                    self.write_owned(key, value, None);
                }
                Reply::Ok
            }
            op => self.execute(&op),
        }
    }

    /// Runs `op` at the log's time (no session logic).
    pub(super) fn execute(&mut self, op: &Op) -> Reply {
        if op.is_read_only() {
            return self.evaluate(op, self.now);
        }
        match op {
            // A plain SET from the log takes `execute_owned`'s path; here
            // (inside EXEC) the general one does the same.
            Op::Set { key, value, condition, ttl, get } => {
                let expires_at = match ttl {
                    SetTtl::Expire(expiry) => match self.resolve(expiry) {
                        Ok(at) => Some(at),
                        Err(reply) => return reply,
                    },
                    SetTtl::Keep => self.live(key).and_then(|entry| entry.expires_at),
                    SetTtl::Clear => None,
                };
                let current = self.live(key).map(|entry| entry.value.clone());
                let old = current.clone().map_or(Reply::Nil, Reply::Bulk);
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfNotExists => current.is_none(),
                    SetCondition::IfExists => current.is_some(),
                    SetCondition::IfEqual(expected) => current.as_ref() == Some(expected),
                };
                if allowed {
                    self.write(key, value.clone(), expires_at);
                }
                match (get, allowed) {
                    (true, _) => old,
                    (false, true) => Reply::Ok,
                    (false, false) => Reply::Nil,
                }
            }
            Op::SetNx { key, value } => {
                if self.live(key).is_some() {
                    return Reply::Int(0);
                }
                self.write(key, value.clone(), None);
                Reply::Int(1)
            }
            Op::GetDel { key } => match self.live(key).map(|entry| entry.value.clone()) {
                None => Reply::Nil,
                Some(value) => {
                    self.delete(key);
                    Reply::Bulk(value)
                }
            },
            Op::GetEx { key, ttl } => {
                let expires_at = match ttl {
                    SetTtl::Expire(expiry) => match self.resolve(expiry) {
                        Ok(at) => Some(at),
                        Err(reply) => return reply,
                    },
                    SetTtl::Clear | SetTtl::Keep => None,
                };
                let Some(entry) = self.live(key) else { return Reply::Nil };
                let value = entry.value.clone();
                match (ttl, expires_at) {
                    (SetTtl::Expire(Expiry::At(_)), Some(at)) if at <= self.now => {
                        self.delete(key);
                    }
                    (SetTtl::Expire(_), at) => self.set_expiry(key, at),
                    _ => {
                        if entry.expires_at.is_some() {
                            self.set_expiry(key, None);
                        }
                    }
                }
                Reply::Bulk(value)
            }
            Op::Append { key, value, limit } => {
                let (current, expires_at) =
                    self.live(key).map_or((Bytes::new(), None), |entry| (entry.value.clone(), entry.expires_at));
                let length = current.len() + value.len();
                if length as u64 > (*limit).min(STRING_BYTES_MAX) {
                    return error(ERROR_STRING_TOO_LONG);
                }
                let mut joined = BytesMut::with_capacity(length);
                joined.extend_from_slice(&current);
                joined.extend_from_slice(value);
                self.write(key, joined.freeze(), expires_at);
                count(length)
            }
            Op::SetRange { key, offset, value, limit } => {
                let (current, expires_at) = match self.live(key) {
                    Some(entry) => (entry.value.clone(), entry.expires_at),
                    None if value.is_empty() => return Reply::Int(0),
                    None => (Bytes::new(), None),
                };
                if value.is_empty() {
                    return count(current.len());
                }
                let end = offset.saturating_add(value.len() as u64);
                if end > (*limit).min(STRING_BYTES_MAX) {
                    return error(ERROR_STRING_TOO_LONG);
                }
                let Ok(end) = usize::try_from(end) else { return error(ERROR_STRING_TOO_LONG) };
                let mut grown = BytesMut::from(&current[..]);
                if grown.len() < end {
                    grown.resize(end, 0);
                }
                grown[end - value.len()..end].copy_from_slice(value);
                let length = grown.len();
                self.write(key, grown.freeze(), expires_at);
                count(length)
            }
            Op::Del { keys } => count(keys.iter().filter(|key| self.delete(key)).count()),
            Op::IncrBy { key, delta } => {
                let (current, expires_at) = match self.live(key) {
                    None => (0, None),
                    Some(entry) => match parse_i64_strict(&entry.value) {
                        Some(current) => (current, entry.expires_at),
                        None => return error(ERROR_NOT_INTEGER),
                    },
                };
                let Some(new) = current.checked_add(*delta) else {
                    return error(ERROR_INCR_OVERFLOW);
                };
                self.write(key, Bytes::from(new.to_string()), expires_at);
                Reply::Int(new)
            }
            Op::IncrByFloat { key, increment } => {
                let entry = self.live(key);
                let expires_at = entry.and_then(|entry| entry.expires_at);
                match float::incr_by_float(entry.map(|entry| &entry.value[..]), increment) {
                    Ok(text) => {
                        let value = Bytes::from(text);
                        self.write(key, value.clone(), expires_at);
                        Reply::Bulk(value)
                    }
                    Err(message) => error(message),
                }
            }
            Op::MSet { pairs } => {
                for (key, value) in pairs {
                    self.write(key, value.clone(), None);
                }
                Reply::Ok
            }
            Op::MSetNx { pairs } => {
                if pairs.iter().any(|(key, _)| self.live(key).is_some()) {
                    return Reply::Int(0);
                }
                for (key, value) in pairs {
                    self.write(key, value.clone(), None);
                }
                Reply::Int(1)
            }
            Op::Expire { key, expiry, when } => {
                let at = match self.resolve(expiry) {
                    Ok(at) => at,
                    Err(reply) => return reply,
                };
                let Some(entry) = self.live(key) else { return Reply::Int(0) };
                let current = entry.expires_at;
                let ExpireWhen { nx, xx, gt, lt } = *when;
                let refused = (nx && current.is_some())
                    || (xx && current.is_none())
                    || (gt && current.is_none_or(|current| at <= current))
                    || (lt && current.is_some_and(|current| at >= current));
                if refused {
                    return Reply::Int(0);
                }
                if at <= self.now {
                    self.delete(key);
                } else {
                    self.set_expiry(key, Some(at));
                }
                Reply::Int(1)
            }
            Op::Persist { key } => match self.live(key) {
                Some(entry) if entry.expires_at.is_some() => {
                    self.set_expiry(key, None);
                    Reply::Int(1)
                }
                _ => Reply::Int(0),
            },
            Op::Rename { from, to, nx } => {
                let Some(entry) = self.live(from).cloned() else { return error(ERROR_NO_SUCH_KEY) };
                if from == to {
                    return if *nx { Reply::Int(0) } else { Reply::Ok };
                }
                if *nx && self.live(to).is_some() {
                    return Reply::Int(0);
                }
                self.delete(to);
                self.delete(from);
                self.write(to, entry.value, entry.expires_at);
                if *nx {
                    Reply::Int(1)
                } else {
                    Reply::Ok
                }
            }
            Op::Copy { from, to, replace } => {
                if from == to {
                    return error("ERR source and destination objects are the same");
                }
                let Some(entry) = self.live(from).cloned() else { return Reply::Int(0) };
                if self.live(to).is_some() {
                    if !replace {
                        return Reply::Int(0);
                    }
                    self.delete(to);
                }
                self.write(to, entry.value, entry.expires_at);
                Reply::Int(1)
            }
            Op::Flush => {
                if self.keys.len_stored() > 0 {
                    self.keys.clear();
                    self.removals += 1;
                }
                Reply::Ok
            }
            Op::Exec { ops, watched, removals } => {
                if watched.iter().any(|w| self.watch_broken(w, *removals)) {
                    return Reply::NilArray;
                }
                Reply::Array(ops.iter().map(|op| self.execute(op)).collect())
            }
            Op::Get { .. }
            | Op::Exists { .. }
            | Op::MGet { .. }
            | Op::StrLen { .. }
            | Op::GetRange { .. }
            | Op::Type { .. }
            | Op::MemoryUsage { .. }
            | Op::ObjectEncoding { .. }
            | Op::Ttl { .. }
            | Op::Keys { .. }
            | Op::Scan { .. }
            | Op::RandomKey { .. }
            | Op::DbSize
            | Op::Watch { .. } => unreachable!("read-only ops are evaluated above"),
        }
    }

    /// Did the watched key change since its version was read? A key that
    /// was missing counts as changed once any key was removed since.
    fn watch_broken(&self, watched: &Watched, removals: u64) -> bool {
        self.watch_broken_at(watched, removals, self.now)
    }

    fn watch_broken_at(&self, watched: &Watched, removals: u64, at: i64) -> bool {
        match (self.keys.live(&watched.key, at), watched.version) {
            (Some(entry), Some(version)) => entry.version != version,
            (Some(_), None) | (None, Some(_)) => true,
            (None, None) => self.removals > removals,
        }
    }

    /// Runs a read-only `op` at time `at`.
    pub(super) fn evaluate(&self, op: &Op, at: i64) -> Reply {
        let live = |key: &Bytes| self.keys.live(key, at);
        match op {
            Op::Get { key } => live(key).map_or(Reply::Nil, |entry| Reply::Bulk(entry.value.clone())),
            Op::Exists { keys } => count(keys.iter().filter(|key| live(key).is_some()).count()),
            Op::MGet { keys } => Reply::bulks(keys.iter().map(|key| live(key).map(|entry| entry.value.clone()))),
            Op::StrLen { key } => count(live(key).map_or(0, |entry| entry.value.len())),
            Op::GetRange { key, start, end } => {
                let value = live(key).map(|entry| entry.value.clone()).unwrap_or_default();
                Reply::Bulk(get_range(&value, *start, *end))
            }
            Op::Type { key } => Reply::Status(if live(key).is_some() { "string" } else { "none" }.to_string()),
            Op::MemoryUsage { key } => {
                live(key).map_or(Reply::Nil, |entry| count(key.len() + entry.value.len() + ENTRY_BYTES))
            }
            // Every value is kept as its bytes, whatever they spell.
            Op::ObjectEncoding { key } => live(key).map_or(Reply::Nil, |_| Reply::Bulk(Bytes::from_static(b"raw"))),
            Op::Ttl { key, milliseconds, absolute } => {
                let Some(entry) = live(key) else { return Reply::Int(-2) };
                let Some(expires_at) = entry.expires_at else { return Reply::Int(-1) };
                let ttl = if *absolute { expires_at } else { expires_at.saturating_sub(at) }.max(0);
                Reply::Int(if *milliseconds { ttl } else { ttl.saturating_add(500) / 1000 })
            }
            Op::Keys { pattern } => {
                let all = matches_all(pattern);
                let glob = Glob::new(pattern);
                Reply::Array(
                    self.keys
                        .iter_live(at)
                        .filter(|(key, _)| all || glob.matches(key))
                        .map(|(key, _)| Reply::Bulk(key.clone()))
                        .collect(),
                )
            }
            Op::Scan { from, count, pattern, type_filter } => {
                let wanted = usize::try_from(*count).unwrap_or(usize::MAX);
                let (found, next) = self.keys.scan(*from, wanted, at);
                let glob = pattern.as_ref().filter(|p| !matches_all(p)).map(|p| Glob::new(p));
                let type_ok = type_filter.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(TYPE_STRING));
                let keys = found
                    .into_iter()
                    .filter(|(key, _)| type_ok && glob.as_ref().is_none_or(|g| g.matches(key)))
                    .map(|(key, _)| Reply::Bulk(key.clone()))
                    .collect();
                let next = next.map_or(Reply::Nil, |bucket| Reply::Int(bucket as i64));
                Reply::Array(vec![next, Reply::Array(keys)])
            }
            Op::RandomKey { point } => self
                .keys
                .first_live_from(*point, at, RANDOM_KEY_TRIES)
                .map_or(Reply::Nil, |key| Reply::Bulk(key.clone())),
            Op::DbSize => count(self.keys.len_live(at)),
            Op::Watch { keys } => {
                let mut versions = vec![Reply::Int(self.removals as i64)];
                versions.extend(
                    keys.iter().map(|key| live(key).map_or(Reply::Nil, |entry| Reply::Int(entry.version as i64))),
                );
                Reply::Array(versions)
            }
            Op::Exec { ops, watched, removals } => {
                if watched.iter().any(|w| self.watch_broken_at(w, *removals, at)) {
                    return Reply::NilArray;
                }
                Reply::Array(ops.iter().map(|op| self.evaluate(op, at)).collect())
            }
            _ => Reply::Error("ERR write command cannot be served as a read".to_string()),
        }
    }
}

/// Expired entries RANDOMKEY looks past before giving up on a live one.
const RANDOM_KEY_TRIES: usize = 100;

/// GETRANGE's substring: negative indexes count from the end, both ends
/// inclusive and clamped, as Redis computes them.
fn get_range(value: &Bytes, start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return Bytes::new();
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if start > end {
        return Bytes::new();
    }
    value.slice(start as usize..=end as usize)
}
