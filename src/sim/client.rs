//! Simulated clients, modelled on real ones: each holds one connection to
//! one node at a time (a follower as often as the leader: the node
//! forwards), pipelines up to a few operations on it, and gets every
//! answer from that node. The connection is a session at its node
//! (`node::ClientSession`): a retry *inside* the cluster (a forward after a
//! leader change) is applied once; a client that gives up on a connection
//! records its unanswered operations as indeterminate and reconnects
//! elsewhere with a new session, as a Redis client does.
//!
//! Operations go into the history the linearizability checker reads:
//! an answer completes one, an error that says the outcome is unknown
//! (or no answer at all) leaves it open (it may take effect at any later
//! time), and an error that says it was not applied removes it.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::linearizability::{Operation, RegisterInput, RegisterOutput};
use crate::kv::{Command, Expiry, Op, Reply, SessionId, SetCondition, SetTtl};
use crate::node::ClientSession;
use crate::paxos::NodeId;
use crate::rng::Rng;

/// How the simulator tells a node's client apart: which client, which of
/// its connections, which command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimWaiter {
    pub client: usize,
    pub conn: u64,
    pub seq: u64,
}

/// One operation in flight on the client's connection.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub key: u32,
    pub input: RegisterInput,
    /// Index of this op in the history.
    pub history_index: usize,
}

#[derive(Clone, Debug)]
pub struct SimClient {
    pub index: usize,
    /// The node this client is connected to.
    pub target: NodeId,
    /// Bumped per connection; answers on an older one are ignored.
    pub conn: u64,
    pub session: ClientSession,
    /// Operations sent on this connection and not answered, by seq.
    pub in_flight: BTreeMap<u64, InFlight>,
    /// Operations this client may have in flight at once.
    pub pipeline: usize,
    /// When the oldest answer this connection still waits for was due to start.
    pub waiting_since_us: Option<u64>,
    /// Starts new operations (cleared when the run winds down).
    pub active: bool,
    /// Operations completed on this connection (for session churn).
    pub ops_on_conn: u64,
    /// A refused connection: no new operation before this time (the
    /// client's redial delay).
    pub redial_at_us: u64,
    /// When the latest command on this connection reaches its node: the
    /// next one arrives no earlier. A connection is a TCP stream, in
    /// order; a command overtaking an earlier one of its session never
    /// happens on a real connection (forwards retried between nodes do
    /// reorder, and so may two connections).
    pub last_arrival_us: u64,
    /// Last value this client saw per key, for compare-and-set guesses.
    last_seen: Vec<Option<i64>>,
    next_unique: i64,
}

impl SimClient {
    pub fn new(index: usize, target: NodeId, keys: u32, pipeline: usize) -> SimClient {
        SimClient {
            index,
            target,
            conn: 0,
            session: ClientSession::new(target),
            in_flight: BTreeMap::new(),
            pipeline: pipeline.max(1),
            waiting_since_us: None,
            active: true,
            ops_on_conn: 0,
            redial_at_us: 0,
            last_arrival_us: 0,
            last_seen: vec![None; keys as usize],
            next_unique: 0,
        }
    }

    /// Drop the connection and open one to `target` (a new session).
    pub fn reconnect(&mut self, target: NodeId) {
        self.target = target;
        self.conn += 1;
        self.session = ClientSession::new(target);
        self.in_flight.clear();
        self.waiting_since_us = None;
        self.ops_on_conn = 0;
        self.last_arrival_us = 0;
    }

    /// Draw the next operation: mostly reads and writes, some increments,
    /// compare-and-sets and deletes. Written values are unique per client,
    /// which makes stale reads easy to spot.
    /// Some writes expire: at an absolute time (the true time `now_ms`
    /// give or take a few hundred ms), so the model needs no guess of
    /// when the write ran to know when the key goes.
    /// One operation in ten is on a pair (see [`PAIR_BASE`]).
    pub fn next_input(&mut self, rng: &mut Rng, keys: u32, now_ms: u64) -> (u32, RegisterInput) {
        self.next_unique += 1;
        let unique = (self.index as i64 + 1) * 1_000_000_000 + self.next_unique;
        if rng.below(10) == 0 {
            let pair = PAIR_BASE + rng.below(u64::from(PAIRS)) as u32;
            let input = match rng.below(10) {
                0..=3 => RegisterInput::Get,
                4..=8 => RegisterInput::Set(unique),
                _ => RegisterInput::Del,
            };
            return (pair, input);
        }
        let key = rng.below(u64::from(keys)) as u32;
        let input = match rng.below(100) {
            0..=39 => RegisterInput::Get,
            40..=56 => RegisterInput::Set(unique),
            57..=64 => RegisterInput::SetExpiring { value: unique, expires_at: now_ms + rng.below(400) - 100 },
            65..=79 => RegisterInput::IncrBy(rng.range_inclusive(1, 5) as i64),
            80..=89 => {
                let expected = self.last_seen[key as usize].unwrap_or(0);
                RegisterInput::CompareAndSet { expected, new: unique }
            }
            _ => RegisterInput::Del,
        };
        (key, input)
    }

    pub fn observe(&mut self, key: u32, output: &RegisterOutput) {
        if key >= PAIR_BASE {
            return;
        }
        let seen = match output {
            RegisterOutput::Value(v) => *v,
            RegisterOutput::Int(v) => Some(*v),
            _ => return,
        };
        self.last_seen[key as usize] = seen;
    }
}

/// Registers from here on are pairs: register `PAIR_BASE + p` is the two
/// store keys `p{p}a` and `p{p}b`, only ever written together (MSET, or
/// MULTI/EXEC of two SETs), read together (MGET, or MULTI/EXEC of two
/// GETs) and deleted together (DEL of both). Such a pair behaves as one
/// register exactly when those commands are atomic: a read that sees the
/// two keys differ, or a DEL that finds one of them, is a broken
/// transaction that a per-key check cannot see; the pair's history is
/// then checked for linearizability like any key's.
pub const PAIR_BASE: u32 = 1 << 20;
/// Pairs per run.
pub const PAIRS: u32 = 2;

pub fn key_name(key: u32) -> Bytes {
    Bytes::from(format!("k{key}"))
}

fn pair_keys(register: u32) -> (Bytes, Bytes) {
    let pair = register - PAIR_BASE;
    (Bytes::from(format!("p{pair}a")), Bytes::from(format!("p{pair}b")))
}

/// The kv operation for a register operation on `key`; `variant` picks
/// among equivalent commands (MSET or MULTI/EXEC) for a pair.
pub fn kv_op(key: u32, input: RegisterInput, variant: u64) -> Op {
    let text = |v: i64| Bytes::from(v.to_string());
    if key >= PAIR_BASE {
        let (a, b) = pair_keys(key);
        let exec = |ops: Vec<Op>| Op::Exec { ops, watched: Vec::new(), removals: 0 };
        let set = |key: Bytes, v: i64| Op::Set {
            key,
            value: text(v),
            condition: SetCondition::Always,
            ttl: SetTtl::Clear,
            get: false,
        };
        return match (input, variant.is_multiple_of(2)) {
            (RegisterInput::Set(v), true) => Op::MSet { pairs: vec![(a, text(v)), (b, text(v))] },
            (RegisterInput::Set(v), false) => exec(vec![set(a, v), set(b, v)]),
            (RegisterInput::Del, _) => Op::Del { keys: vec![a, b] },
            (_, true) => Op::MGet { keys: vec![a, b] },
            (_, false) => exec(vec![Op::Get { key: a }, Op::Get { key: b }]),
        };
    }
    let key = key_name(key);
    match input {
        RegisterInput::Get => Op::Get { key },
        RegisterInput::Set(v) => {
            Op::Set { key, value: text(v), condition: SetCondition::Always, ttl: SetTtl::Clear, get: false }
        }
        RegisterInput::SetExpiring { value, expires_at } => Op::Set {
            key,
            value: text(value),
            condition: SetCondition::Always,
            ttl: SetTtl::Expire(Expiry::At(expires_at as i64)),
            get: false,
        },
        RegisterInput::Del => Op::Del { keys: vec![key] },
        RegisterInput::IncrBy(d) => Op::IncrBy { key, delta: d },
        RegisterInput::CompareAndSet { expected, new } => Op::Set {
            key,
            value: text(new),
            condition: SetCondition::IfEqual(text(expected)),
            ttl: SetTtl::Clear,
            get: false,
        },
    }
}

/// What an answer means for the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect with this output.
    Done(RegisterOutput),
    /// It may or may not have taken effect, at any time after it was sent.
    Unknown,
    /// It did not take effect.
    NotApplied,
    /// No correct node gives this answer to this operation.
    Bad,
}

/// Interpret a node's answer to `input` on register `key`.
pub fn outcome(key: u32, input: RegisterInput, reply: &Reply) -> Outcome {
    if let Reply::Error(message) = reply {
        if message.contains("outcome is unknown") {
            return Outcome::Unknown;
        }
        let not_applied = message.starts_with("BUSY") || message.contains("was not applied");
        if not_applied {
            return Outcome::NotApplied;
        }
    }
    let parse = |b: &Bytes| std::str::from_utf8(b).ok()?.parse::<i64>().ok();
    if key >= PAIR_BASE {
        return pair_outcome(input, reply, parse).map_or(Outcome::Bad, Outcome::Done);
    }
    let output = match (input, reply) {
        (RegisterInput::Get, Reply::Nil) => Some(RegisterOutput::Value(None)),
        (RegisterInput::Get, Reply::Bulk(b)) => parse(b).map(|v| RegisterOutput::Value(Some(v))),
        (RegisterInput::Set(_) | RegisterInput::SetExpiring { .. }, Reply::Ok) => Some(RegisterOutput::Ok),
        (RegisterInput::Del, Reply::Int(n)) if *n == 0 || *n == 1 => Some(RegisterOutput::Deleted(*n == 1)),
        (RegisterInput::IncrBy(_), Reply::Int(v)) => Some(RegisterOutput::Int(*v)),
        (RegisterInput::IncrBy(_), Reply::Error(_)) => Some(RegisterOutput::IncrError),
        (RegisterInput::CompareAndSet { .. }, Reply::Ok) => Some(RegisterOutput::Swapped(true)),
        (RegisterInput::CompareAndSet { .. }, Reply::Nil) => Some(RegisterOutput::Swapped(false)),
        _ => None,
    };
    output.map_or(Outcome::Bad, Outcome::Done)
}

/// A pair's answer as one register's: `None` when the two keys disagree.
fn pair_outcome(input: RegisterInput, reply: &Reply, parse: impl Fn(&Bytes) -> Option<i64>) -> Option<RegisterOutput> {
    let value = |reply: &Reply| match reply {
        Reply::Nil => Some(None),
        Reply::Bulk(b) => parse(b).map(Some),
        _ => None,
    };
    match (input, reply) {
        (RegisterInput::Get, Reply::Array(items)) if items.len() == 2 => {
            let (a, b) = (value(&items[0])?, value(&items[1])?);
            (a == b).then_some(RegisterOutput::Value(a))
        }
        (RegisterInput::Set(_), Reply::Ok) => Some(RegisterOutput::Ok),
        (RegisterInput::Set(_), Reply::Array(items)) if items[..] == [Reply::Ok, Reply::Ok] => Some(RegisterOutput::Ok),
        (RegisterInput::Del, Reply::Int(0)) => Some(RegisterOutput::Deleted(false)),
        (RegisterInput::Del, Reply::Int(2)) => Some(RegisterOutput::Deleted(true)),
        _ => None,
    }
}

/// One recorded operation, with where and when for the latency checker.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub key: u32,
    pub op: Operation<RegisterInput, RegisterOutput>,
    /// The node the client sent it to.
    pub node: NodeId,
    /// Its command's session and sequence number.
    pub session: SessionId,
    pub seq: u64,
    /// It did not take effect: left out of the linearizability check.
    pub not_applied: bool,
    /// The time the store judged it at, once known (`settle_history`).
    pub at: Option<u64>,
}

/// The recorded client history.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Recorded>,
}

impl History {
    pub fn invoke(
        &mut self,
        client: usize,
        node: NodeId,
        key: u32,
        command: &Command,
        input: RegisterInput,
        now_us: u64,
    ) -> usize {
        let op = Operation { client: client as u64, call: now_us, ret: None, input, output: None };
        let (session, seq) = (command.session, command.seq);
        self.ops.push(Recorded { key, op, node, session, seq, not_applied: false, at: None });
        self.ops.len() - 1
    }

    pub fn complete(&mut self, index: usize, output: RegisterOutput, now_us: u64) {
        let op = &mut self.ops[index].op;
        op.ret = Some(now_us);
        op.output = Some(output);
    }

    pub fn not_applied(&mut self, index: usize) {
        self.ops[index].not_applied = true;
    }

    pub fn completed(&self) -> usize {
        self.ops.iter().filter(|r| r.op.ret.is_some()).count()
    }
}
