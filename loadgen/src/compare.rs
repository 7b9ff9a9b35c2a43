//! `loadgen compare tuning/*.toml`: the same workload against a fresh local
//! cluster per profile, profiles interleaved (A, B, C, A, B, C, ...) for
//! several repeats, summarized as medians, spread and ratios against the
//! reference profile (`baseline` if present, else the first).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bundle::{Bundle, Comparison, ProfileResult, RepeatResult, BUNDLE_FORMAT_VERSION};

/// One profile: a paxoskv flag set (a file in `tuning/`), or another
/// system to measure the same way (`target`, with optional `start` and
/// `stop` shell commands run around each measurement).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `paxoskv cluster` flags: `name = value` becomes `--name value`.
    #[serde(default)]
    pub flags: BTreeMap<String, toml::Value>,
    /// An external system's target (e.g. `resp://127.0.0.1:6390`); when set,
    /// no paxoskv cluster is started for this profile.
    #[serde(default)]
    pub target: Option<String>,
    /// Run (with `sh -c`, from the current directory) before each measurement.
    #[serde(default)]
    pub start: Option<String>,
    /// Run after each measurement.
    #[serde(default)]
    pub stop: Option<String>,
    /// Facts recorded in the run bundles (durability, members, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--nemesis` on an external system (kill and pause): a shell command,
    /// run after `start`, that prints its server processes' pids, node 1
    /// first ...
    #[serde(default)]
    pub nemesis_pids: Option<String>,
    /// ... and the command that restarts a killed node in the foreground
    /// (`{n}`: its position in that list, from 1).
    #[serde(default)]
    pub nemesis_restart: Option<String>,
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let profile: Profile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if profile.name.is_empty() || profile.name.contains(['/', ' ']) {
            return Err(format!("{}: name must be non-empty without spaces or slashes", path.display()));
        }
        Ok(profile)
    }

    /// The flags as command-line pairs.
    pub fn flag_pairs(&self) -> Vec<(String, String)> {
        self.flags
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (name.clone(), text)
            })
            .collect()
    }

    pub fn settings(&self) -> BTreeMap<String, String> {
        self.flag_pairs().into_iter().collect()
    }
}

/// The headline of one run bundle: the sustainable rate under `--find-max`,
/// else the highest achieved rate; with that run's p50 and p99.
pub fn headline(bundle: &Bundle) -> (f64, u64, u64, u64) {
    let errors = |run: &crate::bundle::Run| run.ops.get("all").map_or(0, |o| o.errors + o.timeouts);
    if let Some(s) = &bundle.sustainable {
        let run = bundle.runs.iter().find(|r| r.offered_ops_s == Some(s.offered_ops_s));
        let p50 = run.and_then(|r| r.ops.get("all")).map_or(0, |o| o.p50_us);
        return (s.achieved_ops_s, p50, s.p99_us, run.map_or(0, errors));
    }
    let best = bundle.runs.iter().max_by(|a, b| a.achieved_ops_s.total_cmp(&b.achieved_ops_s));
    match best {
        Some(run) => {
            let all = run.ops.get("all").cloned().unwrap_or_default();
            (run.achieved_ops_s, all.p50_us, all.p99_us, errors(run))
        }
        None => (0.0, 0, 0, 0),
    }
}

fn median_f64(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn median_u64(values: &mut [u64]) -> u64 {
    let mut as_f: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    median_f64(&mut as_f).round() as u64
}

/// Summarize interleaved results: `results[repeat][profile]` is the run
/// bundle of that profile in that repeat (and its path relative to the
/// comparison directory).
pub fn summarize(profiles: &[Profile], results: &[Vec<(String, Bundle)>], reference: usize) -> Vec<ProfileResult> {
    let mut out = Vec::new();
    for (p, profile) in profiles.iter().enumerate() {
        let repeats: Vec<RepeatResult> = results
            .iter()
            .enumerate()
            .filter_map(|(r, row)| row.get(p).map(|(path, b)| (r, path, b)))
            .map(|(r, path, bundle)| {
                let (throughput, p50, p99, errors) = headline(bundle);
                let checks: Vec<&crate::check::CheckReport> =
                    bundle.runs.iter().filter_map(|r| r.check.as_ref()).collect();
                RepeatResult {
                    repeat: r + 1,
                    bundle: path.clone(),
                    throughput_ops_s: throughput,
                    p50_us: p50,
                    p99_us: p99,
                    errors,
                    check: worst_verdict(&checks),
                    lost_acknowledged_writes: checks.iter().map(|c| c.lost_acknowledged_writes).sum(),
                    faults: bundle.runs.iter().flat_map(|r| r.faults.clone()).collect(),
                    noise: bundle.noise.clone(),
                    noisy: None,
                    last_pass_ops_s: bundle.sustainable.as_ref().map(|s| s.offered_ops_s),
                    first_fail_ops_s: first_fail(bundle),
                }
            })
            .collect();
        let mut throughputs: Vec<f64> = repeats.iter().map(|r| r.throughput_ops_s).collect();
        let mut p50s: Vec<u64> = repeats.iter().map(|r| r.p50_us).collect();
        let mut p99s: Vec<u64> = repeats.iter().map(|r| r.p99_us).collect();
        // Ratios are taken within a repeat (side by side), then summarized.
        let mut ratios: Vec<f64> = results
            .iter()
            .filter_map(|row| {
                let mine = headline(&row.get(p)?.1).0;
                let theirs = headline(&row.get(reference)?.1).0;
                (theirs > 0.0).then(|| mine / theirs)
            })
            .collect();
        let throughput_median = median_f64(&mut throughputs);
        out.push(ProfileResult {
            name: profile.name.clone(),
            description: profile.description.clone(),
            settings: profile.settings(),
            throughput_median,
            throughput_min: throughputs.iter().copied().fold(f64::INFINITY, f64::min).min(throughput_median),
            throughput_max: throughputs.iter().copied().fold(0.0, f64::max),
            p50_us_median: median_u64(&mut p50s),
            p99_us_median: median_u64(&mut p99s),
            ratio_to_reference: median_f64(&mut ratios),
            ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min).min(f64::MAX),
            ratio_max: ratios.iter().copied().fold(0.0, f64::max),
            repeats,
        });
    }
    out
}

/// Find-max: the lowest failing step above the last passing one.
fn first_fail(bundle: &Bundle) -> Option<f64> {
    let floor = bundle.sustainable.as_ref().map_or(0.0, |s| s.offered_ops_s);
    bundle
        .runs
        .iter()
        .filter(|r| r.passed == Some(false))
        .filter_map(|r| r.offered_ops_s)
        .filter(|&rate| rate > floor)
        .min_by(f64::total_cmp)
}

/// Flags the repeats whose noise probe is far worse than the comparison's
/// median (see noise.rs).
fn flag_noisy(profiles: &mut [ProfileResult]) {
    let probes: Vec<crate::noise::NoiseProbe> =
        profiles.iter().flat_map(|p| &p.repeats).filter_map(|r| r.noise.clone()).collect();
    let all: Vec<&crate::noise::NoiseProbe> = probes.iter().collect();
    for repeat in profiles.iter_mut().flat_map(|p| p.repeats.iter_mut()) {
        repeat.noisy = repeat.noise.as_ref().and_then(|probe| crate::noise::noisy(probe, &all));
    }
}

/// The worst of several `--check` verdicts: any violation, else any
/// unknown, else linearizable; none without checks.
fn worst_verdict(checks: &[&crate::check::CheckReport]) -> Option<String> {
    let rank = |v: &str| match v {
        "linearizable" => 0,
        "unknown" => 1,
        "not checked" => 2,
        _ => 3,
    };
    checks.iter().map(|c| c.verdict.as_str()).max_by_key(|v| rank(v)).map(str::to_string)
}

/// The comparison's table, as Markdown; with a check column when the runs
/// were checked.
pub fn table(comparison: &Comparison) -> String {
    let mut t = String::new();
    let checked = comparison.profiles.iter().flat_map(|p| &p.repeats).any(|r| r.check.is_some());
    let noise = comparison.profiles.iter().flat_map(|p| &p.repeats).any(|r| r.noise.is_some());
    let _ = write!(
        t,
        "| profile | throughput ops/s, median (min - max) | ratio to {} (min - max) | p50 ms | p99 ms | errors |",
        comparison.reference
    );
    let _ = writeln!(
        t,
        "{}{}",
        if noise { " noisy repeats |" } else { "" },
        if checked { " check | lost acknowledged writes |" } else { "" }
    );
    let _ = writeln!(
        t,
        "| --- | ---: | ---: | ---: | ---: | ---: |{}{}",
        if noise { " --- |" } else { "" },
        if checked { " --- | ---: |" } else { "" }
    );
    for p in &comparison.profiles {
        let errors: u64 = p.repeats.iter().map(|r| r.errors).sum();
        let _ = write!(
            t,
            "| `{}` | {:.0} ({:.0} - {:.0}) | {:.2}x ({:.2} - {:.2}) | {:.2} | {:.2} | {errors} |",
            p.name,
            p.throughput_median,
            p.throughput_min,
            p.throughput_max,
            p.ratio_to_reference,
            p.ratio_min,
            p.ratio_max,
            p.p50_us_median as f64 / 1000.0,
            p.p99_us_median as f64 / 1000.0,
        );
        if noise {
            let noisy: Vec<String> =
                p.repeats.iter().filter(|r| r.noisy.is_some()).map(|r| r.repeat.to_string()).collect();
            let _ = write!(t, " {} |", if noisy.is_empty() { "none".to_string() } else { noisy.join(", ") });
        }
        if checked {
            let verdicts: Vec<&str> = p.repeats.iter().map(|r| r.check.as_deref().unwrap_or("-")).collect();
            let lost: u64 = p.repeats.iter().map(|r| r.lost_acknowledged_writes).sum();
            let _ = write!(t, " {} | {lost} |", verdicts.join(", "));
        }
        t.push('\n');
    }
    t
}

/// Find-max's stability over repeats: the spread of the last passing and
/// the first failing steps.
fn stability_section(comparison: &Comparison) -> String {
    let mut md = String::new();
    for p in &comparison.profiles {
        let passes: Vec<f64> = p.repeats.iter().filter_map(|r| r.last_pass_ops_s).collect();
        let fails: Vec<f64> = p.repeats.iter().filter_map(|r| r.first_fail_ops_s).collect();
        if passes.is_empty() && fails.is_empty() {
            continue;
        }
        let range = |v: &[f64]| -> String {
            let (lo, hi) = (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max));
            match v.len() {
                0 => "none".into(),
                _ if lo > 0.0 => format!("{lo:.0} - {hi:.0} ({:.1}x spread)", hi / lo),
                _ => format!("{lo:.0} - {hi:.0}"),
            }
        };
        let _ = writeln!(
            md,
            "| `{}` | {} of {} | {} | {} |",
            p.name,
            passes.len(),
            p.repeats.len(),
            range(&passes),
            range(&fails)
        );
    }
    if md.is_empty() {
        return md;
    }
    format!(
        "\n## How stable find-max is\n\nOver the repeats: the highest step that passed and the lowest that failed \
         above it. A wide spread means the answer depends on the moment (tail stalls), not only on the system.\n\n\
         | profile | repeats that passed a step | last pass, ops/s | first fail, ops/s |\n| --- | ---: | ---: | ---: |\n{md}"
    )
}

/// Each repeat's noise probe, flagged when far off the others.
fn noise_section(comparison: &Comparison) -> String {
    let mut md = String::new();
    for p in &comparison.profiles {
        for r in &p.repeats {
            let Some(probe) = &r.noise else { continue };
            let flag = r.noisy.as_ref().map_or(String::new(), |why| format!(" **noisy: {why}**"));
            let _ = writeln!(md, "- `{}` repeat {}: {}{flag}", p.name, r.repeat, crate::noise::text(probe));
        }
    }
    if md.is_empty() {
        return md;
    }
    format!(
        "\n## Noise\n\nBefore each measurement the previous system's files are deleted, everything is synced and \
         loadgen waits until the data disk is idle; then a probe: 4 KiB write + fdatasync on the data disk, loopback \
         TCP round trip, CPU steal. A repeat is flagged when its fsync or loopback p50 or p99 is over 3x the \
         comparison's (lower) median or steal is over 5%.\n\n{md}"
    )
}

/// The faults section of a comparison's README: every fault of every
/// repeat with its recovery, and where each run's timeline chart is.
fn faults_section(comparison: &Comparison) -> String {
    let mut md = String::new();
    for p in &comparison.profiles {
        for r in &p.repeats {
            if r.faults.is_empty() {
                continue;
            }
            let _ = writeln!(md, "\n`{}` repeat {} ([timeline]({}/timeline.svg)):\n", p.name, r.repeat, r.bundle);
            let _ = writeln!(md, "| fault | node | from s | to s | recovered after s |");
            let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
            for f in &r.faults {
                let recovered = f.recovered_s.map_or("not in the window".to_string(), |s| format!("{s:.1}"));
                let failed = f.error.as_ref().map_or(String::new(), |e| format!(" (failed: {e})"));
                let _ = writeln!(
                    md,
                    "| {}{failed} | {} | {:.1} | {:.1} | {recovered} |",
                    f.kind, f.node, f.start_s, f.end_s
                );
            }
        }
    }
    if md.is_empty() {
        return md;
    }
    format!(
        "\n## Faults\n\nRecovered: the end of the first second from the fault's start with no errors, at least \
         90% of the median per-second throughput and a p99 within 2x of the median per-second p99 before \
         the fault.\n{md}"
    )
}

/// Write comparison.json, comparison.csv and README.md into `dir`.
pub fn write_comparison(dir: &Path, comparison: &Comparison, charts: &[PathBuf]) -> Result<(), String> {
    let json = serde_json::to_string_pretty(comparison).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("comparison.json"), json).map_err(|e| format!("writing comparison.json: {e}"))?;
    let mut csv = String::from("profile,repeat,throughput_ops_s,p50_us,p99_us,errors,bundle\n");
    for p in &comparison.profiles {
        for r in &p.repeats {
            let _ = writeln!(
                csv,
                "{},{},{:.1},{},{},{},{}",
                p.name, r.repeat, r.throughput_ops_s, r.p50_us, r.p99_us, r.errors, r.bundle
            );
        }
    }
    std::fs::write(dir.join("comparison.csv"), csv).map_err(|e| format!("writing comparison.csv: {e}"))?;
    let mut md = String::new();
    let _ = writeln!(md, "# Profile comparison\n");
    let _ = writeln!(md, "Produced by:\n\n```\n{}\n```\n", comparison.command);
    let m = &comparison.machine;
    let params = &comparison.params;
    let _ = writeln!(
        md,
        "Commit `{}`, {} cores, kernel {}. Workload: {} loop, {} connections, read ratio {}, {} keys ({}), {}-byte values; warm-up {} s, measured {} s per run. Each repeat runs every profile once, in order, each against a fresh 3-node local cluster.\n",
        comparison.git_commit,
        m.cores,
        m.kernel,
        params.mode,
        params.connections,
        params.read_ratio,
        params.keys,
        params.distribution,
        params.value_bytes,
        params.warmup_s,
        params.duration_s
    );
    md.push_str(&table(comparison));
    md.push_str(&faults_section(comparison));
    md.push_str(&stability_section(comparison));
    md.push_str(&noise_section(comparison));
    md.push('\n');
    for p in &comparison.profiles {
        let settings: Vec<String> = p.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(md, "- `{}`: {} ({})", p.name, p.description, settings.join(", "));
    }
    if !charts.is_empty() {
        md.push('\n');
        for chart in charts {
            if let Some(name) = chart.file_name().and_then(|n| n.to_str()) {
                let _ = writeln!(md, "![{name}]({name})");
            }
        }
    }
    std::fs::write(dir.join("README.md"), md).map_err(|e| format!("writing README.md: {e}"))?;
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    loadgen compare tuning/*.toml --repeats 3 --find-max --p99-ms 5\n  \
    loadgen compare tuning/baseline.toml tuning/all.toml --rate 20000 --duration-s 10\n\n\
    Each repeat runs every profile once, in the order given, each against a fresh local \
    cluster (or the profile's external target). The comparison bundle gets comparison.json, \
    comparison.csv, README.md with the table, charts, and one run bundle per measurement in runs/.")]
pub struct CompareArgs {
    /// Profile files (TOML), e.g. tuning/*.toml.
    #[arg(required = true)]
    pub profiles: Vec<PathBuf>,
    /// Rounds of (every profile once); medians and spread are over these.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// The comparison bundle directory [default: results/compare/<unix-seconds>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// paxoskv nodes per cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Client ports of the clusters started here are BASE+1..BASE+nodes.
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
    /// The paxoskv binary [default: beside loadgen, built by cargo if run through it].
    #[arg(long)]
    pub paxoskv: Option<PathBuf>,
    /// The profile ratios are taken against [default: `baseline` if given, else the first].
    #[arg(long)]
    pub reference: Option<String>,
    /// Where the clusters keep their data (a real disk: fsync must mean something).
    #[arg(long, default_value = "/var/tmp/paxoskv-compare")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub load: crate::args::LoadArgs,
}

fn shell(command: &str) -> Result<(), String> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .status()
        .map_err(|e| format!("running `{command}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{command}` failed ({status})"))
    }
}

/// The processes of an external profile's system, for `--nemesis`.
fn external_faults(profile: &Profile) -> Result<crate::nemesis::Processes, String> {
    let (Some(pids), Some(restart)) = (&profile.nemesis_pids, &profile.nemesis_restart) else {
        return Err(format!(
            "profile {}: --nemesis on an external system needs nemesis_pids and nemesis_restart in its profile",
            profile.name
        ));
    };
    let output =
        std::process::Command::new("sh").arg("-c").arg(pids).output().map_err(|e| format!("running `{pids}`: {e}"))?;
    let pids: Vec<u32> =
        String::from_utf8_lossy(&output.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect();
    if !output.status.success() || pids.is_empty() {
        return Err(format!(
            "profile {}: `{}` printed no pids",
            profile.name,
            profile.nemesis_pids.as_deref().unwrap_or("")
        ));
    }
    Ok(crate::nemesis::Processes::new(pids, Some(restart.clone())))
}

/// Set up a profile's system, measure, tear it down.
fn measure(args: &CompareArgs, profile: &Profile, out: &Path, paxoskv: Option<&Path>) -> Result<Bundle, String> {
    let params = args.load.params();
    let plan = args.load.plan()?;
    let nemesis = args.load.nemesis_spec()?;
    let mut labels = profile.labels.clone();
    labels.insert("profile".into(), profile.name.clone());
    labels.extend(args.load.check_labels());
    let spec_for = |target: String,
                    labels: &BTreeMap<String, String>,
                    trace_dir: Option<PathBuf>,
                    nemesis: Option<std::sync::Arc<crate::nemesis::Nemesis>>| crate::run::RunSpec {
        target,
        params: params.clone(),
        plan: plan.clone(),
        labels: labels.clone(),
        command: crate::machine::command_line(),
        kind: "compare".into(),
        threads: args.load.threads,
        trace_dir,
        progress: true,
        check: args.load.check.is_some(),
        nemesis,
    };
    if let Some(target) = &profile.target {
        if let Some(start) = &profile.start {
            shell(start)?;
        }
        // On any failure the system is still stopped below.
        let nemesis = nemesis
            .map(|spec| {
                external_faults(profile).and_then(|faults| crate::nemesis::Nemesis::new(spec, Box::new(faults)))
            })
            .transpose();
        let result =
            nemesis.and_then(|nemesis| crate::run::run_bundle(&spec_for(target.clone(), &labels, None, nemesis), out));
        if let Some(stop) = &profile.stop {
            shell(stop)?;
        }
        return result;
    }
    let paxoskv = paxoskv.ok_or("no paxoskv binary")?;
    let mut flags = profile.flag_pairs();
    // The cluster traces into the run's bundle (`trace/`): elections on the
    // timeline at their true times, and `paxoskv viz` of the run.
    let trace_dir = out.join("trace");
    let trace_flag = crate::cluster::LocalCluster::trace_flag(paxoskv, &trace_dir);
    let trace_dir = trace_flag.is_some().then_some(trace_dir);
    flags.extend(trace_flag);
    for (name, value) in &flags {
        if name == "durability" {
            labels.insert("durability".into(), value.clone());
        } else if name == "shards" {
            labels.insert("shards".into(), value.clone());
        }
    }
    labels.insert("nodes".into(), args.nodes.to_string());
    labels.insert("system".into(), "paxoskv".into());
    let data = args.data_dir.join(&profile.name);
    let faults = crate::cluster::Faults {
        control: nemesis.is_some(),
        netns: nemesis.as_ref().is_some_and(|n| n.kinds.contains(&crate::nemesis::FaultKind::Partition)),
    };
    let mut cluster = crate::cluster::LocalCluster::start(paxoskv, &data, args.base_port, args.nodes, &flags, faults)?;
    let leaders: Vec<String> = cluster.leaders.iter().map(|l| l.to_string()).collect();
    labels.insert("leaders".into(), leaders.join(","));
    let nemesis = match nemesis {
        Some(spec) => {
            let control = cluster.take_control().ok_or("the cluster has no control channel")?;
            Some(crate::nemesis::Nemesis::new(spec, Box::new(control))?)
        }
        None => None,
    };
    let result = crate::run::run_bundle(&spec_for(cluster.target(), &labels, trace_dir, nemesis), out);
    cluster.stop();
    // The data directory is removed before the next measurement starts
    // (see `run_compare`), not while it runs.
    result
}

/// Removes the clusters' data (the previous measurement's), syncs, waits
/// until the data disk is idle, and probes the machine.
fn settle_and_probe(args: &CompareArgs, profiles: &[Profile]) -> Result<crate::noise::NoiseProbe, String> {
    remove_cluster_data(args, profiles);
    let settled = crate::noise::settle(&args.data_dir);
    crate::noise::probe(&args.data_dir, settled.as_millis() as u64)
}

/// Every profile's cluster data directory under --data-dir (their logs stay).
fn remove_cluster_data(args: &CompareArgs, profiles: &[Profile]) {
    for profile in profiles {
        let _ = std::fs::remove_dir_all(args.data_dir.join(&profile.name));
    }
}

pub fn run(args: CompareArgs) -> std::process::ExitCode {
    match run_compare(&args) {
        Ok(dir) => {
            println!("comparison: {}", dir.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen compare: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_compare(args: &CompareArgs) -> Result<PathBuf, String> {
    if args.repeats == 0 {
        return Err("--repeats must be at least 1".into());
    }
    let profiles: Vec<Profile> = args.profiles.iter().map(|p| Profile::load(p)).collect::<Result<_, _>>()?;
    let mut names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("two profiles have the same name".into());
    }
    let paxoskv = if profiles.iter().any(|p| p.target.is_none()) {
        Some(crate::cluster::find_paxoskv(args.paxoskv.as_deref())?)
    } else {
        None
    };
    let started = crate::machine::unix_now_s();
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("results/compare/{started}")));
    std::fs::create_dir_all(dir.join("runs")).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let reference = match &args.reference {
        Some(name) => {
            profiles.iter().position(|p| &p.name == name).ok_or(format!("--reference {name}: no such profile"))?
        }
        None => profiles.iter().position(|p| p.name == "baseline").unwrap_or(0),
    };
    let mut results: Vec<Vec<(String, Bundle)>> = Vec::new();
    for repeat in 1..=args.repeats {
        let mut row = Vec::new();
        for profile in &profiles {
            let rel = format!("runs/{}-r{repeat}", profile.name);
            println!("== repeat {repeat}/{}: {} ==", args.repeats, profile.name);
            let probe = settle_and_probe(args, &profiles)?;
            println!("noise probe: {}", crate::noise::text(&probe));
            let mut bundle = measure(args, profile, &dir.join(&rel), paxoskv.as_deref())?;
            bundle.noise = Some(probe);
            let json = serde_json::to_string_pretty(&bundle).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(&rel).join("bundle.json"), json)
                .map_err(|e| format!("rewriting bundle.json: {e}"))?;
            // Each run's own charts (its timeline shows the faults).
            if let Err(e) = crate::plot::plot_bundle(&dir.join(&rel), &bundle) {
                eprintln!("loadgen compare: drawing the charts of {rel}: {e}");
            }
            row.push((rel, bundle));
        }
        results.push(row);
    }
    remove_cluster_data(args, &profiles);
    let mut summary = summarize(&profiles, &results, reference);
    flag_noisy(&mut summary);
    let comparison = new_comparison(
        crate::machine::command_line(),
        crate::machine::git_commit(),
        crate::machine::machine_facts(),
        started,
        args.load.params(),
        profiles[reference].name.clone(),
        summary,
    );
    let run_bundles: Vec<(String, Bundle)> =
        results.iter().flatten().zip(profiles.iter().cycle()).map(|((_, b), p)| (p.name.clone(), b.clone())).collect();
    write_comparison(&dir, &comparison, &[])?;
    let charts = crate::plot::plot_comparison(&dir, &comparison, &run_bundles)?;
    write_comparison(&dir, &comparison, &charts)?;
    println!("\n{}", table(&comparison));
    for chart in &charts {
        println!("chart: {}", chart.display());
    }
    Ok(dir)
}

pub fn new_comparison(
    command: String,
    git_commit: String,
    machine: crate::bundle::Machine,
    started_unix_s: u64,
    params: crate::bundle::Params,
    reference: String,
    profiles: Vec<ProfileResult>,
) -> Comparison {
    Comparison {
        format_version: BUNDLE_FORMAT_VERSION,
        command,
        git_commit,
        machine,
        started_unix_s,
        params,
        reference,
        profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{OpStats, Run};

    fn bundle(throughput: f64, p99: u64) -> Bundle {
        let mut ops = BTreeMap::new();
        ops.insert("all".to_string(), OpStats { p50_us: p99 / 2, p99_us: p99, ..Default::default() });
        let run = Run {
            index: 0,
            label: "x".into(),
            offered_ops_s: Some(throughput),
            achieved_ops_s: throughput,
            ops,
            timeline: vec![],
            events: vec![],
            passed: None,
            stages: vec![],
            faults: vec![],
            check: None,
        };
        let text = serde_json::json!({
            "format_version": 1, "kind": "run", "command": "c", "git_commit": "g",
            "machine": {"cores": 2, "kernel": "k", "cpu_model": "m", "hostname": "h"},
            "started_unix_s": 0, "target": "t", "labels": {},
            "params": {"mode": "open", "arrivals": "poisson", "connections": 1, "pipeline": 1, "read_ratio": 0.5,
                       "keys": 10, "distribution": "uniform", "zipf_theta": 0.99, "key_bytes": 16, "value_bytes": 100,
                       "hash_tag_group": 0, "warmup_s": 1.0, "duration_s": 1.0, "timeout_ms": 1000, "seed": 1},
            "runs": []
        });
        let mut b: Bundle = serde_json::from_value(text).unwrap();
        b.runs.push(run);
        b
    }

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            description: String::new(),
            flags: BTreeMap::new(),
            target: None,
            start: None,
            stop: None,
            labels: BTreeMap::new(),
            nemesis_pids: None,
            nemesis_restart: None,
        }
    }

    #[test]
    fn ratios_are_taken_within_each_repeat_then_summarized() {
        let profiles = [profile("baseline"), profile("all")];
        let results = vec![
            vec![("a".into(), bundle(100.0, 10)), ("b".into(), bundle(300.0, 5))],
            vec![("a".into(), bundle(50.0, 10)), ("b".into(), bundle(200.0, 5))],
            vec![("a".into(), bundle(100.0, 10)), ("b".into(), bundle(250.0, 5))],
        ];
        let summary = summarize(&profiles, &results, 0);
        assert_eq!(summary[0].ratio_to_reference, 1.0);
        assert_eq!(summary[1].throughput_median, 250.0);
        assert_eq!((summary[1].ratio_min, summary[1].ratio_to_reference, summary[1].ratio_max), (2.5, 3.0, 4.0));
        assert_eq!((summary[1].throughput_min, summary[1].throughput_max), (200.0, 300.0));
    }

    #[test]
    fn find_max_spread_and_noisy_repeats_are_reported() {
        let profiles = [profile("all")];
        let results: Vec<Vec<(String, Bundle)>> = (0..3).map(|_| vec![("a".into(), bundle(100.0, 10))]).collect();
        let mut summary = summarize(&profiles, &results, 0);
        let probe = |fsync_p99_us| crate::noise::NoiseProbe { fsync_p50_us: 50, fsync_p99_us, ..Default::default() };
        for (repeat, (pass, fail, fsync)) in
            summary[0].repeats.iter_mut().zip([(1000.0, 1500.0, 200), (4000.0, 6000.0, 210), (2000.0, 3000.0, 5000)])
        {
            (repeat.last_pass_ops_s, repeat.first_fail_ops_s, repeat.noise) =
                (Some(pass), Some(fail), Some(probe(fsync)));
        }
        flag_noisy(&mut summary);
        let flags: Vec<bool> = summary[0].repeats.iter().map(|r| r.noisy.is_some()).collect();
        assert_eq!(flags, [false, false, true]);
        let comparison = new_comparison(
            "loadgen compare".into(),
            "abc".into(),
            bundle(1.0, 1).machine,
            0,
            bundle(1.0, 1).params,
            "all".into(),
            summary,
        );
        assert!(table(&comparison).contains("| 3 |"), "{}", table(&comparison));
        let stability = stability_section(&comparison);
        assert!(
            stability.contains("| `all` | 3 of 3 | 1000 - 4000 (4.0x spread) | 1500 - 6000 (4.0x spread) |"),
            "{stability}"
        );
        assert!(noise_section(&comparison).contains("**noisy: fsync p99 5000 µs"));
    }

    #[test]
    fn profiles_load_and_turn_into_flags() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning");
        for name in ["baseline", "batching", "pipelining", "lease", "all"] {
            let p = Profile::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(p.name, name);
            assert!(p.flag_pairs().iter().any(|(k, v)| k == "durability" && v == "sync"));
        }
        let baseline = Profile::load(&dir.join("baseline.toml")).unwrap();
        assert!(baseline.flag_pairs().contains(&("window_slots".to_string(), "1".to_string())));
        assert!(baseline.flag_pairs().contains(&("lease_reads".to_string(), "false".to_string())));
    }
}
