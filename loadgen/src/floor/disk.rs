//! The floor's disks: each replica's file (a 4 KiB block overwritten in
//! place, O_DIRECT, then fdatasync), removed when the run ends, and the
//! disk thread of a replica with group commit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::thread_cpu;

/// The disk write each replica makes per op.
const BLOCK: usize = 4096;

pub(super) fn disk_path(dir: &Path, replica: usize) -> PathBuf {
    dir.join(format!("loadgen-floor-{}-{replica}.dat", std::process::id()))
}

/// The replicas' files go when the run ends, however it ends.
pub(super) struct RemoveOnDrop(pub(super) Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A replica's disk on a thread of its own, group commit: each sync covers
/// every batch handed over while the previous one ran, and then
/// `on_durable` hears the last batch it covered. If the disk or
/// `on_durable` fails, `on_failure` runs and the thread ends with the error.
pub(super) struct Syncer {
    batches: mpsc::Sender<u64>,
    thread: std::thread::JoinHandle<Result<Duration, String>>,
}

impl Syncer {
    pub(super) fn start<F, G>(mut disk: Disk, mut on_durable: F, on_failure: G) -> Syncer
    where
        F: FnMut(u64) -> Result<(), String> + Send + 'static,
        G: FnOnce() + Send + 'static,
    {
        let (batches, handed) = mpsc::channel::<u64>();
        let thread = std::thread::spawn(move || {
            let synced = (|| {
                while let Ok(mut last) = handed.recv() {
                    while let Ok(batch) = handed.try_recv() {
                        last = batch;
                    }
                    disk.write_and_sync()?;
                    on_durable(last)?;
                }
                Ok(())
            })();
            if synced.is_err() {
                on_failure();
            }
            synced.map(|()| thread_cpu())
        });
        Syncer { batches, thread }
    }

    /// Hand `batch` over; a thread that stopped (its disk failed) gives
    /// its error.
    pub(super) fn submit(self, batch: u64) -> Result<Syncer, String> {
        match self.batches.send(batch) {
            Ok(()) => Ok(self),
            Err(_) => Err(self.finish().err().unwrap_or_else(|| "a disk thread stopped early".into())),
        }
    }

    /// Sync what is left, stop the thread; its CPU time.
    pub(super) fn finish(self) -> Result<Duration, String> {
        drop(self.batches);
        self.thread.join().map_err(|_| "a disk thread panicked".to_string())?
    }
}

/// One replica's file: a 4 KiB block overwritten in place, O_DIRECT, each
/// write followed by fdatasync (the raw-disk reference of
/// `benches/record-goals.sh`).
pub(super) struct Disk {
    file: File,
    path: PathBuf,
    block: AlignedBlock,
}

impl Disk {
    pub(super) fn create(path: &Path) -> Result<Disk, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| format!("opening {} with O_DIRECT: {e}", path.display()))?;
        let mut disk = Disk { file, path: path.to_path_buf(), block: AlignedBlock::new() };
        disk.write_and_sync()?; // the block exists: later writes overwrite it
        Ok(disk)
    }

    pub(super) fn write_and_sync(&mut self) -> Result<(), String> {
        let block = self.block.bytes();
        block[0] = block[0].wrapping_add(1);
        self.file.write_all_at(block, 0).map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        self.file.sync_data().map_err(|e| format!("syncing {}: {e}", self.path.display()))
    }
}

/// A zeroed 4 KiB buffer aligned for O_DIRECT.
struct AlignedBlock(*mut u8);

impl AlignedBlock {
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(BLOCK, BLOCK) {
        Ok(layout) => layout,
        Err(_) => panic!("4 KiB aligned to 4 KiB is a valid layout"),
    };

    fn new() -> AlignedBlock {
        // SAFETY: a non-zero-sized layout; the null case is handled.
        let ptr = unsafe { std::alloc::alloc_zeroed(Self::LAYOUT) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(Self::LAYOUT);
        }
        AlignedBlock(ptr)
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `self.0` points to BLOCK bytes this value owns.
        unsafe { std::slice::from_raw_parts_mut(self.0, BLOCK) }
    }
}

impl Drop for AlignedBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0, Self::LAYOUT) }
    }
}

// SAFETY: the block is owned by one `Disk`, moved to one thread.
unsafe impl Send for AlignedBlock {}
