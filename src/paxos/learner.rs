//! The learner role: which slots are chosen, with what value, and which of
//! them have been handed to the state machine.

use super::slotmap::SlotMap;

use super::ballot::Slot;
use super::message::Value;

#[derive(Clone, Debug)]
pub struct Learner {
    /// Chosen values. Invariant: contains every slot in `[0, commit)` (until
    /// compaction by the storage layer), plus any chosen slot learned beyond a hole.
    chosen: SlotMap<Value>,
    /// Commit index: the first slot not known chosen.
    commit: Slot,
    /// Slots below this were handed out in `Ready::committed`.
    /// Invariant: `emitted <= commit`.
    emitted: Slot,
    /// Values below this were dropped by `compact`. Invariant: `compacted <= emitted`.
    compacted: Slot,
}

impl Learner {
    /// A learner whose log starts at `base` (a snapshot's slot, or 0).
    pub fn new(chosen: SlotMap<Value>, mut commit: Slot, base: Slot) -> Learner {
        assert!(
            base <= commit && chosen.range(base..commit).count() as u64 == commit - base,
            "recovered state lacks chosen values in [{base}, {commit})"
        );
        // Chosen values recorded just past the last durable commit marker.
        while chosen.contains_key(&commit) {
            commit += 1;
        }
        Learner { chosen, commit, emitted: base, compacted: base }
    }

    /// A snapshot covering every slot below `slot` replaces the log before it.
    pub fn install_snapshot(&mut self, slot: Slot) {
        self.chosen.drop_below(slot);
        self.commit = self.commit.max(slot);
        self.advance_commit();
        self.emitted = self.emitted.max(slot);
        self.compacted = self.compacted.max(slot);
    }

    /// Slots below this were handed out in `Ready::committed` (or are in a snapshot).
    pub fn emitted(&self) -> Slot {
        self.emitted
    }

    /// Slots below this are only in the snapshot.
    pub fn compacted(&self) -> Slot {
        self.compacted
    }

    /// Chosen values held in memory (bounded by the snapshot interval).
    pub fn log_len(&self) -> usize {
        self.chosen.len()
    }

    pub fn commit(&self) -> Slot {
        self.commit
    }

    /// Known chosen here: below the commit index (even if compacted) or learned beyond it.
    /// The commit index itself is never in `chosen` (`advance_commit` moves
    /// past every chosen slot that follows it), so it costs no lookup; a
    /// slot past the last chosen one costs one comparison (`SlotMap`).
    pub fn is_chosen(&self, slot: Slot) -> bool {
        debug_assert!(!self.chosen.contains_key(&self.commit), "the commit index {} is chosen", self.commit);
        slot < self.commit || (slot > self.commit && self.chosen.contains_key(&slot))
    }

    pub fn value(&self, slot: Slot) -> Option<&Value> {
        self.chosen.get(&slot)
    }

    /// The chosen values known here at `slot` and after, in slot order.
    pub fn values_from(&self, slot: Slot) -> impl Iterator<Item = &Value> {
        self.chosen.range(slot..).map(|(_, value)| value)
    }

    /// Record that `slot` holds `value`. Returns true if this is news.
    /// Learning a different value for a known slot is an agreement violation:
    /// a bug in the protocol, so it crashes.
    pub fn learn(&mut self, slot: Slot, value: Value) -> bool {
        if slot < self.compacted {
            return false; // covered by the snapshot; its value is gone from memory
        }
        if let Some(known) = self.chosen.get(&slot) {
            assert_eq!(known, &value, "two values chosen for slot {slot}");
            return false;
        }
        self.learn_new(slot, value);
        true
    }

    /// Record `slot`'s chosen value, which the caller checked is not known
    /// chosen here (`!is_chosen(slot)`): `learn` without its lookup for a
    /// known value (one per slot on every replica).
    #[inline]
    pub fn learn_new(&mut self, slot: Slot, value: Value) {
        debug_assert!(!self.is_chosen(slot), "slot {slot} is already known chosen");
        self.chosen.insert(slot, value);
        // The commit index is the first slot not chosen: only learning
        // that very slot moves it.
        if slot == self.commit {
            self.commit += 1;
            self.advance_commit();
        }
    }

    /// Move the commit index past every chosen value that now follows it.
    fn advance_commit(&mut self) {
        while self.chosen.contains_key(&self.commit) {
            self.commit += 1;
        }
    }

    /// Chosen values from `first` on, contiguous, at most `max` of them.
    /// Empty if `first` was compacted away (the storage layer's snapshot
    /// transfer serves such a replica).
    pub fn chosen_run(&self, first: Slot, max_slots: u64, max_bytes: usize) -> Vec<Value> {
        if first < self.compacted {
            return Vec::new();
        }
        let mut bytes = 0usize;
        let mut run = Vec::new();
        for slot in first..self.commit.min(first.saturating_add(max_slots)) {
            let value = &self.chosen[&slot];
            bytes = bytes.saturating_add(value.size_bytes());
            if bytes > max_bytes && !run.is_empty() {
                break;
            }
            run.push(value.clone());
        }
        run
    }

    /// Forget chosen values below `up_to` (already applied and, in a real
    /// deployment, covered by a snapshot). Bounded memory under endless writes.
    pub fn compact(&mut self, up_to: Slot) {
        let up_to = up_to.min(self.emitted);
        if up_to > self.compacted {
            self.chosen.drop_below(up_to);
            self.compacted = up_to;
        }
    }

    /// Newly committed slots not yet handed out, in slot order, appended
    /// to `out` (the core's recycled `Ready::committed`: no allocation per
    /// `ready()`).
    pub fn take_committed_into(&mut self, out: &mut Vec<(Slot, Value)>) {
        // Every slot in `[emitted, commit)` is held (the invariant on
        // `chosen`), so the run from `emitted` is exactly those slots.
        if self.emitted == self.commit {
            return; // most calls: nothing new
        }
        let start = out.len();
        out.extend(self.chosen.run(self.emitted, self.commit - self.emitted).map(|(&s, v)| (s, v.clone())));
        assert_eq!((out.len() - start) as u64, self.commit - self.emitted, "a committed slot has no value");
        self.emitted = self.commit;
    }

    /// Newly committed slots not yet handed out, in slot order.
    #[cfg(test)]
    fn take_committed(&mut self) -> Vec<(Slot, Value)> {
        let mut out = Vec::new();
        self.take_committed_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_index_advances_only_over_contiguous_slots() {
        let mut l = Learner::new(SlotMap::new(), 0, 0);
        assert!(l.learn(1, Value::Noop));
        assert_eq!(l.commit(), 0, "hole at 0");
        assert!(l.take_committed().is_empty());
        assert!(l.learn(0, Value::Noop));
        assert_eq!(l.commit(), 2);
        assert_eq!(l.take_committed().len(), 2);
        assert!(!l.learn(0, Value::Noop), "already known");
    }

    #[test]
    #[should_panic(expected = "two values chosen")]
    fn learning_a_conflicting_value_is_a_bug() {
        let mut l = Learner::new(SlotMap::new(), 0, 0);
        l.learn(0, Value::Noop);
        l.learn(0, Value::batch(vec![bytes::Bytes::from_static(b"x")]));
    }
}
