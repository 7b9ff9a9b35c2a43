//! `loadgen`: measure throughput and latency honestly (open loop by
//! default, latency from the intended send time), and compare
//! optimization profiles and systems side by side. See BENCHMARKING.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod anatomy;
mod args;
mod bundle;
mod check;
mod cluster;
mod compare;
mod engine;
#[cfg(feature = "etcd")]
mod etcd;
mod findmax;
mod floor;
mod history;
mod inflight;
mod machine;
mod nemesis;
mod noise;
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
    /// Draw the open-vs-closed-loop stall chart from two run bundles.
    StallChart(StallChartArgs),
    /// Start a local 3-node paxoskv cluster, run a short open-loop sweep,
    /// print the summary and the charts' paths, stop the cluster.
    Quickstart(quickstart::QuickstartArgs),
    /// The machine's floor for one replicated write: a commit's messages
    /// (client, leader, followers; --replicas) over loopback TCP, no
    /// consensus code, on blocking threads or glommio executors
    /// (--runtime); with --sync-dir, an O_DIRECT write + fdatasync per op at
    /// each replica. Prints latency percentiles and the replicas' CPU per op.
    /// With --serve ADDR the leader serves RESP clients instead (SET is
    /// replicated and answered +OK), for redis-benchmark to drive.
    Floor(floor::FloorArgs),
}

fn main() -> ExitCode {
    // A replica process of `loadgen floor --runtime glommio`, started by
    // the floor itself: no command line of its own.
    if let Some(ended) = floor::replica_from_env() {
        return match ended {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen floor replica: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run(run_args) => run_command(&run_args),
        Command::Compare(args) => compare::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Quickstart(args) => quickstart::run(args),
        Command::StallChart(args) => stall_chart(&args),
        Command::Floor(args) => floor::run(args),
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
    let stall = run_args.stall_pid.map(|pid| {
        let at = std::time::Duration::from_secs_f64(run_args.load.warmup_s + run_args.stall_at_s);
        let length = std::time::Duration::from_millis(run_args.stall_ms);
        std::thread::spawn(move || {
            std::thread::sleep(at);
            // SAFETY: kill(2) with a pid the user named.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
            std::thread::sleep(length);
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        })
    });
    let result = run::run_bundle(&spec, &out).and_then(|mut bundle| {
        if let Some(pid) = run_args.stall_pid {
            let what = format!("SIGSTOP pid {pid} for {} ms", run_args.stall_ms);
            for run in &mut bundle.runs {
                run.events.push(bundle::RunEvent { t_s: run_args.stall_at_s, what: what.clone() });
            }
            let json = serde_json::to_string_pretty(&bundle).map_err(|e| e.to_string())?;
            std::fs::write(out.join("bundle.json"), json).map_err(|e| format!("rewriting bundle.json: {e}"))?;
        }
        Ok(bundle)
    });
    if let Some(stall) = stall {
        let _ = stall.join();
    }
    match result {
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

#[derive(clap::Args)]
struct StallChartArgs {
    /// The open-loop run bundle (with a stall event).
    #[arg(long)]
    open: PathBuf,
    /// The closed-loop run bundle (same stall).
    #[arg(long)]
    closed: PathBuf,
    /// Where stall.svg goes.
    #[arg(long)]
    out: PathBuf,
}

fn stall_chart(args: &StallChartArgs) -> ExitCode {
    let load = |dir: &PathBuf| -> Result<bundle::Bundle, String> {
        let text = std::fs::read_to_string(dir.join("bundle.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.display()))
    };
    let charts = load(&args.open).and_then(|open| {
        let closed = load(&args.closed)?;
        Ok([plot::plot_stall(&args.out, &open, &closed)?, plot::plot_stall_percentiles(&args.out, &open, &closed)?])
    });
    match charts {
        Ok(paths) => {
            paths.iter().for_each(|path| println!("chart: {}", path.display()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen stall-chart: {e}");
            ExitCode::FAILURE
        }
    }
}
