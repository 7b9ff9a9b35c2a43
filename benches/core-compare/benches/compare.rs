//! Criterion: paxoskv's core, OmniPaxos and raft-rs on the same in-memory
//! 3-replica workload (see the crate docs for every definition). One
//! criterion iteration is one round (`entries_per_round` entries of
//! `commands_per_entry` commands); each sample ends by settling every
//! replica and checking that all three applied exactly what was proposed.
//! Throughput is in commands, so criterion's `thrpt` is commands/s and
//! `time / (commands per round)` is ns per committed command.
//!
//! Run: `cargo bench` in `benches/core-compare` (or `benches/core-compare.sh`,
//! which also runs the binary for the interleaved samples and allocation
//! counts, and writes the result bundle).

use std::time::{Duration, Instant};

use core_compare::{alloc::CountingAllocator, check, Library, Shape};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn compare(c: &mut Criterion) {
    for entries_per_round in [1usize, 16] {
        for commands_per_entry in [1usize, 64, 1024] {
            let shape = Shape { commands_per_entry, entries_per_round };
            let mut group = c.benchmark_group(format!("entries_per_round_{entries_per_round}"));
            group.throughput(Throughput::Elements(shape.commands_per_round()));
            for library in Library::ALL {
                let mut cluster = library.build(shape);
                group.bench_function(BenchmarkId::new(library.name(), commands_per_entry), |b| {
                    b.iter_custom(|rounds| {
                        let start = Instant::now();
                        for _ in 0..rounds {
                            cluster.round();
                        }
                        cluster.settle();
                        let elapsed = start.elapsed();
                        check(cluster.as_ref()).expect("every replica applied what was proposed");
                        elapsed
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    // 4 libraries x 6 shapes: 2 s of measurement each keeps a run near 2 minutes.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = compare
}
criterion_main!(benches);
