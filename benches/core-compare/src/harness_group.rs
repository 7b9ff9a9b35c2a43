//! The floor under every row: no consensus library, only what the harness
//! itself does per command in the other groups. Each entry's commands are
//! made (and folded into the proposer's digest), shared as one batch, and
//! folded into each of the three replicas' digests, as the others apply
//! them. A library's own cost per command is its row minus this one.

use std::sync::Arc;

use bytes::Bytes;

use crate::workload::{Commands, Digest};
use crate::{Group, Library, Shape};

pub struct HarnessGroup {
    shape: Shape,
    applied: [Digest; 3],
    commands: Commands,
}

impl HarnessGroup {
    pub fn new(shape: Shape) -> HarnessGroup {
        HarnessGroup { shape, applied: [Digest::default(); 3], commands: Commands::new() }
    }
}

impl Group for HarnessGroup {
    fn library(&self) -> Library {
        Library::Harness
    }

    fn round(&mut self) {
        let batches: Vec<Arc<Vec<Bytes>>> = (0..self.shape.entries_per_round)
            .map(|_| Arc::new(self.commands.next_batch(self.shape.commands_per_entry)))
            .collect();
        for applied in &mut self.applied {
            for batch in &batches {
                applied.add_batch(batch);
            }
        }
    }

    fn settle(&mut self) {}

    fn digests(&self) -> (Digest, [Digest; 3]) {
        (self.commands.proposed(), self.applied)
    }

    fn leader_applied(&self) -> u64 {
        self.applied[0].commands
    }
}
