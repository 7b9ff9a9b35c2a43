//! Wire formats, plain functions on `bytes` with no I/O: decoders never
//! panic and never allocate more than their input justifies.
//!
//! - [`resp`]: the RESP2 command parser and reply encoder.
//! - [`request`]: parsed RESP arguments turned into typed requests.
//! - [`slot`]: Redis Cluster hash slots and their shards.
//! - [`peer`]: the binary format between servers (handshake, CRC-checked
//!   frames, every [`crate::paxos::Message`] and request forwarding).

pub mod peer;
pub mod request;
pub mod resp;
pub mod slot;
