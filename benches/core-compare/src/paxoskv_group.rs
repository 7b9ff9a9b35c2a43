//! paxoskv's core (`paxoskv::paxos::Replica`), driven through its sans-IO
//! interface exactly as the README's table says: after every input the
//! shell takes `ready()`; persistence being immediate, it calls
//! `on_persisted(number)` at once and sends `send_now` and
//! `send_after_persist` together; it applies `committed` in order.
//! `persist` (the WAL's input) is dropped: the core keeps its own log in
//! memory, and there is no disk. Configuration: the defaults
//! (`Config::new`: window of 64 slots, which a round never fills) with
//! `batch_count_max` = commands per entry.

use std::collections::VecDeque;

use bytes::Bytes;
use paxoskv::paxos::{Config, Envelope, NodeId, Replica};

use crate::workload::{Commands, Digest};
use crate::{Group, Library, Shape, TRIM_EVERY_ENTRIES};

const MEMBERS: [NodeId; 3] = [1, 2, 3];

pub struct PaxoskvGroup {
    shape: Shape,
    replicas: Vec<Replica>,
    leader: usize,
    queue: VecDeque<Envelope>,
    applied: [Digest; 3],
    commands: Commands,
    entries_since_trim: u64,
}

impl PaxoskvGroup {
    pub fn new(shape: Shape) -> PaxoskvGroup {
        let mut config = Config::new(MEMBERS.to_vec());
        config.batch_count_max = shape.commands_per_entry;
        assert!(shape.entries_per_round <= config.window_slots, "a round must fit in the window");
        let replicas = MEMBERS.iter().map(|&id| Replica::new(config.clone(), id, 7).expect("valid config")).collect();
        let mut group = PaxoskvGroup {
            shape,
            replicas,
            leader: usize::MAX,
            queue: VecDeque::new(),
            applied: [Digest::default(); 3],
            commands: Commands::new(),
            entries_since_trim: 0,
        };
        for _ in 0..10_000 {
            if let Some(leader) = group.replicas.iter().position(Replica::is_leader) {
                group.leader = leader;
                break;
            }
            group.tick_all();
        }
        assert!(group.leader != usize::MAX, "paxoskv elected no leader");
        group.settle();
        group
    }

    /// Take the replica's output until it has none; persistence is instant.
    fn drain(&mut self, index: usize) {
        loop {
            let replica = &mut self.replicas[index];
            let ready = replica.ready();
            replica.on_persisted(ready.number);
            let idle = ready.is_empty() && ready.persist.is_empty() && !replica.awaiting_persist();
            self.queue.extend(ready.send_now);
            self.queue.extend(ready.send_after_persist);
            for (_, value) in &ready.committed {
                for command in value.commands() {
                    self.applied[index].add(command);
                }
            }
            if idle {
                return;
            }
        }
    }

    fn deliver_all(&mut self) {
        while let Some(envelope) = self.queue.pop_front() {
            let to = (envelope.to - 1) as usize;
            if let Err(e) = self.replicas[to].step(envelope.from, envelope.message) {
                panic!("paxoskv: node {} refused a message from node {}: {e}", envelope.to, envelope.from);
            }
            self.drain(to);
        }
    }

    fn tick_all(&mut self) {
        for index in 0..self.replicas.len() {
            self.replicas[index].tick();
            self.drain(index);
        }
        self.deliver_all();
    }

    /// Snapshot (an empty one: there is no state machine) and drop the log
    /// below each replica's commit index.
    fn trim(&mut self) {
        for index in 0..self.replicas.len() {
            let commit = self.replicas[index].commit_index();
            self.replicas[index].compact(commit, Bytes::new());
            self.drain(index);
        }
        self.deliver_all();
    }
}

impl Group for PaxoskvGroup {
    fn library(&self) -> Library {
        Library::Paxoskv
    }

    fn round(&mut self) {
        for _ in 0..self.shape.entries_per_round {
            let batch = self.commands.next_batch(self.shape.commands_per_entry);
            self.replicas[self.leader].propose(batch).expect("the leader takes the proposal");
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
        // Followers learn the commit index from the leader's next Accept or
        // heartbeat: tick until one has gone out.
        for _ in 0..1_000 {
            let proposed = self.commands.proposed().commands;
            if self.applied.iter().all(|d| d.commands == proposed) {
                return;
            }
            self.tick_all();
        }
        panic!("paxoskv: replicas did not converge: {:?}", self.applied);
    }

    fn digests(&self) -> (Digest, [Digest; 3]) {
        (self.commands.proposed(), self.applied)
    }

    fn leader_applied(&self) -> u64 {
        self.applied[self.leader].commands
    }
}
