//! The charts of a comparison: throughput and latency per profile, and
//! every profile's latency percentiles.

use super::*;

pub(super) fn comparison_caption(comparison: &Comparison, run_bundles: &[(String, Bundle)]) -> Vec<String> {
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
pub(super) fn profile_axis(profiles: &[ProfileResult]) -> Axis {
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
pub(super) fn chart_comparison_throughput(
    path: &Path,
    comparison: &Comparison,
    caption: &[String],
) -> Result<bool, String> {
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
pub(super) fn chart_comparison_latency(
    path: &Path,
    comparison: &Comparison,
    caption: &[String],
) -> Result<bool, String> {
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
pub(super) fn median_repeat(profile: &ProfileResult) -> Option<&RepeatResult> {
    let mut repeats: Vec<&RepeatResult> = profile.repeats.iter().filter(|r| r.throughput_ops_s.is_finite()).collect();
    repeats.sort_by(|a, b| a.throughput_ops_s.total_cmp(&b.throughput_ops_s));
    repeats.get(repeats.len().checked_sub(1)? / 2).copied()
}

/// The run of a bundle that carries its headline figures: the sustainable
/// step under find-max, else the last run with stats.
pub(super) fn headline_run(bundle: &Bundle) -> Option<&Run> {
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
pub(super) fn distance_to(bundle: &Bundle, throughput: f64) -> f64 {
    let sustainable = bundle.sustainable.iter().flat_map(|s| [s.offered_ops_s, s.achieved_ops_s]);
    let achieved = bundle.runs.iter().map(|r| r.achieved_ops_s);
    min_of(sustainable.chain(achieved).map(|v| (v - throughput).abs())).unwrap_or(f64::INFINITY)
}

/// comparison-percentiles.svg: the percentile curve of each profile's median repeat.
pub(super) fn chart_comparison_percentiles(
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
