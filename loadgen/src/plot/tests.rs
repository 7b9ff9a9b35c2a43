//! Charts drawn from synthetic bundles into target/plot-tests/.

use std::collections::BTreeMap;

use super::*;
use crate::bundle::{Machine, Params, Second, Sustainable, BUNDLE_FORMAT_VERSION};

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plot-tests").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn machine() -> Machine {
    Machine { cores: 2, kernel: "6.1.0-test".into(), cpu_model: "Test CPU".into(), hostname: "bench".into() }
}

fn params(mode: &str) -> Params {
    Params {
        mode: mode.into(),
        arrivals: "poisson".into(),
        connections: 16,
        pipeline: 8,
        read_ratio: 0.9,
        keys: 100_000,
        distribution: "zipfian".into(),
        zipf_theta: 0.99,
        key_bytes: 16,
        value_bytes: 100,
        hash_tag_group: 0,
        warmup_s: 2.0,
        duration_s: 30.0,
        timeout_ms: 5000,
        seed: 7,
    }
}

const PERCENTILES: [f64; 12] = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0];

/// Stats whose latencies grow with the percentile from `p50_us`.
fn stats(p50_us: u64, count: u64) -> OpStats {
    let at = |p: f64| -> u64 {
        if p <= 0.0 {
            p50_us / 3
        } else {
            (p50_us as f64 * (1.0 + percentile_x(p.min(99.9999)).powf(1.6))) as u64
        }
    };
    OpStats {
        ok: count,
        errors: 0,
        timeouts: 0,
        mean_us: p50_us as f64 * 1.2,
        p50_us: at(50.0),
        p90_us: at(90.0),
        p99_us: at(99.0),
        p999_us: at(99.9),
        max_us: at(100.0),
        percentiles: PERCENTILES.iter().map(|p| (*p, at(*p))).collect(),
        hdr_file: None,
        hgrm_file: None,
    }
}

fn ops(p50_us: u64, count: u64) -> BTreeMap<String, OpStats> {
    let mut ops = BTreeMap::new();
    ops.insert("all".to_string(), stats(p50_us, count));
    ops.insert("get".to_string(), stats(p50_us * 9 / 10, count * 9 / 10));
    ops.insert("set".to_string(), stats(p50_us * 2, count / 10));
    ops
}

fn timeline(seconds: u64, rate: f64, p50_us: u64) -> Vec<Second> {
    (0..seconds)
        .map(|t| Second {
            t_s: t,
            ok: (rate * (1.0 + 0.03 * ((t % 5) as f64 - 2.0))) as u64,
            errors: 0,
            p50_us,
            p99_us: p50_us * 4,
            p999_us: p50_us * 9,
            max_us: p50_us * 20,
        })
        .collect()
}

fn run(index: usize, offered: Option<f64>, achieved: f64, p50_us: u64, passed: Option<bool>) -> Run {
    Run {
        index,
        label: match offered {
            Some(rate) => format!("rate {rate}"),
            None => "closed 16x8".to_string(),
        },
        offered_ops_s: offered,
        achieved_ops_s: achieved,
        ops: ops(p50_us, (achieved * 30.0) as u64),
        timeline: timeline(30, achieved, p50_us),
        events: Vec::new(),
        passed,
        stages: Vec::new(),
        faults: Vec::new(),
        check: None,
    }
}

fn bundle(runs: Vec<Run>) -> Bundle {
    let mut labels = BTreeMap::new();
    labels.insert("durability".to_string(), "fsync-off".to_string());
    labels.insert("cluster".to_string(), "3 nodes".to_string());
    labels.insert("profile".to_string(), "baseline".to_string());
    Bundle {
        format_version: BUNDLE_FORMAT_VERSION,
        kind: "run".into(),
        command: "loadgen run --rates 10000,20000".into(),
        git_commit: "abc1234".into(),
        machine: machine(),
        started_unix_s: 1_700_000_000,
        target: "127.0.0.1:7000".into(),
        labels,
        params: params("open"),
        runs,
        sustainable: None,
        noise: None,
    }
}

fn sweep() -> Bundle {
    let rates = [10_000.0, 20_000.0, 30_000.0, 40_000.0, 50_000.0];
    let p50s = [200, 260, 380, 900, 6000];
    let achieved = [9_990.0, 19_950.0, 29_800.0, 38_500.0, 41_000.0];
    bundle((0..5).map(|i| run(i, Some(rates[i]), achieved[i], p50s[i], None)).collect())
}

fn find_max() -> Bundle {
    let rates = [5_000.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0, 45_000.0];
    let achieved = [5_000.0, 9_990.0, 19_900.0, 29_700.0, 33_000.0, 33_500.0];
    let p50s = [150, 180, 300, 700, 9_000, 40_000];
    let passed = [true, true, true, true, false, false];
    let mut b = bundle((0..6).map(|i| run(i, Some(rates[i]), achieved[i], p50s[i], Some(passed[i]))).collect());
    let p99 = b.runs[3].ops["all"].p99_us;
    b.sustainable =
        Some(Sustainable { p99_bound_us: 5_000, offered_ops_s: 30_000.0, achieved_ops_s: 29_700.0, p99_us: p99 });
    b
}

/// One run with a 1 s stall at t = 12: nothing completes in second 12, the
/// backlog completes late in second 13 (as open loop records it).
fn stalled(mode: &str) -> Bundle {
    let mut r = run(0, if mode == "open" { Some(20_000.0) } else { None }, 19_000.0, 300, None);
    r.timeline[12] = Second { t_s: 12, ..Default::default() };
    if mode == "open" {
        r.timeline[13] = Second {
            t_s: 13,
            ok: 39_000,
            errors: 120,
            p50_us: 400_000,
            p99_us: 950_000,
            p999_us: 990_000,
            max_us: 1_010_000,
        };
    } else {
        r.timeline[13].max_us = 1_001_000;
    }
    r.events =
        vec![RunEvent { t_s: 12.0, what: "SIGSTOP 1 s".into() }, RunEvent { t_s: 20.4, what: "leader change".into() }];
    let mut b = bundle(vec![r]);
    b.params = params(mode);
    b
}

const PROFILES: [(&str, f64); 5] =
    [("baseline", 1.0), ("mimalloc", 1.08), ("batching", 1.45), ("no-fsync-batch", 0.93), ("pipelined-peers", 1.21)];

/// A 5-profile × 3-repeat comparison and its run bundles (profile, bundle).
fn comparison() -> (Comparison, Vec<(String, Bundle)>) {
    let mut run_bundles = Vec::new();
    let mut profiles = Vec::new();
    let wobble = [0.97, 1.0, 1.04];
    for (name, factor) in PROFILES {
        let mut repeats = Vec::new();
        for (k, w) in wobble.iter().enumerate() {
            let throughput = 20_000.0 * factor * w;
            let p50 = (400.0 / factor / w) as u64;
            let mut b = bundle(vec![run(0, None, throughput, p50, None)]);
            b.kind = "compare".into();
            b.labels.insert("profile".into(), name.into());
            b.params = params("closed");
            let s = &b.runs[0].ops["all"];
            repeats.push(RepeatResult {
                repeat: k,
                bundle: format!("runs/{name}-r{k}"),
                throughput_ops_s: throughput,
                p50_us: s.p50_us,
                p99_us: s.p99_us,
                errors: 0,
                check: None,
                lost_acknowledged_writes: 0,
                faults: Vec::new(),
                noise: None,
                noisy: None,
                last_pass_ops_s: None,
                first_fail_ops_s: None,
            });
            run_bundles.push((name.to_string(), b));
        }
        let median = repeats[1].clone();
        profiles.push(ProfileResult {
            name: name.into(),
            description: format!("{name} profile"),
            settings: BTreeMap::new(),
            throughput_median: median.throughput_ops_s,
            throughput_min: repeats[0].throughput_ops_s,
            throughput_max: repeats[2].throughput_ops_s,
            p50_us_median: median.p50_us,
            p99_us_median: median.p99_us,
            ratio_to_reference: factor,
            ratio_min: factor * 0.97,
            ratio_max: factor * 1.03,
            repeats,
        });
    }
    let comparison = Comparison {
        format_version: BUNDLE_FORMAT_VERSION,
        command: "loadgen compare profiles.toml".into(),
        git_commit: "abc1234".into(),
        machine: machine(),
        started_unix_s: 1_700_000_000,
        params: params("closed"),
        reference: "baseline".into(),
        profiles,
    };
    (comparison, run_bundles)
}

/// The SVG at `path`, checked to be a whole SVG document holding `needles`.
fn svg(path: &Path, needles: &[&str]) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("<svg"), "{} does not start with <svg", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{} is not closed", path.display());
    assert_eq!(text.matches("<text").count(), text.matches("</text>").count(), "{}", path.display());
    assert!(!text.contains("NaN"), "{} has NaN coordinates", path.display());
    for needle in needles {
        assert!(text.contains(needle), "{} lacks {needle:?}", path.display());
    }
    text
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn rate_sweep_draws_the_three_charts() {
    let dir = out_dir("sweep");
    let written = plot_bundle(&dir, &sweep()).unwrap();
    assert_eq!(names(&written), [THROUGHPUT_LATENCY_SVG, PERCENTILES_SVG, TIMELINE_SVG]);
    svg(
        &dir.join(THROUGHPUT_LATENCY_SVG),
        &["Latency vs achieved throughput", "5 rate sweep steps", "p50", "p99", "p99.9", "achieved throughput (ops/s)"],
    );
    svg(
        &dir.join(THROUGHPUT_LATENCY_SVG),
        &["target 127.0.0.1:7000", "open loop", "durability=fsync-off", "git abc1234"],
    );
    svg(&dir.join(PERCENTILES_SVG), &["Latency by percentile", "rate 10000", "rate 50000", "99.999%", "max", "50%"]);
    svg(&dir.join(TIMELINE_SVG), &["Per second", "rate 50000", "the last of 5 runs", "p99.9", "offered 50k ops/s"]);
}

#[test]
fn find_max_marks_failed_steps_and_the_sustainable_rate() {
    let dir = out_dir("find-max");
    let written = plot_bundle(&dir, &find_max()).unwrap();
    assert_eq!(written.len(), 3);
    svg(
        &dir.join(THROUGHPUT_LATENCY_SVG),
        &["find-max ramp", "hollow: failed step", "sustainable: 29.7k ops/s achieved (offered 30k)", "p99 bound 5 ms"],
    );
    svg(&dir.join(PERCENTILES_SVG), &["rate 40000 (failed)"]);
    svg(&dir.join(TIMELINE_SVG), &["rate 30000", "the sustainable step of 6"]);
}

#[test]
fn a_single_run_gets_per_op_percentiles_and_its_events() {
    let dir = out_dir("single");
    let written = plot_bundle(&dir, &stalled("open")).unwrap();
    // One run: no throughput-latency curve.
    assert_eq!(names(&written), [PERCENTILES_SVG, TIMELINE_SVG]);
    svg(&dir.join(PERCENTILES_SVG), &["one line per operation", "all", "get", "set"]);
    svg(
        &dir.join(TIMELINE_SVG),
        &["SIGSTOP 1 s (t=12 s)", "leader change (t=20.4 s)", "red: errors", "dashed line: offered 20k ops/s", "max"],
    );
}

#[test]
fn comparison_draws_throughput_latency_and_percentiles() {
    let dir = out_dir("comparison");
    let (comparison, run_bundles) = comparison();
    let written = plot_comparison(&dir, &comparison, &run_bundles).unwrap();
    assert_eq!(names(&written), [COMPARISON_THROUGHPUT_SVG, COMPARISON_LATENCY_SVG, COMPARISON_PERCENTILES_SVG]);
    let mut needles = vec!["Throughput per profile", "median of 3 repeats", "reference", "×1.45 [1.41–1.49]"];
    needles.extend(PROFILES.iter().map(|(name, _)| *name));
    svg(&dir.join(COMPARISON_THROUGHPUT_SVG), &needles);
    let mut needles = vec!["p99 latency vs throughput", "closed loop", "durability=fsync-off"];
    needles.extend(PROFILES.iter().map(|(name, _)| *name));
    svg(&dir.join(COMPARISON_LATENCY_SVG), &needles);
    svg(
        &dir.join(COMPARISON_PERCENTILES_SVG),
        &["median-throughput repeat", "baseline (reference)", "pipelined-peers"],
    );
}

#[test]
fn stall_chart_shows_both_loops_on_one_scale() {
    let dir = out_dir("stall");
    let path = plot_stall(&dir, &stalled("open"), &stalled("closed")).unwrap();
    assert_eq!(path, dir.join(STALL_SVG));
    svg(
        &path,
        &[
            "the open loop keeps its schedule, the closed loop stops sending",
            "intended send time",
            "actual send time",
            "worst second: p99.9 990 ms",
            "SIGSTOP 1 s",
            "completed per second (right axis)",
        ],
    );
    let empty = bundle(Vec::new());
    assert!(plot_stall(&dir, &empty, &stalled("closed")).is_err());
}

#[test]
fn plot_dir_round_trips_a_run_bundle() {
    let dir = out_dir("dir-bundle");
    let b = find_max();
    fs::write(dir.join("bundle.json"), serde_json::to_string_pretty(&b).unwrap()).unwrap();
    let written = plot_dir(&dir).unwrap();
    assert_eq!(names(&written), [THROUGHPUT_LATENCY_SVG, PERCENTILES_SVG, TIMELINE_SVG]);
    svg(&dir.join(THROUGHPUT_LATENCY_SVG), &["find-max ramp"]);
}

#[test]
fn plot_dir_round_trips_a_comparison_and_its_runs() {
    let dir = out_dir("dir-comparison");
    let (comparison, run_bundles) = comparison();
    fs::write(dir.join("comparison.json"), serde_json::to_string_pretty(&comparison).unwrap()).unwrap();
    for profile in &comparison.profiles {
        for (repeat, (_, b)) in profile.repeats.iter().zip(run_bundles.iter().filter(|(name, _)| *name == profile.name))
        {
            let run_dir = dir.join(&repeat.bundle);
            fs::create_dir_all(&run_dir).unwrap();
            fs::write(run_dir.join("bundle.json"), serde_json::to_string(b).unwrap()).unwrap();
        }
    }
    let written = plot_dir(&dir).unwrap();
    // Two charts per run bundle (one run each), three for the comparison.
    assert_eq!(written.len(), 15 * 2 + 3);
    assert!(written.contains(&dir.join(COMPARISON_PERCENTILES_SVG)));
    assert!(written.contains(&dir.join("runs/batching-r2").join(TIMELINE_SVG)));
    svg(&dir.join(COMPARISON_PERCENTILES_SVG), &["no-fsync-batch", "batching"]);

    // Without the repeats' paths, the run bundles are found under runs/.
    let mut anonymous = comparison.clone();
    for profile in &mut anonymous.profiles {
        for repeat in &mut profile.repeats {
            repeat.bundle.clear();
        }
    }
    fs::write(dir.join("comparison.json"), serde_json::to_string(&anonymous).unwrap()).unwrap();
    assert_eq!(plot_dir(&dir).unwrap().len(), 15 * 2 + 3);
}

#[test]
fn plot_dir_without_a_bundle_is_an_error() {
    let dir = out_dir("dir-nothing");
    assert!(plot_dir(&dir).unwrap_err().contains("neither comparison.json nor bundle.json"));
    fs::write(dir.join("bundle.json"), "{ not json").unwrap();
    assert!(plot_dir(&dir).is_err());
}

#[test]
fn degenerate_bundles_do_not_panic() {
    let dir = out_dir("degenerate");
    // No runs at all.
    assert!(plot_bundle(&dir.join("empty"), &bundle(Vec::new())).unwrap().is_empty());

    // Runs without ops or timeline.
    let mut bare = run(0, Some(1000.0), 990.0, 100, None);
    bare.ops.clear();
    bare.timeline.clear();
    assert!(plot_bundle(&dir.join("bare"), &bundle(vec![bare.clone(), bare])).unwrap().is_empty());

    // Zero latencies everywhere, NaN rates and percentiles, empty percentile lists.
    let mut zero = run(0, Some(f64::NAN), f64::NAN, 0, None);
    zero.label = "zero latencies".into();
    for stats in zero.ops.values_mut() {
        stats.percentiles.push((f64::NAN, 5));
    }
    let mut no_list = run(1, Some(2000.0), 1990.0, 0, None);
    no_list.ops.values_mut().for_each(|s| s.percentiles.clear());
    let mut idle = run(2, Some(3000.0), 0.0, 0, None);
    idle.timeline.iter_mut().for_each(|s| *s = Second { t_s: s.t_s, ..Default::default() });
    idle.events.push(RunEvent { t_s: f64::NAN, what: "nan event".into() });
    idle.events.push(RunEvent { t_s: 1e9, what: "far event".into() });
    let written = plot_bundle(&dir.join("zero"), &bundle(vec![zero, no_list, idle])).unwrap();
    assert_eq!(written.len(), 3);
    for path in &written {
        svg(path, &[]);
    }

    // Redrawing a bundle that lost its data removes the charts it had.
    let again = dir.join("zero");
    assert!(plot_bundle(&again, &bundle(Vec::new())).unwrap().is_empty());
    assert!(!again.join(TIMELINE_SVG).exists());

    // A single run whose only op is not called "all".
    let mut only_get = run(0, None, 500.0, 50, None);
    only_get.ops.retain(|op, _| op == "get");
    let written = plot_bundle(&dir.join("only-get"), &bundle(vec![only_get])).unwrap();
    svg(&written[0], &["get"]);

    // A sustainable rate with NaN figures.
    let mut b = find_max();
    b.sustainable.as_mut().unwrap().achieved_ops_s = f64::NAN;
    plot_bundle(&dir.join("nan-sustainable"), &b).unwrap();
}

#[test]
fn degenerate_comparisons_do_not_panic() {
    let dir = out_dir("degenerate-comparison");
    let (mut comparison, run_bundles) = comparison();
    // Run bundles missing: no percentile chart.
    let written = plot_comparison(&dir.join("no-runs"), &comparison, &[]).unwrap();
    assert_eq!(names(&written), [COMPARISON_THROUGHPUT_SVG, COMPARISON_LATENCY_SVG]);

    // NaN figures and a profile without repeats.
    comparison.profiles[1].ratio_to_reference = f64::NAN;
    comparison.profiles[1].throughput_min = f64::NAN;
    comparison.profiles[2].repeats.clear();
    comparison.profiles[3].repeats[0].throughput_ops_s = f64::NAN;
    let written = plot_comparison(&dir.join("nan"), &comparison, &run_bundles).unwrap();
    assert_eq!(written.len(), 3);
    svg(&written[0], &["×?"]);

    // Mixed durability is called out.
    let mut mixed = run_bundles.clone();
    mixed[0].1.labels.insert("durability".into(), "fsync-on".into());
    let written = plot_comparison(&dir.join("mixed"), &comparison, &mixed).unwrap();
    svg(&written[0], &["MIXED durability"]);

    // No profiles at all.
    comparison.profiles.clear();
    assert!(plot_comparison(&dir.join("empty"), &comparison, &run_bundles).unwrap().is_empty());
}

#[test]
fn axis_labels_and_numbers() {
    let curves = vec![vec![(50.0, 1), (99.999, 10), (100.0, 20)]];
    let (axis, max_x) = percentile_axis(&curves);
    let labels: Vec<String> = axis.ticks.iter().map(|t| (axis.fmt)(*t)).collect();
    assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%", "99.999%", "max"]);
    assert_eq!(max_x, 6.0);
    assert!((percentile_x(99.0) - 2.0).abs() < 1e-9);

    let axis = Axis::log_ms([0, 1500, 80_000], 1.0, "latency");
    let labels: Vec<String> = axis.ticks.iter().map(|t| (axis.fmt)(*t)).collect();
    assert_eq!(labels.first().map(String::as_str), Some("0.001"));
    assert!(labels.contains(&"100".to_string()), "{labels:?}");

    assert_eq!(fmt_rate(23_400.0), "23.4k");
    assert_eq!(fmt_rate(1_250_000.0), "1.25M");
    assert_eq!(fmt_rate(950.0), "950");
    assert_eq!(fmt_rate(f64::NAN), "?");
    assert_eq!(fmt_ms(3_270), "3.27 ms");
    assert_eq!(fmt_ms(990_000), "990 ms");
    assert_eq!(nice_step(0.0), 1.0);
    assert_eq!(nice_step(7_300.0), 10_000.0);
    let axis = Axis::linear_from_zero(Some(f64::NAN), 1.1, "x", fmt_rate);
    assert!(axis.hi > 0.0 && axis.ticks.len() >= 2);
}

fn stage(node: &str, stage: &str, samples: u64, mean_us: f64) -> crate::bundle::StageMean {
    crate::bundle::StageMean { node: node.into(), shard: 0, stage: stage.into(), samples, mean_us }
}

/// One run against three nodes: the leader (writes and reads), a follower
/// (forwards), and a node with a stage this loadgen does not know.
fn with_stages() -> Bundle {
    let mut b = bundle(vec![run(0, Some(1000.0), 999.0, 800, None)]);
    let (leader, follower, other) = ("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003");
    b.runs[0].stages = vec![
        stage(leader, "parse", 300, 15.0),
        stage(leader, "queue", 40, 40.0),
        stage(leader, "local_sync", 40, 260.0),
        stage(leader, "quorum", 40, 520.0),
        stage(leader, "read_wait", 260, 30.0),
        stage(leader, "reply", 300, 20.0),
        stage(follower, "parse", 200, 14.0),
        stage(follower, "forward", 200, 900.0),
        stage(follower, "reply", 200, 18.0),
        stage(other, "apply", 3, 7.0),
    ];
    b
}

#[test]
fn stages_draw_a_stacked_bar_per_node_shard_and_path() {
    let dir = out_dir("stages");
    let mut b = with_stages();
    let written = plot_bundle(&dir, &b).unwrap();
    assert_eq!(names(&written), [PERCENTILES_SVG, TIMELINE_SVG, STAGES_SVG]);
    let text = svg(
        &dir.join(STAGES_SVG),
        &[
            "Where the server spends a request",
            "127.0.0.1:7001 shard 0 · write at leader",
            "127.0.0.1:7001 shard 0 · read at leader",
            "127.0.0.1:7002 shard 0 · forwarded to leader",
            "127.0.0.1:7003 shard 0 · all stages",
            "parse 15 + queue 40 + local_sync 260 + quorum 520 + reply 20 µs · ≥ 40 samples per stage",
            "parse 15 + read_wait 30 + reply 20 µs",
            "855 µs",
            "932 µs",
            "git abc1234",
            "stages:",
        ],
    );
    // The legend names each stage once, in the order a request meets them.
    let legend: Vec<usize> = ["parse", "queue", "local_sync", "quorum", "read_wait", "forward", "reply", "apply"]
        .iter()
        .map(|s| text.find(&format!("\n{s}\n")).unwrap_or_else(|| panic!("legend lacks {s}")))
        .collect();
    assert!(legend.windows(2).all(|w| w[0] < w[1]), "{legend:?}");

    // Several runs: each bar says its run.
    let mut second = b.runs[0].clone();
    second.index = 1;
    second.label = "rate 2000".into();
    b.runs.push(second);
    plot_bundle(&dir, &b).unwrap();
    svg(&dir.join(STAGES_SVG), &["rate 1000 · 127.0.0.1:7001 shard 0", "rate 2000 · 127.0.0.1:7002 shard 0"]);

    // Redrawn without stages: no stale chart left.
    b.runs.iter_mut().for_each(|r| r.stages.clear());
    assert!(!names(&plot_bundle(&dir, &b).unwrap()).contains(&STAGES_SVG.to_string()));
    assert!(!dir.join(STAGES_SVG).exists());
}

#[test]
fn degenerate_stages_do_not_panic() {
    let dir = out_dir("stages-degenerate");
    let mut b = with_stages();
    for (i, s) in b.runs[0].stages.iter_mut().enumerate() {
        match i % 3 {
            0 => s.mean_us = f64::NAN,
            1 => s.mean_us = 0.0,
            _ => s.samples = 0,
        }
    }
    plot_bundle(&dir, &b).unwrap();
    if dir.join(STAGES_SVG).exists() {
        svg(&dir.join(STAGES_SVG), &[]);
    }
    // Only unusable stages: no chart.
    b.runs[0].stages.iter_mut().for_each(|s| s.samples = 0);
    assert!(!names(&plot_bundle(&dir, &b).unwrap()).contains(&STAGES_SVG.to_string()));
}
