//! `stages.svg`: the server's latency anatomy of a run bundle (the runs'
//! `stages`, see anatomy.rs) as horizontal stacked bars, one per run,
//! node, shard and request path (a write at the leader, a read at the
//! leader, a request forwarded to the leader), each segment a stage's mean
//! over the measured window, coloured by stage.
//!
//! A bar adds means taken over different samples (the server samples the
//! shell's stages per connection and the node's per shard, and `parse`
//! and `reply` cover every path of a node's shard), so it is the mean
//! time of a request on that path, not of any one request.

use super::*;
use crate::anatomy::{stage_rank, REQUEST_PATHS, STAGE_ORDER};
use crate::bundle::StageMean;

/// One bar: its label and its segments (stage, mean µs, samples) in order.
struct Bar {
    label: String,
    segments: Vec<(String, f64, u64)>,
}

impl Bar {
    fn total_us(&self) -> f64 {
        self.segments.iter().map(|(_, mean, _)| mean).sum()
    }
}

/// Pixels per bar row (the bar and the breakdown line under it).
const ROW_PX: u32 = 46;
/// The bar labels' width on the left.
const LABEL_AREA_PX: u32 = 380;
const LEGEND_PX: u32 = 34;
const LABEL_CHARS_MAX: usize = 58;

/// The stage's colour, the same in every chart (the palette has a colour
/// for each of the server's stages, and one for any other).
const _: () = assert!(STAGE_ORDER.len() < PALETTE.len());

fn stage_color(stage: &str) -> RGBColor {
    palette(stage_rank(stage))
}

/// The bars of every run with stages, in run, node, shard and path order.
/// A (node, shard) that took none of the known paths (only stages this
/// loadgen does not know, say) gets one bar of all its stages.
fn stage_bars(bundle: &Bundle) -> Vec<Bar> {
    let runs: Vec<&Run> = bundle.runs.iter().filter(|r| r.stages.iter().any(usable)).collect();
    let mut bars = Vec::new();
    for run in &runs {
        let prefix = if runs.len() > 1 { format!("{} · ", run.label) } else { String::new() };
        let mut groups: Vec<(&str, u32)> = Vec::new();
        for stage in run.stages.iter().filter(|s| usable(s)) {
            if !groups.contains(&(stage.node.as_str(), stage.shard)) {
                groups.push((stage.node.as_str(), stage.shard));
            }
        }
        for (node, shard) in groups {
            let of_group: Vec<&StageMean> =
                run.stages.iter().filter(|s| usable(s) && s.node == node && s.shard == shard).collect();
            let find = |stage: &str| of_group.iter().find(|s| s.stage == stage);
            let segments_of = |stages: &mut dyn Iterator<Item = &StageMean>| -> Vec<(String, f64, u64)> {
                stages.map(|s| (s.stage.clone(), s.mean_us, s.samples)).collect()
            };
            let mut any_path = false;
            for path in &REQUEST_PATHS {
                if !path.marks.iter().any(|m| find(m).is_some()) {
                    continue;
                }
                any_path = true;
                let segments = segments_of(&mut path.stages.iter().filter_map(|stage| find(stage).copied()));
                bars.push(Bar { label: format!("{prefix}{node} shard {shard} · {}", path.name), segments });
            }
            if !any_path {
                let mut stages = of_group.clone();
                stages.sort_by_key(|s| (stage_rank(&s.stage), s.stage.clone()));
                let segments = segments_of(&mut stages.into_iter());
                bars.push(Bar { label: format!("{prefix}{node} shard {shard} · all stages"), segments });
            }
        }
    }
    bars
}

fn usable(stage: &StageMean) -> bool {
    stage.samples > 0 && stage.mean_us.is_finite() && stage.mean_us >= 0.0
}

fn fmt_us(us: f64) -> String {
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        trim_decimals(us, 1)
    }
}

/// stages.svg; `false` (nothing drawn) when no run has stages.
pub(super) fn chart_stages(path: &Path, bundle: &Bundle) -> Result<bool, String> {
    let bars = stage_bars(bundle);
    if bars.is_empty() {
        return Ok(false);
    }
    let rows = bars.len();
    let title = "Where the server spends a request's time: mean per stage over the measured window (µs)";
    let mut caption_parts = vec![format!("target {}", bundle.target), mode_text(&bundle.params)];
    caption_parts.push(workload_text(&bundle.params));
    caption_parts.extend(labels_text(&bundle.labels));
    caption_parts.push(format!("git {}", bundle.git_commit));
    caption_parts.push(machine_text(&bundle.machine));
    caption_parts.push(
        "stages from the server's INFO latency (1 request in 64 sampled); a bar adds its stages' means; \
         parse and reply are shared by a node's paths"
            .to_string(),
    );
    let caption = wrap_caption(&caption_parts);
    let header = 48 + 17 * caption.len() as u32;
    let height = header + LEGEND_PX + 20 + 52 + ROW_PX * rows as u32;
    let (root, body) = page(path, (WIDTH, height.max(360)), title, &caption)?;
    let (legend_strip, plot_area) = body.split_vertically(LEGEND_PX);
    draw_stage_legend(&legend_strip, &bars)?;

    let top = max_of(bars.iter().map(Bar::total_us));
    let x = Axis::linear_from_zero(top, 1.15, "mean time per request (µs)", |v| trim_decimals(v, 1));
    let labels: Vec<String> = bars.iter().map(|b| shorten(&b.label, LABEL_CHARS_MAX)).collect();
    let y = Axis {
        lo: 0.0,
        hi: rows as f64,
        ticks: (0..rows).map(|i| i as f64 + 0.5).collect(),
        light: Vec::new(),
        desc: String::new(),
        fmt: Box::new(move |v| {
            labels.get(rows - 1 - (v.floor().max(0.0) as usize).min(rows - 1)).cloned().unwrap_or_default()
        }),
    };
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(10)
        .margin_right(28)
        .y_label_area_size(LABEL_AREA_PX)
        .x_label_area_size(52)
        .build_cartesian_2d(x.spec(), y.spec())
        .map_err(de)?;
    let x_fmt = |v: &f64| (x.fmt)(*v);
    let y_fmt = |v: &f64| (y.fmt)(*v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x.desc.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(LIGHT_GREY)
        .light_line_style(RGBColor(242, 242, 242))
        .axis_style(GREY)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(de)?;

    for (i, bar) in bars.iter().enumerate() {
        // Row 0 at the top: y grows upwards.
        let centre = (rows - 1 - i) as f64 + 0.5;
        let (bar_lo, bar_hi) = (centre - 0.02, centre + 0.36);
        let mut start = 0.0;
        for (stage, mean_us, _) in &bar.segments {
            let end = start + mean_us;
            let color = stage_color(stage);
            chart
                .draw_series([
                    Rectangle::new([(start, bar_lo), (end, bar_hi)], color.mix(0.85).filled()),
                    Rectangle::new([(start, bar_lo), (end, bar_hi)], WHITE.stroke_width(1)),
                ])
                .map_err(de)?;
            let text = fmt_us(*mean_us);
            let width_px = chart.backend_coord(&(end, centre)).0 - chart.backend_coord(&(start, centre)).0;
            if width_px > 7 * text.len() as i32 + 8 {
                let at = (start + mean_us / 2.0, (bar_lo + bar_hi) / 2.0);
                annotate(&mut chart, at, (0, 0), text, text_style(12, WHITE, HPos::Center, VPos::Center))?;
            }
            start = end;
        }
        let total = bar.total_us();
        let total_text = format!("{} µs", fmt_us(total));
        annotate(
            &mut chart,
            (total, (bar_lo + bar_hi) / 2.0),
            (6, 0),
            total_text,
            text_style(13, BLACK, HPos::Left, VPos::Center),
        )?;
        let breakdown: Vec<String> = bar.segments.iter().map(|(s, mean, _)| format!("{s} {}", fmt_us(*mean))).collect();
        let samples_min = bar.segments.iter().map(|(_, _, n)| *n).min().unwrap_or(0);
        let line = format!("{} µs · ≥ {samples_min} samples per stage", breakdown.join(" + "));
        annotate(&mut chart, (0.0, bar_lo), (2, 3), line, text_style(12, GREY, HPos::Left, VPos::Top))?;
    }
    root.present().map_err(de)?;
    Ok(true)
}

/// A swatch and a name per stage drawn, in the order a request meets them.
fn draw_stage_legend(area: &Area<'_>, bars: &[Bar]) -> Result<(), String> {
    let mut stages: Vec<&str> = bars.iter().flat_map(|b| b.segments.iter().map(|(s, _, _)| s.as_str())).collect();
    stages.sort_by_key(|s| (stage_rank(s), *s));
    stages.dedup();
    let mut x = MARGIN;
    let style = text_style(14, BLACK, HPos::Left, VPos::Center);
    area.draw(&Text::new("stages:".to_string(), (x, LEGEND_PX as i32 / 2), style.clone())).map_err(de)?;
    x += 60;
    for stage in stages {
        let color = stage_color(stage);
        let y = LEGEND_PX as i32 / 2;
        area.draw(&Rectangle::new([(x, y - 7), (x + 14, y + 7)], color.mix(0.85).filled())).map_err(de)?;
        area.draw(&Text::new(stage.to_string(), (x + 20, y), style.clone())).map_err(de)?;
        x += 20 + 8 * stage.chars().count() as i32 + 22;
    }
    Ok(())
}
