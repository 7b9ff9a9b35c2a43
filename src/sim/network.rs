//! The simulated network between replicas: per-message delay drawn from a
//! distribution with a long tail (which also reorders), loss, duplication,
//! and directed partitions (a blocked link drops every message on it, so a
//! one-way partition blocks one direction only).

use std::collections::BTreeSet;

use crate::paxos::NodeId;
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Every message takes at least this long.
    pub delay_min_us: u64,
    /// Mean of the exponential part added to `delay_min_us`.
    pub delay_mean_us: u64,
    /// Probability that a message is delayed `slow_factor` times longer (a
    /// long tail: stragglers arrive after later messages).
    pub slow_probability: f64,
    pub slow_factor: u64,
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// The exponential part of a delay is capped at this many means.
    pub exp_cap_means: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            delay_min_us: 100,
            delay_mean_us: 400,
            slow_probability: 0.01,
            slow_factor: 20,
            loss: 0.0,
            duplicate: 0.0,
            exp_cap_means: 20,
        }
    }
}

impl NetworkConfig {
    /// The longest one-way delay this network can produce.
    pub fn delay_max_us(&self) -> u64 {
        let slow = if self.slow_probability > 0.0 { self.slow_factor.max(1) } else { 1 };
        (self.delay_min_us + self.delay_mean_us * self.exp_cap_means) * slow
    }
}

/// What happens to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Dropped(DropReason),
    /// Deliver after each of these delays (two for a duplicate).
    Delivered(Vec<u64>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    Partition,
    Loss,
}

#[derive(Clone, Debug)]
pub struct Network {
    pub config: NetworkConfig,
    /// Directed links `(from, to)` that drop everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    pub fn new(config: NetworkConfig) -> Network {
        Network { config, blocked: BTreeSet::new() }
    }

    /// Cut every link between the two sides, both directions.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.blocked.insert((a, b));
                self.blocked.insert((b, a));
            }
        }
    }

    /// Cut the links from `senders` to `receivers` only.
    pub fn block_one_way(&mut self, senders: &[NodeId], receivers: &[NodeId]) {
        for &a in senders {
            for &b in receivers {
                self.blocked.insert((a, b));
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Bound delays tightly (a calm network: at most 5 means above the minimum).
    pub fn cap_delays(&mut self) {
        self.config.exp_cap_means = self.config.exp_cap_means.min(5);
    }

    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn delay(&self, rng: &mut Rng) -> u64 {
        let c = &self.config;
        // Exponential via inversion; capped so one draw cannot stall a run.
        let exp = -(1.0 - rng.unit()).ln() * c.delay_mean_us as f64;
        let mut delay = c.delay_min_us + (exp.min((c.delay_mean_us * c.exp_cap_means) as f64) as u64);
        if rng.chance(c.slow_probability) {
            delay *= c.slow_factor.max(1);
        }
        delay
    }

    pub fn fate(&self, rng: &mut Rng, from: NodeId, to: NodeId) -> Fate {
        if self.is_blocked(from, to) {
            return Fate::Dropped(DropReason::Partition);
        }
        if rng.chance(self.config.loss) {
            return Fate::Dropped(DropReason::Loss);
        }
        let mut delays = vec![self.delay(rng)];
        if rng.chance(self.config.duplicate) {
            delays.push(self.delay(rng));
        }
        Fate::Delivered(delays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_partition_blocks_one_direction() {
        let mut n = Network::new(NetworkConfig::default());
        n.block_one_way(&[1], &[2, 3]);
        let mut rng = Rng::new(1);
        assert_eq!(n.fate(&mut rng, 1, 2), Fate::Dropped(DropReason::Partition));
        assert!(matches!(n.fate(&mut rng, 2, 1), Fate::Delivered(_)));
        n.heal();
        assert!(matches!(n.fate(&mut rng, 1, 2), Fate::Delivered(_)));
    }

    #[test]
    fn loss_one_drops_everything() {
        let n = Network::new(NetworkConfig { loss: 1.0, ..NetworkConfig::default() });
        let mut rng = Rng::new(2);
        for _ in 0..100 {
            assert_eq!(n.fate(&mut rng, 1, 2), Fate::Dropped(DropReason::Loss));
        }
    }
}
