//! Writing a result bundle to disk (layout in bundle.rs): `bundle.json`,
//! `summary.csv` and per run and operation the serialized histogram
//! (`.hdr`, HdrHistogram V2) and its percentile distribution (`.hgrm`).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::bundle::Bundle;
use crate::report::{hdr_file_name, hgrm_file_name, op_achieved_ops_s, op_offered_ops_s, RunHistograms};

/// The `.hgrm` files are in milliseconds, as HdrHistogram's own tools and
/// wrk2 write them; everything else in the bundle is in microseconds.
const HGRM_US_PER_UNIT: f64 = 1000.0;
/// Percentile ticks per half distance to 100 %, as in the classic output.
const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `bundle` and the histograms of its runs (`histograms[i]` belongs
/// to `bundle.runs[i]`) into `dir`, creating it if needed. Histograms are
/// written under the file names the runs' `OpStats` give (or the default
/// `run-<i>-<op>.hdr`/`.hgrm`).
pub fn write_bundle(dir: &Path, bundle: &Bundle, histograms: &[RunHistograms]) -> Result<(), String> {
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("cannot write {what} in {}: {e}", dir.display());
    fs::create_dir_all(dir).map_err(|e| failed("the bundle directory", &e))?;
    let json = serde_json::to_string_pretty(bundle).map_err(|e| failed("bundle.json", &e))?;
    fs::write(dir.join("bundle.json"), json + "\n").map_err(|e| failed("bundle.json", &e))?;
    fs::write(dir.join("summary.csv"), summary_csv(bundle)).map_err(|e| failed("summary.csv", &e))?;
    for (run, run_histograms) in bundle.runs.iter().zip(histograms) {
        for (op, histogram) in run_histograms {
            let stats = run.ops.get(op);
            let hdr = stats.and_then(|s| s.hdr_file.clone()).unwrap_or_else(|| hdr_file_name(run.index, op));
            let hgrm = stats.and_then(|s| s.hgrm_file.clone()).unwrap_or_else(|| hgrm_file_name(run.index, op));
            let mut bytes = Vec::new();
            V2Serializer::new().serialize(histogram, &mut bytes).map_err(|e| failed(&hdr, &format!("{e:?}")))?;
            fs::write(dir.join(&hdr), bytes).map_err(|e| failed(&hdr, &e))?;
            fs::write(dir.join(&hgrm), hgrm_text(histogram)).map_err(|e| failed(&hgrm, &e))?;
        }
    }
    Ok(())
}

/// One row per (run, operation); an operation's offered and achieved rates
/// are its share (see `report::op_offered_ops_s`, `op_achieved_ops_s`).
pub fn summary_csv(bundle: &Bundle) -> String {
    let mut text = String::from(
        "run,label,op,offered_ops_s,achieved_ops_s,ok,errors,timeouts,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,passed\n",
    );
    for run in &bundle.runs {
        for (op, stats) in &run.ops {
            let _ = writeln!(
                text,
                "{},{},{},{},{:.1},{},{},{},{:.1},{},{},{},{},{},{}",
                run.index,
                csv_field(&run.label),
                op,
                op_offered_ops_s(run, op).map_or(String::new(), |r| format!("{r:.0}")),
                op_achieved_ops_s(run, op),
                stats.ok,
                stats.errors,
                stats.timeouts,
                stats.mean_us,
                stats.p50_us,
                stats.p90_us,
                stats.p99_us,
                stats.p999_us,
                stats.max_us,
                run.passed.map_or(String::new(), |p| p.to_string())
            );
        }
    }
    text
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The classic percentile distribution (HdrHistogram's
/// `outputPercentileDistribution`): Value (ms), Percentile, TotalCount,
/// 1/(1-Percentile), then mean, deviation, max, count and bucket layout.
pub fn hgrm_text(histogram: &Histogram<u64>) -> String {
    let mut text = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    for step in histogram.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / HGRM_US_PER_UNIT;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(text, "{value:12.3} {quantile:2.12} {total:10} {:14.2}", 1.0 / (1.0 - quantile));
        } else {
            let _ = writeln!(text, "{value:12.3} {quantile:2.12} {total:10}");
        }
    }
    let (mean, deviation) = if histogram.is_empty() { (0.0, 0.0) } else { (histogram.mean(), histogram.stdev()) };
    let _ = writeln!(
        text,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        mean / HGRM_US_PER_UNIT,
        deviation / HGRM_US_PER_UNIT
    );
    let _ = writeln!(
        text,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / HGRM_US_PER_UNIT,
        histogram.len()
    );
    let _ = writeln!(
        text,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    text
}

/// HdrHistogram's sub-bucket count: 2 * 10^sigfig rounded up to a power of two.
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(sigfig as u32)).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hdrhistogram::serialization::Deserializer;

    use super::*;
    use crate::bundle::{Machine, OpStats, Run, BUNDLE_FORMAT_VERSION};
    use crate::recorder::new_histogram;

    #[test]
    fn hgrm_lists_percentiles_up_to_the_max_with_a_footer() {
        let mut histogram = new_histogram(60_000_000);
        for us in 1..=1000u64 {
            histogram.record(us * 10).unwrap();
        }
        let text = hgrm_text(&histogram);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<&str>> =
            lines[2..].iter().take_while(|l| !l.starts_with('#')).map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0][0], "0.010");
        assert_eq!(rows[0][1], "0.000000000000");
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3, "the 100 % row has no 1/(1-p) column");
        assert_eq!(last[0], "10.007");
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "1000");
        let counts: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
        assert!(text.contains("Total count    =         1000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn the_bundle_round_trips_and_histograms_deserialize() {
        let dir = std::env::temp_dir().join(format!("loadgen-output-test-{}", std::process::id()));
        let mut histogram = new_histogram(60_000_000);
        histogram.record(1234).unwrap();
        let stats = OpStats { ok: 1, p50_us: 1234, ..OpStats::default() };
        let run = Run {
            index: 0,
            label: "rate 10, quoted \"x\"".into(),
            offered_ops_s: Some(10.0),
            achieved_ops_s: 9.5,
            ops: BTreeMap::from([("all".to_string(), stats)]),
            timeline: vec![],
            events: vec![],
            passed: Some(true),
            stages: vec![],
            faults: vec![],
            check: None,
        };
        let bundle = Bundle {
            format_version: BUNDLE_FORMAT_VERSION,
            kind: "run".into(),
            command: "loadgen run".into(),
            git_commit: "unknown".into(),
            machine: Machine { cores: 2, kernel: "k".into(), cpu_model: "c".into(), hostname: "h".into() },
            started_unix_s: 0,
            target: "resp://127.0.0.1:1".into(),
            labels: BTreeMap::new(),
            params: crate::engine::tests_support::params(),
            runs: vec![run],
            sustainable: None,
            noise: None,
        };
        let histograms = vec![BTreeMap::from([("all".to_string(), histogram.clone())])];
        write_bundle(&dir, &bundle, &histograms).unwrap();
        let json = fs::read_to_string(dir.join("bundle.json")).unwrap();
        let back: Bundle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, bundle);
        let bytes = fs::read(dir.join("run-0-all.hdr")).unwrap();
        let read: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
        assert_eq!(read, histogram);
        let csv = fs::read_to_string(dir.join("summary.csv")).unwrap();
        assert!(csv.lines().nth(1).unwrap().starts_with("0,\"rate 10, quoted \"\"x\"\"\",all,10,9.5,1,"), "{csv}");
        assert!(dir.join("run-0-all.hgrm").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
