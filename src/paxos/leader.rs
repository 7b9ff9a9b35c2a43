//! The leader's side of the replica: taking office after Phase 1, Phase 2
//! with batching and a pipelined window, heartbeats, the lease, read-index
//! reads, and stepping down.

use super::ballot::{NodeSet, Slot};
use super::message::{Accept, Accepted, HandOver, Heartbeat, HeartbeatReply, Message, Value};
use super::proposer::{InFlight, Leader, Role};
use super::replica::{Event, ReadOutcome, Replica, StepDownReason};
use super::timeout::smoothed_x8;
use super::InjectedBug;

impl Replica {
    /// Phase 1 succeeded. Re-propose, in our ballot, every slot a promiser
    /// reported (the highest-ballot value per slot: "Paxos Made Simple" P2c),
    /// fill the holes between with no-ops, and only then serve new commands.
    /// Slots a promiser knew chosen came with its promise and were learned.
    ///
    /// Then close the window: no-ops in the `window_slots` slots past the
    /// highest reported one, and reads wait until they are chosen too
    /// (`recovery_end`). An earlier leader may have sealed a batch there
    /// that no promiser of ours accepted; a later leader could still
    /// recover it, with its old stamp, after we judged reads at later times
    /// (`paxos::time`). It cannot lie further out: a leader seals a new
    /// batch only while fewer than `window_slots` of its proposals are
    /// unchosen, and every chosen slot is reported to us, so the batch lies
    /// at most `window_slots` past a slot we know. Once our no-ops are
    /// chosen there, such a batch can never be.
    pub(super) fn become_leader(&mut self) {
        let Role::Candidate(candidate) = std::mem::replace(&mut self.role, Role::Follower) else {
            return;
        };
        // Every promiser's chosen slots were learned as its promise arrived.
        let start = self.learner.commit().max(candidate.first_unchosen);
        let end = candidate.accepted.last_key_value().map_or(start, |(&slot, _)| slot.saturating_add(1)).max(start);
        let closed_end = if self.config.injected_bug == InjectedBug::LeaderLeavesWindowOpen {
            end
        } else {
            end.saturating_add(self.config.window_slots as u64)
        };
        let values: Vec<Value> = (start..closed_end)
            .map(|slot| {
                if let Some(chosen) = self.learner.value(slot) {
                    return chosen.clone();
                }
                if self.config.injected_bug == InjectedBug::IgnorePromisedValues {
                    return Value::Noop;
                }
                candidate.accepted.get(&slot).map_or(Value::Noop, |(_, v)| v.clone())
            })
            .collect();
        let ballot = candidate.ballot;
        let mut leader = Leader::new(ballot, closed_end, self.now, self.config.members.len());
        leader.elected_floor = self.time_floor;
        self.role = Role::Leader(Box::new(leader));
        self.leader_hint = Some(self.id);
        self.election_timeout.stop();
        self.out.events.push(Event::BecameLeader { ballot, recovered_slots: end - start });
        if !values.is_empty() {
            self.propose_values(start, values);
        }
        if self.is_leader() {
            self.send_heartbeat_round();
        }
        self.maybe_catch_up();
    }

    /// Send one Accept for consecutive slots from `first_slot`, and accept it ourselves.
    fn propose_values(&mut self, first_slot: Slot, values: Vec<Value>) {
        let commit = self.learner.commit();
        let now = self.now;
        let Role::Leader(leader) = &mut self.role else { return };
        for (slot, value) in (first_slot..).zip(&values) {
            let in_flight =
                InFlight { value: value.clone(), acks: NodeSet::default(), sent_at_tick: now, proposed_tick: now };
            leader.in_flight.insert(slot, in_flight);
        }
        leader.next_slot = leader.next_slot.max(first_slot + values.len() as u64);
        let accept = Accept { ballot: leader.ballot, first_slot, values, commit };
        self.broadcast(Message::Accept(accept.clone()));
        self.on_accept_from_self(accept);
    }

    fn on_accept_from_self(&mut self, accept: Accept) {
        let index = self.index;
        self.handle_accept(index, accept);
    }

    /// Cut batches from the queue while the window has room (natural batching).
    pub(super) fn flush_proposals(&mut self) {
        // What `next_stamp` returns for every batch sealed now (it moves
        // the time floor only once a batch is sealed).
        let stamp = self.wall_ms.max(self.time_floor);
        let Role::Leader(leader) = &mut self.role else { return };
        let first_slot = leader.next_slot;
        let room = self.config.window_slots.saturating_sub(leader.in_flight.len());
        // As many batches as the queue fills, or a stamped empty one (a
        // hint: chunks may split further); none, and no allocation, when
        // nothing waits.
        let batches = leader.queue.len().div_ceil(self.config.batch_count_max.max(1)).max(leader.stamp_due as usize);
        let mut values = Vec::with_capacity(room.min(batches));
        while values.len() < room {
            match leader.next_batch(&self.config) {
                Some(batch) => values.push(Value::stamped(stamp, batch)),
                None => break,
            }
        }
        if !values.is_empty() {
            let sealed = self.next_stamp();
            debug_assert_eq!(sealed, stamp);
            self.propose_values(first_slot, values);
        }
    }

    pub(super) fn on_accepted(&mut self, from: usize, m: Accepted) {
        let majority = self.config.majority();
        let now = self.now;
        let Role::Leader(leader) = &mut self.role else { return };
        if leader.ballot != m.ballot {
            return;
        }
        leader.last_heard_tick[from] = now;
        leader.heard.insert(from);
        let mut chosen = std::mem::take(&mut self.newly_chosen);
        chosen.clear();
        // Walk the slots in flight, not the claimed range: a peer's count is not trusted.
        let end = m.first_slot.saturating_add(m.count);
        for (&slot, in_flight) in leader.in_flight.range_mut(m.first_slot..end) {
            if in_flight.acks.insert(from) && in_flight.acks.len() == majority {
                chosen.push(slot);
            }
        }
        let ballot = leader.ballot;
        for &slot in &chosen {
            let Role::Leader(leader) = &mut self.role else { unreachable!("learning keeps the role") };
            let in_flight = leader.in_flight.remove(&slot).expect("slot is in flight");
            // From its proposal, re-sent or not: a slot whose first send
            // was lost counts its wait for the re-send too, which errs long.
            // (TCP's Karn's rule skips re-sent samples, and so needs a
            // timer that backs off: without one, a timer too short for the
            // link re-sends every slot and never gets a sample to grow from.)
            leader.choose_ticks_x8 = smoothed_x8(leader.choose_ticks_x8, now.saturating_sub(in_flight.proposed_tick));
            self.out.events.push(Event::Chosen { slot, ballot, voters: in_flight.acks });
            self.learn_chosen(slot, in_flight.value);
        }
        self.newly_chosen = chosen;
        self.after_learning();
    }

    pub(super) fn on_heartbeat_reply(&mut self, from: usize, m: HeartbeatReply) {
        self.note_peer_commit(from, m.commit);
        let majority = self.config.majority();
        let lease_ticks = self.leader_lease_ticks();
        let now = self.now;
        let Role::Leader(leader) = &mut self.role else { return };
        if leader.ballot != m.ballot {
            return;
        }
        leader.last_heard_tick[from] = now;
        leader.heard.insert(from);
        leader.horizon_acks[from] = leader.horizon_acks[from].max(m.horizon);
        if let Some((sent_at_tick, ackers)) = leader.ack_round(m.round, from, majority) {
            let ballot = leader.ballot;
            if sent_at_tick + lease_ticks > leader.lease_until_tick {
                leader.lease_until_tick = sent_at_tick + lease_ticks;
                let until_tick = leader.lease_until_tick;
                self.out.events.push(Event::LeaseExtended { ballot, until_tick, ackers });
            }
            leader.confirmed_round = leader.confirmed_round.max(m.round);
        }
        self.release_reads();
    }

    /// Periodic leader duty: step down without a majority, re-send stale
    /// Accepts, and send a heartbeat round.
    pub(super) fn on_heartbeat_timeout(&mut self) {
        let Role::Leader(leader) = &self.role else { return };
        let window = self.config.election_timeout_min_ticks;
        let in_contact = |i: usize| self.now.saturating_sub(leader.last_heard_tick[i]) <= window;
        let contact = (0..self.config.members.len()).filter(|&i| i == self.index || in_contact(i)).count();
        if contact < self.config.majority() {
            self.step_down(StepDownReason::LostMajorityContact);
            return;
        }
        // Heard for real, not in the grace period after the election.
        let others_heard = (0..self.config.members.len())
            .filter(|&i| i != self.index && leader.heard.contains(i) && in_contact(i))
            .count();
        if self.hand_over_wanted && others_heard >= self.config.majority() {
            // The shell says we are unfit to lead, and the others can
            // elect a leader without us: let them (`set_fitness`), and
            // name the one whose log is furthest along to campaign now.
            let ballot = leader.ballot;
            let commit = self.learner.commit();
            let hand_over = (0..self.config.members.len())
                .filter(|&i| i != self.index && leader.heard.contains(i) && in_contact(i))
                .max_by_key(|&i| (self.peer_commit[i], std::cmp::Reverse(i)))
                .map(|successor| Message::HandOver(HandOver { ballot, to: self.config.members[successor], commit }));
            if self.config.injected_bug == InjectedBug::HandOverWhileLeading {
                if let Some(message) = hand_over {
                    self.broadcast(message);
                }
                self.retransmit_stale_accepts();
                self.send_heartbeat_round();
                return;
            }
            self.step_down(StepDownReason::HandedOver);
            // Only now: from here on this replica serves no lease read, so
            // the grants it gives up protect nothing. Its own acceptor's
            // grant first (a leader grants itself one every heartbeat
            // round, `send_heartbeat_round`): the successor needs a
            // majority with it or with a follower the hand-over may reach
            // later.
            if self.acceptor.release_lease(self.now, ballot) {
                self.out.events.push(Event::LeaseReleased { holder: ballot });
            }
            if let Some(message) = hand_over {
                self.broadcast(message);
            }
            return;
        }
        self.retransmit_stale_accepts();
        self.send_heartbeat_round();
    }

    /// How long after its last send a slot is sent again: twice as long as
    /// slots take to be chosen (smoothed), and at least
    /// `accept_retry_ticks`. Not doubled with every re-send: entries are
    /// lost even on a quiet network (a follower drops those over its
    /// backpressure bound), and with doubling the simulator's latency
    /// checker saw a write at a follower wait 208 ms in a quiet stretch
    /// (seed 2 of `sweep_120_seeds_a_read_window_of_one`). Samples count
    /// from the proposal, re-sent or not, so they err long, never short.
    /// A fixed 30 ticks re-sent every slot in flight to
    /// every member that had not acked it yet: with a follower's disk
    /// slower than that (a throttled leader handing over, stop 56), a
    /// leader sent its followers 41-213 MB a second of re-sent Accepts
    /// beside 16-76 MB of new ones, over links that had lost nothing, and
    /// the healthy follower's link fell 0.5-0.7 s behind, its heartbeats
    /// with it, until it timed its leader out.
    pub(super) fn resend_after_ticks(accept_retry_ticks: u64, choose_ticks_x8: u64) -> u64 {
        accept_retry_ticks.max(choose_ticks_x8 / 4)
    }

    /// Accepts (or their replies) may be lost: re-send each slot in flight
    /// for longer than `resend_after_ticks` to the members that did not ack it.
    fn retransmit_stale_accepts(&mut self) {
        let commit = self.learner.commit();
        let now = self.now;
        let members = self.config.members.len();
        let retry = self.config.accept_retry_ticks;
        let Role::Leader(leader) = &mut self.role else { return };
        let after = Self::resend_after_ticks(retry, leader.choose_ticks_x8);
        let due = |in_flight: &InFlight| now - in_flight.sent_at_tick >= after;
        let ballot = leader.ballot;
        let mut messages = Vec::new();
        for peer in (0..members).filter(|&i| i != self.index) {
            let mut run: Option<Accept> = None;
            for (&slot, in_flight) in &leader.in_flight {
                if !due(in_flight) || in_flight.acks.contains(peer) {
                    continue;
                }
                match &mut run {
                    Some(accept) if accept.first_slot + accept.values.len() as u64 == slot => {
                        accept.values.push(in_flight.value.clone());
                    }
                    _ => {
                        if let Some(done) = run.take() {
                            messages.push((peer, done));
                        }
                        run = Some(Accept { ballot, first_slot: slot, values: vec![in_flight.value.clone()], commit });
                    }
                }
            }
            if let Some(done) = run {
                messages.push((peer, done));
            }
        }
        for in_flight in leader.in_flight.values_mut() {
            if due(in_flight) {
                in_flight.sent_at_tick = now;
            }
        }
        for (peer, accept) in messages {
            self.send(peer, Message::Accept(accept));
        }
    }

    /// Start a heartbeat round: lease renewal, commit knowledge, read-index confirmation.
    pub(super) fn send_heartbeat_round(&mut self) {
        if !self.is_leader() {
            return;
        }
        let horizon = self.heartbeat_horizon();
        let majority = self.config.majority();
        let lease_ticks = self.leader_lease_ticks();
        let commit = self.learner.commit();
        let now = self.now;
        let index = self.index;
        let Role::Leader(leader) = &mut self.role else { return };
        let round = leader.start_round(now);
        leader.read_round_due = false;
        if let Some((sent_at_tick, _)) = leader.ack_round(round, index, majority) {
            // A group of one: no other acceptor's grant to outlive.
            leader.lease_until_tick = leader.lease_until_tick.max(sent_at_tick + lease_ticks);
            leader.confirmed_round = round;
        }
        let ballot = leader.ballot;
        self.acceptor.grant_lease(now, ballot, self.config.lease_ticks);
        self.heartbeat_timeout.reset(now);
        self.broadcast(Message::Heartbeat(Heartbeat { ballot, commit, round, horizon }));
        self.release_reads();
    }

    /// A read waiting for a confirmation round gets one at the next `ready()`.
    pub(super) fn flush_read_round(&mut self) {
        if let Role::Leader(leader) = &self.role {
            if leader.read_round_due {
                self.send_heartbeat_round();
            }
        }
    }

    /// Answer every waiting read whose round is confirmed and whose read
    /// index is committed.
    ///
    /// Called at every commit and persist: inlined, it costs a check when
    /// no read waits (nearly always), and the call happens only when one does.
    #[inline]
    pub(super) fn release_reads(&mut self) {
        if matches!(&self.role, Role::Leader(leader) if !leader.reads.is_empty()) {
            self.release_waiting_reads();
        }
    }

    fn release_waiting_reads(&mut self) {
        let commit = self.learner.commit();
        let Role::Leader(leader) = &self.role else { return };
        if self.horizon_acked() < leader.elected_floor {
            // A read judged now might come before a time an earlier leader
            // judged a read at: wait for our horizon to pass it.
            return;
        }
        let confirmed = leader.confirmed_round;
        if !leader.reads.iter().any(|read| read.confirm_round <= confirmed && read.read_index <= commit) {
            return;
        }
        // Judged no later than a batch in flight: the read comes before
        // it, and it may be chosen, with its stamp, after this replica
        // steps down. Until stop 57 the shell capped the time by the
        // batches in flight when it served the read, but a leader that
        // stepped down in the same step (a hand-over at its heartbeat
        // round) no longer had them then: a read judged after a SET
        // stamped before it, which a later leader chose (the simulator's
        // linearizability checker, seed 748 of the every-fault sweep once
        // hand-overs came often). Batches sealed later are stamped at
        // least this read's clock time (`read_time` raises the floor).
        let in_flight = leader.in_flight.values().map(|f| f.value.stamp()).filter(|&stamp| stamp > 0).min();
        let at_ms = self.read_time().min(in_flight.unwrap_or(u64::MAX));
        let Role::Leader(leader) = &mut self.role else { return };
        let out = &mut self.out.reads;
        leader.reads.retain(|read| {
            let ready = read.confirm_round <= confirmed && read.read_index <= commit;
            if ready {
                out.push(ReadOutcome::Ready { id: read.id, read_index: read.read_index, at_ms });
            }
            !ready
        });
    }

    /// Seal a batch at the next `ready()` even if no command waits (a
    /// stamped empty batch moves the log's time on). Leader only.
    pub fn request_stamp(&mut self) {
        if let Role::Leader(leader) = &mut self.role {
            leader.stamp_due = true;
        }
    }
}
