//! Turning recorded histograms into the bundle's figures, and showing them:
//! the live progress line and the summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::anatomy;
use crate::bundle::{Bundle, OpStats, Run, RunEvent, Second};
use crate::engine::RunOutput;
use crate::recorder::{OpRecord, SecondReport};
use crate::workload::OpKind;

/// The percentiles every `OpStats` lists (enough to draw a percentile plot).
pub const PERCENTILES: [f64; 12] = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0];

/// The histograms of one run, by operation name ("get", "set", "all").
pub type RunHistograms = BTreeMap<String, Histogram<u64>>;

pub fn hdr_file_name(run_index: usize, op: &str) -> String {
    format!("run-{run_index}-{op}.hdr")
}

pub fn hgrm_file_name(run_index: usize, op: &str) -> String {
    format!("run-{run_index}-{op}.hgrm")
}

pub fn op_stats(record: &OpRecord, run_index: usize, op: &str) -> OpStats {
    let histogram = &record.histogram;
    let at = |percentile: f64| histogram.value_at_quantile(percentile / 100.0);
    OpStats {
        ok: record.ok,
        errors: record.errors,
        timeouts: record.timeouts,
        mean_us: if histogram.is_empty() { 0.0 } else { histogram.mean() },
        p50_us: at(50.0),
        p90_us: at(90.0),
        p99_us: at(99.0),
        p999_us: at(99.9),
        max_us: histogram.max(),
        percentiles: PERCENTILES.iter().map(|&p| (p, if p == 100.0 { histogram.max() } else { at(p) })).collect(),
        hdr_file: Some(hdr_file_name(run_index, op)),
        hgrm_file: Some(hgrm_file_name(run_index, op)),
    }
}

/// The bundle's `Run` (and its histograms) from what the engine measured.
/// `passed` is filled in by find-max.
pub fn build_run(index: usize, label: String, offered_ops_s: Option<f64>, output: &RunOutput) -> (Run, RunHistograms) {
    let duration_s = (output.window.end_ns - output.window.start_ns) as f64 / 1e9;
    let mut all = output.totals.ops[0].clone();
    all.merge(&output.totals.ops[1]);
    let mut ops = BTreeMap::new();
    let mut histograms = RunHistograms::new();
    for op in OpKind::ALL {
        let record = &output.totals.ops[op as usize];
        if record.ok + record.errors + record.timeouts > 0 {
            ops.insert(op.name().to_string(), op_stats(record, index, op.name()));
            histograms.insert(op.name().to_string(), record.histogram.clone());
        }
    }
    ops.insert("all".to_string(), op_stats(&all, index, "all"));
    histograms.insert("all".to_string(), all.histogram);
    let seconds_in_window = duration_s.ceil() as i64;
    let timeline = output
        .seconds
        .iter()
        .filter(|s| (0..seconds_in_window).contains(&s.second))
        .map(|s| Second {
            t_s: s.second as u64,
            ok: s.ok,
            errors: s.errors + s.timeouts,
            p50_us: s.histogram.value_at_quantile(0.50),
            p99_us: s.histogram.value_at_quantile(0.99),
            p999_us: s.histogram.value_at_quantile(0.999),
            max_us: s.histogram.max(),
        })
        .collect();
    let events = merge_connection_notes(
        output
            .notes
            .iter()
            .map(|(t_ns, what)| RunEvent {
                t_s: (*t_ns as f64 - output.window.start_ns as f64) / 1e9,
                what: what.clone(),
            })
            .collect(),
    );
    let run = Run {
        index,
        label,
        offered_ops_s,
        achieved_ops_s: output.totals.completed_in_window as f64 / duration_s,
        ops,
        timeline,
        events,
        passed: None,
        stages: output.stages.clone(),
        faults: output.faults.clone(),
        check: output.check.clone(),
    };
    let mut run = run;
    fill_recovery(&run.timeline, &mut run.faults);
    (run, histograms)
}

/// Each fault's time to recover: from its start to the end of the first
/// second (from the one it starts in) with no errors, at least 90% of the
/// median per-second throughput and a p99 within 2x of the median
/// per-second p99, medians taken between the previous fault's end and this
/// one's start. None when there is no such baseline or no such second.
pub fn fill_recovery(timeline: &[Second], faults: &mut [crate::nemesis::FaultRecord]) {
    let mut previous_end: f64 = 0.0;
    for fault in faults.iter_mut() {
        let before: Vec<&Second> = timeline
            .iter()
            .filter(|s| s.t_s as f64 >= previous_end.ceil() && ((s.t_s + 1) as f64) <= fault.start_s && s.ok > 0)
            .collect();
        previous_end = fault.end_s;
        let median = |mut values: Vec<u64>| {
            values.sort_unstable();
            values.get(values.len() / 2).copied()
        };
        let (Some(p99), Some(ok)) =
            (median(before.iter().map(|s| s.p99_us).collect()), median(before.iter().map(|s| s.ok).collect()))
        else {
            continue;
        };
        // Healthy: no errors, at least 90% of the usual throughput (clients
        // of a cut-off node wait without errors), and the p99 within 2x.
        fault.recovered_s = timeline
            .iter()
            .find(|s| {
                s.t_s as f64 >= fault.start_s.floor() && s.errors == 0 && s.ok * 10 >= ok * 9 && s.p99_us <= 2 * p99
            })
            .map(|s| (s.t_s + 1) as f64 - fault.start_s);
    }
}

/// Connections to a server that dies are lost all at once: one event per
/// burst ("5 connections to A lost"), not one per connection, so charts
/// stay readable. Notes are "connection N to ADDR lost: why".
fn merge_connection_notes(events: Vec<RunEvent>) -> Vec<RunEvent> {
    const BURST_S: f64 = 0.5;
    let target = |what: &str| -> Option<String> {
        let rest = what.strip_prefix("connection ")?;
        let (_, rest) = rest.split_once(" to ")?;
        let (addr, _) = rest.split_once(" lost")?;
        Some(addr.to_string())
    };
    let mut merged: Vec<(RunEvent, Option<String>, usize)> = Vec::new();
    for event in events {
        let addr = target(&event.what);
        if let Some(addr) = &addr {
            let burst =
                merged.iter_mut().rev().find(|(e, a, _)| a.as_ref() == Some(addr) && event.t_s - e.t_s < BURST_S);
            if let Some((first, _, count)) = burst {
                *count += 1;
                first.what = format!("{count} connections to {addr} lost");
                continue;
            }
        }
        merged.push((event, addr, 1));
    }
    merged.into_iter().map(|(event, _, _)| event).collect()
}

/// A row's throughput: the run's achieved rate for "all"; for one
/// operation, its share of it (by its share of the measured requests that
/// got a reply), so that the operations add up to "all".
pub fn op_achieved_ops_s(run: &Run, op: &str) -> f64 {
    let replied = |stats: &OpStats| (stats.ok + stats.errors) as f64;
    share(run, op, run.achieved_ops_s, replied)
}

/// A row's offered rate: the run's for "all", the operation's share of it
/// (by its share of the measured requests) otherwise.
pub fn op_offered_ops_s(run: &Run, op: &str) -> Option<f64> {
    let requests = |stats: &OpStats| (stats.ok + stats.errors + stats.timeouts) as f64;
    run.offered_ops_s.map(|offered| share(run, op, offered, requests))
}

fn share(run: &Run, op: &str, total: f64, weight: impl Fn(&OpStats) -> f64) -> f64 {
    match (op, run.ops.get(op), run.ops.get("all")) {
        ("all", _, _) => total,
        (_, Some(stats), Some(all)) if weight(all) > 0.0 => total * weight(stats) / weight(all),
        _ => 0.0,
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// One line per run and operation.
pub fn summary_table(bundle: &Bundle) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>3}  {:<18} {:<4} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>6}",
        "run",
        "label",
        "op",
        "offered/s",
        "achieved/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "ok",
        "errors",
        "timeouts",
        "passed"
    );
    for run in &bundle.runs {
        let passed = run.passed.map_or("", |p| if p { "yes" } else { "no" });
        for (op, stats) in &run.ops {
            let offered = op_offered_ops_s(run, op).map_or("-".to_string(), |r| format!("{r:.0}"));
            let _ = writeln!(
                text,
                "{:>3}  {:<18} {:<4} {:>10} {:>11.1} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>6}",
                run.index,
                run.label,
                op,
                offered,
                op_achieved_ops_s(run, op),
                ms(stats.p50_us),
                ms(stats.p90_us),
                ms(stats.p99_us),
                ms(stats.p999_us),
                ms(stats.max_us),
                stats.ok,
                stats.errors,
                stats.timeouts,
                passed
            );
        }
    }
    for run in &bundle.runs {
        text.push_str(&faults_and_check(run));
    }
    if let Some(sustainable) = &bundle.sustainable {
        let _ = writeln!(
            text,
            "sustainable: {:.0} ops/s offered, {:.1} achieved, p99 {} ms (bound {} ms)",
            sustainable.offered_ops_s,
            sustainable.achieved_ops_s,
            ms(sustainable.p99_us),
            ms(sustainable.p99_bound_us)
        );
    }
    text
}

/// The server's stages per run, node and shard: mean µs and, in
/// brackets, the samples; one column per stage seen in any run, in the
/// order a request meets them. `None` when no run has stages.
pub fn stage_table(bundle: &Bundle) -> Option<String> {
    let mut stages: Vec<&str> = bundle.runs.iter().flat_map(|r| r.stages.iter().map(|s| s.stage.as_str())).collect();
    if stages.is_empty() {
        return None;
    }
    stages.sort_by_key(|s| (anatomy::stage_rank(s), *s));
    stages.dedup();
    let mut text = String::from("server stages over the measured window (INFO latency): mean µs (samples)\n");
    let _ = write!(text, "{:>3}  {:<21} {:>5}", "run", "node", "shard");
    for stage in &stages {
        let _ = write!(text, " {stage:>14}");
    }
    text.push('\n');
    for run in &bundle.runs {
        let mut rows: Vec<(&str, u32)> = run.stages.iter().map(|s| (s.node.as_str(), s.shard)).collect();
        rows.dedup();
        for (node, shard) in rows {
            let _ = write!(text, "{:>3}  {:<21} {:>5}", run.index, node, shard);
            for stage in &stages {
                let found = run.stages.iter().find(|s| s.node == node && s.shard == shard && s.stage == *stage);
                let cell = found.map_or("-".to_string(), |s| format!("{:.0} ({})", s.mean_us, s.samples));
                let _ = write!(text, " {cell:>14}");
            }
            text.push('\n');
        }
    }
    Some(text)
}

/// The live line: an indicatif spinner on a terminal, otherwise one plain
/// line per second.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    label: String,
    offered_ops_s: Option<f64>,
    warmup_s: f64,
    duration_s: f64,
}

impl Progress {
    pub fn new(enabled: bool, label: &str, offered_ops_s: Option<f64>, warmup_s: f64, duration_s: f64) -> Progress {
        let terminal = std::io::stdout().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            bar.set_message(format!("{label}: connecting"));
            bar
        });
        Progress { bar, plain: enabled && !terminal, label: label.to_string(), offered_ops_s, warmup_s, duration_s }
    }

    pub fn second(&mut self, report: &SecondReport) {
        if self.bar.is_none() && !self.plain {
            return;
        }
        // After the window only the stragglers come in: worth a line only
        // if something went wrong.
        let after_window = report.second as f64 >= self.duration_s;
        if after_window && report.errors + report.timeouts == 0 {
            return;
        }
        let phase = if report.second < 0 {
            let warmup_s = self.warmup_s.ceil();
            format!("warm-up {}/{warmup_s}s", warmup_s as i64 + report.second + 1)
        } else if !after_window {
            format!("{}/{}s", report.second + 1, self.duration_s.ceil())
        } else {
            "drain".to_string()
        };
        let offered = self.offered_ops_s.map_or("closed loop".to_string(), |r| format!("offered {r:.0}/s"));
        let line = format!(
            "{}: {phase:>12} | {offered} achieved {}/s | p99 {} ms | errors {} timeouts {}",
            self.label,
            report.completed,
            ms(report.histogram.value_at_quantile(0.99)),
            report.errors,
            report.timeouts
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => println!("{line}"),
        }
    }

    /// Clears the live line and prints `result` (unless empty) in its place.
    pub fn finish(&mut self, result: &str) {
        let enabled = self.bar.is_some() || self.plain;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if enabled && !result.is_empty() {
            println!("{result}");
        }
    }
}

/// A one-line account of a finished run.
/// A run's faults (with their recovery) and its `--check` verdict, with
/// the operations of the first violations; empty when it has neither.
pub fn faults_and_check(run: &Run) -> String {
    let mut text = String::new();
    for f in &run.faults {
        let recovered =
            f.recovered_s.map_or("not recovered in the window".to_string(), |s| format!("recovered in {s:.1} s"));
        let failed = f.error.as_ref().map_or(String::new(), |e| format!("; FAILED: {e}"));
        let _ = writeln!(
            text,
            "run {} fault: {} node {} at {:.1}-{:.1} s, {recovered}{failed}",
            run.index, f.kind, f.node, f.start_s, f.end_s
        );
    }
    if let Some(check) = &run.check {
        let _ = writeln!(text, "run {} check: {}", run.index, check.headline());
        for v in &check.violations {
            let _ = writeln!(text, "  key {}: {}", v.key, v.summary);
            for op in &v.ops {
                let _ = writeln!(text, "    {op}");
            }
        }
        if !check.keys_over_budget.is_empty() {
            let shown: Vec<&str> = check.keys_over_budget.iter().take(10).map(String::as_str).collect();
            let _ = writeln!(text, "  keys over the search budget (unknown): {}", shown.join(" "));
        }
    }
    text
}

pub fn run_line(run: &Run) -> String {
    let all = &run.ops["all"];
    let mut line = format!(
        "{}: achieved {:.1} ops/s, p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms, errors {}, timeouts {}",
        run.label,
        run.achieved_ops_s,
        ms(all.p50_us),
        ms(all.p99_us),
        ms(all.p999_us),
        ms(all.max_us),
        all.errors,
        all.timeouts
    );
    if let Some(passed) = run.passed {
        line.push_str(if passed { " (pass)" } else { " (fail)" });
    }
    if let Some(check) = &run.check {
        line.push_str(&format!("; check: {}", check.verdict));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::StageMean;

    #[test]
    fn a_fault_recovers_at_the_first_healthy_second_after_it_starts() {
        let second = |t_s: u64, ok: u64, errors: u64, p99_us: u64| Second {
            t_s,
            ok,
            errors,
            p50_us: 100,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
        };
        let timeline = [
            second(0, 1000, 0, 1000),
            second(1, 1000, 0, 1200),
            second(2, 600, 0, 900),    // clients of the cut-off node wait
            second(3, 1000, 5, 900),   // errors
            second(4, 1400, 0, 50000), // the backlog drains
            second(5, 1000, 0, 1500),  // healthy again
            second(6, 1000, 0, 1000),
        ];
        let fault = |start_s: f64, end_s: f64| crate::nemesis::FaultRecord {
            kind: "partition".into(),
            node: 3,
            start_s,
            end_s,
            ..Default::default()
        };
        let mut faults = [fault(2.0, 4.0), fault(0.5, 1.0)];
        fill_recovery(&timeline, &mut faults);
        assert_eq!(faults[0].recovered_s, Some(4.0));
        assert_eq!(faults[1].recovered_s, None, "no second before it to compare with");
    }

    #[test]
    fn the_stage_table_has_a_row_per_node_and_shard_and_a_column_per_stage() {
        let stage = |node: &str, shard: u32, stage: &str, samples: u64, mean_us: f64| StageMean {
            node: node.into(),
            shard,
            stage: stage.into(),
            samples,
            mean_us,
        };
        let run = Run {
            index: 0,
            label: "rate 1000".into(),
            offered_ops_s: Some(1000.0),
            achieved_ops_s: 1000.0,
            ops: BTreeMap::new(),
            timeline: vec![],
            events: vec![],
            passed: None,
            stages: vec![
                stage("127.0.0.1:7001", 0, "parse", 40, 12.4),
                stage("127.0.0.1:7001", 0, "quorum", 20, 812.0),
                stage("127.0.0.1:7002", 0, "reply", 9, 30.0),
                stage("127.0.0.1:7002", 0, "forward", 9, 1500.6),
            ],
            faults: vec![],
            check: None,
        };
        let mut bundle = Bundle {
            format_version: crate::bundle::BUNDLE_FORMAT_VERSION,
            kind: "run".into(),
            command: "loadgen run".into(),
            git_commit: "unknown".into(),
            machine: crate::bundle::Machine {
                cores: 2,
                kernel: "k".into(),
                cpu_model: "c".into(),
                hostname: "h".into(),
            },
            started_unix_s: 0,
            target: "resp://127.0.0.1:7001,127.0.0.1:7002".into(),
            labels: BTreeMap::new(),
            params: crate::engine::tests_support::params(),
            runs: vec![run],
            sustainable: None,
            noise: None,
        };
        let table = stage_table(&bundle).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let header: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(header, ["run", "node", "shard", "parse", "quorum", "forward", "reply"]);
        let first: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(first, ["0", "127.0.0.1:7001", "0", "12", "(40)", "812", "(20)", "-", "-"]);
        assert!(lines[3].contains("1501 (9)"), "{table}");
        bundle.runs[0].stages.clear();
        assert_eq!(stage_table(&bundle), None);
    }

    #[test]
    fn a_burst_of_lost_connections_is_one_event() {
        let event = |t_s: f64, what: &str| RunEvent { t_s, what: what.into() };
        let merged = merge_connection_notes(vec![
            event(3.0, "connection 1 to 127.0.0.1:7 lost: reset"),
            event(3.1, "connection 4 to 127.0.0.1:7 lost: closed by the server"),
            event(3.2, "shard 0: leader node 2"),
            event(3.3, "connection 5 to 127.0.0.1:7 lost: reset"),
            event(3.3, "connection 6 to 127.0.0.1:8 lost: reset"),
            event(9.0, "connection 1 to 127.0.0.1:7 lost: reset"),
        ]);
        let whats: Vec<&str> = merged.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            whats,
            vec![
                "3 connections to 127.0.0.1:7 lost",
                "shard 0: leader node 2",
                "connection 6 to 127.0.0.1:8 lost: reset",
                "connection 1 to 127.0.0.1:7 lost: reset"
            ]
        );
    }
}
