//! The node's bounds and policies, each with its unit.

use crate::paxos::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's id (1..=`kv::SESSION_NODE_MAX`).
    pub node: NodeId,
    /// Every node of the group, in the order the core's config lists them.
    pub members: Vec<NodeId>,
    /// Microseconds per core tick.
    pub tick_us: u64,
    /// A request unanswered this long gets an error saying its outcome.
    pub request_timeout_us: u64,
    /// Snapshot the store and compact the log after this many applied
    /// slots, or this many applied command bytes (0 disables a trigger).
    /// Each node starts its counters at a different phase, so the nodes
    /// of a group do not all pause for a snapshot at the same slot.
    pub snapshot_every_slots: u64,
    pub snapshot_every_bytes: u64,
    /// A snapshot's copy of the store takes at most this many keys per
    /// drain (`kv::KvStore::begin_image`), the shard's other work in
    /// between: copying 100,000 keys at once held an executor for 10-30 ms.
    pub snapshot_copy_keys: usize,
    /// Client sessions the store remembers (exactly-once retries).
    pub sessions_max: usize,
    /// Reads go through the log like writes (else lease or read-index).
    pub reads_via_log: bool,
    /// Backpressure: while more than this many bytes of appended records
    /// wait for their fsync, [`crate::node::Node::accepting`] turns false,
    /// the entries peers send are held (in arrival order) and, at a
    /// leader, new client requests (forwarded ones too)
    /// ([`crate::node::Node::taking_requests`]). Once the entries held
    /// pass it too, further entries from peers are dropped (and sent
    /// again, or fetched, once the disk catches up).
    pub unsynced_bytes_max: usize,
    /// A leader with an append that has waited this long (µs) for its
    /// fsync hands leadership over, if the rest of the group can elect a
    /// leader without it (`Node::hand_over_due`), and a node whose disk
    /// is behind (past `unsynced_bytes_max`) starts no election. 0:
    /// neither (a leader keeps leading, however slow its
    /// disk, and holds requests however long its disk is behind).
    pub hand_over_after_us: u64,
    /// Requests parked with no leader known are retried this often (ticks)
    /// while the leader hint stays the same (at once when it changes).
    pub parked_retry_ticks: u64,
    /// A forwarded request unanswered this long (ticks) is forwarded again,
    /// to whoever leads then: a forward lost with its link, or one whose
    /// slot the next leader filled with a no-op, is not left to its deadline.
    /// The least wait: it grows with how long forwards take to be answered,
    /// up to four times this (`Node::forward_retry_after`).
    pub forward_retry_ticks: u64,
    /// Reads this node may have forwarded and unanswered at once; a read
    /// past it waits, parked, and so does everything that arrives after it
    /// (arrival order), until an answer makes room. It bounds what one node
    /// makes the leader serve and send back in one go: a client pipelining
    /// GETs of a large value at a follower costs the leader this many
    /// values in flight, not one per request the follower read
    /// (`client_pending_max` each connection). Writes do not count: their
    /// answers are small, and each carries its own value to the leader
    /// first; a window on them would cap pipelined writes through a
    /// follower at this many per commit round.
    pub forward_read_window: usize,
    /// Emit the events only checkers need (`ReadRegistered`, `ReadServed`,
    /// `Executed`): the simulator.
    pub trace_checks: bool,
    /// Sample one request in this many for the latency anatomy
    /// (`node::anatomy`; 0: none).
    pub anatomy_every: u64,
}

impl NodeConfig {
    /// Defaults for 1 ms ticks.
    pub fn new(node: NodeId, members: Vec<NodeId>) -> NodeConfig {
        NodeConfig {
            node,
            members,
            tick_us: 1_000,
            request_timeout_us: 5_000_000,
            snapshot_every_slots: 1_000_000,
            snapshot_every_bytes: 256 << 20,
            snapshot_copy_keys: 1024,
            sessions_max: 100_000,
            reads_via_log: false,
            unsynced_bytes_max: 64 << 20,
            hand_over_after_us: 1_000_000,
            parked_retry_ticks: 10,
            forward_retry_ticks: 200,
            forward_read_window: 64,
            trace_checks: false,
            anatomy_every: 64,
        }
    }

    /// This node's position among the members, for staggering snapshots.
    pub(super) fn phase(&self, every: u64) -> u64 {
        let index = self.members.iter().position(|&m| m == self.node).unwrap_or(0) as u64;
        let members = self.members.len().max(1) as u64;
        every / members * index
    }
}
