//! A multi-producer, single-consumer FIFO channel, bounded ([`channel`]) or not ([`unbounded`]).
//!
//! Both kinds share one [`Sender`] / [`Receiver`] pair. Sending is async in both (it waits for
//! room in a full bounded channel), with `send_blocking` and `try_send` beside it; receiving is
//! `recv().await`, `recv_blocking()`, `try_recv()`, or iterating the receiver. A sender may
//! also [`reserve`](Sender::reserve) a slot first and send into it later without waiting, and
//! the receiver is a stream: [`poll_next`](Receiver::poll_next) adapts it to any stream trait.
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
//! - `reserved` counts slots promised to [`Permit`]s: a bounded channel is full when
//!   `queue.len() + reserved` reaches its capacity. A permit's `send` turns its slot into a
//!   queued value (even after `closed` is set, while the receiver lives); a permit dropped
//!   unused gives its slot back. A closed channel reports its end to the receiver only once
//!   `reserved` is 0, so a value promised before the close is never lost.
//! - `blocked` holds the senders waiting for room, each entry owning the value it wants to send
//!   (`Some`), or nothing for a pending `reserve` (`None`). Whoever frees a slot (the receiver
//!   popping a value, a permit dropped unused) hands it at once to the oldest blocked entry —
//!   its value moves into the queue, or the slot becomes its reservation — and wakes it: blocked
//!   senders are served FIFO, and nobody can take the freed slot in between (so `blocked` is
//!   non-empty only while the channel is full, or closed). A sender whose entry is gone knows
//!   it was served; a sender that gives up (dropped, or finds the channel closed) removes its
//!   entry and takes its value back (a reserve served but dropped before it saw its permit
//!   gives the slot back).
//! - `recv_waker` is filled by a pending receive and taken by whoever makes it ready: a push, or
//!   the last sender leaving.
//! - `closed` is set once, by `Receiver::close` or the receiver's drop; the drop also sets
//!   `receiver_gone` and empties `queue`. Values and wakers are dropped or woken after the lock
//!   is released.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::blocking;
use super::waiters::{lock, wake_all, Registration, Waiters};

mod receiver;
mod reserve;

pub use super::error::{RecvTimeoutError, SendError, TryRecvError, TrySendError};
pub use receiver::{Receiver, RecvFuture};
pub use reserve::{Permit, ReserveFuture};

struct Chan<T> {
    /// Values sent and not yet received, oldest first.
    queue: VecDeque<T>,
    /// `Some(n)`: `queue` holds at most `n` values. `None`: unbounded.
    capacity: Option<usize>,
    /// Slots promised to live permits (and to served, not yet polled, reserves).
    reserved: usize,
    /// Senders waiting for room, each with its value (`None`: a reserve).
    blocked: Waiters<Option<T>>,
    /// The receiver's waker while a receive is pending.
    recv_waker: Option<Waker>,
    /// Live `Sender` handles.
    senders: usize,
    /// No more values are accepted: the receiver closed the channel or is gone.
    closed: bool,
    /// The receiver is dropped: not even a permit's value can be delivered.
    receiver_gone: bool,
}

impl<T> Chan<T> {
    /// The non-blocking core of every send. On success returns the receiver's waker, to be woken
    /// after the lock is released.
    fn try_push(&mut self, value: T) -> Result<Option<Waker>, TrySendError<T>> {
        if self.closed {
            return Err(TrySendError::Closed(value));
        }
        if self.is_full() {
            return Err(TrySendError::Full(value));
        }
        self.queue.push_back(value);
        Ok(self.recv_waker.take())
    }

    /// Whether a bounded channel has no free slot (queued values and reservations fill it).
    fn is_full(&self) -> bool {
        self.capacity
            .is_some_and(|cap| self.queue.len() + self.reserved >= cap)
    }

    /// Hands a slot that just freed to the oldest blocked sender, if any: its value moves into
    /// the queue, or the slot becomes its reservation. Returns its waker (and, when a value
    /// arrived and the receiver is not the one freeing the slot, the receiver's), to be woken
    /// after the lock is released.
    fn serve_blocked(&mut self, by_receiver: bool) -> [Option<Waker>; 2] {
        if self.closed {
            return [None, None];
        }
        let Some(entry) = self.blocked.pop_front() else {
            return [None, None];
        };
        let recv = match entry.data {
            Some(value) => {
                self.queue.push_back(value);
                if by_receiver {
                    None
                } else {
                    self.recv_waker.take()
                }
            }
            None => {
                self.reserved += 1;
                None
            }
        };
        [Some(entry.waker), recv]
    }

    /// Gives back a reserved slot that was not used; returns the wakers to wake after the lock
    /// is released.
    fn unreserve(&mut self) -> [Option<Waker>; 2] {
        self.reserved -= 1;
        if self.closed {
            // The receiver of a closed channel may be waiting for the last permit to end.
            let end = if self.reserved == 0 {
                self.recv_waker.take()
            } else {
                None
            };
            return [end, None];
        }
        self.serve_blocked(false)
    }

    /// The non-blocking core of every receive. On success also returns the waker of the blocked
    /// sender served with the freed slot, to be woken after the lock is released.
    fn try_pop(&mut self) -> Result<(T, Option<Waker>), TryRecvError> {
        match self.queue.pop_front() {
            Some(value) => {
                let [woken, _] = self.serve_blocked(true);
                Ok((value, woken))
            }
            // A permit taken before a close may still send (and holds a sender alive).
            None if (self.closed && self.reserved == 0) || self.senders == 0 => {
                Err(TryRecvError::Closed)
            }
            None => Err(TryRecvError::Empty),
        }
    }
}

fn new_channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Mutex::new(Chan {
        queue: VecDeque::new(),
        capacity,
        reserved: 0,
        blocked: Waiters::new(),
        recv_waker: None,
        senders: 1,
        closed: false,
        receiver_gone: false,
    }));
    (
        Sender {
            chan: Arc::clone(&chan),
        },
        Receiver::new(chan),
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

    /// The bound given to [`channel`], or `None` for an [`unbounded`] channel: the same as
    /// [`Receiver::capacity`]. (tokio calls the bound `max_capacity`, and its `capacity` is the
    /// room left.)
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = aplex::sync::mpsc::channel::<u8>(3);
    /// assert_eq!(tx.capacity(), Some(3));
    /// let (tx, _rx) = aplex::sync::mpsc::unbounded::<u8>();
    /// assert_eq!(tx.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        lock(&self.chan).capacity
    }

    /// Waits for a free slot and reserves it: the [`Permit`] then sends one value without
    /// waiting. Ready at once on an unbounded channel.
    ///
    /// Reserves and sends wait in one FIFO line. A reserved slot counts as taken (other senders
    /// see the channel full) until the permit sends or is dropped; dropping it unused gives the
    /// slot to the next waiting sender. Dropping this future before it completes gives up its
    /// place in line and any slot it had been handed.
    ///
    /// # Errors
    ///
    /// [`SendError(())`](SendError) if the receiver is gone or closed the channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, mut rx) = mpsc::channel(1);
    /// aplex::block_on(async {
    ///     let permit = tx.reserve().await.unwrap();
    ///     assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))); // the slot is promised
    ///     permit.send(2).unwrap();
    ///     assert_eq!(rx.recv().await, Some(2));
    /// });
    /// ```
    pub fn reserve(&self) -> ReserveFuture<'_, T> {
        ReserveFuture::new(self)
    }

    /// Reserves a free slot if there is one now: the non-waiting form of
    /// [`reserve`](Sender::reserve), as tokio's `try_reserve`. Always succeeds on an open
    /// unbounded channel.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full(())`](TrySendError::Full) if every slot is taken by a queued value
    /// or another permit (senders already waiting for room mean that too);
    /// [`TrySendError::Closed(())`](TrySendError::Closed) if the receiver is gone or closed the
    /// channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, mut rx) = mpsc::channel(1);
    /// let permit = tx.try_reserve().unwrap();
    /// assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    /// permit.send('a').unwrap();
    /// assert_eq!(rx.try_recv(), Ok('a'));
    /// rx.close();
    /// assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut chan = lock(&self.chan);
        if chan.closed {
            return Err(TrySendError::Closed(()));
        }
        if chan.is_full() {
            return Err(TrySendError::Full(()));
        }
        chan.reserved += 1;
        drop(chan);
        Ok(Permit::new(self))
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
        // Through `wake_all`: a waker's panic must not leave a drop during an unwind.
        wake_all(waker);
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
                        let id = chan.blocked.push(cx.waker().clone(), Some(value));
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
                        let value = entry.data.expect("a send's entry holds its value");
                        Poll::Ready(Err(SendError(value)))
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
