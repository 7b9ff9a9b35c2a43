//! Deleting what a compaction left behind (older segments and snapshots)
//! without holding up the records appended after it.
//!
//! Once a snapshot's checkpoint is durable, the files before it are dead
//! weight: recovery starts at the newest whole checkpoint and ignores them
//! (`recovery.rs`), so when they go changes nothing but disk space. The log
//! used to delete them inside the snapshot's write, and every record write
//! appended after the snapshot waited for the deletions. On a filesystem
//! mounted with online discard an unlink of a 64 MiB segment waits for the
//! device to discard its blocks: 15-58 ms per snapshot on the development
//! machine (issue 11), a stall of every commit on that node.
//!
//! So the deletions run here instead, one file at a time on the executor's
//! blocking thread pool, while the log writes on. A file already gone is
//! not an error (a later compaction may list a file an earlier one has
//! queued). Any other error is kept and fails the log at its next sync, as
//! a failed deletion inside the snapshot's write did.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use super::Notify;

#[derive(Default)]
pub(super) struct Removals {
    queue: RefCell<VecDeque<PathBuf>>,
    /// A task is deleting the queue's files.
    running: Cell<bool>,
    /// The first deletion that failed (other than for a missing file).
    error: RefCell<Option<String>>,
    idle: Notify,
}

impl Removals {
    /// Delete `paths` in the background, after any queued before.
    pub(super) fn schedule(self: &Rc<Self>, paths: Vec<PathBuf>) {
        {
            let mut queue = self.queue.borrow_mut();
            for path in paths {
                if !queue.contains(&path) {
                    queue.push_back(path);
                }
            }
        }
        if !self.queue.borrow().is_empty() && !self.running.replace(true) {
            glommio::spawn_local(self.clone().run()).detach();
        }
    }

    async fn run(self: Rc<Self>) {
        loop {
            let Some(path) = self.queue.borrow_mut().pop_front() else { break };
            let shown = path.display().to_string();
            let removed = glommio::executor().spawn_blocking(move || std::fs::remove_file(&path)).await;
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.error.borrow_mut().get_or_insert(format!("removing {shown} after a compaction: {e}"));
                }
            }
        }
        self.running.set(false);
        self.idle.notify_all();
    }

    /// The first failed deletion, once.
    pub(super) fn take_error(&self) -> Option<String> {
        self.error.borrow_mut().take()
    }

    /// Until every queued file is deleted (or failed to be).
    pub(super) async fn idle(&self) {
        while self.running.get() {
            self.idle.wait().await;
        }
    }
}
