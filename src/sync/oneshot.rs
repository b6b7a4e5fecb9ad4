//! A channel for exactly one value: the sender sends once (synchronously), the receiver awaits it.
//!
//! ```
//! use aplex::sync::oneshot;
//!
//! let (tx, rx) = oneshot::channel();
//! std::thread::spawn(move || tx.send(42).unwrap());
//! assert_eq!(aplex::block_on(rx), Ok(42));
//! ```
//!
//! # Ownership rules
//!
//! Both halves hold an `Arc` of one `Mutex<Inner>`, and every field is read and written with that
//! lock held. The `Sender` changes `state` only from `Empty` (to `Sent` by `send`, or to
//! `SenderGone` by its drop); the `Receiver` moves the value out of `Sent` and otherwise only
//! moves `state` to `Finished` (when it has seen the outcome) or `ReceiverGone` (its drop, or
//! [`Receiver::close`] while nothing was sent). So
//! the value is moved in once, by the sender, and out once, by the receiver: taken, or dropped
//! with the receiver.
//!
//! `rx_waker` is filled by a pending receive and taken by the sender's `send` or drop;
//! `tx_waker` is filled by a pending [`Sender::closed`] and taken by the receiver's drop. Wakers
//! are woken, and values dropped, after the lock is released.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::blocking;
use super::waiters::{lock, store_waker, wake_all};

pub use super::error::{RecvError, RecvTimeoutError, TryRecvError};

/// Where the one value is.
enum State<T> {
    /// Both halves alive, nothing sent yet.
    Empty,
    /// Sent, not yet received.
    Sent(T),
    /// The receiver took the value, or saw that none will come; it gets nothing more.
    Finished,
    /// The sender was dropped without sending.
    SenderGone,
    /// The receiver was dropped: a `send` hands its value back.
    ReceiverGone,
}

impl<T> State<T> {
    fn name(&self) -> &'static str {
        match self {
            State::Empty => "empty",
            State::Sent(_) => "sent",
            State::Finished => "finished",
            State::SenderGone => "sender gone",
            State::ReceiverGone => "receiver gone",
        }
    }
}

struct Inner<T> {
    state: State<T>,
    /// The receiver's waker while a receive is pending.
    rx_waker: Option<Waker>,
    /// The sender's waker while a [`Sender::closed`] is pending.
    tx_waker: Option<Waker>,
}

/// Creates a channel for one value.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = aplex::sync::oneshot::channel::<&str>();
/// tx.send("done").unwrap();
/// assert_eq!(rx.try_recv(), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(Inner {
        state: State::Empty,
        rx_waker: None,
        tx_waker: None,
    }));
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// The sending half: sends one value, or, when dropped unused, tells the receiver none will come.
///
/// # Examples
///
/// ```
/// let (tx, rx) = aplex::sync::oneshot::channel::<u8>();
/// drop(tx);
/// assert!(aplex::block_on(rx).is_err());
/// ```
pub struct Sender<T> {
    shared: Arc<Mutex<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver. Never blocks.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = aplex::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(5), Err(5));
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        let mut inner = lock(&self.shared);
        if !matches!(inner.state, State::Empty) {
            // A live sender sees only `Empty` or `ReceiverGone`.
            return Err(value);
        }
        inner.state = State::Sent(value);
        let waker = inner.rx_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone, so a `send` would fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = aplex::sync::oneshot::channel::<()>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        // A live sender has sent nothing, so anything but `Empty` means the receiver is gone,
        // closed the channel, or saw it closed (`Finished` after a `close`).
        !matches!(lock(&self.shared).state, State::Empty)
    }

    /// Waits until the receiver is dropped: a way for the producer to learn its work is no longer
    /// wanted and stop early.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, rx) = aplex::sync::oneshot::channel::<u32>();
    /// std::thread::spawn(move || drop(rx));
    /// aplex::block_on(tx.closed());
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn closed(&mut self) -> ClosedFuture<'_, T> {
        ClosedFuture { tx: self }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut inner = lock(&self.shared);
        if !matches!(inner.state, State::Empty) {
            return; // sent, or nobody is listening
        }
        inner.state = State::SenderGone;
        let waker = inner.rx_waker.take();
        drop(inner);
        // Through `wake_all`: a waker's panic must not leave a drop during an unwind.
        wake_all(waker);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared).state.name();
        f.debug_struct("Sender").field("state", &state).finish()
    }
}

/// The future of [`Sender::closed`]: resolves once the receiver is dropped.
///
/// Dropping it unregisters its waker.
///
/// # Examples
///
/// ```
/// let (mut tx, rx) = aplex::sync::oneshot::channel::<()>();
/// drop(rx);
/// let closed: aplex::sync::oneshot::ClosedFuture<'_, ()> = tx.closed();
/// aplex::block_on(closed);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct ClosedFuture<'a, T> {
    tx: &'a mut Sender<T>,
}

impl<T> Future for ClosedFuture<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.tx.shared);
        if !matches!(inner.state, State::Empty) {
            return Poll::Ready(()); // as in `Sender::is_closed`
        }
        let stale = store_waker(&mut inner.tx_waker, cx.waker());
        drop(inner);
        drop(stale);
        Poll::Pending
    }
}

impl<T> Drop for ClosedFuture<'_, T> {
    fn drop(&mut self) {
        let waker = lock(&self.tx.shared).tx_waker.take();
        drop(waker);
    }
}

impl<T> fmt::Debug for ClosedFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedFuture").finish_non_exhaustive()
    }
}

/// The receiving half, and itself the future of the value.
///
/// Awaiting it gives `Ok(value)`, or `Err(RecvError)` if the sender was dropped without sending.
/// Polled again after it completed, it gives `Err(RecvError)`. Dropping it drops any value sent
/// and not received, and makes a later `send` fail.
///
/// # Examples
///
/// ```
/// let (tx, rx) = aplex::sync::oneshot::channel();
/// let got = aplex::block_on(async move {
///     tx.send("hi").unwrap();
///     rx.await
/// });
/// assert_eq!(got, Ok("hi"));
/// ```
pub struct Receiver<T> {
    shared: Arc<Mutex<Inner<T>>>,
}

impl<T> Receiver<T> {
    /// The one non-blocking core of every receive: takes the value if there is one, and
    /// otherwise, when given a waker, registers it for the sender to wake.
    fn recv_or_register(&mut self, waker: Option<&Waker>) -> Result<T, TryRecvError> {
        let mut inner = lock(&self.shared);
        match mem::replace(&mut inner.state, State::Finished) {
            State::Sent(value) => Ok(value),
            State::Empty => {
                inner.state = State::Empty;
                let stale = waker.and_then(|w| store_waker(&mut inner.rx_waker, w));
                drop(inner);
                drop(stale);
                Err(TryRecvError::Empty)
            }
            State::SenderGone | State::Finished | State::ReceiverGone => Err(TryRecvError::Closed),
        }
    }

    /// Takes the value if it has been sent, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing was sent yet; [`TryRecvError::Closed`] if the sender was
    /// dropped without sending, or the value was already received.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::oneshot::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.recv_or_register(None)
    }

    /// Closes the channel without dropping the receiver: a later [`Sender::send`] fails and
    /// gives its value back, and a pending [`Sender::closed`] resolves. A value sent before the
    /// close can still be received ([`try_recv`](Receiver::try_recv) or awaiting); with none,
    /// the receiver then gives [`RecvError`] (or [`TryRecvError::Closed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::oneshot::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel::<u8>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// assert_eq!(tx.send(1), Err(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// tx.send(2).unwrap();
    /// rx.close();
    /// assert_eq!(rx.try_recv(), Ok(2)); // sent before the close
    /// ```
    pub fn close(&mut self) {
        let mut inner = lock(&self.shared);
        if !matches!(inner.state, State::Empty) {
            return; // sent (still receivable), or already over
        }
        inner.state = State::ReceiverGone;
        let tx_waker = inner.tx_waker.take();
        drop(inner);
        if let Some(waker) = tx_waker {
            waker.wake();
        }
    }

    /// Whether no further value can arrive through the sender: it sent its value, or was
    /// dropped without sending, or [`close`](Receiver::close) was called. tokio's mpsc meaning of
    /// "closed": a value sent before may still be waiting, so ask
    /// [`is_empty`](Receiver::is_empty) too. `is_closed() && !is_empty()`: the value is here;
    /// `is_closed() && is_empty()`: receiving gives [`RecvError`] (or already gave the outcome).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::oneshot::channel();
    /// assert!(!rx.is_closed());
    /// tx.send(1).unwrap();
    /// assert!(rx.is_closed() && !rx.is_empty()); // the value waits
    ///
    /// let (tx, rx) = aplex::sync::oneshot::channel::<u8>();
    /// drop(tx);
    /// assert!(rx.is_closed() && rx.is_empty()); // nothing will come
    /// ```
    pub fn is_closed(&self) -> bool {
        !matches!(lock(&self.shared).state, State::Empty)
    }

    /// Whether no value waits to be received right now, as tokio's `is_empty`: true before the
    /// send, after the value was received, and when none will come. An empty receiver is not
    /// necessarily worth polling: see [`is_terminated`](Receiver::is_terminated).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::oneshot::channel();
    /// assert!(rx.is_empty());
    /// tx.send("v").unwrap();
    /// assert!(!rx.is_empty());
    /// assert_eq!(rx.try_recv(), Ok("v"));
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        !matches!(lock(&self.shared).state, State::Sent(_))
    }

    /// Whether this receiver has given its outcome (the value, or [`RecvError`] /
    /// [`TryRecvError::Closed`]), as tokio's `is_terminated`: for `select!` loops that must not
    /// poll a finished branch. Polled again, this receiver gives `Err(RecvError)` (tokio's
    /// panics). A sender dropped, or a value sent, does not terminate it: only receiving does.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = aplex::sync::oneshot::channel::<u8>();
    /// drop(tx);
    /// assert!(!rx.is_terminated()); // the outcome is known, but not yet taken
    /// assert!(aplex::block_on(&mut rx).is_err());
    /// assert!(rx.is_terminated());
    /// ```
    pub fn is_terminated(&self) -> bool {
        matches!(lock(&self.shared).state, State::Finished)
    }

    /// Blocks the current thread until the value arrives.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped without sending.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = aplex::sync::oneshot::channel();
    /// std::thread::spawn(move || tx.send(10).unwrap());
    /// assert_eq!(rx.recv_blocking(), Ok(10));
    /// ```
    pub fn recv_blocking(self) -> Result<T, RecvError> {
        blocking::wait(self)
    }

    /// Blocks the current thread until the value arrives or `timeout` passes.
    ///
    /// The receiver stays usable after a timeout.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time; [`RecvTimeoutError::Closed`] if
    /// the sender was dropped without sending.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use aplex::sync::oneshot::{self, RecvTimeoutError};
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// tx.send('x').unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Ok('x'));
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A timeout too large to represent means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        match blocking::wait_deadline(self, deadline) {
            Some(Ok(value)) => Ok(value),
            Some(Err(RecvError)) => Err(RecvTimeoutError::Closed),
            None => Err(RecvTimeoutError::Timeout),
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut().recv_or_register(Some(cx.waker())) {
            Ok(value) => Poll::Ready(Ok(value)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut inner = lock(&self.shared);
        let old = mem::replace(&mut inner.state, State::ReceiverGone);
        let tx_waker = inner.tx_waker.take();
        let rx_waker = inner.rx_waker.take();
        drop(inner);
        // Through `wake_all`: a waker's panic must not leave a drop during an unwind.
        wake_all(tx_waker);
        drop(rx_waker);
        drop(old); // a value sent and never received
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared).state.name();
        f.debug_struct("Receiver").field("state", &state).finish()
    }
}
