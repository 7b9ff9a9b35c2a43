//! `loadgen`: measure throughput and latency honestly (open loop by
//! default, latency from the intended send time), and compare
//! optimization profiles and systems side by side. See BENCHMARKING.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[allow(dead_code)] // used by the engine, plot and compare modules as they land
mod bundle;
#[allow(dead_code)]
mod cluster;
#[allow(dead_code)]
mod compare;
mod plot;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "loadgen", version, about = "Open-loop load generator for paxoskv, Redis and etcd")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Placeholder until the engine lands.
    Version,
    /// Redraw the charts (SVG) of a run bundle or a comparison directory.
    Plot(plot::PlotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plot(args) => plot::run(args),
        Command::Version => {
            println!("bundle format {}", bundle::BUNDLE_FORMAT_VERSION);
            ExitCode::SUCCESS
        }
    }
}
