//! What a node asks its shell to do, drained by `Node::take_output`.

use crate::kv::{KvImage, Reply, SessionId};
use crate::net::peer::PeerFrame;
use crate::paxos::{Ballot, Event, NodeId, PersistOp, Slot, StepError};

/// Records to append to the WAL, in order. Once an fsync covers them, the
/// shell calls `Node::on_synced(token)` (for the highest token covered).
#[derive(Debug)]
pub struct Append {
    pub token: u64,
    pub ops: Vec<PersistOp>,
}

/// An image of the store to encode off the critical path
/// (`KvImage::encode`); the shell then calls
/// `Node::on_snapshot_ready(slot, bytes)`.
#[derive(Debug)]
pub struct SnapshotJob {
    /// The image covers every slot below this.
    pub slot: Slot,
    pub image: KvImage,
}

/// Things that happened, for logs, metrics, traces and checkers.
#[derive(Debug)]
pub enum NodeEvent {
    /// A role change or recovery step of the core.
    Core(Event),
    /// Slot `slot` was applied: `commands` commands, `bytes` bytes.
    Applied { slot: Slot, commands: usize, bytes: usize },
    /// A client command went into the proposal queue.
    Proposed,
    /// A request was handed to the leader.
    Forwarded { to: NodeId },
    /// A read found `NodeConfig::forward_read_window` full and waits
    /// (parked) for an answer to make room.
    ForwardReadWindowFull,
    /// A lease or read-index read entered the core (`trace_checks` only),
    /// at node-local time `at_us`, with ballot `promised` promised. The
    /// shell may collect it much later (after an executor stall): a
    /// checker judges the read as of `at_us`.
    ReadRegistered { id: u64, at_us: u64, promised: Ballot },
    /// That read, command `seq` of `session`, was answered at `read_index`,
    /// judged at time `at_ms` (`trace_checks` only).
    ReadServed { id: u64, read_index: Slot, at_ms: u64, session: SessionId, seq: u64 },
    /// A client command ran in the store (not a replay) with this reply, at
    /// the log's time `at_ms` (`trace_checks` only): when, if ever, a
    /// command whose client was told "outcome unknown" took effect.
    Executed { session: SessionId, seq: u64, reply: Reply, at_ms: u64 },
    /// A peer's message was refused by the core.
    PeerMessageRefused { from: NodeId, error: StepError },
    /// A forwarded command or reply did not decode.
    BadForward { from: NodeId, detail: String },
    /// A snapshot from a peer was installed.
    SnapshotInstalled { slot: Slot },
    /// A local snapshot job was handed out.
    SnapshotStarted { slot: Slot },
    /// Client requests were held because the disk is behind.
    Backpressure { unsynced_bytes: usize },
    /// A frame that brings entries from peer `from` was dropped: the
    /// entries the node holds while its disk is behind are over the bound
    /// (`Node::on_peer_frame`). `first`: the first since the node last
    /// held none.
    PeerFrameDropped { from: NodeId, first: bool },
    /// A sampled request spent `us` microseconds in `stage` (`node::anatomy`).
    Stage { stage: super::Stage, us: u64 },
    /// Something the node cannot continue from (a peer's snapshot that the
    /// core accepted whole does not restore). The shell must stop.
    Fatal(String),
}

/// Everything a node wants done, in the order it should be done within
/// each field. `messages` may go out at once (those that had to wait for
/// the disk are released by `on_synced`).
#[derive(Debug)]
pub struct Output<C> {
    pub messages: Vec<(NodeId, PeerFrame)>,
    pub appends: Vec<Append>,
    pub replies: Vec<(C, Reply)>,
    pub events: Vec<NodeEvent>,
    pub snapshot: Option<SnapshotJob>,
}

impl<C> Default for Output<C> {
    fn default() -> Self {
        Output { messages: Vec::new(), appends: Vec::new(), replies: Vec::new(), events: Vec::new(), snapshot: None }
    }
}

impl<C> Output<C> {
    /// Items of every kind together (a snapshot job counts one).
    pub fn len(&self) -> usize {
        self.messages.len()
            + self.appends.len()
            + self.replies.len()
            + self.events.len()
            + usize::from(self.snapshot.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.appends.is_empty()
            && self.replies.is_empty()
            && self.events.is_empty()
            && self.snapshot.is_none()
    }
}
