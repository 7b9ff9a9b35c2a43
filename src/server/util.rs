//! Small single-executor primitives: a wake-up flag and a one-shot reply cell.
//! Both are `!Send`: they live and die on one glommio executor.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Wakes one waiting task; wake-ups before the wait are not lost.
#[derive(Clone, Default)]
pub struct Notify {
    inner: Rc<NotifyInner>,
}

#[derive(Default)]
struct NotifyInner {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.inner.set.set(true);
        if let Some(waker) = self.inner.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Wait until `notify` was called since the last wait returned.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.inner.set.replace(false) {
                Poll::Ready(())
            } else {
                *self.inner.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Wakes every waiting task at once (a gate many readers wait on).
#[derive(Clone, Default)]
pub struct Broadcast {
    inner: Rc<BroadcastInner>,
}

#[derive(Default)]
struct BroadcastInner {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Broadcast {
    pub fn notify_all(&self) {
        if self.inner.wakers.borrow().is_empty() {
            return;
        }
        self.inner.generation.set(self.inner.generation.get() + 1);
        for waker in self.inner.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Wait for the next `notify_all`.
    pub async fn wait(&self) {
        let generation = self.inner.generation.get();
        poll_fn(|cx| {
            if self.inner.generation.get() != generation {
                return Poll::Ready(());
            }
            self.inner.wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A reply that will be filled in once; the connection waits on it.
pub struct ReplyCell<T> {
    inner: Rc<ReplyInner<T>>,
}

struct ReplyInner<T> {
    value: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
    /// Sampled for the latency anatomy: when the value was sent.
    sent_at: Cell<Option<std::time::Instant>>,
    stamp: bool,
}

/// The filling end. Dropping it unfilled is a bug in the caller's
/// bookkeeping; the waiting side then sees `None`.
pub struct ReplySender<T> {
    inner: Rc<ReplyInner<T>>,
}

pub fn reply_cell<T>() -> (ReplySender<T>, ReplyCell<T>) {
    reply_cell_stamped(false)
}

/// A reply cell that, with `stamp`, remembers when its value was sent.
pub fn reply_cell_stamped<T>(stamp: bool) -> (ReplySender<T>, ReplyCell<T>) {
    let inner =
        Rc::new(ReplyInner { value: RefCell::new(None), waker: RefCell::new(None), sent_at: Cell::new(None), stamp });
    (ReplySender { inner: inner.clone() }, ReplyCell { inner })
}

impl<T> ReplySender<T> {
    pub fn send(self, value: T) {
        if self.inner.stamp {
            self.inner.sent_at.set(Some(std::time::Instant::now()));
        }
        *self.inner.value.borrow_mut() = Some(value);
        if let Some(waker) = self.inner.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

impl<T> ReplyCell<T> {
    pub fn is_ready(&self) -> bool {
        self.inner.value.borrow().is_some()
    }

    /// The value, once sent. `None` if the sender was dropped unfilled.
    pub async fn recv(&self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(value) = self.inner.value.borrow_mut().take() {
                return Poll::Ready(Some(value));
            }
            if Rc::strong_count(&self.inner) == 1 {
                return Poll::Ready(None);
            }
            *self.inner.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    pub fn take(&self) -> Option<T> {
        self.inner.value.borrow_mut().take()
    }

    /// When the value was sent, if this cell was stamped.
    pub fn sent_at(&self) -> Option<std::time::Instant> {
        self.inner.sent_at.get()
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if let Some(waker) = self.inner.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Microseconds since the Unix epoch (session counters, trace times, the
/// wall clock `Shard::now` hands the node).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, for logs.
pub fn unix_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// An operator-readable log line on stderr: time, node, shard, message.
#[macro_export]
macro_rules! server_log {
    ($node:expr, $shard:expr, $($arg:tt)*) => {{
        let ms = $crate::server::util::unix_millis();
        eprintln!("{}.{:03} node={} shard={} {}", ms / 1000, ms % 1000, $node, $shard, format_args!($($arg)*));
    }};
}

/// At most `burst` log lines of a kind per `every`: a stranger who opens
/// peer connections as fast as it can would otherwise write a line for each
/// (stop 40's operator sweep). Lines past the burst are counted, and the
/// first line written after them says how many were left out.
pub struct LogLimiter {
    every: Duration,
    burst: u32,
    /// The current interval's start and the lines written in it.
    window: Cell<Option<(Instant, u32)>>,
    skipped: Cell<u64>,
}

impl LogLimiter {
    pub fn new(every: Duration, burst: u32) -> LogLimiter {
        LogLimiter { every, burst, window: Cell::new(None), skipped: Cell::new(0) }
    }

    /// Write a line at `now`? `Some(n)`: yes, after `n` left out since the
    /// last one written.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let (start, written) = match self.window.get() {
            Some((start, written)) if now.saturating_duration_since(start) < self.every => (start, written),
            _ => (now, 0),
        };
        if written >= self.burst {
            self.skipped.set(self.skipped.get() + 1);
            return None;
        }
        self.window.set(Some((start, written + 1)));
        Some(self.skipped.replace(0))
    }
}

#[cfg(test)]
mod log_limiter_tests {
    use std::time::{Duration, Instant};

    use super::LogLimiter;

    #[test]
    fn a_burst_per_interval_and_the_next_line_counts_the_ones_left_out() {
        let limiter = LogLimiter::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), Some(0), "the first at once");
        assert_eq!(limiter.admit(t0 + Duration::from_millis(1)), Some(0), "and the burst");
        for ms in [2, 10, 500, 999] {
            assert_eq!(limiter.admit(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(limiter.admit(t0 + Duration::from_millis(1_000)), Some(4), "four left out");
        assert_eq!(limiter.admit(t0 + Duration::from_millis(1_001)), Some(0));
        assert_eq!(limiter.admit(t0 + Duration::from_millis(1_002)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_millis(5_000)), Some(1));
    }
}
