//! The flags of `loadgen run`. `LoadArgs` (everything but the target, the
//! labels and the output directory) can be flattened into other commands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use crate::bundle::Params;
use crate::findmax::FindMaxSpec;
use crate::inflight::Mode;
use crate::nemesis::{parse_kinds, FaultKind, Nemesis, NemesisSpec, Processes};
use crate::run::{Plan, RunSpec};

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// What to load: resp://host:port[,host:port...] (paxoskv or Redis);
    /// connections go round-robin over the addresses.
    #[arg(long)]
    pub target: String,

    #[command(flatten)]
    pub load: LoadArgs,

    /// A fact about the system under test, recorded in the bundle
    /// (repeatable): --label durability=fsync --label nodes=3.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Bundle directory [default: results/loadgen/<unix-seconds>].
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Fault injection: SIGSTOP this process (the server) during the run,
    /// then SIGCONT it; recorded as an event in the bundle and on charts.
    #[arg(long, value_name = "PID")]
    pub stall_pid: Option<u32>,
    /// Seconds into the measured window at which the stall starts.
    #[arg(long, default_value_t = 3.0, requires = "stall_pid")]
    pub stall_at_s: f64,
    /// How long the process stays stopped, milliseconds.
    #[arg(long, default_value_t = 1000, requires = "stall_pid")]
    pub stall_ms: u64,
    /// The protocol trace directory of the paxoskv cluster under load (its
    /// `--trace-dir`, `[trace] dir`): after the run, its nodes' elections,
    /// leader changes, step-downs and restarts are read from the trace
    /// files and marked on the timeline at their true (wall-clock) times,
    /// instead of polling `INFO replication` every 100 ms. Same host, or
    /// clocks in sync.
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// `--nemesis` on a cluster loadgen did not start: the server processes'
    /// pids, node 1 first (kill and pause only; partitions need `loadgen
    /// compare`'s own clusters).
    #[arg(long, value_delimiter = ',', value_name = "PID,PID,...")]
    pub nemesis_pids: Vec<u32>,
    /// With --nemesis-pids: the shell command that restarts a killed node,
    /// `{n}` replaced by its position in --nemesis-pids (1-based), e.g.
    /// 'paxoskv server --config c.toml --node-id {n}'.
    #[arg(long, value_name = "COMMAND", requires = "nemesis_pids")]
    pub nemesis_restart: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Open loop: total offered rate, ops/s.
    #[arg(long, conflicts_with_all = ["rates", "closed", "find_max"])]
    pub rate: Option<f64>,

    /// Open loop: a sweep, one run per total rate (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["closed", "find_max"])]
    pub rates: Vec<f64>,

    /// Open loop arrivals: fixed or poisson (recorded as "none" in closed loop).
    #[arg(long, default_value = "poisson")]
    pub arrivals: String,

    /// Connections (open loop: each offers rate / connections).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,

    /// Closed loop: each connection keeps --pipeline requests outstanding
    /// (latency from the actual send time).
    #[arg(long, conflicts_with = "find_max")]
    pub closed: bool,

    /// Closed loop: requests outstanding per connection [default: 1].
    #[arg(long)]
    pub pipeline: Option<usize>,

    /// Open loop: requests in flight per connection at most; more count as errors.
    #[arg(long, default_value_t = 100_000)]
    pub max_outstanding: usize,

    /// A request unanswered this long counts as a timeout.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,

    /// Fraction of GETs (the rest are SETs).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,

    /// Distinct keys [default: 100000; 1000 with --check, so that each
    /// key's history is long enough to say something and short enough to
    /// search].
    #[arg(long)]
    pub keys: Option<u64>,

    /// uniform or zipfian.
    #[arg(long, default_value = "uniform")]
    pub distribution: String,

    /// Zipfian skew, in [0, 1).
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,

    /// Every key is this long ("key:" and the zero-padded key number).
    #[arg(long, default_value_t = 16)]
    pub key_bytes: usize,

    /// Every SET writes a value this long.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,

    /// Keys share one {hash tag} per this many keys (0: no tags).
    #[arg(long, default_value_t = 0)]
    pub hash_tag_group: u64,

    /// Seconds of load before the measured window (not recorded).
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,

    /// Seconds of the measured window.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,

    /// Seeds arrivals, operations and keys (the same seed, the same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Search the highest offered rate whose p99 stays under --p99-ms.
    #[arg(long)]
    pub find_max: bool,

    /// Find-max: the p99 bound, milliseconds [default: 5].
    #[arg(long)]
    pub p99_ms: Option<f64>,

    /// Find-max: the first step's rate [default: 5000].
    #[arg(long)]
    pub rate_start: Option<f64>,

    /// Find-max: each ramp step offers this many times the last [default: 1.5].
    #[arg(long)]
    pub ramp_factor: Option<f64>,

    /// Find-max: measured seconds per step [default: 5].
    #[arg(long)]
    pub step_duration_s: Option<f64>,

    /// Find-max: warm-up seconds per step [default: 1].
    #[arg(long)]
    pub step_warmup_s: Option<f64>,

    /// Find-max: bisection steps between the last pass and the first fail [default: 3].
    #[arg(long)]
    pub bisect_steps: Option<usize>,

    /// Executors (threads) to spread the connections over.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Check every run's history: `linearizable` records each operation
    /// (SETs write unique values), sets every key to a known value before
    /// the run, reads every key back after it, and checks each key's
    /// history against a register (lincheck, the simulator's checker).
    /// Writes without a reply count as indeterminate. The verdict, lost
    /// acknowledged writes and any violating operations go in the summary
    /// and bundle.json.
    #[arg(long, value_name = "MODEL", value_parser = ["linearizable"])]
    pub check: Option<String>,

    /// Inject faults during the measured window, taking turns in this
    /// order (comma-separated): kill (SIGKILL, then restart with the same
    /// command line and data), stop (a planned restart: SIGTERM, on which a
    /// paxoskv node hands its leadership over before it exits, then the
    /// same restart), pause (SIGSTOP, then SIGCONT), partition
    /// (cut one node off from the others, both directions; clients still
    /// reach it). On `compare`'s own clusters (partitions run them in
    /// network namespaces: root); on `run`, with --nemesis-pids.
    #[arg(long, value_name = "KINDS")]
    pub nemesis: Option<String>,
    /// Seconds from the window's start to the first fault, and between a
    /// fault's end and the next one's start.
    #[arg(long, default_value_t = 5.0, requires = "nemesis")]
    pub nemesis_interval_s: f64,
    /// Seconds each fault lasts.
    #[arg(long, default_value_t = 3.0, requires = "nemesis")]
    pub nemesis_duration_s: f64,
    /// Seeds which node each fault hits [default: --seed].
    #[arg(long, requires = "nemesis")]
    pub nemesis_seed: Option<u64>,
    /// random: a node drawn with the seed; leader: shard 0's leader of the
    /// moment (from INFO replication).
    #[arg(long, default_value = "random", value_parser = ["random", "leader"], requires = "nemesis")]
    pub nemesis_target: String,
}

impl LoadArgs {
    pub fn params(&self) -> Params {
        Params {
            mode: if self.closed { Mode::Closed } else { Mode::Open }.name().into(),
            arrivals: if self.closed { "none".into() } else { self.arrivals.clone() },
            connections: self.connections,
            pipeline: if self.closed { self.pipeline.unwrap_or(1) } else { self.max_outstanding },
            read_ratio: self.read_ratio,
            keys: self.keys.unwrap_or(if self.check.is_some() { CHECK_KEYS_DEFAULT } else { KEYS_DEFAULT }),
            distribution: self.distribution.clone(),
            zipf_theta: self.zipf_theta,
            key_bytes: self.key_bytes,
            value_bytes: self.value_bytes,
            hash_tag_group: self.hash_tag_group,
            warmup_s: self.warmup_s,
            duration_s: self.duration_s,
            timeout_ms: self.timeout_ms,
            seed: self.seed,
        }
    }

    pub fn plan(&self) -> Result<Plan, String> {
        if self.pipeline.is_some() && !self.closed {
            return Err("--pipeline is for --closed; the open loop's cap is --max-outstanding".into());
        }
        let find_max_flags = [
            self.p99_ms.is_some(),
            self.rate_start.is_some(),
            self.ramp_factor.is_some(),
            self.step_duration_s.is_some(),
            self.step_warmup_s.is_some(),
            self.bisect_steps.is_some(),
        ];
        if find_max_flags.contains(&true) && !self.find_max {
            return Err("--p99-ms, --rate-start, --ramp-factor, --step-*-s and --bisect-steps need --find-max".into());
        }
        if self.closed {
            return Ok(Plan::Closed);
        }
        if self.find_max {
            let p99_ms = self.p99_ms.unwrap_or(5.0);
            if !(p99_ms.is_finite() && p99_ms > 0.0) {
                return Err(format!("--p99-ms must be positive, got {p99_ms}"));
            }
            return Ok(Plan::FindMax(FindMaxSpec {
                p99_bound_us: (p99_ms * 1000.0).round() as u64,
                rate_start: self.rate_start.unwrap_or(5000.0),
                ramp_factor: self.ramp_factor.unwrap_or(1.5),
                step_duration_s: self.step_duration_s.unwrap_or(5.0),
                step_warmup_s: self.step_warmup_s.unwrap_or(1.0),
                bisect_steps: self.bisect_steps.unwrap_or(3),
                ramp_steps_max: RAMP_STEPS_MAX,
            }));
        }
        match (self.rate, self.rates.is_empty()) {
            (Some(rate), _) => Ok(Plan::Rates(vec![rate])),
            (None, false) => Ok(Plan::Rates(self.rates.clone())),
            (None, true) => Err("say how to load: --rate OPS, --rates A,B,C, --find-max or --closed".into()),
        }
    }
}

/// `--keys` by default.
pub const KEYS_DEFAULT: u64 = 100_000;
/// `--keys` by default with `--check`.
pub const CHECK_KEYS_DEFAULT: u64 = 1_000;

impl LoadArgs {
    /// `--nemesis`'s schedule, if any.
    pub fn nemesis_spec(&self) -> Result<Option<NemesisSpec>, String> {
        let Some(kinds) = &self.nemesis else { return Ok(None) };
        let seconds = |name: &str, s: f64| -> Result<u64, String> {
            if s.is_finite() && s > 0.0 {
                Ok((s * 1e9).round() as u64)
            } else {
                Err(format!("{name} must be a positive number of seconds, got {s}"))
            }
        };
        Ok(Some(NemesisSpec {
            kinds: parse_kinds(kinds)?,
            interval_ns: seconds("--nemesis-interval-s", self.nemesis_interval_s)?,
            duration_ns: seconds("--nemesis-duration-s", self.nemesis_duration_s)?,
            seed: self.nemesis_seed.unwrap_or(self.seed),
            target_leader: self.nemesis_target == "leader",
        }))
    }

    /// What `--check` and `--nemesis` add to a bundle's labels.
    pub fn check_labels(&self) -> Vec<(String, String)> {
        let mut labels = Vec::new();
        if let Some(check) = &self.check {
            labels.push(("check".to_string(), check.clone()));
        }
        if let Some(kinds) = &self.nemesis {
            labels.push(("nemesis".to_string(), kinds.clone()));
        }
        labels
    }
}

/// The find-max ramp gives up after this many steps (5000 * 1.5^29 is
/// about 650 M ops/s, beyond anything loopback carries).
pub const RAMP_STEPS_MAX: usize = 30;

impl RunArgs {
    pub fn to_spec(&self, command: String) -> Result<RunSpec, String> {
        let nemesis = match self.load.nemesis_spec()? {
            None if !self.nemesis_pids.is_empty() => return Err("--nemesis-pids needs --nemesis".into()),
            None => None,
            Some(_) if self.nemesis_pids.is_empty() => {
                return Err("--nemesis on `loadgen run` needs --nemesis-pids (and --nemesis-restart for kill); \
                     `loadgen compare` starts clusters of its own and needs neither"
                    .into())
            }
            Some(spec) => {
                for kind in [FaultKind::Kill, FaultKind::Stop] {
                    if spec.kinds.contains(&kind) && self.nemesis_restart.is_none() {
                        return Err(format!(
                            "--nemesis {} needs --nemesis-restart (how to start a stopped node again)",
                            kind.name()
                        ));
                    }
                }
                let processes = Processes::new(self.nemesis_pids.clone(), self.nemesis_restart.clone());
                Some(Nemesis::new(spec, Box::new(processes))?)
            }
        };
        let mut labels = parse_labels(&self.labels)?;
        labels.extend(self.load.check_labels());
        Ok(RunSpec {
            target: self.target.clone(),
            params: self.load.params(),
            plan: self.load.plan()?,
            labels,
            command,
            kind: "run".into(),
            threads: self.load.threads,
            progress: true,
            trace_dir: self.trace_dir.clone(),
            check: self.load.check.is_some(),
            nemesis,
        })
    }
}

pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, String> {
    labels
        .iter()
        .map(|label| match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(format!("--label {label:?} is not KEY=VALUE")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunSpec, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        cli.run.to_spec("loadgen run".into())
    }

    #[test]
    fn flags_become_a_plan_and_params() {
        let spec = parse(&["--target", "resp://h:1", "--rates", "10,20", "--label", "nodes=3"]).unwrap();
        assert_eq!(spec.plan, Plan::Rates(vec![10.0, 20.0]));
        assert_eq!(spec.params.mode, "open");
        assert_eq!(spec.params.pipeline, 100_000);
        assert_eq!(spec.labels["nodes"], "3");

        let spec = parse(&["--target", "resp://h:1", "--closed", "--connections", "50", "--pipeline", "16"]).unwrap();
        assert_eq!(spec.plan, Plan::Closed);
        assert_eq!((spec.params.mode.as_str(), spec.params.connections, spec.params.pipeline), ("closed", 50, 16));

        let spec = parse(&["--target", "resp://h:1", "--find-max", "--p99-ms", "2.5"]).unwrap();
        match spec.plan {
            Plan::FindMax(find_max) => assert_eq!((find_max.p99_bound_us, find_max.rate_start), (2_500, 5000.0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contradictory_or_missing_flags_are_refused() {
        assert!(parse(&["--target", "resp://h:1"]).is_err());
        assert!(parse(&["--target", "resp://h:1", "--rate", "1", "--closed"]).is_err());
        assert!(parse(&["--target", "resp://h:1", "--rate", "1", "--pipeline", "4"]).is_err());
        assert!(parse(&["--target", "resp://h:1", "--rate", "1", "--label", "novalue"]).is_err());
        assert!(parse(&["--target", "resp://h:1", "--rate", "1", "--p99-ms", "3"]).is_err());
    }
}
