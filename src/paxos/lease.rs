//! Leases ("Paxos Made Live" section 5.2; Moraru et al., "Paxos Quorum
//! Leases"). Two halves that must agree on time without sharing a clock:
//!
//! - an acceptor that hears from leader L (Accept or Heartbeat) grants L a
//!   lease: for `lease_ticks` of *its own* clock it refuses to promise any
//!   other proposer ([`LeaseGrant`]);
//! - the leader that sent a heartbeat at its tick `t` and got grants from a
//!   majority may serve reads locally until `t + leader_lease_ticks` of *its*
//!   clock ([`leader_lease_ticks`]).
//!
//! Why that is safe: each grant is made after the heartbeat left the leader,
//! so it lasts at least `lease_ticks / (1 + drift)` of real time from the
//! send. The leader's `leader_lease_ticks` of its own clock last at most
//! `leader_lease_ticks / (1 - drift)` of real time. With
//! `leader_lease_ticks <= lease_ticks * (1 - drift) / (1 + drift)` the
//! leader's lease ends before any granting acceptor could promise a new
//! leader, and every new leader needs a promise from one of them (quorum
//! intersection). Two extra ticks cover the rounding of discrete tick
//! counters on both sides.

use super::ballot::{Ballot, NodeId};
use super::config::{Config, InjectedBug};

/// The acceptor's side of a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The leader (by its ballot) that may still be promised while the grant
    /// runs (`None`: no grant).
    holder: Option<Ballot>,
    /// The grant runs while `now < expires_at_tick` (acceptor's clock).
    expires_at_tick: u64,
    /// After a restart every proposer is refused while `now <` this: the
    /// acceptor cannot know whom it granted a lease to before it crashed
    /// (grants are not persisted). Apart from the grant: a leader heard
    /// meanwhile gets a grant of its own, which it may give up
    /// (`release`), and which outlives the quarantine. Until stop 58 a
    /// leader's grant during a quarantine extended the quarantine instead,
    /// for as long as that leader was heard: a restarted follower then
    /// refused every candidate, itself included, and a leader that handed
    /// over to it could not release it (the simulator: a hand-over after
    /// a follower's restart took 180-250 ms, not 3).
    quarantine_until_tick: u64,
}

impl LeaseGrant {
    /// No grant: every proposer may be promised.
    pub fn expired() -> LeaseGrant {
        LeaseGrant { holder: None, expires_at_tick: 0, quarantine_until_tick: 0 }
    }

    /// After a restart: refuse every proposer for a full lease, so that a
    /// grant made before the crash is honoured.
    pub fn quarantine(now: u64, lease_ticks: u64) -> LeaseGrant {
        LeaseGrant { holder: None, expires_at_tick: 0, quarantine_until_tick: now + lease_ticks }
    }

    /// Grant (or renew) a lease to the leader of `ballot`. A running grant is
    /// never shortened and never handed to a lower ballot; a higher ballot
    /// takes it over with its end. A quarantine runs on beside it.
    pub fn grant(&mut self, now: u64, ballot: Ballot, lease_ticks: u64) {
        let expires_at_tick = self.expires_at_tick.max(now + lease_ticks);
        if !self.holder_active(now) {
            self.holder = Some(ballot);
            self.expires_at_tick = now + lease_ticks;
            return;
        }
        match self.holder {
            Some(holder) if ballot >= holder => {
                self.holder = Some(ballot);
                self.expires_at_tick = expires_at_tick;
            }
            // A stale leader cannot take over a running grant or extend it.
            _ => {}
        }
    }

    /// The leader of `ballot` stepped down and gave its lease up
    /// (`Message::HandOver`): a grant held by exactly that ballot ends now.
    /// A grant to any other leader, or a quarantine, runs on. True if a
    /// running grant ended.
    pub fn release(&mut self, now: u64, ballot: Ballot) -> bool {
        if self.holder != Some(ballot) {
            return false;
        }
        let running = self.holder_active(now);
        self.holder = None;
        self.expires_at_tick = 0;
        running
    }

    fn holder_active(&self, now: u64) -> bool {
        self.holder.is_some() && now < self.expires_at_tick
    }

    /// Does the grant forbid promising `candidate` at `now`?
    pub fn blocks(&self, now: u64, candidate: NodeId) -> bool {
        now < self.quarantine_until_tick || (self.holder_active(now) && self.holder.map(|b| b.node) != Some(candidate))
    }
}

/// How long (leader's ticks, from the heartbeat's send) the leader may trust
/// a majority of grants. See the module comment for the derivation.
pub fn leader_lease_ticks(config: &Config) -> u64 {
    if config.injected_bug == InjectedBug::LeaseIgnoresDrift {
        return config.lease_ticks;
    }
    let drift = config.clock_drift_permille;
    let shortened = config.lease_ticks * (1000 - drift) / (1000 + drift);
    shortened.saturating_sub(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_blocks_others_until_expiry() {
        let mut g = LeaseGrant::expired();
        assert!(!g.blocks(0, 2));
        g.grant(10, Ballot::new(1, 1), 100);
        assert!(g.blocks(50, 2));
        assert!(!g.blocks(50, 1), "the holder itself may be promised");
        assert!(!g.blocks(110, 2), "expired at 110");
    }

    #[test]
    fn a_lower_ballot_cannot_take_over_a_running_grant() {
        let mut g = LeaseGrant::expired();
        g.grant(0, Ballot::new(5, 1), 100);
        g.grant(10, Ballot::new(4, 2), 100);
        assert!(g.blocks(50, 2), "the stale leader did not take the grant");
        assert!(!g.blocks(50, 1));
        g.grant(20, Ballot::new(6, 2), 100);
        assert!(!g.blocks(50, 2), "a higher ballot does");
    }

    #[test]
    fn a_release_ends_only_the_named_leaders_grant() {
        let mut g = LeaseGrant::expired();
        g.grant(0, Ballot::new(5, 1), 100);
        assert!(!g.release(50, Ballot::new(4, 1)));
        assert!(g.blocks(50, 2), "an older ballot of the same node releases nothing");
        assert!(g.release(50, Ballot::new(5, 1)));
        assert!(!g.blocks(50, 2), "released");
        let mut q = LeaseGrant::quarantine(0, 100);
        assert!(!q.release(50, Ballot::new(5, 1)));
        assert!(q.blocks(50, 2), "a quarantine is not anyone's to release");
    }

    #[test]
    fn a_leader_heard_in_a_quarantine_gets_a_grant_of_its_own_that_it_can_give_up() {
        let mut g = LeaseGrant::quarantine(0, 100);
        g.grant(50, Ballot::new(5, 1), 100);
        assert!(g.blocks(99, 1), "the quarantine still refuses everyone, the leader too");
        assert!(g.blocks(120, 2) && !g.blocks(120, 1), "then the grant to 5.1 runs until 150");
        g.grant(140, Ballot::new(5, 1), 100);
        assert!(g.blocks(200, 2), "renewed, not a longer quarantine");
        assert!(g.release(200, Ballot::new(5, 1)));
        assert!(!g.blocks(200, 2), "given up: nothing left");
        let mut g = LeaseGrant::quarantine(0, 100);
        g.grant(10, Ballot::new(5, 1), 100);
        assert!(g.release(20, Ballot::new(5, 1)));
        assert!(g.blocks(50, 2) && g.blocks(50, 1), "a release ends no quarantine");
        assert!(!g.blocks(100, 2));
    }

    #[test]
    fn quarantine_blocks_everyone() {
        let g = LeaseGrant::quarantine(0, 100);
        assert!(g.blocks(99, 1) && g.blocks(99, 2));
        assert!(!g.blocks(100, 1));
    }

    #[test]
    fn leader_lease_is_shorter_than_grant_by_drift() {
        let mut c = Config::new(vec![1, 2, 3]);
        c.lease_ticks = 100;
        c.clock_drift_permille = 50;
        // 100 * 950 / 1050 = 90, minus 2 ticks of rounding.
        assert_eq!(leader_lease_ticks(&c), 88);
        c.injected_bug = InjectedBug::LeaseIgnoresDrift;
        assert_eq!(leader_lease_ticks(&c), 100);
    }
}
