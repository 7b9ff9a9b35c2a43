//! The glommio DMA write-ahead log on real files (issue 3): round trips,
//! group commit, segment rolling, torn tails, mid-log corruption, a crash at
//! every device operation of a scripted workload, snapshots and compaction,
//! and the `none` durability mode.
//!
//! Every test works in a fresh directory under `target/wal-tests/` (O_DIRECT
//! needs a real filesystem, which `/tmp` may not be), removed when the test
//! passes and kept for inspection when it fails. Each test body runs inside a
//! glommio executor. Randomized workloads come from a seeded [`Rng`]; every
//! assertion about them names the seed.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use paxoskv::paxos::{Ballot, DurableState, PersistOp, Slot, SnapshotImage, Value};
use paxoskv::rng::Rng;
use paxoskv::storage::{
    scan_segment, segment_epoch, Durability, RecoveryReport, Scan, ScanEnd, Wal, WalError, WalOptions, WalStats,
    WRITE_GAP_ALIGN_BYTES,
};

/// Scan a segment file's bytes (its name gives its writes' epoch).
fn scan_file(path: &Path, bytes: &[u8]) -> Scan {
    let name = path.file_name().unwrap().to_string_lossy();
    scan_segment(bytes, segment_epoch(&name).expect("a segment's name"))
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A fresh directory `target/wal-tests/<name>-<pid>/`, removed on drop when
/// the test passed and kept (path printed) when it panicked.
struct TestDir {
    path: PathBuf,
}

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("wal-tests")
            .join(format!("{name}-{}", std::process::id()));
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing stale {}: {e}", path.display()),
        }
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TestDir { path }
    }

    /// A path inside the test directory (created by `Wal::open` or the caller).
    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: keeping {} for inspection", self.path.display());
        } else {
            std::fs::remove_dir_all(&self.path).unwrap_or_else(|e| panic!("removing {}: {e}", self.path.display()));
        }
    }
}

/// Runs `body` on a fresh glommio executor and waits for it; a panic inside
/// fails the test.
fn run_local<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).spawn(body).unwrap().join().unwrap();
}

fn options(dir: &Path, segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes, ..WalOptions::new(dir) }
}

/// Segments large enough that a test's whole workload fits in one.
const SEGMENT_BYTES_LARGE: u64 = 1 << 20;

async fn open(options: WalOptions) -> (Wal, DurableState, RecoveryReport) {
    let dir = options.dir.clone();
    Wal::open(options).await.unwrap_or_else(|e| panic!("opening the WAL in {}: {e}", dir.display()))
}

/// Appends and syncs each batch in turn, as a shell that waits for every
/// `Ready`'s persistence would.
async fn write_batches(wal: &Wal, batches: &[Vec<PersistOp>]) {
    for (index, batch) in batches.iter().enumerate() {
        let seq = wal.append(batch);
        wal.sync(seq).await.unwrap_or_else(|e| panic!("sync of batch {index}: {e}"));
    }
}

fn apply_all<'a>(ops: impl IntoIterator<Item = &'a PersistOp>) -> DurableState {
    let mut state = DurableState::default();
    for op in ops {
        state.apply(op);
    }
    state
}

fn flatten(batches: &[Vec<PersistOp>]) -> Vec<PersistOp> {
    batches.iter().flatten().cloned().collect()
}

/// Files in `dir` named `{prefix}*{suffix}`, sorted by name (= by index).
fn files(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    found.sort();
    found
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    files(dir, "wal-", ".log")
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files(dir, "snapshot-", ".snap")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Copies every file of `from` into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

fn total_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().metadata().unwrap().len()).sum()
}

fn value(text: &str) -> Value {
    Value::batch(vec![Bytes::copy_from_slice(text.as_bytes())])
}

/// Ops that are valid on top of any recovered state (a ballot and slots far
/// above anything a workload reaches): what a test appends after recovery to
/// check that the log keeps working.
fn later_ops(tag: u64) -> Vec<PersistOp> {
    vec![
        PersistOp::Promise { ballot: Ballot::new(1_000 + tag, 7) },
        PersistOp::Accept {
            ballot: Ballot::new(1_000 + tag, 7),
            first_slot: 1_000_000 + 10 * tag,
            values: vec![value(&format!("after recovery {tag}")), Value::Noop],
        },
        PersistOp::Chosen { first_slot: 2_000_000 + tag, values: vec![value("learned")] },
    ]
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// Generates batches of ops a Multi-Paxos acceptor could emit: promises of
/// rising ballots, accepted runs of client batches and no-ops, chosen values
/// learned ahead of the commit point, and commits that only cover slots that
/// have a value. Tracks the state the ops amount to.
struct Workload {
    rng: Rng,
    state: DurableState,
    ballot: Ballot,
    next_slot: Slot,
    command_bytes_max: u64,
}

impl Workload {
    fn new(seed: u64) -> Workload {
        Workload {
            rng: Rng::new(seed),
            state: DurableState::default(),
            ballot: Ballot::new(1, 1),
            next_slot: 0,
            command_bytes_max: 48,
        }
    }

    fn value(&mut self) -> Value {
        if self.rng.below(4) == 0 {
            return Value::Noop;
        }
        let commands = (0..self.rng.range_inclusive(1, 4))
            .map(|_| {
                let len = self.rng.below(self.command_bytes_max + 1) as usize;
                Bytes::from((0..len).map(|_| self.rng.next_u64() as u8).collect::<Vec<u8>>())
            })
            .collect();
        Value::batch(commands)
    }

    fn values(&mut self, count: u64) -> Vec<Value> {
        (0..count).map(|_| self.value()).collect()
    }

    /// The highest commit point the state allows: every slot below it has a
    /// chosen or accepted value.
    fn commit_max(&self) -> Slot {
        let mut commit = self.state.commit;
        while self.state.chosen.contains_key(&commit) || self.state.accepted.contains_key(&commit) {
            commit += 1;
        }
        commit
    }

    fn push(&mut self, op: PersistOp, batch: &mut Vec<PersistOp>) {
        self.state.apply(&op);
        batch.push(op);
    }

    fn promise(&mut self) -> PersistOp {
        self.ballot = Ballot::new(self.ballot.round + 1, self.rng.range_inclusive(1, 3) as u32);
        PersistOp::Promise { ballot: self.ballot }
    }

    fn accept(&mut self) -> PersistOp {
        let count = self.rng.range_inclusive(1, 4);
        // A snapshot may have moved the commit point past every accepted slot.
        let first_slot = self.next_slot.max(self.state.commit);
        self.next_slot = first_slot + count;
        PersistOp::Accept { ballot: self.ballot, first_slot, values: self.values(count) }
    }

    fn op(&mut self) -> PersistOp {
        match self.rng.below(10) {
            0 => self.promise(),
            1..=4 => self.accept(),
            5 | 6 => {
                // A value learned from elsewhere, possibly beyond a gap.
                let first_slot =
                    self.state.commit + self.rng.below(self.next_slot.saturating_sub(self.state.commit) + 3);
                let count = self.rng.range_inclusive(1, 3);
                PersistOp::Chosen { first_slot, values: self.values(count) }
            }
            _ => {
                let commit_max = self.commit_max();
                if commit_max == self.state.commit {
                    return self.accept();
                }
                PersistOp::Commit { commit: self.rng.range_inclusive(self.state.commit + 1, commit_max) }
            }
        }
    }

    /// One `Ready`'s worth: 1 to 4 ops.
    fn batch(&mut self) -> Vec<PersistOp> {
        let mut batch = Vec::new();
        for _ in 0..self.rng.range_inclusive(1, 4) {
            let op = self.op();
            self.push(op, &mut batch);
        }
        batch
    }

    fn batches(&mut self, count: usize) -> Vec<Vec<PersistOp>> {
        (0..count).map(|_| self.batch()).collect()
    }

    /// A snapshot at the commit point, `data_bytes` of opaque KV state.
    fn snapshot(&mut self, data_bytes: usize) -> PersistOp {
        let slot = self.state.commit;
        let mut data = format!("kv state below slot {slot};").into_bytes();
        data.resize(data_bytes.max(data.len()), b'.');
        PersistOp::Snapshot(SnapshotImage { slot, data: Bytes::from(data) })
    }
}

// ---------------------------------------------------------------------------
// 1. Round trip
// ---------------------------------------------------------------------------

/// A hand-written transcript, then generated batches: each batch appended
/// and synced, the WAL dropped and reopened. Recovery must rebuild exactly
/// the state the ops amount to, with no torn tail.
#[test]
fn round_trip_recovers_exactly_the_applied_ops() {
    const SEED: u64 = 0x5EED_0001;
    let test = TestDir::new("round_trip");
    let dir = test.join("wal");
    run_local(move || async move {
        let b1 = Ballot::new(1, 1);
        let b2 = Ballot::new(2, 3);
        let mut batches = vec![
            vec![PersistOp::Promise { ballot: b1 }],
            vec![PersistOp::Accept {
                ballot: b1,
                first_slot: 0,
                values: vec![
                    Value::batch(vec![Bytes::from_static(b"set a 1"), Bytes::from_static(b"set b 2")]),
                    Value::Noop,
                    Value::batch(vec![Bytes::new()]),
                ],
            }],
            vec![PersistOp::Commit { commit: 2 }],
            vec![
                PersistOp::Chosen { first_slot: 5, values: vec![value("learned ahead")] },
                PersistOp::Promise { ballot: b2 },
            ],
            vec![
                PersistOp::Accept { ballot: b2, first_slot: 2, values: vec![value("re-proposed"), Value::Noop] },
                PersistOp::Chosen { first_slot: 4, values: vec![Value::Noop] },
                PersistOp::Commit { commit: 6 },
            ],
            vec![PersistOp::Accept { ballot: b2, first_slot: 6, values: vec![value("not yet chosen")] }],
        ];
        let mut workload = Workload::new(SEED);
        workload.state = apply_all(&flatten(&batches));
        workload.ballot = b2;
        workload.next_slot = 7;
        batches.extend(workload.batches(40));
        let expected = apply_all(&flatten(&batches));
        assert!(expected.commit > 10 && !expected.accepted.is_empty(), "seed {SEED:#x}: workload too weak");

        let (wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, DurableState::default());
        assert_eq!(report.torn_tail, None);
        write_batches(&wal, &batches).await;
        let stats = wal.stats();
        assert_eq!(stats.records, flatten(&batches).len() as u64);
        assert_eq!(stats.fsyncs, batches.len() as u64, "one fsync per synced batch when nothing overlaps");
        drop(wal);

        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, expected, "seed {SEED:#x}");
        assert_eq!(report.torn_tail, None);
        assert_eq!(report.records, flatten(&batches).len());
        assert_eq!(report.segments, 1);
        assert_eq!(report.snapshot_slot, None);
    });
}

/// With `Durability::Sync` the segment is open O_DSYNC: each record write
/// is durable when it completes, without a separate fdatasync (the zeros
/// written ahead of the records go through it too).
#[test]
fn sync_mode_writes_segments_through_an_o_dsync_descriptor() {
    let test = TestDir::new("o_dsync");
    let dir = test.join("wal");
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        write_batches(&wal, &Workload::new(0x5EED_0020).batches(3)).await;
        let segment = segments(&dir).pop().expect("a segment");
        let mut open_flags = Vec::new();
        for fd in std::fs::read_dir("/proc/self/fd").unwrap() {
            let fd = fd.unwrap();
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(segment.as_path()) {
                continue;
            }
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy()));
            let flags = info.unwrap().lines().find_map(|l| l.strip_prefix("flags:").map(|f| f.trim().to_string()));
            open_flags.push(i64::from_str_radix(&flags.unwrap(), 8).unwrap());
        }
        assert_eq!(open_flags.len(), 1, "one descriptor on {}: {open_flags:?}", segment.display());
        assert_ne!(open_flags[0] & libc::O_DSYNC as i64, 0, "flags {:o}", open_flags[0]);
        assert_ne!(open_flags[0] & libc::O_DIRECT as i64, 0, "flags {:o}", open_flags[0]);
        drop(wal);
    });
}

// ---------------------------------------------------------------------------
// 2. Group commit
// ---------------------------------------------------------------------------

/// 64 concurrent appenders, each waiting for its own record: the appends
/// made while one fsync runs share the next one, so far fewer than 64
/// fsyncs cover all 64 records, and every waiter is released with Ok.
#[test]
fn group_commit_shares_fsyncs_between_concurrent_appenders() {
    const APPENDERS: u64 = 64;
    let test = TestDir::new("group_commit");
    let dir = test.join("wal");
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        let wal = Rc::new(wal);
        let op = |i: u64| PersistOp::Accept {
            ballot: Ballot::new(1, 1),
            first_slot: i,
            values: vec![value(&format!("appender {i}"))],
        };
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|i| {
                let wal = wal.clone();
                glommio::spawn_local(async move {
                    let seq = wal.append(&[op(i)]);
                    wal.sync(seq).await.map(|()| seq)
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let seq = task.await.unwrap_or_else(|e| panic!("appender {i}: sync failed: {e}"));
            seqs.push(seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=APPENDERS).collect::<Vec<_>>(), "each append gets its own sequence number");
        let stats = wal.stats();
        assert_eq!(stats.records, APPENDERS);
        assert!(stats.fsyncs >= 1, "{stats:?}");
        assert!(stats.fsyncs < APPENDERS, "no group commit: {stats:?}");
        // A sync covers every append made before it started, so at most the
        // first appender syncs alone and the rest share a handful of fsyncs.
        assert!(stats.fsyncs * 4 <= APPENDERS, "too little sharing: {stats:?}");
        drop(wal);

        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(report.torn_tail, None);
        let slots: Vec<Slot> = state.accepted.keys().copied().collect();
        assert_eq!(slots, (0..APPENDERS).collect::<Vec<_>>());
        for i in 0..APPENDERS {
            assert_eq!(state.accepted[&i].1, value(&format!("appender {i}")));
        }
    });
}

/// Issue 11: records appended while a group commit's write is on the disk
/// go out at once in a write beside it, after a zero gap, and both
/// recover. If the earlier of the two is lost while the later one landed,
/// recovery truncates both and zeroes the later one: records written after
/// recovery are never followed by it on the next start.
#[test]
fn a_write_beside_one_in_flight_recovers_and_a_lost_earlier_one_takes_it_along() {
    let test = TestDir::new("write_beside");
    let dir = test.join("wal");
    run_local(move || async move {
        // No zeros ahead: a write may go out beside a lone record write only.
        let options = || WalOptions { zero_ahead: false, ..options(&dir, SEGMENT_BYTES_LARGE) };
        let op = |slot: Slot, text: &str| PersistOp::Accept {
            ballot: Ballot::new(1, 1),
            first_slot: slot,
            values: vec![value(&format!("slot {slot} {text}"))],
        };
        let (wal, _, _) = open(options()).await;
        write_batches(&wal, &[vec![op(0, "first")]]).await;
        let first = wal.append(&[op(1, "first")]);
        {
            let mut first_sync = std::pin::pin!(wal.sync(first));
            assert!(futures_lite::future::poll_once(first_sync.as_mut()).await.is_none(), "its write is in flight");
            let second = wal.append(&[op(2, "first")]);
            let (first_done, second_done) = futures_lite::future::zip(first_sync, wal.sync(second)).await;
            first_done.and(second_done).unwrap_or_else(|e| panic!("sync: {e}"));
        }
        drop(wal);

        let path = segments(&dir)[0].clone();
        let bytes = read(&path);
        let writes = scan_file(&path, &bytes).write_offsets;
        assert_eq!(writes.len(), 3, "one write per sync: {writes:?}");
        // Beside: after a gap, at a block boundary (not right after write 2).
        let second_end = scan_file(&path, &bytes[..writes[2]]).valid_len;
        let beside = writes[2] > second_end && writes[2].is_multiple_of(WRITE_GAP_ALIGN_BYTES);
        assert!(beside, "the last write went out beside the one before: {writes:?}, write 2 ends at {second_end}");
        let (wal, state, report) = open(options()).await;
        assert_eq!(report.torn_tail, None);
        assert_eq!(state.accepted.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        drop(wal);

        // The second write lost, the third (beside it) landed.
        let mut lost = bytes.clone();
        lost[writes[1]..writes[2]].fill(0);
        write(&path, &lost);
        let (wal, state, report) = open(options()).await;
        let torn_at = report.torn_tail.as_ref().map(|(_, offset, _)| *offset);
        assert_eq!(torn_at, Some(writes[1] as u64), "{report:?}");
        assert_eq!(state.accepted.keys().copied().collect::<Vec<_>>(), vec![0]);
        write_batches(&wal, &[vec![op(1, "after recovery")]]).await;
        drop(wal);
        let (_wal, state, report) = open(options()).await;
        assert_eq!(report.torn_tail, None);
        assert_eq!(
            state.accepted.keys().copied().collect::<Vec<_>>(),
            vec![0, 1],
            "the lost pair's last write is gone"
        );
        assert_eq!(state.accepted[&1].1, value("slot 1 after recovery"));
    });
}

/// As in the server, one task appends while another syncs (4 KiB
/// segments, records of about 1 KiB, so syncs keep rolling to new
/// segments): appends made while a sync rolls wait for a later sync and are
/// all recovered. A sync never holds the log's state borrowed across a
/// device operation (an append during one panicked).
#[test]
fn appends_during_a_segment_roll_wait_for_the_next_sync() {
    const RECORDS: u64 = 96;
    let test = TestDir::new("append_during_roll");
    let dir = test.join("wal");
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, 4096)).await;
        let wal = Rc::new(wal);
        let (sender, receiver) = glommio::channels::local_channel::new_unbounded();
        let appender = {
            let wal = wal.clone();
            glommio::spawn_local(async move {
                for slot in 0..RECORDS {
                    let op = PersistOp::Accept {
                        ballot: Ballot::new(1, 1),
                        first_slot: slot,
                        values: vec![value(&format!("slot {slot} {}", "r".repeat(900)))],
                    };
                    sender.try_send(wal.append(&[op])).expect("the syncer is listening");
                    // Spread the appends over the syncs' device operations
                    // (how many land inside a roll does not change the
                    // outcome, only whether the test can see the bug).
                    glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
                }
            })
        };
        let syncer = glommio::spawn_local(async move {
            // A sync writes what was appended before it started; the
            // appends made during it wait for a later one (a later seq's).
            while let Some(seq) = receiver.recv().await {
                wal.sync(seq).await?;
            }
            Ok::<(), WalError>(())
        });
        appender.await;
        syncer.await.unwrap_or_else(|e| panic!("sync failed: {e}"));
        // How many segments depends on how the appends fell into syncs (a
        // loaded host batches more per sync); the first sync writes the first
        // record alone, so the rest needed at least one roll.
        let rolled = segments(&dir).len();
        assert!(rolled >= 2, "the workload rolled segments: {rolled}");
        let mut epochs: Vec<u64> =
            segments(&dir).iter().map(|p| segment_epoch(&p.file_name().unwrap().to_string_lossy()).unwrap()).collect();
        epochs.sort_unstable();
        epochs.dedup();
        assert_eq!(epochs.len(), rolled, "every segment has its own salt");
        let (_wal, state, report) = open(options(&dir, 4096)).await;
        assert_eq!(report.torn_tail, None);
        let slots: Vec<Slot> = state.accepted.keys().copied().collect();
        assert_eq!(slots, (0..RECORDS).collect::<Vec<_>>());
    });
}

/// Issue 11: records are written into zeros the WAL wrote ahead of them
/// (a plain overwrite), not into preallocated unwritten extents; the zeros
/// stay a bounded distance ahead, and recovery reads the log unchanged.
#[test]
fn segments_are_zeroed_ahead_of_the_records_and_recover_unchanged() {
    let test = TestDir::new("zero_ahead");
    let dir = test.join("wal");
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        let batches: Vec<Vec<PersistOp>> = (0..64u64)
            .map(|i| {
                let text = format!("{i:0>2}{}", "z".repeat(60_000));
                vec![PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: i, values: vec![value(&text)] }]
            })
            .collect();
        write_batches(&wal, &batches).await;
        let stats = wal.stats();
        // The first segment is preallocated like every later one.
        let first = segments(&dir).into_iter().next().expect("a segment");
        assert_eq!(std::fs::metadata(&first).unwrap().len(), SEGMENT_BYTES_LARGE, "{}", first.display());
        assert!(stats.zeroed_bytes >= stats.bytes, "zeros lead the records: {stats:?}");
        assert!(stats.zeroed_bytes <= stats.bytes + (4 << 20), "and stay within reach: {stats:?}");
        // Topped up in chunks of at least 256 KiB, not once per record
        // write: each chunk costs the next record write a metadata update.
        assert!(stats.zero_writes * (256 << 10) <= stats.zeroed_bytes, "zeroed in small pieces: {stats:?}");
        assert!(stats.zero_writes * 4 <= stats.writes, "zeroed too often: {stats:?}");
        drop(wal);
        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(report.torn_tail, None);
        assert_eq!(state, apply_all(&flatten(&batches)));
    });
    let mut no_sync = options(&test.join("none"), SEGMENT_BYTES_LARGE);
    no_sync.durability = Durability::None;
    run_local(move || async move {
        let (wal, _, _) = open(no_sync).await;
        let op = PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: 0, values: vec![value("x")] };
        write_batches(&wal, &[vec![op]]).await;
        assert_eq!(wal.stats().zeroed_bytes, 0, "nothing to gain without fsyncs");
    });
}

/// `inline_writes` makes the same writes as io_uring does (records, zeros
/// ahead of them, a segment roll), and the log recovers the same; only the
/// record writes are made inline.
#[test]
fn inline_writes_make_the_same_writes_as_io_uring() {
    let test = TestDir::new("inline_writes");
    // Built on the executor's thread: a value is not `Send` (`Value`).
    fn batches() -> Vec<Vec<PersistOp>> {
        (0..48u64)
            .map(|i| {
                let text = format!("{i:0>2}{}", "i".repeat(50_000));
                vec![PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: i, values: vec![value(&text)] }]
            })
            .collect()
    }
    let mut stats = Vec::new();
    for inline_writes in [false, true] {
        let dir = test.join(if inline_writes { "inline" } else { "uring" });
        let (sender, receiver) = std::sync::mpsc::channel();
        run_local(move || async move {
            let batches = batches();
            let mut options = options(&dir, 1 << 20);
            options.inline_writes = inline_writes;
            let (wal, _, _) = open(options).await;
            write_batches(&wal, &batches[..1]).await;
            // Inline, the record write is made (blocking) by the time the
            // sync is first polled; through io_uring it waits for the
            // reactor. (The first batch topped the zeros up, which go
            // through io_uring either way; the second needs none.)
            let seq = wal.append(&batches[1]);
            {
                let mut sync = std::pin::pin!(wal.sync(seq));
                let first_poll = futures_lite::future::poll_once(&mut sync).await;
                assert_eq!(first_poll.is_some(), inline_writes, "inline writes {inline_writes}: {first_poll:?}");
                match first_poll {
                    Some(result) => result.unwrap(),
                    None => sync.await.unwrap(),
                }
            }
            write_batches(&wal, &batches[2..]).await;
            sender.send(wal.stats()).unwrap();
            drop(wal);
            let (_wal, state, report) = open(self::options(&dir, 1 << 20)).await;
            assert_eq!(report.torn_tail, None, "inline writes {inline_writes}");
            assert!(report.segments > 1, "inline writes {inline_writes}: the workload rolls segments: {report:?}");
            assert_eq!(state, apply_all(&flatten(&batches)), "inline writes {inline_writes}");
        });
        stats.push(receiver.recv().unwrap());
    }
    assert!(stats[0].zero_writes > 0, "{:?}", stats[0]);
    assert_eq!(stats[0], stats[1], "io_uring, then inline");
}

// ---------------------------------------------------------------------------
// 3. Segment rolling
// ---------------------------------------------------------------------------

/// With 4 KiB segments, a workload of many times that spreads over many
/// `wal-*.log` files (one record larger than a segment among them), and a
/// reopen recovers all of it; appending after the reopen continues the log.
#[test]
fn segments_roll_and_recovery_reads_them_all_in_order() {
    const SEED: u64 = 0x5EED_0003;
    const SEGMENT_BYTES: u64 = 4096;
    let test = TestDir::new("segment_rolling");
    let dir = test.join("wal");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        workload.command_bytes_max = 200;
        let mut batches = workload.batches(150);
        // A record larger than a whole segment gets a segment of its own.
        let big = PersistOp::Accept {
            ballot: workload.ballot,
            first_slot: workload.next_slot,
            values: vec![Value::batch(vec![Bytes::from(vec![0xAB; 3 * SEGMENT_BYTES as usize])])],
        };
        workload.next_slot += 1;
        let mut batch = Vec::new();
        workload.push(big, &mut batch);
        batches.push(batch);
        batches.extend(workload.batches(20));
        let ops = flatten(&batches);

        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES)).await;
        write_batches(&wal, &batches).await;
        let written = wal.stats().bytes;
        drop(wal);
        let segment_files = segments(&dir);
        assert!(written > 10 * SEGMENT_BYTES, "seed {SEED:#x}: only {written} bytes written");
        assert!(segment_files.len() >= 8, "seed {SEED:#x}: {} segments for {written} bytes", segment_files.len());

        let (wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
        assert_eq!(state, apply_all(&ops), "seed {SEED:#x}");
        assert_eq!(report.torn_tail, None);
        assert_eq!(report.segments, segment_files.len());
        assert_eq!(report.records, ops.len());

        // The reopened log is writable and keeps rolling.
        let more = workload.batches(60);
        write_batches(&wal, &more).await;
        drop(wal);
        assert!(segments(&dir).len() > segment_files.len());
        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
        assert_eq!(state, apply_all(ops.iter().chain(&flatten(&more))), "seed {SEED:#x}");
        assert_eq!(report.torn_tail, None);
    });
}

// ---------------------------------------------------------------------------
// 4. Torn tails
// ---------------------------------------------------------------------------

/// How a test damages the last segment file after the WAL is dropped.
#[derive(Clone, Debug)]
enum Damage {
    /// Cut the file at this offset.
    Truncate(usize),
    /// Cut the file at `at` and leave zeros up to `at + zeros` (a torn
    /// write into a preallocated region).
    TruncateThenZeros { at: usize, zeros: usize },
    /// Cut (or zero-extend) the file to `at`, then append `len` random
    /// bytes, the first one non-zero.
    Garbage { at: usize, len: usize },
    /// Flip the bits of `mask` in the byte at this offset.
    Flip { at: usize, mask: u8 },
}

impl Damage {
    fn apply(&self, bytes: &mut Vec<u8>, rng: &mut Rng) {
        match *self {
            Damage::Truncate(at) => bytes.truncate(at),
            Damage::TruncateThenZeros { at, zeros } => {
                bytes.truncate(at);
                bytes.resize(at + zeros, 0);
            }
            Damage::Garbage { at, len } => {
                bytes.resize(at, 0);
                bytes.push(0xA5);
                bytes.extend((1..len).map(|_| rng.next_u64() as u8));
            }
            Damage::Flip { at, mask } => bytes[at] ^= mask,
        }
    }
}

/// After a clean workload, the last segment is cut, torn, garbled or
/// bit-flipped inside its last records. Reopening succeeds, reports the torn
/// tail at the damaged record, and recovers exactly the records before it.
/// Appending and reopening again then yields a clean log holding the new
/// records too: recovery scrubbed the torn bytes.
#[test]
fn a_torn_tail_is_truncated_reported_and_scrubbed() {
    const SEED: u64 = 0x5EED_0004;
    let test = TestDir::new("torn_tail");
    let pristine = test.join("pristine");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        let batches = workload.batches(12);
        let ops = flatten(&batches);
        let (wal, _, _) = open(options(&pristine, SEGMENT_BYTES_LARGE)).await;
        write_batches(&wal, &batches).await;
        drop(wal);

        let segment_name = segments(&pristine)[0].file_name().unwrap().to_owned();
        let clean = read(&pristine.join(&segment_name));
        let scan = scan_file(&pristine.join(&segment_name), &clean);
        assert_eq!(scan.end, ScanEnd::Clean);
        assert_eq!(scan.records.len(), ops.len(), "one record per op");
        let starts = scan.offsets.clone();
        let writes = scan.write_offsets.clone();
        let valid_len = scan.valid_len;
        let last = *starts.last().unwrap();
        let second_last = starts[starts.len() - 2];
        assert!(valid_len - last > 12, "seed {SEED:#x}: last record too short for the offsets below");

        let mut damages = vec![
            // Cuts through the last record's header (len, then crc) and body.
            Damage::Truncate(last + 1),
            Damage::Truncate(last + 3),
            Damage::Truncate(last + 4),
            Damage::Truncate(last + 7),
            Damage::Truncate(last + 8),
            Damage::Truncate(last + 9),
            Damage::Truncate((last + valid_len) / 2),
            Damage::Truncate(valid_len - 1),
            // Cuts through the record before it (the last one is gone).
            Damage::Truncate(second_last + 2),
            Damage::Truncate(second_last + 8),
            Damage::Truncate(last - 1),
            // A torn write into zeros, and garbage after the valid records.
            Damage::TruncateThenZeros { at: (last + valid_len) / 2, zeros: 8192 },
            Damage::Garbage { at: valid_len, len: 3000 },
            Damage::Garbage { at: valid_len + 700, len: 300 },
            Damage::Garbage { at: last + 5, len: 5000 },
            // Bit flips in the last record: length, crc, body, last byte.
            Damage::Flip { at: last, mask: 0x01 },
            Damage::Flip { at: last + 2, mask: 0x80 },
            Damage::Flip { at: last + 5, mask: 0x10 },
            Damage::Flip { at: last + 8, mask: 0xFF },
            Damage::Flip { at: (last + valid_len) / 2, mask: 0x04 },
            Damage::Flip { at: valid_len - 1, mask: 0x40 },
        ];
        let mut rng = Rng::new(SEED);
        for _ in 0..6 {
            damages.push(Damage::Truncate(rng.range_inclusive(second_last as u64 + 1, valid_len as u64 - 1) as usize));
        }

        for (case, damage) in damages.iter().enumerate() {
            let context = format!("seed {SEED:#x}, case {case}: {damage:?}");
            let dir = test.join(&format!("case-{case}"));
            copy_dir(&pristine, &dir);
            let segment = dir.join(&segment_name);
            let mut bytes = clean.clone();
            damage.apply(&mut bytes, &mut rng);
            write(&segment, &bytes);

            // What must survive: the records of the writes wholly before the
            // damage (a write is checksummed whole: one damaged byte drops it).
            let (Damage::Truncate(damaged_at)
            | Damage::TruncateThenZeros { at: damaged_at, .. }
            | Damage::Garbage { at: damaged_at, .. }
            | Damage::Flip { at: damaged_at, .. }) = *damage;
            let write_of = |record: usize| writes.partition_point(|&w| w <= starts[record]) - 1;
            let write_end = |write: usize| writes.get(write + 1).copied().unwrap_or(valid_len);
            let kept = (0..starts.len()).take_while(|r| write_end(write_of(*r)) <= damaged_at).count();
            let torn_offset = if kept < starts.len() { writes[write_of(kept)] } else { valid_len };
            // A cut that leaves only zero bytes of the damaged record's header
            // is indistinguishable from padding: clean, same prefix.
            let torn = bytes.get(torn_offset..).is_some_and(|rest| rest.iter().any(|byte| *byte != 0));

            let (wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
            assert_eq!(state, apply_all(&ops[..kept]), "{context}");
            assert_eq!(report.records, kept, "{context}");
            match &report.torn_tail {
                Some((path, offset, reason)) if torn => {
                    assert_eq!(path, &segment, "{context}");
                    assert_eq!(*offset, torn_offset as u64, "{context}: {reason}");
                    assert!(!reason.is_empty(), "{context}");
                }
                None if !torn => {}
                other => panic!("{context}: torn {torn}, report {other:?}"),
            }

            let more = vec![later_ops(case as u64), later_ops(case as u64 + 100)];
            write_batches(&wal, &more).await;
            drop(wal);
            let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
            assert_eq!(report.torn_tail, None, "{context}: torn bytes survived the first recovery");
            assert_eq!(state, apply_all(ops[..kept].iter().chain(&flatten(&more))), "{context}");
            let rescan = scan_file(&segment, &read(&segment));
            assert_eq!(rescan.end, ScanEnd::Clean, "{context}");
            assert_eq!(rescan.records.len(), kept + 6, "{context}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// 5. Mid-log corruption
// ---------------------------------------------------------------------------

/// Opens a damaged log expecting `WalError::Corrupt` at `file`/`offset`, and
/// checks that the message names both and says what to do, and that the
/// failed open changed no file.
async fn expect_corrupt(dir: &Path, segment_bytes: u64, file: &Path, offset: usize, context: &str) {
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| (path.clone(), read(&path)))
        .collect();
    let error = match Wal::open(options(dir, segment_bytes)).await {
        Ok((_, state, report)) => panic!("{context}: opened a corrupt log: {report:?}, commit {}", state.commit),
        Err(error) => error,
    };
    match &error {
        WalError::Corrupt { file: error_file, offset: error_offset, reason } => {
            assert_eq!(error_file, file, "{context}: {error}");
            assert_eq!(*error_offset, offset as u64, "{context}: {error}");
            assert!(!reason.is_empty(), "{context}");
        }
        other => panic!("{context}: expected WalError::Corrupt, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{context}: no file in: {message}");
    assert!(message.contains(&format!("byte {offset}")), "{context}: no offset in: {message}");
    assert!(message.contains("restore") && message.contains("data directory"), "{context}: no advice in: {message}");
    for (path, bytes) in before {
        assert!(read(&path) == bytes, "{context}: the failed open modified {}", path.display());
    }
}

/// A damaged record with valid records after it is not a torn write: opening
/// fails with an error that names the segment file and the record's byte
/// offset and says what to do. The same for a damaged segment that is not
/// the last, even when the damage is at its end, and for a missing segment.
#[test]
fn mid_log_corruption_stops_startup_with_file_and_offset() {
    const SEED: u64 = 0x5EED_0005;
    let test = TestDir::new("mid_log_corruption");
    run_local(move || async move {
        // One segment of many records: damage an early one.
        let single = test.join("single");
        let mut workload = Workload::new(SEED);
        let (wal, _, _) = open(options(&single, SEGMENT_BYTES_LARGE)).await;
        write_batches(&wal, &workload.batches(12)).await;
        drop(wal);
        let segment = segments(&single)[0].clone();
        let clean = read(&segment);
        let scan = scan_file(&segment, &clean);
        let starts = scan.offsets;
        let writes = scan.write_offsets;
        let write_start = |at: usize| writes[writes.partition_point(|&w| w <= at) - 1];
        assert!(starts.len() >= 6 && writes.len() >= 6, "seed {SEED:#x}");
        for (record, delta, mask) in [(1, 10, 0x01), (0, 0, 0x02), (2, 5, 0x80), (3, 8, 0xFF)] {
            let context = format!("seed {SEED:#x}: record {record}, byte +{delta}, mask {mask:#04x}");
            let dir = test.join(&format!("single-{record}"));
            copy_dir(&single, &dir);
            let mut bytes = clean.clone();
            bytes[starts[record] + delta] ^= mask;
            let damaged = dir.join(segment.file_name().unwrap());
            write(&damaged, &bytes);
            expect_corrupt(&dir, SEGMENT_BYTES_LARGE, &damaged, write_start(starts[record] + delta), &context).await;
            std::fs::remove_dir_all(&dir).unwrap();
        }

        // Several segments: damage segment 0 in its first record, in its
        // last record (a "torn tail" that is not the end of the log), and
        // cut it short.
        let multi = test.join("multi");
        let mut workload = Workload::new(SEED + 1);
        workload.command_bytes_max = 150;
        let (wal, _, _) = open(options(&multi, 4096)).await;
        write_batches(&wal, &workload.batches(60)).await;
        drop(wal);
        let segment_files = segments(&multi);
        assert!(segment_files.len() >= 3, "seed {SEED:#x}");
        let first = segment_files[0].clone();
        let clean = read(&first);
        let scan = scan_file(&first, &clean);
        assert!(scan.write_offsets.len() >= 2, "seed {SEED:#x}");
        let last_start = *scan.write_offsets.last().unwrap();
        let damages = [
            ("flip in the first record", Damage::Flip { at: 9, mask: 0x20 }, 0),
            ("flip in the last write", Damage::Flip { at: last_start + 9, mask: 0x20 }, last_start),
            ("cut in the last write", Damage::Truncate(last_start + 10), last_start),
        ];
        for (case, (what, damage, offset)) in damages.into_iter().enumerate() {
            let context = format!("seed {SEED:#x}: segment 0 of {}: {what}", segment_files.len());
            let dir = test.join(&format!("multi-{case}"));
            copy_dir(&multi, &dir);
            let mut bytes = clean.clone();
            damage.apply(&mut bytes, &mut Rng::new(SEED));
            let damaged = dir.join(first.file_name().unwrap());
            write(&damaged, &bytes);
            expect_corrupt(&dir, 4096, &damaged, offset, &context).await;
            std::fs::remove_dir_all(&dir).unwrap();
        }

        // A missing segment: the first one, or one in the middle.
        for (case, missing) in [0, segment_files.len() / 2].into_iter().enumerate() {
            let context = format!("seed {SEED:#x}: segment {missing} of {} missing", segment_files.len());
            let dir = test.join(&format!("missing-{case}"));
            copy_dir(&multi, &dir);
            std::fs::remove_file(dir.join(segment_files[missing].file_name().unwrap())).unwrap();
            let after = dir.join(segment_files[missing + 1].file_name().unwrap());
            expect_corrupt(&dir, 4096, &after, 0, &context).await;
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// 6. A crash at every device operation
// ---------------------------------------------------------------------------

/// About 20 batches that exercise every write path: plain appends, segment
/// rolls (4 KiB segments), and snapshots, one of them in the middle of a
/// batch and one taken while a value at the commit point is already chosen.
fn crash_workload(seed: u64) -> Vec<Vec<PersistOp>> {
    let mut workload = Workload::new(seed);
    workload.command_bytes_max = 200;
    let mut batches = workload.batches(8);
    // A snapshot between other ops of one batch.
    let mut batch = workload.batch();
    let snapshot = workload.snapshot(300);
    workload.push(snapshot, &mut batch);
    let accept = workload.accept();
    workload.push(accept, &mut batch);
    batches.push(batch);
    batches.extend(workload.batches(5));
    // A value chosen at the commit point, then a snapshot at that point
    // (whose apply moves the commit point past the chosen value).
    let commit = workload.state.commit;
    let mut batch = Vec::new();
    workload.push(PersistOp::Chosen { first_slot: commit, values: vec![value("chosen at commit")] }, &mut batch);
    batches.push(batch);
    let snapshot = workload.snapshot(5000);
    batches.push(vec![snapshot]);
    batches.extend(workload.batches(5));
    batches
}

/// What one run with a crash after `limit` device operations left behind.
struct CrashRun {
    crashed: bool,
    /// Ops in batches whose sync returned Ok: these must survive.
    durable_ops: usize,
    /// Ops appended before the crash: nothing beyond these may appear.
    appended_ops: usize,
    stats: WalStats,
}

async fn run_until_crash(dir: &Path, batches: &[Vec<PersistOp>], limit: u64, inline_writes: bool) -> CrashRun {
    let mut options = options(dir, 4096);
    options.crash_after_device_ops = Some(limit);
    options.inline_writes = inline_writes;
    let (wal, state, _) = open(options).await;
    assert_eq!(state, DurableState::default());
    let mut run = CrashRun { crashed: false, durable_ops: 0, appended_ops: 0, stats: WalStats::default() };
    for (index, batch) in batches.iter().enumerate() {
        let seq = wal.append(batch);
        run.appended_ops += batch.len();
        match wal.sync(seq).await {
            Ok(()) => run.durable_ops = run.appended_ops,
            Err(WalError::InjectedCrash) => {
                run.crashed = true;
                // The log stays failed: no later sync may report success.
                let seq = wal.append(&later_ops(0));
                assert!(matches!(wal.sync(seq).await, Err(WalError::InjectedCrash)), "limit {limit}");
                break;
            }
            Err(other) => panic!("limit {limit}, batch {index}: unexpected error {other}"),
        }
    }
    run.stats = wal.stats();
    run
}

/// For every k, a run whose device fails from its (k+1)-th write or fsync
/// on, then recovery without the fault: the recovered state equals the ops
/// of some prefix that holds every acknowledged batch and nothing that was
/// never appended. The recovered log then keeps working.
#[test]
fn a_crash_at_every_device_operation_recovers_a_durable_prefix() {
    crash_at_every_device_operation("crash_points", false);
}

/// The same with `inline_writes` (`wal_writes = "inline"`): the device
/// operations come in the same order (the injected crash refuses each one
/// before its system call, in either mode), and recovery finds a durable
/// prefix.
#[test]
fn a_crash_at_every_device_operation_recovers_a_durable_prefix_with_inline_writes() {
    crash_at_every_device_operation("crash_points_inline", true);
}

fn crash_at_every_device_operation(name: &str, inline_writes: bool) {
    const SEED: u64 = 0x5EED_0006;
    let test = TestDir::new(name);
    run_local(move || async move {
        let batches = crash_workload(SEED);
        let ops = flatten(&batches);
        // Prefix states: prefix_states[m] = the first m ops applied.
        let mut prefix_states = vec![DurableState::default()];
        for op in &ops {
            let mut next = prefix_states.last().unwrap().clone();
            next.apply(op);
            prefix_states.push(next);
        }
        let mut limit = 0;
        loop {
            let context = format!("seed {SEED:#x}, inline writes {inline_writes}, crash after {limit} device ops");
            let dir = test.join(&format!("limit-{limit}"));
            let run = run_until_crash(&dir, &batches, limit, inline_writes).await;
            let (wal, recovered, report) =
                Wal::open(options(&dir, 4096)).await.unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
            let appended = run.appended_ops;
            let matching = (run.durable_ops..=appended).find(|m| prefix_states[*m] == recovered);
            let Some(matching) = matching else {
                panic!(
                    "{context}: recovered state is no prefix between {} (acknowledged) and {appended} (appended) \
                     ops; report {report:?}\nrecovered: {recovered:#?}",
                    run.durable_ops
                )
            };
            if !run.crashed {
                // The run that got through is the whole workload: two
                // snapshots and several segment rolls.
                assert_eq!(matching, ops.len(), "{context}");
                assert_eq!(run.stats.snapshots, 2, "{context}: {:?}", run.stats);
                // A write per batch and one checkpoint per snapshot.
                assert_eq!(run.stats.writes, batches.len() as u64 + 2, "{context}: {:?}", run.stats);
                assert_eq!(run.stats.records, ops.len() as u64 - 2, "{context}: {:?}", run.stats);
            }

            // The recovered log accepts new records, and they survive too.
            let more = later_ops(limit);
            write_batches(&wal, std::slice::from_ref(&more)).await;
            drop(wal);
            let (_wal, state, report) = open(options(&dir, 4096)).await;
            assert_eq!(report.torn_tail, None, "{context}");
            assert_eq!(state, apply_all(ops[..matching].iter().chain(&more)), "{context}");
            std::fs::remove_dir_all(&dir).unwrap();

            if !run.crashed {
                break;
            }
            limit += 1;
        }
        // At least a write and an fsync per batch, plus rolls and snapshots.
        assert!(limit as usize > batches.len() * 2, "seed {SEED:#x}: only {limit} device ops");
    });
}

// ---------------------------------------------------------------------------
// 7. Snapshots and compaction
// ---------------------------------------------------------------------------

/// A long workload with a snapshot every few batches keeps the directory
/// small: a few segments and exactly one snapshot file, whatever was
/// written. The last snapshot comes after a promise and an accept above its
/// slot, which live only in segments the snapshot deletes; the checkpoint
/// that starts the next segment must carry them.
#[test]
fn snapshots_compact_the_log_and_checkpoints_carry_state_above_them() {
    const SEED: u64 = 0x5EED_0007;
    const SEGMENT_BYTES: u64 = 4096;
    const SNAPSHOT_EVERY_BATCHES: usize = 12;
    const ROUNDS: usize = 60;
    let test = TestDir::new("snapshots");
    let dir = test.join("wal");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        workload.command_bytes_max = 200;
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES)).await;
        let mut ops = Vec::new();
        let mut snapshot_bytes_max = 0;
        for round in 0..ROUNDS {
            let batches = workload.batches(SNAPSHOT_EVERY_BATCHES);
            write_batches(&wal, &batches).await;
            ops.extend(flatten(&batches));
            // Commit everything that has a value, then snapshot there (some
            // snapshots larger than a block, some empty-ish).
            let mut batch = Vec::new();
            let commit_max = workload.commit_max();
            if commit_max > workload.state.commit {
                workload.push(PersistOp::Commit { commit: commit_max }, &mut batch);
            }
            let snapshot = workload.snapshot([10, 3000, 9000][round % 3]);
            workload.push(snapshot, &mut batch);
            write_batches(&wal, &[batch.clone()]).await;
            ops.extend(batch);
            // The files before the checkpoint go in the background.
            wal.removals_done().await;
            let files_bytes = total_bytes(&dir);
            let snapshot_files = snapshots(&dir);
            assert_eq!(snapshot_files.len(), 1, "seed {SEED:#x}, round {round}: {snapshot_files:?}");
            let snapshot_bytes = std::fs::metadata(&snapshot_files[0]).unwrap().len();
            snapshot_bytes_max = snapshot_bytes_max.max(snapshot_bytes);
            assert!(
                files_bytes < 10 * SEGMENT_BYTES + snapshot_bytes,
                "seed {SEED:#x}, round {round}: {files_bytes} bytes on disk, {:?}",
                segments(&dir)
            );
            assert!(segments(&dir).len() <= 4, "seed {SEED:#x}, round {round}: {:?}", segments(&dir));
        }
        let stats = wal.stats();
        assert_eq!(stats.snapshots, ROUNDS as u64);
        // Many times more than the directory may hold at any time.
        assert!(stats.bytes > 5 * (10 * SEGMENT_BYTES + snapshot_bytes_max), "seed {SEED:#x}: {stats:?}");

        // A promise and an accept above the commit point, then a snapshot
        // that deletes the segments holding them.
        let high = Ballot::new(workload.ballot.round + 10, 2);
        // Above every slot the workload accepted or learned.
        let above = workload.next_slot + 10;
        let mut batch = Vec::new();
        workload.push(PersistOp::Promise { ballot: high }, &mut batch);
        let accept = PersistOp::Accept { ballot: high, first_slot: above, values: vec![value("above"), Value::Noop] };
        workload.push(accept, &mut batch);
        // Move the commit point so the next snapshot is newer than the last.
        let commit = workload.state.commit;
        workload.push(PersistOp::Chosen { first_slot: commit, values: vec![Value::Noop; 2] }, &mut batch);
        workload.push(PersistOp::Commit { commit: commit + 2 }, &mut batch);
        write_batches(&wal, &[batch.clone()]).await;
        ops.extend(batch);
        let snapshot = workload.snapshot(777);
        let PersistOp::Snapshot(image) = &snapshot else { unreachable!() };
        let image = image.clone();
        assert!(image.slot < above);
        write_batches(&wal, &[vec![snapshot.clone()]]).await;
        ops.push(snapshot);
        wal.removals_done().await;
        drop(wal);
        assert_eq!(snapshots(&dir), vec![dir.join(format!("snapshot-{:020}.snap", image.slot))]);

        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
        let expected = apply_all(&ops);
        assert_eq!(state, expected, "seed {SEED:#x}");
        assert_eq!(state.snapshot, Some(image.clone()));
        assert_eq!(report.snapshot_slot, Some(image.slot));
        assert_eq!(report.torn_tail, None);
        assert_eq!(state.promised, high);
        assert_eq!(state.accepted.get(&above), Some(&(high, value("above"))));
        assert_eq!(state.accepted.get(&(above + 1)), Some(&(high, Value::Noop)));
    });
}

// ---------------------------------------------------------------------------
// 8. Durability `none`
// ---------------------------------------------------------------------------

/// Without fsyncs the log still writes and recovers (after a clean
/// shutdown), and it never fsyncs, not even when it rolls a segment.
#[test]
fn durability_none_round_trips_without_fsync() {
    const SEED: u64 = 0x5EED_0008;
    let test = TestDir::new("durability_none");
    let dir = test.join("wal");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        workload.command_bytes_max = 200;
        let batches = workload.batches(80);
        let mut options = options(&dir, 4096);
        options.durability = Durability::None;
        let (wal, _, _) = open(options.clone()).await;
        write_batches(&wal, &batches).await;
        let stats = wal.stats();
        assert_eq!(stats.fsyncs, 0, "{stats:?}");
        assert_eq!(stats.records, flatten(&batches).len() as u64);
        // What a killed process wrote is in the files already (the page
        // cache): a copy taken while the log is still open recovers it all.
        let killed = test.join("killed");
        copy_dir(&dir, &killed);
        let (_copy, state, report) = open(WalOptions { dir: killed.clone(), ..options.clone() }).await;
        assert_eq!(state, apply_all(&flatten(&batches)), "seed {SEED:#x}");
        assert_eq!(report.torn_tail, None);
        drop(wal);
        assert!(segments(&dir).len() >= 2, "seed {SEED:#x}: the workload should roll segments");

        let (_wal, state, report) = open(options).await;
        assert_eq!(state, apply_all(&flatten(&batches)), "seed {SEED:#x}");
        assert_eq!(report.torn_tail, None);
    });
}

// ---------------------------------------------------------------------------
// A stale snapshot op
// ---------------------------------------------------------------------------

/// A snapshot op no newer than the snapshot already taken changes nothing,
/// as `DurableState::apply` ignores it: its file must not replace the image
/// of the same slot, and it must not compact the log.
#[test]
fn a_snapshot_no_newer_than_the_current_one_changes_nothing() {
    let test = TestDir::new("stale_snapshot");
    let dir = test.join("wal");
    run_local(move || async move {
        let b = Ballot::new(1, 1);
        let image = SnapshotImage { slot: 3, data: Bytes::from_static(b"kv state below slot 3") };
        let batches = vec![
            vec![PersistOp::Accept { ballot: b, first_slot: 0, values: vec![Value::Noop; 5] }],
            vec![PersistOp::Commit { commit: 4 }, PersistOp::Snapshot(image.clone())],
            vec![PersistOp::Snapshot(SnapshotImage { slot: 3, data: Bytes::from_static(b"other bytes, same slot") })],
            vec![PersistOp::Snapshot(SnapshotImage { slot: 2, data: Bytes::from_static(b"older") })],
            vec![PersistOp::Commit { commit: 5 }],
        ];
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        write_batches(&wal, &batches).await;
        assert_eq!(wal.stats().snapshots, 1);
        drop(wal);
        assert_eq!(snapshots(&dir), vec![dir.join(format!("snapshot-{:020}.snap", 3))]);

        let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, apply_all(&flatten(&batches)));
        assert_eq!(state.snapshot, Some(image));
        assert_eq!(report.snapshot_slot, Some(3));
    });
}

/// A compaction deletes the files before its checkpoint in the background:
/// its own sync and the next ones do not wait for the deletions. One that
/// fails (here a directory where a stale segment's name is) fails the log
/// at its next sync, naming the file; the other stale files still go.
#[test]
fn a_failed_deletion_after_a_compaction_fails_the_next_sync() {
    const SEED: u64 = 0x5EED_0010;
    const SEGMENT_BYTES: u64 = 4096;
    let test = TestDir::new("failed_deletion");
    let dir = test.join("wal");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        workload.command_bytes_max = 150;
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES)).await;
        write_batches(&wal, &workload.batches(30)).await;
        let stale = segments(&dir);
        assert!(stale.len() >= 3, "seed {SEED:#x}: {stale:?}");
        // Named as segment 0 (unsalted), so the compaction lists it as stale.
        let blocker = dir.join(format!("wal-{:020}.log", 0));
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("inside"), b"x").unwrap();

        write_batches(&wal, &[vec![workload.snapshot(500)]]).await;
        wal.removals_done().await;
        let left = segments(&dir);
        assert_eq!(left.len(), 2, "seed {SEED:#x}: the checkpoint's segment and the blocker: {left:?}");
        assert!(left.contains(&blocker), "seed {SEED:#x}: {left:?}");
        assert!(stale.iter().all(|path| !left.contains(path)), "seed {SEED:#x}: {left:?}");

        let seq = wal.append(&workload.batches(1)[0]);
        let error = wal.sync(seq).await.expect_err("the failed deletion fails the log").to_string();
        assert!(error.contains("wal-00000000000000000000.log") && error.contains("compaction"), "{error}");
    });
}

// ---------------------------------------------------------------------------
// An interrupted compaction
// ---------------------------------------------------------------------------

/// A snapshot is taken in steps: snapshot file (temp, fsync, rename), a new
/// segment starting with a checkpoint, then older segments deleted. Two
/// layouts a power cut can leave behind, built from real files: the old
/// segments and the new snapshot with the checkpoint torn (recovery uses the
/// old segments, ignores and deletes the snapshot nothing refers to, and
/// scrubs the torn checkpoint), and the old segments with the checkpoint
/// whole (recovery starts at the checkpoint).
#[test]
fn an_interrupted_compaction_recovers_from_whatever_is_whole() {
    const SEED: u64 = 0x5EED_0009;
    const SEGMENT_BYTES: u64 = 4096;
    let test = TestDir::new("interrupted_compaction");
    run_local(move || async move {
        let mut workload = Workload::new(SEED);
        workload.command_bytes_max = 150;
        let before = workload.batches(30);
        let snapshot = workload.snapshot(2000);
        let PersistOp::Snapshot(image) = &snapshot else { unreachable!() };
        let image = image.clone();
        let ops_before = flatten(&before);
        let ops_after: Vec<PersistOp> = ops_before.iter().chain([&snapshot]).cloned().collect();

        // `old`: the log just before the snapshot; `new`: just after it.
        let old = test.join("old");
        let new = test.join("new");
        let (wal, _, _) = open(options(&old, SEGMENT_BYTES)).await;
        write_batches(&wal, &before).await;
        drop(wal);
        copy_dir(&old, &new);
        let (wal, _, _) = open(options(&new, SEGMENT_BYTES)).await;
        write_batches(&wal, &[vec![snapshot.clone()]]).await;
        wal.removals_done().await;
        drop(wal);
        let old_segments = segments(&old);
        assert!(old_segments.len() >= 3, "seed {SEED:#x}: {old_segments:?}");
        let new_segments = segments(&new);
        assert_eq!(new_segments.len(), 1, "compaction deletes the old segments");
        let checkpoint_name = new_segments[0].file_name().unwrap().to_owned();
        let snapshot_name = snapshots(&new)[0].file_name().unwrap().to_owned();
        let checkpoint = read(&new_segments[0]);
        let checkpoint_len = scan_file(&new_segments[0], &checkpoint).valid_len;

        for cut in [1, 8, 20, checkpoint_len / 2, checkpoint_len - 1] {
            let context = format!("seed {SEED:#x}: checkpoint cut at {cut} of {checkpoint_len}");
            let dir = test.join(&format!("torn-{cut}"));
            copy_dir(&old, &dir);
            std::fs::copy(new.join(&snapshot_name), dir.join(&snapshot_name)).unwrap();
            write(&dir.join(&checkpoint_name), &checkpoint[..cut]);

            let (wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
            assert_eq!(state, apply_all(&ops_before), "{context}");
            assert_eq!(report.snapshot_slot, None, "{context}");
            let (path, offset, _) = report.torn_tail.clone().unwrap_or_else(|| panic!("{context}: {report:?}"));
            assert_eq!((path, offset), (dir.join(&checkpoint_name), 0), "{context}");
            assert_eq!(snapshots(&dir), Vec::<PathBuf>::new(), "{context}: the unreferenced snapshot must go");

            // The log goes on from the old segments, and can compact again.
            let more = vec![later_ops(1), vec![snapshot.clone()], later_ops(2)];
            write_batches(&wal, &more).await;
            wal.removals_done().await;
            drop(wal);
            let (_wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
            assert_eq!(state, apply_all(ops_before.iter().chain(&flatten(&more))), "{context}");
            assert_eq!(report.torn_tail, None, "{context}");
            assert_eq!(report.snapshot_slot, Some(image.slot), "{context}");
            assert_eq!(segments(&dir).len(), 1, "{context}");
            std::fs::remove_dir_all(&dir).unwrap();
        }

        // The checkpoint is whole but the old segments were not yet deleted:
        // they are left-overs, not replayed, and the next compaction removes
        // them.
        let dir = test.join("whole");
        copy_dir(&old, &dir);
        copy_dir(&new, &dir);
        let (wal, state, report) = open(options(&dir, SEGMENT_BYTES)).await;
        assert_eq!(state, apply_all(&ops_after), "seed {SEED:#x}");
        assert_eq!(report.snapshot_slot, Some(image.slot));
        assert_eq!(report.segments, 1);
        assert_eq!(report.torn_tail, None);
        let commit = state.commit;
        let next = vec![
            PersistOp::Chosen { first_slot: commit, values: vec![Value::Noop; 2] },
            PersistOp::Commit { commit: commit + 2 },
            PersistOp::Snapshot(SnapshotImage { slot: commit + 2, data: Bytes::from_static(b"next") }),
        ];
        write_batches(&wal, &[next]).await;
        wal.removals_done().await;
        drop(wal);
        assert_eq!(segments(&dir).len(), 1, "seed {SEED:#x}: {:?}", segments(&dir));
        assert_eq!(snapshots(&dir).len(), 1, "seed {SEED:#x}: {:?}", snapshots(&dir));
    });
}

// ---------------------------------------------------------------------------
// A cancelled sync
// ---------------------------------------------------------------------------

/// A `sync` future dropped while its write is in flight took the pending
/// records with it: the log must fail every later sync (with an I/O error
/// that says so) instead of waiting forever for a sync that never ends or
/// reporting those records durable.
#[test]
fn a_sync_dropped_mid_write_fails_the_log_instead_of_hanging() {
    let test = TestDir::new("cancelled_sync");
    let dir = test.join("wal");
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        let seq = wal.append(&later_ops(1));
        {
            let mut sync = std::pin::pin!(wal.sync(seq));
            let first_poll = std::future::poll_fn(|cx| std::task::Poll::Ready(sync.as_mut().poll(cx))).await;
            assert!(first_poll.is_pending(), "the write completed without waiting for the device");
        }
        let seq = wal.append(&later_ops(2));
        match wal.sync(seq).await {
            Err(WalError::Io { source, .. }) => assert!(source.to_string().contains("cancelled"), "{source}"),
            other => panic!("expected an I/O error after a cancelled sync, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// Segment salts: no other log's writes are read as this one's
// ---------------------------------------------------------------------------

/// A power loss can leave blocks of a deleted file past a log's end (an
/// extent marked written before its zeros reached the disk). If those are
/// another log's writes with this segment's epoch and the next sequence
/// number, recovery would replay them as this acceptor's own promises and
/// accepts. Every segment's writes carry its random salt, so they read as
/// the end of the log. (With the epoch the segment's index, as before
/// salts, both logs' first segments shared epoch 0 and this test failed:
/// log B recovered log A's writes 3 to 5.)
#[test]
fn another_logs_writes_past_the_end_are_not_replayed() {
    let test = TestDir::new("stale_writes");
    let (dir_a, dir_b) = (test.join("a"), test.join("b"));
    run_local(move || async move {
        let batch = |tag: u64| vec![PersistOp::Promise { ballot: Ballot::new(tag, 1) }];
        // A's ballots are higher: replayed in B, they would raise its promise.
        let a_batches: Vec<_> = (21..=25).map(batch).collect();
        let b_batches: Vec<_> = (11..=12).map(batch).collect();
        for (dir, batches) in [(&dir_a, &a_batches), (&dir_b, &b_batches)] {
            let (wal, _, _) = open(options(dir, SEGMENT_BYTES_LARGE)).await;
            write_batches(&wal, batches).await;
        }
        let (a_path, b_path) = (segments(&dir_a)[0].clone(), segments(&dir_b)[0].clone());
        let (a, b) = (read(&a_path), read(&b_path));
        let (a_scan, b_scan) = (scan_file(&a_path, &a), scan_file(&b_path, &b));
        assert_eq!((a_scan.writes, b_scan.writes), (5, 2));
        // B's writes, then A's from its third on, where B's third would go.
        let mut spliced = b[..b_scan.valid_len].to_vec();
        spliced.extend_from_slice(&a[a_scan.write_offsets[2]..]);
        write(&b_path, &spliced);

        let (wal, state, report) = open(options(&dir_b, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, apply_all(&flatten(&b_batches)), "only B's own writes are B's");
        assert_eq!((report.records, report.torn_tail), (2, None));
        // B goes on where its own writes end, over the stale bytes.
        write_batches(&wal, &[later_ops(1)]).await;
        drop(wal);
        let (_wal, state, _) = open(options(&dir_b, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, apply_all(flatten(&b_batches).iter().chain(&later_ops(1))));
    });
}

/// A log written before segments had salts (`wal-{index}.log`, epoch =
/// index) recovers, and goes on in its unsalted segment.
#[test]
fn an_unsalted_segment_from_before_salts_recovers_and_goes_on() {
    let test = TestDir::new("unsalted");
    let dir = test.join("wal");
    // A function, not a value: a `PersistOp` is not `Send` (`Value`).
    fn old_ops() -> Vec<PersistOp> {
        vec![PersistOp::Promise { ballot: Ballot::new(4, 2) }, PersistOp::Commit { commit: 0 }]
    }
    let mut body = Vec::new();
    paxoskv::storage::encode_ops(&old_ops(), &mut body);
    let mut segment = Vec::new();
    paxoskv::storage::encode_write(0, 1, &body, &mut segment);
    std::fs::create_dir_all(&dir).unwrap();
    let unsalted = dir.join("wal-00000000000000000000.log");
    write(&unsalted, &segment);
    run_local(move || async move {
        let old_ops = old_ops();
        let (wal, state, report) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, apply_all(&old_ops));
        assert_eq!(report.records, 2);
        write_batches(&wal, &[later_ops(2)]).await;
        drop(wal);
        assert_eq!(segments(&dir), vec![unsalted.clone()], "no new segment: the old one goes on");
        let (_wal, state, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        assert_eq!(state, apply_all(old_ops.iter().chain(&later_ops(2))));
    });
}

/// Two files claiming one segment index: recovery names both and stops.
#[test]
fn two_files_for_one_segment_stop_startup() {
    let test = TestDir::new("two_files");
    let dir = test.join("wal");
    let dir2 = dir.clone();
    run_local(move || async move {
        let (wal, _, _) = open(options(&dir, SEGMENT_BYTES_LARGE)).await;
        write_batches(&wal, &[later_ops(3)]).await;
    });
    let segment = segments(&dir2)[0].clone();
    std::fs::copy(&segment, dir2.join("wal-00000000000000000000.log")).unwrap();
    run_local(move || async move {
        match Wal::open(options(&dir2, SEGMENT_BYTES_LARGE)).await {
            Err(WalError::Corrupt { reason, .. }) => {
                assert!(reason.contains("are both segment 0"), "{reason}");
            }
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(_) => panic!("two files for segment 0 were accepted"),
        }
    });
}

#[test]
fn segment_names_give_their_epochs() {
    assert_eq!(segment_epoch("wal-00000000000000000003.log"), Some(3));
    assert_eq!(segment_epoch("wal-00000000000000000003-8000000000000abc.log"), Some(0x8000_0000_0000_0abc));
    for not_a_segment in [
        "wal-00000000000000000003-0000000000000abc.log", // a salt always has its top bit set
        "wal-00000000000000000003-8000000000000ab.log",  // 15 hex digits
        "wal-+3.log",
        "wal-3.log",                                     // not 20 digits: not a name the log writes
        "wal-00000000000000000003-8000000000000ABC.log", // upper-case hex, likewise
        "wal-3-zz00000000000000.log",
        "wal-.log",
        "snapshot-00000000000000000003.snap",
    ] {
        assert_eq!(segment_epoch(not_a_segment), None, "{not_a_segment}");
    }
}
