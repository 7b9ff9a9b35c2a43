//! Every harness commits exactly what was proposed on all three replicas,
//! for every batch shape, across log trims.

use core_compare::{check, measure, Library, Shape, TRIM_EVERY_ENTRIES};

#[test]
fn every_library_applies_the_proposed_sequence_on_every_replica() {
    for library in Library::ALL {
        for commands_per_entry in [1, 64, 1024] {
            for entries_per_round in [1, 16] {
                let shape = Shape { commands_per_entry, entries_per_round };
                let mut group = library.build(shape);
                // Past two trims, so a trim that loses or replays entries shows.
                let rounds = 2 * TRIM_EVERY_ENTRIES / entries_per_round as u64 + 3;
                let sample = measure::timed(group.as_mut(), rounds)
                    .unwrap_or_else(|e| panic!("{} {shape:?}: {e}", library.name()));
                assert_eq!(sample.commands, rounds * shape.commands_per_round(), "{} {shape:?}", library.name());
                check(group.as_ref()).unwrap();
            }
        }
    }
}

/// paxoskv's storage really holds what its replicas committed: the
/// in-memory `DurableState` of every replica reaches the commit index, so
/// paxoskv does its share of the storage work the others do.
#[test]
fn paxoskv_stores_what_it_commits() {
    use core_compare::paxoskv_group::{PaxoskvGroup, Storage};
    let shape = Shape { commands_per_entry: 64, entries_per_round: 16 };
    let mut group = PaxoskvGroup::new(shape, Storage::Memory);
    let rounds = TRIM_EVERY_ENTRIES / 16 + 5;
    measure::timed(&mut group, rounds).unwrap();
    for index in 0..3 {
        let commit = group.commit_index(index);
        // The election's window of no-ops, then one slot per entry.
        assert_eq!(commit, 64 + rounds * 16, "replica {index}");
        let durable = group.durable(index);
        assert_eq!(durable.commit, commit, "replica {index}");
        assert!(durable.snapshot.is_some(), "replica {index} stored a trim's snapshot");
        assert!(durable.chosen.len() as u64 <= commit - durable.log_start(), "replica {index}");
    }
    let mut dropped = PaxoskvGroup::new(shape, Storage::Dropped);
    measure::timed(&mut dropped, 4).unwrap();
    assert_eq!(*dropped.durable(0), Default::default());
}
