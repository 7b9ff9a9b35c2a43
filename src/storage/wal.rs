//! The write-ahead log on a real disk: glommio DMA files (O_DIRECT, aligned
//! buffers, preallocated segments), group commit, snapshots and compaction.
//! One `Wal` per shard, used from that shard's glommio executor.
//!
//! Data directory layout (one directory per shard):
//!
//! ```text
//! wal-00000000000000000007-c3e1f00d12345678.log   segments, in order (index, salt); records never span two
//! snapshot-00000000000000004096.snap   the latest snapshot (covers slots < 4096)
//! ```
//!
//! Group commit: `append` encodes records into memory at once (in call
//! order); `sync(seq)` waits until a durable write covers `seq`. While one
//! write runs, the appends made meanwhile go out in one write beside it at
//! once, if it is a lone write of records (no zeros, roll or snapshot
//! beside it): at most `WRITES_IN_FLIGHT_MAX` (two) at a time, the later
//! starting at the next multiple of the device's block size so that the
//! two share no block, and reported durable only once the earlier one is too
//! (`write.rs` has the rule recovery reads them by). Otherwise they wait
//! for the next write, which covers them all. Before, a write arriving
//! during a group commit waited for it and then for its own: under load
//! the leader's local sync took about twice the WAL's sync (issue 11).
//!
//! With `Durability::Sync` segments are opened O_DSYNC, so a record write
//! completes only once it is on stable storage: one io_uring operation
//! instead of a write and an fdatasync (about 30 µs
//! less per commit on the development machine, issue 11). On a disk
//! without FUA writes the O_DSYNC write needs a cache flush, so the kernel
//! still runs it on an io_uring worker thread;
//! `WalOptions::inline_writes` makes record writes blocking `pwrite`s on
//! the shard's own thread instead.
//! Rolling a segment and writing a snapshot still fdatasync (preallocation
//! and the new file's metadata) and fsync the directory.
//!
//! Snapshots: a `PersistOp::Snapshot` is written where it was appended: the
//! records before it are written and synced, then the snapshot file (temp,
//! fsync, rename), then a new segment starting with a checkpoint (a
//! [`Record::SnapshotMarker`] and the state the snapshot does not cover, as
//! of that op), then the records appended after it. The snapshot file is
//! written (in pieces, each on the disk before the next) and synced on the
//! executor's blocking thread pool, and the log the snapshot compacted away
//! is freed a share at a time (`snapshot_io.rs`). Only once the
//! checkpoint is durable are older segments and snapshots deleted, in the
//! background (`removals.rs`): the records after the snapshot do not wait
//! for the deletions.
//!
//! Recovery starts at the newest *complete* checkpoint (a segment whose
//! first record is a marker, followed by the checkpoint's closing Commit)
//! and loads the snapshot that marker names, not merely the newest snapshot
//! file: a crash between the rename and the checkpoint leaves a snapshot
//! that no checkpoint refers to, while the older segments still hold every
//! record. Segments before that checkpoint are left-overs of a compaction
//! cut short and are not replayed (the next compaction deletes them).
//!
//! O_DIRECT writes whole aligned blocks, so the last, partly filled block
//! is rewritten (with the same prefix) by the next write. This relies on
//! the device writing an aligned sector atomically, as SQLite's
//! "powersafe overwrite" does; a torn rewrite of that block would show up
//! at recovery as a torn tail (if it was the last write) or as corruption.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::io::{Directory, DmaBuffer, DmaFile};

use super::checkpoint::encode_checkpoint;
use super::record::encode_ops;
use super::write::{write_header, WRITE_ALIGN_BYTES, WRITE_GAP_ALIGN_BYTES, WRITE_HEADER_BYTES};
use crate::paxos::{DurableState, PersistOp, Slot, SnapshotImage};

mod in_flight;
mod names;
mod recovery;
mod removals;
mod snapshot_io;

use in_flight::InFlightSyncs;
use names::{epoch, new_salt, parse_name, parse_segment_name, segment_name, snapshot_name, SNAPSHOT_TMP_NAME};
pub use names::{segment_epoch, SALT_MARK};
use removals::Removals;
use snapshot_io::{free_in_background, sync_snapshot_file, write_snapshot_file};

/// `Wal::zero_ahead`: how far past the data segments are kept zeroed, and
/// the least that is zeroed at once (but for a segment's last piece): the
/// zeros are topped up only once the lead fell by this much, so that their
/// metadata (extents converted from unwritten) is written once per this
/// many bytes of records, not at every group commit.
const ZERO_AHEAD_BYTES: u64 = 1 << 20;
const ZERO_CHUNK_BYTES: u64 = 256 << 10;
/// The largest record buffer kept for reuse between syncs (see
/// `Inner::spare_records`): above the usual group commit, so a burst's
/// buffer is freed rather than held.
const SPARE_RECORDS_BYTES_MAX: usize = 4 << 20;

/// When a reply may leave relative to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync before any Promise/Accepted reply leaves (the default).
    Sync,
    /// Never fsync: for measuring protocol cost only. Records are written
    /// into the page cache (a plain buffered write, about 2 µs, not an
    /// O_DIRECT write to the device), so a killed process loses nothing but
    /// a power loss or kernel crash can lose acknowledged writes. The
    /// server warns loudly at start.
    None,
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub dir: PathBuf,
    /// A new segment starts once the current one would exceed this.
    pub segment_bytes: u64,
    pub durability: Durability,
    /// Write zeros ahead of the records (`Wal::zero_ahead`; default on).
    /// Off only to measure what it saves.
    pub zero_ahead: bool,
    /// `Durability::Sync`: make each record write with a blocking system
    /// call on the calling thread (`wal_writes = "inline"`) instead of
    /// through io_uring (off, the default). On a disk without FUA writes
    /// the kernel runs an O_DSYNC write handed to io_uring on one of its
    /// worker threads, so each group commit costs two cross-thread
    /// wake-ups (to the worker and back to the executor); inline costs
    /// none, but the executor does nothing else while its disk syncs. The
    /// zero top-ups (`zero_ahead`, up to 1 MiB) stay on io_uring. Measured
    /// side by side in `results/README.md` (section 15).
    pub inline_writes: bool,
    /// Test-only crash injection: after this many device operations
    /// (writes and fsyncs), every further one fails as if power was cut.
    #[doc(hidden)]
    pub crash_after_device_ops: Option<u64>,
}

impl WalOptions {
    pub fn new(dir: impl Into<PathBuf>) -> WalOptions {
        WalOptions {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            durability: Durability::Sync,
            zero_ahead: true,
            inline_writes: false,
            crash_after_device_ops: None,
        }
    }
}

#[derive(Debug)]
pub enum WalError {
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An invalid record with valid records after it: damage, not a crash.
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A record that is intact but cannot be applied to what came before.
    Replay {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    Snapshot {
        file: PathBuf,
        reason: String,
    },
    /// The test hook cut the power.
    InjectedCrash,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WHAT_TO_DO: &str = "Do not delete the record: restore the file from a backup, or, if a majority of \
             the other replicas is healthy, move this replica's data directory aside and restart the node with an \
             empty one and --rejoin: it then relearns its promises and accepted values from a majority of its peers \
             before it votes again (starting it empty without --rejoin could lose acknowledged writes)";
        match self {
            WalError::Io { what, path, source } => write!(f, "{what} {}: {source}", path.display()),
            WalError::Corrupt { file, offset, reason } => write!(
                f,
                "WAL segment {} is corrupt at byte {offset}: {reason}. Valid records follow it, so this is not a \
                 write torn by a crash, and skipping it could forget a promise or an accepted value. {WHAT_TO_DO}.",
                file.display()
            ),
            WalError::Replay { file, offset, reason } => write!(
                f,
                "WAL segment {} has a record at byte {offset} that contradicts the records before it: {reason}. \
                 {WHAT_TO_DO}.",
                file.display()
            ),
            WalError::Snapshot { file, reason } => {
                write!(f, "snapshot {} is unreadable: {reason}. {WHAT_TO_DO}.", file.display())
            }
            WalError::InjectedCrash => write!(f, "injected crash (test hook)"),
        }
    }
}

impl std::error::Error for WalError {}

/// What recovery found, for the startup log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments replayed: from the newest whole checkpoint (or the first
    /// segment) on.
    pub segments: usize,
    pub records: usize,
    pub snapshot_slot: Option<Slot>,
    /// A torn last write that was truncated: file, offset, why.
    pub torn_tail: Option<(PathBuf, u64, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records written (checkpoint records not included).
    pub records: u64,
    /// Bytes of records written (checkpoints included, padding not).
    pub bytes: u64,
    /// Segment writes.
    pub writes: u64,
    /// Syncs: O_DSYNC record writes (`Durability::Sync`), fdatasyncs of
    /// segment and snapshot files, and directory fsyncs.
    pub fsyncs: u64,
    pub snapshots: u64,
    /// Bytes written with zeros ahead of the data (`Wal::zero_ahead`), and
    /// in how many writes.
    pub zeroed_bytes: u64,
    pub zero_writes: u64,
}

/// Wakes every waiter once per `notify_all` (single-threaded).
#[derive(Default)]
struct Notify {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    async fn wait(&self) {
        let generation = self.generation.get();
        poll_fn(|cx| {
            if self.generation.get() != generation {
                return Poll::Ready(());
            }
            self.wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

struct Segment {
    index: u64,
    /// Carried by every write in this segment (`write.rs`): its salt, or
    /// its index if it has none (a segment written before salts).
    epoch: u64,
    path: PathBuf,
    file: Rc<DmaFile>,
    /// Logical end of the data in this segment.
    end: u64,
    /// The bytes of the partly filled last block, `[aligned_down(end), end)`:
    /// rewritten in front of the next write (O_DIRECT writes whole blocks).
    tail: Vec<u8>,
    /// The sequence number of this segment's next write (`write.rs`).
    next_write_seq: u64,
    /// Bytes from here on may still be unwritten (preallocated) extents;
    /// below it every byte past `end` was written with zeros (`zero_ahead`).
    zeroed: u64,
    /// `Durability::None`: the same file opened for buffered writes, which
    /// record writes use instead of the DMA file.
    buffered: Option<Rc<std::fs::File>>,
}

/// `Durability::None` writes records through the page cache.
fn open_buffered(path: &Path, durability: Durability) -> Result<Option<Rc<std::fs::File>>, WalError> {
    match durability {
        Durability::Sync => Ok(None),
        Durability::None => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(|file| Some(Rc::new(file)))
            .map_err(io_err("opening segment for buffered writes", path)),
    }
}

/// A write laid out by `Wal::place`, to be sent by `Wal::issue`.
enum Placed {
    /// `Durability::None`: bytes for the page cache at `at`.
    Buffered { file: Rc<std::fs::File>, data: Vec<u8>, at: u64, path: PathBuf },
    /// Whole aligned blocks from `at`.
    Direct { file: Rc<DmaFile>, buffer: DmaBuffer, at: u64, path: PathBuf, inline: bool },
}

/// Zeros to write ahead of the records: `[start, stop)` of `file`.
struct ZeroRange {
    file: Rc<DmaFile>,
    path: PathBuf,
    start: u64,
    stop: u64,
}

/// Appended but not yet written, in append order.
enum Pending {
    /// A run of encoded records.
    Records { bytes: Vec<u8>, records: u64 },
    /// A snapshot, with the checkpoint that starts the segment after it:
    /// the state as of this op, so exactly the ops appended after it follow.
    Snapshot { image: SnapshotImage, checkpoint: Vec<u8> },
}

/// Why the log refuses all further syncs. After a failed write or fsync the
/// file's contents are unknown (and a failed fsync may have dropped dirty
/// pages), so carrying on could acknowledge records that are not on disk.
#[derive(Clone, Debug)]
enum Failure {
    InjectedCrash,
    Io(String),
}

struct Inner {
    options: WalOptions,
    segment: Segment,
    /// Appended work not yet written, in order.
    pending: Vec<Pending>,
    /// A written run's buffer, cleared, for the next run of records to
    /// encode into: encoding a group commit into a fresh `Vec` grew it by
    /// reallocation, onto fresh pages, at every sync (issue 11). At most
    /// [`SPARE_RECORDS_BYTES_MAX`] of capacity is kept.
    spare_records: Vec<u8>,
    /// Append calls so far / covered by a completed sync.
    /// Invariant: `synced <= appended`.
    appended: u64,
    synced: u64,
    /// Syncs whose writes are in flight, oldest first (at most
    /// `WRITES_IN_FLIGHT_MAX`).
    in_flight: InFlightSyncs,
    failure: Option<Failure>,
    /// What the appended records amount to (for checkpoints). Bounded by
    /// the snapshot interval, like the core's own log.
    state: DurableState,
    device_ops: u64,
    stats: WalStats,
}

impl Inner {
    /// May the next write go out beside those in flight? Only a run of
    /// records (or nothing), within this segment (no roll), with durable
    /// writes (`Durability::Sync`), at most `WRITES_IN_FLIGHT_MAX` at once,
    /// and only beside lone record writes: never beside a zero top-up (it
    /// writes where the next records go), a roll or a snapshot.
    fn may_write_beside(&self) -> bool {
        let records = match self.pending.as_slice() {
            [] => 0,
            [Pending::Records { bytes, .. }] => bytes.len(),
            _ => return false,
        };
        let s = &self.segment;
        let align = s.file.alignment();
        let start = s.end.next_multiple_of(align);
        self.options.durability == Durability::Sync
            && self.in_flight.room_beside()
            && (WRITE_ALIGN_BYTES as u64).is_multiple_of(align)
            && align.is_multiple_of(WRITE_GAP_ALIGN_BYTES as u64)
            && start + (WRITE_HEADER_BYTES + records) as u64 <= self.options.segment_bytes
    }
}

pub struct Wal {
    inner: RefCell<Inner>,
    notify: Notify,
    /// Files compactions left behind, deleted in the background.
    removals: Rc<Removals>,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { what, path: path.to_path_buf(), source }
}

fn glommio_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(glommio::GlommioError<()>) -> WalError + 'a {
    move |e| WalError::Io { what, path: path.to_path_buf(), source: io::Error::other(e.to_string()) }
}

/// Write `buffer` (whole aligned blocks) at `offset` of a segment: through
/// io_uring, or `inline` with blocking `pwrite`s on this thread. A short
/// write is an error either way (O_DIRECT writes whole blocks or fail).
async fn write_block_aligned(file: &DmaFile, buffer: DmaBuffer, offset: u64, inline: bool) -> io::Result<()> {
    let len = buffer.len();
    let written = if inline {
        loop {
            // SAFETY: `file` is borrowed for the call, so its descriptor
            // stays open; the buffer is valid for `len` bytes.
            let n = unsafe { libc::pwrite(file.as_raw_fd(), buffer.as_ptr().cast(), len, offset as libc::off_t) };
            if n >= 0 {
                break n as usize;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    } else {
        file.write_at(buffer, offset).await.map_err(|e| io::Error::other(e.to_string()))?
    };
    if written != len {
        // A short write is how a full filesystem shows itself (the errno
        // only comes with the next write): say so when it is.
        let free = free_bytes(file).map_or(String::new(), |free| {
            let full = if free < len as u64 { ": no space left on the device" } else { "" };
            format!("; the filesystem has {free} bytes free{full}")
        });
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("wrote {written} of {len} bytes{free}")));
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on `file`'s filesystem.
fn free_bytes(file: &DmaFile) -> Option<u64> {
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `file` is borrowed for the call, so its descriptor stays open;
    // fstatvfs fills the struct when it returns 0.
    let stat = unsafe { (libc::fstatvfs(file.as_raw_fd(), stat.as_mut_ptr()) == 0).then(|| stat.assume_init())? };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Created if missing; truncated only if `fresh` (a segment being opened
/// after recovery holds the records just recovered). Write-only like
/// `DmaFile::create`: a readable, empty file would make glommio's
/// polled-I/O probe succeed wrongly (see [`read_whole`]). O_DSYNC with
/// `Durability::Sync` (module doc).
async fn open_segment_for_writing(path: &Path, durability: Durability, fresh: bool) -> Result<DmaFile, WalError> {
    let flags = match durability {
        Durability::Sync => libc::O_DSYNC,
        Durability::None => 0,
    };
    glommio::io::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(fresh)
        .custom_flags(flags)
        .dma_open(path)
        .await
        .map_err(glommio_err("opening segment for writing", path))
}

impl Wal {
    /// Encode `ops` into the log buffer (not yet written). Returns the
    /// sequence number to pass to `sync`. Calls are ordered as made.
    pub fn append(&self, ops: &[PersistOp]) -> u64 {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        for op in ops {
            match op {
                PersistOp::Snapshot(image) => {
                    if inner.state.snapshot.as_ref().is_some_and(|s| s.slot >= image.slot) {
                        // Not newer than the snapshot we have: the state
                        // ignores it, and writing its file could replace
                        // the image of the same slot with other bytes.
                        continue;
                    }
                    free_in_background(inner.state.compact(image));
                    let mut checkpoint = Vec::new();
                    encode_checkpoint(&inner.state, image.slot, &mut checkpoint);
                    inner.pending.push(Pending::Snapshot { image: image.clone(), checkpoint });
                }
                op => {
                    inner.state.apply(op);
                    if !matches!(inner.pending.last(), Some(Pending::Records { .. })) {
                        let bytes = std::mem::take(&mut inner.spare_records);
                        inner.pending.push(Pending::Records { bytes, records: 0 });
                    }
                    let Some(Pending::Records { bytes, records }) = inner.pending.last_mut() else {
                        unreachable!("a records run was just ensured");
                    };
                    encode_ops(std::slice::from_ref(op), bytes);
                    *records += 1;
                }
            }
        }
        inner.appended += 1;
        inner.appended
    }

    /// Wait until everything appended up to `seq` is durable (per the
    /// durability mode). Concurrent callers share one write. A caller whose
    /// `seq` the write in flight does not cover issues the next write at
    /// once, beside it, if that write is a lone run of records
    /// (`Inner::may_write_beside`); it then starts at the next
    /// block boundary, and reports durable only once the
    /// write before it is too (`write.rs` says why recovery needs both).
    pub async fn sync(&self, seq: u64) -> Result<(), WalError> {
        if let Some(error) = self.removals.take_error() {
            self.inner.borrow_mut().failure.get_or_insert(Failure::Io(error));
        }
        loop {
            {
                let inner = self.inner.borrow();
                assert!(seq <= inner.appended, "sync({seq}): append has returned only up to {}", inner.appended);
                if let Some(failure) = &inner.failure {
                    return Err(failure_error(failure, &inner.options.dir));
                }
                if inner.synced >= seq {
                    return Ok(());
                }
                if !inner.in_flight.covers(seq) && (inner.in_flight.is_empty() || inner.may_write_beside()) {
                    break;
                }
            }
            self.notify.wait().await;
        }
        let (target, pending, beside) = {
            let mut inner = self.inner.borrow_mut();
            let target = inner.appended;
            let beside = !inner.in_flight.is_empty();
            inner.in_flight.start(target);
            (target, std::mem::take(&mut inner.pending), beside)
        };
        let mut in_flight = SyncInFlight { wal: self, done: false };
        let result = self.write_and_sync(pending, target, beside).await;
        in_flight.done = true;
        {
            let mut inner = self.inner.borrow_mut();
            match &result {
                Ok(()) => {
                    if let Some(synced) = inner.in_flight.complete(target) {
                        inner.synced = synced;
                    }
                }
                Err(WalError::InjectedCrash) => inner.failure = Some(Failure::InjectedCrash),
                Err(e) => inner.failure = Some(Failure::Io(e.to_string())),
            }
        }
        self.notify.notify_all();
        result?;
        // Written, but the write before it may still be in flight.
        loop {
            {
                let inner = self.inner.borrow();
                if let Some(failure) = &inner.failure {
                    return Err(failure_error(failure, &inner.options.dir));
                }
                if inner.synced >= seq {
                    return Ok(());
                }
            }
            self.notify.wait().await;
        }
    }

    /// Append calls whose records are durable (covered by completed syncs,
    /// in order): at least the `seq` of every `sync` that returned.
    pub fn synced(&self) -> u64 {
        self.inner.borrow().synced
    }

    pub fn stats(&self) -> WalStats {
        self.inner.borrow().stats
    }

    /// Test hook bookkeeping: may this device operation happen?
    fn device_op(&self) -> Result<(), WalError> {
        let mut inner = self.inner.borrow_mut();
        inner.device_ops += 1;
        match inner.options.crash_after_device_ops {
            Some(limit) if inner.device_ops > limit => Err(WalError::InjectedCrash),
            _ => Ok(()),
        }
    }

    /// Write `body` (whole record frames) as the segment's next write
    /// (`write.rs`): [`Wal::place`], then [`Wal::issue`].
    async fn write_tail(&self, body: &[u8]) -> Result<(), WalError> {
        let placed = self.place(body, false)?;
        self.issue(placed).await
    }

    /// Lay out `body` as the segment's next write and move the segment's
    /// end past it, at once, so that a write placed meanwhile goes after
    /// it. At the end, rewriting the partial last block, or, `beside` a
    /// write in flight, at the next block boundary (zeros
    /// between, which the write in flight put there or found there), so
    /// that the two share no block. With `Durability::Sync` the header and
    /// body are placed straight into the aligned buffer the device reads,
    /// after the block's old prefix: the body is copied once (a write of a
    /// large group commit is hundreds of KiB, and a staging copy of it cost
    /// an allocation of fresh pages and a copy per write, issue 11).
    fn place(&self, body: &[u8], beside: bool) -> Result<Placed, WalError> {
        self.device_op()?;
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let s = &mut inner.segment;
        let header = write_header(s.epoch, s.next_write_seq, body);
        let file = s.file.clone();
        let align = file.alignment();
        let (end, prefix) = match beside {
            true => (s.end.next_multiple_of(align), &[][..]),
            false => (s.end, &s.tail[..]),
        };
        let block_start = end / align * align;
        debug_assert_eq!(prefix.len() as u64, end - block_start);
        let data_len = header.len() + body.len();
        let new_end = end + data_len as u64;
        let new_block_start = new_end / align * align;
        let (placed, tail) = if let Some(buffered) = &s.buffered {
            // Durability::None: into the page cache.
            let mut data = Vec::with_capacity(data_len);
            data.extend_from_slice(&header);
            data.extend_from_slice(body);
            let tail = prefix.iter().chain(&data).skip((new_block_start - block_start) as usize).copied().collect();
            (Placed::Buffered { file: buffered.clone(), data, at: end, path: s.path.clone() }, tail)
        } else {
            let total = prefix.len() + data_len;
            let mut buffer = file.alloc_dma_buffer(total.div_ceil(align as usize) * align as usize);
            let bytes = buffer.as_bytes_mut();
            let (old, rest) = bytes.split_at_mut(prefix.len());
            old.copy_from_slice(prefix);
            let (head, rest) = rest.split_at_mut(header.len());
            head.copy_from_slice(&header);
            let (records, zeros) = rest.split_at_mut(body.len());
            records.copy_from_slice(body);
            zeros.fill(0);
            let tail = bytes[(new_block_start - block_start) as usize..total].to_vec();
            let inline = inner.options.inline_writes;
            (Placed::Direct { file, buffer, at: block_start, path: s.path.clone(), inline }, tail)
        };
        s.end = new_end;
        s.tail = tail;
        s.next_write_seq += 1;
        inner.stats.writes += 1;
        inner.stats.bytes += data_len as u64;
        Ok(placed)
    }

    /// Send a placed write to the disk.
    async fn issue(&self, placed: Placed) -> Result<(), WalError> {
        match placed {
            Placed::Buffered { file, data, at, path } => {
                std::os::unix::fs::FileExt::write_all_at(&*file, &data, at).map_err(io_err("writing", &path))
            }
            Placed::Direct { file, buffer, at, path, inline } => {
                write_block_aligned(&file, buffer, at, inline).await.map_err(io_err("writing", &path))
            }
        }
    }

    /// The zeros to write beside the write just placed, if the lead fell by
    /// a chunk. The segment is kept written with zeros up to
    /// `ZERO_AHEAD_BYTES` past the data: a record write into a preallocated but unwritten extent
    /// makes its sync write the extent's conversion too, one into written
    /// zeros is a plain overwrite (about half the sync time on the
    /// development machine's disk, issue 11). Zeros read as the end of the
    /// log exactly as unwritten extents do, so recovery is unchanged. Topped
    /// up in chunks of at least `ZERO_CHUNK_BYTES`, through the segment's
    /// O_DSYNC descriptor: each zero write is durable, data and conversion,
    /// before the next record write starts. (Through a descriptor without
    /// O_DSYNC it saved about 8% of the block requests per sync under load,
    /// `results/wal-requests/`, but on ext4 without a journal the
    /// conversion could then reach the disk by writeback long before a
    /// flush makes the zeros durable, exposing the blocks' old contents
    /// past the end of the log.) Runs beside a record write, above its end
    /// (the segment's end once that write is placed): no write goes out
    /// beside the two (`Inner::may_write_beside`), so none lands where the
    /// zeros go.
    fn zero_range(&self) -> Option<ZeroRange> {
        let inner = self.inner.borrow();
        if inner.options.durability == Durability::None || !inner.options.zero_ahead {
            return None;
        }
        let s = &inner.segment;
        let align = s.file.alignment();
        let data_end = s.end.div_ceil(align) * align;
        let start = s.zeroed.max(data_end);
        let limit = inner.options.segment_bytes / align * align;
        if start >= limit || start + ZERO_CHUNK_BYTES > data_end + ZERO_AHEAD_BYTES {
            return None;
        }
        let stop = (data_end + ZERO_AHEAD_BYTES).min(limit);
        Some(ZeroRange { file: s.file.clone(), path: s.path.clone(), start, stop })
    }

    async fn zero_ahead(&self, range: Option<ZeroRange>) -> Result<(), WalError> {
        let Some(ZeroRange { file, path, start, stop }) = range else { return Ok(()) };
        let mut buffer = file.alloc_dma_buffer((stop - start) as usize);
        buffer.as_bytes_mut().fill(0);
        self.device_op()?;
        // Through io_uring even with `inline_writes`: a top-up is up to
        // 1 MiB of O_DSYNC zeros, and the shard serves on while it runs.
        write_block_aligned(&file, buffer, start, false).await.map_err(io_err("zeroing", &path))?;
        let mut inner = self.inner.borrow_mut();
        inner.stats.zeroed_bytes += stop - start;
        inner.stats.zero_writes += 1;
        if Rc::ptr_eq(&inner.segment.file, &file) {
            inner.segment.zeroed = stop;
        }
        Ok(())
    }

    async fn fdatasync(&self, file: &DmaFile, path: &Path) -> Result<(), WalError> {
        if self.inner.borrow().options.durability == Durability::None {
            return Ok(());
        }
        self.device_op()?;
        file.fdatasync().await.map_err(glommio_err("syncing", path))?;
        self.inner.borrow_mut().stats.fsyncs += 1;
        Ok(())
    }

    /// fsync the data directory (new, renamed and removed names).
    async fn sync_directory(&self) -> Result<(), WalError> {
        let dir = {
            let inner = self.inner.borrow();
            if inner.options.durability == Durability::None {
                return Ok(());
            }
            inner.options.dir.clone()
        };
        self.device_op()?;
        fsync_directory(&dir).await?;
        self.inner.borrow_mut().stats.fsyncs += 1;
        Ok(())
    }

    /// Write the pending work in append order: each run of records synced
    /// before what follows it, each snapshot at its place. `beside`: a
    /// write is in flight (`sync`), and this work is one run of records
    /// that fits the segment after a gap (`Inner::may_write_beside`).
    async fn write_and_sync(&self, pending: Vec<Pending>, target: u64, beside: bool) -> Result<(), WalError> {
        let lone = pending.len() == 1;
        for work in pending {
            match work {
                Pending::Records { mut bytes, records } => {
                    let (end, limit) = {
                        let inner = self.inner.borrow();
                        (inner.segment.end, inner.options.segment_bytes)
                    };
                    if !beside && end > 0 && end + bytes.len() as u64 > limit {
                        self.roll_segment(Vec::new()).await?;
                    }
                    // The zeros go out beside the records, past them.
                    let placed = self.place(&bytes, beside)?;
                    let zeros = self.zero_range();
                    if lone && zeros.is_none() {
                        self.inner.borrow_mut().in_flight.mark_lone(target);
                    }
                    let (written, zeroed) = futures_lite::future::zip(self.issue(placed), self.zero_ahead(zeros)).await;
                    written?;
                    zeroed?;
                    // O_DSYNC: the write above was the sync (module doc).
                    let mut inner = self.inner.borrow_mut();
                    if inner.options.durability == Durability::Sync {
                        inner.stats.fsyncs += 1;
                    }
                    inner.stats.records += records;
                    let capacity = bytes.capacity();
                    if capacity <= SPARE_RECORDS_BYTES_MAX && capacity > inner.spare_records.capacity() {
                        bytes.clear();
                        inner.spare_records = bytes;
                    }
                }
                Pending::Snapshot { image, checkpoint } => self.write_snapshot(&image, checkpoint).await?,
            }
        }
        Ok(())
    }

    /// Start a new segment beginning with `first_bytes`, made durable
    /// along with the directory entry.
    async fn roll_segment(&self, first_bytes: Vec<u8>) -> Result<(), WalError> {
        let (index, dir, segment_bytes, durability) = {
            let inner = self.inner.borrow();
            (inner.segment.index + 1, inner.options.dir.clone(), inner.options.segment_bytes, inner.options.durability)
        };
        let salt = new_salt(&dir)?;
        let path = dir.join(segment_name(index, salt));
        let file = open_segment_for_writing(&path, durability, true).await?;
        let buffered = open_buffered(&path, durability)?;
        // Preallocation is a hint: a filesystem without it still works.
        let _ = file.pre_allocate(segment_bytes, false).await;
        let old = {
            let mut inner = self.inner.borrow_mut();
            let fresh = Segment {
                index,
                epoch: epoch(index, salt),
                path: path.clone(),
                file: Rc::new(file),
                end: 0,
                tail: Vec::new(),
                next_write_seq: 1,
                zeroed: 0,
                buffered,
            };
            std::mem::replace(&mut inner.segment, fresh)
        };
        if !first_bytes.is_empty() {
            self.write_tail(&first_bytes).await?;
        }
        let file = self.inner.borrow().segment.file.clone();
        self.fdatasync(&file, &path).await?;
        self.sync_directory().await?;
        if let Ok(old_file) = Rc::try_unwrap(old.file) {
            let _ = old_file.close().await;
        }
        Ok(())
    }

    /// Write the snapshot file atomically (temp, fsync, rename, fsync
    /// directory), start a segment with `checkpoint` (everything the
    /// snapshot does not cover), then delete older segments and snapshots.
    ///
    /// The file is written and synced on the executor's blocking thread
    /// pool, straight from the image's bytes: a store's image is tens of
    /// MiB. Encoding it on the executor (a checksum, a copy into one
    /// buffer and another into an aligned one) stopped the shard for
    /// 69-308 ms per snapshot of a 60-95 MB store (issue 11), every client
    /// and peer of it waiting.
    async fn write_snapshot(&self, image: &SnapshotImage, checkpoint: Vec<u8>) -> Result<(), WalError> {
        let (dir, durability) = {
            let inner = self.inner.borrow();
            (inner.options.dir.clone(), inner.options.durability)
        };
        let tmp = dir.join(SNAPSHOT_TMP_NAME);
        self.device_op()?;
        let (path, slot, data) = (tmp.clone(), image.slot, image.data.clone());
        let blocking = glommio::executor();
        let file = blocking
            .spawn_blocking(move || write_snapshot_file(&path, slot, &data, durability == Durability::Sync))
            .await
            .map_err(io_err("writing", &tmp))?;
        if durability == Durability::Sync {
            self.device_op()?;
            blocking.spawn_blocking(move || sync_snapshot_file(&file)).await.map_err(io_err("syncing", &tmp))?;
            self.inner.borrow_mut().stats.fsyncs += 1;
        }
        let final_path = dir.join(snapshot_name(image.slot));
        glommio::io::rename(&tmp, &final_path).await.map_err(glommio_err("renaming", &tmp))?;
        // Make the rename durable before any segment refers to the snapshot.
        self.sync_directory().await?;
        self.roll_segment(checkpoint).await?; // syncs the directory again, for the new segment

        // The checkpoint is durable: what came before it is deleted in the
        // background (`removals.rs`), not before the next records.
        let keep_segment = self.inner.borrow().segment.index;
        let mut stale = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let name = entry.map_err(io_err("listing", &dir))?.file_name();
            let name = name.to_string_lossy();
            if parse_segment_name(&name).is_some_and(|(i, _)| i < keep_segment)
                || parse_name(&name, "snapshot-", ".snap").is_some_and(|s| s < image.slot)
            {
                stale.push(dir.join(&*name));
            }
        }
        self.removals.schedule(stale);
        self.inner.borrow_mut().stats.snapshots += 1;
        Ok(())
    }

    /// Until the files earlier compactions left behind are deleted: they
    /// go in the background (`removals.rs`), while the log writes on.
    pub async fn removals_done(&self) {
        self.removals.idle().await;
    }
}

async fn fsync_directory(dir: &Path) -> Result<(), WalError> {
    let dir_handle = Directory::open(dir).await.map_err(glommio_err("opening", dir))?;
    dir_handle.sync().await.map_err(glommio_err("syncing", dir))?;
    dir_handle.close().await.map_err(glommio_err("closing", dir))
}

/// The error every sync returns once the log has failed.
fn failure_error(failure: &Failure, dir: &Path) -> WalError {
    match failure {
        Failure::InjectedCrash => WalError::InjectedCrash,
        Failure::Io(message) => WalError::Io {
            what: "refusing to sync: an earlier write or fsync failed (restart to recover) in",
            path: dir.to_path_buf(),
            source: io::Error::other(message.clone()),
        },
    }
}

/// Marks the log failed if a `sync` future is dropped while its write or
/// fsync is in flight: the pending records were taken and the file's tail
/// is unknown, so no later sync may report them durable, and the waiters
/// must not wait for a sync that will never finish.
struct SyncInFlight<'a> {
    wal: &'a Wal,
    done: bool,
}

impl Drop for SyncInFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = self.wal.inner.borrow_mut();
        inner.failure.get_or_insert(Failure::Io("a sync was cancelled while writing".into()));
        drop(inner);
        self.wal.notify.notify_all();
    }
}
