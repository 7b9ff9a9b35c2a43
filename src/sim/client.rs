//! Simulated clients: each runs one operation at a time against one key of
//! a small key space, retries it (same session sequence number, so the
//! store applies it once) until it gets an answer, and records the call and
//! return times in the history the linearizability checker reads.

use bytes::Bytes;

use super::linearizability::{Operation, RegisterInput, RegisterOutput};
use crate::kv::{Op, Reply, SessionId, SetCondition};
use crate::paxos::NodeId;
use crate::rng::Rng;

/// What a replica answers a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    Done(Reply),
    /// Not the leader (or leadership lost): try `leader` if known.
    Redirect(Option<NodeId>),
    /// Queues full: back off and retry.
    Busy,
}

/// The operation a client is waiting on.
#[derive(Clone, Debug)]
pub struct CurrentOp {
    pub key: u32,
    pub input: RegisterInput,
    pub seq: u64,
    /// Index of this op in the history.
    pub history_index: usize,
}

#[derive(Clone, Debug)]
pub struct SimClient {
    pub index: usize,
    pub session: SessionId,
    pub next_seq: u64,
    /// Where requests go; follows redirects.
    pub target: NodeId,
    /// Bumped per send; replies and timeouts for older attempts are ignored.
    pub attempt: u64,
    pub current: Option<CurrentOp>,
    /// Starts new operations (cleared when the run winds down).
    pub active: bool,
    /// Last value this client saw per key, for compare-and-set guesses.
    last_seen: Vec<Option<i64>>,
}

impl SimClient {
    pub fn new(index: usize, target: NodeId, keys: u32) -> SimClient {
        SimClient {
            index,
            session: 1000 + index as u64,
            next_seq: 1,
            target,
            attempt: 0,
            current: None,
            active: true,
            last_seen: vec![None; keys as usize],
        }
    }

    /// Draw the next operation: mostly reads and writes, some increments,
    /// compare-and-sets and deletes. Written values are unique per client
    /// and sequence, which makes stale reads easy to spot.
    pub fn next_input(&mut self, rng: &mut Rng, keys: u32) -> (u32, RegisterInput) {
        let key = rng.below(u64::from(keys)) as u32;
        let unique = (self.index as i64 + 1) * 1_000_000 + self.next_seq as i64;
        let input = match rng.below(100) {
            0..=39 => RegisterInput::Get,
            40..=64 => RegisterInput::Set(unique),
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
        let seen = match output {
            RegisterOutput::Value(v) => *v,
            RegisterOutput::Int(v) => Some(*v),
            _ => return,
        };
        self.last_seen[key as usize] = seen;
    }
}

pub fn key_name(key: u32) -> Bytes {
    Bytes::from(format!("k{key}"))
}

/// The kv operation for a register operation on `key`.
pub fn kv_op(key: u32, input: RegisterInput) -> Op {
    let key = key_name(key);
    let text = |v: i64| Bytes::from(v.to_string());
    match input {
        RegisterInput::Get => Op::Get { key },
        RegisterInput::Set(v) => Op::Set { key, value: text(v), condition: SetCondition::Always },
        RegisterInput::Del => Op::Del { keys: vec![key] },
        RegisterInput::IncrBy(d) => Op::IncrBy { key, delta: d },
        RegisterInput::CompareAndSet { expected, new } => {
            Op::Set { key, value: text(new), condition: SetCondition::IfEqual(text(expected)) }
        }
    }
}

/// Interpret the store's reply as the register model's output. `None` when
/// the reply cannot come from a correct store for this input (reported as a
/// violation by the caller).
pub fn register_output(input: RegisterInput, reply: &Reply) -> Option<RegisterOutput> {
    let parse = |b: &Bytes| std::str::from_utf8(b).ok()?.parse::<i64>().ok();
    match (input, reply) {
        (RegisterInput::Get, Reply::Nil) => Some(RegisterOutput::Value(None)),
        (RegisterInput::Get, Reply::Bulk(b)) => Some(RegisterOutput::Value(Some(parse(b)?))),
        (RegisterInput::Set(_), Reply::Ok) => Some(RegisterOutput::Ok),
        (RegisterInput::Del, Reply::Int(n)) if *n == 0 || *n == 1 => Some(RegisterOutput::Deleted(*n == 1)),
        (RegisterInput::IncrBy(_), Reply::Int(v)) => Some(RegisterOutput::Int(*v)),
        (RegisterInput::IncrBy(_), Reply::Error(_)) => Some(RegisterOutput::IncrError),
        (RegisterInput::CompareAndSet { .. }, Reply::Ok) => Some(RegisterOutput::Swapped(true)),
        (RegisterInput::CompareAndSet { .. }, Reply::Nil) => Some(RegisterOutput::Swapped(false)),
        _ => None,
    }
}

/// The recorded client history: per operation its key and its interval.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<(u32, Operation<RegisterInput, RegisterOutput>)>,
}

impl History {
    pub fn invoke(&mut self, client: usize, key: u32, input: RegisterInput, now_us: u64) -> usize {
        self.ops.push((key, Operation { client: client as u64, call: now_us, ret: None, input, output: None }));
        self.ops.len() - 1
    }

    pub fn complete(&mut self, index: usize, output: RegisterOutput, now_us: u64) {
        let op = &mut self.ops[index].1;
        op.ret = Some(now_us);
        op.output = Some(output);
    }

    pub fn completed(&self) -> usize {
        self.ops.iter().filter(|(_, op)| op.ret.is_some()).count()
    }
}
