//! paxoskv's core (`paxoskv::paxos::Replica`), driven through its sans-IO
//! interface as `replica.rs` prescribes: after every input, while
//! `has_ready()` says there is output, the shell takes `ready()`, makes
//! `persist` durable, then calls `on_persisted(number)` and sends
//! `send_after_persist`; `send_now` may go at once; it applies `committed`
//! in order, and hands the drained `Ready` back (`recycle`).
//!
//! Storage: each replica's `persist` ops are applied to a
//! [`DurableState`], the in-memory model of what the WAL holds (the one
//! the simulator's disk and WAL replay share), and acknowledged at once:
//! the counterpart of raft-rs's `MemStorage` and OmniPaxos's
//! `MemoryStorage`. [`Storage::Dropped`] skips that (the ops are dropped
//! unread), to show what the storage model costs.
//!
//! Configuration: the defaults (`Config::new`: window of 64 slots, which a
//! round never fills) with `batch_count_max` = commands per entry. A new
//! leader first fills its window with no-ops (`Replica::become_leader`):
//! [`PaxoskvGroup::new`] waits until every replica has committed them, so
//! no measurement includes the election.

use std::collections::VecDeque;

use bytes::Bytes;
use paxoskv::paxos::{Config, DurableState, Envelope, NodeId, Replica};

use crate::workload::{Commands, Digest};
use crate::{Group, Library, Shape, TRIM_EVERY_ENTRIES};

const MEMBERS: [NodeId; 3] = [1, 2, 3];

/// What happens to the core's `persist` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Applied to an in-memory [`DurableState`] per replica.
    Memory,
    /// Dropped unread (no storage at all; not what any shell may do).
    Dropped,
}

pub struct PaxoskvGroup {
    shape: Shape,
    storage: Storage,
    replicas: Vec<Replica>,
    durable: Vec<DurableState>,
    leader: usize,
    queue: VecDeque<Envelope>,
    applied: [Digest; 3],
    commands: Commands,
    entries_since_trim: u64,
    /// Messages delivered so far.
    delivered: u64,
}

impl PaxoskvGroup {
    pub fn new(shape: Shape, storage: Storage) -> PaxoskvGroup {
        let mut config = Config::new(MEMBERS.to_vec());
        config.batch_count_max = shape.commands_per_entry;
        assert!(shape.entries_per_round <= config.window_slots, "a round must fit in the window");
        let replicas = MEMBERS.iter().map(|&id| Replica::new(config.clone(), id, 7).expect("valid config")).collect();
        let mut group = PaxoskvGroup {
            shape,
            storage,
            replicas,
            durable: vec![DurableState::default(); MEMBERS.len()],
            leader: usize::MAX,
            queue: VecDeque::new(),
            applied: [Digest::default(); 3],
            commands: Commands::new(),
            entries_since_trim: 0,
            delivered: 0,
        };
        for _ in 0..10_000 {
            if let Some(leader) = group.replicas.iter().position(Replica::is_leader) {
                group.leader = leader;
                break;
            }
            group.tick_all();
        }
        assert!(group.leader != usize::MAX, "paxoskv elected no leader");
        // The new leader's window of no-ops: chosen, and known chosen by
        // every replica, before anything is measured.
        group.deliver_all();
        let window = group.replicas[group.leader].config().window_slots as u64;
        for _ in 0..1_000 {
            let commit = group.replicas[group.leader].commit_index();
            if commit >= window && group.replicas.iter().all(|r| r.commit_index() == commit) {
                break;
            }
            group.tick_all();
        }
        let commit = group.replicas[group.leader].commit_index();
        assert!(commit >= window, "paxoskv: the new leader's no-ops were not chosen (commit {commit})");
        assert!(group.replicas.iter().all(|r| r.commit_index() == commit), "paxoskv: followers lag after the election");
        group.settle();
        group
    }

    /// Replica `index`'s commit index.
    pub fn commit_index(&self, index: usize) -> u64 {
        self.replicas[index].commit_index()
    }

    /// The durable state replica `index` has stored (empty with [`Storage::Dropped`]).
    pub fn durable(&self, index: usize) -> &DurableState {
        &self.durable[index]
    }

    /// Take the replica's output until it has none (`has_ready`, as
    /// raft-rs's harness asks its `has_ready`); persistence is instant.
    #[cfg(not(feature = "core-without-has-ready"))]
    fn drain(&mut self, index: usize) {
        while self.replicas[index].has_ready() {
            self.take_ready(index);
        }
    }

    /// A core from before `Replica::has_ready` (a `--before` revision of
    /// `benches/core-compare.sh`): take `ready()` until one comes back
    /// empty, as that core's shells did.
    #[cfg(feature = "core-without-has-ready")]
    fn drain(&mut self, index: usize) {
        while !self.take_ready(index) {}
    }

    /// Take one `Ready` and act on it; true if it was empty and nothing
    /// waits for a persist (the replica is idle).
    fn take_ready(&mut self, index: usize) -> bool {
        let replica = &mut self.replicas[index];
        let mut ready = replica.ready();
        let empty = ready.is_empty();
        if self.storage == Storage::Memory {
            let durable = &mut self.durable[index];
            // The ops are done with once stored: moved in, not cloned.
            #[cfg(not(feature = "core-without-apply-owned"))]
            ready.persist.drain(..).for_each(|op| durable.apply_owned(op));
            #[cfg(feature = "core-without-apply-owned")]
            ready.persist.iter().for_each(|op| durable.apply(op));
        }
        replica.on_persisted(ready.number);
        let idle = empty && !replica.awaiting_persist();
        self.queue.extend(ready.send_now.drain(..));
        self.queue.extend(ready.send_after_persist.drain(..));
        assert!(ready.snapshot.is_none() && ready.aborted.is_empty(), "paxoskv: no snapshot or abort expected");
        for (_, value) in &ready.committed {
            self.applied[index].add_batch(value.commands());
        }
        // The buffers go back to the core for its next Ready (the API
        // a shell uses to avoid an allocation per vector per input).
        replica.recycle(ready);
        idle
    }

    fn deliver_all(&mut self) {
        while let Some(envelope) = self.queue.pop_front() {
            self.delivered += 1;
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
        match self.storage {
            Storage::Memory => Library::Paxoskv,
            Storage::Dropped => Library::PaxoskvNoStorage,
        }
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

    fn messages_delivered(&self) -> u64 {
        self.delivered
    }

    fn leader_applied(&self) -> u64 {
        self.applied[self.leader].commands
    }
}
