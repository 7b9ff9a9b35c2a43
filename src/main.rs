//! The `paxoskv` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

/// mimalloc's purge delay, the time a freed page stays mapped before it is
/// handed back to the OS: 10 s here (jemalloc's default decay), not
/// mimalloc's 1 s, unless `MIMALLOC_PURGE_DELAY` is set. Under a pipelined
/// write load the servers free and reuse large buffers (peer frames, WAL
/// record runs, client buffers) on a cycle of about a second; purged after
/// 1 s, each reuse faulted the memory back in, a whole transparent huge page
/// zeroed at a time (`clear_page_erms`, 7-12% of the servers' CPU under
/// `redis-benchmark -P 16` SETs; `benches/record-alloc.sh`, results/README.md).
#[cfg(feature = "mimalloc")]
fn tune_allocator() {
    use std::ffi::{c_int, c_long};
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the same
    /// index in mimalloc 2 and 3; it was `reset_delay` before).
    const MI_OPTION_PURGE_DELAY: c_int = 15;
    const PURGE_DELAY_MS: c_long = 10_000;
    unsafe extern "C" {
        fn mi_option_set(option: c_int, value: c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's option setter, linked with the allocator; it
        // stores the value in mimalloc's option table (a valid index).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

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
    #[cfg(feature = "mimalloc")]
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => cli::sim::run(args),
        Command::Server(args) => cli::server::run(args),
        Command::Cluster(args) => cli::cluster::run(args),
        Command::Viz(args) => cli::viz::run(args),
    }
}
