//! THE NODE: one shard's replica plus everything around it that decides
//! rather than does I/O (ARCHITECTURE.md §1). Sans-IO and deterministic,
//! like the core: the server (`src/server`, real sockets, files and clock)
//! and the simulator (`src/sim`, simulated network, disk and clock) drive
//! the same [`Node`], so every rule about *when* something may happen is
//! exercised by the simulator.
//!
//! What it holds: the Multi-Paxos replica, the key-value store it applies
//! to, and the request table: writes waiting for their slot, reads to
//! answer right after a write of their session, commands held behind a
//! read of their session (`order.rs`), reads waiting for the core's go-ahead,
//! requests forwarded to the leader, requests parked until a leader is
//! known, requests held while the disk is behind (backpressure), and every
//! request's deadline.
//!
//! Inputs, each with the node's monotonic local time in microseconds:
//! [`Node::submit`] (a client request), [`Node::on_peer_frame`],
//! [`Node::on_link_up`] / [`Node::on_link_down`], [`Node::tick`] (the
//! timer), [`Node::on_synced`] (an fsync finished), and
//! [`Node::on_snapshot_ready`] (a snapshot was serialized). Then
//! [`Node::drain`] runs the core's Ready loop, and [`Node::take_output`]
//! says what to do: peer frames to send, WAL appends, client replies,
//! events, and at most one snapshot to serialize.
//!
//! Time: every input first moves the core's clock to `now` (so a lease
//! grant is stamped, and a lease read judged, at the current time even
//! after an executor stall); only [`Node::tick`] fires timeouts. A shell
//! that wakes from a stall must hand the node the inputs that arrived
//! during the stall before it ticks: firing timeouts first would start
//! elections the backlog's heartbeats would have prevented.
//!
//! [`Node::next_tick_us`] says when the next tick may act; ticks before it
//! do nothing, so a shell may sleep until then rather than tick every
//! `tick_us` (the server does; the simulator ticks every tick and checks
//! that no tick acts early). Every input may move it earlier.

mod anatomy;
mod boot;
mod config;
mod order;
mod output;
mod ready;
mod request;
mod requests;
mod session;
mod state;

pub use anatomy::Stage;
pub use boot::Boot;
pub use config::NodeConfig;
pub use output::{Append, NodeEvent, Output, SnapshotJob};
pub use request::{Request, Waiter};
pub use requests::{FRAMES_RELEASE_PER_DRAIN, RELEASE_PER_DRAIN};
pub use session::ClientSession;
pub use state::{Node, NodeStatus};

#[cfg(test)]
mod tests;
