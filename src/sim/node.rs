//! One simulated server: the real [`Node`] (core, store and request table,
//! `src/node`) with the simulator's stand-ins for what a shell owns: a
//! local clock that drifts, a disk that keeps only what was fsynced, and
//! an executor that can stall.
//!
//! A stall is an executor that stops running while time goes on (a long
//! apply, a synchronous snapshot, a descheduled process): messages, client
//! requests and fsync completions that arrive meanwhile queue up in
//! `backlog`, timer ticks are skipped, and at the end of the stall the node
//! works through the backlog in arrival order and only then ticks, as a
//! real executor does once the shell hands it everything that is ready.

use std::collections::VecDeque;

use bytes::Bytes;

use super::client::SimWaiter;
use super::disk::SimDisk;
use crate::kv::Command;
use crate::net::peer::PeerFrame;
use crate::node::{Node, Request, Waiter};
use crate::paxos::{NodeId, Replica, Slot};

/// The true time at the start of every run (Unix ms, late 2025): node
/// clocks are offsets from it, and clients write absolute expiries near it.
pub const WALL_EPOCH_MS: u64 = 1_764_000_000_000;

/// The true time at real time `now_us` of a run.
pub fn true_wall_ms(now_us: u64) -> u64 {
    WALL_EPOCH_MS + now_us / 1000
}

/// An input waiting for the node (while it is stalled).
#[derive(Debug)]
pub enum Input {
    Deliver { from: NodeId, frame: PeerFrame },
    Client { waiter: SimWaiter, command: Command, timeout_us: u64 },
    Synced { token: u64 },
    SnapshotDone { slot: Slot, data: Bytes },
    LinkUp { peer: NodeId },
    LinkDown { peer: NodeId },
}

pub struct SimNode {
    pub id: NodeId,
    /// `None` while crashed.
    pub node: Option<Node<SimWaiter>>,
    /// Bumped at each crash; events of an older epoch are ignored.
    pub epoch: u64,
    /// What survives a crash: the fsynced WAL bytes, snapshot and marker.
    pub disk: SimDisk,
    /// The local clock runs at `1 + drift_permille / 1000` of real time.
    pub drift_permille: i64,
    /// Real time when the node (re)started: its local clock's zero.
    pub booted_at_us: u64,
    /// How far the node's wall clock is from the true time (ms): clocks
    /// agree on rate within the drift bound, never on offset.
    pub wall_offset_ms: i64,
    /// A `Drain` event is queued for this node.
    pub drain_scheduled: bool,
    /// Real time the current stall ends.
    pub stalled_until_us: Option<u64>,
    pub backlog: VecDeque<Input>,
    /// The last session counter handed out (grows across restarts).
    pub session_counter: u64,
}

impl SimNode {
    pub fn new(id: NodeId, drift_permille: i64) -> SimNode {
        SimNode {
            id,
            node: None,
            epoch: 0,
            disk: SimDisk::new(0x5A17_0000 ^ u64::from(id)),
            drift_permille,
            booted_at_us: 0,
            wall_offset_ms: 0,
            drain_scheduled: false,
            stalled_until_us: None,
            backlog: VecDeque::new(),
            session_counter: 0,
        }
    }

    pub fn replica(&self) -> Option<&Replica> {
        self.node.as_ref().map(|n| n.replica())
    }

    pub fn is_stalled(&self) -> bool {
        self.stalled_until_us.is_some()
    }

    /// The node's local time (µs since it booted) at real time `now_us`.
    pub fn local_us(&self, now_us: u64) -> u64 {
        let elapsed = now_us.saturating_sub(self.booted_at_us) as i128;
        (elapsed * (1000 + self.drift_permille as i128) / 1000) as u64
    }

    /// The node's wall clock (Unix ms) at real time `now_us`: the true
    /// time ([`WALL_EPOCH_MS`] at the start of the run) run at the node's
    /// rate, plus its offset. It keeps running across restarts.
    pub fn wall_ms(&self, now_us: u64) -> u64 {
        let elapsed_ms = now_us as i128 * (1000 + self.drift_permille as i128) / 1_000_000;
        (WALL_EPOCH_MS as i128 + self.wall_offset_ms as i128 + elapsed_ms) as u64
    }

    /// Set the node's clocks to real time `now_us`; its local time.
    pub fn clock(&mut self, now_us: u64) -> u64 {
        let wall = self.wall_ms(now_us);
        if let Some(node) = self.node.as_mut() {
            node.set_wall_clock(wall);
        }
        self.local_us(now_us)
    }

    /// The real time at which the local clock reads `local_us`.
    pub fn real_us(&self, local_us: u64) -> u64 {
        self.booted_at_us + (local_us as i128 * 1000 / (1000 + self.drift_permille as i128)) as u64
    }

    /// Real microseconds between two of the node's ticks.
    pub fn tick_interval_us(&self, tick_us: u64) -> u64 {
        (tick_us as i128 * 1000 / (1000 + self.drift_permille as i128)) as u64
    }

    /// A session counter above every earlier one (`ClientSession`).
    pub fn next_session_counter(&mut self, now_us: u64) -> u64 {
        self.session_counter = (self.session_counter + 1).max(now_us);
        self.session_counter
    }

    /// Hand one input to the live node at real time `now_us`.
    pub fn apply(&mut self, now_us: u64, input: Input) {
        let local = self.clock(now_us);
        let Some(node) = self.node.as_mut() else { return };
        match input {
            Input::Deliver { from, frame } => node.on_peer_frame(local, from, frame),
            Input::Client { waiter, command, timeout_us } => {
                let deadline = local + timeout_us;
                node.submit(local, Request::new(command, Waiter::Client(waiter), deadline));
            }
            Input::Synced { token } => node.on_synced(local, token),
            Input::SnapshotDone { slot, data } => node.on_snapshot_ready(local, slot, data),
            Input::LinkUp { peer } => node.on_link_up(peer),
            Input::LinkDown { peer } => node.on_link_down(local, peer),
        }
    }
}
