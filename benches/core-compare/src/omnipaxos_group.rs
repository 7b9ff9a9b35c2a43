//! OmniPaxos (Sequence Paxos with ballot leader election) on its
//! `MemoryStorage`, driven by its documented loop: after every input the
//! harness takes `take_outgoing_messages` and hands each message to its
//! receiver's `handle_incoming`; decided entries are read with
//! `read_decided_suffix` from the last applied index. The storage writes
//! through at once, so persistence is immediate. Configuration: the
//! defaults (`batch_size` 1: an appended entry goes out at once, it does
//! not wait for a tick to flush a batch).
//!
//! An entry is [`Batch`]: the proposed `Vec` of commands, shared (not
//! copied into a new allocation), so cloning an entry (into storage, into
//! each follower's message) costs a reference count, as paxoskv's
//! `Value::Batch` does (an `Arc`, where paxoskv's is an `Rc`: OmniPaxos's
//! entries must be `Send`).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot};
use omnipaxos::util::LogEntry;
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;

use crate::workload::{Commands, Digest};
use crate::{Group, Library, Shape, TRIM_EVERY_ENTRIES};

/// One log entry: `commands_per_entry` commands, shared.
#[derive(Clone, Debug)]
pub struct Batch(pub Arc<Vec<Bytes>>);

impl Entry for Batch {
    type Snapshot = NoSnapshot;
}

type Node = OmniPaxos<Batch, MemoryStorage<Batch>>;

pub struct OmniPaxosGroup {
    shape: Shape,
    nodes: Vec<Node>,
    leader: usize,
    queue: VecDeque<Message<Batch>>,
    /// Reused for `take_outgoing_messages` (the library swaps buffers).
    outgoing: Vec<Message<Batch>>,
    applied: [Digest; 3],
    /// Per node, the log index up to which decided entries were applied.
    applied_index: [usize; 3],
    commands: Commands,
    entries_since_trim: u64,
    /// Messages delivered so far.
    delivered: u64,
}

impl OmniPaxosGroup {
    pub fn new(shape: Shape) -> OmniPaxosGroup {
        let cluster = ClusterConfig { configuration_id: 1, nodes: vec![1, 2, 3], ..Default::default() };
        let nodes = (1..=3)
            .map(|pid| {
                let config = OmniPaxosConfig {
                    cluster_config: cluster.clone(),
                    server_config: ServerConfig { pid, ..Default::default() },
                };
                config.build(MemoryStorage::default()).expect("valid config")
            })
            .collect();
        let mut group = OmniPaxosGroup {
            shape,
            nodes,
            leader: usize::MAX,
            queue: VecDeque::new(),
            outgoing: Vec::new(),
            applied: [Digest::default(); 3],
            applied_index: [0; 3],
            commands: Commands::new(),
            entries_since_trim: 0,
            delivered: 0,
        };
        // Ballot leader election runs on ticks; tick until every node
        // agrees on a leader that has finished Phase 1.
        for _ in 0..10_000 {
            let leaders: Vec<_> = group.nodes.iter().map(|n| n.get_current_leader()).collect();
            if let Some((pid, true)) = leaders[0] {
                if leaders.iter().all(|l| *l == Some((pid, true))) {
                    group.leader = (pid - 1) as usize;
                    break;
                }
            }
            for index in 0..group.nodes.len() {
                group.nodes[index].tick();
                group.drain(index);
            }
            group.deliver_all();
        }
        assert!(group.leader != usize::MAX, "omnipaxos elected no leader");
        group.settle();
        group
    }

    /// Queue the node's outgoing messages and apply what it has decided.
    fn drain(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.take_outgoing_messages(&mut self.outgoing);
        self.queue.extend(self.outgoing.drain(..));
        let decided = node.get_decided_idx();
        if decided > self.applied_index[index] {
            let entries = node.read_decided_suffix(self.applied_index[index]).expect("decided entries are readable");
            for entry in entries {
                match entry {
                    LogEntry::Decided(batch) => self.applied[index].add_batch(&batch.0),
                    other => panic!("omnipaxos: unexpected entry in the decided suffix: {other:?}"),
                }
            }
            self.applied_index[index] = decided;
        }
    }

    fn deliver_all(&mut self) {
        while let Some(message) = self.queue.pop_front() {
            self.delivered += 1;
            let to = (message.get_receiver() - 1) as usize;
            self.nodes[to].handle_incoming(message);
            self.drain(to);
        }
    }

    /// Trim every log below the index all three have applied (the leader
    /// tells the followers).
    fn trim(&mut self) {
        let index = *self.applied_index.iter().min().expect("three nodes");
        self.nodes[self.leader].trim(Some(index)).expect("trim below what all applied");
        self.drain(self.leader);
        self.deliver_all();
    }
}

impl Group for OmniPaxosGroup {
    fn library(&self) -> Library {
        Library::OmniPaxos
    }

    fn round(&mut self) {
        for _ in 0..self.shape.entries_per_round {
            let batch = Batch(Arc::new(self.commands.next_batch(self.shape.commands_per_entry)));
            self.nodes[self.leader].append(batch).expect("the leader takes the entry");
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
        // The leader sends Decide on its own: delivering is enough.
        self.deliver_all();
        let proposed = self.commands.proposed().commands;
        assert!(
            self.applied.iter().all(|d| d.commands == proposed),
            "omnipaxos: replicas did not converge: {:?}",
            self.applied
        );
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
