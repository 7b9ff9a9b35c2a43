//! Timed samples and allocation counts over a [`Group`].

use std::time::{Duration, Instant};

use crate::{alloc, check, Group};

/// One timed sample: `rounds` rounds and the settling after them.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub rounds: u64,
    /// Commands committed (at the leader, and applied on all three).
    pub commands: u64,
    pub elapsed: Duration,
}

impl Sample {
    pub fn ns_per_command(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.commands as f64
    }
}

/// Run `rounds` rounds, settle, and check every replica applied exactly
/// what was proposed. The time covers the rounds and the settling.
pub fn timed(group: &mut dyn Group, rounds: u64) -> Result<Sample, String> {
    let before = group.leader_applied();
    let start = Instant::now();
    for _ in 0..rounds {
        group.round();
    }
    group.settle();
    let elapsed = start.elapsed();
    check(group)?;
    Ok(Sample { rounds, commands: group.leader_applied() - before, elapsed })
}

/// About how many rounds take `target` (from a short trial run).
pub fn calibrate(group: &mut dyn Group, target: Duration) -> Result<u64, String> {
    let mut rounds = 1u64;
    loop {
        let sample = timed(group, rounds)?;
        if sample.elapsed >= target / 20 || rounds >= 1 << 30 {
            let per_round = sample.elapsed.as_secs_f64() / rounds as f64;
            return Ok(((target.as_secs_f64() / per_round) as u64).max(1));
        }
        rounds *= 2;
    }
}

/// Allocations per command over `rounds` rounds (and their settling).
#[derive(Clone, Copy, Debug)]
pub struct AllocationSample {
    pub commands: u64,
    /// Messages delivered between replicas.
    pub messages: u64,
    pub counts: alloc::Counts,
}

impl AllocationSample {
    pub fn allocations_per_command(&self) -> f64 {
        self.counts.allocations as f64 / self.commands as f64
    }

    pub fn bytes_per_command(&self) -> f64 {
        self.counts.bytes as f64 / self.commands as f64
    }
}

/// Count allocations over `rounds` rounds and the settling after them.
/// Needs [`alloc::CountingAllocator`] installed as the global allocator.
pub fn allocations(group: &mut dyn Group, rounds: u64) -> Result<AllocationSample, String> {
    let before = group.leader_applied();
    let messages_before = group.messages_delivered();
    alloc::start();
    for _ in 0..rounds {
        group.round();
    }
    group.settle();
    let counts = alloc::stop();
    check(group)?;
    let messages = group.messages_delivered() - messages_before;
    Ok(AllocationSample { commands: group.leader_applied() - before, messages, counts })
}
