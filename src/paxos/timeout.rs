//! One named timeout per concern (TigerBeetle's `Timeout`), as a deadline
//! on the replica's tick clock: `reset` arms it `after_ticks` from now,
//! `fired` reports once that the deadline has passed.
//!
//! Deadlines, not countdowns: the shell may move the clock forward by many
//! ticks at once (after an executor stall) and must then first work
//! through the messages that arrived meanwhile, and only then fire
//! timeouts. A countdown ticked once per elapsed tick would fire during
//! the catch-up, before those messages (a heartbeat, say) could reset it.

/// A smoothed duration in ticks x 8 (as TCP keeps its SRTT), moved an
/// eighth of the way to `sample_ticks`; the first sample (`average_x8`
/// 0: none yet) is taken whole. What the leader's Accept re-send and the
/// node's forward retry wait for grows with it.
pub fn smoothed_x8(average_x8: u64, sample_ticks: u64) -> u64 {
    let sample_x8 = sample_ticks.saturating_mul(8);
    match average_x8 {
        0 => sample_x8.max(1),
        average => (average.saturating_mul(7)).saturating_add(sample_x8) / 8,
    }
}

#[derive(Clone, Debug)]
pub struct Timeout {
    /// Ticks from a reset until it fires.
    pub after_ticks: u64,
    /// Fires once `now >= deadline_tick`. `None` while stopped or fired.
    deadline_tick: Option<u64>,
}

impl Timeout {
    pub fn new(after_ticks: u64) -> Timeout {
        Timeout { after_ticks, deadline_tick: None }
    }

    /// True exactly once when `now` reaches the deadline; a fired timeout
    /// stays disarmed until reset.
    pub fn fired(&mut self, now: u64) -> bool {
        match self.deadline_tick {
            Some(deadline) if now >= deadline => {
                self.deadline_tick = None;
                true
            }
            _ => false,
        }
    }

    /// Re-arm: fire `after_ticks` from `now`.
    pub fn reset(&mut self, now: u64) {
        self.deadline_tick = Some(now.saturating_add(self.after_ticks));
    }

    /// Re-arm with a new period (for randomized timeouts).
    pub fn reset_to(&mut self, now: u64, after_ticks: u64) {
        self.after_ticks = after_ticks.max(1);
        self.reset(now);
    }

    pub fn stop(&mut self) {
        self.deadline_tick = None;
    }

    /// The tick it fires at, while armed.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_deadline_and_not_while_stopped() {
        let mut t = Timeout::new(3);
        assert!(!t.fired(100), "not armed yet");
        t.reset(10);
        assert!(!t.fired(11));
        assert!(!t.fired(12));
        assert!(t.fired(13));
        assert!(!t.fired(14), "fires once");
        t.reset_to(20, 1);
        t.stop();
        assert!(!t.fired(50));
    }

    #[test]
    fn a_clock_jump_fires_once_not_once_per_tick() {
        let mut t = Timeout::new(10);
        t.reset(0);
        assert!(t.fired(1_000));
        assert!(!t.fired(1_001));
    }
}
