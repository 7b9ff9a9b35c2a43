//! The syncs in flight (`Wal::sync`): at most `WRITES_IN_FLIGHT_MAX`,
//! durable in order.

use std::collections::VecDeque;

use crate::storage::write::WRITES_IN_FLIGHT_MAX;

/// A sync whose write is in flight.
struct InFlight {
    /// The `appended` count it makes durable.
    target: u64,
    done: bool,
    /// Its work is one run of records, written with no zeros beside it: a
    /// later sync may write beside it (`Inner::may_write_beside`).
    lone: bool,
}

/// The syncs in flight, oldest first. A sync's target becomes `synced`
/// only once it and every sync before it are done: the write after one in
/// flight can complete first, and recovery would truncate it with the
/// earlier one if that one was torn (`write.rs`).
#[derive(Default)]
pub(super) struct InFlightSyncs(VecDeque<InFlight>);

impl InFlightSyncs {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does a sync in flight make `seq` durable?
    pub(super) fn covers(&self, seq: u64) -> bool {
        self.0.back().is_some_and(|sync| sync.target >= seq)
    }

    /// May one more go out beside these: fewer than `WRITES_IN_FLIGHT_MAX`,
    /// each a lone write of records.
    pub(super) fn room_beside(&self) -> bool {
        self.0.len() < WRITES_IN_FLIGHT_MAX as usize && self.0.iter().all(|sync| sync.lone)
    }

    pub(super) fn start(&mut self, target: u64) {
        debug_assert!(self.0.back().is_none_or(|sync| sync.target < target), "targets rise");
        self.0.push_back(InFlight { target, done: false, lone: false });
    }

    /// The sync of `target` is done: what is now durable, if that moved.
    pub(super) fn complete(&mut self, target: u64) -> Option<u64> {
        if let Some(sync) = self.0.iter_mut().find(|sync| sync.target == target) {
            sync.done = true;
        }
        let mut synced = None;
        while self.0.front().is_some_and(|sync| sync.done) {
            synced = self.0.pop_front().map(|sync| sync.target);
        }
        synced
    }

    pub(super) fn mark_lone(&mut self, target: u64) {
        if let Some(sync) = self.0.iter_mut().find(|sync| sync.target == target) {
            sync.lone = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlightSyncs;

    /// The write issued beside another completes first: nothing is
    /// reported durable until the earlier one completes too, then both are.
    #[test]
    fn a_sync_is_durable_only_once_every_sync_before_it_is() {
        let mut syncs = InFlightSyncs::default();
        syncs.start(3);
        syncs.start(7);
        assert_eq!(syncs.complete(7), None, "the write of 3 is still in flight");
        assert_eq!(syncs.complete(3), Some(7));
        syncs.start(9);
        syncs.start(12);
        assert_eq!(syncs.complete(9), Some(9));
        assert_eq!(syncs.complete(12), Some(12));
        assert!(syncs.0.is_empty());
    }
}
