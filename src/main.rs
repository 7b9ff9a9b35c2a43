//! The `paxoskv` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "paxoskv", version, about = "A replicated key-value store on Multi-Paxos, thread-per-core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the deterministic cluster simulator: the real Multi-Paxos core and
    /// store under seeded faults, with safety and liveness checkers.
    Sim(cli::sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => cli::sim::run(args),
    }
}
