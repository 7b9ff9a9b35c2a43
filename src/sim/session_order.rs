//! The session-order checker: a connection's commands take effect in the
//! order it sent them (Redis's pipelining contract), which linearizability
//! does not check. Pipelined commands overlap in time, so a history where
//! a read sees a write its client sent *after* it is linearizable, and a
//! Redis client that pipelines `GET k; SET k v` is still wronged by it.
//!
//! The simulator writes unique values, so who wrote what a read saw is a
//! lookup. Per session (one connection), a read that returned a value:
//! - must not see a write of its session sent after it;
//! - must not see a write of its session older than the session's last
//!   SET or DEL of that key sent before it and answered as done (that one
//!   would have overwritten it first). A write answered "outcome unknown"
//!   is left out (looser than the node's rule, `node::request::
//!   SessionWaiting`, which exempts only writes answered before the read
//!   was sent: it only misses cases, it never raises a false alarm).
//!
//! A value an INCRBY on the key may have produced is not anyone's for
//! sure, and is skipped; so are reads that return nil or another
//! connection's value. The headline case (`SET k 1; GET k; INCR k; GET
//! k`) is therefore the node's and the server's tests' to check.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::Violation;
use super::client::{History, Recorded};
use super::linearizability::{RegisterInput, RegisterOutput};
use crate::kv::SessionId;

/// Operations a session-order violation names: the read and the write.
pub fn check(history: &History) -> Vec<Violation> {
    let ops = &history.ops;
    let writers = writers(ops);
    let increments = increments(ops);
    let by_session = by_session(ops);
    let mut violations = Vec::new();
    for (&session, indexes) in &by_session {
        for (position, &read) in indexes.iter().enumerate() {
            let r = &ops[read];
            let Some(RegisterOutput::Value(Some(value))) = r.op.output else { continue };
            if r.op.input != RegisterInput::Get || increments.may_have_made(r.key, value) {
                continue;
            }
            let Some(&writer) = writers.get(&(r.key, value)) else { continue };
            let w = &ops[writer];
            if w.session == session && w.seq > r.seq {
                violations.push(violation("a write sent after it", read, writer, r, w));
                continue;
            }
            // The session's last write to this key before the read, done.
            let last = indexes[..position].iter().rev().copied().find(|&i| {
                let o = &ops[i];
                o.key == r.key && overwrites(&o.op.input, o.op.output.as_ref())
            });
            if let Some(last) = last {
                if w.session == session && w.seq < ops[last].seq {
                    let detail = format!(
                        "an older write of its session, though {} (seq {}, op {last}) came between",
                        describe(&ops[last]),
                        ops[last].seq
                    );
                    violations.push(violation(&detail, read, writer, r, w));
                }
            }
        }
    }
    violations
}

fn violation(what: &str, read: usize, writer: usize, r: &Recorded, w: &Recorded) -> Violation {
    let detail = format!(
        "session {:#x}: GET k{} (seq {}, op {read}) at node {} saw {}, {what}: {} (seq {}, op {writer})",
        r.session,
        r.key,
        r.seq,
        r.node,
        match r.op.output {
            Some(RegisterOutput::Value(Some(v))) => v.to_string(),
            _ => "?".into(),
        },
        describe(w),
        w.seq
    );
    Violation::SessionOrder { detail, ops: vec![read, writer] }
}

fn describe(op: &Recorded) -> String {
    format!("{:?} -> {:?}", op.op.input, op.op.output)
}

/// Did this op, answered as done, leave the key with a value of its own
/// (or none)? Unconditional writes and deletes only.
fn overwrites(input: &RegisterInput, output: Option<&RegisterOutput>) -> bool {
    matches!(
        (input, output),
        (RegisterInput::Set(_) | RegisterInput::SetExpiring { .. }, Some(RegisterOutput::Ok))
            | (RegisterInput::Del, Some(RegisterOutput::Deleted(_)))
    )
}

/// Who wrote each (key, value): values are unique per client, so at most
/// one op (a compare-and-set known to have failed wrote nothing).
fn writers(ops: &[Recorded]) -> BTreeMap<(u32, i64), usize> {
    let mut writers = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        let value = match (op.op.input, op.op.output) {
            (RegisterInput::Set(v) | RegisterInput::SetExpiring { value: v, .. }, _) => v,
            (RegisterInput::CompareAndSet { .. }, Some(RegisterOutput::Swapped(false))) => continue,
            (RegisterInput::CompareAndSet { new, .. }, _) => new,
            _ => continue,
        };
        if !op.not_applied {
            writers.insert((op.key, value), index);
        }
    }
    writers
}

/// What INCRBY may have left in each key.
#[derive(Default)]
struct Increments {
    /// Values an INCRBY answered with.
    made: BTreeSet<(u32, i64)>,
    /// Keys with an INCRBY whose result nobody saw: any value may be one.
    unknown: BTreeSet<u32>,
}

impl Increments {
    fn may_have_made(&self, key: u32, value: i64) -> bool {
        self.unknown.contains(&key) || self.made.contains(&(key, value))
    }
}

fn increments(ops: &[Recorded]) -> Increments {
    let mut increments = Increments::default();
    for op in ops.iter().filter(|op| matches!(op.op.input, RegisterInput::IncrBy(_)) && !op.not_applied) {
        match op.op.output {
            Some(RegisterOutput::Int(v)) => {
                increments.made.insert((op.key, v));
            }
            Some(_) => {}
            None => {
                increments.unknown.insert(op.key);
            }
        }
    }
    increments
}

/// Each session's ops, in the order sent (by seq).
fn by_session(ops: &[Recorded]) -> BTreeMap<SessionId, Vec<usize>> {
    let mut sessions: BTreeMap<SessionId, Vec<usize>> = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        sessions.entry(op.session).or_default().push(index);
    }
    for indexes in sessions.values_mut() {
        indexes.sort_by_key(|&i| ops[i].seq);
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::linearizability::Operation;

    fn op(session: SessionId, seq: u64, input: RegisterInput, output: Option<RegisterOutput>) -> Recorded {
        let op = Operation { client: 0, call: seq, ret: output.map(|_| 100), input, output };
        Recorded { key: 1, op, node: 1, session, seq, not_applied: false, at: None }
    }

    fn history(ops: Vec<Recorded>) -> History {
        History { ops }
    }

    const OK: Option<RegisterOutput> = Some(RegisterOutput::Ok);

    fn read(v: i64) -> Option<RegisterOutput> {
        Some(RegisterOutput::Value(Some(v)))
    }

    #[test]
    fn a_read_that_sees_a_later_write_of_its_session_is_caught() {
        // SET 1; GET; SET 2, and the GET saw 2: the pipeline-order bug.
        let h = history(vec![
            op(7, 1, RegisterInput::Set(1), OK),
            op(7, 2, RegisterInput::Get, read(2)),
            op(7, 3, RegisterInput::Set(2), OK),
        ]);
        let found = check(&h);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].to_string().contains("a write sent after it"), "{}", found[0]);
        assert_eq!(found[0].ops(), &[1, 2]);
        // Another session's read may see it: no order between connections.
        let h = history(vec![op(7, 1, RegisterInput::Set(1), OK), op(8, 1, RegisterInput::Get, read(1))]);
        assert!(check(&h).is_empty());
    }

    #[test]
    fn a_read_that_misses_an_earlier_write_of_its_session_is_caught() {
        let h = history(vec![
            op(7, 1, RegisterInput::Set(1), OK),
            op(7, 2, RegisterInput::Set(2), OK),
            op(7, 3, RegisterInput::Get, read(1)),
        ]);
        let found = check(&h);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].to_string().contains("an older write of its session"), "{}", found[0]);
        // Unless the write between was answered "outcome unknown": owed no order.
        let h = history(vec![
            op(7, 1, RegisterInput::Set(1), OK),
            op(7, 2, RegisterInput::Set(2), None),
            op(7, 3, RegisterInput::Get, read(1)),
        ]);
        assert!(check(&h).is_empty());
    }

    #[test]
    fn a_value_an_increment_may_have_made_is_nobodys() {
        let h = history(vec![
            op(7, 1, RegisterInput::IncrBy(2), Some(RegisterOutput::Int(5))),
            op(7, 2, RegisterInput::Get, read(5)),
            op(7, 3, RegisterInput::Set(5), OK),
        ]);
        assert!(check(&h).is_empty());
        let h = history(vec![
            op(7, 1, RegisterInput::IncrBy(2), None),
            op(7, 2, RegisterInput::Get, read(5)),
            op(7, 3, RegisterInput::Set(5), OK),
        ]);
        assert!(check(&h).is_empty());
    }
}
