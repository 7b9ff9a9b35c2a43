//! paxoskv's consensus core next to OmniPaxos and raft-rs: the same
//! in-memory, single-threaded 3-replica workload drives each library, and
//! we count wall time and allocations per committed command.
//!
//! # The workload
//!
//! Three replicas in one thread, no network, no clock, no disk: a message
//! one replica emits is put on a FIFO queue, and the harness delivers the
//! queue's head to its receiver, then handles everything that receiver
//! outputs, until the queue is empty. Messages are passed as values (no
//! library serializes). Storage is each library's in-memory model of it,
//! and an fsync is acknowledged the moment the write is made: raft-rs
//! appends to its `MemStorage`, OmniPaxos writes through its
//! `MemoryStorage`, paxoskv applies its `persist` ops to a `DurableState`
//! (see each harness). Leadership is settled before any measurement (for
//! paxoskv, including the window of no-ops a new leader proposes); nothing
//! ticks while commands are measured, except to spread the last commit
//! index at the end of a sample.
//!
//! A *command* is 16 opaque bytes, a `Bytes` slice of a static pool
//! (see `workload.rs`): cloning one copies no byte and counts no
//! reference. A *round* hands the leader `entries_per_round`
//! entries of `commands_per_entry` commands each, then delivers messages
//! until none is left. "Batch" has two meanings, one per axis:
//!
//! - **commands per entry** (1, 64 or 1024): one log entry carries this many
//!   commands. paxoskv: one slot whose value is a batch of that many commands
//!   (`batch_count_max` = that number; the leader is handed exactly that many
//!   commands per entry, so natural batching cuts exactly one slot per
//!   entry). OmniPaxos: one `append` of an entry type holding a shared slice
//!   of commands. raft-rs: one `propose` whose data is the commands encoded
//!   back to back, each behind a 4-byte length (raft-rs entries are bytes).
//! - **entries per round** (1: lockstep, one entry committed per message
//!   round trip; 16: pipelined, the leader holds 16 entries before anything
//!   is delivered): how the entries travel is left to each library (paxoskv
//!   puts every slot the window has room for into one Accept; OmniPaxos
//!   extends the pending AcceptDecide; raft-rs, with `batch_append`, merges
//!   them into one append per follower).
//!
//! A *committed command* is one the leader has applied (taken from its
//! committed output). Each measured sample is a run of rounds followed by
//! [`Group::settle`], which delivers (and ticks, for libraries that carry
//! commit knowledge on the next message) until every replica has applied
//! every proposed command; the sample's time includes the settling, so the
//! figure is also per command applied on all three replicas.
//!
//! # Correctness
//!
//! Every replica folds each command it applies into an order-sensitive
//! [`Digest`]; the proposer folds each command it proposes into another.
//! [`check`] fails unless all three replicas applied exactly the proposed
//! sequence: a harness that drops, reorders or duplicates commands cannot
//! report a speed.

pub mod alloc;
pub mod harness_group;
pub mod measure;
pub mod omnipaxos_group;
pub mod paxoskv_group;
pub mod raft_group;
pub mod workload;

pub use workload::{Commands, Digest};

/// The three libraries, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    Paxoskv,
    OmniPaxos,
    Raft,
    /// paxoskv with its `persist` output dropped instead of stored: not a
    /// fair competitor (no storage at all), only the storage model's cost.
    PaxoskvNoStorage,
    /// No library: the harness's own work per command (make it, fold it
    /// into the proposer's and three replicas' digests, drop it), which
    /// every other row includes.
    Harness,
}

impl Library {
    pub const ALL: [Library; 5] =
        [Library::Paxoskv, Library::OmniPaxos, Library::Raft, Library::PaxoskvNoStorage, Library::Harness];

    pub fn name(self) -> &'static str {
        match self {
            Library::Paxoskv => "paxoskv",
            Library::OmniPaxos => "omnipaxos",
            Library::Raft => "raft-rs",
            Library::PaxoskvNoStorage => "paxoskv-no-storage",
            Library::Harness => "harness-only",
        }
    }

    /// A 3-replica group with its leader elected and settled.
    pub fn build(self, shape: Shape) -> Box<dyn Group> {
        use paxoskv_group::{PaxoskvGroup, Storage};
        match self {
            Library::Paxoskv => Box::new(PaxoskvGroup::new(shape, Storage::Memory)),
            Library::PaxoskvNoStorage => Box::new(PaxoskvGroup::new(shape, Storage::Dropped)),
            Library::OmniPaxos => Box::new(omnipaxos_group::OmniPaxosGroup::new(shape)),
            Library::Raft => Box::new(raft_group::RaftGroup::new(shape)),
            Library::Harness => Box::new(harness_group::HarnessGroup::new(shape)),
        }
    }
}

/// How commands are grouped: see the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub commands_per_entry: usize,
    pub entries_per_round: usize,
}

impl Shape {
    pub fn commands_per_round(self) -> u64 {
        (self.commands_per_entry * self.entries_per_round) as u64
    }
}

/// The log is trimmed (snapshot, compaction) every this many entries, on
/// every replica, so memory stays bounded however long a run is.
pub const TRIM_EVERY_ENTRIES: u64 = 1024;

/// One library's 3-replica group, driven by the harness.
pub trait Group {
    fn library(&self) -> Library;

    /// Hand the leader one round of entries, then deliver every message
    /// (handling each receiver's output) until none is left.
    fn round(&mut self);

    /// Deliver (and tick, if the library needs it to spread its commit
    /// index) until every replica has applied every proposed command.
    fn settle(&mut self);

    /// What the proposer proposed, and what each replica applied, in order.
    fn digests(&self) -> (Digest, [Digest; 3]);

    /// Messages delivered between replicas so far (a replica's messages
    /// to itself, where a library has them, are not counted).
    fn messages_delivered(&self) -> u64 {
        0
    }

    /// Commands applied at the leader.
    fn leader_applied(&self) -> u64 {
        let (_, applied) = self.digests();
        applied.iter().map(|d| d.commands).max().unwrap_or(0)
    }
}

/// Fail unless every replica applied exactly what was proposed, in order.
pub fn check(group: &dyn Group) -> Result<(), String> {
    let (proposed, applied) = group.digests();
    for (index, digest) in applied.iter().enumerate() {
        if *digest != proposed {
            return Err(format!(
                "{}: replica {} applied {} commands (digest {:#018x}), the leader was handed {} (digest {:#018x})",
                group.library().name(),
                index + 1,
                digest.commands,
                digest.hash,
                proposed.commands,
                proposed.hash
            ));
        }
    }
    Ok(())
}
