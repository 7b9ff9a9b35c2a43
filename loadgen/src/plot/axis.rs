//! The charts' axes: a coordinate whose grid lines are chosen
//! ([`Ticked`]), the linear, latency (log) and time axes built on it
//! ([`Axis`]), and the round steps that place the lines.

use super::*;

pub(super) type Coord = Cartesian2d<Ticked, Ticked>;

/// A linear f64 coordinate whose grid lines are given: `bold` ones
/// (labelled) and `light` ones.
#[derive(Clone)]
pub(super) struct Ticked {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) bold: Vec<f64>,
    pub(super) light: Vec<f64>,
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
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One axis: its range, its labelled ticks (bold grid lines), unlabelled
/// light grid lines, its description and its tick formatter.
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) light: Vec<f64>,
    pub(super) desc: String,
    pub(super) fmt: Box<dyn Fn(f64) -> String>,
}

impl Axis {
    pub(super) fn spec(&self) -> Ticked {
        Ticked { lo: self.lo, hi: self.hi, bold: self.ticks.clone(), light: self.light.clone() }
    }

    /// A linear axis from 0 to a round number above `max`.
    pub(super) fn linear_from_zero(max: Option<f64>, headroom: f64, desc: &str, fmt: fn(f64) -> String) -> Axis {
        let max = max.filter(|m| *m > 0.0).unwrap_or(1.0) * headroom;
        let step = nice_step(max / 6.0);
        let hi = (max / step).ceil() * step;
        let count = (hi / step).round() as usize;
        let ticks = (0..=count).map(|i| i as f64 * step).collect();
        Axis { lo: 0.0, hi, ticks, light: Vec::new(), desc: desc.to_string(), fmt: Box::new(fmt) }
    }

    /// A linear axis around [min, max] with some room on both sides (not from 0).
    pub(super) fn linear_around(values: impl IntoIterator<Item = f64>, desc: &str, fmt: fn(f64) -> String) -> Axis {
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
    pub(super) fn log_ms(values: impl IntoIterator<Item = u64>, headroom: f64, desc: &str) -> Axis {
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
    pub(super) fn seconds(seconds: f64) -> Axis {
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
pub(super) fn nice_step(raw: f64) -> f64 {
    nice_step_of(raw, &[1.0, 2.0, 2.5, 5.0])
}

/// The smallest of `multiples` × 10^k at least `raw`.
pub(super) fn nice_step_of(raw: f64, multiples: &[f64]) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in multiples {
        if m * magnitude >= raw * (1.0 - 1e-9) {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

pub(super) fn one_two_five_below(value: f64) -> f64 {
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

pub(super) fn one_two_five_above(value: f64) -> f64 {
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
