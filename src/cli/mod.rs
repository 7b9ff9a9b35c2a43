//! Subcommands of the `paxoskv` binary.

pub mod cluster;
pub mod server;
pub mod sim;
pub mod viz;
