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
//! So a *pulse* runs every [`PULSE`] while clients are busy, a timer that
//! stamps when the reactor last ran, and a client task steps aside (for a
//! timer, so that the queue drains and the reactor runs) once that stamp
//! is more than [`CLIENT_SLICE`] old. Under an ordinary load the queue
//! drains far more often than that, and no client ever waits here. With no
//! client work, the pulse parks: an idle node wakes no more often for it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::util::Notify;
use super::Shared;

/// How long the reactor may go unpolled before client tasks step aside:
/// well inside the heartbeat interval and election timeout (10 ms and
/// 150 ms by default). The peer links' readers keep the same slice
/// (`links::PEER_READ_SLICE`).
pub const CLIENT_SLICE: Duration = Duration::from_millis(5);
/// How often the pulse runs while clients are busy.
pub const PULSE: Duration = Duration::from_millis(1);
/// How long a client task steps aside.
const STEP_ASIDE: Duration = Duration::from_micros(10);

/// One executor's record of when its reactor last ran.
#[derive(Default)]
pub struct Turns {
    /// When the pulse last ran; `None` while it is parked.
    pulse_at: Cell<Option<Instant>>,
    /// Client work since the pulse last ran.
    busy: Cell<bool>,
    /// Wakes the parked pulse.
    wake: Notify,
}

impl Turns {
    /// Should a client task step aside at `now`?
    pub fn overdue(&self, now: Instant) -> bool {
        self.pulse_at.get().is_some_and(|at| now.saturating_duration_since(at) > CLIENT_SLICE)
    }

    /// A client task is about to work at `now`: wake the pulse if it is
    /// parked, and say whether the task should step aside first.
    fn client_works(&self, now: Instant) -> bool {
        self.busy.set(true);
        if self.pulse_at.get().is_none() {
            self.pulse_at.set(Some(now));
            self.wake.notify();
            return false;
        }
        self.overdue(now)
    }

    /// The pulse ran at `now`; false: no client worked since the last
    /// one, and the pulse parks.
    fn pulse(&self, now: Instant) -> bool {
        if self.busy.replace(false) {
            self.pulse_at.set(Some(now));
            true
        } else {
            self.pulse_at.set(None);
            false
        }
    }

    /// Called by a client task before it works: steps aside (timers) for
    /// as long as the reactor is overdue.
    pub async fn give_way(&self, now: Instant) {
        if !self.client_works(now) {
            return;
        }
        loop {
            glommio::timer::sleep(STEP_ASIDE).await;
            if !self.overdue(Instant::now()) {
                return;
            }
        }
    }
}

/// The pulse task: every [`PULSE`] while clients are busy, parked while
/// they are not.
pub async fn run_pulse(shared: Rc<Shared>) {
    let turns = &shared.turns;
    loop {
        turns.wake.wait().await;
        loop {
            glommio::timer::sleep(PULSE).await;
            if !turns.pulse(Instant::now()) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_steps_aside_once_the_pulse_is_a_slice_late() {
        let turns = Turns::default();
        let t0 = Instant::now();
        assert!(!turns.client_works(t0), "the first client work wakes the pulse");
        assert!(!turns.overdue(t0 + CLIENT_SLICE));
        assert!(turns.overdue(t0 + CLIENT_SLICE + Duration::from_micros(1)));
        assert!(turns.client_works(t0 + 2 * CLIENT_SLICE));
        assert!(turns.pulse(t0 + 2 * CLIENT_SLICE), "clients worked: the pulse goes on");
        assert!(!turns.client_works(t0 + 3 * CLIENT_SLICE));
        assert!(turns.client_works(t0 + 4 * CLIENT_SLICE));
    }

    #[test]
    fn the_pulse_parks_without_client_work_and_is_never_overdue_parked() {
        let turns = Turns::default();
        let t0 = Instant::now();
        assert!(!turns.overdue(t0 + 100 * CLIENT_SLICE), "parked from the start");
        turns.client_works(t0);
        assert!(turns.pulse(t0 + PULSE));
        assert!(!turns.pulse(t0 + 2 * PULSE), "no client worked since: it parks");
        assert!(!turns.overdue(t0 + 100 * CLIENT_SLICE), "a parked pulse is never late");
        // The next client work wakes it and starts its clock afresh.
        assert!(!turns.client_works(t0 + 100 * CLIENT_SLICE));
        assert!(!turns.overdue(t0 + 101 * CLIENT_SLICE));
        assert!(turns.overdue(t0 + 101 * CLIENT_SLICE + Duration::from_micros(1)));
    }
}
