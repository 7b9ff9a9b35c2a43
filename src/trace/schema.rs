//! The trace records: a [`Header`] line, then one [`Record`] per line.
//! The field meanings are documented in the module doc of [`crate::trace`]
//! and in the README's "Trace format"; here each type says what it holds.

use serde::{Deserialize, Serialize};

use super::kinds::{ballot_text, DropReason, MessageKind, Outcome, RoleName};
use crate::paxos::{Ballot, NodeId, Slot};

/// The `schema` value of every header.
pub const SCHEMA: &str = "paxoskv-trace";

/// The schema version this code writes and reads. Additive changes (a new
/// event, a new optional field) keep the version: readers skip what they do
/// not know. A change of an existing field's meaning raises it, and a reader
/// refuses a version it does not know.
pub const VERSION: u32 = 1;

/// A message id: unique per link `from -> to` within a run (a counter per
/// run or per sender is unique per link too). A message is identified by
/// `(from, to, id)`.
pub type MessageId = u64;

/// A client operation's id, unique within one run.
pub type OpId = u64;

/// Who wrote the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The deterministic simulator (`paxoskv sim --trace`).
    Sim,
    /// A live node (`paxoskv server`), one file per node.
    Node,
}

/// What `t_us` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Simulated microseconds since the run started.
    Sim,
    /// Microseconds since the Unix epoch, from the writer's system clock.
    Wall,
}

/// The first line of every trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`VERSION`] when written by this code.
    pub version: u32,
    pub source: Source,
    pub clock: Clock,
    /// Every replica of the Paxos group, in id order (the replica count is
    /// its length).
    pub nodes: Vec<NodeId>,
    /// The node that wrote this file (live nodes); absent for the simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// The shard (Paxos group) the file covers, where a node runs several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// The simulator seed that reproduces the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The command line that produced the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Header {
    pub fn new(source: Source, clock: Clock, nodes: Vec<NodeId>) -> Header {
        Header {
            schema: SCHEMA.to_string(),
            version: VERSION,
            source,
            clock,
            nodes,
            node: None,
            shard: None,
            seed: None,
            command: None,
        }
    }
}

/// One event at one time: a line after the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When it happened, in the header's [`Clock`].
    pub t_us: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// Every event the schema knows. On the wire the variant is the `event`
/// field (snake_case) and the variant's fields sit beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    // --- messages -----------------------------------------------------
    /// `from` handed a message to the network (logged on `from`).
    Send(Send),
    /// A message reached `to` (logged on `to`). A duplicated message has
    /// two deliveries of one `(from, to, id)`.
    Deliver { id: MessageId, from: NodeId, to: NodeId },
    /// A message was lost. Its `send` is logged too; `t_us` is when it was lost.
    Drop { id: MessageId, from: NodeId, to: NodeId, reason: DropReason },

    // --- roles ---------------------------------------------------------
    /// `node` now plays `role`; it lasts until its next `role`, `crash`
    /// or `restart`.
    Role {
        node: NodeId,
        role: RoleName,
        /// The ballot it leads, campaigns for, or (follower) last promised.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "ballot_text::opt")]
        ballot: Option<Ballot>,
    },
    /// `node` started Phase 1 with `ballot` (one Prepare for the log suffix).
    Election {
        node: NodeId,
        #[serde(with = "ballot_text")]
        ballot: Ballot,
    },
    /// `node` stopped leading `ballot`.
    StepDown {
        node: NodeId,
        #[serde(with = "ballot_text")]
        ballot: Ballot,
        /// Why: "higher_ballot", "lost_majority_contact" or "handed_over".
        reason: String,
    },

    // --- leases --------------------------------------------------------
    /// Acceptor `node` promised to refuse every proposer but `holder`
    /// until `until_us` (by its own clock, in the header's clock units).
    LeaseGrant {
        node: NodeId,
        #[serde(with = "ballot_text")]
        holder: Ballot,
        until_us: u64,
    },
    /// Leader `node` holds a read lease for `ballot` until `until_us`; a
    /// later `lease` for the same ballot extends it.
    Lease {
        node: NodeId,
        #[serde(with = "ballot_text")]
        ballot: Ballot,
        until_us: u64,
    },
    /// Acceptor `node` ended its grant to `holder` early: that leader
    /// stepped down and gave its lease up (a hand-over).
    LeaseRelease {
        node: NodeId,
        #[serde(with = "ballot_text")]
        holder: Ballot,
    },
    /// Leader `node`'s lease ran out (or was given up) before it was extended.
    LeaseExpired {
        node: NodeId,
        #[serde(with = "ballot_text")]
        ballot: Ballot,
    },

    // --- slots ---------------------------------------------------------
    /// `node` (the leader) learned that `slot` is chosen in `ballot`.
    Chosen {
        node: NodeId,
        slot: Slot,
        #[serde(with = "ballot_text")]
        ballot: Ballot,
        /// Client commands in the slot's batch (0 for a no-op).
        commands: u64,
        /// Digest of the chosen value (see [`Send::digest`]).
        digest: String,
    },
    /// `node` knows every slot below `index` chosen.
    Commit { node: NodeId, index: Slot },

    // --- clients -------------------------------------------------------
    /// A client sent operation `op` to `node`.
    Invoke {
        op: OpId,
        client: u64,
        node: NodeId,
        /// The operation as text, e.g. "SET k1 5".
        command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Operation `op` finished for its client.
    Complete {
        op: OpId,
        outcome: Outcome,
        /// The reply as text, e.g. "OK" or "(integer) 6".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },

    // --- checkers ------------------------------------------------------
    /// A checker found a violation involving `ops` (and `slot`).
    Violation {
        checker: String,
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ops: Vec<OpId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<Slot>,
    },

    // --- faults --------------------------------------------------------
    /// `node` lost its volatile state (and anything not fsynced).
    Crash { node: NodeId },
    /// `node` started again from its durable state.
    Restart { node: NodeId },
    /// Links between `side_a` and `side_b` are cut, both ways, or only
    /// from `side_a` to `side_b` when `one_way`. Cuts add up until `heal`.
    Partition {
        side_a: Vec<NodeId>,
        side_b: Vec<NodeId>,
        #[serde(default, skip_serializing_if = "is_false")]
        one_way: bool,
    },
    /// Every cut link works again.
    Heal {},
    /// `node`'s executor stopped running while time went on.
    StallStart { node: NodeId },
    /// `node` runs again and works through its backlog.
    StallEnd { node: NodeId },
    /// `node`'s disk lost or damaged data, e.g. "torn write in wal-3".
    DiskFault { node: NodeId, detail: String },
    /// `node`'s link to `peer` came up (live nodes).
    PeerUp { node: NodeId, peer: NodeId },
    /// `node`'s link to `peer` went down (live nodes).
    PeerDown { node: NodeId, peer: NodeId },
    /// `node` recovered its state from disk, e.g. "snapshot 4096, 120 slots".
    Recovery { node: NodeId, detail: String },
}

/// The `send` event (a struct: it has the most fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    pub id: MessageId,
    pub from: NodeId,
    pub to: NodeId,
    pub kind: MessageKind,
    /// The ballot the message speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ballot_text::opt")]
    pub ballot: Option<Ballot>,
    /// The first slot it carries or asks about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// How many slots from `slot` it carries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slots: u64,
    /// Client commands in the values it carries (the batch size).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub commands: u64,
    /// Payload bytes: the carried commands (a snapshot chunk: its data).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
    /// A short text equal for equal carried values
    /// ([`crate::trace::value_digest`]: 8 hex digits of a CRC32C).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Event {
    /// The `event` names this code knows, for telling an unknown event
    /// (skipped) from a known one with bad fields (an error).
    pub const NAMES: [&'static str; 25] = [
        "send",
        "deliver",
        "drop",
        "role",
        "election",
        "step_down",
        "lease_grant",
        "lease_release",
        "lease",
        "lease_expired",
        "chosen",
        "commit",
        "invoke",
        "complete",
        "violation",
        "crash",
        "restart",
        "partition",
        "heal",
        "stall_start",
        "stall_end",
        "disk_fault",
        "peer_up",
        "peer_down",
        "recovery",
    ];

    /// This event's `event` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Send(_) => "send",
            Event::Deliver { .. } => "deliver",
            Event::Drop { .. } => "drop",
            Event::Role { .. } => "role",
            Event::Election { .. } => "election",
            Event::StepDown { .. } => "step_down",
            Event::LeaseGrant { .. } => "lease_grant",
            Event::LeaseRelease { .. } => "lease_release",
            Event::Lease { .. } => "lease",
            Event::LeaseExpired { .. } => "lease_expired",
            Event::Chosen { .. } => "chosen",
            Event::Commit { .. } => "commit",
            Event::Invoke { .. } => "invoke",
            Event::Complete { .. } => "complete",
            Event::Violation { .. } => "violation",
            Event::Crash { .. } => "crash",
            Event::Restart { .. } => "restart",
            Event::Partition { .. } => "partition",
            Event::Heal {} => "heal",
            Event::StallStart { .. } => "stall_start",
            Event::StallEnd { .. } => "stall_end",
            Event::DiskFault { .. } => "disk_fault",
            Event::PeerUp { .. } => "peer_up",
            Event::PeerDown { .. } => "peer_down",
            Event::Recovery { .. } => "recovery",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}
