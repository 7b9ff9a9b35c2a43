//! The `paxoskv` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(any(feature = "mimalloc", feature = "mimalloc-v2"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run one node of a cluster from a cluster file (TOML).
    Server(cli::server::ServerArgs),
    /// Start a local cluster (N server processes on loopback) and keep it
    /// running until Ctrl-C. No file needed.
    Cluster(cli::cluster::ClusterArgs),
    /// Draw trace files (from `sim --trace` or live nodes) as a space-time
    /// diagram in one self-contained HTML page.
    Viz(cli::viz::VizArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => cli::sim::run(args),
        Command::Server(args) => cli::server::run(args),
        Command::Cluster(args) => cli::cluster::run(args),
        Command::Viz(args) => cli::viz::run(args),
    }
}
