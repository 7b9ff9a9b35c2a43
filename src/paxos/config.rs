//! Every bound and timeout of the core, in one place. Times are in ticks:
//! the shell calls `Replica::tick` at a fixed interval (1 ms in the server
//! and the simulator), so `*_ticks` fields read as milliseconds there.

use std::fmt;

use super::ballot::NodeId;
use super::message::ACCEPTED_AHEAD_MAX;

/// The largest `batch_bytes_max`: one slot's value must fit in one WAL
/// record (`storage::RECORD_SPLIT_BYTES`, 16 MiB), since a record cannot be
/// split inside a value.
pub const BATCH_BYTES_LIMIT: usize = 16 << 20;

/// The largest `window_slots`. A correct acceptor then never holds an
/// accepted value more than about a window above its commit index, so the
/// bound peers enforce on what a Promise or RecoveryReply reports
/// ([`ACCEPTED_AHEAD_MAX`], checked in `Message::check_well_formed`) never
/// refuses a correct one.
pub const WINDOW_SLOTS_MAX: usize = 1 << 16;
const _: () = assert!((WINDOW_SLOTS_MAX as u64) * 16 <= ACCEPTED_AHEAD_MAX, "leave the window room below the bound");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The group's members (at most 64, no duplicates). Quorums are majorities of these.
    pub members: Vec<NodeId>,
    /// Phase 2 pipelining: at most this many slots in flight at the leader
    /// (1..=[`WINDOW_SLOTS_MAX`]).
    pub window_slots: usize,
    /// A slot's batch holds at most this many commands...
    pub batch_count_max: usize,
    /// ...and at most this many payload bytes. A single command larger than
    /// this is refused by `propose`. At most [`BATCH_BYTES_LIMIT`].
    pub batch_bytes_max: usize,
    /// Commands waiting for a slot at the leader; `propose` fails with `QueueFull` beyond it...
    pub proposal_queue_max: usize,
    /// ...or beyond this many payload bytes.
    pub proposal_queue_bytes_max: usize,
    /// Reads waiting for confirmation or commit at the leader; `read` fails beyond it.
    pub read_queue_max: usize,
    /// The leader sends a heartbeat (commit index, lease renewal) this often.
    pub heartbeat_ticks: u64,
    /// A follower that hears no leader for a random time in
    /// `[election_timeout_min_ticks, election_timeout_max_ticks]` starts an election.
    /// A leader that hears from no majority for `election_timeout_min_ticks` steps down.
    pub election_timeout_min_ticks: u64,
    pub election_timeout_max_ticks: u64,
    /// How long an acceptor, after hearing from a leader, refuses to promise anyone else.
    /// Must be below `election_timeout_min_ticks`.
    pub lease_ticks: u64,
    /// Bound on the rate difference between any replica's tick clock and real time,
    /// in parts per thousand. The leader shortens its lease by it (see `lease.rs`).
    pub clock_drift_permille: u64,
    /// Serve reads locally at a leader holding a lease; otherwise every read
    /// takes a read-index round.
    pub lease_reads: bool,
    /// Re-send an unacknowledged Accept after this long.
    pub accept_retry_ticks: u64,
    /// Catch-up transfers at most this many chosen slots per reply (and
    /// `catchup_chunk_bytes` of payload, but always at least one slot),
    /// and asks again after `catchup_retry_ticks` without an answer.
    pub catchup_chunk_slots: u64,
    pub catchup_chunk_bytes: usize,
    pub catchup_retry_ticks: u64,
    /// Snapshots travel in chunks of at most this many bytes; a snapshot
    /// larger than `snapshot_bytes_max` is refused (bounds the memory used
    /// to assemble one).
    pub snapshot_chunk_bytes: usize,
    pub snapshot_bytes_max: u64,
    /// A leader asks acceptors to store a time horizon this far past its
    /// wall clock (milliseconds), renewed when half of it is left (see
    /// `time.rs`): after a failover, log time may run this much ahead.
    pub horizon_ms: u64,
    /// Test-only: break one protocol rule on purpose, to show the checkers can fail.
    #[doc(hidden)]
    pub injected_bug: InjectedBug,
}

/// Deliberate protocol bugs, for proving the simulator's checkers are not vacuous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InjectedBug {
    #[default]
    None,
    /// A new leader ignores the accepted values reported in promises and
    /// fills every unchosen slot with a no-op (breaks Paxos P2c).
    IgnorePromisedValues,
    /// The leader's lease ignores the clock-drift bound and the acceptors'
    /// receive delay: it runs for the full `lease_ticks` (breaks lease safety).
    LeaseIgnoresDrift,
    /// Promise and Accepted replies leave before their state is persisted
    /// (a crash then forgets what the reply promised).
    ReplyBeforePersist,
    /// The node moves the core's clock only on its timer, not before each
    /// input, so after an executor stall an acceptor steps the messages
    /// that queued up with the tick before the stall, and stamps its lease
    /// grants with it (they then end earlier in real time than the leader's
    /// lease). Implemented in `node/`.
    StaleGrantClock,
    /// A replica that lost its durable state votes again after only the
    /// restart quarantine, without first relearning promises and accepted
    /// values from a majority (`recovery.rs` undone).
    EmptyReplicaVotes,
    /// The leader (or candidate) counts its own Accepted (or Promise) at
    /// once, before its own persist: a crash then loses a vote that was
    /// counted toward a choice.
    CountOwnVoteBeforePersist,
    /// A restarted acceptor does not wait out the lease it may have granted
    /// before the crash, and promises a new leader at once.
    NoRestartQuarantine,
    /// A read without a lease is answered at its read index without the
    /// heartbeat round that confirms the leader was not deposed.
    ReadIndexWithoutRound,
    /// A new leader stamps batches with its own clock only: it ignores the
    /// time horizons promises report, so with clocks offset its stamps can
    /// fall below times its predecessor judged reads at (a key read as
    /// expired comes back).
    StampIgnoresHorizon,
    /// The node applies an MSET of several keys in two steps: the first
    /// key with the command, the rest before the next slot's commands (a
    /// read in between sees the keys half written). Implemented in `node/`.
    SplitMultiKeyWrites,
    /// A new leader does not close the `window_slots` slots past the log it
    /// recovered before serving reads: a batch a deposed leader sealed there,
    /// unknown to it, can be recovered later with a stamp older than times
    /// it judged reads at.
    LeaderLeavesWindowOpen,
    /// Every node answers a client read (GET and every other read-only
    /// command) from its own applied state at once: no lease, no
    /// read-index round, no forward to the leader. A follower behind the
    /// log, or a deposed leader cut off in a minority, then serves stale
    /// values. Implemented in `node/`. The one bug a server may run with
    /// (`--unsafe-inject-bug`, to measure what safe reads cost).
    StaleLeaseReads,
    /// The node reports its next timer deadline one tick late
    /// (`Node::next_tick_us`): a shell that sleeps until then fires
    /// heartbeats, retries and expiries late. The simulator ticks every
    /// tick and reports any tick that acts before the reported deadline.
    /// Implemented in `node/`.
    LateTickDeadline,
    /// The simulated disk stamps a WAL segment's writes with the segment's
    /// index, as the WAL did before salts: after a lost log, the new log's
    /// segment 0 takes the deleted one's writes, exposed past its end by a
    /// crash, for its own (a later write number behind a torn one reads as
    /// mid-log damage, and recovery refuses to start). Implemented in
    /// `sim/disk.rs`; the real WAL has no such switch.
    WalIndexEpochs,
    /// The node takes a client's commands in without its connection's
    /// order: a read is answered as if its session had nothing waiting (it
    /// can miss the writes pipelined before it) and a write never waits
    /// for a read sent before it (the read can see it). Implemented in
    /// `node/order.rs`.
    SessionOrderIgnored,
    /// A read to answer right after its write, whose write runs below the
    /// slots committed when the read arrived (committed, not yet applied
    /// then), is refused instead of waiting for them: under steady load a
    /// client gets errors for reads nothing overtook. Implemented in
    /// `node/ready.rs`.
    AfterWriteReadRefused,
    /// Once the entries a node holds while its disk is behind pass
    /// `unsynced_bytes_max`, it holds every frame its peers send (acks,
    /// heartbeats, its clients' answers), in arrival order, until its
    /// disk catches up: as if its server stopped reading its peers, as
    /// servers did until stop 55. A follower whose disk cannot keep up
    /// with the load then leaves its clients waiting for it, their
    /// answers unread (the latency checker). Implemented in
    /// `node/requests.rs`.
    PeersUnreadWhileBehind,
    /// A leader unfit to lead names its successor and gives its followers'
    /// lease grants up (`Message::HandOver`) but leads on, serving lease
    /// reads, until a higher ballot deposes it: the successor can be
    /// elected while it still serves them.
    HandOverWhileLeading,
}

impl InjectedBug {
    /// Every variant, with its command-line name.
    pub const ALL: [(InjectedBug, &'static str); 19] = [
        (InjectedBug::None, "none"),
        (InjectedBug::IgnorePromisedValues, "ignore-promised-values"),
        (InjectedBug::LeaseIgnoresDrift, "lease-ignores-drift"),
        (InjectedBug::ReplyBeforePersist, "reply-before-persist"),
        (InjectedBug::StaleGrantClock, "stale-grant-clock"),
        (InjectedBug::EmptyReplicaVotes, "empty-replica-votes"),
        (InjectedBug::CountOwnVoteBeforePersist, "count-own-vote-before-persist"),
        (InjectedBug::NoRestartQuarantine, "no-restart-quarantine"),
        (InjectedBug::ReadIndexWithoutRound, "read-index-without-round"),
        (InjectedBug::StampIgnoresHorizon, "stamp-ignores-horizon"),
        (InjectedBug::SplitMultiKeyWrites, "split-multi-key-writes"),
        (InjectedBug::LeaderLeavesWindowOpen, "leader-leaves-window-open"),
        (InjectedBug::StaleLeaseReads, "stale-lease-reads"),
        (InjectedBug::LateTickDeadline, "late-tick-deadline"),
        (InjectedBug::WalIndexEpochs, "wal-index-epochs"),
        (InjectedBug::SessionOrderIgnored, "session-order-ignored"),
        (InjectedBug::AfterWriteReadRefused, "after-write-read-refused"),
        (InjectedBug::PeersUnreadWhileBehind, "peers-unread-while-behind"),
        (InjectedBug::HandOverWhileLeading, "hand-over-while-leading"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(bug, _)| *bug == self).map_or("none", |(_, name)| name)
    }

    pub fn from_name(name: &str) -> Option<InjectedBug> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(bug, _)| *bug)
    }
}

impl Config {
    /// Defaults for a group of `members`, tuned for 1 ms ticks.
    pub fn new(members: Vec<NodeId>) -> Config {
        Config {
            members,
            window_slots: 64,
            batch_count_max: 1024,
            batch_bytes_max: 1 << 20,
            proposal_queue_max: 1 << 16,
            proposal_queue_bytes_max: 64 << 20,
            read_queue_max: 1 << 16,
            heartbeat_ticks: 10,
            election_timeout_min_ticks: 150,
            election_timeout_max_ticks: 300,
            lease_ticks: 100,
            clock_drift_permille: 50,
            lease_reads: true,
            accept_retry_ticks: 30,
            catchup_chunk_slots: 256,
            catchup_chunk_bytes: 4 << 20,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_bytes_max: 1 << 32,
            catchup_retry_ticks: 30,
            horizon_ms: 200,
            injected_bug: InjectedBug::None,
        }
    }

    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    pub fn index_of(&self, node: NodeId) -> Option<usize> {
        self.members.iter().position(|&m| m == node)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |what: String| Err(ConfigError(what));
        if self.members.is_empty() || self.members.len() > 64 {
            return fail(format!("members: need 1..=64, got {}", self.members.len()));
        }
        let mut sorted = self.members.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.members.len() {
            return fail("members: duplicate node id".into());
        }
        if self.window_slots == 0 || self.batch_count_max == 0 || self.batch_bytes_max == 0 {
            return fail("window_slots, batch_count_max and batch_bytes_max must be >= 1".into());
        }
        if self.window_slots > WINDOW_SLOTS_MAX {
            return fail(format!("window_slots ({}) exceeds {WINDOW_SLOTS_MAX}", self.window_slots));
        }
        if self.batch_bytes_max > BATCH_BYTES_LIMIT {
            return fail(format!("batch_bytes_max ({}) exceeds {BATCH_BYTES_LIMIT}", self.batch_bytes_max));
        }
        if self.proposal_queue_max == 0 || self.proposal_queue_bytes_max == 0 || self.read_queue_max == 0 {
            return fail("proposal and read queue bounds must be >= 1".into());
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_bytes_max == 0 {
            return fail("snapshot_chunk_bytes and snapshot_bytes_max must be >= 1".into());
        }
        if self.catchup_chunk_slots == 0
            || self.catchup_chunk_bytes == 0
            || self.catchup_retry_ticks == 0
            || self.accept_retry_ticks == 0
        {
            return fail("catch-up and retry bounds must be >= 1".into());
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= self.lease_ticks {
            return fail(format!(
                "heartbeat_ticks ({}) must be >= 1 and below lease_ticks ({})",
                self.heartbeat_ticks, self.lease_ticks
            ));
        }
        if self.lease_ticks >= self.election_timeout_min_ticks {
            return fail(format!(
                "lease_ticks ({}) must be below election_timeout_min_ticks ({})",
                self.lease_ticks, self.election_timeout_min_ticks
            ));
        }
        if self.election_timeout_min_ticks > self.election_timeout_max_ticks {
            return fail("election_timeout_min_ticks exceeds election_timeout_max_ticks".into());
        }
        if self.horizon_ms < 2 {
            return fail("horizon_ms must be >= 2".into());
        }
        if self.clock_drift_permille >= 1000 {
            return fail("clock_drift_permille must be below 1000".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid paxos config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slots_must_lie_in_one_to_the_bound() {
        let mut config = Config::new(vec![1, 2, 3]);
        for (window_slots, ok) in [(0, false), (1, true), (WINDOW_SLOTS_MAX, true), (WINDOW_SLOTS_MAX + 1, false)] {
            config.window_slots = window_slots;
            assert_eq!(config.validate().is_ok(), ok, "window_slots = {window_slots}");
        }
        config.window_slots = WINDOW_SLOTS_MAX + 1;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid paxos config: window_slots (65537) exceeds 65536"
        );
    }
}
