//! `stall.svg`: one stall seen by an open-loop and a closed-loop run.

use super::*;

/// The run of a bundle that shows the stall: the last with events, else the last with a timeline.
pub(super) fn stall_run(bundle: &Bundle) -> Option<&Run> {
    let with_timeline = bundle.runs.iter().filter(|r| !r.timeline.is_empty());
    with_timeline.clone().rev().find(|r| !r.events.is_empty()).or_else(|| with_timeline.clone().next_back())
}

pub(super) fn chart_stall(path: &Path, open: &Bundle, closed: &Bundle) -> Result<(), String> {
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
