//! [`Pooled`]: a connection on loan from a [`ConnectionPool`](crate::ConnectionPool).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inner::Inner;
use crate::sync::SemaphoreGuardArc;

/// A connection taken from a [`ConnectionPool`](crate::ConnectionPool); derefs to it.
///
/// Dropping the guard puts the connection back (or retires it, if it outlived `max_life` or the
/// pool was closed) and lets the next waiter in. [`discard`](Pooled::discard) retires it
/// instead. The guard is `Send` when `T` is, so it may be returned from another thread.
///
/// # Examples
///
/// ```
/// let pool = aplex::ConnectionPool::builder(|| Ok(Vec::<u8>::new())).max_size(1).build().unwrap();
/// {
///     let mut conn = pool.acquire_blocking().unwrap();
///     conn.extend_from_slice(b"hello"); // DerefMut
///     assert_eq!(conn.len(), 5); // Deref
/// }
/// assert_eq!(pool.acquire_blocking().unwrap().as_slice(), b"hello"); // the same connection
/// ```
#[must_use = "dropping the guard at once gives the connection straight back"]
pub struct Pooled<T> {
    /// `Some` until the guard gives the connection away (in `drop`, `discard` or `retire`).
    conn: Option<T>,
    created: Instant,
    pool: Arc<Inner<T>>,
    /// Released after the connection is back in `idle` (fields drop after `Drop::drop`).
    slot: Option<SemaphoreGuardArc>,
}

const TAKEN: &str = "a Pooled guard holds its connection until it is consumed";

impl<T> Pooled<T> {
    pub(super) fn new(
        pool: &Arc<Inner<T>>,
        conn: T,
        created: Instant,
        slot: SemaphoreGuardArc,
    ) -> Self {
        Pooled {
            conn: Some(conn),
            created,
            pool: Arc::clone(pool),
            slot: Some(slot),
        }
    }

    /// Retires the connection instead of returning it: the pool's cleanup receives it, and its
    /// slot is free for a new connection.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).min_size(1).build().unwrap();
    /// pool.acquire_blocking().unwrap().discard();
    /// assert_eq!(pool.stats().size, 0);
    /// ```
    pub fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.retire_in_use(conn);
        }
    }

    /// How long ago the factory returned this connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = aplex::ConnectionPool::builder(|| Ok(())).build().unwrap();
    /// let conn = pool.acquire_blocking().unwrap();
    /// assert!(conn.age() < Duration::from_secs(60));
    /// ```
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// Retires the connection (it failed the health check) and hands back its slot.
    pub(super) fn retire(mut self) -> SemaphoreGuardArc {
        let slot = self.slot.take().expect(TAKEN);
        if let Some(conn) = self.conn.take() {
            self.pool.retire_in_use(conn);
        }
        slot
    }
}

impl<T> Deref for Pooled<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.conn.as_ref().expect(TAKEN)
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.conn.as_mut().expect(TAKEN)
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn, self.created);
        }
    }
}

/// Shows the guard, not the connection (so that `T` need not be `Debug`; `{:?}` on `*guard`
/// shows the connection).
impl<T> fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("connection", &std::any::type_name::<T>())
            .field("age", &self.age())
            .finish_non_exhaustive()
    }
}
