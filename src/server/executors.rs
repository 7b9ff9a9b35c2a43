//! The node's executors: one glommio executor per shard, joined by a
//! channel mesh.
//!
//! The pool keeps glommio's default preemption timer (100 ms). With a
//! short one (we ran 5 ms, so that a peer link's reader working through a
//! backlog would give way sooner), an executor could sleep through its
//! wake-ups: on this 2-core machine about one start in five of a 3-node,
//! 2-shard cluster had a node whose executors slept in `io_uring_enter`
//! inside `MeshBuilder::join` for 20 s and more, once over 60 s, with
//! their client port already listening, so clients connected and waited
//! (that hung the server tests in CI). A 1 ms timer beside the join did
//! not always wake them either (2 of 6 runs of the test below still hung,
//! an executor asleep in `io_uring_enter` with the timer due), so it is
//! not only other executors' notifications that get lost; we did not find
//! which of glommio's paths loses them (its timers and its foreign wakes
//! both reach a sleeping executor through its latency ring). With the
//! default timer, 4,500 rounds of the test and 150 simultaneous starts of
//! a 3-node 2-shard cluster all went through. The test joins many fresh
//! pools built by [`pool`]; with `.preempt_timer(5 ms)` added there it
//! fails within a few dozen rounds. Tasks that must not hold the executor
//! for long give way on their own clock instead (see
//! `links::PEER_READ_SLICE`).

use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use super::metrics::{Monitor, ShardStatus};
use crate::paxos::NodeId;
use crate::server_log;

/// How long a node's executors may take to start before the node says
/// which have not, and then how often it says so again.
const START_WATCH_FIRST: Duration = Duration::from_secs(10);
const START_WATCH_AGAIN: Duration = Duration::from_secs(30);

/// How far an executor has come in its start (`ShardStatus::start_phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPhase {
    /// Waiting for the node's other executors in `MeshBuilder::join`.
    JoiningMesh = 0,
    /// Reading its shard's snapshot and WAL back.
    Recovering = 1,
    /// Accepting clients.
    Serving = 2,
}

impl StartPhase {
    pub fn record(self, status: &ShardStatus) {
        status.start_phase.store(self as u8, Relaxed);
    }

    fn of(status: &ShardStatus) -> StartPhase {
        match status.start_phase.load(Relaxed) {
            0 => StartPhase::JoiningMesh,
            1 => StartPhase::Recovering,
            _ => StartPhase::Serving,
        }
    }

    fn doing(self) -> &'static str {
        match self {
            StartPhase::JoiningMesh => "joining the executor mesh",
            StartPhase::Recovering => "recovering its snapshot and WAL",
            StartPhase::Serving => "serving",
        }
    }
}

/// Executor `index` has finished starting and serves; true for the last of
/// the node's executors to get there (it says the node is ready).
pub fn now_serving(monitor: &Monitor, index: usize) -> bool {
    StartPhase::Serving.record(&monitor.status[index]);
    monitor.executors_serving.fetch_add(1, AcqRel) + 1 == monitor.status.len()
}

/// What the node logs while some executor has not finished starting, or
/// None once all serve.
fn start_report(monitor: &Monitor, waited: Duration) -> Option<String> {
    let behind: Vec<String> = (monitor.status.iter().enumerate())
        .map(|(shard, status)| (shard, StartPhase::of(status)))
        .filter(|(_, phase)| *phase != StartPhase::Serving)
        .map(|(shard, phase)| format!("shard {shard} is {}", phase.doing()))
        .collect();
    (!behind.is_empty()).then(|| {
        format!(
            "still starting after {} s: {} (clients that connect meanwhile wait)",
            waited.as_secs(),
            behind.join(", ")
        )
    })
}

/// Watch the node's start from a thread of its own: while some executor
/// has not finished starting, say which and where it is, after
/// [`START_WATCH_FIRST`] and then every [`START_WATCH_AGAIN`]. A long WAL
/// recovery is expected; a node stuck in its start (as once in the mesh
/// join, see the module's note) then says so in its log.
pub fn watch_start(node: NodeId, monitor: Arc<Monitor>) {
    let watch = move || {
        let mut waited = START_WATCH_FIRST;
        std::thread::sleep(START_WATCH_FIRST);
        while let Some(report) = start_report(&monitor, waited) {
            server_log!(node, "-", "{report}");
            std::thread::sleep(START_WATCH_AGAIN);
            waited += START_WATCH_AGAIN;
        }
    };
    if let Err(e) = std::thread::Builder::new().name("start-watch".into()).spawn(watch) {
        server_log!(node, "-", "could not start the start-up watch: {e}");
    }
}

/// Entries in each of an executor's io_uring rings (glommio's default:
/// 128). The kernel sizes a ring's table of pending polls by it: 8 buckets
/// at 128, 256 (its most) from 4,096. Every connection keeps a poll
/// pending, and every timeout glommio cancels (it re-arms one as its
/// timers change, hundreds of times a second when busy) first walks a
/// bucket of that table: with 9,000 connections open, 1,100 polls a walk
/// at 128, 35 at 4,096 (`turns` says what that cost).
pub const RING_DEPTH: usize = 4096;

/// The builder of a node's executor pool, configured: the server builds
/// its pool with this and adds no setting of its own, and the test below
/// joins pools built by it.
pub fn pool(placement: PoolPlacement) -> LocalExecutorPoolBuilder {
    LocalExecutorPoolBuilder::new(placement).ring_depth(RING_DEPTH)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use glommio::channels::channel_mesh::{Full, MeshBuilder};

    use super::*;

    /// How long one round may take before the test calls it a hang: far
    /// beyond a normal join (well under a millisecond), far below the
    /// 20 s and more a lost wake-up cost.
    const ROUND_DEADLINE: Duration = Duration::from_secs(10);

    /// The watch names each executor that is not serving yet, and where it
    /// is; it is quiet once all serve.
    #[test]
    fn the_start_report_names_the_executors_still_starting() {
        let monitor = Monitor::new(1, 3);
        StartPhase::Recovering.record(&monitor.status[1]);
        StartPhase::Serving.record(&monitor.status[2]);
        assert_eq!(
            start_report(&monitor, Duration::from_secs(10)).as_deref(),
            Some(
                "still starting after 10 s: shard 0 is joining the executor mesh, shard 1 is recovering its \
                 snapshot and WAL (clients that connect meanwhile wait)"
            )
        );
        for status in &monitor.status {
            StartPhase::Serving.record(status);
        }
        assert_eq!(start_report(&monitor, Duration::from_secs(40)), None);
    }

    /// Many fresh pools of two executors join a mesh, as a node's
    /// executors do at start; every executor of every round must come out
    /// of the join.
    #[test]
    fn every_executor_of_many_fresh_pools_joins_the_mesh() {
        const EXECUTORS: usize = 2;
        for round in 0..300 {
            let (done, joined) = mpsc::channel();
            let mesh: MeshBuilder<u64, Full> = MeshBuilder::full(EXECUTORS, 16);
            let handles = pool(PoolPlacement::Unbound(EXECUTORS))
                .on_all_shards(move || {
                    // Moved, not cloned, on the executor's thread (see `run`).
                    async move {
                        let (senders, _receivers) = mesh.join().await.expect("joining the mesh");
                        let _ = done.send(senders.peer_id());
                    }
                })
                .expect("starting executors");
            for _ in 0..EXECUTORS {
                if joined.recv_timeout(ROUND_DEADLINE).is_err() {
                    panic!("round {round}: an executor did not finish joining the mesh within {ROUND_DEADLINE:?}");
                }
            }
            handles.join_all();
        }
    }
}
