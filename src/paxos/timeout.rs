//! One named timeout per concern (TigerBeetle's `Timeout`): each counts
//! ticks, fires once when it reaches its deadline, and is reset or stopped
//! by the role that owns it.

#[derive(Clone, Debug)]
pub struct Timeout {
    /// Ticks from the last reset until it fires.
    pub after_ticks: u64,
    /// Ticks since the last reset. Invariant: `elapsed_ticks <= after_ticks` while armed.
    elapsed_ticks: u64,
    armed: bool,
}

impl Timeout {
    pub fn new(after_ticks: u64) -> Timeout {
        Timeout { after_ticks, elapsed_ticks: 0, armed: false }
    }

    /// Advance one tick; true exactly once when the deadline is reached.
    /// A fired timeout stays disarmed until reset.
    pub fn tick(&mut self) -> bool {
        if !self.armed {
            return false;
        }
        self.elapsed_ticks += 1;
        if self.elapsed_ticks >= self.after_ticks {
            self.armed = false;
            return true;
        }
        false
    }

    /// Re-arm from zero.
    pub fn reset(&mut self) {
        self.elapsed_ticks = 0;
        self.armed = true;
    }

    /// Re-arm from zero with a new period (for randomized timeouts).
    pub fn reset_to(&mut self, after_ticks: u64) {
        self.after_ticks = after_ticks.max(1);
        self.reset();
    }

    pub fn stop(&mut self) {
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_deadline_and_not_while_stopped() {
        let mut t = Timeout::new(3);
        assert!(!t.tick(), "not armed yet");
        t.reset();
        assert!(!t.tick());
        assert!(!t.tick());
        assert!(t.tick());
        assert!(!t.tick(), "fires once");
        t.reset_to(1);
        t.stop();
        assert!(!t.tick());
    }
}
