//! The errors of `oneshot`, `mpsc` and `Semaphore`: small values named after the reason, handing back any
//! value that could not be delivered.

use std::error::Error;
use std::fmt;

/// The sender was dropped without sending: returned by awaiting a [`oneshot::Receiver`].
///
/// [`oneshot::Receiver`]: crate::sync::oneshot::Receiver
///
/// # Examples
///
/// ```
/// use aplex::sync::oneshot::{self, RecvError};
///
/// let (tx, rx) = oneshot::channel::<u8>();
/// drop(tx);
/// assert_eq!(aplex::block_on(rx), Err(RecvError));
/// assert_eq!(RecvError.to_string(), "receiving on a closed channel");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl Error for RecvError {}

/// Why a `try_recv` found no value.
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc::{self, TryRecvError};
///
/// let (tx, mut rx) = mpsc::unbounded::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No value yet, but one may still come.
    Empty,
    /// No value, and none will ever come: every sender is gone (or the receiver closed).
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Closed => "receiving on an empty and closed channel",
        })
    }
}

impl Error for TryRecvError {}

/// Why a `recv_timeout` returned no value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use aplex::sync::oneshot::{self, RecvTimeoutError};
///
/// let (tx, mut rx) = oneshot::channel::<u8>();
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// drop(tx);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No value arrived before the timeout; one may still come.
    Timeout,
    /// No value, and none will ever come.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting on a channel",
            RecvTimeoutError::Closed => "receiving on an empty and closed channel",
        })
    }
}

impl Error for RecvTimeoutError {}

/// The receiver is gone: the value comes back in `.0`.
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc::{self, SendError};
///
/// let (tx, rx) = mpsc::channel::<String>(1);
/// drop(rx);
/// let err = tx.send_blocking("hi".to_string()).unwrap_err();
/// assert_eq!(err, SendError("hi".to_string()));
/// assert_eq!(err.into_inner(), "hi");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(aplex::sync::mpsc::SendError(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> Error for SendError<T> {}

/// Why a `try_send` did not send: the value comes back either way.
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
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is bounded and full (or senders are already waiting for room).
    Full(T),
    /// The receiver is gone or closed the channel.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::TrySendError;
    ///
    /// assert_eq!(TrySendError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the channel was full.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::TrySendError;
    ///
    /// assert!(TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the receiver was gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::TrySendError;
    ///
    /// assert!(TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Closed(_) => "sending on a closed channel",
        })
    }
}

impl<T> Error for TrySendError<T> {}

/// The semaphore was closed: returned by [`Semaphore::checked_acquire`] and
/// [`Semaphore::checked_acquire_many`].
///
/// [`Semaphore::checked_acquire`]: crate::sync::Semaphore::checked_acquire
/// [`Semaphore::checked_acquire_many`]: crate::sync::Semaphore::checked_acquire_many
///
/// # Examples
///
/// ```
/// use aplex::sync::{AcquireError, Semaphore};
///
/// let sem = Semaphore::new(1);
/// sem.close();
/// assert_eq!(aplex::block_on(sem.checked_acquire()).map(drop), Err(AcquireError));
/// assert_eq!(AcquireError.to_string(), "acquiring from a closed semaphore");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError;

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("acquiring from a closed semaphore")
    }
}

impl Error for AcquireError {}
