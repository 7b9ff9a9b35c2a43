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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bundle::{Bundle, Comparison, OpStats, ProfileResult, RepeatResult, Run, RunEvent};

mod stages;
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
// Drawing helpers

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 680;
const MARGIN: i32 = 16;
const FONT: &str = "sans-serif";

const BLUE_: RGBColor = RGBColor(31, 100, 180);
const ORANGE: RGBColor = RGBColor(235, 125, 20);
const RED_: RGBColor = RGBColor(200, 30, 40);
const GREY: RGBColor = RGBColor(90, 90, 90);
const LIGHT_GREY: RGBColor = RGBColor(225, 225, 225);
const GREEN_: RGBColor = RGBColor(30, 140, 60);
const PURPLE: RGBColor = RGBColor(130, 50, 160);
const LIGHT_BLUE: RGBColor = RGBColor(160, 195, 230);

/// Colours for one line per run, profile or op.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 100, 180),
    RGBColor(235, 125, 20),
    RGBColor(40, 150, 60),
    RGBColor(200, 30, 40),
    RGBColor(140, 90, 190),
    RGBColor(140, 85, 70),
    RGBColor(220, 110, 190),
    RGBColor(110, 110, 110),
    RGBColor(180, 180, 30),
    RGBColor(20, 180, 200),
];

fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn de<E: std::fmt::Display>(e: E) -> String {
    format!("drawing: {e}")
}

type Coord = Cartesian2d<Ticked, Ticked>;

/// A linear f64 coordinate whose grid lines are given: `bold` ones
/// (labelled) and `light` ones.
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let fraction = if span > 0.0 { (value - self.lo) / span } else { 0.5 };
        // NaN maps to the start; far-off values are clamped so pixels stay in i32.
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(-100.0, 100.0) };
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One axis: its range, its labelled ticks (bold grid lines), unlabelled
/// light grid lines, its description and its tick formatter.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    light: Vec<f64>,
    desc: String,
    fmt: Box<dyn Fn(f64) -> String>,
}

impl Axis {
    fn spec(&self) -> Ticked {
        Ticked { lo: self.lo, hi: self.hi, bold: self.ticks.clone(), light: self.light.clone() }
    }

    /// A linear axis from 0 to a round number above `max`.
    fn linear_from_zero(max: Option<f64>, headroom: f64, desc: &str, fmt: fn(f64) -> String) -> Axis {
        let max = max.filter(|m| *m > 0.0).unwrap_or(1.0) * headroom;
        let step = nice_step(max / 6.0);
        let hi = (max / step).ceil() * step;
        let count = (hi / step).round() as usize;
        let ticks = (0..=count).map(|i| i as f64 * step).collect();
        Axis { lo: 0.0, hi, ticks, light: Vec::new(), desc: desc.to_string(), fmt: Box::new(fmt) }
    }

    /// A linear axis around [min, max] with some room on both sides (not from 0).
    fn linear_around(values: impl IntoIterator<Item = f64>, desc: &str, fmt: fn(f64) -> String) -> Axis {
        let values: Vec<f64> = finite(values).collect();
        let (Some(min), Some(max)) = (min_of(values.iter().copied()), max_of(values.iter().copied())) else {
            return Axis::linear_from_zero(None, 1.0, desc, fmt);
        };
        let pad = if max > min { (max - min) * 0.12 } else { max.abs().max(1.0) * 0.1 };
        let step = nice_step((max - min + 2.0 * pad) / 6.0);
        let lo = ((min - pad) / step).floor() * step;
        let lo = if min >= 0.0 { lo.max(0.0) } else { lo };
        let hi = ((max + pad) / step).ceil() * step;
        let count = ((hi - lo) / step).round() as usize;
        let ticks = (0..=count).map(|i| lo + i as f64 * step).collect();
        Axis { lo, hi, ticks, light: Vec::new(), desc: desc.to_string(), fmt: Box::new(fmt) }
    }

    /// A log axis of latencies: `values` in µs; coordinates are log10(ms).
    fn log_ms(values: impl IntoIterator<Item = u64>, headroom: f64, desc: &str) -> Axis {
        let mut lo_ms = f64::INFINITY;
        let mut hi_ms = 0.0f64;
        for us in values {
            lo_ms = lo_ms.min(ms(us));
            hi_ms = hi_ms.max(ms(us));
        }
        if !(lo_ms.is_finite() && hi_ms > 0.0) {
            (lo_ms, hi_ms) = (1.0, 10.0);
        }
        hi_ms *= headroom;
        // Snap both ends to the 1-2-5 sequence.
        let lo = one_two_five_below(lo_ms).log10();
        let mut hi = one_two_five_above(hi_ms).log10();
        if hi - lo < 1.0 {
            hi = lo + 1.0;
        }
        let decades = (lo.floor() as i32)..=(hi.ceil() as i32);
        let steps: &[f64] = if hi - lo <= 3.2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let inside = |v: f64| v >= lo - 1e-9 && v <= hi + 1e-9;
        let ticks = decades
            .clone()
            .flat_map(|d| steps.iter().map(move |s| (s * 10f64.powi(d)).log10()))
            .filter(|v| inside(*v))
            .collect();
        let light = decades
            .flat_map(|d| (2..10).map(move |s| (s as f64 * 10f64.powi(d)).log10()))
            .filter(|v| inside(*v))
            .collect();
        Axis { lo, hi, ticks, light, desc: desc.to_string(), fmt: Box::new(fmt_ms_tick) }
    }

    /// Seconds of a timeline, 0..`seconds`.
    fn seconds(seconds: f64) -> Axis {
        let hi = if seconds.is_finite() && seconds > 0.0 { seconds } else { 1.0 };
        // Whole seconds, and no 2.5 s steps.
        let step = nice_step_of(hi / 12.0, &[1.0, 2.0, 5.0]).max(1.0);
        let count = (hi / step).floor() as usize;
        let ticks = (0..=count).map(|i| i as f64 * step).collect();
        Axis {
            lo: 0.0,
            hi,
            ticks,
            light: Vec::new(),
            desc: "seconds since the start of the measured window".to_string(),
            fmt: Box::new(|v| trim_decimals(v, 1)),
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at least `raw`.
fn nice_step(raw: f64) -> f64 {
    nice_step_of(raw, &[1.0, 2.0, 2.5, 5.0])
}

/// The smallest of `multiples` × 10^k at least `raw`.
fn nice_step_of(raw: f64, multiples: &[f64]) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in multiples {
        if m * magnitude >= raw * (1.0 - 1e-9) {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

fn one_two_five_below(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    let m = value / magnitude;
    let snapped = if m >= 5.0 {
        5.0
    } else if m >= 2.0 {
        2.0
    } else {
        1.0
    };
    snapped * magnitude
}

fn one_two_five_above(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    let m = value / magnitude;
    let snapped = if m <= 1.0 + 1e-9 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    snapped * magnitude
}

/// The page: white background, a bold title, caption lines; returns the
/// root (to present) and the body under the header.
fn page<'a>(path: &'a Path, size: (u32, u32), title: &str, caption: &[String]) -> Result<(Area<'a>, Area<'a>), String> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(de)?;
    let title_style = (FONT, 21, FontStyle::Bold).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top));
    root.draw(&Text::new(title.to_string(), (MARGIN, 12), title_style)).map_err(de)?;
    let caption_style = (FONT, 13).into_font().color(&GREY).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, line) in caption.iter().enumerate() {
        root.draw(&Text::new(line.clone(), (MARGIN, 42 + 17 * i as i32), caption_style.clone())).map_err(de)?;
    }
    let header = 48 + 17 * caption.len() as u32;
    let (_, body) = root.split_vertically(header);
    Ok((root, body))
}

struct Panel<'h> {
    heading: Option<&'h str>,
    x_labels: bool,
    right_area: u32,
}

const PANEL: Panel<'static> = Panel { heading: None, x_labels: true, right_area: 0 };

/// A chart with its grid and axes drawn.
fn cartesian<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    panel: &Panel,
) -> Result<ChartContext<'a, SVGBackend<'b>, Coord>, String> {
    let mut chart = build_chart(area, x, y, panel)?;
    draw_mesh(&mut chart, x, y, panel)?;
    Ok(chart)
}

/// A chart without its grid and axes (see `draw_mesh`).
fn build_chart<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    panel: &Panel,
) -> Result<ChartContext<'a, SVGBackend<'b>, Coord>, String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .margin_right(if panel.right_area > 0 { 10 } else { 28 })
        .y_label_area_size(78)
        .x_label_area_size(if panel.x_labels { 52 } else { 0 })
        .right_y_label_area_size(panel.right_area);
    if let Some(heading) = panel.heading {
        builder.caption(heading, (FONT, 16));
    }
    builder.build_cartesian_2d(x.spec(), y.spec()).map_err(de)
}

fn draw_mesh(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    x: &Axis,
    y: &Axis,
    panel: &Panel,
) -> Result<(), String> {
    let x_fmt = |v: &f64| (x.fmt)(*v);
    let y_fmt = |v: &f64| (y.fmt)(*v);
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y.desc.as_str())
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&x_fmt)
        .bold_line_style(LIGHT_GREY)
        .light_line_style(RGBColor(242, 242, 242))
        .axis_style(GREY)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15));
    if panel.x_labels {
        mesh.x_desc(x.desc.as_str());
    }
    mesh.draw().map_err(de)
}

fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Coord>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY.mix(0.5))
        .label_font((FONT, 14))
        .margin(12)
        .draw()
        .map_err(de)
}

fn line_legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}

fn text_style(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color).pos(Pos::new(h, v))
}

/// Text at a chart coordinate, shifted by (dx, dy) pixels.
fn annotate(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    at: (f64, f64),
    shift: (i32, i32),
    text: String,
    style: TextStyle<'static>,
) -> Result<(), String> {
    chart.draw_series(std::iter::once(EmptyElement::at(at) + Text::new(text, shift, style))).map_err(de)?;
    Ok(())
}

fn dashed(points: Vec<(f64, f64)>, style: ShapeStyle) -> DashedLineSeries<std::vec::IntoIter<(f64, f64)>, i32> {
    DashedLineSeries::new(points, 7, 5, style)
}

/// The events a timeline marks with a line: all, except that a run with
/// faults shows them as shaded spans instead (their notes are left out),
/// and lost or re-established connections are left out there (a fault
/// makes many).
fn chart_events(run: &Run) -> Vec<RunEvent> {
    if run.faults.is_empty() {
        return run.events.clone();
    }
    run.events.iter().filter(|e| !e.what.starts_with("fault:") && !e.what.contains("connection")).cloned().collect()
}

/// Each fault of `run` as a shaded span, named at the top when `labels`.
fn draw_faults(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    run: &Run,
    y: &Axis,
    labels: bool,
) -> Result<(), String> {
    let shade = RGBColor(255, 150, 0);
    for fault in &run.faults {
        let span = [(fault.start_s, y.lo), (fault.end_s, y.hi)];
        chart.draw_series(std::iter::once(Rectangle::new(span, shade.mix(0.18).filled()))).map_err(de)?;
        if labels {
            let text = format!("{} node {}", fault.kind, fault.node);
            annotate(
                chart,
                (fault.start_s, y.hi),
                (3, 4),
                text,
                text_style(14, RGBColor(190, 90, 0), HPos::Left, VPos::Top),
            )?;
        }
    }
    Ok(())
}

/// The event markers: a dashed vertical line each, labelled when `labels`.
fn draw_events(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    events: &[RunEvent],
    x: &Axis,
    y: &Axis,
    labels: bool,
) -> Result<(), String> {
    for (i, event) in events.iter().enumerate() {
        let t = event.t_s;
        if !(t.is_finite() && t >= x.lo && t <= x.hi) {
            continue;
        }
        chart.draw_series(dashed(vec![(t, y.lo), (t, y.hi)], PURPLE.stroke_width(2))).map_err(de)?;
        if labels {
            let right_half = t > x.lo + (x.hi - x.lo) * 0.7;
            let (h, dx) = if right_half { (HPos::Right, -5) } else { (HPos::Left, 5) };
            let dy = 4 + 17 * (i % 3) as i32;
            let text = format!("{} (t={} s)", event.what, trim_decimals(event.t_s, 1));
            annotate(chart, (t, y.hi), (dx, dy), text, text_style(14, PURPLE, h, VPos::Top))?;
        }
    }
    Ok(())
}

/// A line broken where points are missing.
fn draw_broken_line(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    points: &[Option<(f64, f64)>],
    style: ShapeStyle,
) -> Result<(), String> {
    for segment in points.split(|p| p.is_none()) {
        let segment: Vec<(f64, f64)> = segment.iter().flatten().copied().collect();
        match segment.len() {
            0 => {}
            1 => {
                chart.draw_series(std::iter::once(Circle::new(segment[0], 2, style.filled()))).map_err(de)?;
            }
            _ => {
                chart.draw_series(LineSeries::new(segment, style)).map_err(de)?;
            }
        }
    }
    Ok(())
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

// ---------------------------------------------------------------------------
// Stall chart

/// The run of a bundle that shows the stall: the last with events, else the last with a timeline.
fn stall_run(bundle: &Bundle) -> Option<&Run> {
    let with_timeline = bundle.runs.iter().filter(|r| !r.timeline.is_empty());
    with_timeline.clone().rev().find(|r| !r.events.is_empty()).or_else(|| with_timeline.clone().next_back())
}

fn chart_stall(path: &Path, open: &Bundle, closed: &Bundle) -> Result<(), String> {
    let open_run = stall_run(open).ok_or("the open-loop bundle has no per-second timeline")?;
    let closed_run = stall_run(closed).ok_or("the closed-loop bundle has no per-second timeline")?;
    let runs = [(open, open_run), (closed, closed_run)];
    let x = Axis::seconds(max_of(runs.iter().map(|(_, r)| timeline_seconds(r))).unwrap_or(1.0));
    let latencies = runs
        .iter()
        .flat_map(|(_, r)| r.timeline.iter().filter(|s| completed(s) > 0).flat_map(|s| [s.p999_us, s.max_us]));
    let y = Axis::log_ms(latencies, 4.0, "latency (ms, log scale)");
    let rate_max = max_of(runs.iter().flat_map(|(_, r)| r.timeline.iter().map(|s| completed(s) as f64)));
    let y_rate = Axis::linear_from_zero(rate_max, 1.1, "completed (ops/s)", fmt_rate);

    let title = "One stall, per second: the open loop keeps its schedule, the closed loop stops sending (see stall-percentiles.svg)";
    let mut parts = vec![format!("target {}", open.target)];
    if closed.target != open.target {
        parts.push(format!("closed loop: target {}", closed.target));
    }
    parts.push(format!("open: {}", mode_text(&open.params)));
    parts.push(format!("closed: {}", mode_text(&closed.params)));
    parts.push(workload_text(&open.params));
    parts.extend(labels_text(&open.labels));
    parts.push(format!("git {}", open.git_commit));
    if closed.git_commit != open.git_commit {
        parts.push(format!("closed loop: git {}", closed.git_commit));
    }
    parts.push(machine_text(&open.machine));
    let (root, body) = page(path, (WIDTH, HEIGHT + 160), title, &wrap_caption(&parts))?;
    let half = body.dim_in_pixel().1 / 2;
    let (top, bottom) = body.split_vertically(half);

    let panels = [
        (&top, "open loop, latency from each request's intended send time", open_run, &open.params.mode, "open"),
        (
            &bottom,
            "closed loop, latency from each request's actual send time",
            closed_run,
            &closed.params.mode,
            "closed",
        ),
    ];
    for (area, what, run, mode, expected) in panels {
        let peak999 = run.timeline.iter().map(|s| s.p999_us).max().unwrap_or(0);
        let peak = run.timeline.iter().map(|s| s.max_us).max().unwrap_or(0);
        let warning = if mode != expected { format!(" [bundle says mode={mode}]") } else { String::new() };
        let heading = format!("{what}{warning} — worst second: p99.9 {}, max {}", fmt_ms(peak999), fmt_ms(peak));
        let panel = Panel { heading: Some(&heading), x_labels: true, right_area: 78 };
        // The secondary axis takes the right label area before the primary mesh is drawn.
        let mut chart = build_chart(area, &x, &y, &panel)?.set_secondary_coord(x.spec(), y_rate.spec());
        draw_mesh(&mut chart, &x, &y, &panel)?;
        let y_rate_fmt = |v: &f64| fmt_rate(*v);
        chart
            .configure_secondary_axes()
            .y_desc(y_rate.desc.as_str())
            .y_label_formatter(&y_rate_fmt)
            .axis_style(GREY)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(de)?;
        chart
            .draw_secondary_series(run.timeline.iter().map(|s| {
                let t = s.t_s as f64;
                Rectangle::new([(t + 0.08, 0.0), (t + 0.92, completed(s) as f64)], LIGHT_BLUE.mix(0.6).filled())
            }))
            .map_err(de)?
            .label("completed per second (right axis)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 22, y + 5)], LIGHT_BLUE.filled()));
        draw_events(&mut chart, &run.events, &x, &y, true)?;
        for (name, color, width, pick) in [TIMELINE_LATENCIES[2], TIMELINE_LATENCIES[3]] {
            draw_broken_line(&mut chart, &per_second(run, pick), color.stroke_width(width + 1))?;
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(de)?
                .label(format!("{name} per second"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(width + 1)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(de)
}

// ---------------------------------------------------------------------------
// Comparison charts

fn comparison_caption(comparison: &Comparison, run_bundles: &[(String, Bundle)]) -> Vec<String> {
    let mut targets: Vec<&str> = run_bundles.iter().map(|(_, b)| b.target.as_str()).collect();
    targets.sort();
    targets.dedup();
    let mut parts = Vec::new();
    if !targets.is_empty() {
        parts.push(format!("target {}", targets.join(", ")));
    }
    parts.push(mode_text(&comparison.params));
    parts.push(workload_text(&comparison.params));
    let repeats = comparison.profiles.iter().map(|p| p.repeats.len()).max().unwrap_or(0);
    parts.push(format!("{repeats} repeats, interleaved"));
    let mut durability: Vec<String> =
        run_bundles.iter().filter_map(|(_, b)| b.labels.get("durability").cloned()).collect::<Vec<_>>();
    durability.sort();
    durability.dedup();
    match durability.as_slice() {
        [] => {}
        [one] => parts.push(format!("durability={one}")),
        many => parts.push(format!("MIXED durability ({}): not comparable", many.join(", "))),
    }
    parts.push(format!("reference: {}", comparison.reference));
    parts.push(format!("git {}", comparison.git_commit));
    parts.push(machine_text(&comparison.machine));
    wrap_caption(&parts)
}

/// Profile names as x tick labels, centred on i + 0.5.
fn profile_axis(profiles: &[ProfileResult]) -> Axis {
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    let width_chars = ((WIDTH as usize - 140) / names.len().max(1) / 8).max(4);
    let ticks = (0..names.len()).map(|i| i as f64 + 0.5).collect();
    Axis {
        lo: 0.0,
        hi: names.len().max(1) as f64,
        ticks,
        light: Vec::new(),
        desc: "profile".to_string(),
        fmt: Box::new(move |v| {
            names.get(v.floor().max(0.0) as usize).map(|n| shorten(n, width_chars)).unwrap_or_default()
        }),
    }
}

/// comparison-throughput.svg: median throughput per profile, min–max
/// whiskers, each repeat as a dot, the ratio to the reference above.
fn chart_comparison_throughput(path: &Path, comparison: &Comparison, caption: &[String]) -> Result<bool, String> {
    let profiles = &comparison.profiles;
    if profiles.is_empty() {
        return Ok(false);
    }
    let repeats = profiles.iter().map(|p| p.repeats.len()).max().unwrap_or(0);
    let title = format!(
        "Throughput per profile (ops/s): median of {repeats} repeats, whiskers min–max, ratio to “{}” above",
        comparison.reference
    );
    let x = profile_axis(profiles);
    let top = max_of(profiles.iter().flat_map(|p| {
        [p.throughput_max, p.throughput_median].into_iter().chain(p.repeats.iter().map(|r| r.throughput_ops_s))
    }));
    let y = Axis::linear_from_zero(top, 1.2, "throughput (ops/s)", fmt_rate);
    let (root, body) = page(path, (WIDTH, HEIGHT), &title, caption)?;
    let mut chart = cartesian(&body, &x, &y, &PANEL)?;
    for (i, profile) in profiles.iter().enumerate() {
        let left = i as f64 + 0.2;
        let right = i as f64 + 0.8;
        let middle = i as f64 + 0.5;
        let is_reference = profile.name == comparison.reference;
        let color = if is_reference { GREY } else { BLUE_ };
        let median = profile.throughput_median;
        if median.is_finite() {
            chart
                .draw_series(std::iter::once(Rectangle::new([(left, 0.0), (right, median)], color.mix(0.55).filled())))
                .map_err(de)?;
        }
        let (low, high) = (profile.throughput_min, profile.throughput_max);
        if low.is_finite() && high.is_finite() {
            let whisker = BLACK.stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(vec![(middle, low), (middle, high)], whisker),
                    PathElement::new(vec![(middle - 0.08, low), (middle + 0.08, low)], whisker),
                    PathElement::new(vec![(middle - 0.08, high), (middle + 0.08, high)], whisker),
                ])
                .map_err(de)?;
        }
        let n = profile.repeats.len().max(1) as f64;
        chart
            .draw_series(profile.repeats.iter().enumerate().filter(|(_, r)| r.throughput_ops_s.is_finite()).map(
                |(k, r)| {
                    let offset = 0.18 * ((k as f64 + 0.5) / n - 0.5);
                    Circle::new((middle + 0.12 + offset, r.throughput_ops_s), 3, BLACK.filled())
                },
            ))
            .map_err(de)?;
        let label_at = max_of([high, median]).unwrap_or(0.0);
        let ratio = if is_reference {
            "reference".to_string()
        } else if profile.ratio_min.is_finite() && profile.ratio_max.is_finite() {
            format!("{} [{:.2}–{:.2}]", fmt_ratio(profile.ratio_to_reference), profile.ratio_min, profile.ratio_max)
        } else {
            fmt_ratio(profile.ratio_to_reference)
        };
        annotate(&mut chart, (middle, label_at), (0, -26), ratio, text_style(15, BLACK, HPos::Center, VPos::Bottom))?;
        annotate(
            &mut chart,
            (middle, label_at),
            (0, -8),
            format!("median {}", fmt_rate(median)),
            text_style(13, GREY, HPos::Center, VPos::Bottom),
        )?;
    }
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(de)?
        .label("bar: median · whiskers: min–max · dots: repeats")
        .legend(|(x, y)| Circle::new((x + 11, y), 3, BLACK.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(de)?;
    Ok(true)
}

/// comparison-latency.svg: p99 against throughput per profile, a small dot
/// per repeat and a large one at the medians.
fn chart_comparison_latency(path: &Path, comparison: &Comparison, caption: &[String]) -> Result<bool, String> {
    let profiles = &comparison.profiles;
    let any_point = profiles.iter().any(|p| p.throughput_median.is_finite() || !p.repeats.is_empty());
    if !any_point {
        return Ok(false);
    }
    let title = "p99 latency vs throughput per profile: a dot per repeat, the large dot at the medians (ms, log scale)";
    let x = Axis::linear_around(
        profiles
            .iter()
            .flat_map(|p| std::iter::once(p.throughput_median).chain(p.repeats.iter().map(|r| r.throughput_ops_s))),
        "throughput (ops/s)",
        fmt_rate,
    );
    let y = Axis::log_ms(
        profiles.iter().flat_map(|p| std::iter::once(p.p99_us_median).chain(p.repeats.iter().map(|r| r.p99_us))),
        3.0,
        "p99 latency (ms, log scale)",
    );
    let (root, body) = page(path, (WIDTH, HEIGHT), title, caption)?;
    let mut chart = cartesian(&body, &x, &y, &PANEL)?;
    for (i, profile) in profiles.iter().enumerate() {
        let color = palette(i);
        chart
            .draw_series(
                profile
                    .repeats
                    .iter()
                    .filter(|r| r.throughput_ops_s.is_finite())
                    .map(|r| Circle::new((r.throughput_ops_s, lg(r.p99_us)), 4, color.stroke_width(2))),
            )
            .map_err(de)?;
        if profile.throughput_median.is_finite() {
            let at = (profile.throughput_median, lg(profile.p99_us_median));
            chart
                .draw_series([Circle::new(at, 8, color.filled()), Circle::new(at, 8, BLACK.stroke_width(1))])
                .map_err(de)?
                .label(format!("{} (median p99 {})", shorten(&profile.name, 32), fmt_ms(profile.p99_us_median)))
                .legend(move |(x, y)| Circle::new((x + 11, y), 6, color.filled()));
            annotate(
                &mut chart,
                at,
                (10, -6),
                shorten(&profile.name, 24),
                text_style(13, color, HPos::Left, VPos::Bottom),
            )?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(de)?;
    Ok(true)
}

/// The repeat with the median throughput (the lower one of the two middle ones).
fn median_repeat(profile: &ProfileResult) -> Option<&RepeatResult> {
    let mut repeats: Vec<&RepeatResult> = profile.repeats.iter().filter(|r| r.throughput_ops_s.is_finite()).collect();
    repeats.sort_by(|a, b| a.throughput_ops_s.total_cmp(&b.throughput_ops_s));
    repeats.get(repeats.len().checked_sub(1)? / 2).copied()
}

/// The run of a bundle that carries its headline figures: the sustainable
/// step under find-max, else the last run with stats.
fn headline_run(bundle: &Bundle) -> Option<&Run> {
    if let Some(s) = &bundle.sustainable {
        let best = bundle
            .runs
            .iter()
            .filter(|r| r.passed == Some(true) && all_stats(r).is_some())
            .filter_map(|r| Some((r, (r.offered_ops_s? - s.offered_ops_s).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((run, _)) = best {
            return Some(run);
        }
    }
    bundle.runs.iter().rev().find(|r| all_stats(r).is_some())
}

/// How far a bundle's figures are from a repeat's headline throughput.
fn distance_to(bundle: &Bundle, throughput: f64) -> f64 {
    let sustainable = bundle.sustainable.iter().flat_map(|s| [s.offered_ops_s, s.achieved_ops_s]);
    let achieved = bundle.runs.iter().map(|r| r.achieved_ops_s);
    min_of(sustainable.chain(achieved).map(|v| (v - throughput).abs())).unwrap_or(f64::INFINITY)
}

/// comparison-percentiles.svg: the percentile curve of each profile's median repeat.
fn chart_comparison_percentiles(
    path: &Path,
    comparison: &Comparison,
    run_bundles: &[(String, Bundle)],
    caption: &[String],
) -> Result<bool, String> {
    let mut curves = Vec::new();
    for (i, profile) in comparison.profiles.iter().enumerate() {
        let mut candidates = run_bundles.iter().filter(|(name, _)| *name == profile.name).map(|(_, b)| b);
        let chosen = match median_repeat(profile) {
            Some(repeat) => candidates.min_by(|a, b| {
                distance_to(a, repeat.throughput_ops_s).total_cmp(&distance_to(b, repeat.throughput_ops_s))
            }),
            None => candidates.next_back(),
        };
        let Some(stats) = chosen.and_then(headline_run).and_then(all_stats) else { continue };
        let points = curve(stats);
        if points.is_empty() {
            continue;
        }
        let style =
            if profile.name == comparison.reference { BLACK.stroke_width(3) } else { palette(i).stroke_width(2) };
        let name = if profile.name == comparison.reference {
            format!("{} (reference)", shorten(&profile.name, 32))
        } else {
            shorten(&profile.name, 40)
        };
        curves.push((name, points, style));
    }
    if curves.is_empty() {
        return Ok(false);
    }
    let title = "Latency by percentile per profile, the median-throughput repeat of each (ms, log scale)";
    draw_percentile_chart(path, title, caption, &curves)?;
    Ok(true)
}
