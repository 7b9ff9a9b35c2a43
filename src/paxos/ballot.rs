//! Ballots (proposal numbers) and the small id types the core uses.

use std::fmt;

/// A replica's identity inside one Paxos group.
pub type NodeId = u32;

/// A position in the replicated log. Slot 0 is the first entry.
pub type Slot = u64;

/// A ballot: `(round, node)`, ordered lexicographically (round first, then
/// node), so two proposers never share a ballot and any proposer can always
/// pick a larger one. The derived `Ord` follows field order, which is exactly
/// this order; `Eq` and `Ord` therefore agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    /// Smaller than every ballot a proposer uses (rounds start at 1).
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    pub fn new(round: u64, node: NodeId) -> Ballot {
        Ballot { round, node }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// A set of members, by their index in [`crate::paxos::Config::members`].
/// Groups are at most 64 members, checked by `Config::validate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeSet(u64);

impl NodeSet {
    pub fn insert(&mut self, index: usize) -> bool {
        let bit = 1u64 << index;
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }

    pub fn contains(&self, index: usize) -> bool {
        self.0 & (1u64 << index) != 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballot_order_is_round_then_node() {
        assert!(Ballot::new(1, 9) < Ballot::new(2, 0));
        assert!(Ballot::new(2, 1) < Ballot::new(2, 2));
        assert_eq!(Ballot::new(3, 3), Ballot::new(3, 3));
        assert!(Ballot::ZERO < Ballot::new(1, 0));
    }

    #[test]
    fn node_set_counts_each_member_once() {
        let mut s = NodeSet::default();
        assert!(s.insert(2));
        assert!(!s.insert(2));
        assert!(s.insert(0));
        assert_eq!(s.len(), 2);
        assert!(s.contains(0) && s.contains(2) && !s.contains(1));
    }
}
