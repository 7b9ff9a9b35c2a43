//! `--find-max`: the highest offered rate whose p99 stays under a bound
//! (BENCHMARKING.md, "Saturation"). Ramp the rate geometrically until a
//! step fails twice in a row at one rate (a lone failure is rerun once),
//! then bisect between the last pass and that failure.
//!
//! The decision is a pure function of the steps so far, so it is tested
//! without a server and replayable from a bundle's runs.

/// Achieved throughput below this fraction of the offered rate fails a step
/// (the system, or loadgen, did not keep up).
pub const ACHIEVED_FRACTION_MIN: f64 = 0.95;
/// More than this fraction of requests failing (error replies, lost
/// connections, the outstanding cap) fails a step: fast errors are not
/// throughput.
pub const ERROR_FRACTION_MAX: f64 = 0.01;

#[derive(Clone, Debug, PartialEq)]
pub struct FindMaxSpec {
    pub p99_bound_us: u64,
    pub rate_start: f64,
    /// Each ramp step offers this many times the previous one (> 1).
    pub ramp_factor: f64,
    pub step_duration_s: f64,
    pub step_warmup_s: f64,
    /// Bisection steps after the first failure.
    pub bisect_steps: usize,
    /// The ramp stops after this many steps even if all passed.
    pub ramp_steps_max: usize,
}

impl FindMaxSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate_start.is_finite() && self.rate_start >= 1.0) {
            return Err(format!("--rate-start must be at least 1, got {}", self.rate_start));
        }
        if !(self.ramp_factor.is_finite() && self.ramp_factor > 1.0) {
            return Err(format!("--ramp-factor must be above 1, got {}", self.ramp_factor));
        }
        if !(self.step_duration_s > 0.0 && self.step_warmup_s >= 0.0) {
            return Err("--step-duration-s must be positive and the step warm-up not negative".into());
        }
        if self.ramp_steps_max == 0 {
            return Err("the ramp needs at least one step".into());
        }
        Ok(())
    }
}

/// What one step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    pub offered_ops_s: f64,
    pub achieved_ops_s: f64,
    pub p99_us: u64,
    /// Errors over all measured requests (timeouts are not counted here:
    /// they already show in the p99).
    pub error_fraction: f64,
}

pub fn step_passed(spec: &FindMaxSpec, step: &StepOutcome) -> bool {
    step.p99_us <= spec.p99_bound_us
        && step.achieved_ops_s >= ACHIEVED_FRACTION_MIN * step.offered_ops_s
        && step.error_fraction <= ERROR_FRACTION_MAX
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Run a step at this offered rate.
    Run(f64),
    /// Finished: the index of the passing step with the highest offered
    /// rate (the sustainable throughput), if any passed.
    Done(Option<usize>),
}

pub fn next_step(spec: &FindMaxSpec, steps: &[StepOutcome]) -> Decision {
    let Some(last) = steps.last() else {
        return Decision::Run(spec.rate_start.round());
    };
    // The ramp: a failing step is run once more at the same rate, and only
    // a second failure ends the ramp. On a shared machine one noisy second
    // would otherwise decide the whole search.
    let mut pass = 0.0;
    let mut index = 0;
    let mut confirmed_fail = None;
    while index < steps.len() {
        let step = &steps[index];
        if step_passed(spec, step) {
            pass = step.offered_ops_s;
            index += 1;
            continue;
        }
        let Some(retry) = steps.get(index + 1) else {
            return Decision::Run(step.offered_ops_s); // confirm the failure
        };
        if step_passed(spec, retry) {
            pass = retry.offered_ops_s;
            index += 2;
            continue;
        }
        confirmed_fail = Some((index + 1, retry.offered_ops_s));
        break;
    }
    let Some((fail_index, mut fail)) = confirmed_fail else {
        if steps.len() >= spec.ramp_steps_max {
            return Decision::Done(best(spec, steps));
        }
        return Decision::Run((last.offered_ops_s.max(pass) * spec.ramp_factor).round());
    };
    // Bisection between the last pass (or zero) and the confirmed failure.
    for step in &steps[fail_index + 1..] {
        if step_passed(spec, step) {
            pass = step.offered_ops_s;
        } else {
            fail = step.offered_ops_s;
        }
    }
    let bisected = steps.len() - fail_index - 1;
    let middle = ((pass + fail) / 2.0).round();
    if bisected >= spec.bisect_steps || middle <= pass || middle >= fail {
        return Decision::Done(best(spec, steps));
    }
    Decision::Run(middle)
}

fn best(spec: &FindMaxSpec, steps: &[StepOutcome]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (index, step) in steps.iter().enumerate() {
        if step_passed(spec, step) && best.is_none_or(|b| steps[b].offered_ops_s <= step.offered_ops_s) {
            best = Some(index);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FindMaxSpec {
        FindMaxSpec {
            p99_bound_us: 5_000,
            rate_start: 5_000.0,
            ramp_factor: 1.5,
            step_duration_s: 5.0,
            step_warmup_s: 1.0,
            bisect_steps: 3,
            ramp_steps_max: 20,
        }
    }

    /// A system that keeps up to `capacity` ops/s with a p99 of 1 ms, and
    /// beyond it reaches only `capacity` with a p99 of 50 ms.
    fn system(capacity: f64) -> impl Fn(f64) -> StepOutcome {
        move |offered| {
            if offered <= capacity {
                StepOutcome { offered_ops_s: offered, achieved_ops_s: offered, p99_us: 1_000, error_fraction: 0.0 }
            } else {
                StepOutcome { offered_ops_s: offered, achieved_ops_s: capacity, p99_us: 50_000, error_fraction: 0.0 }
            }
        }
    }

    /// Drives the decision loop against `measure`; returns the offered
    /// rates in order and the sustainable one.
    fn search(spec: &FindMaxSpec, measure: impl Fn(f64) -> StepOutcome) -> (Vec<f64>, Option<f64>) {
        let mut steps = Vec::new();
        loop {
            match next_step(spec, &steps) {
                Decision::Run(rate) => steps.push(measure(rate)),
                Decision::Done(best) => {
                    let rates = steps.iter().map(|s| s.offered_ops_s).collect();
                    return (rates, best.map(|i| steps[i].offered_ops_s));
                }
            }
            assert!(steps.len() < 100, "the search does not end");
        }
    }

    #[test]
    fn ramps_until_the_first_failure_then_bisects_three_times() {
        let (rates, sustainable) = search(&spec(), system(10_000.0));
        // 5000, 7500 pass; 11250 fails twice; bisect 9375 (pass), 10313 (fail), 9844 (pass).
        assert_eq!(rates, vec![5_000.0, 7_500.0, 11_250.0, 11_250.0, 9_375.0, 10_313.0, 9_844.0]);
        assert_eq!(sustainable, Some(9_844.0));
    }

    #[test]
    fn a_step_that_does_not_keep_up_fails_even_with_a_good_p99() {
        let spec = spec();
        let slow = StepOutcome { offered_ops_s: 10_000.0, achieved_ops_s: 9_400.0, p99_us: 100, error_fraction: 0.0 };
        assert!(!step_passed(&spec, &slow));
        let kept_up = StepOutcome { achieved_ops_s: 9_500.0, ..slow };
        assert!(step_passed(&spec, &kept_up));
        let erroring = StepOutcome { error_fraction: 0.02, ..kept_up };
        assert!(!step_passed(&spec, &erroring));
        let at_bound = StepOutcome { p99_us: 5_000, ..kept_up };
        assert!(step_passed(&spec, &at_bound));
        let over_bound = StepOutcome { p99_us: 5_001, ..kept_up };
        assert!(!step_passed(&spec, &over_bound));
    }

    #[test]
    fn when_the_first_step_fails_it_bisects_down_from_zero() {
        let (rates, sustainable) = search(&spec(), system(3_000.0));
        assert_eq!(rates, vec![5_000.0, 5_000.0, 2_500.0, 3_750.0, 3_125.0]);
        assert_eq!(sustainable, Some(2_500.0));
        let (_, nothing) = search(&spec(), system(100.0));
        assert_eq!(nothing, None);
    }

    #[test]
    fn one_noisy_failure_does_not_end_the_ramp() {
        let capacity = system(10_000.0);
        let mut noisy_once = true;
        let mut steps = Vec::new();
        loop {
            match next_step(&spec(), &steps) {
                Decision::Run(rate) => {
                    let mut outcome = capacity(rate);
                    if rate == 7_500.0 && noisy_once {
                        noisy_once = false;
                        outcome.p99_us = 40_000; // one hiccup
                    }
                    steps.push(outcome);
                }
                Decision::Done(best) => {
                    let rates: Vec<f64> = steps.iter().map(|s| s.offered_ops_s).collect();
                    assert_eq!(rates, vec![5_000.0, 7_500.0, 7_500.0, 11_250.0, 11_250.0, 9_375.0, 10_313.0, 9_844.0]);
                    assert_eq!(best.map(|i| steps[i].offered_ops_s), Some(9_844.0));
                    return;
                }
            }
        }
    }

    #[test]
    fn the_ramp_has_a_step_limit() {
        let spec = FindMaxSpec { ramp_steps_max: 4, ..spec() };
        let (rates, sustainable) = search(&spec, system(f64::INFINITY));
        assert_eq!(rates, vec![5_000.0, 7_500.0, 11_250.0, 16_875.0]);
        assert_eq!(sustainable, Some(16_875.0));
    }

    #[test]
    fn bisection_stops_when_the_bracket_is_one_op_wide() {
        let spec = FindMaxSpec { rate_start: 2.0, ramp_factor: 1.5, bisect_steps: 10, ..spec() };
        let (rates, sustainable) = search(&spec, system(3.0));
        assert_eq!(rates, vec![2.0, 3.0, 5.0, 5.0, 4.0]);
        assert_eq!(sustainable, Some(3.0));
    }
}
