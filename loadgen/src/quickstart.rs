//! `loadgen quickstart`: the README's first command. Builds and starts a
//! local 3-node paxoskv cluster (durability sync), runs a short open-loop
//! sweep against it, prints the summary and where the charts are, and
//! stops the cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cluster::{find_paxoskv, LocalCluster};
use crate::run::{Plan, RunSpec};

#[derive(clap::Args)]
pub struct QuickstartArgs {
    /// Offered rates of the sweep, ops/s (open loop, Poisson arrivals).
    #[arg(long, value_delimiter = ',', default_value = "2000,10000,30000,60000")]
    pub rates: Vec<f64>,
    /// Measured seconds per rate (after a 1 s warm-up).
    #[arg(long, default_value_t = 4.0)]
    pub duration_s: f64,
    /// Where the bundle goes [default: target/quickstart/<unix-seconds>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Client ports of the cluster are BASE+1..BASE+3.
    #[arg(long, default_value_t = 7700)]
    pub base_port: u16,
    /// The paxoskv binary [default: beside loadgen, built by cargo if run through it].
    #[arg(long)]
    pub paxoskv: Option<PathBuf>,
}

pub fn run(args: QuickstartArgs) -> ExitCode {
    match quickstart(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn quickstart(args: &QuickstartArgs) -> Result<(), String> {
    let paxoskv = find_paxoskv(args.paxoskv.as_deref())?;
    let started = crate::machine::unix_now_s();
    let target_dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let out = args.out.clone().unwrap_or_else(|| target_dir.join("quickstart").join(started.to_string()));
    let data = target_dir.join("quickstart-data");
    println!(
        "starting a 3-node paxoskv cluster (durability sync) on 127.0.0.1:{}..{}",
        args.base_port + 1,
        args.base_port + 3
    );
    let trace_dir = out.join("trace");
    let trace_flag = LocalCluster::trace_flag(&paxoskv, &trace_dir);
    let trace_dir = trace_flag.is_some().then_some(trace_dir);
    let cluster =
        LocalCluster::start(&paxoskv, &data, args.base_port, 3, &Vec::from_iter(trace_flag), Default::default())?;
    println!("cluster ready: shard leaders {:?}; its log: {}", cluster.leaders, cluster.log_path.display());
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("system".into(), "paxoskv".into());
    labels.insert("durability".into(), "sync".into());
    labels.insert("nodes".into(), "3".into());
    labels.insert("shards".into(), "1".into());
    labels.insert("profile".into(), "defaults (all optimizations on)".into());
    let params = crate::bundle::Params {
        mode: "open".into(),
        arrivals: "poisson".into(),
        connections: 12,
        pipeline: 100_000,
        read_ratio: 0.5,
        keys: 100_000,
        distribution: "uniform".into(),
        zipf_theta: 0.99,
        key_bytes: 16,
        value_bytes: 100,
        hash_tag_group: 0,
        warmup_s: 1.0,
        duration_s: args.duration_s,
        timeout_ms: 10_000,
        seed: 1,
    };
    let spec = RunSpec {
        check: false,
        nemesis: None,
        target: cluster.target(),
        params,
        plan: Plan::Rates(args.rates.clone()),
        labels,
        command: crate::machine::command_line(),
        kind: "run".into(),
        threads: 1,
        progress: true,
        trace_dir,
    };
    let result = crate::run::run_bundle(&spec, &out);
    cluster.stop();
    let _ = std::fs::remove_dir_all(&data);
    let bundle = result?;
    let charts = crate::plot::plot_bundle(&out, &bundle)?;
    println!("\nbundle: {}", out.display());
    for chart in charts {
        println!("chart:  {}", chart.display());
    }
    Ok(())
}
