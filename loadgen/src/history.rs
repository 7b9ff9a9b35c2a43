//! `--check linearizable`, recording: every operation's invocation and
//! completion, so that the run's history can be checked afterwards
//! (`check.rs`).
//!
//! A checkable workload writes a value no other write writes: SET's value
//! starts with the write's id in decimal (the connection and its write
//! count), padded to `--value-bytes` with dots, so a GET's reply names the
//! write it saw. An operation is invoked when its request is handed to the
//! socket and completes when its reply is parsed, whatever the timeout
//! figures say (a reply after the timeout still tells what happened).
//! One `History` per executor; memory is one 48-byte entry per operation,
//! capped (`Recording::Full` beyond the cap: the run is then not checked).

use crate::resp::Reply;
use crate::workload::OpKind;

/// `InFlight::history` of a request that is not recorded.
pub const UNRECORDED: u32 = u32::MAX;

/// What became of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No reply (yet): a write may have taken effect, or not.
    Pending,
    /// GET answered: the id of the write it saw (`None`: no value;
    /// `Some(FOREIGN)`: a value no write of this run wrote).
    Read(Option<i64>),
    /// SET answered OK.
    Written,
    /// An error reply: a read tells nothing; a write may have taken effect
    /// (a forward that timed out inside the cluster), so it stays unknown.
    Failed,
}

/// A GET saw a value that does not start with a write id.
pub const FOREIGN: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub conn: u32,
    pub key: u64,
    pub op: OpKind,
    /// SET: the id it writes.
    pub value: i64,
    /// Nanoseconds since the run's epoch.
    pub call_ns: u64,
    pub ret_ns: u64,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub struct History {
    pub entries: Vec<Entry>,
    cap: usize,
    /// Operations left unrecorded because the cap was reached.
    pub over_cap: u64,
}

impl History {
    pub fn new(cap: usize) -> History {
        History { entries: Vec::new(), cap, over_cap: 0 }
    }

    /// Records an invocation; its index for [`History::complete`], or
    /// [`UNRECORDED`] past the cap.
    pub fn invoke(&mut self, conn: usize, key: u64, op: OpKind, value: i64, now_ns: u64) -> u32 {
        if self.entries.len() >= self.cap {
            self.over_cap += 1;
            return UNRECORDED;
        }
        self.entries.push(Entry {
            conn: conn as u32,
            key,
            op,
            value,
            call_ns: now_ns,
            ret_ns: 0,
            outcome: Outcome::Pending,
        });
        (self.entries.len() - 1) as u32
    }

    /// Records the reply to operation `index`.
    pub fn complete(&mut self, index: u32, now_ns: u64, reply: &Reply) {
        let Some(entry) = self.entries.get_mut(index as usize) else { return };
        entry.ret_ns = now_ns;
        entry.outcome = match (entry.op, reply) {
            (_, Reply::Error(_)) => Outcome::Failed,
            (OpKind::Get, Reply::Bulk(bytes)) => Outcome::Read(Some(parse_value(bytes).unwrap_or(FOREIGN))),
            (OpKind::Get, Reply::Null) => Outcome::Read(None),
            (OpKind::Set, Reply::Simple(b"OK")) => Outcome::Written,
            // Any other reply answers nothing we asked: a read tells
            // nothing, a write is not known to have happened.
            _ => Outcome::Failed,
        };
    }
}

/// The id of write number `seq` of connection `conn`: unique in a run,
/// positive, never 0 (the value `check.rs` seeds every key with).
pub fn write_id(conn: usize, seq: u64) -> i64 {
    (((conn as u64 + 1) << 32) | (seq & 0xffff_ffff)) as i64
}

/// How a write id reads in a report: `c3#17` (connection 3's write 17),
/// `initial` for the seeded value.
pub fn id_text(id: i64) -> String {
    match id {
        0 => "initial".into(),
        FOREIGN => "a value no write of this run wrote".into(),
        id => format!("c{}#{}", (id as u64 >> 32) - 1, id as u64 & 0xffff_ffff),
    }
}

/// Appends the value that carries `id`: its decimal digits, then dots up
/// to `value_bytes` (longer than `value_bytes` when the id needs it). Ids
/// are never negative (see [`write_id`]); no allocation per write.
pub fn write_value(id: i64, value_bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    crate::workload::push_decimal(out, id as u64);
    while out.len() - start < value_bytes {
        out.push(b'.');
    }
}

/// The id at the start of a value written by [`write_value`].
pub fn parse_value(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &bytes[digits..];
    if digits == 0 || digits > 18 || !rest.iter().all(|&b| b == b'.') {
        return None;
    }
    std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_write_id_and_anything_else_is_foreign() {
        let id = write_id(3, 17);
        let mut value = Vec::new();
        write_value(id, 100, &mut value);
        assert_eq!(value.len(), 100);
        assert_eq!(parse_value(&value), Some(id));
        assert_eq!(id_text(id), "c3#17");
        assert_eq!(id_text(0), "initial");
        value.clear();
        write_value(id, 4, &mut value);
        assert_eq!(parse_value(&value), Some(id), "a short --value-bytes still carries the id");
        for foreign in [&b""[..], b"abc", b"12x", b"...", b"99999999999999999999"] {
            assert_eq!(parse_value(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn replies_complete_operations_and_the_cap_holds() {
        let mut history = History::new(3);
        let get = history.invoke(0, 5, OpKind::Get, 0, 10);
        let set = history.invoke(0, 5, OpKind::Set, write_id(0, 1), 11);
        let failed = history.invoke(1, 5, OpKind::Set, write_id(1, 1), 12);
        assert_eq!(history.invoke(1, 5, OpKind::Get, 0, 13), UNRECORDED);
        assert_eq!(history.over_cap, 1);
        let mut value = Vec::new();
        write_value(write_id(0, 1), 8, &mut value);
        history.complete(get, 20, &Reply::Bulk(&value));
        history.complete(set, 21, &Reply::Simple(b"OK"));
        history.complete(failed, 22, &Reply::Error(b"ERR busy"));
        let outcomes: Vec<Outcome> = history.entries.iter().map(|e| e.outcome).collect();
        assert_eq!(outcomes, [Outcome::Read(Some(write_id(0, 1))), Outcome::Written, Outcome::Failed]);
        assert_eq!((history.entries[0].call_ns, history.entries[0].ret_ns), (10, 20));
    }
}
