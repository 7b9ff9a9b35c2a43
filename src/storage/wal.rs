//! The write-ahead log on a real disk: glommio DMA files (O_DIRECT, aligned
//! buffers, preallocated segments), group commit, snapshots and compaction.
//! One `Wal` per shard, used from that shard's glommio executor.
//!
//! Data directory layout (one directory per shard):
//!
//! ```text
//! wal-00000000000000000007.log   segments, in order; records never span two
//! snapshot-00000000000000004096.snap   the latest snapshot (covers slots < 4096)
//! ```
//!
//! Group commit: `append` encodes records into memory at once (in call
//! order); `sync(seq)` waits until a single write + fdatasync covers
//! `seq`. While one fsync runs, every append made meanwhile waits for the
//! next one, which covers them all.
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
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::io::{Directory, DmaFile};

use super::checkpoint::encode_checkpoint;
use super::record::encode_ops;
use super::scan::{replay, scan_segment, ScanEnd};
use crate::paxos::{DurableState, PersistOp, SnapshotImage, Slot};

/// When a reply may leave relative to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync before any Promise/Accepted reply leaves (the default).
    Sync,
    /// Never fsync: for measuring protocol cost only. A power loss can
    /// lose acknowledged writes. The server warns loudly at start.
    None,
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub dir: PathBuf,
    /// A new segment starts once the current one would exceed this.
    pub segment_bytes: u64,
    pub durability: Durability,
    /// Test-only crash injection: after this many device operations
    /// (writes and fsyncs), every further one fails as if power was cut.
    #[doc(hidden)]
    pub crash_after_device_ops: Option<u64>,
}

impl WalOptions {
    pub fn new(dir: impl Into<PathBuf>) -> WalOptions {
        WalOptions { dir: dir.into(), segment_bytes: 64 << 20, durability: Durability::Sync, crash_after_device_ops: None }
    }
}

#[derive(Debug)]
pub enum WalError {
    Io { what: &'static str, path: PathBuf, source: io::Error },
    /// An invalid record with valid records after it: damage, not a crash.
    Corrupt { file: PathBuf, offset: u64, reason: String },
    /// A record that is intact but cannot be applied to what came before.
    Replay { file: PathBuf, offset: u64, reason: String },
    Snapshot { file: PathBuf, reason: String },
    /// The test hook cut the power.
    InjectedCrash,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WHAT_TO_DO: &str = "Do not delete the record: restore the file from a backup, or, if a majority of \
             the other replicas is healthy, move this replica's data directory aside and restart it empty so it \
             catches up from its peers";
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
    pub segments: usize,
    pub records: usize,
    pub snapshot_slot: Option<Slot>,
    /// A torn last write that was truncated: file, offset, why.
    pub torn_tail: Option<(PathBuf, u64, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    pub records: u64,
    pub bytes: u64,
    pub writes: u64,
    pub fsyncs: u64,
    pub snapshots: u64,
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
    path: PathBuf,
    file: Rc<DmaFile>,
    /// Logical end of the data in this segment.
    end: u64,
    /// The bytes of the partly filled last block, `[aligned_down(end), end)`:
    /// rewritten in front of the next write (O_DIRECT writes whole blocks).
    tail: Vec<u8>,
}

struct Inner {
    options: WalOptions,
    segment: Segment,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    pending_records: u64,
    /// A snapshot to write at the next sync (after the records before it).
    pending_snapshot: Option<SnapshotImage>,
    /// Append calls so far / covered by a completed sync.
    appended: u64,
    synced: u64,
    syncing: bool,
    failed: bool,
    /// What the appended records amount to (for checkpoints). Bounded by
    /// the snapshot interval, like the core's own log.
    state: DurableState,
    device_ops: u64,
    stats: WalStats,
}

pub struct Wal {
    inner: RefCell<Inner>,
    notify: Notify,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { what, path: path.to_path_buf(), source }
}

fn glommio_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(glommio::GlommioError<()>) -> WalError + 'a {
    move |e| WalError::Io { what, path: path.to_path_buf(), source: io::Error::other(e.to_string()) }
}

fn segment_name(index: u64) -> String {
    format!("wal-{index:020}.log")
}

fn snapshot_name(slot: Slot) -> String {
    format!("snapshot-{slot:020}.snap")
}

/// Parse `prefix{digits}suffix`.
fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}

/// Snapshot file: `[len u64 LE][crc32c u32 LE][slot u64 LE][data]`, crc over slot and data.
fn encode_snapshot_file(image: &SnapshotImage) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + image.data.len());
    body.extend_from_slice(&image.slot.to_le_bytes());
    body.extend_from_slice(&image.data);
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode_snapshot_file(bytes: &[u8]) -> Result<SnapshotImage, String> {
    let header = bytes.get(..12).ok_or("shorter than its header")?;
    let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let body = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(12..12usize.checked_add(len)?))
        .ok_or_else(|| format!("length {len} runs past the end of the file"))?;
    if body.len() < 8 || crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    let slot = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    Ok(SnapshotImage { slot, data: bytes::Bytes::copy_from_slice(&body[8..]) })
}

async fn read_whole(path: &Path) -> Result<Vec<u8>, WalError> {
    let file = DmaFile::open(path).await.map_err(glommio_err("opening", path))?;
    let size = file.file_size().await.map_err(glommio_err("sizing", path))?;
    let data = if size == 0 {
        Vec::new()
    } else {
        file.read_at(0, size as usize).await.map_err(glommio_err("reading", path))?.to_vec()
    };
    file.close().await.map_err(glommio_err("closing", path))?;
    Ok(data)
}

impl Wal {
    /// Open (creating if needed) the log in `options.dir` and recover the
    /// durable state: the latest snapshot, then every segment in order. A
    /// torn tail of the last segment is truncated (and reported); anything
    /// else invalid stops with an error that says where and what to do.
    pub async fn open(options: WalOptions) -> Result<(Wal, DurableState, RecoveryReport), WalError> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err("creating data directory", &dir))?;
        let mut segments = Vec::new();
        let mut snapshots = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let name = entry.map_err(io_err("listing", &dir))?.file_name();
            let name = name.to_string_lossy();
            if let Some(index) = parse_name(&name, "wal-", ".log") {
                segments.push(index);
            } else if let Some(slot) = parse_name(&name, "snapshot-", ".snap") {
                snapshots.push(slot);
            }
        }
        segments.sort_unstable();
        snapshots.sort_unstable();
        let mut report = RecoveryReport { segments: segments.len(), ..RecoveryReport::default() };
        let mut state = DurableState::default();
        if let Some(&slot) = snapshots.last() {
            let path = dir.join(snapshot_name(slot));
            let bytes = read_whole(&path).await?;
            let image = decode_snapshot_file(&bytes).map_err(|reason| WalError::Snapshot { file: path, reason })?;
            report.snapshot_slot = Some(image.slot);
            state.apply(&PersistOp::Snapshot(image));
        }
        let mut last: Option<(u64, u64, Vec<u8>)> = None;
        for (i, &index) in segments.iter().enumerate() {
            let path = dir.join(segment_name(index));
            let bytes = read_whole(&path).await?;
            let scan = scan_segment(&bytes);
            let is_last = i + 1 == segments.len();
            let end = match scan.end {
                ScanEnd::Clean => scan.valid_len as u64,
                ScanEnd::TornTail { offset, reason } if is_last => {
                    report.torn_tail = Some((path.clone(), offset as u64, reason));
                    offset as u64
                }
                ScanEnd::TornTail { offset, reason } | ScanEnd::Corrupt { offset, reason } => {
                    return Err(WalError::Corrupt { file: path, offset: offset as u64, reason });
                }
            };
            report.records += scan.records.len();
            if let Err(e) = replay(&mut state, &scan.records) {
                let offset = scan.offsets.get(e.index).copied().unwrap_or(0) as u64;
                return Err(WalError::Replay { file: path, offset, reason: e.error.to_string() });
            }
            if is_last {
                last = Some((index, end, bytes));
            }
        }
        let (index, end, bytes) = last.unwrap_or((0, 0, Vec::new()));
        let path = dir.join(segment_name(index));
        let file = DmaFile::open(&path).await;
        let file = match file {
            Ok(file) => file,
            Err(_) => DmaFile::create(&path).await.map_err(glommio_err("creating segment", &path))?,
        };
        let align = file.alignment();
        let tail = bytes.get((end / align * align) as usize..end as usize).unwrap_or(&[]).to_vec();
        let segment = Segment { index, path, file: Rc::new(file), end, tail };
        let wal = Wal {
            inner: RefCell::new(Inner {
                options,
                segment,
                pending: Vec::new(),
                pending_records: 0,
                pending_snapshot: None,
                appended: 0,
                synced: 0,
                syncing: false,
                failed: false,
                state: state.clone(),
                device_ops: 0,
                stats: WalStats::default(),
            }),
            notify: Notify::default(),
        };
        if report.torn_tail.is_some() || bytes.len() as u64 > end {
            // Overwrite the torn bytes with zeros so that a later scan does
            // not find garbage after the records written from now on.
            wal.scrub_tail(&bytes[..end as usize], bytes.len() as u64).await?;
        }
        if segments.is_empty() {
            let dir_handle = Directory::open(&dir).await.map_err(glommio_err("opening", &dir))?;
            dir_handle.sync().await.map_err(glommio_err("syncing", &dir))?;
        }
        Ok((wal, state, report))
    }

    /// Encode `ops` into the log buffer (not yet written). Returns the
    /// sequence number to pass to `sync`. Calls are ordered as made.
    pub fn append(&self, ops: &[PersistOp]) -> u64 {
        let mut inner = self.inner.borrow_mut();
        for op in ops {
            inner.state.apply(op);
            match op {
                PersistOp::Snapshot(image) => inner.pending_snapshot = Some(image.clone()),
                op => {
                    encode_ops(std::slice::from_ref(op), &mut inner.pending);
                    inner.pending_records += 1;
                }
            }
        }
        inner.appended += 1;
        inner.appended
    }

    /// Wait until everything appended up to `seq` is durable (per the
    /// durability mode). Concurrent callers share one write and fsync.
    pub async fn sync(&self, seq: u64) -> Result<(), WalError> {
        loop {
            {
                let inner = self.inner.borrow();
                if inner.failed {
                    return Err(WalError::InjectedCrash);
                }
                if inner.synced >= seq {
                    return Ok(());
                }
                if !inner.syncing {
                    break;
                }
            }
            self.notify.wait().await;
        }
        let (target, bytes, records, snapshot) = {
            let mut inner = self.inner.borrow_mut();
            inner.syncing = true;
            let bytes = std::mem::take(&mut inner.pending);
            let records = std::mem::take(&mut inner.pending_records);
            (inner.appended, bytes, records, inner.pending_snapshot.take())
        };
        let result = self.write_and_sync(&bytes, records, snapshot).await;
        let mut inner = self.inner.borrow_mut();
        inner.syncing = false;
        match &result {
            Ok(()) => inner.synced = target,
            Err(_) => inner.failed = true,
        }
        drop(inner);
        self.notify.notify_all();
        result
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

    /// Write `data` at the segment's end, rewriting the partial last block.
    async fn write_tail(&self, data: &[u8]) -> Result<(), WalError> {
        let (file, path, end, prefix) = {
            let inner = self.inner.borrow();
            let s = &inner.segment;
            (s.file.clone(), s.path.clone(), s.end, s.tail.clone())
        };
        let align = file.alignment();
        let block_start = end / align * align;
        debug_assert_eq!(prefix.len() as u64, end - block_start);
        let total = prefix.len() + data.len();
        let padded = total.div_ceil(align as usize) * align as usize;
        let mut buffer = file.alloc_dma_buffer(padded);
        let bytes = buffer.as_bytes_mut();
        bytes.fill(0);
        bytes[..prefix.len()].copy_from_slice(&prefix);
        bytes[prefix.len()..total].copy_from_slice(data);
        let new_end = end + data.len() as u64;
        let new_block_start = new_end / align * align;
        let tail = bytes[(new_block_start - block_start) as usize..total].to_vec();
        self.device_op()?;
        file.write_at(buffer, block_start).await.map_err(glommio_err("writing", &path))?;
        let mut inner = self.inner.borrow_mut();
        inner.segment.end = new_end;
        inner.segment.tail = tail;
        inner.stats.writes += 1;
        inner.stats.bytes += data.len() as u64;
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

    async fn write_and_sync(&self, bytes: &[u8], records: u64, snapshot: Option<SnapshotImage>) -> Result<(), WalError> {
        if !bytes.is_empty() {
            let (end, limit) = {
                let inner = self.inner.borrow();
                (inner.segment.end, inner.options.segment_bytes)
            };
            if end > 0 && end + bytes.len() as u64 > limit {
                self.roll_segment(Vec::new()).await?;
            }
            self.write_tail(bytes).await?;
            let (file, path) = {
                let inner = self.inner.borrow();
                (inner.segment.file.clone(), inner.segment.path.clone())
            };
            self.fdatasync(&file, &path).await?;
            self.inner.borrow_mut().stats.records += records;
        }
        if let Some(image) = snapshot {
            self.write_snapshot(&image).await?;
        }
        Ok(())
    }

    /// Start a new segment beginning with `first_bytes`, made durable
    /// along with the directory entry.
    async fn roll_segment(&self, first_bytes: Vec<u8>) -> Result<(), WalError> {
        let (index, dir, segment_bytes) = {
            let inner = self.inner.borrow();
            (inner.segment.index + 1, inner.options.dir.clone(), inner.options.segment_bytes)
        };
        let path = dir.join(segment_name(index));
        let file = DmaFile::create(&path).await.map_err(glommio_err("creating segment", &path))?;
        // Preallocation is a hint: a filesystem without it still works.
        let _ = file.pre_allocate(segment_bytes, false).await;
        let old = {
            let mut inner = self.inner.borrow_mut();
            let fresh = Segment { index, path: path.clone(), file: Rc::new(file), end: 0, tail: Vec::new() };
            std::mem::replace(&mut inner.segment, fresh)
        };
        if !first_bytes.is_empty() {
            self.write_tail(&first_bytes).await?;
        }
        let file = self.inner.borrow().segment.file.clone();
        self.fdatasync(&file, &path).await?;
        let dir_handle = Directory::open(&dir).await.map_err(glommio_err("opening", &dir))?;
        self.device_op()?;
        dir_handle.sync().await.map_err(glommio_err("syncing", &dir))?;
        if let Ok(old_file) = Rc::try_unwrap(old.file) {
            let _ = old_file.close().await;
        }
        Ok(())
    }

    /// Write the snapshot file atomically (temp, fsync, rename, fsync
    /// directory), start a segment with a checkpoint of everything the
    /// snapshot does not cover, then delete older segments and snapshots.
    async fn write_snapshot(&self, image: &SnapshotImage) -> Result<(), WalError> {
        let dir = self.inner.borrow().options.dir.clone();
        let tmp = dir.join("snapshot.tmp");
        let file = DmaFile::create(&tmp).await.map_err(glommio_err("creating", &tmp))?;
        let encoded = encode_snapshot_file(image);
        let align = file.alignment() as usize;
        let mut buffer = file.alloc_dma_buffer(encoded.len().div_ceil(align) * align);
        buffer.as_bytes_mut().fill(0);
        buffer.as_bytes_mut()[..encoded.len()].copy_from_slice(&encoded);
        self.device_op()?;
        file.write_at(buffer, 0).await.map_err(glommio_err("writing", &tmp))?;
        self.fdatasync(&file, &tmp).await?;
        file.close().await.map_err(glommio_err("closing", &tmp))?;
        let final_path = dir.join(snapshot_name(image.slot));
        glommio::io::rename(&tmp, &final_path).await.map_err(glommio_err("renaming", &tmp))?;
        let mut checkpoint = Vec::new();
        encode_checkpoint(&self.inner.borrow().state, image.slot, &mut checkpoint);
        self.roll_segment(checkpoint).await?; // also syncs the directory (rename included)
        let keep_segment = self.inner.borrow().segment.index;
        for entry in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let name = entry.map_err(io_err("listing", &dir))?.file_name();
            let name = name.to_string_lossy();
            let stale = parse_name(&name, "wal-", ".log").is_some_and(|i| i < keep_segment)
                || parse_name(&name, "snapshot-", ".snap").is_some_and(|s| s < image.slot);
            if stale {
                let path = dir.join(&*name);
                glommio::io::remove(&path).await.map_err(glommio_err("removing", &path))?;
            }
        }
        self.inner.borrow_mut().stats.snapshots += 1;
        Ok(())
    }

    /// After recovery: zero the bytes after the valid end of the last
    /// segment (a torn write), so the next scan sees clean padding.
    async fn scrub_tail(&self, valid: &[u8], old_len: u64) -> Result<(), WalError> {
        let (file, path, end) = {
            let inner = self.inner.borrow();
            (inner.segment.file.clone(), inner.segment.path.clone(), inner.segment.end)
        };
        debug_assert_eq!(valid.len() as u64, end);
        let align = file.alignment();
        let block_start = end / align * align;
        let span = (old_len - block_start).div_ceil(align) * align;
        let mut buffer = file.alloc_dma_buffer(span as usize);
        let bytes = buffer.as_bytes_mut();
        bytes.fill(0);
        bytes[..(end - block_start) as usize].copy_from_slice(&valid[block_start as usize..]);
        file.write_at(buffer, block_start).await.map_err(glommio_err("writing", &path))?;
        file.fdatasync().await.map_err(glommio_err("syncing", &path))?;
        Ok(())
    }
}
