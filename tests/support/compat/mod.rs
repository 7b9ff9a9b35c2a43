//! The harness of the Redis compatibility tests (`tests/redis_compat.rs`,
//! `tests/clients.rs`): RESP replies on the wire, the transcript format,
//! replaying a transcript against a server, and a loopback paxoskv cluster.

// Each test file uses its own part of this module.
#![allow(dead_code)]

pub mod cluster;
pub mod replay;
pub mod reply;
pub mod transcript;
