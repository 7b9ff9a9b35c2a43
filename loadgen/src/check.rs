//! `--check linearizable`: before a run, every key is set to a known value;
//! during it, every operation is recorded (`history.rs`); after it (faults
//! healed), every key is read back; then each key's history is checked
//! for linearizability against a register with lincheck, the simulator's
//! checker (WGL search with Lowe's memoization; linearizability is
//! compositional, so keys are checked one by one, in parallel).
//!
//! A write with no reply, or an error reply, is indeterminate: it may take
//! effect at any time after its invocation, or never. A read with no reply
//! or an error reply says nothing and is left out. A key whose search
//! exceeds the step budget is reported as unknown, never passed silently.
//!
//! "Lost acknowledged writes" counts keys whose read-back returns a value
//! written before some acknowledged write began (that write, acknowledged,
//! then vanished): the loss a user notices, counted apart from the verdict.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lincheck::{Operation, RegisterInput, RegisterModel, RegisterOutput, Verdict};
use serde::{Deserialize, Serialize};

use crate::history::{id_text, write_value, Entry, Outcome, FOREIGN};
use crate::resp::{self, Reply};
use crate::workload::{KeySpace, OpKind};

/// Search steps per key before its verdict is "unknown".
pub const STEP_BUDGET: u64 = 5_000_000;
/// Seeding and reading back give up after this long.
const ROUND_LIMIT: Duration = Duration::from_secs(60);
/// Requests per pipelined batch while seeding or reading back.
const BATCH: usize = 100;
/// Operations shown per violation.
const SHOWN_OPS_MAX: usize = 16;
/// Keys with a violation listed in the report (all are counted).
const VIOLATIONS_SHOWN_MAX: usize = 5;

/// The verdict of one run, as the summary table, `bundle.json` and a
/// comparison's README show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// "linearizable", "not linearizable", "unknown" (some keys over the
    /// budget, none failing) or "not checked" (see `note`).
    pub verdict: String,
    pub operations: u64,
    pub keys: u64,
    /// Writes with no reply or an error reply.
    pub indeterminate_writes: u64,
    /// Reads with no reply or an error reply (left out of the check).
    pub unanswered_reads: u64,
    pub keys_failing: u64,
    /// Keys whose search exceeded the step budget.
    pub keys_over_budget: Vec<String>,
    /// The first few failing keys, with the operations that show it.
    pub violations: Vec<KeyViolation>,
    pub lost_acknowledged_writes: u64,
    /// Keys the read-back could not read (their losses are not counted).
    pub keys_not_read_back: u64,
    pub check_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyViolation {
    pub key: String,
    /// What went wrong, in words.
    pub summary: String,
    /// The operations around it, one per line (times in seconds since the
    /// measured window started).
    pub ops: Vec<String>,
}

impl CheckReport {
    /// One line for the summary table.
    pub fn headline(&self) -> String {
        let mut line = format!(
            "{}: {} ops on {} keys, {} indeterminate writes, {} lost acknowledged writes",
            self.verdict, self.operations, self.keys, self.indeterminate_writes, self.lost_acknowledged_writes
        );
        if self.keys_failing > 0 {
            line.push_str(&format!(", {} keys failing", self.keys_failing));
        }
        if !self.keys_over_budget.is_empty() {
            line.push_str(&format!(", {} keys over the search budget", self.keys_over_budget.len()));
        }
        if let Some(note) = &self.note {
            line.push_str(&format!(" ({note})"));
        }
        line
    }
}

/// A read-back of one key after the run.
#[derive(Clone, Copy, Debug)]
pub struct ReadBack {
    pub key: u64,
    pub call_ns: u64,
    pub ret_ns: u64,
    /// The write id seen (`None`: no value).
    pub value: Option<i64>,
}

/// Sets every key to the value of write id 0, pipelined, retrying on other
/// nodes until every key is acknowledged.
pub fn seed_keys(addresses: &[SocketAddr], key_space: &KeySpace, keys: u64, value_bytes: usize) -> Result<(), String> {
    let mut value = Vec::new();
    write_value(0, value_bytes, &mut value);
    let mut key = Vec::new();
    let (_, left) = round(addresses, keys, None, |batch, out| {
        for &k in batch {
            key.clear();
            key_space.write_key(k, &mut key);
            resp::encode_set(out, &key, &value);
        }
    });
    match left {
        0 => Ok(()),
        left => Err(format!("--check: could not set {left} keys to their initial value within {ROUND_LIMIT:?}")),
    }
}

/// Reads every key back; times are nanoseconds since `epoch`.
pub fn read_back(addresses: &[SocketAddr], key_space: &KeySpace, keys: u64, epoch: Instant) -> (Vec<ReadBack>, u64) {
    let mut key = Vec::new();
    round(addresses, keys, Some(epoch), |batch, out| {
        for &k in batch {
            key.clear();
            key_space.write_key(k, &mut key);
            resp::encode_get(out, &key);
        }
    })
}

/// Sends a request per key, in pipelined batches, moving to the next
/// address on any failure, until every key got a non-error reply or the
/// limit passed. With `epoch`, replies are returned as reads (times since
/// it). Returns them and how many keys are left.
fn round(
    addresses: &[SocketAddr],
    keys: u64,
    epoch: Option<Instant>,
    mut encode: impl FnMut(&[u64], &mut Vec<u8>),
) -> (Vec<ReadBack>, u64) {
    let deadline = Instant::now() + ROUND_LIMIT;
    let mut todo: Vec<u64> = (0..keys).collect();
    let mut reads = Vec::new();
    let mut attempt = 0usize;
    let mut out = Vec::new();
    while !todo.is_empty() && Instant::now() < deadline {
        let address = addresses[attempt % addresses.len()];
        attempt += 1;
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_nodelay(true);
        let mut failed: Vec<u64> = Vec::new();
        let mut broken = false;
        for batch in todo.chunks(BATCH) {
            if broken {
                failed.extend_from_slice(batch);
                continue;
            }
            out.clear();
            encode(batch, &mut out);
            let call = epoch.map(|e| e.elapsed().as_nanos() as u64);
            match exchange(&mut stream, &out, batch.len()) {
                Ok(replies) => {
                    let ret = epoch.map(|e| e.elapsed().as_nanos() as u64);
                    for (&key, reply) in batch.iter().zip(replies) {
                        match reply {
                            Owned::Error => failed.push(key),
                            Owned::Value(value) => {
                                if let (Some(call_ns), Some(ret_ns)) = (call, ret) {
                                    let value = value.map(|v| crate::history::parse_value(&v).unwrap_or(FOREIGN));
                                    reads.push(ReadBack { key, call_ns, ret_ns, value });
                                }
                            }
                        }
                    }
                }
                Err(_) => {
                    broken = true;
                    failed.extend_from_slice(batch);
                }
            }
        }
        if !failed.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        todo = failed;
    }
    (reads, todo.len() as u64)
}

/// A reply, owned: an error, or a value (`None`: nil; a simple string's
/// bytes for SET's OK).
enum Owned {
    Error,
    Value(Option<Vec<u8>>),
}

/// Writes `request` and reads `count` replies.
fn exchange(stream: &mut TcpStream, request: &[u8], count: usize) -> Result<Vec<Owned>, String> {
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut start, mut end) = (0, 0);
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        loop {
            match resp::parse_reply(&buf[start..end]) {
                Ok(Some((reply, used))) => {
                    replies.push(match reply {
                        Reply::Error(_) => Owned::Error,
                        Reply::Bulk(bytes) => Owned::Value(Some(bytes.to_vec())),
                        Reply::Simple(bytes) => Owned::Value(Some(bytes.to_vec())),
                        _ => Owned::Value(None),
                    });
                    start += used;
                    if replies.len() == count {
                        return Ok(replies);
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[end..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        end += n;
    }
    Ok(replies)
}

type Op = Operation<RegisterInput, RegisterOutput>;

/// A key, its verdict, its history (with who did what) and its lost writes.
type KeyResult = (u64, Verdict, Vec<(Op, String)>, u64);

/// One key's history for the checker, in order of invocation: the seeded
/// initial write (id 0) at time 0, then the run's operations (times + 1,
/// all after it), then the read-back.
fn key_history(entries: &[&Entry], read_back: Option<&ReadBack>) -> Vec<(Op, String)> {
    let mut ops = vec![(
        Operation {
            client: u64::MAX,
            call: 0,
            ret: Some(0),
            input: RegisterInput::Set(0),
            output: Some(RegisterOutput::Ok),
        },
        "seed: SET initial".to_string(),
    )];
    for e in entries {
        let (call, ret) = (e.call_ns + 1, e.ret_ns + 1);
        let op = match (e.op, e.outcome) {
            (OpKind::Get, Outcome::Read(value)) => Operation {
                client: e.conn as u64,
                call,
                ret: Some(ret),
                input: RegisterInput::Get,
                output: Some(RegisterOutput::Value(value)),
            },
            (OpKind::Get, _) => continue,
            (OpKind::Set, Outcome::Written) => Operation {
                client: e.conn as u64,
                call,
                ret: Some(ret),
                input: RegisterInput::Set(e.value),
                output: Some(RegisterOutput::Ok),
            },
            (OpKind::Set, _) => {
                Operation { client: e.conn as u64, call, ret: None, input: RegisterInput::Set(e.value), output: None }
            }
        };
        ops.push((op, String::new()));
    }
    if let Some(r) = read_back {
        ops.push((
            Operation {
                client: u64::MAX - 1,
                call: r.call_ns + 1,
                ret: Some(r.ret_ns + 1),
                input: RegisterInput::Get,
                output: Some(RegisterOutput::Value(r.value)),
            },
            "read-back".to_string(),
        ));
    }
    ops
}

/// How an operation reads in a report.
fn describe(op: &Op, origin: &str, window_start_ns: u64) -> String {
    let t = |ns: u64| (ns as f64 - 1.0 - window_start_ns as f64) / 1e9;
    let when = match op.ret {
        Some(ret) => format!("[{:.6} s, {:.6} s]", t(op.call), t(ret)),
        None => format!("[{:.6} s, no reply]", t(op.call)),
    };
    let who = if origin.is_empty() { format!("conn {}", op.client) } else { origin.to_string() };
    let what = match (&op.input, &op.output) {
        (RegisterInput::Set(id), Some(_)) => format!("SET {} -> OK", id_text(*id)),
        (RegisterInput::Set(id), None) => format!("SET {} -> unknown", id_text(*id)),
        (_, Some(RegisterOutput::Value(Some(id)))) => format!("GET -> {}", id_text(*id)),
        (_, Some(RegisterOutput::Value(None))) => "GET -> nil".to_string(),
        (input, output) => format!("{input:?} -> {output:?}"),
    };
    format!("{when} {who}: {what}")
}

/// The check of one run. `entries`: every executor's history; `over_cap`:
/// operations not recorded; `window_start_ns`: for the report's times.
pub fn check(
    entries: &[Entry],
    over_cap: u64,
    read_backs: &[ReadBack],
    keys_not_read_back: u64,
    key_space: &KeySpace,
    window_start_ns: u64,
) -> CheckReport {
    let started = Instant::now();
    let mut report = CheckReport {
        operations: entries.len() as u64,
        indeterminate_writes: entries
            .iter()
            .filter(|e| e.op == OpKind::Set && !matches!(e.outcome, Outcome::Written))
            .count() as u64,
        unanswered_reads: entries
            .iter()
            .filter(|e| e.op == OpKind::Get && !matches!(e.outcome, Outcome::Read(_)))
            .count() as u64,
        keys_not_read_back,
        ..CheckReport::default()
    };
    if over_cap > 0 {
        report.verdict = "not checked".into();
        report.note =
            Some(format!("{over_cap} operations over the history cap were not recorded; lower --rate or --duration-s"));
        return report;
    }
    let mut per_key: std::collections::BTreeMap<u64, Vec<&Entry>> = std::collections::BTreeMap::new();
    for e in entries {
        per_key.entry(e.key).or_default().push(e);
    }
    for list in per_key.values_mut() {
        list.sort_by_key(|e| e.call_ns);
    }
    let backs: std::collections::HashMap<u64, &ReadBack> = read_backs.iter().map(|r| (r.key, r)).collect();
    let mut keys: Vec<u64> = per_key.keys().copied().collect();
    keys.extend(backs.keys().filter(|k| !per_key.contains_key(k)));
    keys.sort_unstable();
    report.keys = keys.len() as u64;

    let empty = Vec::new();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(keys.len().max(1));
    let results: Vec<KeyResult> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<u64>> =
            (0..threads).map(|t| keys.iter().copied().skip(t).step_by(threads).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (per_key, backs, empty) = (&per_key, &backs, &empty);
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|key| {
                            let entries = per_key.get(&key).unwrap_or(empty);
                            let history = key_history(entries, backs.get(&key).copied());
                            let ops: Vec<Op> = history.iter().map(|(op, _)| op.clone()).collect();
                            let verdict = lincheck::check(&RegisterModel, &ops, STEP_BUDGET);
                            let lost = lost_writes(&ops);
                            (key, verdict, history, lost)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a check thread panicked")).collect()
    });
    let mut results = results;
    results.sort_by_key(|r| r.0);
    let mut key_text = Vec::new();
    for (key, verdict, history, lost) in results {
        report.lost_acknowledged_writes += lost;
        key_text.clear();
        key_space.write_key(key, &mut key_text);
        let name = String::from_utf8_lossy(&key_text).into_owned();
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown => report.keys_over_budget.push(name),
            Verdict::NotLinearizable { longest_prefix } => {
                report.keys_failing += 1;
                if report.violations.len() < VIOLATIONS_SHOWN_MAX {
                    report.violations.push(explain(name, &history, &longest_prefix, window_start_ns));
                }
            }
        }
    }
    report.verdict = if report.keys_failing > 0 {
        "not linearizable"
    } else if !report.keys_over_budget.is_empty() {
        "unknown"
    } else {
        "linearizable"
    }
    .into();
    report.check_ms = started.elapsed().as_millis() as u64;
    report
}

/// The failing key's story: the first completed operation no
/// linearization could place, after the last operations that could be.
fn explain(key: String, history: &[(Op, String)], prefix: &[usize], window_start_ns: u64) -> KeyViolation {
    let placed: std::collections::HashSet<usize> = prefix.iter().copied().collect();
    let stuck = (0..history.len())
        .filter(|i| !placed.contains(i) && history[*i].0.ret.is_some())
        .min_by_key(|&i| history[i].0.ret);
    let mut shown: Vec<usize> = prefix.iter().rev().take(SHOWN_OPS_MAX - 1).rev().copied().collect();
    let mut ops: Vec<String> = shown.iter().map(|&i| describe(&history[i].0, &history[i].1, window_start_ns)).collect();
    let summary = match stuck {
        Some(i) => {
            shown.push(i);
            ops.push(format!("{}   <- cannot be placed", describe(&history[i].0, &history[i].1, window_start_ns)));
            // A read: the write whose value it returned, wherever it is.
            if let Some(RegisterOutput::Value(Some(id))) = history[i].0.output {
                if let Some(w) = history.iter().position(|(op, _)| op.input == RegisterInput::Set(id)) {
                    if !shown.contains(&w) {
                        let write = describe(&history[w].0, &history[w].1, window_start_ns);
                        ops.push(format!("{write}   <- the write whose value it read"));
                    }
                }
            }
            format!(
                "after the {} operations listed last could be ordered, {} has no place in any order",
                prefix.len(),
                describe(&history[i].0, &history[i].1, window_start_ns)
            )
        }
        None => "no linearization exists".to_string(),
    };
    KeyViolation { key, summary, ops }
}

/// Acknowledged writes the read-back shows lost: the read-back (last op)
/// saw write x, and some acknowledged write w began after x was answered,
/// so w must have overwritten x. Counted once per key (the loss a user
/// sees is the key's newest acknowledged value).
fn lost_writes(ops: &[Op]) -> u64 {
    let Some(last) = ops.last().filter(|op| op.client == u64::MAX - 1) else { return 0 };
    let seen = match last.output {
        Some(RegisterOutput::Value(Some(id))) => Some(id),
        _ => None,
    };
    let x_ret = seen
        .and_then(|id| ops.iter().find(|op| op.input == RegisterInput::Set(id)).map(|op| op.ret.unwrap_or(u64::MAX)));
    let lost = ops.iter().any(|w| {
        matches!(w.input, RegisterInput::Set(_))
            && w.ret.is_some()
            && match x_ret {
                Some(x_ret) => w.call > x_ret,
                // Nil, or a value no write wrote: every acknowledged write is gone.
                None => true,
            }
    });
    u64::from(lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::write_id;

    fn keys() -> KeySpace {
        KeySpace::new(10, 16, 0).unwrap()
    }

    fn entry(conn: u32, key: u64, op: OpKind, value: i64, call_ns: u64, ret_ns: u64, outcome: Outcome) -> Entry {
        Entry { conn, key, op, value, call_ns, ret_ns, outcome }
    }

    fn set(conn: u32, seq: u64, call: u64, ret: u64) -> Entry {
        entry(conn, 1, OpKind::Set, write_id(conn as usize, seq), call, ret, Outcome::Written)
    }

    fn get(conn: u32, call: u64, ret: u64, saw: Option<i64>) -> Entry {
        entry(conn, 1, OpKind::Get, 0, call, ret, Outcome::Read(saw))
    }

    fn back(at: u64, saw: i64) -> ReadBack {
        ReadBack { key: 1, call_ns: at, ret_ns: at + 1, value: Some(saw) }
    }

    #[test]
    fn a_good_history_passes_with_its_indeterminate_writes() {
        let a = write_id(0, 1);
        let b = write_id(1, 1);
        let entries = [
            get(2, 0, 5, Some(0)),
            set(0, 1, 10, 20),
            get(2, 15, 25, Some(a)),
            // No reply: it may land later, and a read sees it.
            entry(1, 1, OpKind::Set, b, 30, 0, Outcome::Pending),
            get(2, 40, 50, Some(b)),
            // A read that failed says nothing.
            entry(2, 1, OpKind::Get, 0, 41, 42, Outcome::Failed),
        ];
        let report = check(&entries, 0, &[back(100, b)], 0, &keys(), 0);
        assert_eq!(report.verdict, "linearizable", "{report:?}");
        assert_eq!((report.indeterminate_writes, report.unanswered_reads, report.lost_acknowledged_writes), (1, 1, 0));
        assert_eq!((report.operations, report.keys), (6, 1));
    }

    #[test]
    fn a_stale_read_fails_and_names_the_operations() {
        let a = write_id(0, 1);
        // The write of a is answered before the read begins, yet the read
        // sees the initial value.
        let entries = [set(0, 1, 10, 20), get(2, 30, 40, Some(0))];
        let report = check(&entries, 0, &[back(100, a)], 0, &keys(), 0);
        assert_eq!(report.verdict, "not linearizable");
        assert_eq!(report.keys_failing, 1);
        let violation = &report.violations[0];
        assert_eq!(violation.key, "key:000000000001");
        assert!(violation.ops.last().unwrap().contains("GET -> initial"), "{violation:?}");
        assert!(violation.ops.iter().any(|op| op.contains("SET c0#1 -> OK")), "{violation:?}");
        assert!(report.headline().starts_with("not linearizable"));
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_read_back_is_lost() {
        let a = write_id(0, 1);
        let b = write_id(0, 2);
        let entries = [set(0, 1, 10, 20), set(0, 2, 30, 40)];
        let report = check(&entries, 0, &[back(100, a)], 0, &keys(), 0);
        assert_eq!((report.verdict.as_str(), report.lost_acknowledged_writes), ("not linearizable", 1));
        // Concurrent writes may land in either order: nothing lost.
        let entries = [set(0, 1, 10, 40), set(1, 1, 20, 30)];
        let report = check(&entries, 0, &[back(100, a)], 0, &keys(), 0);
        assert_eq!((report.verdict.as_str(), report.lost_acknowledged_writes), ("linearizable", 0));
        let _ = b;
    }

    #[test]
    fn a_value_no_write_wrote_fails_and_an_overfull_history_is_not_passed() {
        let entries = [get(2, 30, 40, Some(FOREIGN))];
        assert_eq!(check(&entries, 0, &[], 0, &keys(), 0).verdict, "not linearizable");
        let report = check(&entries, 3, &[], 0, &keys(), 0);
        assert_eq!(report.verdict, "not checked");
        assert!(report.note.unwrap().contains("3 operations"));
    }
}
