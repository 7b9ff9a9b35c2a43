//! The library-style entry point: one call runs a whole plan (a rate, a
//! sweep of rates, a closed-loop run, or a saturation search) against a
//! target and writes its bundle. `loadgen run` is a thin shell over it, and
//! `compare`/`quickstart` call it once per (repeat, profile).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::bundle::{Bundle, Params, Run, Sustainable, BUNDLE_FORMAT_VERSION};
use crate::engine::{self, seconds_to_ns, RunConfig};
use crate::findmax::{next_step, step_passed, Decision, FindMaxSpec, StepOutcome};
use crate::inflight::Mode;
use crate::machine;
use crate::output::write_bundle;
use crate::report::{self, build_run, Progress, RunHistograms};
use crate::schedule::Arrivals;
use crate::target::Target;
use crate::workload::WorkloadSpec;

/// After the window closes, outstanding replies are awaited this long at
/// most (or the timeout, if shorter); what is still unanswered then counts
/// as a timeout with its latency so far.
pub const DRAIN_MS_MAX: u64 = 1000;
/// Pause between the runs of a bundle, so that one run's backlog in the
/// server does not land in the next run.
const RUN_SETTLE: Duration = Duration::from_millis(500);

/// Everything `run_bundle` needs.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// `resp://host:port[,host:port...]`.
    pub target: String,
    /// The workload and load shape, recorded as is in the bundle (except
    /// under find-max, where warmup_s/duration_s become the step's).
    /// `mode` must be "closed" for `Plan::Closed` and "open" otherwise; in
    /// open loop `pipeline` is the per-connection outstanding cap.
    pub params: Params,
    pub plan: Plan,
    /// Facts about the system under test (`--label key=value`).
    pub labels: BTreeMap<String, String>,
    /// The command line to record.
    pub command: String,
    /// The bundle's `kind`: "run" or "compare".
    pub kind: String,
    /// Executors (threads) the connections are spread over; 1 by default.
    pub threads: usize,
    /// Live progress line, one line per finished run and the summary table
    /// on stdout; false for a silent run.
    pub progress: bool,
    /// Read leader changes from these protocol trace files (`engine::trace_notes`)
    /// instead of polling `INFO`.
    pub trace_dir: Option<std::path::PathBuf>,
    /// `--check linearizable`.
    pub check: bool,
    /// `--nemesis`: faults during every run's measured window.
    pub nemesis: Option<std::sync::Arc<crate::nemesis::Nemesis>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Open loop, one run per total offered rate, in order.
    Rates(Vec<f64>),
    /// One closed-loop run: `params.connections` x `params.pipeline`.
    Closed,
    /// Open loop, ramping and bisecting to the sustainable rate.
    FindMax(FindMaxSpec),
}

/// Runs `spec.plan` and writes the bundle into `out` (after every run, so
/// an interrupted plan leaves what it measured). Fails if the target is
/// unreachable or the spec invalid; a failure after some runs still leaves
/// their bundle in `out`.
pub fn run_bundle(spec: &RunSpec, out: &Path) -> Result<Bundle, String> {
    let target = Target::parse(&spec.target)?;
    let mut params = spec.params.clone();
    if let Plan::FindMax(find_max) = &spec.plan {
        find_max.validate()?;
        params.warmup_s = find_max.step_warmup_s;
        params.duration_s = find_max.step_duration_s;
    }
    let expected_mode = if spec.plan == Plan::Closed { "closed" } else { "open" };
    if params.mode != expected_mode {
        return Err(format!("params.mode is {:?} but the plan is {expected_mode} loop", params.mode));
    }
    let mut base = base_config(&target, &params, spec.threads)?;
    base.trace_dir = spec.trace_dir.clone();
    base.check = spec.check;
    base.nemesis = spec.nemesis.clone();
    if (spec.check || spec.nemesis.is_some()) && matches!(spec.plan, Plan::FindMax(_)) {
        return Err("--check and --nemesis need a fixed load (--rate, --rates or --closed), not --find-max".into());
    }
    if spec.check && !matches!(target, Target::Resp { .. }) {
        return Err("--check linearizable needs a resp:// target".into());
    }

    let mut bundle = Bundle {
        format_version: BUNDLE_FORMAT_VERSION,
        kind: spec.kind.clone(),
        command: spec.command.clone(),
        git_commit: machine::git_commit(),
        machine: machine::machine_facts(),
        started_unix_s: machine::unix_now_s(),
        target: spec.target.clone(),
        labels: spec.labels.clone(),
        params,
        runs: Vec::new(),
        sustainable: None,
        noise: None,
    };
    let mut histograms = Vec::new();
    let outcome = execute_plan(spec, &base, &mut bundle, &mut histograms, out);
    if outcome.is_err() && bundle.runs.is_empty() {
        return outcome.map(|()| bundle);
    }
    write_bundle(out, &bundle, &histograms)?;
    if spec.progress && !bundle.runs.is_empty() {
        println!("\n{}", report::summary_table(&bundle));
        if let Some(stages) = report::stage_table(&bundle) {
            println!("{stages}");
        }
    }
    match outcome {
        Ok(()) => Ok(bundle),
        Err(e) => Err(format!("{e} (the runs before it are in {})", out.display())),
    }
}

fn execute_plan(
    spec: &RunSpec,
    base: &RunConfig,
    bundle: &mut Bundle,
    histograms: &mut Vec<RunHistograms>,
    out: &Path,
) -> Result<(), String> {
    let mut record = |bundle: &mut Bundle, run: Run, run_histograms: RunHistograms| -> Result<(), String> {
        bundle.runs.push(run);
        histograms.push(run_histograms);
        write_bundle(out, bundle, histograms)
    };
    match &spec.plan {
        Plan::Rates(rates) => {
            if rates.is_empty() {
                return Err("no rate to run".into());
            }
            for (index, &rate) in rates.iter().enumerate() {
                settle(index);
                let (run, run_histograms) = execute_run(spec, base, index, format!("rate {rate:.0}"), Some(rate))?;
                record(bundle, run, run_histograms)?;
            }
        }
        Plan::Closed => {
            let label = format!("closed {}x{}", base.connections, base.pipeline);
            let (run, run_histograms) = execute_run(spec, base, 0, label, None)?;
            record(bundle, run, run_histograms)?;
        }
        Plan::FindMax(find_max) => {
            let mut steps = Vec::new();
            loop {
                match next_step(find_max, &steps) {
                    Decision::Run(rate) => {
                        let index = steps.len();
                        settle(index);
                        let label = format!("find-max {rate:.0}");
                        let (mut run, run_histograms) = execute_run(spec, base, index, label, Some(rate))?;
                        let step = step_outcome(&run, rate);
                        run.passed = Some(step_passed(find_max, &step));
                        if spec.progress {
                            println!("{}", report::run_line(&run));
                        }
                        steps.push(step);
                        record(bundle, run, run_histograms)?;
                    }
                    Decision::Done(best) => {
                        bundle.sustainable = best.map(|index| Sustainable {
                            p99_bound_us: find_max.p99_bound_us,
                            offered_ops_s: steps[index].offered_ops_s,
                            achieved_ops_s: steps[index].achieved_ops_s,
                            p99_us: steps[index].p99_us,
                        });
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

fn settle(run_index: usize) {
    if run_index > 0 {
        std::thread::sleep(RUN_SETTLE);
    }
}

/// What find-max judges a step by.
pub fn step_outcome(run: &Run, offered_ops_s: f64) -> StepOutcome {
    let all = &run.ops["all"];
    let requests = all.ok + all.errors + all.timeouts;
    StepOutcome {
        offered_ops_s,
        achieved_ops_s: run.achieved_ops_s,
        p99_us: all.p99_us,
        error_fraction: if requests == 0 { 1.0 } else { all.errors as f64 / requests as f64 },
    }
}

fn execute_run(
    spec: &RunSpec,
    base: &RunConfig,
    index: usize,
    label: String,
    rate: Option<f64>,
) -> Result<(Run, RunHistograms), String> {
    if let Some(rate) = rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate {rate} is not a positive number of ops/s"));
        }
    }
    let config = RunConfig { rate_ops_s: rate, ..base.clone() };
    let mut progress =
        Progress::new(spec.progress, &label, rate, config.warmup_ns as f64 / 1e9, config.duration_ns as f64 / 1e9);
    let output = match engine::run(&config, &mut |second| progress.second(second)) {
        Ok(output) => output,
        Err(e) => {
            progress.finish("");
            return Err(e);
        }
    };
    let (run, histograms) = build_run(index, label, rate, &output);
    if !run.faults.is_empty() {
        write_fault_trace(spec, &run, index)?;
    }
    // Find-max prints its own line, with the verdict.
    let line = if matches!(spec.plan, Plan::FindMax(_)) { String::new() } else { report::run_line(&run) };
    progress.finish(&line);
    Ok((run, histograms))
}

/// The run's faults as a `paxoskv-trace` file next to the cluster's own
/// (`paxoskv viz DIR/*.jsonl` draws them together); none without a trace
/// directory.
fn write_fault_trace(spec: &RunSpec, run: &Run, index: usize) -> Result<(), String> {
    let Some(dir) = &spec.trace_dir else { return Ok(()) };
    let nodes: Vec<u32> = spec
        .labels
        .get("nodes")
        .and_then(|n| n.parse().ok())
        .map_or_else(|| run.faults.iter().map(|f| f.node).collect(), |n: u32| (1..=n).collect());
    let text = crate::nemesis::trace_lines(&run.faults, &nodes, &spec.command);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(format!("nemesis-run{index}.jsonl"));
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The engine configuration shared by every run of a plan (all but the rate).
fn base_config(target: &Target, params: &Params, threads: usize) -> Result<RunConfig, String> {
    let mode = match params.mode.as_str() {
        "open" => Mode::Open,
        "closed" => Mode::Closed,
        other => return Err(format!("unknown mode {other:?}")),
    };
    if params.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if params.pipeline == 0 {
        return Err("--pipeline and --max-outstanding must be at least 1".into());
    }
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if !(params.warmup_s >= 0.0 && params.duration_s > 0.0) {
        return Err("--duration-s must be positive and --warmup-s not negative".into());
    }
    if params.timeout_ms == 0 {
        return Err("--timeout-ms must be positive".into());
    }
    let arrivals = match mode {
        Mode::Open => Arrivals::parse(&params.arrivals)?,
        Mode::Closed => Arrivals::Fixed, // unused: the closed loop has no schedule
    };
    let workload = WorkloadSpec::from_params(params)?;
    let addresses = target.resolve()?;
    let timeout_ns = params.timeout_ms * 1_000_000;
    Ok(RunConfig {
        target: target.clone(),
        addresses,
        mode,
        arrivals,
        rate_ops_s: None,
        connections: params.connections,
        pipeline: params.pipeline,
        max_outstanding: params.pipeline,
        workload,
        warmup_ns: seconds_to_ns(params.warmup_s),
        duration_ns: seconds_to_ns(params.duration_s),
        timeout_ns,
        drain_ns: timeout_ns.min(DRAIN_MS_MAX * 1_000_000),
        seed: params.seed,
        threads,
        trace_dir: None,
        check: false,
        nemesis: None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};

    use super::*;
    use crate::engine::tests_support;
    use crate::recorder::Window;
    use crate::resp::{parse_reply, Reply};
    use crate::rng::SplitMix64;
    use crate::schedule::{Schedule, SCHEDULE_STREAM};

    #[derive(Clone, Copy, PartialEq)]
    enum Server {
        /// +OK to SET, a null bulk to GET.
        Answers,
        /// An error reply to SET.
        RefusesSets,
        /// Reads and never replies.
        Silent,
    }

    /// A RESP server on a thread per connection (threads end when the
    /// client disconnects; the accepting one with the test process).
    fn fake_server(behaviour: Server) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut pending = Vec::new();
                    let mut chunk = [0u8; 16 * 1024];
                    loop {
                        let n = match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&chunk[..n]);
                        let mut replies = Vec::new();
                        let mut used_total = 0;
                        while let Ok(Some((request, used))) = parse_reply(&pending[used_total..]) {
                            used_total += used;
                            let is_set =
                                matches!(&request, Reply::Array(items) if items.first() == Some(&Reply::Bulk(b"SET")));
                            match (behaviour, is_set) {
                                (Server::Silent, _) => {}
                                (Server::RefusesSets, true) => replies.extend_from_slice(b"-ERR no sets here\r\n"),
                                (_, true) => replies.extend_from_slice(b"+OK\r\n"),
                                (_, false) => replies.extend_from_slice(b"$-1\r\n"),
                            }
                        }
                        pending.drain(..used_total);
                        if stream.write_all(&replies).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    fn spec(address: SocketAddr, plan: Plan, params: Params) -> RunSpec {
        RunSpec {
            target: format!("resp://{address}"),
            params,
            plan,
            labels: BTreeMap::from([("test".to_string(), "yes".to_string())]),
            command: "test".into(),
            kind: "run".into(),
            threads: 1,
            progress: false,
            trace_dir: None,
            check: false,
            nemesis: None,
        }
    }

    fn open_params() -> Params {
        Params {
            arrivals: "fixed".into(),
            connections: 2,
            warmup_s: 0.2,
            duration_s: 1.0,
            seed: 7,
            ..tests_support::params()
        }
    }

    /// The requests the schedules intend inside the measured window, as the
    /// engine draws them.
    fn scheduled_in_window(params: &Params, rate: f64) -> u64 {
        let window = Window {
            start_ns: seconds_to_ns(params.warmup_s),
            end_ns: seconds_to_ns(params.warmup_s + params.duration_s),
        };
        let mut count = 0;
        for connection in 0..params.connections {
            let seed = SplitMix64::derive(params.seed, SCHEDULE_STREAM, connection as u64).next_u64();
            let mut schedule =
                Schedule::new(Arrivals::parse(&params.arrivals).unwrap(), rate / params.connections as f64, seed);
            while schedule.peek_ns() < window.end_ns {
                count += window.contains(schedule.peek_ns()) as u64;
                schedule.advance();
            }
        }
        count
    }

    fn out_dir(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("loadgen-run-test-{name}-{}", std::process::id()))
    }

    #[test]
    fn every_scheduled_request_is_answered_counted_once_and_written() {
        let params = open_params();
        let out = out_dir("answers");
        let bundle = run_bundle(&spec(fake_server(Server::Answers), Plan::Rates(vec![2000.0]), params.clone()), &out)
            .unwrap_or_else(|e| panic!("seed {}: {e}", params.seed));
        let all = &bundle.runs[0].ops["all"];
        let expected = scheduled_in_window(&params, 2000.0);
        assert_eq!(all.ok + all.errors + all.timeouts, expected, "seed {}", params.seed);
        assert_eq!(all.errors, 0);
        let get = &bundle.runs[0].ops["get"];
        let set = &bundle.runs[0].ops["set"];
        assert_eq!(get.ok + set.ok, all.ok);
        assert_eq!(bundle.labels["test"], "yes");
        for file in ["bundle.json", "summary.csv", "run-0-all.hdr", "run-0-all.hgrm", "run-0-get.hdr", "run-0-set.hgrm"]
        {
            assert!(out.join(file).exists(), "{file} missing");
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn error_replies_count_as_errors_with_their_latency() {
        let params = open_params();
        let out = out_dir("refuses");
        let bundle =
            run_bundle(&spec(fake_server(Server::RefusesSets), Plan::Rates(vec![1000.0]), params.clone()), &out)
                .unwrap();
        let (get, set) = (&bundle.runs[0].ops["get"], &bundle.runs[0].ops["set"]);
        assert_eq!((get.errors, set.ok), (0, 0), "seed {}", params.seed);
        assert!(set.errors > 0);
        assert_eq!(bundle.runs[0].ops["all"].errors, set.errors);
        std::fs::remove_dir_all(&out).unwrap();
    }

    /// A server that never answers: each connection fills its outstanding
    /// cap, those requests time out, every later one is refused as an error;
    /// none is skipped.
    #[test]
    fn the_outstanding_cap_turns_excess_requests_into_errors() {
        let params = Params { pipeline: 5, warmup_s: 0.0, timeout_ms: 100, ..open_params() };
        let out = out_dir("silent");
        let bundle =
            run_bundle(&spec(fake_server(Server::Silent), Plan::Rates(vec![1000.0]), params.clone()), &out).unwrap();
        let all = &bundle.runs[0].ops["all"];
        let expected = scheduled_in_window(&params, 1000.0);
        assert_eq!(all.timeouts, 2 * 5, "seed {}", params.seed);
        assert_eq!(all.errors, expected - 10, "seed {}", params.seed);
        assert_eq!(all.ok, 0);
        assert!(all.p50_us >= 100_000, "timeouts are recorded with their latency so far");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn closed_loop_runs_and_an_unreachable_target_fails() {
        let params = Params { mode: "closed".into(), pipeline: 4, warmup_s: 0.1, duration_s: 0.5, ..open_params() };
        let out = out_dir("closed");
        let bundle = run_bundle(&spec(fake_server(Server::Answers), Plan::Closed, params.clone()), &out).unwrap();
        let run = &bundle.runs[0];
        assert_eq!((run.label.as_str(), run.offered_ops_s), ("closed 2x4", None));
        assert!(run.ops["all"].ok > 0 && run.ops["all"].errors == 0);
        std::fs::remove_dir_all(&out).unwrap();

        // Bind then drop: a port nothing listens on.
        let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let failed = run_bundle(&spec(closed_port, Plan::Rates(vec![100.0]), open_params()), &out_dir("unreachable"));
        assert!(failed.unwrap_err().contains("cannot connect"));
        assert!(!out_dir("unreachable").exists(), "no bundle for a run that never started");
    }
}
