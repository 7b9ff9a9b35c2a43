//! Learning chosen values the replica missed: catch-up from the most
//! advanced peer, snapshot transfer when that peer compacted past us, and
//! the bookkeeping after the commit index moves.

use bytes::Bytes;

use super::ballot::Slot;
use super::message::*;
use super::persist::{PersistOp, SnapshotImage};
use super::replica::{Replica, SNAPSHOT_RESUME_ATTEMPTS};

impl Replica {
    pub(super) fn on_catch_up(&mut self, from: usize, m: CatchUp) {
        if m.first_slot < self.learner.compacted() {
            // Those slots exist only in our snapshot now.
            let slot = self.learner.compacted();
            self.send_snapshot_chunk(from, slot, 0);
            return;
        }
        let values =
            self.learner.chosen_run(m.first_slot, self.config.catchup_chunk_slots, self.config.catchup_chunk_bytes);
        let commit = self.learner.commit();
        self.send(from, Message::CatchUpReply(CatchUpReply { first_slot: m.first_slot, values, commit }));
    }

    pub(super) fn on_catch_up_reply(&mut self, from: usize, m: CatchUpReply) {
        self.peer_commit[from] = self.peer_commit[from].max(m.commit);
        for (slot, value) in (m.first_slot..).zip(m.values) {
            self.learn_chosen(slot, value);
        }
        self.after_learning();
        // An answer with nothing we need (the peer compacted past us, or is
        // no further along) leaves the retry timer running: asking again at
        // once would loop.
        let progressed = self.learner.commit() > m.first_slot;
        if self.catchup_target == Some(from) && progressed {
            self.catchup_target = None;
            self.catchup_timeout.stop();
            self.maybe_catch_up();
        }
    }

    /// Send the chunk at `offset` of the snapshot `to` is receiving. A
    /// transfer keeps the image it started with even if we compact again
    /// meanwhile (the image is shared, not copied); otherwise a replica could
    /// never finish a transfer while the others compact faster than it
    /// downloads. A request for an image we no longer hold starts over with
    /// our latest one.
    pub(super) fn send_snapshot_chunk(&mut self, to: usize, slot: Slot, offset: u64) {
        let image = match self.snapshot_transfers.get(&to) {
            Some(image) if image.slot == slot => image.clone(),
            _ => {
                let Some(latest) = self.snapshot.clone() else { return };
                self.snapshot_transfers.insert(to, latest.clone());
                latest
            }
        };
        let total_bytes = image.data.len() as u64;
        let offset = if image.slot == slot && offset <= total_bytes { offset } else { 0 };
        let end = (offset + self.config.snapshot_chunk_bytes as u64).min(total_bytes);
        if end == total_bytes {
            self.snapshot_transfers.remove(&to);
        }
        let data = image.data.slice(offset as usize..end as usize);
        let chunk = SnapshotChunk { slot: image.slot, total_bytes, offset, data };
        self.send(to, Message::SnapshotChunk(chunk));
    }

    pub(super) fn on_snapshot_chunk(&mut self, from: usize, m: SnapshotChunk) {
        if m.slot <= self.learner.commit() {
            self.incoming_snapshot = None; // stale: we are past it
            return;
        }
        if m.total_bytes > self.config.snapshot_bytes_max {
            return; // too large to hold
        }
        if m.offset == 0 {
            self.incoming_snapshot = Some((m.slot, m.total_bytes, Vec::new()));
        }
        let Some((slot, total, buffer)) = &mut self.incoming_snapshot else { return };
        if *slot != m.slot || *total != m.total_bytes || buffer.len() as u64 != m.offset {
            return; // out of order: the retry timer asks again
        }
        buffer.extend_from_slice(&m.data);
        self.snapshot_retries = 0;
        if (buffer.len() as u64) < *total {
            let request = FetchSnapshot { slot: *slot, offset: buffer.len() as u64 };
            self.catchup_target = Some(from);
            self.catchup_timeout.reset(self.now);
            self.send(from, Message::FetchSnapshot(request));
            return;
        }
        let (slot, _, buffer) = self.incoming_snapshot.take().expect("assembling");
        let image = SnapshotImage { slot, data: Bytes::from(buffer) };
        self.learner.install_snapshot(slot);
        self.acceptor.prune_below(slot);
        self.out.persist.push(PersistOp::Snapshot(image.clone()));
        self.out.snapshot = Some(image.clone());
        self.snapshot = Some(image);
        self.after_learning();
        if self.catchup_target == Some(from) {
            self.catchup_target = None;
            self.catchup_timeout.stop();
        }
        self.maybe_catch_up(); // the log suffix after the snapshot
    }

    // ---- learning ---------------------------------------------------------

    /// `value` is chosen at `slot`. Records it durably unless our acceptor's
    /// accepted value (already on its way to disk) is that same value.
    pub(super) fn learn_chosen(&mut self, slot: Slot, value: Value) {
        self.learn_chosen_from(slot, value, false);
    }

    /// `learn_chosen`, where `accepted_here` says the caller took `value`
    /// from our acceptor's accepted slot (the commit knowledge of a
    /// leader's message): then it is on its way to disk without a second
    /// lookup and comparison.
    pub(super) fn learn_chosen_from(&mut self, slot: Slot, value: Value, accepted_here: bool) {
        self.note_stamp(&value);
        if self.learner.is_chosen(slot) {
            self.learner.learn(slot, value); // asserts agreement
            return;
        }
        let on_disk = accepted_here || self.acceptor.accepted(slot).is_some_and(|(_, v)| *v == value);
        if !on_disk {
            self.out.persist.push(PersistOp::Chosen { first_slot: slot, values: vec![value.clone()] });
        }
        self.learner.learn_new(slot, value);
    }

    /// Housekeeping after the commit index may have moved.
    pub(super) fn after_learning(&mut self) {
        let commit = self.learner.commit();
        self.acceptor.prune_below(commit);
        self.peer_commit[self.index] = commit;
        self.release_reads();
        self.maybe_finish_recovery();
    }

    /// Remember that member `index` reported commit index `commit`, and
    /// fetch what we lack if it is ahead of us.
    pub(super) fn note_peer_commit(&mut self, index: usize, commit: Slot) {
        self.peer_commit[index] = self.peer_commit[index].max(commit);
        if commit > self.learner.commit() {
            self.maybe_catch_up();
        }
    }

    /// Ask the most advanced peer we know of for chosen values we lack
    /// (one request outstanding at a time).
    ///
    /// Inlined: called at every contact with the leader, and a check (or
    /// two) when a request is out or no peer is ahead.
    #[inline]
    pub(super) fn maybe_catch_up(&mut self) {
        if self.catchup_target.is_none() {
            self.catch_up_if_behind();
        }
    }

    fn catch_up_if_behind(&mut self) {
        let commit = self.learner.commit();
        let best = (0..self.peer_commit.len())
            .filter(|&i| i != self.index && self.peer_commit[i] > commit)
            .max_by_key(|&i| (self.peer_commit[i], std::cmp::Reverse(i)));
        if let Some(target) = best {
            self.request_catch_up(target);
        }
    }

    pub(super) fn request_catch_up(&mut self, target: usize) {
        self.catchup_target = Some(target);
        self.catchup_timeout.reset(self.now);
        let first_slot = self.learner.commit();
        self.send(target, Message::CatchUp(CatchUp { first_slot }));
    }

    /// No answer (lost message or dead peer): ask the next member, in
    /// index order after the last one, that claims to be ahead of us.
    pub(super) fn on_catchup_timeout(&mut self) {
        let Some(last) = self.catchup_target.take() else { return };
        // A snapshot transfer in progress resumes where it stopped, from
        // the same peer, a few times before starting over elsewhere.
        if let Some((slot, _, buffer)) = &self.incoming_snapshot {
            if self.snapshot_retries < SNAPSHOT_RESUME_ATTEMPTS {
                self.snapshot_retries += 1;
                let request = FetchSnapshot { slot: *slot, offset: buffer.len() as u64 };
                self.catchup_target = Some(last);
                self.catchup_timeout.reset(self.now);
                self.send(last, Message::FetchSnapshot(request));
                return;
            }
            self.incoming_snapshot = None;
        }
        let commit = self.learner.commit();
        let members = self.peer_commit.len();
        let next = (1..=members)
            .map(|step| (last + step) % members)
            .find(|&i| i != self.index && self.peer_commit[i] > commit);
        if let Some(target) = next {
            self.request_catch_up(target);
        }
    }
}
