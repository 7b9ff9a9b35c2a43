//! The requests a connection has sent and not yet resolved, in send order
//! (RESP replies come back in that order), and the one rule for latency.

use std::collections::VecDeque;

use crate::workload::OpKind;

/// Open loop measures from the intended send time, closed loop from the
/// actual one (BENCHMARKING.md; STYLE.md item 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Open,
    Closed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Closed => "closed",
        }
    }

    /// The instant a request's latency is measured from.
    pub fn latency_origin_ns(self, intended_ns: u64, sent_ns: u64) -> u64 {
        match self {
            Mode::Open => intended_ns,
            Mode::Closed => sent_ns,
        }
    }
}

/// The latency recorded for a request: from its origin (see
/// [`Mode::latency_origin_ns`]) to `now_ns` (its reply, its timeout, or the
/// end of the run), in whole microseconds rounded up so that no request is
/// recorded as taking zero time.
pub fn latency_us(origin_ns: u64, now_ns: u64) -> u64 {
    now_ns.saturating_sub(origin_ns).div_ceil(1000)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Nanoseconds since the start of the run.
    pub origin_ns: u64,
    pub op: OpKind,
    /// Intended (open) or sent (closed) inside the measured window.
    pub measured: bool,
    /// Its entry in the executor's `History` (`--check`), or
    /// `history::UNRECORDED`.
    pub history: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull;

#[derive(Debug, PartialEq, Eq)]
pub enum Popped {
    /// Resolve this request with the reply.
    Live(InFlight),
    /// The reply of a request already recorded as a timeout: not measured
    /// again (its history entry still learns the outcome).
    AlreadyTimedOut(InFlight),
}

/// Requests awaiting replies, oldest first.
///
/// Invariant: `timed_out <= items.len()`; the first `timed_out` items have
/// been recorded as timeouts and only wait for their reply to be skipped.
/// Origins never decrease along the queue, so the requests that time out
/// first are always at the front of the live part.
#[derive(Debug)]
pub struct InFlightQueue {
    items: VecDeque<InFlight>,
    timed_out: usize,
    /// At most this many items, timed out or not (`--max-outstanding`).
    capacity: usize,
}

impl InFlightQueue {
    pub fn new(capacity: usize) -> InFlightQueue {
        assert!(capacity > 0);
        InFlightQueue { items: VecDeque::new(), timed_out: 0, capacity }
    }

    pub fn push(&mut self, item: InFlight) -> Result<(), QueueFull> {
        if self.items.len() >= self.capacity {
            return Err(QueueFull);
        }
        debug_assert!(self.items.back().is_none_or(|last| last.origin_ns <= item.origin_ns));
        self.items.push_back(item);
        Ok(())
    }

    /// The request the next reply answers, or `None` for an unsolicited reply.
    pub fn pop_reply(&mut self) -> Option<Popped> {
        let item = self.items.pop_front()?;
        if self.timed_out > 0 {
            self.timed_out -= 1;
            return Some(Popped::AlreadyTimedOut(item));
        }
        Some(Popped::Live(item))
    }

    /// Sets the history entry of the request pushed last.
    pub fn set_last_history(&mut self, history: u32) {
        if let Some(last) = self.items.back_mut() {
            last.history = history;
        }
    }

    /// Marks as timed out every live request older than `timeout_ns` at
    /// `now_ns`, passing each to `on_timeout`.
    pub fn expire(&mut self, now_ns: u64, timeout_ns: u64, mut on_timeout: impl FnMut(&InFlight)) {
        while let Some(item) = self.items.get(self.timed_out) {
            if now_ns.saturating_sub(item.origin_ns) < timeout_ns {
                break;
            }
            on_timeout(item);
            self.timed_out += 1;
        }
    }

    /// Marks every live request as timed out (the run is over).
    pub fn expire_all(&mut self, on_timeout: impl FnMut(&InFlight)) {
        self.expire(u64::MAX, 0, on_timeout);
    }

    /// Empties the queue after the connection broke, passing each live
    /// request to `on_lost`.
    pub fn lose_all(&mut self, on_lost: impl FnMut(&InFlight)) {
        self.items.iter().skip(self.timed_out).for_each(on_lost);
        self.items.clear();
        self.timed_out = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Requests neither answered nor timed out.
    pub fn unresolved(&self) -> usize {
        self.items.len() - self.timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(origin_ns: u64) -> InFlight {
        InFlight { origin_ns, op: OpKind::Get, measured: true, history: crate::history::UNRECORDED }
    }

    #[test]
    fn latency_is_reply_minus_origin_rounded_up_to_microseconds() {
        assert_eq!(latency_us(1_000, 1_000), 0);
        assert_eq!(latency_us(1_000, 1_001), 1);
        assert_eq!(latency_us(1_000, 2_000), 1);
        assert_eq!(latency_us(1_000, 2_001), 2);
        assert_eq!(latency_us(5_000, 1_000), 0, "a clock that went backwards is not negative");
    }

    /// The sender was blocked (say, a full socket) from 100 us to 250 us:
    /// three requests intended at 0, 100 and 200 us all went out at 250 us
    /// and were answered at 300, 310 and 320 us. Open loop charges the
    /// blocked time to the system under test; closed loop does not.
    #[test]
    fn a_request_sent_late_is_charged_from_its_intended_time() {
        let intended_us = [0u64, 100, 200];
        let sent_us = [0u64, 250, 250];
        let reply_us = [300u64, 310, 320];
        let recorded = |mode: Mode| -> Vec<u64> {
            (0..3)
                .map(|i| {
                    latency_us(mode.latency_origin_ns(intended_us[i] * 1000, sent_us[i] * 1000), reply_us[i] * 1000)
                })
                .collect()
        };
        assert_eq!(recorded(Mode::Open), vec![300, 210, 120]);
        assert_eq!(recorded(Mode::Closed), vec![300, 60, 70]);
    }

    #[test]
    fn the_queue_refuses_requests_beyond_its_capacity() {
        let mut queue = InFlightQueue::new(3);
        for t in 0..3 {
            assert_eq!(queue.push(item(t)), Ok(()));
        }
        assert_eq!(queue.push(item(3)), Err(QueueFull));
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop_reply(), Some(Popped::Live(item(0))));
        assert_eq!(queue.push(item(4)), Ok(()));
        // Timed-out requests still hold their place until their reply comes.
        queue.expire_all(|_| {});
        assert_eq!(queue.unresolved(), 0);
        assert_eq!(queue.push(item(5)), Err(QueueFull));
    }

    #[test]
    fn timeouts_take_the_oldest_first_and_their_late_replies_are_skipped() {
        let mut queue = InFlightQueue::new(10);
        for t in [0u64, 10, 20, 30] {
            queue.push(item(t)).unwrap();
        }
        let mut expired = Vec::new();
        queue.expire(25, 10, |i| expired.push(i.origin_ns));
        assert_eq!(expired, vec![0, 10]);
        assert_eq!(queue.unresolved(), 2);
        queue.expire(25, 10, |i| expired.push(i.origin_ns));
        assert_eq!(expired, vec![0, 10], "nothing expires twice");
        assert_eq!(queue.pop_reply(), Some(Popped::AlreadyTimedOut(item(0))));
        assert_eq!(queue.pop_reply(), Some(Popped::AlreadyTimedOut(item(10))));
        assert_eq!(queue.pop_reply(), Some(Popped::Live(item(20))));
        let mut lost = Vec::new();
        queue.lose_all(|i| lost.push(i.origin_ns));
        assert_eq!(lost, vec![30]);
        assert_eq!(queue.pop_reply(), None);
    }
}
