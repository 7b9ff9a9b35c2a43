//! Where every resolved request lands: per-operation HdrHistograms over the
//! measured window, plus one histogram per second (by the time a request
//! resolved) for the timeline and the live progress line.
//!
//! One recorder per executor; its finished seconds go to the main thread
//! as they close, so memory stays constant however long the run.

use hdrhistogram::Histogram;

use crate::inflight::{latency_us, InFlight};
use crate::workload::OpKind;

/// Three significant digits: 0.1 % resolution at every magnitude.
pub const LATENCY_SIGFIG: u8 = 3;
/// The largest latency a histogram holds without saturating, unless the
/// timeout is longer.
pub const LATENCY_US_MAX_DEFAULT: u64 = 60_000_000;

const NS_PER_S: u64 = 1_000_000_000;

pub fn new_histogram(latency_us_max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, latency_us_max.max(2), LATENCY_SIGFIG).expect("valid histogram bounds")
}

/// The measured window of a run, in nanoseconds since its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    pub fn contains(&self, t_ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&t_ns)
    }

    /// Whole seconds since the window started (negative during warm-up).
    pub fn second_of(&self, t_ns: u64) -> i64 {
        let offset = t_ns as i128 - self.start_ns as i128;
        offset.div_euclid(NS_PER_S as i128) as i64
    }

    /// When second `second` (see [`Window::second_of`]) ends, in nanoseconds
    /// since the start of the run.
    pub fn second_end_ns(&self, second: i64) -> u64 {
        let end = self.start_ns as i128 + (second as i128 + 1) * NS_PER_S as i128;
        end.clamp(0, u64::MAX as i128) as u64
    }
}

/// Everything recorded for one operation kind over the measured window.
#[derive(Clone, Debug)]
pub struct OpRecord {
    pub histogram: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
}

impl OpRecord {
    pub fn new(latency_us_max: u64) -> OpRecord {
        OpRecord { histogram: new_histogram(latency_us_max), ok: 0, errors: 0, timeouts: 0 }
    }

    pub fn merge(&mut self, other: &OpRecord) {
        self.histogram.add(&other.histogram).expect("histograms with the same bounds add");
        self.ok += other.ok;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
    }
}

/// One second of one executor, by resolution time.
#[derive(Clone, Debug)]
pub struct SecondReport {
    pub executor: usize,
    /// See [`Window::second_of`].
    pub second: i64,
    pub histogram: Histogram<u64>,
    pub ok: u64,
    /// Error replies, lost connections and requests over the outstanding cap.
    pub errors: u64,
    pub timeouts: u64,
    /// Replies (ok or error), the throughput figure.
    pub completed: u64,
}

/// What an executor hands back at the end of a run.
#[derive(Clone, Debug)]
pub struct Totals {
    /// Indexed by `OpKind as usize`.
    pub ops: [OpRecord; 2],
    /// Replies received inside the measured window, whatever their request.
    pub completed_in_window: u64,
}

pub struct Recorder {
    window: Window,
    totals: Totals,
    current: SecondReport,
    /// When `current` ends (cached: checked on every reply).
    current_end_ns: u64,
    sink: Box<dyn FnMut(SecondReport)>,
}

impl Recorder {
    /// `sink` receives every second as it closes.
    pub fn new(executor: usize, window: Window, latency_us_max: u64, sink: Box<dyn FnMut(SecondReport)>) -> Recorder {
        let op = OpRecord::new(latency_us_max);
        let first_second = window.second_of(0);
        Recorder {
            window,
            totals: Totals { ops: [op.clone(), op], completed_in_window: 0 },
            current: SecondReport {
                executor,
                second: first_second,
                histogram: new_histogram(latency_us_max),
                ok: 0,
                errors: 0,
                timeouts: 0,
                completed: 0,
            },
            current_end_ns: window.second_end_ns(first_second),
            sink,
        }
    }

    pub fn reply(&mut self, item: &InFlight, now_ns: u64, is_error: bool) {
        let latency = latency_us(item.origin_ns, now_ns);
        self.advance(now_ns);
        if item.measured {
            let op = &mut self.totals.ops[item.op as usize];
            op.histogram.saturating_record(latency);
            if is_error {
                op.errors += 1;
            } else {
                op.ok += 1;
            }
        }
        if self.window.contains(now_ns) {
            self.totals.completed_in_window += 1;
        }
        self.current.histogram.saturating_record(latency);
        self.current.completed += 1;
        if is_error {
            self.current.errors += 1;
        } else {
            self.current.ok += 1;
        }
    }

    /// Unanswered at its timeout or at the end of the run: recorded with
    /// its latency so far, never dropped from the figures.
    pub fn timeout(&mut self, item: &InFlight, now_ns: u64) {
        let latency = latency_us(item.origin_ns, now_ns);
        self.advance(now_ns);
        if item.measured {
            let op = &mut self.totals.ops[item.op as usize];
            op.histogram.saturating_record(latency);
            op.timeouts += 1;
        }
        self.current.histogram.saturating_record(latency);
        self.current.timeouts += 1;
    }

    /// A request that never got a reply to time: refused by the outstanding
    /// cap, unsendable while disconnected, or lost with its connection.
    pub fn local_error(&mut self, op: OpKind, measured: bool, now_ns: u64) {
        self.advance(now_ns);
        if measured {
            self.totals.ops[op as usize].errors += 1;
        }
        self.current.errors += 1;
    }

    /// Closes every second before the one `now_ns` falls in.
    pub fn advance(&mut self, now_ns: u64) {
        while now_ns >= self.current_end_ns {
            self.close_second();
        }
    }

    fn close_second(&mut self) {
        let fresh = SecondReport {
            executor: self.current.executor,
            second: self.current.second + 1,
            histogram: Histogram::new_from(&self.current.histogram),
            ok: 0,
            errors: 0,
            timeouts: 0,
            completed: 0,
        };
        self.current_end_ns = self.window.second_end_ns(fresh.second);
        let closed = std::mem::replace(&mut self.current, fresh);
        (self.sink)(closed);
    }

    /// Closes the current (partial) second and hands back the totals.
    pub fn finish(mut self) -> Totals {
        self.close_second();
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn only_the_measured_window_counts_and_seconds_close_in_order() {
        let window = Window { start_ns: 2 * NS_PER_S, end_ns: 4 * NS_PER_S };
        let seconds = Rc::new(RefCell::new(Vec::new()));
        let sink = seconds.clone();
        let mut recorder = Recorder::new(
            0,
            window,
            LATENCY_US_MAX_DEFAULT,
            Box::new(move |s: SecondReport| sink.borrow_mut().push(s)),
        );
        let warm =
            InFlight { origin_ns: NS_PER_S, op: OpKind::Get, measured: false, history: crate::history::UNRECORDED };
        let hot = InFlight {
            origin_ns: 2 * NS_PER_S + 500,
            op: OpKind::Set,
            measured: true,
            history: crate::history::UNRECORDED,
        };
        recorder.reply(&warm, NS_PER_S + 2000, false);
        recorder.reply(&hot, 2 * NS_PER_S + 1500, true);
        recorder.timeout(&hot, 3 * NS_PER_S + 500);
        recorder.local_error(OpKind::Get, true, 3 * NS_PER_S + 600);
        let totals = recorder.finish();
        let set = &totals.ops[OpKind::Set as usize];
        assert_eq!((set.ok, set.errors, set.timeouts, set.histogram.len()), (0, 1, 1, 2));
        assert_eq!(set.histogram.max(), set.histogram.highest_equivalent(1_000_000));
        let get = &totals.ops[OpKind::Get as usize];
        assert_eq!((get.ok, get.errors, get.histogram.len()), (0, 1, 0));
        assert_eq!(totals.completed_in_window, 1);
        let seconds = seconds.borrow();
        let numbers: Vec<i64> = seconds.iter().map(|s| s.second).collect();
        assert_eq!(numbers, vec![-2, -1, 0, 1]);
        assert_eq!((seconds[1].ok, seconds[1].completed), (1, 1));
        assert_eq!((seconds[2].errors, seconds[2].completed), (1, 1));
        assert_eq!((seconds[3].timeouts, seconds[3].errors), (1, 1));
        assert_eq!(window.second_of(2 * NS_PER_S - 1), -1);
        assert_eq!(window.second_end_ns(-1), 2 * NS_PER_S);
        assert_eq!(window.second_end_ns(-3), 0);
    }
}
