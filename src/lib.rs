//! paxoskv: a replicated key-value store on Multi-Paxos.
//!
//! - [`paxos`]: the sans-IO Multi-Paxos replica (the core).
//! - [`kv`]: the replicated state machine (commands, apply, client sessions).
//! - [`sim`]: the deterministic emulation layer that drives the core.
//! - [`storage`]: the write-ahead log and crash recovery.

pub mod json;
pub mod kv;
pub mod paxos;
pub mod rng;
pub mod sim;
pub mod storage;
