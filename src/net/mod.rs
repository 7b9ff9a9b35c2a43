//! Wire formats, plain functions on `bytes` with no I/O: decoders never
//! panic and never allocate more than their input justifies.
//!
//! - [`resp`]: the RESP command parser and the RESP2/RESP3 reply encoder.
//! - [`request`]: parsed RESP arguments turned into typed requests.
//! - [`commands`]: the table of served commands (arity, flags, keys, docs).
//! - [`slot`]: Redis Cluster hash slots and their shards.
//! - [`peer`]: the binary format between servers (handshake, CRC-checked
//!   frames, every [`crate::paxos::Message`] and request forwarding).
//! - [`peer_auth`]: the handshake's proofs of the peer secret (HMAC-SHA256).

pub mod commands;
pub mod peer;
pub mod peer_auth;
pub mod request;
pub mod resp;
pub mod slot;
