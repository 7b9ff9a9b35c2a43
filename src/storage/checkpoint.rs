//! The records that carry a replica's durable state forward past a
//! snapshot: written at the start of a fresh segment so that every older
//! segment can be deleted without losing a promise or an accepted value the
//! snapshot does not cover.

use super::record::{encode_ops, encode_record, Record};
use crate::paxos::{Ballot, DurableState, PersistOp, Slot, Value};

/// Append to `out` a snapshot marker (if `state` has a snapshot) and the ops
/// that rebuild `state` on top of that snapshot: the promise, the accepted
/// values in runs, the chosen values, and the commit index.
pub fn encode_checkpoint(state: &DurableState, snapshot_id: u64, out: &mut Vec<u8>) {
    if let Some(image) = &state.snapshot {
        encode_record(&Record::SnapshotMarker { slot: image.slot, snapshot_id }, out);
    }
    let mut ops = vec![PersistOp::Promise { ballot: state.promised }];
    let mut run: Option<(Ballot, Slot, Vec<Value>)> = None;
    for (&slot, (ballot, value)) in &state.accepted {
        match &mut run {
            Some((b, first, values)) if *b == *ballot && *first + values.len() as u64 == slot => {
                values.push(value.clone())
            }
            _ => {
                if let Some((ballot, first_slot, values)) = run.take() {
                    ops.push(PersistOp::Accept { ballot, first_slot, values });
                }
                run = Some((*ballot, slot, vec![value.clone()]));
            }
        }
    }
    if let Some((ballot, first_slot, values)) = run {
        ops.push(PersistOp::Accept { ballot, first_slot, values });
    }
    let mut chosen: Option<(Slot, Vec<Value>)> = None;
    for (&slot, value) in &state.chosen {
        match &mut chosen {
            Some((first, values)) if *first + values.len() as u64 == slot => values.push(value.clone()),
            _ => {
                if let Some((first_slot, values)) = chosen.take() {
                    ops.push(PersistOp::Chosen { first_slot, values });
                }
                chosen = Some((slot, vec![value.clone()]));
            }
        }
    }
    if let Some((first_slot, values)) = chosen {
        ops.push(PersistOp::Chosen { first_slot, values });
    }
    if state.recovering {
        ops.push(PersistOp::RecoveryBegun);
    }
    if state.horizon > 0 {
        ops.push(PersistOp::Horizon { ms: state.horizon });
    }
    ops.push(PersistOp::Commit { commit: state.commit });
    encode_ops(&ops, out);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::SnapshotImage;
    use crate::storage::{replay, scan_frames, ScanEnd};

    #[test]
    fn a_checkpoint_replays_to_the_same_state() {
        let v = |t: &'static str| Value::batch(vec![Bytes::from_static(t.as_bytes())]);
        let b = Ballot::new(3, 2);
        let mut state = DurableState::default();
        for op in [
            PersistOp::Promise { ballot: Ballot::new(4, 1) },
            PersistOp::Accept { ballot: b, first_slot: 0, values: vec![v("a"), v("b"), v("c")] },
            PersistOp::Commit { commit: 2 },
            PersistOp::Snapshot(SnapshotImage { slot: 1, data: Bytes::from_static(b"kv") }),
            PersistOp::Chosen { first_slot: 5, values: vec![v("x")] },
            PersistOp::Accept { ballot: Ballot::new(4, 1), first_slot: 7, values: vec![v("y")] },
        ] {
            state.apply(&op);
        }
        let mut bytes = Vec::new();
        encode_checkpoint(&state, 1, &mut bytes);
        let scan = scan_frames(&bytes);
        assert_eq!(scan.end, ScanEnd::Clean);
        let mut rebuilt = DurableState::default();
        rebuilt.apply(&PersistOp::Snapshot(state.snapshot.clone().unwrap()));
        replay(&mut rebuilt, &scan.records).unwrap();
        assert_eq!(rebuilt, state);
    }
}
