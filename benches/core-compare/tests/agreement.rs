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
