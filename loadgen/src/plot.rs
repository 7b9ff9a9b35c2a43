//! Charts of a result bundle, as SVG (`loadgen plot BUNDLE_DIR` redraws them).
//!
//! A run bundle gets `throughput-latency.svg` (when it holds two runs or
//! more: a rate sweep or a find-max ramp), `latency-percentiles.svg` and
//! `timeline.svg`, and `stages.svg` when its runs hold the server's
//! latency anatomy (see plot/stages.rs). A comparison gets `comparison-throughput.svg`,
//! `comparison-latency.svg` and `comparison-percentiles.svg`, and each of
//! its run bundles under `runs/` gets its own charts. `plot_stall` draws the
//! open- vs closed-loop picture of one stall (`stall.svg`).
//!
//! Every chart carries a title saying what is drawn and in which unit, and a
//! caption with the target, the load mode, the labels (durability,
//! profile, ...), the git commit and the machine, taken from the bundle.
//!
//! Latencies are drawn in milliseconds on log axes, with a floor of 1 µs so
//! that zero latencies stay drawable. A second without any completion has
//! no latency: its point is left out and the line broken there.
//!
//! This file loads bundles and draws a run bundle's own charts; beside it,
//! `plot/axis.rs` (axes and their grid lines), `plot/draw.rs` (the page,
//! colours, frames, legends, events), `plot/stages.rs`, `plot/stall.rs` and
//! `plot/comparison.rs` (the charts they name).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bundle::{Bundle, Comparison, OpStats, ProfileResult, RepeatResult, Run, RunEvent};

use axis::*;
use comparison::*;
use draw::*;
use stall::*;

mod axis;
mod comparison;
mod draw;
mod stages;
mod stall;
#[cfg(test)]
mod tests;

/// `loadgen plot BUNDLE_DIR`: redraw the charts of a result bundle.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A run bundle directory (holding bundle.json) or a comparison
    /// directory (holding comparison.json and its run bundles under runs/).
    pub dir: PathBuf,
}

/// Runs `loadgen plot`: prints the SVG paths written, one a line.
pub fn run(args: PlotArgs) -> ExitCode {
    match plot_dir(&args.dir) {
        Ok(paths) => {
            if paths.is_empty() {
                eprintln!("loadgen plot: nothing to draw in {}", args.dir.display());
            }
            for path in paths {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen plot: {e}");
            ExitCode::FAILURE
        }
    }
}

pub const THROUGHPUT_LATENCY_SVG: &str = "throughput-latency.svg";
pub const PERCENTILES_SVG: &str = "latency-percentiles.svg";
pub const TIMELINE_SVG: &str = "timeline.svg";
pub const STAGES_SVG: &str = "stages.svg";
pub const COMPARISON_THROUGHPUT_SVG: &str = "comparison-throughput.svg";
pub const COMPARISON_LATENCY_SVG: &str = "comparison-latency.svg";
pub const COMPARISON_PERCENTILES_SVG: &str = "comparison-percentiles.svg";
pub const STALL_SVG: &str = "stall.svg";

/// Redraw every chart of a bundle directory: a run bundle (bundle.json) or a
/// comparison (comparison.json, whose run bundles are under runs/). Returns the SVG paths written.
pub fn plot_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let comparison_json = dir.join("comparison.json");
    if comparison_json.is_file() {
        let comparison: Comparison = read_json(&comparison_json)?;
        let loaded = load_comparison_runs(dir, &comparison);
        let mut written = Vec::new();
        let mut run_bundles = Vec::with_capacity(loaded.len());
        for (profile, bundle_dir, bundle) in loaded {
            written.extend(plot_bundle(&bundle_dir, &bundle)?);
            run_bundles.push((profile, bundle));
        }
        written.extend(plot_comparison(dir, &comparison, &run_bundles)?);
        return Ok(written);
    }
    let bundle_json = dir.join("bundle.json");
    if bundle_json.is_file() {
        let bundle: Bundle = read_json(&bundle_json)?;
        return plot_bundle(dir, &bundle);
    }
    Err(format!("{}: neither comparison.json nor bundle.json found", dir.display()))
}

/// Draw the charts of one run bundle into `dir`. Charts without data are
/// skipped (the throughput-latency chart needs two runs at least, the
/// stages chart a run with stages).
pub fn plot_bundle(dir: &Path, bundle: &Bundle) -> Result<Vec<PathBuf>, String> {
    make_dir(dir)?;
    type Draw = fn(&Path, &Bundle) -> Result<bool, String>;
    let charts: [(&str, Draw); 4] = [
        (THROUGHPUT_LATENCY_SVG, chart_throughput_latency),
        (PERCENTILES_SVG, chart_percentiles),
        (TIMELINE_SVG, chart_timeline),
        (STAGES_SVG, stages::chart_stages),
    ];
    let mut written = Vec::new();
    for (name, draw) in charts {
        let path = dir.join(name);
        let was_drawn = draw(&path, bundle)?;
        written.extend(drawn(path, was_drawn));
    }
    Ok(written)
}

/// The path of a chart if it was drawn; else an older chart of that name
/// is removed, so that the directory shows no stale chart.
fn drawn(path: PathBuf, was_drawn: bool) -> Option<PathBuf> {
    if was_drawn {
        Some(path)
    } else {
        let _ = fs::remove_file(&path);
        None
    }
}

/// Draw the charts of a comparison into `dir`. `run_bundles` holds the run
/// bundles as (profile, bundle); the percentile chart needs them, the other
/// two use only `comparison`.
pub fn plot_comparison(
    dir: &Path,
    comparison: &Comparison,
    run_bundles: &[(String, Bundle)],
) -> Result<Vec<PathBuf>, String> {
    make_dir(dir)?;
    let mut written = Vec::new();
    let caption = comparison_caption(comparison, run_bundles);
    let path = dir.join(COMPARISON_THROUGHPUT_SVG);
    let was_drawn = chart_comparison_throughput(&path, comparison, &caption)?;
    written.extend(drawn(path, was_drawn));
    let path = dir.join(COMPARISON_LATENCY_SVG);
    let was_drawn = chart_comparison_latency(&path, comparison, &caption)?;
    written.extend(drawn(path, was_drawn));
    let path = dir.join(COMPARISON_PERCENTILES_SVG);
    let was_drawn = chart_comparison_percentiles(&path, comparison, run_bundles, &caption)?;
    written.extend(drawn(path, was_drawn));
    Ok(written)
}

/// Draw `stall.svg`: the per-second p99.9 and max latency of the same stall
/// under open loop (above) and closed loop (below), on one latency scale,
/// with the runs' events marked. Each bundle's run is its last run with
/// events (else its last run with a timeline).
pub fn plot_stall(dir: &Path, open: &Bundle, closed: &Bundle) -> Result<PathBuf, String> {
    make_dir(dir)?;
    let path = dir.join(STALL_SVG);
    chart_stall(&path, open, closed)?;
    Ok(path)
}

/// The whole-run latency percentiles of the two stall runs on one chart:
/// where coordinated omission shows (the closed loop's p99 hides the stall).
pub fn plot_stall_percentiles(dir: &Path, open: &Bundle, closed: &Bundle) -> Result<PathBuf, String> {
    make_dir(dir)?;
    let mut both = open.clone();
    let mut open_run = open.runs.first().ok_or("the open-loop bundle has no run")?.clone();
    let mut closed_run = closed.runs.first().ok_or("the closed-loop bundle has no run")?.clone();
    open_run.label = "open loop (intended time)".into();
    closed_run.label = "closed loop (send time)".into();
    closed_run.index = 1;
    both.runs = vec![open_run, closed_run];
    let path = dir.join("stall-percentiles.svg");
    chart_percentiles(&path, &both)?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// Loading

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn make_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// A bundle path given as a directory or as its bundle.json.
fn load_bundle_at(path: &Path) -> Option<(PathBuf, Bundle)> {
    let (dir, json) = if path.is_dir() {
        (path.to_path_buf(), path.join("bundle.json"))
    } else {
        (path.parent()?.to_path_buf(), path.to_path_buf())
    };
    if !json.is_file() {
        return None;
    }
    match read_json::<Bundle>(&json) {
        Ok(bundle) => Some((dir, bundle)),
        Err(e) => {
            eprintln!("loadgen plot: skipping {e}");
            None
        }
    }
}

/// The run bundles of a comparison as (profile, directory, bundle): the
/// repeats' `bundle` paths first (relative to the comparison directory or
/// to its runs/), else every runs/*/bundle.json.
fn load_comparison_runs(dir: &Path, comparison: &Comparison) -> Vec<(String, PathBuf, Bundle)> {
    let mut found = Vec::new();
    for profile in &comparison.profiles {
        for repeat in &profile.repeats {
            if repeat.bundle.is_empty() {
                continue;
            }
            let loaded = load_bundle_at(&dir.join(&repeat.bundle))
                .or_else(|| load_bundle_at(&dir.join("runs").join(&repeat.bundle)));
            match loaded {
                Some((bundle_dir, bundle)) => found.push((profile.name.clone(), bundle_dir, bundle)),
                None => eprintln!("loadgen plot: run bundle {} of {} not found", repeat.bundle, profile.name),
            }
        }
    }
    if !found.is_empty() {
        return found;
    }
    let Ok(entries) = fs::read_dir(dir.join("runs")) else { return found };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for bundle_dir in dirs {
        let Some((bundle_dir, bundle)) = load_bundle_at(&bundle_dir) else { continue };
        let profile = bundle.labels.get("profile").cloned().unwrap_or_else(|| {
            let name = bundle_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match name.rsplit_once("-r") {
                Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head.to_string(),
                _ => name,
            }
        });
        found.push((profile, bundle_dir, bundle));
    }
    found
}

// ---------------------------------------------------------------------------
// Numbers and labels

/// Latencies below this are drawn at it (log axes have no zero).
const LATENCY_FLOOR_US: u64 = 1;

fn ms(us: u64) -> f64 {
    us.max(LATENCY_FLOOR_US) as f64 / 1000.0
}

/// log10 of a latency in ms: the y coordinate of every latency axis.
fn lg(us: u64) -> f64 {
    ms(us).log10()
}

fn trim_decimals(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// 1234567 -> "1.23M", 23400 -> "23.4k", 950 -> "950".
fn fmt_rate(value: f64) -> String {
    if !value.is_finite() {
        return "?".to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{}M", trim_decimals(value / 1e6, 2))
    } else if magnitude >= 1e3 {
        format!("{}k", trim_decimals(value / 1e3, 1))
    } else {
        trim_decimals(value, 1)
    }
}

/// A latency in µs shown in ms with three significant digits.
fn fmt_ms(us: u64) -> String {
    let value = us as f64 / 1000.0;
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else if value >= 1.0 {
        2
    } else {
        3
    };
    format!("{} ms", trim_decimals(value, decimals))
}

/// A tick of a log ms axis (the value is log10(ms)).
fn fmt_ms_tick(log_ms: f64) -> String {
    let value = 10f64.powf(log_ms);
    let decimals = if value >= 1.0 { 0 } else { ((-value.log10()).ceil() as usize).min(6) };
    trim_decimals(value, decimals)
}

fn fmt_ratio(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("×{ratio:.2}")
    } else {
        "×?".to_string()
    }
}

fn finite(values: impl IntoIterator<Item = f64>) -> impl Iterator<Item = f64> {
    values.into_iter().filter(|v| v.is_finite())
}

fn max_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    finite(values).fold(None, |acc, v| Some(acc.map_or(v, |a: f64| a.max(v))))
}

fn min_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    finite(values).fold(None, |acc, v| Some(acc.map_or(v, |a: f64| a.min(v))))
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// The stats of a run drawn as its headline: "all", or its only op.
fn all_stats(run: &Run) -> Option<&OpStats> {
    run.ops.get("all").or_else(|| if run.ops.len() == 1 { run.ops.values().next() } else { None })
}

/// The percentile curve of an op as (percentile, µs), sorted; falls back on
/// the summary figures when `percentiles` is empty. Empty when no data.
fn curve(stats: &OpStats) -> Vec<(f64, u64)> {
    let mut points: Vec<(f64, u64)> = stats
        .percentiles
        .iter()
        .copied()
        .filter(|(p, _)| p.is_finite() && *p >= 0.0)
        .map(|(p, v)| (p.min(100.0), v))
        .collect();
    let has_data = stats.ok.saturating_add(stats.errors).saturating_add(stats.timeouts) > 0 || stats.max_us > 0;
    if points.is_empty() && has_data {
        points = vec![
            (50.0, stats.p50_us),
            (90.0, stats.p90_us),
            (99.0, stats.p99_us),
            (99.9, stats.p999_us),
            (100.0, stats.max_us),
        ];
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn mode_text(params: &crate::bundle::Params) -> String {
    match params.mode.as_str() {
        "open" => format!("open loop ({} arrivals, {} connections)", params.arrivals, params.connections),
        "closed" => format!("closed loop ({} connections × {} outstanding)", params.connections, params.pipeline),
        other => format!("mode {other}"),
    }
}

fn workload_text(params: &crate::bundle::Params) -> String {
    let reads = if params.read_ratio.is_finite() { (params.read_ratio * 100.0).round() } else { f64::NAN };
    format!("{reads}% reads, {} keys {}, {} B values", params.keys, params.distribution, params.value_bytes)
}

/// The labels, durability and profile first.
fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let first = ["durability", "profile"];
    let mut parts: Vec<String> =
        first.iter().filter_map(|k| labels.get(*k).map(|v| format!("{k}={v}"))).collect::<Vec<_>>();
    parts.extend(labels.iter().filter(|(k, _)| !first.contains(&k.as_str())).map(|(k, v)| format!("{k}={v}")));
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

fn machine_text(machine: &crate::bundle::Machine) -> String {
    format!("{} cores, {}", machine.cores, machine.kernel)
}

fn bundle_caption(bundle: &Bundle) -> Vec<String> {
    let mut parts = vec![format!("target {}", bundle.target), mode_text(&bundle.params), workload_text(&bundle.params)];
    parts.extend(labels_text(&bundle.labels));
    parts.push(format!("git {}", bundle.git_commit));
    parts.push(machine_text(&bundle.machine));
    wrap_caption(&parts)
}

/// Joins caption parts with " · " into lines short enough for the chart width.
fn wrap_caption(parts: &[String]) -> Vec<String> {
    let max_chars = (WIDTH as usize - 2 * MARGIN as usize) / 7;
    let mut lines: Vec<String> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 3 + part.chars().count() <= max_chars => {
                line.push_str(" · ");
                line.push_str(part);
            }
            _ => lines.push(shorten(part, max_chars)),
        }
    }
    lines
}

// ---------------------------------------------------------------------------
// Run bundle charts

/// throughput-latency.svg: p50/p99/p99.9 against achieved ops/s, one point
/// per run. Skipped (false) with fewer than two runs with data.
fn chart_throughput_latency(path: &Path, bundle: &Bundle) -> Result<bool, String> {
    struct Point {
        x: f64,
        offered: Option<f64>,
        lat: [u64; 3],
        failed: bool,
    }
    let mut points: Vec<Point> = bundle
        .runs
        .iter()
        .filter_map(|run| {
            let stats = all_stats(run)?;
            if !run.achieved_ops_s.is_finite() || run.achieved_ops_s < 0.0 {
                return None;
            }
            Some(Point {
                x: run.achieved_ops_s,
                offered: run.offered_ops_s.filter(|o| o.is_finite()),
                lat: [stats.p50_us, stats.p99_us, stats.p999_us],
                failed: run.passed == Some(false),
            })
        })
        .collect();
    if points.len() < 2 {
        return Ok(false);
    }
    if points.iter().all(|p| p.offered.is_some()) {
        points.sort_by(|a, b| a.offered.unwrap_or(0.0).total_cmp(&b.offered.unwrap_or(0.0)));
    }
    let find_max = bundle.sustainable.is_some() || bundle.runs.iter().any(|r| r.passed.is_some());
    let kind = if find_max {
        "find-max ramp"
    } else if points.iter().all(|p| p.offered.is_some()) {
        "rate sweep"
    } else {
        "runs"
    };
    let title = format!(
        "Latency vs achieved throughput — {} {kind}{}: p50, p99, p99.9 (ms, log scale)",
        points.len(),
        if kind == "runs" { "" } else { " steps" }
    );
    let sustainable = bundle.sustainable.as_ref().filter(|s| s.achieved_ops_s.is_finite());
    let x = Axis::linear_from_zero(
        max_of(points.iter().map(|p| p.x).chain(sustainable.map(|s| s.achieved_ops_s))),
        1.05,
        "achieved throughput (ops/s)",
        fmt_rate,
    );
    let bound = sustainable.map(|s| s.p99_bound_us);
    // Room under the lowest p50 for the offered-rate labels.
    let room = points.iter().map(|p| p.lat[0].max(LATENCY_FLOOR_US * 3) / 3).min();
    let values = points.iter().flat_map(|p| p.lat).chain(bound).chain(room);
    let y = Axis::log_ms(values, 3.0, "latency (ms, log scale)");

    let caption = bundle_caption(bundle);
    let (root, body) = page(path, (WIDTH, HEIGHT), &title, &caption)?;
    let mut chart = cartesian(&body, &x, &y, &PANEL)?;

    if let Some(s) = sustainable {
        let bound_y = lg(s.p99_bound_us);
        chart
            .draw_series(dashed(vec![(x.lo, bound_y), (x.hi, bound_y)], GREY.stroke_width(1)))
            .map_err(de)?
            .label(format!("p99 bound {}", fmt_ms(s.p99_bound_us)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], GREY.stroke_width(1)));
        chart
            .draw_series(dashed(vec![(s.achieved_ops_s, y.lo), (s.achieved_ops_s, y.hi)], GREEN_.stroke_width(2)))
            .map_err(de)?
            .label(format!(
                "sustainable: {} ops/s achieved (offered {}), p99 {}",
                fmt_rate(s.achieved_ops_s),
                fmt_rate(s.offered_ops_s),
                fmt_ms(s.p99_us)
            ))
            .legend(line_legend(GREEN_));
    }

    let series: [(&str, RGBColor); 3] = [("p50", BLUE_), ("p99", ORANGE), ("p99.9", RED_)];
    for (i, (name, color)) in series.iter().enumerate() {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (p.x, lg(p.lat[i]))), color.stroke_width(2)))
            .map_err(de)?
            .label(*name)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (22, 0)], color.stroke_width(2))
                    + Circle::new((11, 0), 4, color.filled())
            });
        chart
            .draw_series(points.iter().map(|p| {
                let style = if p.failed { WHITE.filled() } else { color.filled() };
                Circle::new((p.x, lg(p.lat[i])), if p.failed { 5 } else { 4 }, style)
            }))
            .map_err(de)?;
        chart
            .draw_series(
                points.iter().filter(|p| p.failed).map(|p| Circle::new((p.x, lg(p.lat[i])), 5, color.stroke_width(2))),
            )
            .map_err(de)?;
    }
    // The offered rate under each p50 point: the x axis (achieved) piles up at saturation.
    for (i, p) in points.iter().enumerate() {
        if let Some(offered) = p.offered {
            let dy = 8 + 14 * (i % 2) as i32;
            annotate(
                &mut chart,
                (p.x, lg(p.lat[0])),
                (0, dy),
                fmt_rate(offered),
                text_style(12, GREY, HPos::Center, VPos::Top),
            )?;
        }
    }
    if points.iter().any(|p| p.offered.is_some()) {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("grey numbers: offered ops/s")
            .legend(|(x, y)| Text::new("20k", (x, y - 6), text_style(12, GREY, HPos::Left, VPos::Top)));
    }
    if points.iter().any(|p| p.failed) {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("hollow: failed step (p99 over the bound or fell behind)")
            .legend(|(x, y)| Circle::new((x + 11, y), 5, GREY.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(de)?;
    Ok(true)
}

/// The x coordinate of a percentile on the 1/(1-p) log axis: log10(1/(1-p)).
fn percentile_x(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

/// The percentile axis: "50%" .. "99.9…%" up to `nines` decades, then "max"
/// one decade further when some curve ends at the 100th percentile.
fn percentile_axis(curves: &[Vec<(f64, u64)>]) -> (Axis, f64) {
    let deepest = max_of(curves.iter().flatten().filter(|(p, _)| *p < 100.0).map(|(p, _)| percentile_x(*p).ceil()));
    let nines = deepest.unwrap_or(3.0).clamp(3.0, 7.0);
    let has_max = curves.iter().flatten().any(|(p, _)| *p >= 100.0);
    let max_x = if has_max { nines + 1.0 } else { nines };
    let mut ticks = vec![2f64.log10()];
    ticks.extend((1..=nines as u32).map(f64::from));
    if has_max {
        ticks.push(max_x);
    }
    let label = move |v: f64| -> String {
        if (v - 2f64.log10()).abs() < 1e-6 {
            "50%".to_string()
        } else if has_max && (v - max_x).abs() < 1e-6 {
            "max".to_string()
        } else {
            match v.round() as usize {
                0 => "0%".to_string(),
                1 => "90%".to_string(),
                2 => "99%".to_string(),
                k => format!("99.{}%", "9".repeat(k - 2)),
            }
        }
    };
    let axis = Axis {
        lo: 0.0,
        hi: max_x + 0.05,
        ticks,
        light: Vec::new(),
        desc: "percentile (log scale of 1/(1−p))".to_string(),
        fmt: Box::new(label),
    };
    (axis, max_x)
}

/// A named percentile curve, (percentile, µs) points, and its line style.
type Curve = (String, Vec<(f64, u64)>, ShapeStyle);

/// Draws percentile curves with a legend.
fn draw_percentile_chart(path: &Path, title: &str, caption: &[String], curves: &[Curve]) -> Result<(), String> {
    let just_curves: Vec<Vec<(f64, u64)>> = curves.iter().map(|(_, c, _)| c.clone()).collect();
    let (x, max_x) = percentile_axis(&just_curves);
    let y = Axis::log_ms(just_curves.iter().flatten().map(|(_, v)| *v), 2.0, "latency (ms, log scale)");
    let (root, body) = page(path, (WIDTH, HEIGHT), title, caption)?;
    let mut chart = cartesian(&body, &x, &y, &PANEL)?;
    let to_xy = |(p, v): &(f64, u64)| (if *p >= 100.0 { max_x } else { percentile_x(*p).min(max_x - 0.5) }, lg(*v));
    for (name, points, style) in curves {
        let style = *style;
        let xy: Vec<(f64, f64)> = points.iter().map(to_xy).collect();
        chart
            .draw_series(LineSeries::new(xy.clone(), style))
            .map_err(de)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
        chart.draw_series(xy.into_iter().map(|p| Circle::new(p, 3, style.color.filled()))).map_err(de)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(de)
}

/// latency-percentiles.svg: one line per run (several runs) or per op (one run).
fn chart_percentiles(path: &Path, bundle: &Bundle) -> Result<bool, String> {
    let mut curves: Vec<Curve> = Vec::new();
    let title;
    let runs_with_data: Vec<&Run> =
        bundle.runs.iter().filter(|r| r.ops.values().any(|s| !curve(s).is_empty())).collect();
    if let [run] = runs_with_data.as_slice() {
        title = format!("Latency by percentile — run “{}”, one line per operation (ms, log scale)", run.label);
        let mut other = 0;
        for (op, stats) in &run.ops {
            let points = curve(stats);
            if points.is_empty() {
                continue;
            }
            let style = if op == "all" {
                BLACK.stroke_width(3)
            } else {
                other += 1;
                palette(other - 1).stroke_width(2)
            };
            curves.push((op.clone(), points, style));
        }
        // "all" last, on top.
        curves.sort_by_key(|(op, _, _)| op == "all");
    } else {
        title = format!(
            "Latency by percentile — one line per run ({} runs), all operations (ms, log scale)",
            runs_with_data.len()
        );
        for (i, run) in runs_with_data.iter().enumerate() {
            let Some(stats) = all_stats(run) else { continue };
            let points = curve(stats);
            if points.is_empty() {
                continue;
            }
            let failed = if run.passed == Some(false) { " (failed)" } else { "" };
            curves.push((format!("{}{failed}", shorten(&run.label, 40)), points, palette(i).stroke_width(2)));
        }
    }
    if curves.is_empty() {
        return Ok(false);
    }
    draw_percentile_chart(path, &title, &bundle_caption(bundle), &curves)?;
    Ok(true)
}

/// The run a bundle's timeline chart shows, and why, when there are many.
fn timeline_run(bundle: &Bundle) -> Option<(&Run, String)> {
    let with_timeline: Vec<&Run> = bundle.runs.iter().filter(|r| !r.timeline.is_empty()).collect();
    let count = with_timeline.len();
    let last = *with_timeline.last()?;
    if count == 1 {
        return Some((last, String::new()));
    }
    if let Some(run) = with_timeline.iter().rev().find(|r| !r.events.is_empty()) {
        return Some((run, format!("the last run with events, of {count}")));
    }
    if let Some(s) = &bundle.sustainable {
        let best = with_timeline
            .iter()
            .filter(|r| r.passed == Some(true))
            .filter_map(|r| Some((*r, (r.offered_ops_s? - s.offered_ops_s).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((run, _)) = best {
            return Some((run, format!("the sustainable step of {count}")));
        }
    }
    Some((last, format!("the last of {count} runs")))
}

/// Replies (ok or error) in a second.
fn completed(second: &crate::bundle::Second) -> u64 {
    second.ok.saturating_add(second.errors)
}

/// One point per second at its middle; None where nothing completed.
fn per_second(run: &Run, pick: fn(&crate::bundle::Second) -> u64) -> Vec<Option<(f64, f64)>> {
    let mut points = Vec::new();
    let mut previous: Option<u64> = None;
    for second in &run.timeline {
        // A gap in t_s breaks the line too.
        if previous.is_some_and(|p| second.t_s > p.saturating_add(1)) {
            points.push(None);
        }
        previous = Some(second.t_s);
        let empty = completed(second) == 0 && pick(second) == 0;
        points.push(if empty { None } else { Some((second.t_s as f64 + 0.5, lg(pick(second)))) });
    }
    points
}

/// The span of a timeline chart: the seconds, and events a little past them
/// (events far outside are not drawn).
fn timeline_seconds(run: &Run) -> f64 {
    let seconds = max_of(run.timeline.iter().map(|s| s.t_s as f64 + 1.0)).unwrap_or(1.0);
    let late_events = run.events.iter().map(|e| e.t_s.ceil()).filter(|t| *t <= seconds * 1.25 + 1.0);
    max_of(late_events).map_or(seconds, |t| t.max(seconds))
}

type SecondPick = (&'static str, RGBColor, u32, fn(&crate::bundle::Second) -> u64);

const TIMELINE_LATENCIES: [SecondPick; 4] = [
    ("p50", BLUE_, 2, |s| s.p50_us),
    ("p99", ORANGE, 2, |s| s.p99_us),
    ("p99.9", RED_, 2, |s| s.p999_us),
    ("max", GREY, 1, |s| s.max_us),
];

/// timeline.svg: per-second throughput (top) and latency (bottom) of one run.
fn chart_timeline(path: &Path, bundle: &Bundle) -> Result<bool, String> {
    let Some((run, why)) = timeline_run(bundle) else { return Ok(false) };
    let which =
        if why.is_empty() { format!("run “{}”", run.label) } else { format!("run “{}”, {why}", run.label) };
    let title = format!("Per second: throughput (ops/s) and latency (ms, log scale) — {which}");
    let x = Axis::seconds(timeline_seconds(run));
    let (root, body) = page(path, (WIDTH, HEIGHT + 120), &title, &bundle_caption(bundle))?;
    let top_height = body.dim_in_pixel().1 * 2 / 5;
    let (top, bottom) = body.split_vertically(top_height);

    let offered = run.offered_ops_s.filter(|o| o.is_finite() && *o > 0.0);
    let rate_max = max_of(run.timeline.iter().map(|s| completed(s) as f64).chain(offered));
    let y_rate = Axis::linear_from_zero(rate_max, 1.3, "completed (ops/s)", fmt_rate);
    let errors = run.timeline.iter().any(|s| s.errors > 0);
    let mut heading = "completed per second — blue bars: ok replies".to_string();
    if errors {
        heading.push_str(", red: errors");
    }
    if let Some(rate) = offered {
        heading.push_str(&format!(", dashed line: offered {} ops/s", fmt_rate(rate)));
    }
    let mut chart = cartesian(&top, &x, &y_rate, &Panel { heading: Some(&heading), x_labels: false, ..PANEL })?;
    chart
        .draw_series(run.timeline.iter().map(|s| {
            let t = s.t_s as f64;
            Rectangle::new([(t + 0.08, 0.0), (t + 0.92, s.ok as f64)], LIGHT_BLUE.filled())
        }))
        .map_err(de)?;
    if errors {
        chart
            .draw_series(run.timeline.iter().filter(|s| s.errors > 0).map(|s| {
                let t = s.t_s as f64;
                Rectangle::new([(t + 0.08, s.ok as f64), (t + 0.92, completed(s) as f64)], RED_.filled())
            }))
            .map_err(de)?;
    }
    if let Some(rate) = offered {
        chart.draw_series(dashed(vec![(x.lo, rate), (x.hi, rate)], BLACK.stroke_width(1))).map_err(de)?;
    }
    draw_faults(&mut chart, run, &y_rate, true)?;
    let events = chart_events(run);
    draw_events(&mut chart, &events, &x, &y_rate, true)?;

    let y_lat = Axis::log_ms(
        run.timeline.iter().filter(|s| completed(s) > 0).flat_map(|s| [s.p50_us, s.max_us]),
        4.0,
        "latency (ms, log scale)",
    );
    let mut chart = cartesian(&bottom, &x, &y_lat, &PANEL)?;
    draw_faults(&mut chart, run, &y_lat, false)?;
    draw_events(&mut chart, &events, &x, &y_lat, false)?;
    for (name, color, width, pick) in TIMELINE_LATENCIES {
        draw_broken_line(&mut chart, &per_second(run, pick), color.stroke_width(width))?;
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(width + 1)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(de)?;
    Ok(true)
}
