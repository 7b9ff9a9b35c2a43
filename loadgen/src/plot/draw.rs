//! Drawing helpers shared by every chart: the page, colours, a chart's
//! frame and mesh, legends, annotations, and the run's events and faults.

use super::*;

pub(super) const WIDTH: u32 = 1100;
pub(super) const HEIGHT: u32 = 680;
pub(super) const MARGIN: i32 = 16;
pub(super) const FONT: &str = "sans-serif";

pub(super) const BLUE_: RGBColor = RGBColor(31, 100, 180);
pub(super) const ORANGE: RGBColor = RGBColor(235, 125, 20);
pub(super) const RED_: RGBColor = RGBColor(200, 30, 40);
pub(super) const GREY: RGBColor = RGBColor(90, 90, 90);
pub(super) const LIGHT_GREY: RGBColor = RGBColor(225, 225, 225);
pub(super) const GREEN_: RGBColor = RGBColor(30, 140, 60);
pub(super) const PURPLE: RGBColor = RGBColor(130, 50, 160);
pub(super) const LIGHT_BLUE: RGBColor = RGBColor(160, 195, 230);

/// Colours for one line per run, profile or op.
pub(super) const PALETTE: [RGBColor; 10] = [
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

pub(super) fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(super) fn de<E: std::fmt::Display>(e: E) -> String {
    format!("drawing: {e}")
}

/// The page: white background, a bold title, caption lines; returns the
/// root (to present) and the body under the header.
pub(super) fn page<'a>(
    path: &'a Path,
    size: (u32, u32),
    title: &str,
    caption: &[String],
) -> Result<(Area<'a>, Area<'a>), String> {
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

pub(super) struct Panel<'h> {
    pub(super) heading: Option<&'h str>,
    pub(super) x_labels: bool,
    pub(super) right_area: u32,
}

pub(super) const PANEL: Panel<'static> = Panel { heading: None, x_labels: true, right_area: 0 };

/// A chart with its grid and axes drawn.
pub(super) fn cartesian<'a, 'b>(
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
pub(super) fn build_chart<'a, 'b>(
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

pub(super) fn draw_mesh(
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

pub(super) fn legend<'a, 'b: 'a>(
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

pub(super) fn line_legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}

pub(super) fn text_style(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color).pos(Pos::new(h, v))
}

/// Text at a chart coordinate, shifted by (dx, dy) pixels.
pub(super) fn annotate(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    at: (f64, f64),
    shift: (i32, i32),
    text: String,
    style: TextStyle<'static>,
) -> Result<(), String> {
    chart.draw_series(std::iter::once(EmptyElement::at(at) + Text::new(text, shift, style))).map_err(de)?;
    Ok(())
}

pub(super) fn dashed(
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
) -> DashedLineSeries<std::vec::IntoIter<(f64, f64)>, i32> {
    DashedLineSeries::new(points, 7, 5, style)
}

/// The events a timeline marks with a line: all, except that a run with
/// faults shows them as shaded spans instead (their notes are left out),
/// and lost or re-established connections are left out there (a fault
/// makes many).
pub(super) fn chart_events(run: &Run) -> Vec<RunEvent> {
    if run.faults.is_empty() {
        return run.events.clone();
    }
    run.events.iter().filter(|e| !e.what.starts_with("fault:") && !e.what.contains("connection")).cloned().collect()
}

/// Each fault of `run` as a shaded span, named at the top when `labels`.
pub(super) fn draw_faults(
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
pub(super) fn draw_events(
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
pub(super) fn draw_broken_line(
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
