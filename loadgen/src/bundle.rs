//! The result bundle: what one `loadgen run` (or `compare`) writes, and what
//! `loadgen plot` reads back. `bundle.json` holds everything but the raw
//! histograms, which sit beside it (`run-<i>-<op>.hdr`, HdrHistogram V2
//! serialization, and `run-<i>-<op>.hgrm`, the classic percentile text).
//!
//! Layout of a run bundle directory:
//!
//! ```text
//! bundle.json            Bundle (below)
//! summary.csv            one row per (run, op): label, offered, achieved, percentiles, errors
//! run-0-all.hdr / .hgrm  histograms per run and op ("all", "get", "set", ...)
//! *.svg                  charts (loadgen plot BUNDLE redraws them), stages.svg
//!                        among them when the server reported its latency anatomy
//! ```
//!
//! Latencies are microseconds, measured from each request's *intended*
//! send time in open-loop mode (no coordinated omission), from its actual
//! send time in closed-loop mode (`params.mode` says which).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bundle {
    pub format_version: u32,
    /// "run" for `loadgen run`, "compare" for a comparison's per-run bundles.
    pub kind: String,
    /// The exact command line that produced the bundle.
    pub command: String,
    /// `git rev-parse --short HEAD` (+ "-dirty"), or "unknown".
    pub git_commit: String,
    pub machine: Machine,
    /// Unix seconds when the bundle was started.
    pub started_unix_s: u64,
    pub target: String,
    /// Free-form facts about the system under test: durability, cluster
    /// size, shards, profile name, ... (what BENCHMARKING.md asks for).
    pub labels: BTreeMap<String, String>,
    pub params: Params,
    pub runs: Vec<Run>,
    /// For `--find-max`: the highest offered rate that passed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustainable: Option<Sustainable>,
    /// The noise probe taken just before this bundle's runs (`compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::noise::NoiseProbe>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub cpu_model: String,
    pub hostname: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Params {
    /// "open" or "closed".
    pub mode: String,
    /// "fixed" or "poisson" (open loop only).
    pub arrivals: String,
    pub connections: usize,
    /// Closed loop: requests outstanding per connection. Open loop: the cap
    /// on outstanding requests per connection before new ones count as errors.
    pub pipeline: usize,
    pub read_ratio: f64,
    pub keys: u64,
    /// "uniform" or "zipfian".
    pub distribution: String,
    pub zipf_theta: f64,
    pub key_bytes: usize,
    pub value_bytes: usize,
    /// Keys share one `{hash tag}` per this many keys (0 = no tags).
    pub hash_tag_group: u64,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// A request unanswered after this long counts as a timeout.
    pub timeout_ms: u64,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub index: usize,
    /// E.g. "rate 20000", "closed 16x8", or a profile name.
    pub label: String,
    /// Open loop: the intended rate; closed loop: None.
    pub offered_ops_s: Option<f64>,
    /// Completed (ok + error replies) per second over the measured window.
    pub achieved_ops_s: f64,
    /// Per operation kind ("get", "set", ...) and "all".
    pub ops: BTreeMap<String, OpStats>,
    /// One entry per second of the measured window.
    pub timeline: Vec<Second>,
    /// Things that happened during the run, for chart markers
    /// (e.g. "leader change", "SIGSTOP").
    pub events: Vec<RunEvent>,
    /// Did this run meet the `--p99` bound and keep up with the offered rate?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// The server's latency anatomy over the measured window (paxoskv's
    /// `INFO latency`, see anatomy.rs): per node, shard and stage with
    /// samples. Empty for servers without it (Redis, etcd), and in
    /// bundles written before loadgen read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageMean>,
    /// The faults `--nemesis` injected, with their recovery times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::nemesis::FaultRecord>,
    /// `--check linearizable`'s verdict on this run's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<crate::check::CheckReport>,
}

/// One stage of the server's latency anatomy on one node and shard, over
/// a run's measured window: the difference of two `INFO latency` readings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StageMean {
    /// The node's address as the target named it ("127.0.0.1:7001").
    pub node: String,
    pub shard: u32,
    /// "parse", "queue", "local_sync", "quorum", "read_wait", "forward", "reply".
    pub stage: String,
    /// Requests the server sampled in this stage during the window
    /// (one in 64 of those the shard served).
    pub samples: u64,
    /// Their mean time in this stage.
    pub mean_us: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OpStats {
    /// Requests that got a non-error reply.
    pub ok: u64,
    /// Requests that got an error reply or lost their connection.
    pub errors: u64,
    /// Requests unanswered after `timeout_ms` or at the end of the run
    /// (recorded in the histogram with their latency so far).
    pub timeouts: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// (percentile, latency_us) at 0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95,
    /// 99.99, 99.999 and 100: enough to draw a percentile plot.
    pub percentiles: Vec<(f64, u64)>,
    /// File names of the serialized histogram and its .hgrm text, if written.
    pub hdr_file: Option<String>,
    pub hgrm_file: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Second {
    /// Seconds since the start of the measured window (0, 1, 2, ...).
    pub t_s: u64,
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunEvent {
    /// Seconds since the start of the measured window.
    pub t_s: f64,
    pub what: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sustainable {
    pub p99_bound_us: u64,
    /// The highest offered rate whose run passed.
    pub offered_ops_s: f64,
    pub achieved_ops_s: f64,
    pub p99_us: u64,
}

/// A comparison (`loadgen compare`): the same workload against several
/// profiles or targets, interleaved, repeated. Written as `comparison.json`
/// beside one run bundle per (repeat, profile) in `runs/<profile>-r<k>/`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub format_version: u32,
    pub command: String,
    pub git_commit: String,
    pub machine: Machine,
    pub started_unix_s: u64,
    pub params: Params,
    /// The profile every ratio is taken against (the first, or "baseline").
    pub reference: String,
    /// In the order they were given.
    pub profiles: Vec<ProfileResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileResult {
    pub name: String,
    pub description: String,
    /// The flags the profile set (as given in its TOML).
    pub settings: BTreeMap<String, String>,
    /// Per repeat, in run order: the headline throughput (the sustainable
    /// rate under --find-max, else achieved ops/s) and latencies.
    pub repeats: Vec<RepeatResult>,
    pub throughput_median: f64,
    pub throughput_min: f64,
    pub throughput_max: f64,
    pub p50_us_median: u64,
    pub p99_us_median: u64,
    /// throughput_median / the reference's throughput_median.
    pub ratio_to_reference: f64,
    /// The spread of the per-repeat ratios (each repeat's throughput over the
    /// reference's in the same repeat): min and max.
    pub ratio_min: f64,
    pub ratio_max: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RepeatResult {
    pub repeat: usize,
    /// Relative path of the run bundle.
    pub bundle: String,
    pub throughput_ops_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
    /// `--check`'s verdict over the repeat's runs (the worst of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default)]
    pub lost_acknowledged_writes: u64,
    /// Every fault of the repeat's runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::nemesis::FaultRecord>,
    /// The noise probe taken just before the repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::noise::NoiseProbe>,
    /// Why the probe says this repeat ran on a noisy machine, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noisy: Option<String>,
    /// Find-max: the highest step that passed and the lowest that failed
    /// above it (offered ops/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_ops_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fail_ops_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run as loadgen wrote it before runs had `stages`.
    const RUN_WITHOUT_STAGES: &str = r#"{
        "index": 0, "label": "rate 1000", "offered_ops_s": 1000.0, "achieved_ops_s": 999.5,
        "ops": {}, "timeline": [], "events": [], "passed": null
    }"#;

    #[test]
    fn a_run_without_stages_still_loads_and_an_empty_list_is_not_written() {
        let run: Run = serde_json::from_str(RUN_WITHOUT_STAGES).unwrap();
        assert!(run.stages.is_empty());
        assert_eq!(run.label, "rate 1000");
        let json = serde_json::to_string(&run).unwrap();
        assert!(!json.contains("stages"), "{json}");

        let stage =
            StageMean { node: "127.0.0.1:7001".into(), shard: 0, stage: "quorum".into(), samples: 78, mean_us: 257.8 };
        let with = Run { stages: vec![stage], ..run };
        let back: Run = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }
}
