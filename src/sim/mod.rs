//! The emulation layer: a deterministic simulator that drives N real nodes
//! (`src/node`: the core, the store and the request table, the code the
//! server runs) through a faulty network, disk, clock and executor, with
//! simulated clients, and checks agreement, linearizability, session
//! order, read freshness, lease safety, latency and liveness. One seed
//! reproduces a run exactly.

mod checker;
mod client;
mod clients;
mod cluster;
mod disk;
mod faults;
pub mod instant;
mod io;
mod network;
mod node;
mod run;
mod session_order;
mod trace;
mod watch;

/// The linearizability checker, shared with loadgen's `--check linearizable`
/// (its own crate, `lincheck/`).
pub use lincheck as linearizability;

pub use checker::Violation;
pub use client::{History, Outcome, Recorded, SimWaiter};
pub use cluster::{Cluster, FaultCounts, LeaderChange, ReadMode, SimConfig};
pub use disk::SimDisk;
pub use network::NetworkConfig;
pub use run::{resolve, run_seed, run_seeds, Drawn, FaultPlan, RunOptions, RunReport};
pub use trace::Tracer;
