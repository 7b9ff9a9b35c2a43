//! What a snapshot costs the log, kept off the shard's executor and off
//! the other writes on its disk: the snapshot file, written on a blocking
//! thread in pieces that go to the disk one at a time, and the log the
//! snapshot compacted away, freed a share at a time. (The files a
//! compaction leaves behind are deleted in `removals.rs`.)

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::paxos::{Compacted, Slot};

/// Snapshot file: `[len u64 LE][crc32c u32 LE][slot u64 LE][data]`, crc
/// over slot and data. Written from `data` in place (no copy of it), on a
/// blocking thread: see `Wal::write_snapshot`.
pub(super) fn write_snapshot_file(
    path: &Path,
    slot: Slot,
    data: &[u8],
    mut write_back: bool,
) -> io::Result<std::fs::File> {
    use std::io::Write;
    let slot_bytes = slot.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&slot_bytes), data);
    let mut header = Vec::with_capacity(20);
    header.extend_from_slice(&((slot_bytes.len() + data.len()) as u64).to_le_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&slot_bytes);
    let mut file = std::fs::File::create(path)?;
    file.write_all(&header)?;
    let mut offset = header.len();
    for piece in data.chunks(SNAPSHOT_WRITE_BACK_BYTES) {
        file.write_all(piece)?;
        // Only pacing: a filesystem without it (or an error, which the
        // `fdatasync` after the whole file reports too) ends the pacing,
        // not the snapshot.
        if write_back && write_back_range(&file, offset, piece.len()).is_err() {
            write_back = false;
        }
        offset += piece.len();
    }
    Ok(file)
}

/// A snapshot file is written this much at a time, each piece on the disk
/// before the next is written ([`write_back_range`]), when the log is
/// durable. Written whole and then synced, a store's image (about 100 MB
/// at 100,000 keys of 1,000 bytes) went to the disk in one burst that
/// every node's WAL writes on that disk queued behind: the second of each
/// snapshot had a p99 of 30-40 ms, against 2-3 ms for the others. In
/// pieces of 1 MiB, a run's p99 fell from 33 to 17 ms (`results/README.md`
/// section 30, `write-back`), though a snapshot's second still has a p99
/// of 15-50 ms. Redis syncs its snapshot files every 4 MB as it writes
/// them for the same reason (`rdb-save-incremental-fsync`).
const SNAPSHOT_WRITE_BACK_BYTES: usize = 1 << 20;

/// Start writing `len` bytes of `file` from `offset` back to the disk and
/// wait until they are: the page cache then holds no more than one piece
/// of the file unwritten. Not a sync (metadata and the disk's cache are
/// left to the `fdatasync` after the whole file).
fn write_back_range(file: &std::fs::File, offset: usize, len: usize) -> io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
    // SAFETY: a plain system call on a descriptor `file` keeps open.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fdatasync` a snapshot file written by [`write_snapshot_file`], then
/// drop its pages from the page cache: it is read again only at recovery.
pub(super) fn sync_snapshot_file(file: &std::fs::File) -> io::Result<()> {
    file.sync_data()?;
    // SAFETY: a plain advisory call on a descriptor `file` keeps open.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    Ok(())
}

/// Slots of a compacted log freed per turn of [`free_in_background`]
/// (each slot a batch of commands).
const FREE_SLOTS_PER_TURN: usize = 256;
/// How long the freeing task steps aside between turns: long enough that
/// the executor's task queue drains and its reactor runs (the storage
/// layer's copy of `server::turns::step_aside`, which it does not depend on).
const FREE_GAP: std::time::Duration = std::time::Duration::from_micros(10);

/// Free the log a snapshot compacted away a share at a time, on this
/// executor (its values are `Rc`s, so no other thread may), with the
/// shard's other tasks in between: in one go it held the executor for
/// 3-12 ms per snapshot (issue 11).
pub(super) fn free_in_background(mut compacted: Compacted) {
    if !compacted.free_some(FREE_SLOTS_PER_TURN) {
        return;
    }
    glommio::spawn_local(async move {
        while compacted.free_some(FREE_SLOTS_PER_TURN) {
            glommio::timer::sleep(FREE_GAP).await;
        }
    })
    .detach();
}
