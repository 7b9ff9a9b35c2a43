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
//! not wake them either: the wake-ups that are lost are the ones glommio
//! routes through its latency ring, timers and other executors'
//! notifications alike. The test below joins many fresh pools built by
//! [`pool`]; with `.preempt_timer(5 ms)` added there it fails within a
//! few dozen rounds. Tasks that must not hold the executor for long give
//! way on their own clock instead (see `links::PEER_READ_SLICE`).

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

/// The builder of a node's executor pool; the server and the test below
/// both use it, so that the test checks what the server runs.
pub fn pool(placement: PoolPlacement) -> LocalExecutorPoolBuilder {
    LocalExecutorPoolBuilder::new(placement)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use glommio::channels::channel_mesh::{Full, MeshBuilder};

    use super::*;

    /// How long one round may take before the test calls it a hang: far
    /// beyond a normal join (well under a millisecond), far below the
    /// 20 s and more a lost wake-up cost.
    const ROUND_DEADLINE: Duration = Duration::from_secs(10);

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
                    let (mesh, done) = (mesh.clone(), done.clone());
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
