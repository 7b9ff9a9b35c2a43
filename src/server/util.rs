//! Small single-executor primitives: a wake-up flag and a one-shot reply cell.
//! Both are `!Send`: they live and die on one glommio executor.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

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
