//! Subcommands of the `paxoskv` binary.

pub mod sim;
