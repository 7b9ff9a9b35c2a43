//! What each request does: GET or SET (by `--read-ratio`), which key (uniform
//! or zipfian over `--keys`), how keys are spelled and how large values are.

use crate::bundle::Params;
use crate::rng::{mix64, SplitMix64};

/// The random stream the workload draws from (see [`SplitMix64::derive`]).
pub const WORKLOAD_STREAM: u64 = 2;

/// zeta(n, theta) is summed term by term up to this many keys; beyond, the
/// tail comes from the Euler-Maclaurin formula (error far below 1e-12).
const ZETA_EXACT_TERMS_MAX: u64 = 1_000_000;

/// Rounds of the Feistel network that scrambles zipfian ranks.
const FEISTEL_ROUNDS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Get = 0,
    Set = 1,
}

impl OpKind {
    pub const ALL: [OpKind; 2] = [OpKind::Get, OpKind::Set];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
        }
    }
}

/// Zipfian ranks in [0, n): rank r is drawn with probability proportional to
/// 1 / (r + 1)^theta. Gray, Sundaresan, Englert, Baclawski and Weinberger,
/// "Quickly generating billion-record synthetic databases" (SIGMOD 1994),
/// section 5: one uniform draw and a closed form per sample, after
/// precomputing zeta(n, theta) once.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
    /// 1 + 0.5^theta: below it (times zeta_n) a draw is rank 0 or 1.
    two_ranks_bound: f64,
}

impl Zipfian {
    pub fn new(n: u64, theta: f64) -> Result<Zipfian, String> {
        if n == 0 {
            return Err("zipfian over zero keys".into());
        }
        if !(0.0..1.0).contains(&theta) {
            return Err(format!("--zipf-theta must be in [0, 1) for this generator, got {theta}"));
        }
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2.min(n), theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = if n <= 2 { 1.0 } else { (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n) };
        Ok(Zipfian { n, alpha, zeta_n, eta, two_ranks_bound: 1.0 + 0.5f64.powf(theta) })
    }

    /// The rank for a uniform draw `u` in [0, 1); rank 0 is the most frequent.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.two_ranks_bound {
            return 1.min(self.n - 1);
        }
        let rank = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.n - 1)
    }
}

/// zeta(n, theta) = sum over i in 1..=n of 1 / i^theta.
pub fn zeta(n: u64, theta: f64) -> f64 {
    let exact_terms = n.min(ZETA_EXACT_TERMS_MAX);
    let mut sum = 0.0;
    // Smallest terms first, for accuracy.
    for i in (1..=exact_terms).rev() {
        sum += (i as f64).powf(-theta);
    }
    if n > exact_terms {
        // Sum over i in m+1..=n of f(i), f(x) = x^-theta, by Euler-Maclaurin:
        // integral_m^n f + (f(n) - f(m)) / 2 + (f'(n) - f'(m)) / 12.
        let m = exact_terms as f64;
        let top = n as f64;
        let f = |x: f64| x.powf(-theta);
        let derivative = |x: f64| -theta * x.powf(-theta - 1.0);
        let integral = (top.powf(1.0 - theta) - m.powf(1.0 - theta)) / (1.0 - theta);
        sum += integral + (f(top) - f(m)) / 2.0 + (derivative(top) - derivative(m)) / 12.0;
    }
    sum
}

/// A keyed bijection of [0, n) (a Feistel network over the smallest even
/// number of bits that covers n, with cycle walking back into range), so
/// that the hottest zipfian ranks land on keys spread over the key space
/// instead of on keys 0, 1, 2 ... (which would share a shard and a tag).
#[derive(Clone, Debug)]
pub struct Scrambler {
    n: u64,
    half_bits: u32,
    round_keys: [u64; FEISTEL_ROUNDS],
}

impl Scrambler {
    pub fn new(n: u64, seed: u64) -> Scrambler {
        assert!(n > 0);
        let bits = (64 - (n - 1).leading_zeros()).max(2);
        let half_bits = bits.div_ceil(2);
        let mut rng = SplitMix64::derive(seed, 0x5C8A_4B1E, 0);
        let round_keys = [rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()];
        Scrambler { n, half_bits, round_keys }
    }

    pub fn permute(&self, value: u64) -> u64 {
        assert!(value < self.n, "permute({value}) outside [0, {})", self.n);
        // The domain is at most 4n, so this loops fewer than 4 times on
        // average; it ends because a permutation's cycles are finite.
        let mut x = value;
        loop {
            x = self.feistel(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn feistel(&self, value: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let mut left = value >> self.half_bits;
        let mut right = value & mask;
        for key in self.round_keys {
            let next = left ^ (mix64(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }
}

#[derive(Clone, Debug)]
pub enum KeyChooser {
    Uniform,
    Zipfian(Zipfian, Scrambler),
}

/// How keys are spelled: `key:` then the key index zero-padded so that
/// every key is exactly `key_bytes` long; with a hash-tag group G, keys
/// `key:{t}0000123` share the tag t = index / G (multi-shard locality, as
/// in Redis Cluster's hash tags).
#[derive(Clone, Debug)]
pub struct KeySpace {
    keys: u64,
    key_bytes: usize,
    hash_tag_group: u64,
}

impl KeySpace {
    pub fn new(keys: u64, key_bytes: usize, hash_tag_group: u64) -> Result<KeySpace, String> {
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        let space = KeySpace { keys, key_bytes, hash_tag_group };
        let needed = space.key_bytes_min();
        if key_bytes < needed {
            return Err(format!(
                "--key-bytes {key_bytes} is too short for --keys {keys} (keys need at least {needed} bytes)"
            ));
        }
        Ok(space)
    }

    /// The shortest key length that still spells every key index in full.
    fn key_bytes_min(&self) -> usize {
        let index_digits = digits(self.keys - 1);
        match self.hash_tag_group {
            0 => "key:".len() + index_digits,
            group => "key:{}".len() + digits((self.keys - 1) / group) + index_digits,
        }
    }

    /// Appends key `index` (< keys), exactly `key_bytes` long.
    pub fn write_key(&self, index: u64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(b"key:");
        if let Some(tag) = index.checked_div(self.hash_tag_group) {
            out.push(b'{');
            push_decimal(out, tag);
            out.push(b'}');
        }
        let width = self.key_bytes - (out.len() - start);
        push_padded_decimal(out, index, width);
    }
}

fn digits(mut value: u64) -> usize {
    let mut count = 1;
    while value >= 10 {
        value /= 10;
        count += 1;
    }
    count
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, value: u64) {
    push_padded_decimal(out, value, digits(value));
}

/// `width` must be at least digits(value).
fn push_padded_decimal(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    let mut at = start + width;
    while value > 0 {
        at -= 1;
        out[at] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The workload shared by all connections of a run (cheap to clone).
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub read_ratio: f64,
    pub keys: u64,
    pub chooser: KeyChooser,
    pub key_space: KeySpace,
    /// The value every SET writes (printable bytes drawn from the seed).
    pub value: Vec<u8>,
}

impl WorkloadSpec {
    pub fn from_params(params: &Params) -> Result<WorkloadSpec, String> {
        if !(0.0..=1.0).contains(&params.read_ratio) {
            return Err(format!("--read-ratio must be in [0, 1], got {}", params.read_ratio));
        }
        let key_space = KeySpace::new(params.keys, params.key_bytes, params.hash_tag_group)?;
        let chooser = match params.distribution.as_str() {
            "uniform" => KeyChooser::Uniform,
            "zipfian" => KeyChooser::Zipfian(
                Zipfian::new(params.keys, params.zipf_theta)?,
                Scrambler::new(params.keys, params.seed),
            ),
            other => return Err(format!("unknown --distribution {other:?} (expected uniform or zipfian)")),
        };
        let mut rng = SplitMix64::derive(params.seed, 0x7A1E, 0);
        let value = (0..params.value_bytes).map(|_| b'a' + rng.below(26) as u8).collect();
        Ok(WorkloadSpec { read_ratio: params.read_ratio, keys: params.keys, chooser, key_space, value })
    }
}

/// One connection's stream of (operation, key index).
#[derive(Clone, Debug)]
pub struct Workload {
    spec: WorkloadSpec,
    rng: SplitMix64,
}

impl Workload {
    pub fn new(spec: WorkloadSpec, seed: u64) -> Workload {
        Workload { spec, rng: SplitMix64::new(seed) }
    }

    pub fn next_request(&mut self) -> (OpKind, u64) {
        let op = if self.rng.next_f64() < self.spec.read_ratio { OpKind::Get } else { OpKind::Set };
        let key = match &self.spec.chooser {
            KeyChooser::Uniform => self.rng.below(self.spec.keys),
            KeyChooser::Zipfian(zipfian, scrambler) => scrambler.permute(zipfian.rank(self.rng.next_f64())),
        };
        (op, key)
    }

    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank_counts(n: u64, theta: f64, draws: usize, seed: u64) -> Vec<u64> {
        let zipfian = Zipfian::new(n, theta).unwrap();
        let mut rng = SplitMix64::new(seed);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[zipfian.rank(rng.next_f64()) as usize] += 1;
        }
        counts
    }

    #[test]
    fn zipfian_rank_zero_is_most_frequent_and_frequencies_fall_off() {
        for seed in [1u64, 2, 3] {
            let n = 1000;
            let theta = 0.99;
            let draws = 2_000_000;
            let counts = rank_counts(n, theta, draws, seed);
            let top = *counts.iter().max().unwrap();
            assert_eq!(counts[0], top, "seed {seed}: rank 0 is not the most frequent");
            // Frequencies fall off: each decade of ranks is drawn less than the one before.
            let decade = |lo: usize, hi: usize| counts[lo..hi].iter().sum::<u64>() as f64 / (hi - lo) as f64;
            let (d1, d2, d3) = (decade(1, 10), decade(10, 100), decade(100, 1000));
            assert!(counts[0] as f64 > d1 && d1 > d2 && d2 > d3, "seed {seed}: {} {d1} {d2} {d3}", counts[0]);
            // And match the law: P(rank 0) = 1 / zeta(n, theta), P(rank 1) = 2^-theta / zeta.
            let zeta_n = zeta(n, theta);
            let p0 = counts[0] as f64 / draws as f64;
            let p1 = counts[1] as f64 / draws as f64;
            assert!((p0 * zeta_n - 1.0).abs() < 0.02, "seed {seed}: p0 {p0}");
            assert!((p1 * zeta_n / 2f64.powf(-theta) - 1.0).abs() < 0.03, "seed {seed}: p1 {p1}");
        }
    }

    #[test]
    fn zipfian_with_theta_zero_is_uniform_and_ranks_stay_in_range() {
        let counts = rank_counts(10, 0.0, 1_000_000, 5);
        for (rank, &count) in counts.iter().enumerate() {
            assert!((count as f64 / 100_000.0 - 1.0).abs() < 0.02, "rank {rank}: {count}");
        }
        let small = Zipfian::new(1, 0.99).unwrap();
        assert_eq!(small.rank(0.999_999), 0);
        let two = Zipfian::new(2, 0.5).unwrap();
        assert!(two.rank(0.999_999) <= 1);
        assert!(Zipfian::new(10, 1.0).is_err());
    }

    #[test]
    fn zeta_tail_approximation_matches_the_exact_sum() {
        let n = 3 * ZETA_EXACT_TERMS_MAX;
        let exact: f64 = (1..=n).rev().map(|i| (i as f64).powf(-0.99)).sum();
        let approx = zeta(n, 0.99);
        assert!((approx / exact - 1.0).abs() < 1e-9, "{approx} vs {exact}");
    }

    #[test]
    fn scrambler_is_a_permutation_that_spreads_hot_ranks() {
        for n in [1u64, 2, 3, 10, 1000, 4097] {
            let scrambler = Scrambler::new(n, 11);
            let mut seen = vec![false; n as usize];
            for rank in 0..n {
                let key = scrambler.permute(rank);
                assert!(!seen[key as usize], "n {n}: {key} twice");
                seen[key as usize] = true;
            }
        }
        let scrambler = Scrambler::new(100_000, 11);
        let hot: Vec<u64> = (0..4).map(|r| scrambler.permute(r)).collect();
        let adjacent = hot.windows(2).filter(|w| w[0].abs_diff(w[1]) == 1).count();
        assert_eq!(adjacent, 0, "hot keys {hot:?}");
    }

    #[test]
    fn keys_are_padded_to_key_bytes_with_optional_hash_tags() {
        let plain = KeySpace::new(100_000, 16, 0).unwrap();
        let mut out = Vec::new();
        plain.write_key(12_345, &mut out);
        assert_eq!(out, b"key:000000012345");
        let tagged = KeySpace::new(100_000, 20, 100).unwrap();
        out.clear();
        tagged.write_key(12_345, &mut out);
        assert_eq!(out, b"key:{123}00000012345");
        assert_eq!(out.len(), 20);
        out.clear();
        tagged.write_key(0, &mut out);
        assert_eq!(out, b"key:{0}0000000000000");
        assert!(KeySpace::new(100_000, 8, 0).is_err());
        assert!(KeySpace::new(100_000, 9, 0).is_ok());
    }

    #[test]
    fn read_ratio_is_respected() {
        let params = crate::engine::tests_support::params();
        let spec = WorkloadSpec::from_params(&Params { read_ratio: 0.9, ..params }).unwrap();
        let mut workload = Workload::new(spec, 1);
        let gets = (0..100_000).filter(|_| workload.next_request().0 == OpKind::Get).count();
        assert!((89_000..91_000).contains(&gets), "{gets} gets");
    }
}
