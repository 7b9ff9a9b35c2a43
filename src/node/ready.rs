//! The core's Ready loop as the node runs it: peer messages out, WAL
//! appends (and the replies that wait for their fsync), committed slots
//! applied to the store, reads answered, snapshots handed out.

use bytes::Bytes;

use super::anatomy::Stage;
use super::output::{Append, NodeEvent, SnapshotJob};
use super::request::{Request, Unsynced};
use super::state::Node;
use crate::kv::{Command, KvStore, Op, Reply, SessionId, ERROR_READ_OVERTAKEN};
use crate::net::peer::PeerFrame;
use crate::paxos::{Envelope, Event, InjectedBug, Message, PersistOp, ReadOutcome, Ready, Slot, Value};

impl<C> Node<C> {
    // ---- durability ---------------------------------------------------------

    /// Every append up to `token` is durable: release what waited for it.
    pub fn on_synced(&mut self, now_us: u64, token: u64) {
        self.advance(now_us);
        self.anatomy.on_synced(token, now_us);
        self.synced_append = self.synced_append.max(token);
        while self.appends_unsynced.front().is_some_and(|(t, _, _)| *t <= token) {
            let (_, bytes, _) = self.appends_unsynced.pop_front().expect("front exists");
            self.unsynced_bytes -= bytes;
        }
        let mut sends = Vec::new();
        let mut number = None;
        while self.unsynced.front().is_some_and(|u| u.token <= token) {
            let u = self.unsynced.pop_front().expect("front exists");
            sends.extend(u.sends);
            number = Some(u.number);
        }
        self.transmit(sends);
        if let Some(number) = number {
            self.replica.on_persisted(number);
        }
    }

    /// A snapshot job handed out earlier is serialized.
    pub fn on_snapshot_ready(&mut self, now_us: u64, slot: Slot, data: Bytes) {
        self.advance(now_us);
        if self.snapshot_pending == Some(slot) {
            self.snapshot_pending = None;
        }
        self.replica.compact(slot, data);
    }

    // ---- the Ready loop -----------------------------------------------------

    /// Run the core's Ready loop until it has nothing more to say.
    pub fn drain(&mut self) {
        // A share of a snapshot's copy of the store, if one is in progress.
        self.continue_snapshot_copy();
        // A share of what was held while the disk was behind, if it caught up.
        self.release_held();
        // What an input let go of its session's order (a forwarded read
        // answered, say) goes first, behind what let it go.
        self.submit_released();
        loop {
            // The core's promise to shells that skip `ready()` on its word
            // (the core benchmarks do): checked here so that every
            // simulated run checks it.
            let promised = self.replica.has_ready();
            let ready = self.replica.ready();
            assert!(promised || ready.is_empty(), "Replica::has_ready said no, and ready() had output: {ready:?}");
            if ready.is_empty() {
                // Replies to ourselves may wait on a Ready that had nothing to
                // write (nothing they depend on is unsynced: `sync_wanted`).
                let number = ready.number;
                self.replica.recycle(ready);
                if !self.sync_wanted() && self.replica.awaiting_persist() {
                    self.replica.on_persisted(number);
                    continue;
                }
                break;
            }
            self.handle_ready(ready);
        }
        self.check_invariants();
    }

    pub(super) fn handle_ready(&mut self, mut ready: Ready) {
        let number = ready.number;
        // Moved on as they are (the WAL and the sync queue keep them).
        let persist = std::mem::take(&mut ready.persist);
        let send_after_persist = std::mem::take(&mut ready.send_after_persist);
        // Drained: their buffers go back to the core (`recycle`).
        let Ready { send_now, committed, reads, aborted, events, snapshot, .. } = &mut ready;
        let stepped_down = events.iter().any(|e| matches!(e, Event::SteppedDown { .. }));
        self.out.events.extend(events.drain(..).map(NodeEvent::Core));
        self.transmit(send_now.drain(..));
        if let Some(image) = snapshot.take() {
            match KvStore::restore(&image.data) {
                Ok(kv) => {
                    self.kv = kv;
                    // Our own image in progress was of the store replaced:
                    // it is dropped, and the next one may start.
                    if self.snapshot_copy.take().is_some() {
                        self.snapshot_pending = None;
                    }
                    self.applied = image.slot;
                    self.out.events.push(NodeEvent::SnapshotInstalled { slot: image.slot });
                    self.answer_reads_after_snapshot();
                }
                Err(e) => {
                    let detail = format!("a peer's snapshot at slot {} does not restore: {e}", image.slot);
                    self.out.events.push(NodeEvent::Fatal(detail));
                }
            }
        }
        for (slot, value) in committed.drain(..) {
            self.apply(slot, &value);
        }
        for outcome in reads.drain(..) {
            self.on_read_outcome(outcome);
        }
        self.submit_released();
        for command in aborted.drain(..) {
            let Ok(command) = Command::decode(&command) else { continue };
            self.resubmit_waiting_write((command.session, command.seq));
        }
        if stepped_down {
            // Writes in flight in our ballot may never be chosen (the next
            // leader fills a slot only a minority accepted with a no-op):
            // route them to the next leader now rather than at their
            // deadline; their session applies them once whichever slot
            // wins, and a session's later commands wait for them.
            let mut keys: Vec<_> = self.waiting_writes.keys().copied().collect();
            keys.sort_unstable();
            for key in keys {
                self.resubmit_waiting_write(key);
            }
        }
        self.replica.recycle(ready);
        self.persist(number, persist, send_after_persist);
    }

    /// Take a waiting write out of the table and route it again (it never
    /// got a slot, or its slot may never be chosen).
    pub(super) fn resubmit_waiting_write(&mut self, key: (SessionId, u64)) {
        if let Some(w) = self.take_waiting_write(key) {
            let (command, waiter, deadline_us, arrival) = (w.command, w.waiter, w.deadline_us, w.arrival);
            self.try_submit(Request { command, waiter, deadline_us, arrival, maybe_applied: true, via_log: true });
        }
        self.submit_released();
    }

    /// Hand `persist` to the shell and hold the Ready's persist-gated
    /// replies until the fsync that covers them.
    pub(super) fn persist(&mut self, number: u64, persist: Vec<PersistOp>, sends: Vec<Envelope>) {
        // Something waits for this Ready's own persist: a reply to a peer,
        // one of our acceptor's replies to ourselves filed under this Ready,
        // or an op other than a commit index. A leader's own Accepted for
        // an earlier Ready's Accept waits for that Ready's sync, already
        // wanted: counting it here made a commit-index record its own sync
        // (one leader WAL write in seven at 2k ops/s, issue 11).
        let waited_for = !sends.is_empty()
            || self.replica.awaiting_persist_of(number)
            || persist.iter().any(|op| !matches!(op, PersistOp::Commit { .. }));
        if !persist.is_empty() {
            let bytes = persist.iter().map(op_bytes).sum();
            self.unsynced_bytes += bytes;
            self.appends_unsynced.push_back((number, bytes, self.now_us));
            self.last_append = number;
            self.anatomy.on_append(self.replica.is_leader(), number, &persist, self.now_us);
            self.out.appends.push(Append { token: number, ops: persist });
        } else if !self.sync_wanted() {
            // Nothing new to write and everything anything waits for is
            // durable (at most commit-index records are not): the replies
            // (say, an Accepted for slots stored before) go now. Filed under
            // an append not yet synced, they would wait for its sync, on an
            // idle node the next horizon record's.
            self.transmit(sends);
            self.replica.on_persisted(number);
            return;
        }
        if waited_for {
            self.wanted_append = self.last_append;
        }
        match self.unsynced.back_mut() {
            // Depends on the same append as the Ready before it: merge, so
            // a disk that is slow to sync does not grow one entry per input.
            Some(last) if last.token == self.last_append => {
                last.number = number;
                last.sends.extend(sends);
            }
            _ => self.unsynced.push_back(Unsynced { token: self.last_append, number, sends }),
        }
    }

    /// Send what the core said. Except that a node whose disk is behind
    /// asks no peer for the log it missed: the answer, up to
    /// `catchup_chunk_bytes` (4 MiB) of entries, would wait for the disk
    /// or be dropped (`Node::on_peer_frame`), and the core asks again every
    /// `catchup_retry_ticks` until answered. A follower throttled below
    /// its leader's load so had the leader encode a chunk for it every
    /// 30 ms for nothing (stop 55). The request is lost as the network
    /// may lose it, and the core's timer asks again.
    pub(super) fn transmit(&mut self, envelopes: impl IntoIterator<Item = Envelope>) {
        let behind = !self.accepting();
        for envelope in envelopes {
            if behind && matches!(envelope.message, Message::CatchUp(_)) {
                continue;
            }
            self.out.messages.push((envelope.to, PeerFrame::Paxos(envelope.message)));
        }
    }

    pub(super) fn apply(&mut self, slot: Slot, value: &Value) {
        assert_eq!(slot, self.applied, "committed slots arrive in order");
        self.applied = slot + 1;
        let commands = value.commands();
        self.out.events.push(NodeEvent::Applied { slot, commands: commands.len(), bytes: value.size_bytes() });
        if let Value::Batch { stamp, .. } = value {
            self.kv.advance_clock(*stamp);
        }
        let at_ms = self.kv.log_time();
        if let Some(rest) = self.split_rest.take() {
            self.kv.apply(rest);
        }
        if commands.len() > 1 {
            self.kv.warm(commands);
        }
        for bytes in commands {
            // Decode once: the store applies the command, its key finds the waiter.
            let Ok(mut command) = Command::decode(bytes) else {
                self.kv.apply_bytes(bytes); // the store's own, deterministic error path
                continue;
            };
            if self.replica.config().injected_bug == InjectedBug::SplitMultiKeyWrites {
                self.split_multi_key_write(&mut command);
            }
            let (session, seq) = (command.session, command.seq);
            // Reads due right after a command of this session are answered
            // as it runs: the store may run the session's next waiting
            // command right after it, in the same call.
            let mut answered = Vec::new();
            let mut due = Vec::new();
            let applied_slots = self.applied;
            let refuse_below_index = self.replica.config().injected_bug == InjectedBug::AfterWriteReadRefused;
            let applied = match self.sessions_waiting.get_mut(&session).filter(|w| !w.after_writes.is_empty()) {
                Some(waiting) => self.kv.apply_observed(command, &mut |store, _, ran| {
                    for mut read in waiting.reads_after(ran) {
                        // Past the read itself: its write ran where this node
                        // did not see it (a snapshot), or was given up on and
                        // a later command ran first.
                        let in_order = ran < read.request.command.seq;
                        let fresh = applied_slots >= read.read_index;
                        if in_order && !fresh && !refuse_below_index {
                            // Ran below the slots committed when the read
                            // arrived (committed, not yet applied here then;
                            // or a copy from an earlier leader): the read
                            // waits for them, unless a later command of its
                            // session runs first.
                            read.ran = true;
                            due.push(read.read_index);
                            waiting.attach(read);
                            continue;
                        }
                        let reply = (in_order && fresh).then(|| store.read(&read.request.command.op, at_ms));
                        answered.push((read, reply));
                    }
                }),
                None => self.kv.apply(command),
            };
            self.reads_due.extend(due.into_iter().map(|index| (index, session)));
            if self.config.trace_checks {
                let executed = applied.reply.iter().filter(|_| applied.ran).map(|r| (session, seq, r));
                // A released read the store refused (`Session::overtaken`) did not run.
                let released = applied.released.iter().filter(|(_, _, r)| !is_overtaken(r));
                for (session, seq, reply) in executed.chain(released.map(|(s, q, r)| (*s, *q, r))) {
                    self.out.events.push(NodeEvent::Executed { session, seq, reply: reply.clone(), at_ms });
                }
            }
            if let Some(reply) = applied.reply {
                if let Some(w) = self.take_waiting_write((session, seq)) {
                    if let Some(start) = w.sampled_us {
                        let mut stages = Vec::new();
                        self.anatomy.write_answered(slot, start, self.now_us, &mut stages);
                        self.out.events.extend(stages.into_iter().map(|(stage, us)| NodeEvent::Stage { stage, us }));
                    }
                    self.deliver(w.waiter, reply);
                    if !applied.ran {
                        // A replay: the hook above did not see it run.
                        self.answer_reads_after(session, seq);
                    }
                }
            }
            for (session, seq, reply) in applied.released {
                if let Some(w) = self.take_waiting_write((session, seq)) {
                    self.deliver(w.waiter, reply);
                }
            }
            if !answered.is_empty() {
                for (read, reply) in answered {
                    self.answer_read_after(read, reply, at_ms);
                }
                self.forget_if_idle(session);
            }
        }
        if !self.reads_due.is_empty() {
            self.answer_reads_due();
        }
        self.anatomy.applied(self.applied);
        self.maybe_snapshot(value.size_bytes() as u64);
    }

    /// `InjectedBug::SplitMultiKeyWrites`: keep an MSET's first key in
    /// `command` and set the others aside for the next slot.
    fn split_multi_key_write(&mut self, command: &mut Command) {
        if let Op::MSet { pairs } = &mut command.op {
            if pairs.len() > 1 && self.split_rest.is_none() {
                let rest = pairs.split_off(1);
                self.split_rest = Some(Command::anonymous(Op::MSet { pairs: rest }));
            }
        }
    }

    /// Hand out a snapshot job once enough was applied since the last one
    /// (one at a time).
    pub(super) fn maybe_snapshot(&mut self, bytes: u64) {
        self.since_snapshot_slots += 1;
        self.since_snapshot_bytes += bytes;
        let due = |count: u64, every: u64| every > 0 && count >= every;
        let slots_due = due(self.since_snapshot_slots, self.config.snapshot_every_slots);
        let bytes_due = due(self.since_snapshot_bytes, self.config.snapshot_every_bytes);
        if !(slots_due || bytes_due) || self.snapshot_pending.is_some() {
            return;
        }
        self.since_snapshot_slots = 0;
        self.since_snapshot_bytes = 0;
        self.snapshot_pending = Some(self.applied);
        self.out.events.push(NodeEvent::SnapshotStarted { slot: self.applied });
        let start = self.kv.begin_image();
        self.snapshot_copy = Some((self.applied, start));
        self.continue_snapshot_copy();
    }

    /// Copy the next share of the snapshot's keys
    /// (`NodeConfig::snapshot_copy_keys`); once all are copied, hand the
    /// image to the shell. The commands applied meanwhile leave the image
    /// as it was at its slot (`kv::keyspace`).
    pub(super) fn continue_snapshot_copy(&mut self) {
        if self.snapshot_copy.is_none() || !self.kv.continue_image(self.config.snapshot_copy_keys.max(1)) {
            return;
        }
        let (slot, start) = self.snapshot_copy.take().expect("checked above");
        let image = self.kv.take_image(start).expect("the copy is complete");
        self.out.snapshot = Some(SnapshotJob { slot, image });
    }

    pub(super) fn on_read_outcome(&mut self, outcome: ReadOutcome) {
        match outcome {
            ReadOutcome::Ready { id, read_index, at_ms } => {
                let Some(read) = self.waiting_reads.remove(&id) else { return };
                self.left(read.command.session, read.command.seq, true);
                assert!(self.applied >= read_index, "read released before its index was applied");
                if self.overtaken(read.command.session, read.command.seq) {
                    self.deliver(read.waiter, Reply::Error(ERROR_READ_OVERTAKEN.into()));
                    return;
                }
                // Judged at the leader's read time, but not after a batch
                // the read comes before, and never before the log's time
                // (see `paxos::time`).
                let cap = self.replica.stamp_floor_from(self.applied).unwrap_or(u64::MAX);
                let at_ms = at_ms.min(cap).max(self.kv.log_time());
                if self.config.trace_checks {
                    let (session, seq) = (read.command.session, read.command.seq);
                    self.out.events.push(NodeEvent::ReadServed { id, read_index, at_ms, session, seq });
                }
                let reply = self.kv.read(read.op(), at_ms);
                self.reads_served += 1;
                if let Some(start) = read.sampled_us {
                    let us = self.now_us.saturating_sub(start);
                    self.out.events.push(NodeEvent::Stage { stage: Stage::ReadWait, us });
                }
                self.deliver(read.waiter, reply);
            }
            ReadOutcome::Failed { id } => {
                if let Some(read) = self.waiting_reads.remove(&id) {
                    self.left(read.command.session, read.command.seq, true);
                    let mut request = Request::new(read.command, read.waiter, read.deadline_us);
                    request.arrival = read.arrival;
                    self.try_submit(request);
                }
            }
        }
    }

    /// Debug builds and the simulator (`trace_checks`): the rules the
    /// table keeps. Until stop 57 only debug builds checked them, and no
    /// test runs a debug build: a rule outdated since stop 45 (it counted
    /// forwarded reads as held here) failed every debug run unseen.
    pub(super) fn check_invariants(&self) {
        if cfg!(debug_assertions) || self.config.trace_checks {
            assert!(
                self.forwards_due.len() == self.forwarded.len()
                    && self
                        .forwards_due
                        .iter()
                        .all(|(due, id)| self.forwarded.get(id).is_some_and(|f| f.due_tick == *due)),
                "forwards_due out of step with forwarded"
            );
            assert!(self.applied <= self.replica.commit_index(), "applied past the commit index");
            assert!(self.released.is_empty(), "released requests left unsubmitted");
            let forwarded_writes =
                self.forwarded.len().checked_sub(self.forwarded_reads).expect("forwarded reads miscounted");
            let writes: usize = self.sessions_waiting.values().map(|s| s.writes.total()).sum();
            assert_eq!(writes, self.waiting_writes.len() + forwarded_writes, "pending writes miscounted");
            // A forwarded read holds nothing here (the leader keeps its
            // order, `Node::route_again`): only the reads the core serves.
            let reads: usize = self.sessions_waiting.values().map(|s| s.reads.total()).sum();
            assert_eq!(reads, self.waiting_reads.len(), "pending reads miscounted");
            assert!(self.sessions_waiting.values().all(|s| !s.is_empty()), "an idle session kept");
            let reads = self.forwarded.values().filter(|f| !self.goes_through_log(&f.request)).count();
            assert_eq!(reads, self.forwarded_reads, "forwarded reads miscounted");
            assert!(reads <= self.config.forward_read_window, "more reads forwarded than the window");
            assert_eq!(
                self.unsynced_bytes,
                self.appends_unsynced.iter().map(|(_, b, _)| b).sum::<usize>(),
                "unsynced bytes out of step"
            );
        }
    }
}

/// Roughly how many bytes of input an op holds until the disk has it (for
/// backpressure, `NodeConfig::unsynced_bytes_max`).
///
/// A snapshot counts as a small record. Its image is as large as the store,
/// not input: holding requests does not bring it to the disk sooner, and
/// its memory is bounded by the store's. Counted whole, a snapshot of a
/// store larger than the bound (64 MiB by default) held every client
/// request, and stopped the server reading its peers (as it then did),
/// until the image was written: a leader so held heard no follower for
/// its election timeout and stepped down (issue 11, stop 52).
fn op_bytes(op: &PersistOp) -> usize {
    match op {
        PersistOp::Accept { values, .. } | PersistOp::Chosen { values, .. } => {
            32 + values.iter().map(|v| 16 + v.size_bytes()).sum::<usize>()
        }
        _ => 32,
    }
}

fn is_overtaken(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(message) if message == ERROR_READ_OVERTAKEN)
}
