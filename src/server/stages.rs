//! The latency anatomy's histograms: per shard and per stage
//! (`node::Stage`: the node's stages and the shell's `parse` and `reply`), in
//! microseconds, readable as percentiles for `INFO latency` and mirrored
//! to Prometheus as `paxoskv_stage_seconds{stage=...}`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::node::Stage;

/// Sixteen buckets per power of two (`2^SUB_BITS`): a percentile, read as
/// the top of its bucket, is at most 1/16 (6.25%) above the truth. Four
/// (25%) could not tell a WAL sync of 260 µs from one of 319 µs, which is
/// the difference between meeting a bound near 280 µs and missing it.
const SUB_BITS: u32 = 4;
const SUB: u32 = 1 << SUB_BITS;
/// Up to 2^41 µs (about 25 days); anything longer counts in the last.
const BUCKETS: usize = (SUB * (41 - SUB_BITS + 1)) as usize;

fn bucket(us: u64) -> usize {
    if us < u64::from(SUB) {
        return us as usize;
    }
    let log = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = (us >> (log - SUB_BITS)) & u64::from(SUB - 1);
    ((log - SUB_BITS + 1) * SUB + sub as u32).min(BUCKETS as u32 - 1) as usize
}

/// The largest value bucket `i` holds.
fn bucket_top(i: usize) -> u64 {
    let i = i as u32;
    if i < SUB {
        return u64::from(i);
    }
    let log = i / SUB + SUB_BITS - 1;
    let sub = u64::from(i % SUB);
    ((u64::from(SUB) + sub + 1) << (log - SUB_BITS)) - 1
}

/// One stage's counts.
pub struct StageHistogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for StageHistogram {
    fn default() -> Self {
        StageHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl StageHistogram {
    pub fn record(&self, us: u64) {
        self.buckets[bucket(us)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The `q` quantile (0..=1), as the top of its bucket; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_top(i).min(self.max_us.load(Relaxed));
            }
        }
        self.max_us.load(Relaxed)
    }

    /// `count=N,sum=..,mean=..,p50=..,p90=..,p99=..,max=..` (microseconds;
    /// count and sum are cumulative, so two readings give the mean between).
    pub fn summary(&self) -> String {
        let count = self.count();
        let sum = self.sum_us.load(Relaxed);
        let mean = if count == 0 { 0.0 } else { sum as f64 / count as f64 };
        format!(
            "count={count},sum={sum},mean={mean:.1},p50={},p90={},p99={},max={}",
            self.quantile_us(0.5),
            self.quantile_us(0.9),
            self.quantile_us(0.99),
            self.max_us.load(Relaxed)
        )
    }
}

/// One shard's stages: ours for INFO, Prometheus's for `/metrics`, one
/// series per stage created up front, so recording allocates nothing.
#[derive(Clone)]
pub struct ShardStages {
    ours: Arc<Vec<StageHistogram>>,
    prometheus: Family<Vec<(String, String)>, Histogram>,
    series: Arc<Vec<Histogram>>,
}

impl Default for ShardStages {
    fn default() -> Self {
        let prometheus: Family<Vec<(String, String)>, Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(5e-6, 2.0, 18)));
        let series = Stage::ALL
            .iter()
            .map(|stage| prometheus.get_or_create(&vec![("stage".to_string(), stage.name().to_string())]).clone())
            .collect();
        ShardStages {
            ours: Arc::new(Stage::ALL.iter().map(|_| StageHistogram::default()).collect()),
            prometheus,
            series: Arc::new(series),
        }
    }
}

impl ShardStages {
    pub fn family(&self) -> Family<Vec<(String, String)>, Histogram> {
        self.prometheus.clone()
    }

    /// Record `us` microseconds in `stage`.
    pub fn record(&self, stage: Stage, us: u64) {
        self.ours[stage as usize].record(us);
        self.series[stage as usize].observe(us as f64 / 1e6);
    }

    /// (stage name, histogram) for the stages with samples.
    pub fn sampled(&self) -> impl Iterator<Item = (&'static str, &StageHistogram)> {
        Stage::ALL.iter().map(|s| s.name()).zip(self.ours.iter()).filter(|(_, h)| h.count() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_and_their_tops_bound_them() {
        for us in (0..5_000u64).chain([65_535, 1 << 20, 123_456_789, 1 << 40, (1 << 41) - 1, 1 << 41, u64::MAX / 2]) {
            let i = bucket(us);
            assert!(us <= bucket_top(i) || i == BUCKETS - 1, "{us} above the top of bucket {i}");
            assert!(i == 0 || us > bucket_top(i - 1), "{us} belongs below bucket {i}");
            if i < BUCKETS - 1 {
                assert!(bucket_top(i) as f64 <= us as f64 * 1.0625 + 1.0, "bucket {i} too wide for {us}");
            }
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let h = StageHistogram::default();
        assert_eq!(h.quantile_us(0.5), 0);
        for us in 1..=100 {
            h.record(us * 10);
        }
        let p50 = h.quantile_us(0.5);
        assert!((500..=531).contains(&p50), "p50 {p50}");
        assert_eq!(h.quantile_us(1.0), 1000);
        assert!(h.summary().starts_with("count=100,sum=50500,mean=505.0,"), "{}", h.summary());
    }
}
