//! [`ConnectionPoolBuilder`]: the settings of a [`ConnectionPool`] and the checks on them.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::inner::{Config, Factory, Inner};
use super::ConnectionPool;

/// The default [`max_size`](ConnectionPoolBuilder::max_size).
const DEFAULT_MAX_SIZE: usize = 10;

/// The default [`new_connection_attempts`](ConnectionPoolBuilder::new_connection_attempts).
const DEFAULT_NEW_CONNECTION_ATTEMPTS: usize = 3;

/// Settings for a [`ConnectionPool`], from [`ConnectionPool::builder`] or
/// [`ConnectionPool::builder_async`].
///
/// Defaults: `max_size` 10, `min_size` 0, no `max_life`, no health check (with one, up to 3
/// new connections per acquire), and retired connections are simply dropped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = aplex::ConnectionPool::builder(|| Ok(Vec::<u8>::new()))
///     .max_size(4)
///     .min_size(1)
///     .max_life(Duration::from_secs(300))
///     .health_check(|conn| conn.len() < 1024)
///     .cleanup(|conn| drop(conn))
///     .build()
///     .unwrap();
/// assert_eq!(pool.stats().size, 1);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConnectionPoolBuilder<T> {
    config: Config<T>,
}

impl<T> ConnectionPoolBuilder<T> {
    pub(super) fn new(factory: Factory<T>) -> Self {
        ConnectionPoolBuilder {
            config: Config {
                factory,
                max_size: DEFAULT_MAX_SIZE,
                min_size: 0,
                max_life: None,
                health_check: None,
                new_connection_attempts: DEFAULT_NEW_CONNECTION_ATTEMPTS,
                cleanup: None,
            },
        }
    }

    /// The most connections the pool holds at once, idle and in use together (default 10;
    /// 0 makes `build` fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).max_size(1).build().unwrap();
    /// let _only = pool.acquire_blocking().unwrap();
    /// assert_eq!(pool.stats().size, 1);
    /// ```
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size;
        self
    }

    /// How many connections `build` opens at once, and [`ConnectionPool::maintain`] tops the
    /// pool back up to (default 0; more than `max_size` makes `build` fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).min_size(3).build().unwrap();
    /// assert_eq!(pool.stats().available, 3);
    /// ```
    pub fn min_size(mut self, min_size: usize) -> Self {
        self.config.min_size = min_size;
        self
    }

    /// Retires connections older than `max_life` (counted from when the factory returned
    /// them): an expired connection is cleaned instead of handed out or put back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = aplex::ConnectionPool::builder(|| Ok(std::time::Instant::now()))
    ///     .max_life(Duration::from_millis(5))
    ///     .build()
    ///     .unwrap();
    /// let first = *pool.acquire_blocking().unwrap();
    /// std::thread::sleep(Duration::from_millis(10));
    /// let second = *pool.acquire_blocking().unwrap();
    /// assert!(second > first); // the first one expired and was replaced
    /// ```
    pub fn max_life(mut self, max_life: Duration) -> Self {
        self.config.max_life = Some(max_life);
        self
    }

    /// A check run on every connection before it is handed out, new ones included. A
    /// connection that fails it is cleaned, never handed out, and the acquire goes on: an idle
    /// one is replaced by the next idle one or a new one; a new one by another new one, up to
    /// [`new_connection_attempts`](ConnectionPoolBuilder::new_connection_attempts) new ones in
    /// a row (default 3), after which the acquire fails with [`Error::Io`](crate::Error::Io).
    /// A check that panics on a new connection fails the acquire at once (a bug in the check
    /// would only panic again).
    ///
    /// It runs on the acquiring thread with no lock held; keep it quick.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let opened = Arc::new(AtomicU32::new(0));
    /// let count = Arc::clone(&opened);
    /// let pool = aplex::ConnectionPool::builder(move || {
    ///     count.fetch_add(1, Ordering::SeqCst);
    ///     Ok(AtomicBool::new(true)) // "alive"
    /// })
    /// .health_check(|alive| alive.load(Ordering::SeqCst))
    /// .build()
    /// .unwrap();
    /// pool.acquire_blocking().unwrap().store(false, Ordering::SeqCst); // it breaks in use
    /// assert!(pool.acquire_blocking().unwrap().load(Ordering::SeqCst)); // a fresh one
    /// assert_eq!(opened.load(Ordering::SeqCst), 2);
    /// ```
    pub fn health_check<F>(mut self, check: F) -> Self
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.config.health_check = Some(Box::new(check));
        self
    }

    /// How many brand-new connections one acquire opens, each failing the
    /// [`health_check`](ConnectionPoolBuilder::health_check), before it gives up with
    /// [`Error::Io`](crate::Error::Io) (default 3; 0 makes `build` fail; 1 gives up at the first
    /// failure).
    ///
    /// Why retry: a fresh connection can be bad by luck (a backend behind a balancer that is
    /// restarting, a handshake that half failed), and a pool user expects `acquire` to try
    /// again rather than fail, as bb8 and r2d2 do until their connection timeout (deadpool
    /// skips the check for new objects; aplex keeps its promise that every connection handed
    /// out passed the check). Why a bound: a check that never passes (a wrong check, a dead
    /// server) must end in an error, not in a loop that opens connections for ever. Each
    /// attempt is one factory call, with no pause in between; the attempts also stop at the
    /// deadline of [`acquire_timeout`](crate::ConnectionPool::acquire_timeout) or
    /// [`acquire_blocking_timeout`](crate::ConnectionPool::acquire_blocking_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let opened = Arc::new(AtomicU32::new(0));
    /// let count = Arc::clone(&opened);
    /// let pool = aplex::ConnectionPool::builder(move || Ok(count.fetch_add(1, Ordering::SeqCst)))
    ///     .health_check(|id| *id >= 2) // the first two connections come out bad
    ///     .new_connection_attempts(3)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(*pool.acquire_blocking().unwrap(), 2);
    /// assert_eq!(opened.load(Ordering::SeqCst), 3);
    /// ```
    pub fn new_connection_attempts(mut self, attempts: usize) -> Self {
        self.config.new_connection_attempts = attempts;
        self
    }

    /// Receives every connection the pool retires: unhealthy, expired, discarded, returned
    /// after `close`, or idle at `close` or when the pool is dropped. Without it they are
    /// dropped.
    ///
    /// It runs with no lock held, on the thread that retires the connection (often inside a
    /// [`Pooled`](crate::Pooled) guard's drop); it should not panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let closed = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&closed);
    /// let pool = aplex::ConnectionPool::builder(|| Ok("conn"))
    ///     .cleanup(move |conn| log.lock().unwrap().push(conn))
    ///     .build()
    ///     .unwrap();
    /// pool.acquire_blocking().unwrap().discard();
    /// assert_eq!(*closed.lock().unwrap(), vec!["conn"]);
    /// ```
    pub fn cleanup<F>(mut self, cleanup: F) -> Self
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        self.config.cleanup = Some(Box::new(cleanup));
        self
    }

    /// Checks the settings, then builds the pool and opens `min_size` connections.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `max_size` or `new_connection_attempts` is 0 or
    /// `min_size > max_size`; the
    /// factory's error if opening the first `min_size` connections fails (those already opened
    /// are cleaned).
    ///
    /// # Panics
    ///
    /// With an async factory and `min_size > 0`, panics inside [`block_on`](crate::block_on) or
    /// a pool worker (see [`ConnectionPool::builder_async`]): use
    /// [`build_async`](ConnectionPoolBuilder::build_async) there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    ///
    /// let zero = aplex::ConnectionPool::builder(|| Ok(())).max_size(0).build();
    /// assert_eq!(zero.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    ///
    /// let refused = aplex::ConnectionPool::<()>::builder(|| Err(io::ErrorKind::ConnectionRefused.into()))
    ///     .min_size(1)
    ///     .build();
    /// assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn build(self) -> io::Result<ConnectionPool<T>> {
        let pool = self.checked()?;
        if pool.inner.config.min_size > 0 {
            pool.inner.drive(pool.inner.top_up())?;
        }
        Ok(pool)
    }

    /// Like [`build`](ConnectionPoolBuilder::build), opening the `min_size` connections with
    /// `.await`: for async code with an async factory.
    ///
    /// # Errors
    ///
    /// Those of [`build`](ConnectionPoolBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// aplex::block_on(async {
    ///     let pool = aplex::ConnectionPool::builder_async(|| async { Ok(5u8) })
    ///         .min_size(2)
    ///         .build_async()
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(pool.stats().available, 2);
    /// });
    /// ```
    pub async fn build_async(self) -> io::Result<ConnectionPool<T>> {
        let pool = self.checked()?;
        pool.inner.top_up().await?;
        Ok(pool)
    }

    /// The pool, with nothing opened yet, if the settings make sense.
    fn checked(self) -> io::Result<ConnectionPool<T>> {
        let config = self.config;
        if config.max_size == 0 {
            return Err(invalid("max_size must be at least 1"));
        }
        if config.min_size > config.max_size {
            return Err(invalid("min_size must not exceed max_size"));
        }
        if config.new_connection_attempts == 0 {
            return Err(invalid("new_connection_attempts must be at least 1"));
        }
        Ok(ConnectionPool {
            inner: Arc::new(Inner::new(config)),
        })
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("ConnectionPool: {why}"),
    )
}

impl<T> fmt::Debug for ConnectionPoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let factory = match self.config.factory {
            Factory::Blocking(_) => "blocking",
            Factory::Async(_) => "async",
        };
        f.debug_struct("ConnectionPoolBuilder")
            .field("factory", &factory)
            .field("max_size", &self.config.max_size)
            .field("min_size", &self.config.min_size)
            .field("max_life", &self.config.max_life)
            .field("health_check", &self.config.health_check.is_some())
            .field(
                "new_connection_attempts",
                &self.config.new_connection_attempts,
            )
            .field("cleanup", &self.config.cleanup.is_some())
            .finish()
    }
}
