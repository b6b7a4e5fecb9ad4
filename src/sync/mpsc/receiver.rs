//! [`Receiver`] and [`RecvFuture`]: the receiving half (see the ownership rules of
//! [`mpsc`](super)).

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::super::blocking;
use super::super::waiters::{lock, store_waker, wake_all};
use super::{Chan, RecvTimeoutError, TryRecvError};

/// The receiving half. Also an [`Iterator`] that blocks on each value and ends when every sender
/// is gone and the buffer is empty.
///
/// Dropping it closes the channel: buffered values are dropped, blocked senders get their values
/// back in [`SendError`](super::SendError).
///
/// # Examples
///
/// ```
/// let (tx, rx) = aplex::sync::mpsc::channel(4);
/// std::thread::spawn(move || {
///     for word in ["a", "b", "c"] {
///         tx.send_blocking(word).unwrap();
///     }
/// });
/// assert_eq!(rx.collect::<String>(), "abc");
/// ```
pub struct Receiver<T> {
    chan: Arc<Mutex<Chan<T>>>,
}

impl<T> Receiver<T> {
    pub(super) fn new(chan: Arc<Mutex<Chan<T>>>) -> Receiver<T> {
        Receiver { chan }
    }

    /// Receives the next value, waiting for one.
    ///
    /// Gives `None` once every sender is gone (or the channel was closed) and the buffer is
    /// empty. Dropping the future before it completes loses no value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::unbounded();
    /// std::thread::spawn(move || tx.try_send(9).unwrap());
    /// aplex::block_on(async {
    ///     assert_eq!(rx.recv().await, Some(9));
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    pub fn recv(&mut self) -> RecvFuture<'_, T> {
        RecvFuture { rx: self }
    }

    /// Polls for the next value: the core of [`recv`](Receiver::recv), for adapting the
    /// receiver into another crate's stream type without a dependency, e.g.
    /// `futures::stream::poll_fn(move |cx| rx.poll_next(cx))`.
    ///
    /// `Ready(None)` once every sender is gone (or the channel was closed) and the buffer is
    /// empty. While `Pending`, the waker of the last call is stored and woken by the next send.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let (tx, mut rx) = aplex::sync::mpsc::unbounded();
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(aplex::block_on(poll_fn(|cx| rx.poll_next(cx))), Some(1));
    /// assert_eq!(aplex::block_on(poll_fn(|cx| rx.poll_next(cx))), None);
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut chan = lock(&self.chan);
        match chan.try_pop() {
            Ok((value, woken)) => {
                drop(chan);
                if let Some(waker) = woken {
                    waker.wake();
                }
                Poll::Ready(Some(value))
            }
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                let stale = store_waker(&mut chan.recv_waker, cx.waker());
                drop(chan);
                drop(stale);
                Poll::Pending
            }
        }
    }

    /// The same as [`poll_next`](Receiver::poll_next), under tokio's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let (tx, mut rx) = aplex::sync::mpsc::channel(1);
    /// tx.try_send("x").unwrap();
    /// assert_eq!(aplex::block_on(poll_fn(|cx| rx.poll_recv(cx))), Some("x"));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.poll_next(cx)
    }

    /// Waits for at least one value, then moves up to `limit` buffered values to the end of
    /// `buf` at once (one lock for the batch); returns how many it moved.
    ///
    /// Returns 0 only when `limit` is 0 (at once), or when every sender is gone (or the channel
    /// was closed) and the buffer is empty. Dropping the future before it completes loses no
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::unbounded();
    /// for i in 0..5 {
    ///     tx.try_send(i).unwrap();
    /// }
    /// drop(tx);
    /// let mut buf = Vec::new();
    /// aplex::block_on(async {
    ///     assert_eq!(rx.recv_many(&mut buf, 3).await, 3);
    ///     assert_eq!(rx.recv_many(&mut buf, 3).await, 2);
    ///     assert_eq!(rx.recv_many(&mut buf, 3).await, 0); // closed and drained
    /// });
    /// assert_eq!(buf, [0, 1, 2, 3, 4]);
    /// ```
    pub async fn recv_many(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
        std::future::poll_fn(|cx| self.poll_recv_many(cx, buf, limit)).await
    }

    /// The core of [`recv_many`](Receiver::recv_many).
    fn poll_recv_many(&mut self, cx: &Context<'_>, buf: &mut Vec<T>, limit: usize) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        let mut chan = lock(&self.chan);
        let mut woken = Vec::new();
        let mut moved = 0;
        while moved < limit {
            match chan.try_pop() {
                Ok((value, waker)) => {
                    buf.push(value);
                    moved += 1;
                    woken.extend(waker);
                }
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) if moved > 0 => break,
                Err(TryRecvError::Empty) => {
                    let stale = store_waker(&mut chan.recv_waker, cx.waker());
                    drop(chan);
                    drop(stale);
                    return Poll::Pending;
                }
            }
        }
        drop(chan);
        wake_all(woken);
        Poll::Ready(moved)
    }

    /// Receives the next value, blocking the current thread while the channel is empty.
    ///
    /// Gives `None` once every sender is gone and the buffer is empty.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::channel(1);
    /// std::thread::spawn(move || tx.send_blocking("x").unwrap());
    /// assert_eq!(rx.recv_blocking(), Some("x"));
    /// assert_eq!(rx.recv_blocking(), None);
    /// ```
    pub fn recv_blocking(&mut self) -> Option<T> {
        blocking::wait(self.recv())
    }

    /// Receives the next value, blocking for at most `timeout`.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if no value came in time, [`RecvTimeoutError::Closed`] if
    /// every sender is gone and the buffer is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use aplex::sync::mpsc::{self, RecvTimeoutError};
    ///
    /// let (tx, mut rx) = mpsc::unbounded::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// drop(tx);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Closed));
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A timeout too large to represent means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        match blocking::wait_deadline(&mut self.recv(), deadline) {
            Some(Some(value)) => Ok(value),
            Some(None) => Err(RecvTimeoutError::Closed),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Receives a value if one is buffered, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if no value is buffered but senders remain;
    /// [`TryRecvError::Closed`] if every sender is gone (or the channel was closed) and the
    /// buffer is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let result = lock(&self.chan).try_pop();
        let (value, woken) = result?;
        if let Some(waker) = woken {
            waker.wake();
        }
        Ok(value)
    }

    /// Closes the channel without dropping the receiver: sends and reserves fail from now on
    /// (blocked senders get their values back), while values already buffered can still be
    /// received. A [`Permit`](super::Permit) reserved before the close can still send, as in
    /// tokio: the receiver reports the end (`None`) only after every such permit has sent or
    /// been dropped, so receiving until `None` after a close loses no value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.recv_blocking(), Some(1));
    /// assert_eq!(rx.recv_blocking(), None);
    /// ```
    pub fn close(&mut self) {
        let mut chan = lock(&self.chan);
        chan.closed = true;
        let wakers = chan.blocked.wakers();
        drop(chan);
        wake_all(wakers);
    }

    /// The number of values buffered (not counting values of senders still waiting for room).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = aplex::sync::mpsc::unbounded();
    /// tx.try_send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.chan).queue.len()
    }

    /// Whether no value is buffered.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = aplex::sync::mpsc::unbounded::<u8>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        lock(&self.chan).queue.is_empty()
    }

    /// The bound given to [`channel`](super::channel), or `None` for an
    /// [`unbounded`](super::unbounded) channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = aplex::sync::mpsc::channel::<u8>(3);
    /// assert_eq!(rx.capacity(), Some(3));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        lock(&self.chan).capacity
    }
}

impl<T> Iterator for Receiver<T> {
    type Item = T;

    /// Blocks for the next value; `None` once every sender is gone and the buffer is empty.
    fn next(&mut self) -> Option<T> {
        self.recv_blocking()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut chan = lock(&self.chan);
        chan.closed = true;
        chan.receiver_gone = true;
        let buffered = mem::take(&mut chan.queue);
        let own_waker = chan.recv_waker.take();
        let wakers = chan.blocked.wakers();
        drop(chan);
        drop(own_waker);
        wake_all(wakers);
        drop(buffered);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chan = lock(&self.chan);
        f.debug_struct("Receiver")
            .field("capacity", &chan.capacity)
            .field("len", &chan.queue.len())
            .field("blocked_senders", &chan.blocked.len())
            .field("senders", &chan.senders)
            .finish()
    }
}

/// The future of [`Receiver::recv`]: the next value, or `None` when the channel is closed and
/// empty.
///
/// Dropping it unregisters its waker and loses no value.
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc;
///
/// let (tx, mut rx) = mpsc::unbounded();
/// tx.try_send(4).unwrap();
/// let recv: mpsc::RecvFuture<'_, i32> = rx.recv();
/// assert_eq!(aplex::block_on(recv), Some(4));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().rx.poll_next(cx)
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        let waker = lock(&self.rx.chan).recv_waker.take();
        drop(waker);
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}
