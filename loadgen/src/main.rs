//! `loadgen`: measure throughput and latency honestly (open loop by
//! default, latency from the intended send time), and compare
//! optimization profiles and systems side by side. See BENCHMARKING.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod bundle;
mod cluster;
mod compare;
mod engine;
#[cfg(feature = "etcd")]
mod etcd;
mod findmax;
mod inflight;
mod machine;
mod output;
mod plot;
mod quickstart;
mod recorder;
mod report;
mod resp;
mod rng;
mod run;
mod schedule;
mod target;
mod workload;

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
    /// Load a target (open loop at --rate/--rates, --find-max, or --closed)
    /// and write a result bundle.
    Run(args::RunArgs),
    /// Compare profiles (tuning/*.toml) or systems: the same workload, a
    /// fresh cluster per measurement, interleaved, repeated; one bundle
    /// with medians, spread, ratios and charts.
    Compare(compare::CompareArgs),
    /// Redraw the charts (SVG) of a run bundle or a comparison directory.
    Plot(plot::PlotArgs),
    /// Start a local 3-node paxoskv cluster, run a short open-loop sweep,
    /// print the summary and the charts' paths, stop the cluster.
    Quickstart(quickstart::QuickstartArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(run_args) => run_command(&run_args),
        Command::Compare(args) => compare::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Quickstart(args) => quickstart::run(args),
    }
}

fn run_command(run_args: &args::RunArgs) -> ExitCode {
    let spec = match run_args.to_spec(machine::command_line()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let out =
        run_args.out.clone().unwrap_or_else(|| PathBuf::from(format!("results/loadgen/{}", machine::unix_now_s())));
    match run::run_bundle(&spec, &out) {
        Ok(bundle) => {
            match plot::plot_bundle(&out, &bundle) {
                Ok(charts) => charts.iter().for_each(|c| println!("chart: {}", c.display())),
                Err(e) => eprintln!("loadgen: drawing charts: {e}"),
            }
            println!("bundle: {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
