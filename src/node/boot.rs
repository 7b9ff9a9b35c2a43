//! How a node starts: brand new, restarted from its durable state, or
//! rejoining after it lost that state. One decision, shared by the server
//! (data directory, `--rejoin`) and the simulator (its disk model).

use super::config::NodeConfig;
use super::state::Node;
use crate::kv::KvStore;
use crate::paxos::{Config, DurableState, Replica};

#[derive(Debug)]
pub enum Boot {
    /// Never had state: a member of a brand-new cluster.
    New,
    /// Restarted from what it made durable.
    Restart(DurableState),
    /// Had state once and lost it: relearn it before voting (`paxos/recovery.rs`).
    Rejoin,
}

impl Boot {
    /// Tell the cases apart. `initialized`: the marker a replica writes
    /// once its first state is durable (so it may have voted) is on disk.
    /// `rejoin`: the operator says the state was lost (the data directory
    /// was moved aside, the disk replaced). A log that holds state is
    /// always restarted from: `--rejoin` may stay on the command line.
    pub fn decide(durable: DurableState, initialized: bool, rejoin: bool) -> Boot {
        let empty = durable == DurableState::default();
        match (empty, initialized || rejoin) {
            (false, _) => Boot::Restart(durable),
            (true, true) => Boot::Rejoin,
            (true, false) => Boot::New,
        }
    }
}

/// Mixed into the boot seed for the first forward id.
const FORWARD_ID_SALT: u64 = 0x666f_7277_6172_6473;

impl<C> Node<C> {
    /// Build the node: the replica from its durable state and the store
    /// from its snapshot (the replica hands out the chosen log after it
    /// again, which the node re-applies).
    pub fn boot(config: NodeConfig, core: Config, seed: u64, boot: Boot) -> Result<Node<C>, String> {
        let id = config.node;
        if matches!(boot, Boot::Rejoin) && core.members.len() == 1 {
            // Recovery relearns from a majority of the *other* members
            // (`paxos/recovery.rs`); a group of one has none, and would
            // otherwise wait for them forever.
            return Err("this replica lost its durable state (its identity marker is there but its log is not, or \
                        --rejoin) and is the only member of its group: there is no other member to relearn the \
                        acknowledged writes from. Restore its data directory from a backup, or move the directory \
                        aside to start a new, empty cluster"
                .to_string());
        }
        let (replica, kv, applied) = match boot {
            Boot::New => (Replica::new(core, id, seed), KvStore::new(config.sessions_max), 0),
            Boot::Rejoin => (Replica::rejoin(core, id, seed), KvStore::new(config.sessions_max), 0),
            Boot::Restart(durable) => {
                let (kv, applied) = match &durable.snapshot {
                    Some(image) => {
                        let kv = KvStore::restore(&image.data)
                            .map_err(|e| format!("the snapshot at slot {} does not restore: {e}", image.slot))?;
                        (kv, image.slot)
                    }
                    None => (KvStore::new(config.sessions_max), 0),
                };
                (Replica::recover(core, id, seed, durable), kv, applied)
            }
        };
        let replica = replica.map_err(|e| e.to_string())?;
        let mut node = Node::new(config, replica, kv, applied);
        // A leader may still answer forwards this node sent before it
        // restarted, by their ids: ids from 0 on every boot took those
        // answers for the new forwards that reused them (a client got
        // another command's reply). Each boot starts at its own random
        // point (bits 24..56; 2^63 ids of room): two boots' ranges overlap
        // only if they start within as many ids as the earlier one used.
        node.next_forward_id = (crate::rng::Rng::new(seed ^ FORWARD_ID_SALT).next_u64() >> 32) << 24;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::paxos::Ballot;

    #[test]
    fn a_lost_state_is_told_from_a_new_one_by_the_marker_or_the_flag() {
        let empty = || DurableState::default();
        assert!(matches!(Boot::decide(empty(), false, false), Boot::New));
        assert!(matches!(Boot::decide(empty(), true, false), Boot::Rejoin));
        assert!(matches!(Boot::decide(empty(), false, true), Boot::Rejoin));
        let state = DurableState { promised: Ballot::new(3, 1), ..DurableState::default() };
        assert!(matches!(Boot::decide(state.clone(), true, false), Boot::Restart(_)));
        assert!(matches!(Boot::decide(state, true, true), Boot::Restart(_)), "a log with state wins over --rejoin");
    }

    /// A group of one that lost its state cannot relearn it: refused with
    /// the way out, where a larger group rejoins.
    #[test]
    fn a_lone_member_that_lost_its_state_is_refused() {
        let boot = |members: Vec<crate::paxos::NodeId>| {
            Node::<()>::boot(NodeConfig::new(1, members.clone()), Config::new(members), 7, Boot::Rejoin)
        };
        let refused = boot(vec![1]).err().expect("refused");
        assert!(refused.contains("only member of its group") && refused.contains("backup"), "{refused}");
        assert!(boot(vec![1, 2, 3]).is_ok(), "three members rejoin");
        let new = Node::<()>::boot(NodeConfig::new(1, vec![1]), Config::new(vec![1]), 7, Boot::New);
        assert!(new.is_ok(), "a new group of one starts");
    }
}
