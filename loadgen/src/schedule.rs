//! Arrival schedules for the open loop: when each request is *intended* to
//! be sent, decided in advance and never by when replies come back (the
//! coordinated-omission fix of Gil Tene's wrk2; BENCHMARKING.md).
//!
//! Times are nanoseconds since the start of the run (warm-up included).
//! Each connection owns one schedule at `rate / connections`, with its own
//! seed, so the aggregate is a fixed-rate comb with random phases or the
//! superposition of independent Poisson processes (itself Poisson).

use crate::rng::SplitMix64;

/// The random stream a schedule draws from (see [`SplitMix64::derive`]).
pub const SCHEDULE_STREAM: u64 = 1;

const NS_PER_S: f64 = 1e9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced, 1/rate apart, starting at a random phase within the
    /// first interval.
    Fixed,
    /// Exponentially distributed gaps with mean 1/rate.
    Poisson,
}

impl Arrivals {
    pub fn parse(text: &str) -> Result<Arrivals, String> {
        match text {
            "fixed" => Ok(Arrivals::Fixed),
            "poisson" => Ok(Arrivals::Poisson),
            other => Err(format!("unknown arrival process {other:?} (expected fixed or poisson)")),
        }
    }
}

/// The intended send times of one connection, in increasing order.
#[derive(Clone, Debug)]
pub struct Schedule {
    arrivals: Arrivals,
    /// Mean gap between arrivals.
    interval_ns: f64,
    /// Fixed: the time of arrival 0; arrival k is at phase + k * interval
    /// (computed, not accumulated, so it does not drift).
    phase_ns: f64,
    /// Index of the next arrival (fixed) or its time (Poisson).
    next_index: u64,
    next_ns: f64,
    rng: SplitMix64,
}

impl Schedule {
    /// `rate_ops_s` must be positive and finite.
    pub fn new(arrivals: Arrivals, rate_ops_s: f64, seed: u64) -> Schedule {
        assert!(rate_ops_s.is_finite() && rate_ops_s > 0.0, "schedule rate {rate_ops_s}");
        let interval_ns = NS_PER_S / rate_ops_s;
        let mut rng = SplitMix64::new(seed);
        let phase_ns = match arrivals {
            Arrivals::Fixed => rng.next_f64() * interval_ns,
            Arrivals::Poisson => 0.0,
        };
        let mut schedule = Schedule { arrivals, interval_ns, phase_ns, next_index: 0, next_ns: 0.0, rng };
        schedule.next_ns = match arrivals {
            Arrivals::Fixed => phase_ns,
            Arrivals::Poisson => schedule.exponential_gap_ns(),
        };
        schedule
    }

    /// The intended time of the next arrival.
    pub fn peek_ns(&self) -> u64 {
        self.next_ns as u64
    }

    /// Moves past the next arrival.
    pub fn advance(&mut self) {
        self.next_index += 1;
        self.next_ns = match self.arrivals {
            Arrivals::Fixed => self.phase_ns + self.next_index as f64 * self.interval_ns,
            Arrivals::Poisson => self.next_ns + self.exponential_gap_ns(),
        };
    }

    /// Inverse-transform sampling: -ln(1 - U) * mean, with U in [0, 1) so
    /// the logarithm's argument is in (0, 1].
    fn exponential_gap_ns(&mut self) -> f64 {
        -(1.0 - self.rng.next_f64()).ln() * self.interval_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times_until(schedule: &mut Schedule, end_ns: u64) -> Vec<u64> {
        let mut times = Vec::new();
        while schedule.peek_ns() < end_ns {
            times.push(schedule.peek_ns());
            schedule.advance();
        }
        times
    }

    #[test]
    fn fixed_schedule_has_exact_count_and_spacing() {
        for seed in 0..20u64 {
            let rate = 1250.0; // 800 us apart
            let mut schedule = Schedule::new(Arrivals::Fixed, rate, seed);
            let times = times_until(&mut schedule, 10_000_000_000);
            assert_eq!(times.len(), 12_500, "seed {seed}");
            assert!(times[0] < 800_000, "seed {seed}: phase {} outside the first interval", times[0]);
            for pair in times.windows(2) {
                let gap = pair[1] - pair[0];
                assert!((799_999..=800_001).contains(&gap), "seed {seed}: gap {gap}");
            }
            // No drift: the last arrival sits exactly where phase + k * interval says.
            let expected_last = times[0] as f64 + 12_499.0 * 800_000.0;
            assert!((times[12_499] as f64 - expected_last).abs() <= 1.0, "seed {seed}");
        }
    }

    #[test]
    fn fixed_schedules_of_different_connections_have_different_phases() {
        let a = Schedule::new(Arrivals::Fixed, 100.0, SplitMix64::derive(1, SCHEDULE_STREAM, 0).next_u64());
        let b = Schedule::new(Arrivals::Fixed, 100.0, SplitMix64::derive(1, SCHEDULE_STREAM, 1).next_u64());
        assert_ne!(a.peek_ns(), b.peek_ns());
    }

    #[test]
    fn poisson_schedule_has_intended_count_and_exponential_gaps() {
        for seed in [1u64, 2, 3, 42, 0xDEAD_BEEF] {
            let rate = 10_000.0;
            let window_s = 100.0;
            let mut schedule = Schedule::new(Arrivals::Poisson, rate, seed);
            let times = times_until(&mut schedule, (window_s * 1e9) as u64);
            // Count ~ Poisson(1e6): standard deviation 1000; allow 5 of them (0.5 %).
            let expected = rate * window_s;
            let count = times.len() as f64;
            assert!(
                (count - expected).abs() < 5.0 * expected.sqrt(),
                "seed {seed}: {count} arrivals, expected {expected}"
            );

            let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let variance = gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / n;
            let mean_expected = 1e9 / rate;
            assert!((mean / mean_expected - 1.0).abs() < 0.01, "seed {seed}: mean gap {mean} ns");
            // Exponential: standard deviation equals the mean ...
            let cv = variance.sqrt() / mean;
            assert!((cv - 1.0).abs() < 0.02, "seed {seed}: coefficient of variation {cv}");
            // ... and P(gap > mean) = 1/e, P(gap > 3 mean) = e^-3.
            let above_mean = gaps.iter().filter(|&&g| g > mean_expected).count() as f64 / n;
            let above_3_means = gaps.iter().filter(|&&g| g > 3.0 * mean_expected).count() as f64 / n;
            assert!((above_mean - (-1.0f64).exp()).abs() < 0.003, "seed {seed}: P(gap > mean) = {above_mean}");
            assert!((above_3_means - (-3.0f64).exp()).abs() < 0.002, "seed {seed}: P(gap > 3 mean) = {above_3_means}");
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "seed {seed}: times not increasing");
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let mut a = Schedule::new(Arrivals::Poisson, 5000.0, 9);
        let mut b = Schedule::new(Arrivals::Poisson, 5000.0, 9);
        assert_eq!(times_until(&mut a, 1_000_000_000), times_until(&mut b, 1_000_000_000));
    }
}
