//! The simulator's trace: a run's events in the `paxoskv-trace` schema
//! (`src/trace`), for `paxoskv viz`. Messages (send, delivery, loss,
//! duplication) come from the simulated network, faults and clients from
//! the cluster, and each node's roles, ballots, leases and commits from
//! its outputs through [`NodeTracer`], the same translation live servers
//! use. Times are simulated microseconds since the run started.
//!
//! Off by default. When off the tracer is one `None`: every call site asks
//! [`Tracer::enabled`] (or passes a closure) before it builds an event, so
//! an untraced run allocates nothing for tracing and draws nothing from any
//! random generator either way: a seed replays the same run, traced or not.

use std::io::{self, Write};

use super::client::{outcome, Outcome as ClientOutcome};
use super::cluster::Cluster;
use super::linearizability::RegisterInput;
use crate::kv::Reply;
use crate::node::NodeEvent;
use crate::paxos::NodeId;
use crate::trace::{Event, Header, MessageId, NodeTraceConfig, NodeTracer, OpId, Outcome, TraceWriter};

/// Microseconds per core tick in the simulator (`SimConfig::node_config`).
const SIM_TICK_US: u64 = 1_000;

/// Where trace lines go; disabled by default (tracing costs time).
#[derive(Default)]
pub struct Tracer {
    inner: Option<Box<Inner>>,
}

struct Inner {
    writer: TraceWriter<Box<dyn Write>>,
    /// The first write error, reported at the end instead of per line.
    error: Option<io::Error>,
    /// Per node (by id - 1): what was last traced of it.
    nodes: Vec<NodeTracer>,
    /// Messages are numbered per run (so per link too).
    next_message_id: MessageId,
}

impl Tracer {
    /// Trace into `sink`, starting with `header` (its `nodes` are the run's replicas).
    pub fn to_writer(sink: Box<dyn Write>, header: &Header) -> io::Result<Tracer> {
        let writer = TraceWriter::new(sink, header)?;
        let nodes = header.nodes.iter().map(|&id| fresh(id)).collect();
        Ok(Tracer { inner: Some(Box::new(Inner { writer, error: None, nodes, next_message_id: 0 })) })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Write `event` at `t_us` (build it only when [`Tracer::enabled`]).
    pub fn emit(&mut self, t_us: u64, event: Event) {
        if let Some(inner) = &mut self.inner {
            inner.write(t_us, event);
        }
    }

    /// Write the event `make` builds, if tracing: for call sites where
    /// building it allocates.
    pub fn emit_with(&mut self, t_us: u64, make: impl FnOnce() -> Event) {
        if let Some(inner) = &mut self.inner {
            inner.write(t_us, make());
        }
    }

    /// A new message id (0 when not tracing: nothing pairs them then).
    pub fn next_message_id(&mut self) -> MessageId {
        match &mut self.inner {
            Some(inner) => {
                inner.next_message_id += 1;
                inner.next_message_id
            }
            None => 0,
        }
    }

    /// Let `f` trace node `id`'s events through its [`NodeTracer`].
    pub fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut NodeTracer, &mut dyn FnMut(u64, Event))) {
        let Some(inner) = &mut self.inner else { return };
        let Inner { writer, error, nodes, .. } = &mut **inner;
        let index = (id - 1) as usize;
        while nodes.len() <= index {
            nodes.push(fresh(nodes.len() as NodeId + 1));
        }
        f(&mut nodes[index], &mut |t_us, event| write(writer, error, t_us, event));
    }

    /// Node `id` (re)started: it has traced nothing of its new life yet.
    pub fn node_restarted(&mut self, id: NodeId) {
        if let Some(inner) = &mut self.inner {
            if let Some(node) = inner.nodes.get_mut((id - 1) as usize) {
                *node = fresh(id);
            }
        }
    }

    /// Flush, and report the first write error of the run.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(inner) = &mut self.inner else { return Ok(()) };
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        inner.writer.flush()
    }
}

impl Inner {
    fn write(&mut self, t_us: u64, event: Event) {
        write(&mut self.writer, &mut self.error, t_us, event);
    }
}

fn write(writer: &mut TraceWriter<Box<dyn Write>>, error: &mut Option<io::Error>, t_us: u64, event: Event) {
    if error.is_some() {
        return;
    }
    if let Err(e) = writer.write(t_us, event) {
        *error = Some(e);
    }
}

fn fresh(id: NodeId) -> NodeTracer {
    NodeTracer::new(id, NodeTraceConfig::every_event(SIM_TICK_US))
}

// ---- what the cluster writes ----------------------------------------------

impl Cluster {
    /// Node `id`'s outputs of one drain, through its [`NodeTracer`]: the
    /// core's lease ends are in the node's local ticks, mapped to real time
    /// through its (drifting) clock.
    pub(super) fn trace_output(&mut self, id: NodeId, events: &[NodeEvent]) {
        let now = self.now_us;
        let n = &self.nodes[(id - 1) as usize];
        let Some(node) = n.node.as_ref() else { return };
        let replica = node.replica();
        self.tracer
            .with_node(id, |tracer, emit| tracer.on_output(now, events, replica, |local| n.real_us(local), emit));
    }

    /// Node `id` learned that its link to `peer` went up or down.
    pub(super) fn trace_link(&mut self, id: NodeId, peer: NodeId, up: bool) {
        let now = self.now_us;
        self.tracer.with_node(id, |tracer, emit| tracer.on_link(now, peer, up, emit));
    }

    /// Checker violations found since the last call, at the current time.
    pub(super) fn trace_new_violations(&mut self) {
        while let Some(v) = self.checker.violations.get(self.violations_traced) {
            self.violations_traced += 1;
            let event = Event::Violation {
                checker: v.checker().to_string(),
                message: v.to_string(),
                ops: v.ops().iter().map(|&i| i as OpId).collect(),
                slot: v.slot(),
            };
            self.tracer.emit(self.now_us, event);
        }
    }
}

/// A client's operation `op` (its history index) on key `key`, sent to `node`.
pub(super) fn invoke_event(op: usize, client: usize, node: NodeId, key: u32, input: RegisterInput) -> Event {
    let k = format!("k{key}");
    let command = match input {
        RegisterInput::Get => format!("GET {k}"),
        RegisterInput::Set(v) => format!("SET {k} {v}"),
        RegisterInput::SetExpiring { value, expires_at } => format!("SET {k} {value} PXAT {expires_at}"),
        RegisterInput::IncrBy(d) => format!("INCRBY {k} {d}"),
        RegisterInput::CompareAndSet { expected, new } => format!("SET {k} {new} if it is {expected}"),
        RegisterInput::Del => format!("DEL {k}"),
    };
    Event::Invoke { op: op as OpId, client: client as u64, node, command, key: Some(k) }
}

/// Operation `op` answered with `reply`, as its client reads the answer.
pub(super) fn complete_event(op: usize, key: u32, input: RegisterInput, reply: &Reply) -> Event {
    let outcome = match (outcome(key, input, reply), reply) {
        (ClientOutcome::Unknown, _) => Outcome::Indeterminate,
        (_, Reply::Error(_)) | (ClientOutcome::NotApplied | ClientOutcome::Bad, _) => Outcome::Error,
        (ClientOutcome::Done(_), _) => Outcome::Ok,
    };
    Event::Complete { op: op as OpId, outcome, output: Some(reply_text(reply)) }
}

/// A reply as redis-cli prints it.
fn reply_text(reply: &Reply) -> String {
    let bulk = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    match reply {
        Reply::Ok => "OK".to_string(),
        Reply::Nil => "(nil)".to_string(),
        Reply::Int(n) => format!("(integer) {n}"),
        Reply::Bulk(b) => bulk(b),
        Reply::Array(items) => {
            let items: Vec<String> = items.iter().map(reply_text).collect();
            format!("[{}]", items.join(", "))
        }
        Reply::Error(message) => format!("(error) {message}"),
        Reply::Status(status) => status.clone(),
        Reply::NilArray => "(nil array)".to_string(),
    }
}
