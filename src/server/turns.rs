//! Client work gives way to the rest of the executor, on our own clock.
//!
//! A shard's ticker (heartbeats, elections, leases), its driver and its
//! peer links' tasks share one glommio executor and one task queue with
//! every client connection's tasks. The queue is first in, first out, and
//! glommio polls its reactor (fires timers, sees I/O) only once the queue
//! is empty or its 100 ms preemption timer runs out; we keep that timer
//! long (see `executors`). A flood of ready connections, 9,000 opened at
//! once or each sending a command at once, kept the queue full for 150 ms
//! and more: the ticker's timer did not fire, the followers' answers
//! waited unread behind the clients, and the leader stepped down or its
//! followers elected another, in 14 of 15 such floods (ad hoc; see
//! `benches/record-connection-flood.sh`).
//!
//! So a client task steps aside (for a timer, so that the queue drains and
//! the reactor runs) once the queue has not drained for [`CLIENT_SLICE`].
//! That the queue drained since a client last looked is read from
//! glommio's own count of scheduler passes, which goes up only when a pass
//! finds the queue empty (or preempted) and the reactor runs next: no timer
//! of our own, so an idle node wakes no more often for it. Under an
//! ordinary load the queue drains far more often than that, and no client
//! ever waits here.
//!
//! The flood also cost the kernel: `perf` put 23% of the flooded leader's
//! CPU in `io_poll_find`, walking 9,000 pending polls in 8 buckets on every
//! cancel, which `executors::RING_DEPTH` cuts to 35 a walk. Either change
//! alone left elections (the step-aside alone: 4 of 10 floods, ad hoc).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long the queue may go without draining before client tasks step
/// aside: well inside the heartbeat interval and election timeout (10 ms
/// and 150 ms by default). The peer links' readers keep the same slice
/// (`links::PEER_READ_SLICE`).
pub const CLIENT_SLICE: Duration = Duration::from_millis(5);
/// How long a task steps aside ([`step_aside`]).
const STEP_ASIDE: Duration = Duration::from_micros(10);

/// Let the executor's other tasks and its reactor run before going on:
/// a short timer, not a yield. glommio polls its reactor (new I/O, timers,
/// the ticker's alarm) only once its task queue drains, and a task that
/// yields stays in the queue. Client tasks overdue for a turn, a peer
/// link's reader working through a backlog and the driver between shares
/// of work all step aside so.
pub async fn step_aside() {
    glommio::timer::sleep(STEP_ASIDE).await;
}

/// One executor's record of when its task queue last drained.
#[derive(Default)]
pub struct Turns {
    /// When a client task last found that the queue had drained since the
    /// look before; `None` before the first look.
    drained_at: Cell<Option<Instant>>,
}

impl Turns {
    /// Should a client task step aside at `now`? `drained`: the queue
    /// drained since the last look.
    fn overdue(&self, now: Instant, drained: bool) -> bool {
        match self.drained_at.get() {
            Some(at) if !drained => now.saturating_duration_since(at) > CLIENT_SLICE,
            _ => {
                self.drained_at.set(Some(now));
                false
            }
        }
    }

    /// Called by a client task before it works: steps aside (timers) for
    /// as long as the queue has not drained for a slice.
    pub async fn give_way(&self, now: Instant) {
        if !self.overdue(now, queue_drained()) {
            return;
        }
        loop {
            step_aside().await;
            if !self.overdue(Instant::now(), queue_drained()) {
                return;
            }
        }
    }
}

/// Has this executor's queue drained since the last call? glommio counts a
/// scheduler pass each time it picks a task queue to run, and a pass that
/// finds none (the queue drained) is followed by a poll of the reactor;
/// with the executor's one task queue, a pass is counted only then or
/// after a preemption. Reading the count resets it (`executor_stats`
/// takes the counters), and nothing else in the server reads it.
fn queue_drained() -> bool {
    glommio::executor().executor_stats().scheduler_runs() > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_steps_aside_once_the_queue_has_not_drained_for_a_slice() {
        let turns = Turns::default();
        let t0 = Instant::now();
        assert!(!turns.overdue(t0, false), "the first look starts the clock");
        assert!(!turns.overdue(t0 + CLIENT_SLICE, false), "a slice is still the clients' turn");
        assert!(turns.overdue(t0 + CLIENT_SLICE + Duration::from_micros(1), false));
        assert!(turns.overdue(t0 + 2 * CLIENT_SLICE, false), "overdue until the queue drains");
        assert!(!turns.overdue(t0 + 3 * CLIENT_SLICE, true), "drained: the clock starts again");
        assert!(!turns.overdue(t0 + 4 * CLIENT_SLICE, false));
        assert!(turns.overdue(t0 + 4 * CLIENT_SLICE + Duration::from_micros(1), false));
    }

    #[test]
    fn a_queue_that_drained_since_the_last_look_is_never_overdue() {
        let turns = Turns::default();
        let t0 = Instant::now();
        turns.overdue(t0, false);
        // An idle hour later: the queue drained many times meanwhile.
        assert!(!turns.overdue(t0 + Duration::from_secs(3600), true));
    }
}
