//! The error every pool handle can end in.

use std::fmt;
use std::io;

/// Why a submitted work produced no value.
///
/// Every work submitted to a pool ends in exactly one outcome: its value, or one of these.
///
/// ```
/// let pool = aplex::ThreadPool::new(1);
/// let handle = pool.submit(|| -> u32 { panic!("bad input") });
/// match handle.wait() {
///     Err(aplex::Error::Panicked(msg)) => assert_eq!(msg, "bad input"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The work panicked; the panic's message.
    Panicked(String),
    /// The work was cancelled before it produced a value.
    Cancelled,
    /// A deadline passed before the work finished.
    TimedOut,
    /// The worker running the work died (a process worker exited or was killed); the reason.
    WorkerLost(String),
    /// The pool was shut down before it accepted the work.
    ShutDown,
    /// The pool's queue is full.
    QueueFull,
    /// The work failed on the far side of a process pool; its message.
    Remote(String),
    /// A frame between processes could not be encoded or decoded.
    Wire(String),
    /// An I/O error.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked(msg) => write!(f, "the work panicked: {msg}"),
            Error::Cancelled => f.write_str("the work was cancelled"),
            Error::TimedOut => f.write_str("the work timed out"),
            Error::WorkerLost(why) => write!(f, "the worker running the work was lost: {why}"),
            Error::ShutDown => f.write_str("the pool is shut down"),
            Error::QueueFull => f.write_str("the pool's queue is full"),
            Error::Remote(msg) => write!(f, "the work failed in its worker process: {msg}"),
            Error::Wire(msg) => write!(f, "wire protocol error: {msg}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl Clone for Error {
    /// A copy of this error, for when one failure ends many works. `io::Error` is not `Clone`,
    /// so an `Io` error is copied as a new `io::Error` of the same kind and message (its
    /// `source` chain and raw OS code are not carried over).
    ///
    /// ```
    /// use std::io;
    /// use aplex::Error;
    ///
    /// let e = Error::Io(io::Error::new(io::ErrorKind::NotFound, "no such work"));
    /// let copy = e.clone();
    /// assert_eq!(copy, e);
    /// assert_eq!(copy.to_string(), "i/o error: no such work");
    /// assert_eq!(Error::Panicked("boom".into()).clone(), Error::Panicked("boom".into()));
    /// ```
    fn clone(&self) -> Error {
        match self {
            Error::Panicked(m) => Error::Panicked(m.clone()),
            Error::Cancelled => Error::Cancelled,
            Error::TimedOut => Error::TimedOut,
            Error::WorkerLost(m) => Error::WorkerLost(m.clone()),
            Error::ShutDown => Error::ShutDown,
            Error::QueueFull => Error::QueueFull,
            Error::Remote(m) => Error::Remote(m.clone()),
            Error::Wire(m) => Error::Wire(m.clone()),
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl Error {
    /// A copy of this error: the same as [`Clone::clone`], kept for the callers that fan one
    /// failure out to many works.
    pub(crate) fn duplicate(&self) -> Error {
        self.clone()
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl PartialEq for Error {
    /// Equal variants with equal payloads; two `Io` errors are equal when their kinds and
    /// messages are (so an `Io` error equals its clone).
    ///
    /// ```
    /// use std::io::{Error as IoError, ErrorKind};
    /// use aplex::Error;
    ///
    /// let refused = |msg: &str| Error::Io(IoError::new(ErrorKind::ConnectionRefused, msg.to_string()));
    /// assert_eq!(refused("port 80"), refused("port 80"));
    /// assert_ne!(refused("port 80"), refused("port 81"));
    /// assert_ne!(Error::Cancelled, Error::TimedOut);
    /// ```
    fn eq(&self, other: &Error) -> bool {
        use Error::*;
        match (self, other) {
            (Panicked(a), Panicked(b))
            | (WorkerLost(a), WorkerLost(b))
            | (Remote(a), Remote(b))
            | (Wire(a), Wire(b)) => a == b,
            (Cancelled, Cancelled)
            | (TimedOut, TimedOut)
            | (ShutDown, ShutDown)
            | (QueueFull, QueueFull) => true,
            (Io(a), Io(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            _ => false,
        }
    }
}
