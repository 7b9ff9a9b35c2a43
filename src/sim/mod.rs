//! The emulation layer: a deterministic simulator that drives N replicas of
//! the real core and the real store through a faulty network and disk, with
//! simulated clients, and checks agreement, linearizability, read freshness
//! and liveness. One seed reproduces a run exactly.

mod checker;
mod client;
mod cluster;
mod disk;
pub mod instant;
pub mod linearizability;
mod network;
mod node;
mod run;
mod trace;

pub use checker::Violation;
pub use client::ClientReply;
pub use cluster::{Cluster, FaultCounts, LeaderChange, ReadMode, SimConfig};
pub use disk::{CrashWrite, SimDisk};
pub use network::NetworkConfig;
pub use run::{run_seed, run_seeds, FaultPlan, RunOptions, RunReport};
pub use trace::{TraceEvent, Tracer};
