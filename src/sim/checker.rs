//! The simulator's checkers. Safety is checked while the run goes on
//! (agreement per slot, lease/read-index read freshness); linearizability of
//! the whole client history, each connection's order (`session_order.rs`)
//! and liveness are checked at the end.

use std::collections::BTreeMap;
use std::fmt;

use super::client::History;
use super::linearizability::{self, Operation, Timed, TimedRegisterModel, Verdict};
use crate::paxos::{NodeId, Slot, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two replicas learned different values for one slot.
    Agreement { slot: Slot, node: NodeId, t_us: u64 },
    /// A local read (lease or read-index) missed a slot that was already
    /// committed when the read was issued.
    StaleRead { node: NodeId, read_index: Slot, committed: Slot, t_us: u64 },
    /// A replica became leader while another still held a lease.
    LeaseOverlap { holder: NodeId, new_leader: NodeId, t_us: u64 },
    /// The per-key client history has no linearization. `ops` (history
    /// indexes) are the first operations the search could not place.
    NotLinearizable { key: u32, detail: String, ops: Vec<usize> },
    /// A reply that no correct store could give for that operation.
    BadReply { detail: String },
    /// After the faults healed, work did not finish in time.
    Liveness { detail: String },
    /// Replicas that applied the same log hold different states.
    Divergence { detail: String },
    /// A replica could not recover from its disk after a crash.
    Recovery { detail: String },
    /// A leader's lease outlived a grant it rested on (`watch.rs`).
    LeaseWindow { detail: String },
    /// An acceptor promised during its lease grant to another leader.
    GrantBroken { detail: String },
    /// A vote or a choice was not on a majority of disks when it counted.
    NotDurable { detail: String },
    /// A replica that lost its disk voted before relearning its state.
    LostStateVoted { detail: String },
    /// A deposed leader answered a read that began after its successor took office.
    DeposedRead { detail: String },
    /// A read saw its connection's commands out of the order they were
    /// sent (`session_order.rs`). `ops`: the read and the write.
    SessionOrder { detail: String, ops: Vec<usize> },
    /// In a fault-free stretch, a request took longer than a few round
    /// trips and fsyncs allow: something waited that should not have.
    /// `ops`: that operation's history index.
    Latency { detail: String, ops: Vec<usize> },
    /// In a fault-free stretch, a read sent to the leader was refused as
    /// overtaken by a later command of its connection: nothing was lost,
    /// retried or reordered that could have let one overtake it. `ops`:
    /// the read.
    QuietRefusal { detail: String, ops: Vec<usize> },
    /// A node's timer did something before the deadline the node had
    /// reported (`Node::next_tick_us`): a shell that sleeps until that
    /// deadline, as the server's does, would have done it late.
    EarlyTick { node: NodeId, local_us: u64, due_us: Option<u64>, t_us: u64 },
    /// An invariant assertion fired inside the core or the simulator.
    Panic { message: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement { slot, node, t_us } => {
                write!(f, "agreement: node {node} learned a different value for slot {slot} at {t_us}us")
            }
            Violation::StaleRead { node, read_index, committed, t_us } => write!(
                f,
                "stale read: node {node} served a read at index {read_index} at {t_us}us, \
                 but slots up to {committed} were committed before it was issued"
            ),
            Violation::LeaseOverlap { holder, new_leader, t_us } => write!(
                f,
                "lease overlap: node {new_leader} became leader at {t_us}us while node {holder} still held a lease"
            ),
            Violation::NotLinearizable { key, detail, .. } => write!(f, "linearizability: key k{key}: {detail}"),
            Violation::BadReply { detail } => write!(f, "bad reply: {detail}"),
            Violation::Liveness { detail } => write!(f, "liveness: {detail}"),
            Violation::Divergence { detail } => write!(f, "divergence: {detail}"),
            Violation::Recovery { detail } => write!(f, "recovery: {detail}"),
            Violation::Latency { detail, .. } => write!(f, "latency: {detail}"),
            Violation::QuietRefusal { detail, .. } => write!(f, "quiet refusal: {detail}"),
            Violation::LeaseWindow { detail } => write!(f, "lease window: {detail}"),
            Violation::GrantBroken { detail } => write!(f, "grant broken: {detail}"),
            Violation::NotDurable { detail } => write!(f, "durability: {detail}"),
            Violation::LostStateVoted { detail } => write!(f, "lost state voted: {detail}"),
            Violation::DeposedRead { detail } => write!(f, "deposed read: {detail}"),
            Violation::SessionOrder { detail, .. } => write!(f, "session order: {detail}"),
            Violation::EarlyTick { node, local_us, due_us, t_us } => {
                let due = due_us.map_or("none".to_string(), |d| format!("{d}us"));
                write!(
                    f,
                    "tick deadline: node {node}'s timer acted at local {local_us}us ({t_us}us), before the deadline \
                     it had reported ({due})"
                )
            }
            Violation::Panic { message } => write!(f, "invariant panic: {message}"),
        }
    }
}

impl Violation {
    /// The checker's name, as the trace's `violation` events give it.
    pub fn checker(&self) -> &'static str {
        match self {
            Violation::Agreement { .. } => "agreement",
            Violation::StaleRead { .. } => "read_freshness",
            Violation::LeaseOverlap { .. } => "lease_overlap",
            Violation::NotLinearizable { .. } => "linearizability",
            Violation::BadReply { .. } => "bad_reply",
            Violation::Liveness { .. } => "liveness",
            Violation::Divergence { .. } => "divergence",
            Violation::Recovery { .. } => "recovery",
            Violation::LeaseWindow { .. } => "lease_window",
            Violation::GrantBroken { .. } => "grant_broken",
            Violation::NotDurable { .. } => "durability",
            Violation::LostStateVoted { .. } => "lost_state_voted",
            Violation::DeposedRead { .. } => "deposed_read",
            Violation::SessionOrder { .. } => "session_order",
            Violation::Latency { .. } => "latency",
            Violation::QuietRefusal { .. } => "quiet_refusal",
            Violation::EarlyTick { .. } => "tick_deadline",
            Violation::Panic { .. } => "invariant",
        }
    }

    /// The client operations (history indexes) it names.
    pub fn ops(&self) -> &[usize] {
        match self {
            Violation::NotLinearizable { ops, .. }
            | Violation::Latency { ops, .. }
            | Violation::QuietRefusal { ops, .. }
            | Violation::SessionOrder { ops, .. } => ops,
            _ => &[],
        }
    }

    /// The slot it concerns, if one.
    pub fn slot(&self) -> Option<Slot> {
        match self {
            Violation::Agreement { slot, .. } => Some(*slot),
            _ => None,
        }
    }
}

/// Operations a linearizability violation names: the first ones (by call
/// time) outside the longest linearizable prefix.
const VIOLATION_OPS_MAX: usize = 4;

#[derive(Default)]
pub struct Checker {
    /// The first value any replica learned per slot.
    chosen: BTreeMap<Slot, Value>,
    /// The highest commit index any replica has reached (exclusive end).
    pub committed_end: Slot,
    /// When `committed_end` rose: (real time, new end), in time order.
    commit_history: Vec<(u64, Slot)>,
    pub violations: Vec<Violation>,
    /// Keys whose linearizability search ran out of budget.
    pub unknown_keys: Vec<u32>,
}

/// Search steps allowed per key before the verdict is "unknown".
pub const LINEARIZABILITY_STEP_BUDGET: u64 = 2_000_000;

impl Checker {
    /// A replica applied `value` at `slot`.
    pub fn on_commit(&mut self, node: NodeId, slot: Slot, value: &Value, t_us: u64) {
        match self.chosen.get(&slot) {
            Some(known) if known != value => self.violations.push(Violation::Agreement { slot, node, t_us }),
            Some(_) => {}
            None => {
                self.chosen.insert(slot, value.clone());
            }
        }
        self.note_committed(slot + 1, t_us);
    }

    /// Some replica has committed every slot below `end` by `t_us`.
    pub fn note_committed(&mut self, end: Slot, t_us: u64) {
        if end > self.committed_end {
            self.committed_end = end;
            self.commit_history.push((t_us, end));
        }
    }

    /// `committed_end` as it stood at real time `t_us`.
    pub fn committed_end_at(&self, t_us: u64) -> Slot {
        let after = self.commit_history.partition_point(|&(t, _)| t <= t_us);
        after.checked_sub(1).map_or(0, |i| self.commit_history[i].1)
    }

    /// A replica answered a read at `read_index`; `committed_at_issue` was
    /// `committed_end` when the read was issued.
    pub fn on_read(&mut self, node: NodeId, read_index: Slot, committed_at_issue: Slot, t_us: u64) {
        if read_index < committed_at_issue {
            self.violations.push(Violation::StaleRead { node, read_index, committed: committed_at_issue, t_us });
        }
    }

    pub fn committed_slots(&self) -> Slot {
        self.committed_end
    }

    pub fn committed_commands(&self) -> usize {
        self.chosen.values().map(|v| v.commands().len()).sum()
    }

    /// Check every key's history (Wing & Gong / Lowe), and every
    /// session's order.
    pub fn check_history(&mut self, history: &History) {
        self.violations.extend(super::session_order::check(history));
        // Per key: the operations and their history indexes.
        let mut per_key: BTreeMap<u32, (Vec<_>, Vec<usize>)> = BTreeMap::new();
        for (index, recorded) in history.ops.iter().enumerate() {
            // A read that never returned constrains nothing; an operation
            // a node said was not applied took no effect.
            let op = &recorded.op;
            if recorded.not_applied || (op.ret.is_none() && op.input == linearizability::RegisterInput::Get) {
                continue;
            }
            let timed = Operation {
                client: op.client,
                call: op.call,
                ret: op.ret,
                input: Timed { input: op.input, at: recorded.at },
                output: op.output,
            };
            let (ops, indexes) = per_key.entry(recorded.key).or_default();
            ops.push(timed);
            indexes.push(index);
        }
        for (key, (ops, indexes)) in per_key {
            match linearizability::check(&TimedRegisterModel, &ops, LINEARIZABILITY_STEP_BUDGET) {
                Verdict::Linearizable => {}
                Verdict::Unknown => self.unknown_keys.push(key),
                Verdict::NotLinearizable { longest_prefix } => {
                    let tail: Vec<String> = longest_prefix
                        .iter()
                        .rev()
                        .take(4)
                        .rev()
                        .map(|&i| format!("{:?}->{:?}", ops[i].input, ops[i].output))
                        .collect();
                    let mut unplaced: Vec<usize> = (0..ops.len()).filter(|i| !longest_prefix.contains(i)).collect();
                    unplaced.sort_by_key(|&i| ops[i].call);
                    let first = unplaced.first().map_or(String::new(), |&i| {
                        let op = &ops[i];
                        format!(
                            "; first not placed: {:?}->{:?}, called at {} us, returned at {:?} us",
                            op.input, op.output, op.call, op.ret
                        )
                    });
                    let detail = format!(
                        "{} ops, longest linearizable prefix {} ops, ending [{}]{first}",
                        ops.len(),
                        longest_prefix.len(),
                        tail.join(", ")
                    );
                    let ops = unplaced.iter().take(VIOLATION_OPS_MAX).map(|&i| indexes[i]).collect();
                    self.violations.push(Violation::NotLinearizable { key, detail, ops });
                }
            }
        }
    }
}
