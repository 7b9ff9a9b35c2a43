//! raft-rs (`RawNode` on its `MemStorage`), driven by its Ready protocol
//! (raft-rs README, "Processing the Ready State"): send `messages`; apply
//! `committed_entries`; append `entries` and store the hard state (the
//! storage is memory, so this is the persist, and it is immediate); then
//! send `persisted_messages`; `advance`, store the light ready's commit
//! index, send its messages, apply its committed entries; `advance_apply`.
//!
//! Configuration: raft-rs's defaults (heartbeat every 2 ticks, election
//! after 20), except `max_size_per_msg` = 1 MiB (the default, 0, sends
//! one entry per append), and two switches that make it do less work per
//! command, both off by default and neither touching safety:
//! `skip_bcast_commit` (the commit index rides on the next append or
//! heartbeat instead of an extra append round, as paxoskv's does) and
//! `batch_append` (entries proposed before a send merge into one append).
//! The logger discards.

use std::collections::VecDeque;

use raft::eraftpb::{ConfState, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use crate::workload::{apply_encoded_batch, encode_batch, Commands, Digest};
use crate::{Group, Library, Shape, TRIM_EVERY_ENTRIES};

pub struct RaftGroup {
    shape: Shape,
    nodes: Vec<RawNode<MemStorage>>,
    leader: usize,
    queue: VecDeque<Message>,
    applied: [Digest; 3],
    /// Per node, the index of the last entry applied.
    applied_index: [u64; 3],
    commands: Commands,
    entries_since_trim: u64,
    /// Messages delivered so far.
    delivered: u64,
}

impl RaftGroup {
    pub fn new(shape: Shape) -> RaftGroup {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let nodes = (1..=3u64)
            .map(|id| {
                let config = Config {
                    id,
                    max_size_per_msg: 1 << 20,
                    skip_bcast_commit: true,
                    batch_append: true,
                    ..Default::default()
                };
                config.validate().expect("valid config");
                let storage = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
                RawNode::new(&config, storage, &logger).expect("a raft node")
            })
            .collect();
        let mut group = RaftGroup {
            shape,
            nodes,
            leader: 0,
            queue: VecDeque::new(),
            applied: [Digest::default(); 3],
            applied_index: [0; 3],
            commands: Commands::new(),
            entries_since_trim: 0,
            delivered: 0,
        };
        group.nodes[0].campaign().expect("campaign");
        group.drain(0);
        group.deliver_all();
        assert_eq!(group.nodes[0].raft.state, StateRole::Leader, "raft-rs: node 1 did not win its campaign");
        group.settle();
        group
    }

    fn apply(&mut self, index: usize, entries: Vec<raft::eraftpb::Entry>) {
        for entry in entries {
            self.applied_index[index] = entry.index;
            // The new leader's empty entry carries no command.
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                apply_encoded_batch(&entry.data, &mut self.applied[index]);
            }
        }
    }

    /// Handle every Ready the node has; persistence is instant.
    fn drain(&mut self, index: usize) {
        while self.nodes[index].has_ready() {
            let node = &mut self.nodes[index];
            let mut ready = node.ready();
            self.queue.extend(ready.take_messages());
            assert!(ready.snapshot().is_empty(), "raft-rs: no snapshot is ever sent here");
            let committed = ready.take_committed_entries();
            if !ready.entries().is_empty() {
                node.mut_store().wl().append(ready.entries()).expect("append to memory");
            }
            if let Some(hard_state) = ready.hs() {
                node.mut_store().wl().set_hardstate(hard_state.clone());
            }
            self.queue.extend(ready.take_persisted_messages());
            let mut light = node.advance(ready);
            if let Some(commit) = light.commit_index() {
                node.mut_store().wl().mut_hard_state().set_commit(commit);
            }
            self.queue.extend(light.take_messages());
            let light_committed = light.take_committed_entries();
            node.advance_apply();
            self.apply(index, committed);
            self.apply(index, light_committed);
        }
    }

    fn deliver_all(&mut self) {
        while let Some(message) = self.queue.pop_front() {
            self.delivered += 1;
            let to = (message.to - 1) as usize;
            self.nodes[to].step(message).expect("raft-rs: a peer's message is accepted");
            self.drain(to);
        }
    }

    /// Compact every storage below the entry all three have applied.
    fn trim(&mut self) {
        let index = *self.applied_index.iter().min().expect("three nodes");
        for node in &mut self.nodes {
            node.mut_store().wl().compact(index).expect("compact below what all applied");
        }
    }
}

impl Group for RaftGroup {
    fn library(&self) -> Library {
        Library::Raft
    }

    fn round(&mut self) {
        for _ in 0..self.shape.entries_per_round {
            let batch = self.commands.next_batch(self.shape.commands_per_entry);
            self.nodes[self.leader].propose(Vec::new(), encode_batch(&batch)).expect("the leader takes the proposal");
        }
        self.drain(self.leader);
        self.deliver_all();
        self.entries_since_trim += self.shape.entries_per_round as u64;
        if self.entries_since_trim >= TRIM_EVERY_ENTRIES {
            self.entries_since_trim = 0;
            self.trim();
        }
    }

    fn settle(&mut self) {
        self.deliver_all();
        // With skip_bcast_commit, followers learn the commit index from the
        // next append or heartbeat: send a heartbeat round if needed.
        for _ in 0..10 {
            let proposed = self.commands.proposed().commands;
            if self.applied.iter().all(|d| d.commands == proposed) {
                return;
            }
            self.nodes[self.leader].ping();
            self.drain(self.leader);
            self.deliver_all();
        }
        panic!("raft-rs: replicas did not converge: {:?}", self.applied);
    }

    fn digests(&self) -> (Digest, [Digest; 3]) {
        (self.commands.proposed(), self.applied)
    }

    fn messages_delivered(&self) -> u64 {
        self.delivered
    }

    fn leader_applied(&self) -> u64 {
        self.applied[self.leader].commands
    }
}
