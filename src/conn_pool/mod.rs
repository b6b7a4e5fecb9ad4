//! [`ConnectionPool`]: a bounded pool of reusable connections (asyncutils' `ConnectionPool`).
//!
//! A factory opens connections; [`ConnectionPool::acquire`] hands one out as a [`Pooled`] guard,
//! which puts it back when dropped. The pool never holds more than `max_size` connections, serves
//! waiters first come, first served, checks each connection's health before handing it out, and
//! retires old ones (`max_life`), passing every retired connection to a `cleanup` callback.
//!
//! # Ownership rules
//!
//! - **Slots.** `slots` is a [`Semaphore`] of `max_size` permits. A permit is held by each
//!   [`Pooled`] guard (from the moment its connection is taken, through the health check, until
//!   the connection is back in `idle` or cleaned) and by each call that is opening a connection.
//!   Idle connections hold none. The semaphore's FIFO queue is the pool's waiting line.
//! - **Why at most `max_size` exist.** A slot holder opens a connection only when `idle` is empty,
//!   so every other live connection belongs to one of the other `max_size - 1` slots; a top-up
//!   ([`ConnectionPool::maintain`], `build`) holds a slot too and opens only while
//!   `idle + in_use + opening < min_size <= max_size`.
//! - **State.** One `Mutex<State>` holds `idle` (with each connection's birth instant),
//!   `in_use`, `opening` and `closed`. A connection is in exactly one place: in `idle`, in a
//!   `Pooled` (counted by `in_use`), or on its way to `cleanup` (counted nowhere). So
//!   `size == idle.len() + in_use` at every unlock.
//! - **User code** (factory, health check, cleanup) and wakes (the semaphore's, the close event's)
//!   run with no lock held: a critical section only moves connections and counts, then the
//!   caller cleans what it took out.
//! - **Close.** `close()` sets `closed` under the lock, takes `idle` out, sets the `closed`
//!   event (waking every waiter, which then returns `ShutDown`) and cleans what it took. Every
//!   path that would put a connection into `idle` checks `closed` under the same lock and cleans
//!   instead. Dropping the last handle and the last `Pooled` cleans whatever is still idle.
//!
//! # Maintenance without a thread
//!
//! The pool starts no thread. Expired idle connections are swept out whenever a connection is
//! acquired or returned; after retirements the pool refills on demand (an acquire that finds
//! nothing idle opens a connection). To keep `min_size` connections warm after retirements, call
//! [`ConnectionPool::maintain`] now and then (from an [`interval`](crate::time::interval)
//! loop, say): it sweeps and tops up. A reference implementation is easier to audit with no
//! background thread whose lifetime must be tied to the last handle.

#![forbid(unsafe_code)]

mod builder;
mod inner;
mod pooled;

pub use builder::ConnectionPoolBuilder;
pub use pooled::Pooled;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::sync::blocking;
use inner::{Factory, Inner, OpenFuture};

/// A bounded pool of reusable connections, shared by cheap clones of this handle.
///
/// Build one with [`ConnectionPool::builder`] (a plain factory) or
/// [`ConnectionPool::builder_async`] (a factory returning a future). Take a connection with
/// [`acquire`](ConnectionPool::acquire) (async), [`acquire_blocking`](ConnectionPool::acquire_blocking)
/// (plain threads) or [`acquire_timeout`](ConnectionPool::acquire_timeout); the [`Pooled`] guard
/// derefs to the connection and gives it back when dropped.
///
/// - At most `max_size` connections exist at once; when all are in use, acquires wait in a FIFO
///   line and are served in arrival order.
/// - The health check runs on every connection before it is handed out, new ones included; an
///   unhealthy connection is cleaned and replaced (a new one up to
///   [`new_connection_attempts`](ConnectionPoolBuilder::new_connection_attempts) times in a
///   row).
/// - A connection older than `max_life` is retired instead of handed out or put back.
/// - A factory error is returned as [`Error::Io`]; the slot it would have filled is free again.
/// - After [`close`](ConnectionPool::close), acquires fail with [`Error::ShutDown`].
///
/// # Panics in user code
///
/// The pool's counts stay right whichever closure panics, and no slot is lost:
///
/// - **factory**: the panic propagates to the caller of `acquire` (or `maintain`, `build`); the
///   slot is free again.
/// - **health check**: the panic is caught and counts as a failed check: the connection is
///   cleaned and never handed out; an idle one is replaced by the next, a new one makes the
///   acquire fail at once with [`Error::Io`] (whose message carries the panic's).
/// - **cleanup**: every connection due for cleaning is still passed to it; then the first
///   panic propagates to the caller that cleaned (`acquire`, dropping a [`Pooled`], `close`,
///   `maintain`). Only when the pool itself is dropped is such a panic swallowed (a drop cannot
///   panic safely).
///
/// Cloning it gives another handle to the same pool; when the last handle and the last
/// [`Pooled`] guard are gone, the idle connections are cleaned.
///
/// # Thread safety
///
/// `ConnectionPool<T>` is `Send + Sync` when `T: Send`, and so are the futures of its async
/// methods; a pool of connections that cannot leave their thread cannot either:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<aplex::ConnectionPool<std::rc::Rc<u8>>>();
/// ```
///
/// # Examples
///
/// ```
/// use aplex::ConnectionPool;
///
/// let pool = ConnectionPool::builder(|| Ok(String::from("conn")))
///     .max_size(2)
///     .build()
///     .unwrap();
/// aplex::block_on(async {
///     let mut a = pool.acquire().await.unwrap();
///     a.push_str("-used");
///     let b = pool.acquire().await.unwrap();
///     assert_eq!((pool.stats().size, pool.stats().in_use), (2, 2));
///     drop((a, b));
/// });
/// assert_eq!(pool.stats().available, 2);
/// ```
pub struct ConnectionPool<T> {
    inner: Arc<Inner<T>>,
}

/// A snapshot of a [`ConnectionPool`]'s counts, from [`ConnectionPool::stats`].
///
/// `size == available + in_use`: connections being opened are not counted until the factory
/// returns them.
///
/// # Examples
///
/// ```
/// use aplex::{ConnectionPool, ConnectionPoolStats};
///
/// let pool = ConnectionPool::builder(|| Ok(0u8)).min_size(2).build().unwrap();
/// let held = pool.acquire_blocking().unwrap();
/// let stats = pool.stats();
/// assert_eq!(stats, ConnectionPoolStats { size: 2, available: 1, in_use: 1, waiters: 0 });
/// # drop(held);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionPoolStats {
    /// Connections that exist: idle plus in use.
    pub size: usize,
    /// Idle connections, ready to hand out.
    pub available: usize,
    /// Connections held by [`Pooled`] guards (handed out or being health-checked).
    pub in_use: usize,
    /// Acquires waiting for a connection to come back.
    pub waiters: usize,
}

impl<T> ConnectionPool<T> {
    /// Starts a builder whose connections come from a plain factory function.
    ///
    /// The factory runs on the thread that acquires (inside an async `acquire`, it blocks that
    /// task's thread while it runs): keep it short, or use
    /// [`builder_async`](ConnectionPool::builder_async).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(vec![0u8; 4])).build().unwrap();
    /// assert_eq!(pool.acquire_blocking().unwrap().len(), 4);
    /// ```
    pub fn builder<F>(factory: F) -> ConnectionPoolBuilder<T>
    where
        F: Fn() -> io::Result<T> + Send + Sync + 'static,
    {
        ConnectionPoolBuilder::new(Factory::Blocking(Box::new(factory)))
    }

    /// Starts a builder whose connections come from an async factory: `factory()` returns a
    /// future of the connection, awaited by the acquiring task.
    ///
    /// [`acquire_blocking`](ConnectionPool::acquire_blocking) and `build()` (when `min_size > 0`)
    /// drive that future on the calling thread, outside any executor: aplex timers and I/O
    /// objects made there use aplex's global fallback reactor, so the connections work on any
    /// thread afterwards. Those calls panic inside [`block_on`](crate::block_on) or a pool
    /// worker (the thread's own reactor would stall); use
    /// [`build_async`](ConnectionPoolBuilder::build_async) and `acquire().await` there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = aplex::ConnectionPool::builder_async(|| async {
    ///     aplex::time::sleep(Duration::from_millis(1)).await; // a slow handshake
    ///     Ok(42u32)
    /// })
    /// .build()
    /// .unwrap();
    /// let n = aplex::block_on(async { *pool.acquire().await.unwrap() });
    /// assert_eq!(n, 42);
    /// ```
    pub fn builder_async<F, Fut>(factory: F) -> ConnectionPoolBuilder<T>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
    {
        let boxed = move || -> OpenFuture<T> { Box::pin(factory()) };
        ConnectionPoolBuilder::new(Factory::Async(Box::new(boxed)))
    }

    /// Takes a connection: an idle one if any, else a new one from the factory if the pool has
    /// fewer than `max_size`, else waits (FIFO) for one to come back.
    ///
    /// The health check runs on the connection before it is returned; a connection that fails
    /// it is cleaned and the next one is tried (idle, or new: see
    /// [`new_connection_attempts`](ConnectionPoolBuilder::new_connection_attempts)). Dropping
    /// the future before it completes gives up its place in line and leaks nothing.
    ///
    /// # Errors
    ///
    /// - [`Error::ShutDown`] once the pool is closed (waiters are woken by `close`).
    /// - [`Error::Io`] if the factory fails, if `new_connection_attempts` connections it has
    ///   just opened fail the health check in a row, or if the check panics on a new one. The
    ///   slot is freed either way.
    ///
    /// # Panics
    ///
    /// If the factory panics, or the cleanup of an expired connection does (see "Panics in user
    /// code" on [`ConnectionPool`]); the pool's counts stay right.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(7)).max_size(1).build().unwrap();
    /// aplex::block_on(async {
    ///     let conn = pool.acquire().await.unwrap();
    ///     assert_eq!(*conn, 7);
    /// });
    /// ```
    pub async fn acquire(&self) -> Result<Pooled<T>, Error> {
        self.inner.acquire().await
    }

    /// Like [`acquire`](ConnectionPool::acquire), giving up with [`Error::TimedOut`] once
    /// `timeout` has passed (a timeout too large for `Instant` waits forever).
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`], and those of [`acquire`](ConnectionPool::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use aplex::{ConnectionPool, Error};
    ///
    /// let pool = ConnectionPool::builder(|| Ok(())).max_size(1).build().unwrap();
    /// aplex::block_on(async {
    ///     let _only = pool.acquire().await.unwrap();
    ///     let late = pool.acquire_timeout(Duration::from_millis(10)).await;
    ///     assert_eq!(late.unwrap_err(), Error::TimedOut);
    /// });
    /// ```
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Pooled<T>, Error> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => crate::time::timeout_at(deadline, self.inner.acquire())
                .await
                .unwrap_or(Err(Error::TimedOut)),
            None => self.inner.acquire().await,
        }
    }

    /// Takes a connection, blocking the calling thread while it waits (see
    /// [`acquire`](ConnectionPool::acquire)).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: call it from plain threads, not from async code.
    ///
    /// # Panics
    ///
    /// With an async factory, panics inside [`block_on`](crate::block_on) or a pool worker (see
    /// [`builder_async`](ConnectionPool::builder_async)).
    ///
    /// # Errors
    ///
    /// Those of [`acquire`](ConnectionPool::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(1u64)).max_size(2).build().unwrap();
    /// let workers: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let pool = pool.clone();
    ///         std::thread::spawn(move || *pool.acquire_blocking().unwrap())
    ///     })
    ///     .collect();
    /// let sum: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    /// assert_eq!(sum, 4);
    /// assert!(pool.stats().size <= 2);
    /// ```
    pub fn acquire_blocking(&self) -> Result<Pooled<T>, Error> {
        self.inner.drive(self.inner.acquire())
    }

    /// Like [`acquire_blocking`](ConnectionPool::acquire_blocking), giving up with
    /// [`Error::TimedOut`] once `timeout` has passed.
    ///
    /// # Blocking
    ///
    /// As for [`acquire_blocking`](ConnectionPool::acquire_blocking), which also says when it
    /// panics.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`], and those of [`acquire`](ConnectionPool::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use aplex::{ConnectionPool, Error};
    ///
    /// let pool = ConnectionPool::builder(|| Ok(())).max_size(1).build().unwrap();
    /// let _only = pool.acquire_blocking().unwrap();
    /// let late = pool.acquire_blocking_timeout(Duration::from_millis(10));
    /// assert_eq!(late.unwrap_err(), Error::TimedOut);
    /// ```
    pub fn acquire_blocking_timeout(&self, timeout: Duration) -> Result<Pooled<T>, Error> {
        self.inner.check_drivable();
        let deadline = Instant::now().checked_add(timeout);
        let mut acquire = pin!(self.inner.acquire());
        blocking::wait_deadline(&mut acquire, deadline).unwrap_or(Err(Error::TimedOut))
    }

    /// Sweeps out expired idle connections, then opens connections until the pool holds
    /// `min_size` (or no slot is free). Returns how many it opened.
    ///
    /// The pool runs no background thread; call this periodically to keep `min_size`
    /// connections warm after retirements. It does nothing on a closed pool.
    ///
    /// # Errors
    ///
    /// The factory's error; connections opened before it stay in the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).min_size(2).build().unwrap();
    /// pool.acquire_blocking().unwrap().discard();
    /// assert_eq!(pool.stats().size, 1);
    /// assert_eq!(aplex::block_on(pool.maintain()).unwrap(), 1);
    /// assert_eq!(pool.stats().size, 2);
    /// ```
    pub async fn maintain(&self) -> io::Result<usize> {
        self.inner.top_up().await
    }

    /// [`maintain`](ConnectionPool::maintain) from plain threads.
    ///
    /// # Blocking
    ///
    /// Runs the factory on this thread.
    ///
    /// # Panics
    ///
    /// With an async factory, panics inside [`block_on`](crate::block_on) or a pool worker (see
    /// [`builder_async`](ConnectionPool::builder_async)).
    ///
    /// # Errors
    ///
    /// The factory's error.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).min_size(1).build().unwrap();
    /// pool.acquire_blocking().unwrap().discard();
    /// assert_eq!(pool.maintain_blocking().unwrap(), 1);
    /// assert_eq!(pool.stats().available, 1);
    /// ```
    pub fn maintain_blocking(&self) -> io::Result<usize> {
        self.inner.drive(self.inner.top_up())
    }

    /// The pool's counts right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).min_size(1).build().unwrap();
    /// let stats = pool.stats();
    /// assert_eq!((stats.size, stats.available, stats.in_use, stats.waiters), (1, 1, 0, 0));
    /// ```
    pub fn stats(&self) -> ConnectionPoolStats {
        self.inner.stats()
    }

    /// The most connections the pool holds at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).max_size(3).build().unwrap();
    /// assert_eq!(pool.max_size(), 3);
    /// ```
    pub fn max_size(&self) -> usize {
        self.inner.config.max_size
    }

    /// Closes the pool: every idle connection is cleaned now, every connection in use is
    /// cleaned when its guard is dropped, and every acquire — pending or later — fails with
    /// [`Error::ShutDown`]. Closing twice does nothing more.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use aplex::{ConnectionPool, Error};
    ///
    /// let cleaned = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&cleaned);
    /// let pool = ConnectionPool::builder(|| Ok(()))
    ///     .min_size(2)
    ///     .cleanup(move |()| { counter.fetch_add(1, Ordering::SeqCst); })
    ///     .build()
    ///     .unwrap();
    /// let held = pool.acquire_blocking().unwrap();
    /// pool.close();
    /// assert_eq!(cleaned.load(Ordering::SeqCst), 1); // the idle one
    /// drop(held);
    /// assert_eq!(cleaned.load(Ordering::SeqCst), 2); // the one in use, once returned
    /// assert_eq!(pool.acquire_blocking().unwrap_err(), Error::ShutDown);
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](ConnectionPool::close) has been called.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).build().unwrap();
    /// assert!(!pool.is_closed());
    /// pool.close();
    /// assert!(pool.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl<T> Clone for ConnectionPool<T> {
    /// Another handle to the same pool.
    fn clone(&self) -> Self {
        ConnectionPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for ConnectionPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct("ConnectionPool")
            .field("max_size", &self.inner.config.max_size)
            .field("min_size", &self.inner.config.min_size)
            .field("max_life", &self.inner.config.max_life)
            .field("size", &stats.size)
            .field("available", &stats.available)
            .field("in_use", &stats.in_use)
            .field("waiters", &stats.waiters)
            .field("closed", &self.is_closed())
            .finish()
    }
}
