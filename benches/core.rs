//! The core's own cost: an in-memory 3-replica cluster (instant network,
//! instant persistence, no I/O) committing slots of 1, 64 and 1024
//! commands. Criterion reports time per slot; throughput is in commands.
//!
//! Run: `cargo bench --bench core`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxoskv::paxos::Config;
use paxoskv::sim::instant::InstantCluster;

fn commit_slots(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_commit_3_replicas");
    for &batch in &[1usize, 64, 1024] {
        let mut cluster = InstantCluster::new(3, 1, |members| {
            let mut config = Config::new(members);
            config.batch_count_max = batch;
            config.window_slots = 1;
            config
        });
        cluster.record = false;
        let leader = cluster.elect(5_000).expect("a leader");
        // 16-byte commands, shared buffers: the core never copies payloads.
        let command = Bytes::from_static(b"SET key:0001 val");
        let commands: Vec<Bytes> = vec![command; batch];
        let mut slots = 0u64;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("commands_per_slot", batch), &batch, |b, _| {
            b.iter(|| {
                cluster.propose(leader, commands.clone());
                slots += 1;
                if slots.is_multiple_of(1024) {
                    for id in 1..=3 {
                        let commit = cluster.replica(id).commit_index();
                        cluster.replica(id).compact(commit, Bytes::new());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commit_slots);
criterion_main!(benches);
