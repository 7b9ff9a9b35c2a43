//! paxoskv: a replicated key-value store on Multi-Paxos.
//!
//! - [`paxos`]: the sans-IO Multi-Paxos replica (the core).
//! - [`kv`]: the replicated state machine (commands, apply, client sessions).
//! - [`node`]: one shard's replica, store and request table, sans-IO: the
//!   one code path the server and the simulator both drive.
//! - [`sim`]: the deterministic emulation layer that drives the core.
//! - [`storage`]: the write-ahead log and crash recovery.
//! - [`net`]: wire formats (RESP, hash slots, peer frames).
//! - [`server`]: the glommio shell (shards, peer links, clients, metrics).
//! - [`trace`]: the trace schema the simulator and live nodes write.
//! - [`viz`]: the space-time diagram of a trace, as one HTML file.
//!
//! `fuzzing` (hidden) holds the bodies of the fuzz targets in `fuzz/`.

#[doc(hidden)]
pub mod fuzzing;
pub mod json;
pub mod kv;
pub mod net;
pub mod node;
pub mod paxos;
pub mod rng;
pub mod server;
pub mod sim;
pub mod storage;
pub mod trace;
pub mod viz;
