//! Time in the log: batch stamps and the leader's time horizon.
//!
//! Keys with a TTL expire by time, so every replica must judge "expired"
//! alike, and a read must never see a key that an earlier read saw
//! expired. Apply never reads a clock: the leader stamps every batch it
//! seals with its wall clock ([`Value::stamp`], Unix milliseconds), and
//! the state machine judges expiry at the highest stamp it applied. A read
//! the leader serves outside the log (lease or read-index) is judged at
//! its own clock, as Redis judges at the master's clock, so a key past its
//! TTL is gone even when no write advanced the log. The rule that keeps
//! this linearizable: **every stamp is at least every time a read was
//! judged at before it, by this leader or an earlier one**.
//!
//! Within one leader: it keeps a floor (`time_floor`), raised to each stamp
//! it seals, each read time it judges, and each stamp it learns; a stamp
//! is `max(wall clock, floor)`. Clocks may step backwards; stamps never do.
//!
//! Across leaders, clock *offsets* are unbounded (the drift bound limits
//! only rates), so the next leader's clock may be behind the times its
//! predecessor judged reads at. The predecessor therefore judges a read at
//! `min(wall clock, horizon)`, where the horizon is a time that a majority
//! of acceptors stored *durably* before acknowledging it: the leader asks
//! for `wall + horizon_ms` in its heartbeats whenever less than half of
//! that margin is left (so each acceptor writes one small record per
//! `horizon_ms / 2` at most, in the group commit when there is traffic).
//! A Promise reports the acceptor's stored horizon; a new leader needs a
//! majority of promises, one of which comes from an acceptor that stored
//! the predecessor's horizon (quorum intersection, durable across crashes),
//! and raises its floor to the highest reported. So its first stamp is at
//! least every time its predecessor could have judged a read at.
//!
//! One more way a stamp could fall behind a read: a deposed leader seals a
//! batch that only a minority accepts, and the next leader, whose
//! promisers never saw it, judges reads at later times; a leader after it
//! could recover the batch, unchanged as Paxos requires, so with its old
//! stamp, behind those reads. A new leader therefore closes the window
//! before it serves reads: it proposes no-ops in the `window_slots` slots
//! past the highest one its promisers reported, where alone such a batch
//! can lie, and reads wait until they are chosen
//! (`Replica::become_leader`). `window_slots` must be the same on every
//! node for that bound to hold.
//!
//! The cost: after a failover, log time may run up to `horizon_ms` ahead
//! of the new leader's clock until its clock catches up (keys may expire
//! that much early then). A shell that gives the replica no clock
//! (`set_wall` never called) gets stamps and read times of 0 and no
//! horizon records.

use super::config::InjectedBug;
use super::message::Value;
use super::persist::PersistOp;
use super::proposer::Role;
use super::replica::Replica;
use super::Slot;

impl Replica {
    /// The shell's wall clock (Unix milliseconds), before each input. It may
    /// go backwards; nothing the core stamps does.
    pub fn set_wall(&mut self, ms: u64) {
        self.wall_ms = ms;
    }

    /// The highest stamp or read time this replica has produced or learned.
    pub fn time_floor(&self) -> u64 {
        self.time_floor
    }

    /// The horizon this replica's acceptor has stored durably.
    pub fn horizon_durable(&self) -> u64 {
        self.horizon_durable
    }

    pub(super) fn raise_floor(&mut self, ms: u64) {
        self.time_floor = self.time_floor.max(ms);
    }

    /// A value learned or reported: its stamp is a floor for later stamps.
    pub(super) fn note_stamp(&mut self, value: &Value) {
        self.raise_floor(value.stamp());
    }

    /// A horizon a promise or recovery answer reported.
    pub(super) fn note_reported_horizon(&mut self, ms: u64) {
        if self.config.injected_bug != InjectedBug::StampIgnoresHorizon {
            self.raise_floor(ms);
        }
    }

    /// The stamp for a batch sealed now.
    pub(super) fn next_stamp(&mut self) -> u64 {
        let stamp = self.wall_ms.max(self.time_floor);
        self.time_floor = stamp;
        stamp
    }

    /// Ask our own acceptor to store `ms` as its horizon (if higher).
    pub(super) fn store_horizon(&mut self, ms: u64) -> bool {
        if ms <= self.horizon_stored {
            return false;
        }
        self.horizon_stored = ms;
        self.out.persist.push(PersistOp::Horizon { ms });
        self.horizon_in_ready = Some(ms);
        true
    }

    /// The leader's horizon for its next heartbeat: renewed when less than
    /// half of `horizon_ms` is left on the wall clock.
    pub(super) fn heartbeat_horizon(&mut self) -> u64 {
        if self.wall_ms == 0 {
            return self.horizon_stored;
        }
        // From the floor when the clock is behind it (after a failover to
        // a node with a slower clock), so reads are not held for long.
        let base = self.wall_ms.max(self.time_floor);
        let margin = self.config.horizon_ms;
        if self.horizon_stored < base.saturating_add(margin / 2) {
            self.store_horizon(base.saturating_add(margin));
        }
        self.horizon_stored
    }

    /// The horizon a majority (this replica's durable one included) has
    /// stored: reads are judged at no later time.
    pub(super) fn horizon_acked(&self) -> u64 {
        let Role::Leader(leader) = &self.role else { return 0 };
        // The majority-th highest, without a sorted copy (called on every
        // commit; clusters are small): the highest ack that at least a
        // majority of acks reach.
        let ack = |i: usize| if i == self.index { self.horizon_durable } else { leader.horizon_acks[i] };
        let members = leader.horizon_acks.len();
        let majority = self.config.majority();
        (0..members)
            .map(ack)
            .filter(|&candidate| (0..members).filter(|&j| ack(j) >= candidate).count() >= majority)
            .max()
            .unwrap_or(0)
    }

    /// The time a read served now is judged at: the clock, or the floor
    /// when the clock is behind it, but never past the horizon a majority
    /// stored (a later leader learns that). Raises the floor to it.
    pub(super) fn read_time(&mut self) -> u64 {
        let at = self.wall_ms.max(self.time_floor).min(self.horizon_acked());
        self.raise_floor(at);
        at
    }

    /// The earliest stamp among the batches at `slot` and after that this
    /// replica knows chosen, if any. A read served from a store applied up
    /// to `slot` comes before those batches, which were stamped when
    /// sealed, possibly before the read was judged: the shell judges it at
    /// no later time than this (and never before the log's time, which is
    /// at most this), so times never go backwards along the order in which
    /// reads and writes take effect. The batches a leader had in flight
    /// when it released the read already cap the read's time
    /// (`ReadOutcome::Ready::at_ms`), and later ones are stamped past it.
    pub fn stamp_floor_from(&self, slot: Slot) -> Option<u64> {
        self.learner.values_from(slot).map(Value::stamp).filter(|&stamp| stamp > 0).min()
    }

    /// Ready `number` is durable: so is any horizon it stored.
    pub(super) fn horizon_persisted(&mut self, number: u64) {
        while self.horizon_unsynced.front().is_some_and(|(n, _)| *n <= number) {
            let (_, ms) = self.horizon_unsynced.pop_front().expect("front exists");
            self.horizon_durable = self.horizon_durable.max(ms);
        }
    }
}
