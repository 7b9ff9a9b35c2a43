//! THE CORE: a sans-IO Multi-Paxos replica.
//!
//! No I/O, no clocks, no threads, no ambient randomness, no hash-order
//! iteration: a [`Replica`] is a deterministic state machine driven by
//! `propose`, `read`, `step`, `tick` and `on_persisted`, whose output is a
//! [`Ready`]. The server (thread-per-core shell) and the simulator are shells around it.

mod acceptor;
mod ballot;
mod catchup;
mod config;
mod election;
mod follower;
mod leader;
mod learner;
mod lease;
mod message;
mod persist;
mod proposer;
mod recovery;
mod replica;
mod slotmap;
mod time;
mod timeout;

pub use ballot::{Ballot, NodeId, NodeSet, Slot};
pub use config::{Config, ConfigError, InjectedBug, BATCH_BYTES_LIMIT, WINDOW_SLOTS_MAX};
pub use lease::leader_lease_ticks;
pub use message::*;
pub use persist::{Compacted, DurableState, PersistOp, SnapshotImage};
pub use proposer::RoleKind;
pub use replica::{Event, ProposeError, ReadOutcome, Ready, Replica, Status, StepDownReason, StepError};
pub use slotmap::SlotMap;
pub use timeout::smoothed_x8;
