//! A multi-producer, single-consumer FIFO channel, bounded ([`channel`]) or not ([`unbounded`]).
//!
//! Both kinds share one [`Sender`] / [`Receiver`] pair. Sending is async in both (it waits for
//! room in a full bounded channel), with `send_blocking` and `try_send` beside it; receiving is
//! `recv().await`, `recv_blocking()`, `try_recv()`, or iterating the receiver.
//!
//! ```
//! use aplex::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel(2);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..5 {
//!         tx.send_blocking(i).unwrap();
//!     }
//! });
//! assert_eq!(rx.collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
//! producer.join().unwrap();
//! ```
//!
//! # Ownership rules
//!
//! Every handle holds an `Arc` of one `Mutex<Chan>`; every field is read and written with that
//! lock held.
//!
//! - `queue` holds values sent and not yet received. Senders push at the back (only while
//!   `closed` is false and there is room); the receiver pops at the front.
//! - `blocked` holds the senders waiting for room, each entry owning the value it wants to send.
//!   When the receiver pops a value from a full queue it moves the oldest blocked value into the
//!   queue and wakes that sender: blocked senders are served FIFO, and nobody can take the freed
//!   slot in between (so `blocked` is non-empty only while the queue is full, or closed). A
//!   sender whose entry is gone knows its value was delivered; a sender that gives up (dropped,
//!   or finds the channel closed) removes its entry and takes its value back.
//! - `recv_waker` is filled by a pending receive and taken by whoever makes it ready: a push, or
//!   the last sender leaving.
//! - `closed` is set once, by `Receiver::close` or the receiver's drop; the drop also empties
//!   `queue`. Values and wakers are dropped or woken after the lock is released.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::blocking;
use super::waiters::{lock, store_waker, wake_all, Registration, Waiters};

pub use super::error::{RecvTimeoutError, SendError, TryRecvError, TrySendError};

struct Chan<T> {
    /// Values sent and not yet received, oldest first.
    queue: VecDeque<T>,
    /// `Some(n)`: `queue` holds at most `n` values. `None`: unbounded.
    capacity: Option<usize>,
    /// Senders waiting for room, each with its value.
    blocked: Waiters<T>,
    /// The receiver's waker while a receive is pending.
    recv_waker: Option<Waker>,
    /// Live `Sender` handles.
    senders: usize,
    /// No more values are accepted: the receiver closed the channel or is gone.
    closed: bool,
}

impl<T> Chan<T> {
    /// The non-blocking core of every send. On success returns the receiver's waker, to be woken
    /// after the lock is released.
    fn try_push(&mut self, value: T) -> Result<Option<Waker>, TrySendError<T>> {
        if self.closed {
            return Err(TrySendError::Closed(value));
        }
        if self.capacity.is_some_and(|cap| self.queue.len() >= cap) {
            return Err(TrySendError::Full(value));
        }
        self.queue.push_back(value);
        Ok(self.recv_waker.take())
    }

    /// The non-blocking core of every receive. On success also returns the waker of the blocked
    /// sender whose value took the freed slot, to be woken after the lock is released.
    fn try_pop(&mut self) -> Result<(T, Option<Waker>), TryRecvError> {
        match self.queue.pop_front() {
            Some(value) => {
                let mut woken = None;
                if !self.closed {
                    if let Some(entry) = self.blocked.pop_front() {
                        self.queue.push_back(entry.data);
                        woken = Some(entry.waker);
                    }
                }
                Ok((value, woken))
            }
            None if self.closed || self.senders == 0 => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

fn new_channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Mutex::new(Chan {
        queue: VecDeque::new(),
        capacity,
        blocked: Waiters::new(),
        recv_waker: None,
        senders: 1,
        closed: false,
    }));
    (
        Sender {
            chan: Arc::clone(&chan),
        },
        Receiver { chan },
    )
}

/// Creates a bounded channel holding at most `capacity` values; senders wait when it is full.
///
/// # Panics
///
/// Panics if `capacity` is 0 (a rendezvous channel is not supported; use 1).
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc::{self, TrySendError};
///
/// let (tx, mut rx) = mpsc::channel(1);
/// tx.try_send('a').unwrap();
/// assert_eq!(tx.try_send('b'), Err(TrySendError::Full('b')));
/// assert_eq!(rx.try_recv(), Ok('a'));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "mpsc::channel: capacity must be at least 1 (got 0)"
    );
    new_channel(Some(capacity))
}

/// Creates an unbounded channel: sends never wait.
///
/// # Examples
///
/// ```
/// let (tx, rx) = aplex::sync::mpsc::unbounded();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// drop(tx);
/// assert_eq!(rx.count(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new_channel(None)
}

/// The sending half. Clone it for more producers; the channel closes for the receiver when the
/// last clone is dropped.
///
/// Values sent through one `Sender` (or one thread's clones) arrive in the order sent.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = aplex::sync::mpsc::unbounded();
/// let tx2 = tx.clone();
/// tx.try_send(1).unwrap();
/// tx2.try_send(2).unwrap();
/// drop((tx, tx2));
/// assert_eq!(rx.recv_blocking(), Some(1));
/// assert_eq!(rx.recv_blocking(), Some(2));
/// assert_eq!(rx.recv_blocking(), None);
/// ```
pub struct Sender<T> {
    chan: Arc<Mutex<Chan<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room if the channel is bounded and full.
    ///
    /// Senders waiting on a full channel are served in the order they started waiting. Dropping
    /// the future before it completes cancels the send: the value is dropped, unless room had
    /// already freed and it was moved into the channel (then it is received normally). It is
    /// never both lost and reported sent, nor delivered twice.
    ///
    /// # Errors
    ///
    /// Gives the value back in [`SendError`] if the receiver is gone or closed the channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::channel(1);
    /// aplex::block_on(async {
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            value: Some(value),
            registration: Registration::Idle,
        }
    }

    /// Sends `value`, blocking the current thread while the channel is full.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Errors
    ///
    /// Gives the value back in [`SendError`] if the receiver is gone or closed the channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::mpsc::channel(1);
    /// tx.send_blocking(1).unwrap();
    /// let t = std::thread::spawn(move || tx.send_blocking(2)); // waits for room
    /// assert_eq!(rx.recv_blocking(), Some(1));
    /// assert_eq!(t.join().unwrap(), Ok(()));
    /// assert_eq!(rx.recv_blocking(), Some(2));
    /// ```
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        blocking::wait(self.send(value))
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is bounded and full, [`TrySendError::Closed`] if
    /// the receiver is gone or closed the channel; the value comes back in both.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let waker = lock(&self.chan).try_push(value)?;
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone or closed the channel, so sends fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = aplex::sync::mpsc::unbounded::<u8>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        lock(&self.chan).closed
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.chan).senders += 1;
        Sender {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut chan = lock(&self.chan);
        chan.senders -= 1;
        let waker = if chan.senders == 0 {
            chan.recv_waker.take()
        } else {
            None
        };
        drop(chan);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chan = lock(&self.chan);
        f.debug_struct("Sender")
            .field("capacity", &chan.capacity)
            .field("len", &chan.queue.len())
            .field("closed", &chan.closed)
            .finish()
    }
}

/// The future of [`Sender::send`].
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel(1);
/// drop(rx);
/// let send: mpsc::SendFuture<'_, u8> = tx.send(1);
/// assert_eq!(aplex::block_on(send), Err(mpsc::SendError(1)));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    chan: &'a Mutex<Chan<T>>,
    /// The value, until it is sent or handed to `blocked`.
    value: Option<T>,
    registration: Registration,
}

// The value is moved, never pinned, so the future may move freely whatever `T` is.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut chan = lock(this.chan);
        match this.registration {
            Registration::Idle => {
                let value = this
                    .value
                    .take()
                    .expect("SendFuture holds its value until polled");
                match chan.try_push(value) {
                    Ok(waker) => {
                        drop(chan);
                        this.registration = Registration::Done;
                        if let Some(waker) = waker {
                            waker.wake();
                        }
                        Poll::Ready(Ok(()))
                    }
                    Err(TrySendError::Closed(value)) => {
                        this.registration = Registration::Done;
                        Poll::Ready(Err(SendError(value)))
                    }
                    Err(TrySendError::Full(value)) => {
                        let id = chan.blocked.push(cx.waker().clone(), value);
                        this.registration = Registration::Waiting(id);
                        Poll::Pending
                    }
                }
            }
            Registration::Waiting(id) => {
                let closed = chan.closed;
                match chan.blocked.get_mut(id) {
                    // The receiver moved our value into the queue.
                    None => {
                        this.registration = Registration::Done;
                        Poll::Ready(Ok(()))
                    }
                    Some(_) if closed => {
                        let entry = chan.blocked.remove(id).expect("entry was just found");
                        drop(chan);
                        this.registration = Registration::Done;
                        Poll::Ready(Err(SendError(entry.data)))
                    }
                    Some(entry) => {
                        let stale = entry.refresh(cx.waker());
                        drop(chan);
                        drop(stale);
                        Poll::Pending
                    }
                }
            }
            Registration::Done => panic!("SendFuture polled after completion"),
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let Registration::Waiting(id) = self.registration {
            // Still blocked: cancel, dropping the value after the lock is released.
            let entry = lock(self.chan).blocked.remove(id);
            drop(entry);
        }
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

/// The receiving half. Also an [`Iterator`] that blocks on each value and ends when every sender
/// is gone and the buffer is empty.
///
/// Dropping it closes the channel: buffered values are dropped, blocked senders get their values
/// back in [`SendError`].
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

    /// Closes the channel without dropping the receiver: sends fail from now on (blocked senders
    /// get their values back), while values already buffered can still be received.
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

    /// The bound given to [`channel`], or `None` for an [`unbounded`] channel.
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
        let mut chan = lock(&self.rx.chan);
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
