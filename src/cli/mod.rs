//! Subcommands of the `paxoskv` binary.

pub mod cluster;
mod control;
mod netns;
pub mod server;
pub mod sim;
pub mod viz;
