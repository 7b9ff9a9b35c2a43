//! The ticker's alarm: a thread of its own sleeps until the node's next
//! deadline and wakes the executor through a socket, so that the executor
//! itself holds no glommio timer.
//!
//! Why not `glommio::timer::sleep`: while any glommio timer is pending,
//! every time the executor goes to sleep it arms that timer on its ring
//! (one more `io_uring_enter`), and cancels it when it wakes. A node always
//! has a deadline (heartbeats, elections, leases), so a node paid that
//! call at every sleep, that is at every request on a lightly loaded node:
//! a woken node made 3 `io_uring_enter` calls before reading its socket
//! where a glommio executor without timers makes 2 (`results/README.md`,
//! section 27). A byte on a socket pair instead arrives as any peer's or
//! client's bytes do: one receive stays posted until it completes, and
//! costs the executor nothing at its passes.
//!
//! The thread parks until the deadline (`thread::park_timeout`). Moving the
//! deadline later costs an atomic store; moving it earlier also unparks the
//! thread, which parks again for the new deadline. A wake-up that finds the
//! deadline moved is harmless: the ticker ticks only at or after its
//! deadline, and between deadlines a tick does nothing.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;

use super::util::Notify;

/// `Deadline::at_us` when nothing is due (the thread parks until told).
const NONE: u64 = u64::MAX;
/// `Deadline::at_us` once the alarm is dropped: the thread ends.
const STOPPED: u64 = u64::MAX - 1;

struct Deadline {
    /// When to ring, in µs since `clock_start`; or [`NONE`], [`STOPPED`].
    at_us: AtomicU64,
}

/// The executor's side: set the deadline, wait for the ring.
pub struct Alarm {
    deadline: Arc<Deadline>,
    thread: Thread,
    /// Notified by the receiving task each time the thread rings.
    rang: Notify,
    /// The receiving task has ended (the socket failed, or the thread
    /// ended): the alarm rings no more, and the ticker must do without it.
    broken: Rc<Cell<bool>>,
}

impl Alarm {
    /// Start the alarm's thread (named `name`) for deadlines counted in µs
    /// since `clock_start`, and the task on this executor that receives its
    /// rings. Must run on a glommio executor.
    pub fn start(name: String, clock_start: Instant) -> std::io::Result<Alarm> {
        let (ours, theirs) = StdUnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let deadline = Arc::new(Deadline { at_us: AtomicU64::new(NONE) });
        let thread = thread::Builder::new()
            .name(name)
            .spawn({
                let deadline = deadline.clone();
                move || ring_at_deadlines(&deadline, clock_start, theirs)
            })?
            .thread()
            .clone();
        let rang = Notify::default();
        let broken = Rc::new(Cell::new(false));
        // SAFETY: the descriptor was just taken from `ours`, which gives it
        // up; the glommio stream is its only owner from here.
        let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(ours.into_raw_fd()) };
        glommio::spawn_local({
            let (rang, broken) = (rang.clone(), broken.clone());
            async move {
                let mut buf = [0u8; 64];
                // Ends when the thread does (its end of the pair closes),
                // or the socket fails.
                while let Ok(1..) = stream.read(&mut buf).await {
                    rang.notify();
                }
                broken.set(true);
                rang.notify();
            }
        })
        .detach();
        Ok(Alarm { deadline, thread, rang, broken })
    }

    /// The alarm rings no more (`broken`).
    pub fn is_broken(&self) -> bool {
        self.broken.get()
    }

    /// Ring at `at_us` (µs since the clock's start), instead of any
    /// deadline set before.
    pub fn set(&self, at_us: u64) {
        let at_us = at_us.min(STOPPED - 1);
        let before = self.deadline.at_us.swap(at_us, AcqRel);
        if at_us < before {
            self.thread.unpark();
        }
    }

    /// Until the thread rings (at the deadline, or stale: after a deadline
    /// that has since moved), or the alarm breaks.
    pub async fn rang(&self) {
        self.rang.wait().await;
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.deadline.at_us.store(STOPPED, Release);
        self.thread.unpark();
    }
}

/// The alarm's thread: park until the deadline, then write a byte and
/// forget the deadline. Ends when the alarm is dropped, or when a ring
/// finds the executor's end of the pair gone.
fn ring_at_deadlines(deadline: &Deadline, clock_start: Instant, mut out: StdUnixStream) {
    loop {
        let at_us = deadline.at_us.load(Acquire);
        match at_us {
            STOPPED => return,
            NONE => thread::park(),
            _ => {
                let now_us = clock_start.elapsed().as_micros() as u64;
                if now_us < at_us {
                    thread::park_timeout(Duration::from_micros(at_us - now_us));
                } else if deadline.at_us.compare_exchange(at_us, NONE, AcqRel, Acquire).is_ok()
                    && out.write_all(&[1]).is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The thread on its own, with the test as the executor's end.
    fn thread_alone() -> (Arc<Deadline>, Thread, thread::JoinHandle<()>, StdUnixStream, Instant) {
        let (ours, theirs) = StdUnixStream::pair().expect("pair");
        let deadline = Arc::new(Deadline { at_us: AtomicU64::new(NONE) });
        let start = Instant::now();
        let handle = thread::spawn({
            let deadline = deadline.clone();
            move || ring_at_deadlines(&deadline, start, theirs)
        });
        (deadline, handle.thread().clone(), handle, ours, start)
    }

    fn set(deadline: &Deadline, thread: &Thread, at_us: u64) {
        deadline.at_us.store(at_us, Release);
        thread.unpark();
    }

    #[test]
    fn the_thread_rings_once_per_deadline_never_before_it() {
        let (deadline, thread, handle, mut ours, start) = thread_alone();
        for step in 1..=5u64 {
            let at_us = start.elapsed().as_micros() as u64 + step * 1_000;
            set(&deadline, &thread, at_us);
            let mut byte = [0u8; 1];
            ours.read_exact(&mut byte).expect("a ring");
            assert!(start.elapsed() >= Duration::from_micros(at_us), "rang before its deadline");
            // Forgotten once rung: it rings again only for a new one.
            assert_eq!(deadline.at_us.load(Acquire), NONE);
        }
        set(&deadline, &thread, STOPPED);
        handle.join().expect("the thread ends");
        ours.set_nonblocking(true).expect("nonblocking");
        assert!(matches!(ours.read(&mut [0u8; 8]), Ok(0)), "no ring beyond one per deadline");
    }

    #[test]
    fn a_deadline_moved_earlier_rings_at_the_earlier_one() {
        let (deadline, thread, handle, mut ours, start) = thread_alone();
        set(&deadline, &thread, 3_600_000_000); // an hour away: the thread parks for it
        let at_us = start.elapsed().as_micros() as u64 + 1_000;
        set(&deadline, &thread, at_us);
        ours.read_exact(&mut [0u8; 1]).expect("a ring");
        assert!(start.elapsed() >= Duration::from_micros(at_us));
        set(&deadline, &thread, STOPPED);
        handle.join().expect("the thread ends");
    }

    #[test]
    fn the_thread_ends_when_the_executor_end_is_gone() {
        let (deadline, thread, handle, ours, _) = thread_alone();
        drop(ours);
        set(&deadline, &thread, 0);
        handle.join().expect("the thread ends");
    }

    #[test]
    fn an_alarm_whose_thread_ended_says_so_and_wakes_its_waiter() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let alarm = Alarm::start("alarm-test".into(), Instant::now()).expect("alarm");
                assert!(!alarm.is_broken());
                // The thread ends as it would if its socket failed.
                set(&alarm.deadline, &alarm.thread, STOPPED);
                alarm.rang().await;
                assert!(alarm.is_broken(), "woken without a ring, and not broken");
            })
            .expect("executor")
            .join()
            .expect("join");
    }

    #[test]
    fn the_ticker_side_wakes_on_the_ring() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let start = Instant::now();
                let alarm = Alarm::start("alarm-test".into(), start).expect("alarm");
                for step in 1..=3u64 {
                    let at_us = start.elapsed().as_micros() as u64 + step * 1_000;
                    alarm.set(at_us);
                    alarm.rang().await;
                    assert!(start.elapsed() >= Duration::from_micros(at_us), "woke before the deadline");
                }
            })
            .expect("executor")
            .join()
            .expect("join");
    }
}
