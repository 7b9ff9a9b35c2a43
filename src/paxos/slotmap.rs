//! A map keyed by log slot, for the core's per-slot state (accepted values,
//! chosen values, slots in flight, the durable state's log).
//!
//! Those maps are dense in practice: slots arrive in order, are looked up
//! near the end and pruned from the front. A `BTreeMap` paid a tree walk
//! (and a key comparison per level) for every lookup, a node allocation
//! every few inserts, and a whole new tree for every prune (`split_off`).
//! This is a sorted `VecDeque` of `(slot, value)`: a lookup in a dense
//! run is one subtraction (`slot - first slot`), checked, with a binary
//! search as the fallback; appending and pruning from the front cost
//! O(1) each. Holes are allowed (a chosen slot learned beyond a gap, a
//! peer's Accept far ahead): memory is proportional to the entries, never
//! to the span of slots, so no message can make it allocate a gap. An
//! insert in the middle moves the entries after it (rare: an out-of-order
//! slot; the map is bounded by the window or the snapshot interval).
//!
//! Iteration is in slot order and equality is entry-wise, as with the
//! `BTreeMap` it replaces, so everything built from it stays deterministic.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, Index, RangeBounds};

use super::ballot::Slot;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotMap<V> {
    /// Sorted by slot, no slot twice.
    entries: VecDeque<(Slot, V)>,
}

impl<V> Default for SlotMap<V> {
    fn default() -> Self {
        SlotMap { entries: VecDeque::new() }
    }
}

impl<V: fmt::Debug> fmt::Debug for SlotMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(s, v)| (s, v))).finish()
    }
}

impl<V> SlotMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `Ok(index)` of `slot`, or `Err(index)` where it would go. Inlined:
    /// the core calls it some thirty times per slot, and most calls end at
    /// the first test (a new slot past the end) or the dense guess.
    #[inline]
    fn position(&self, slot: Slot) -> Result<usize, usize> {
        // The last entry alone answers for a slot past the end (every
        // lookup of a slot not seen yet), before the first is read.
        let Some(&(last, _)) = self.entries.back() else {
            return Err(0);
        };
        if slot > last {
            return Err(self.entries.len());
        }
        let first = self.entries.front().expect("not empty").0;
        if slot < first {
            return Err(0);
        }
        // Dense run: the entry `slot - first` places along is the one.
        let guess = slot - first;
        if guess < self.entries.len() as u64 && self.entries[guess as usize].0 == slot {
            return Ok(guess as usize);
        }
        self.entries.binary_search_by_key(&slot, |&(s, _)| s)
    }

    /// The index of the first entry at or after `slot`.
    fn lower_bound(&self, slot: Slot) -> usize {
        match self.position(slot) {
            Ok(i) | Err(i) => i,
        }
    }

    fn index_range(&self, range: impl RangeBounds<Slot>) -> (usize, usize) {
        let start = match range.start_bound() {
            Bound::Included(&s) => self.lower_bound(s),
            Bound::Excluded(&s) => s.checked_add(1).map_or(self.entries.len(), |s| self.lower_bound(s)),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&s) => s.checked_add(1).map_or(self.entries.len(), |s| self.lower_bound(s)),
            Bound::Excluded(&s) => self.lower_bound(s),
            Bound::Unbounded => self.entries.len(),
        };
        (start, end.max(start))
    }

    #[inline]
    pub fn get(&self, slot: &Slot) -> Option<&V> {
        self.position(*slot).ok().map(|i| &self.entries[i].1)
    }

    #[inline]
    pub fn contains_key(&self, slot: &Slot) -> bool {
        self.position(*slot).is_ok()
    }

    /// Insert or replace; returns the value replaced. Always inlined
    /// (the core inserts a dozen times per slot): the common case is a
    /// `push_back`, and a call's prologue and returned `Option<V>` cost
    /// more than it does.
    #[inline(always)]
    pub fn insert(&mut self, slot: Slot, value: V) -> Option<V> {
        // Nearly every insert is a new slot past the end.
        if self.entries.back().is_none_or(|&(last, _)| slot > last) {
            self.entries.push_back((slot, value));
            return None;
        }
        self.insert_within(slot, value)
    }

    /// `insert` of a slot at or before the last one.
    #[inline(never)]
    fn insert_within(&mut self, slot: Slot, value: V) -> Option<V> {
        match self.position(slot) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) if i == self.entries.len() => {
                self.entries.push_back((slot, value));
                None
            }
            Err(i) => {
                self.entries.insert(i, (slot, value));
                None
            }
        }
    }

    pub fn remove(&mut self, slot: &Slot) -> Option<V> {
        self.remove_if(*slot, |_| true)
    }

    /// Remove and return `slot`'s value if `take` says so, with one lookup.
    #[inline]
    pub fn remove_if(&mut self, slot: Slot, take: impl FnOnce(&V) -> bool) -> Option<V> {
        let i = self.position(slot).ok().filter(|&i| take(&self.entries[i].1))?;
        let entry = if i == 0 { self.entries.pop_front() } else { self.entries.remove(i) };
        entry.map(|(_, v)| v)
    }

    /// Remove and return the first entry.
    pub fn pop_first(&mut self) -> Option<(Slot, V)> {
        self.entries.pop_front()
    }

    pub fn first_key_value(&self) -> Option<(&Slot, &V)> {
        self.entries.front().map(|(s, v)| (s, v))
    }

    pub fn last_key_value(&self) -> Option<(&Slot, &V)> {
        self.entries.back().map(|(s, v)| (s, v))
    }

    /// Take every entry below `slot` out, as a map of its own: what
    /// `drop_below` drops, handed back (the caller may free it later).
    pub fn take_below(&mut self, slot: Slot) -> SlotMap<V> {
        let at = self.lower_bound(slot);
        let rest = self.entries.split_off(at);
        SlotMap { entries: std::mem::replace(&mut self.entries, rest) }
    }

    /// Drop every entry below `slot` (what `map = map.split_off(&slot)`
    /// did, without building a new map).
    pub fn drop_below(&mut self, slot: Slot) {
        let keep_from = self.lower_bound(slot);
        if keep_from == self.entries.len() {
            self.entries.clear();
        } else if keep_from <= 4 {
            // After a commit this is one or a few entries, where
            // `drain(..keep_from)` costs several times more than a pop each.
            for _ in 0..keep_from {
                self.entries.pop_front();
            }
        } else {
            self.entries.drain(..keep_from);
        }
    }

    /// Take the entries of `first..first + len` off the front, if the map
    /// starts with exactly that run (no hole in it); else None, and nothing
    /// moves. One check for the run, where popping each entry checks each.
    pub fn take_front_run(&mut self, first: Slot, len: u64) -> Option<impl Iterator<Item = (Slot, V)> + '_> {
        let n = usize::try_from(len).ok().filter(|&n| n > 0 && n <= self.entries.len())?;
        let starts = self.entries.front().is_some_and(|&(slot, _)| slot == first);
        // Sorted and no slot twice: the run is whole iff its last entry is
        // `len - 1` slots past its first.
        let whole = starts && self.entries[n - 1].0 == first + (len - 1);
        // Popped one by one: a `VecDeque::drain` of the few entries a
        // commit moves costs several times more (see `drop_below`).
        whole.then(|| (0..n).map(|_| self.entries.pop_front().expect("the run is held")))
    }

    /// `insert` of `values` at consecutive slots from `first`. When the run
    /// starts past the last slot held (nearly every run: an Accept's new
    /// slots, a commit's), one check appends it all; otherwise each value
    /// goes through `insert`.
    pub fn insert_run(&mut self, first: Slot, values: impl IntoIterator<Item = V>) {
        let run = (first..).zip(values);
        if self.entries.back().is_none_or(|&(last, _)| first > last) {
            // Pushed one by one: `extend`'s set-up costs more than the
            // push of the one value most runs of a lightly loaded log hold.
            run.for_each(|entry| self.entries.push_back(entry));
        } else {
            run.for_each(|(slot, value)| _ = self.insert(slot, value));
        }
    }

    /// Split off and return the entries at or above `slot`.
    pub fn split_off(&mut self, slot: &Slot) -> SlotMap<V> {
        let at = self.lower_bound(*slot);
        SlotMap { entries: self.entries.split_off(at) }
    }

    pub fn range(&self, range: impl RangeBounds<Slot>) -> impl DoubleEndedIterator<Item = (&Slot, &V)> {
        let (start, end) = self.index_range(range);
        self.entries.range(start..end).map(|(s, v)| (s, v))
    }

    /// At most `len` entries from `first` on, which must be held (else
    /// nothing): the entries of `first..first + len` when that run has no
    /// hole, found with one lookup where `range` takes two.
    pub fn run(&self, first: Slot, len: u64) -> impl DoubleEndedIterator<Item = (&Slot, &V)> {
        let (start, end) = match self.position(first) {
            Ok(i) => (i, i.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)).min(self.entries.len())),
            Err(_) => (0, 0),
        };
        (start..end).map(move |i| {
            let (s, v) = &self.entries[i];
            (s, v)
        })
    }

    pub fn range_mut(&mut self, range: impl RangeBounds<Slot>) -> impl DoubleEndedIterator<Item = (&Slot, &mut V)> {
        let (start, end) = self.index_range(range);
        self.entries.range_mut(start..end).map(|(s, v)| (&*s, v))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Slot, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(s, v)| (s, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Slot> + ExactSizeIterator {
        self.entries.iter().map(|(s, _)| s)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<V> Index<&Slot> for SlotMap<V> {
    type Output = V;

    fn index(&self, slot: &Slot) -> &V {
        self.get(slot).unwrap_or_else(|| panic!("slot {slot} is not in the map"))
    }
}

/// Like `BTreeMap`'s: a later entry for the same slot replaces an earlier one.
impl<V> FromIterator<(Slot, V)> for SlotMap<V> {
    fn from_iter<I: IntoIterator<Item = (Slot, V)>>(iter: I) -> Self {
        let mut map = SlotMap::new();
        map.extend(iter);
        map
    }
}

impl<V> Extend<(Slot, V)> for SlotMap<V> {
    fn extend<I: IntoIterator<Item = (Slot, V)>>(&mut self, iter: I) {
        for (slot, value) in iter {
            self.insert(slot, value);
        }
    }
}

impl<V> IntoIterator for SlotMap<V> {
    type Item = (Slot, V);
    type IntoIter = std::collections::vec_deque::IntoIter<(Slot, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a SlotMap<V> {
    type Item = (&'a Slot, &'a V);
    type IntoIter =
        std::iter::Map<std::collections::vec_deque::Iter<'a, (Slot, V)>, fn(&'a (Slot, V)) -> (&'a Slot, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        fn pair<V>((s, v): &(Slot, V)) -> (&Slot, &V) {
            (s, v)
        }
        self.entries.iter().map(pair as fn(&'a (Slot, V)) -> (&'a Slot, &'a V))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::rng::Rng;

    /// Random operations on a `SlotMap` and a `BTreeMap` side by side:
    /// every answer and every iteration must match.
    #[test]
    fn behaves_like_a_btreemap() {
        for seed in 0..200u64 {
            let mut rng = Rng::new(seed);
            let mut ours: SlotMap<u64> = SlotMap::new();
            let mut model: BTreeMap<Slot, u64> = BTreeMap::new();
            let mut next = 0u64;
            for step in 0..400u64 {
                // Mostly dense and ascending, sometimes a hole, an old slot or a far one.
                let slot = match rng.below(10) {
                    0 => rng.below(next + 1),
                    1 => next + 1 + rng.below(50),
                    2 => next + 1_000_000 + rng.below(3),
                    _ => next,
                };
                match rng.below(8) {
                    0 => assert_eq!(ours.remove(&slot), model.remove(&slot), "seed {seed} step {step}: remove"),
                    1 => {
                        let kept = model.split_off(&slot);
                        if rng.chance(0.5) {
                            ours.drop_below(slot);
                        } else {
                            let taken: Vec<_> = ours.take_below(slot).iter().map(|(s, v)| (*s, *v)).collect();
                            let below: Vec<_> = model.iter().map(|(s, v)| (*s, *v)).collect();
                            assert_eq!(taken, below, "seed {seed} step {step}: take_below {slot}");
                        }
                        model = kept;
                    }
                    2 => {
                        let (lo, hi) = (slot.saturating_sub(rng.below(20)), slot + rng.below(20));
                        let a: Vec<_> = ours.range(lo..hi).map(|(s, v)| (*s, *v)).collect();
                        let b: Vec<_> = model.range(lo..hi).map(|(s, v)| (*s, *v)).collect();
                        assert_eq!(a, b, "seed {seed} step {step}: range {lo}..{hi}");
                        let a: Vec<_> = ours.range(lo..=hi).map(|(s, _)| *s).collect();
                        let b: Vec<_> = model.range(lo..=hi).map(|(s, _)| *s).collect();
                        assert_eq!(a, b, "seed {seed} step {step}: range {lo}..={hi}");
                    }
                    3 => {
                        let mut high = ours.split_off(&slot);
                        let model_high = model.split_off(&slot);
                        assert!(high.iter().map(|(s, v)| (*s, *v)).eq(model_high.iter().map(|(s, v)| (*s, *v))));
                        // Put it back together.
                        ours.extend(std::mem::take(&mut high));
                        model.extend(model_high);
                    }
                    _ => {
                        assert_eq!(
                            ours.insert(slot, step),
                            model.insert(slot, step),
                            "seed {seed} step {step}: insert"
                        );
                        if slot == next {
                            next += 1;
                        }
                    }
                }
                assert_eq!(ours.len(), model.len(), "seed {seed} step {step}: len");
                assert_eq!(ours.get(&slot), model.get(&slot), "seed {seed} step {step}: get");
                assert_eq!(ours.contains_key(&(slot + 1)), model.contains_key(&(slot + 1)));
                assert_eq!(ours.first_key_value(), model.first_key_value());
                assert_eq!(ours.last_key_value(), model.last_key_value());
            }
            assert!(ours.iter().eq(model.iter()), "seed {seed}: final contents");
            let rebuilt: SlotMap<u64> = model.clone().into_iter().collect();
            assert_eq!(rebuilt, ours, "seed {seed}: equality is entry-wise");
        }
    }

    #[test]
    fn a_far_slot_costs_one_entry_not_a_gap() {
        let mut map = SlotMap::new();
        map.insert(0, ());
        map.insert(u64::MAX - 1, ());
        map.insert(5, ());
        assert_eq!(map.len(), 3);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![0, 5, u64::MAX - 1]);
        assert_eq!(map.range(1..).count(), 2);
        assert_eq!(map.range(..=u64::MAX).count(), 3);
        map.drop_below(6);
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn a_front_run_is_taken_only_when_whole() {
        let mut map: SlotMap<u64> = [(3, 30), (4, 40), (6, 60), (7, 70)].into_iter().collect();
        assert!(map.take_front_run(4, 1).is_none(), "not the first slot");
        assert!(map.take_front_run(3, 3).is_none(), "a hole at 5");
        assert!(map.take_front_run(3, 5).is_none(), "longer than the map");
        assert!(map.take_front_run(3, 0).is_none(), "empty");
        assert_eq!(map.len(), 4, "a refused run moves nothing");
        assert_eq!(map.take_front_run(3, 2).unwrap().collect::<Vec<_>>(), vec![(3, 30), (4, 40)]);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![6, 7]);
        let mut other = SlotMap::new();
        other.insert(1, 10);
        other.insert_run(6, map.take_front_run(6, 2).unwrap().map(|(_, v)| v));
        assert_eq!(other.iter().map(|(&s, &v)| (s, v)).collect::<Vec<_>>(), vec![(1, 10), (6, 60), (7, 70)]);
        assert!(map.is_empty());
        // A run that does not start past the last slot goes through insert.
        other.insert_run(0, [0, 11]);
        assert_eq!(other.iter().map(|(&s, &v)| (s, v)).collect::<Vec<_>>(), vec![(0, 0), (1, 11), (6, 60), (7, 70)]);
        assert_eq!(other.remove_if(6, |&v| v == 61), None, "kept: take said no");
        assert_eq!(other.remove_if(6, |&v| v == 60), Some(60));
    }
}
