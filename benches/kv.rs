//! The store's own cost per command: what every replica pays to apply a
//! committed SET (decode, session bookkeeping, the keyspace), and what the
//! leader pays to serve a GET, over a keyspace of 100,000 keys with
//! 100-byte values (redis-benchmark's `-r 100000 -d 100`). Commands come
//! from 16 pipelining client sessions, 16 unanswered each, as the server's
//! connections number them. Criterion reports time per batch of 256;
//! throughput is in commands.
//!
//! Run: `cargo bench --bench kv`. With `KV_BENCH_COUNT=1` in the
//! environment it only fills the keyspace and applies 64 more batches in
//! `apply_counted`, then exits: for an instruction count of that function
//! under `valgrind --tool=callgrind --toggle-collect=...apply_counted`
//! (`benches/record-kv.sh`), which does not move with the machine's load.

use bytes::Bytes;
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use paxoskv::kv::{session_id, Command, KvStore, Op, SetCondition, SetTtl};

const KEYS: u64 = 100_000;
const BATCH: usize = 256;
const BATCHES: usize = 512;
const SESSIONS: u64 = 16;
const PIPELINE: u64 = 16;

/// xorshift64: a fixed sequence of keys.
struct Keys(u64);

impl Keys {
    fn next(&mut self) -> Bytes {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Bytes::from(format!("key:{:012}", self.0 % KEYS))
    }
}

fn set(key: Bytes) -> Op {
    Op::Set {
        key,
        value: Bytes::from(vec![b'x'; 100]),
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        get: false,
    }
}

/// A batch of `BATCH` encoded SETs, the sessions taking turns and their
/// numbers running on from the previous batch.
fn set_batch(keys: &mut Keys, seqs: &mut [u64]) -> Vec<Bytes> {
    (0..BATCH)
        .map(|i| {
            let s = i as u64 % SESSIONS;
            let seq = &mut seqs[s as usize];
            *seq += 1;
            let command = Command {
                session: session_id(1, s + 1),
                seq: *seq,
                ack: seq.saturating_sub(PIPELINE).max(1),
                prev: *seq - 1,
                op: set(keys.next()),
            };
            command.encode()
        })
        .collect()
}

/// A store with every key set, as a benchmark's SET phase leaves it.
fn filled(keys: &mut Keys, seqs: &mut [u64]) -> KvStore {
    let mut store = KvStore::new(1024);
    for _ in 0..KEYS as usize * 4 / BATCH {
        for command in &set_batch(keys, seqs) {
            store.apply_bytes(command);
        }
    }
    store
}

/// Applies `batches` (the part whose instructions are counted).
#[inline(never)]
fn apply_counted(store: &mut KvStore, batches: &[Vec<Bytes>]) {
    for batch in batches {
        for command in batch {
            criterion::black_box(store.apply_bytes(command));
        }
    }
}

/// Batches applied under the instruction count.
const COUNTED_BATCHES: usize = 64;

fn store(c: &mut Criterion) {
    let mut keys = Keys(0x9e37_79b9_7f4a_7c15);
    let mut seqs = vec![0u64; SESSIONS as usize];
    let mut store = filled(&mut keys, &mut seqs);
    let mut group = c.benchmark_group("kv");
    group.throughput(Throughput::Elements(BATCH as u64));
    // Every batch is new, made outside the timed part: a retry of a number
    // already applied would replay its cached reply instead of running.
    group.bench_function("apply_set_256", |b| {
        b.iter_batched(
            || set_batch(&mut keys, &mut seqs),
            |batch| {
                for command in &batch {
                    store.apply_bytes(command);
                }
                batch
            },
            BatchSize::SmallInput,
        )
    });
    // The same, with the batch's keys looked up in a row first, as a
    // node applies a committed batch (`KvStore::warm`).
    group.bench_function("apply_set_256_warmed", |b| {
        b.iter_batched(
            || set_batch(&mut keys, &mut seqs),
            |batch| {
                store.warm(&batch);
                for command in &batch {
                    store.apply_bytes(command);
                }
                batch
            },
            BatchSize::SmallInput,
        )
    });
    let gets: Vec<Vec<Op>> = (0..BATCHES).map(|_| (0..BATCH).map(|_| Op::Get { key: keys.next() }).collect()).collect();
    let mut round = 0;
    group.bench_function("read_get_256", |b| {
        b.iter(|| {
            round = (round + 1) % BATCHES;
            for op in &gets[round] {
                criterion::black_box(store.read(op, store.log_time()));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, store);

fn main() {
    if std::env::var_os("KV_BENCH_COUNT").is_some() {
        let mut keys = Keys(0x9e37_79b9_7f4a_7c15);
        let mut seqs = vec![0u64; SESSIONS as usize];
        let mut store = filled(&mut keys, &mut seqs);
        let batches: Vec<Vec<Bytes>> = (0..COUNTED_BATCHES).map(|_| set_batch(&mut keys, &mut seqs)).collect();
        apply_counted(&mut store, &batches);
        println!("applied {} SETs in apply_counted", COUNTED_BATCHES * BATCH);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
