//! One simulated server: the real core and the real store, a disk that
//! keeps only what was fsynced, and the glue a real shell would have
//! (persist-then-send, apply, answer clients).

use std::collections::{BTreeMap, VecDeque};

use super::client::ClientReply;
use super::cluster::{Cluster, EventKind, LeaderChange, ReadMode};
use super::disk::{CrashWrite, SimDisk};
use super::trace::TraceEvent;
use crate::kv::{Command, KvStore, Op, SessionId};
use crate::paxos::{Config, Envelope, Event, NodeId, PersistOp, ProposeError, ReadOutcome, Ready, Replica, Slot};
use crate::rng::Rng;

/// Session table bound for the simulated store.
const SESSIONS_MAX: usize = 1024;

/// A Ready whose persist ops are written but not yet fsynced.
pub struct UnsyncedReady {
    pub number: u64,
    pub persist: Vec<PersistOp>,
    pub send_after_persist: Vec<Envelope>,
}

/// A client read waiting at this node for the core's go-ahead.
struct WaitingRead {
    client: usize,
    attempt: u64,
    op: Op,
    /// The cluster-wide commit end when the read was issued.
    committed_at_issue: Slot,
}

pub struct SimNode {
    pub id: NodeId,
    /// `None` while crashed.
    pub replica: Option<Replica>,
    /// Bumped at each crash; events of an older epoch are ignored.
    pub epoch: u64,
    pub kv: KvStore,
    /// Slots below this were applied to `kv`.
    pub applied: Slot,
    /// What survives a crash: exactly the fsynced persist ops, as WAL bytes.
    pub disk: SimDisk,
    pub unsynced: VecDeque<UnsyncedReady>,
    /// When the last queued fsync completes (fsyncs complete in order).
    last_fsync_done_us: u64,
    pub tick_interval_us: u64,
    /// A `Drain` event is queued for this node.
    pub drain_scheduled: bool,
    waiting_writes: BTreeMap<(SessionId, u64), (usize, u64)>,
    waiting_reads: BTreeMap<u64, WaitingRead>,
    next_read_id: u64,
}

impl SimNode {
    pub fn new(id: NodeId, config: &Config, seed: u64, tick_interval_us: u64) -> SimNode {
        let replica = Replica::new(config.clone(), id, seed).expect("valid config");
        SimNode {
            id,
            replica: Some(replica),
            epoch: 0,
            kv: KvStore::new(SESSIONS_MAX),
            applied: 0,
            disk: SimDisk::default(),
            unsynced: VecDeque::new(),
            last_fsync_done_us: 0,
            tick_interval_us,
            drain_scheduled: false,
            waiting_writes: BTreeMap::new(),
            waiting_reads: BTreeMap::new(),
            next_read_id: 0,
        }
    }

    /// Lose all volatile state: the replica, the store, unsynced writes.
    /// The write in flight (the oldest unsynced Ready) may be torn.
    pub fn crash(&mut self, how: CrashWrite, rng: &mut Rng) {
        let in_flight = self.unsynced.front().map(|u| u.persist.as_slice());
        self.disk.crash(in_flight, how, rng);
        self.replica = None;
        self.epoch += 1;
        self.drain_scheduled = false;
        self.unsynced.clear();
        self.kv = KvStore::new(SESSIONS_MAX);
        self.applied = 0;
        self.waiting_writes.clear();
        self.waiting_reads.clear();
    }

    /// Come back from the disk, recovering from its bytes as a server does.
    /// The store is rebuilt from the snapshot, then by re-applying the
    /// chosen log, which the recovered replica hands out again.
    pub fn restart(&mut self, config: &Config, seed: u64) -> Result<(), String> {
        let durable = self.disk.recover()?;
        let seed = seed.wrapping_add(self.epoch.wrapping_mul(0x9E37_79B9));
        let (kv, applied) = match &durable.snapshot {
            Some(image) => {
                let kv = KvStore::restore(&image.data).map_err(|e| format!("snapshot at {}: {e}", image.slot))?;
                (kv, image.slot)
            }
            None => (KvStore::new(SESSIONS_MAX), 0),
        };
        let replica = Replica::recover(config.clone(), self.id, seed, durable).expect("valid config");
        (self.kv, self.applied, self.replica) = (kv, applied, Some(replica));
        Ok(())
    }
}

impl Cluster {
    /// Handle everything the node's replica has to say, until it is quiet.
    pub(super) fn drain(&mut self, node: NodeId) {
        loop {
            let Some(replica) = self.node_mut(node).replica.as_mut() else { return };
            let ready = replica.ready();
            if ready.is_empty() {
                // Replies to ourselves may wait on a Ready that had nothing to write.
                let n = self.node_mut(node);
                let replica = n.replica.as_mut().expect("live");
                if n.unsynced.is_empty() && replica.awaiting_persist() {
                    replica.on_persisted(ready.number);
                    continue;
                }
                return;
            }
            self.handle_ready(node, ready);
        }
    }

    fn handle_ready(&mut self, node: NodeId, ready: Ready) {
        let Ready { number, persist, send_now, send_after_persist, committed, reads, aborted, events, snapshot } =
            ready;
        for event in events {
            self.on_core_event(node, event);
        }
        self.transmit(send_now);
        if let Some(image) = snapshot {
            self.snapshots_installed += 1;
            let n = self.node_mut(node);
            n.kv = KvStore::restore(&image.data).expect("a peer's snapshot of a correct store restores");
            n.applied = image.slot;
            self.trace(TraceEvent {
                t_us: self.now_us,
                node: Some(node),
                event: "install_snapshot",
                slot: Some(image.slot),
                ..Default::default()
            });
        }
        for (slot, value) in committed {
            self.apply(node, slot, &value);
        }
        for outcome in reads {
            self.on_read_outcome(node, outcome);
        }
        for command in aborted {
            if let Ok(command) = Command::decode(&command) {
                if let Some((client, attempt)) =
                    self.node_mut(node).waiting_writes.remove(&(command.session, command.seq))
                {
                    self.reply_to_client(client, attempt, ClientReply::Redirect(None));
                }
            }
        }
        let (now_us, fsync_us) = (self.now_us, self.config.fsync_us);
        let n = self.node_mut(node);
        if persist.is_empty() && send_after_persist.is_empty() && n.unsynced.is_empty() {
            n.replica.as_mut().expect("live").on_persisted(number);
            return;
        }
        // Group commit: fsyncs complete in order, each `fsync_us` after it
        // was issued or after the previous one, whichever is later.
        let done_us = (now_us + fsync_us).max(n.last_fsync_done_us);
        n.last_fsync_done_us = done_us;
        n.unsynced.push_back(UnsyncedReady { number, persist, send_after_persist });
        let epoch = n.epoch;
        let after = done_us - now_us;
        self.schedule(after, EventKind::Persisted { node, epoch, number });
    }

    pub(super) fn on_persisted(&mut self, node: NodeId, epoch: u64, number: u64) {
        let n = self.node_mut(node);
        if n.epoch != epoch || n.replica.is_none() {
            return;
        }
        let mut sends = Vec::new();
        while n.unsynced.front().is_some_and(|u| u.number <= number) {
            let unsynced = n.unsynced.pop_front().expect("front exists");
            n.disk.sync(&unsynced.persist);
            sends.extend(unsynced.send_after_persist);
        }
        n.replica.as_mut().expect("live").on_persisted(number);
        self.transmit(sends);
        self.drain(node);
    }

    fn on_core_event(&mut self, node: NodeId, event: Event) {
        let (name, ballot, detail) = match event {
            Event::PreVoteStarted { ballot } => ("pre_vote", ballot, None),
            Event::ElectionStarted { ballot } => {
                self.elections_started.push(LeaderChange { t_us: self.now_us, node, ballot });
                ("election", ballot, None)
            }
            Event::BecameLeader { ballot, recovered_slots } => {
                self.leader_changes.push(LeaderChange { t_us: self.now_us, node, ballot });
                // Lease safety: a new leader needs promises from a majority,
                // which must have waited out every lease they granted. So
                // no one else may still believe it holds a lease now.
                for other in &self.nodes {
                    if let Some(r) = other.replica.as_ref().filter(|r| r.id() != node && r.holds_lease()) {
                        let holder = r.id();
                        self.checker.violations.push(super::checker::Violation::LeaseOverlap {
                            holder,
                            new_leader: node,
                            t_us: self.now_us,
                        });
                    }
                }
                ("leader", ballot, Some(format!("recovered {recovered_slots} slots")))
            }
            Event::SteppedDown { ballot, reason } => ("step_down", ballot, Some(format!("{reason:?}"))),
        };
        self.trace(TraceEvent {
            t_us: self.now_us,
            node: Some(node),
            event: name,
            ballot: Some(ballot),
            detail: detail.as_deref(),
            ..Default::default()
        });
    }

    fn apply(&mut self, node: NodeId, slot: Slot, value: &crate::paxos::Value) {
        self.checker.on_commit(node, slot, value, self.now_us);
        let every = self.config.snapshot_every_slots;
        let n = self.node_mut(node);
        assert_eq!(slot, n.applied, "node {node}: committed slots must arrive in order");
        n.applied = slot + 1;
        let mut replies = Vec::new();
        for bytes in value.commands() {
            // Decode once: the store applies the command, the session key finds its client.
            let Ok(command) = Command::decode(bytes) else {
                n.kv.apply_bytes(bytes); // the store's own error path for undecodable entries
                continue;
            };
            let reply = n.kv.apply(&command);
            if let Some((client, attempt)) = n.waiting_writes.remove(&(command.session, command.seq)) {
                replies.push((client, attempt, reply));
            }
        }
        if every > 0 && n.applied.is_multiple_of(every) {
            let data = n.kv.snapshot();
            let applied = n.applied;
            n.replica.as_mut().expect("live").compact(applied, data);
        }
        for (client, attempt, reply) in replies {
            self.reply_to_client(client, attempt, ClientReply::Done(reply));
        }
        if self.tracer.enabled() {
            let detail = format!("{} commands", value.commands().len());
            self.trace(TraceEvent {
                t_us: self.now_us,
                node: Some(node),
                event: "commit",
                slot: Some(slot),
                detail: Some(&detail),
                ..Default::default()
            });
        }
    }

    fn on_read_outcome(&mut self, node: NodeId, outcome: ReadOutcome) {
        let now = self.now_us;
        let n = self.node_mut(node);
        match outcome {
            ReadOutcome::Ready { id, read_index } => {
                let Some(read) = n.waiting_reads.remove(&id) else { return };
                assert!(n.applied >= read_index, "read released before its index was applied");
                let reply = n.kv.read(&read.op);
                self.checker.on_read(node, read_index, read.committed_at_issue, now);
                self.reply_to_client(read.client, read.attempt, ClientReply::Done(reply));
            }
            ReadOutcome::Failed { id } => {
                if let Some(read) = n.waiting_reads.remove(&id) {
                    self.reply_to_client(read.client, read.attempt, ClientReply::Redirect(None));
                }
            }
        }
    }

    pub(super) fn on_client_request(&mut self, node: NodeId, client: usize, attempt: u64, command: Command) {
        let committed_at_issue = self.checker.committed_end;
        let read_mode = self.config.read_mode;
        let n = self.node_mut(node);
        let Some(replica) = n.replica.as_mut() else { return };
        let result = if command.op.is_read_only() && read_mode != ReadMode::Log {
            let id = n.next_read_id;
            n.next_read_id += 1;
            let result = replica.read(id);
            if result.is_ok() {
                let read = WaitingRead { client, attempt, op: command.op, committed_at_issue };
                n.waiting_reads.insert(id, read);
            }
            result
        } else {
            let key = (command.session, command.seq);
            let result = replica.propose(vec![command.encode()]);
            if result.is_ok() {
                n.waiting_writes.insert(key, (client, attempt));
            }
            result
        };
        match result {
            Ok(()) => self.drain(node),
            Err(ProposeError::NotLeader { leader }) => {
                self.reply_to_client(client, attempt, ClientReply::Redirect(leader))
            }
            Err(ProposeError::QueueFull) => self.reply_to_client(client, attempt, ClientReply::Busy),
            Err(ProposeError::TooLarge) => {
                let reply = crate::kv::Reply::Error("ERR command too large".into());
                self.reply_to_client(client, attempt, ClientReply::Done(reply))
            }
        }
    }
}
