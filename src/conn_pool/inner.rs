//! The pool's shared core: its state, the acquire / give back / top up / close transitions, and
//! the guards that keep its counts right when a future is dropped or user code panics. The
//! ownership rules are in the parent module's docs.

use std::future::{poll_fn, Future};
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{ConnectionPoolStats, Pooled};
use crate::error::Error;
use crate::runtime::executor::with_current;
use crate::sync::blocking;
use crate::sync::{Event, Semaphore, SemaphoreGuardArc};

/// The future an async factory returns, boxed.
pub(super) type OpenFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

/// A user's health check.
pub(super) type HealthCheck<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;

/// A user's cleanup callback.
pub(super) type Cleanup<T> = Box<dyn Fn(T) + Send + Sync>;

/// How the pool opens a connection.
pub(super) enum Factory<T> {
    /// A plain function, called on the acquiring thread.
    Blocking(Box<dyn Fn() -> io::Result<T> + Send + Sync>),
    /// A function returning a future, awaited by the acquiring task.
    Async(Box<dyn Fn() -> OpenFuture<T> + Send + Sync>),
}

/// Everything the builder sets.
pub(super) struct Config<T> {
    pub(super) factory: Factory<T>,
    pub(super) max_size: usize,
    pub(super) min_size: usize,
    pub(super) max_life: Option<Duration>,
    pub(super) health_check: Option<HealthCheck<T>>,
    /// How many new connections one acquire opens, each failing the health check, before it
    /// gives up (at least 1).
    pub(super) new_connection_attempts: usize,
    pub(super) cleanup: Option<Cleanup<T>>,
}

/// An idle connection and when it was opened.
struct Idle<T> {
    conn: T,
    created: Instant,
}

/// What the pool's lock guards.
struct State<T> {
    /// Connections ready to hand out; the most recently returned is last.
    idle: Vec<Idle<T>>,
    /// Connections held by `Pooled` guards (being checked or handed out).
    in_use: usize,
    /// Factory calls under way.
    opening: usize,
    /// Set once by `close`.
    closed: bool,
}

/// The pool proper, shared by every handle and every `Pooled` guard.
pub(super) struct Inner<T> {
    pub(super) config: Config<T>,
    state: Mutex<State<T>>,
    /// One permit per connection that may be out of `idle` or being opened.
    slots: Arc<Semaphore>,
    /// Set by `close`, to wake every waiter.
    closed: Event,
    /// Acquires waiting for a slot (a statistic).
    waiters: AtomicUsize,
}

/// Locks the state, ignoring poisoning: every critical section leaves the state consistent
/// before anything that could panic (user code never runs under the lock).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a slot holder does next: take an idle connection, or open one.
enum Next<'a, T> {
    Idle(Idle<T>),
    Open(Opening<'a, T>),
}

/// Counts an acquire as waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        // ORDERING: a statistic; no other memory depends on it.
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // ORDERING: as in `Waiting::new`.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A factory call counted in `State::opening`; uncounted on drop unless it `land`ed (so a
/// factory that fails, panics or is cancelled leaves the count right).
struct Opening<'a, T> {
    inner: &'a Inner<T>,
    counted: bool,
}

impl<'a, T> Opening<'a, T> {
    /// Counts a factory call; the caller holds the lock on `state`.
    fn start(inner: &'a Inner<T>, state: &mut State<T>) -> Self {
        state.opening += 1;
        Opening {
            inner,
            counted: true,
        }
    }

    /// The factory returned a connection: uncount the call under the caller's lock.
    fn land(mut self, state: &mut State<T>) {
        state.opening -= 1;
        self.counted = false;
    }

    /// Runs the factory for this call. Returns the connection with the state locked, or
    /// `Ok(None)` if the pool was closed meanwhile (the connection is cleaned then). A factory
    /// error uncounts the call as `self` drops.
    async fn open(self) -> io::Result<Option<(T, MutexGuard<'a, State<T>>)>> {
        let inner = self.inner;
        let conn = inner.open().await?;
        let mut state = lock(&inner.state);
        self.land(&mut state);
        if state.closed {
            drop(state);
            inner.clean(conn);
            return Ok(None);
        }
        Ok(Some((conn, state)))
    }
}

impl<T> Drop for Opening<'_, T> {
    fn drop(&mut self) {
        if self.counted {
            lock(&self.inner.state).opening -= 1;
        }
    }
}

impl<T> Inner<T> {
    pub(super) fn new(config: Config<T>) -> Self {
        Inner {
            slots: Arc::new(Semaphore::new(config.max_size)),
            config,
            state: Mutex::new(State {
                idle: Vec::new(),
                in_use: 0,
                opening: 0,
                closed: false,
            }),
            closed: Event::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Drives a future on this thread, parked between polls.
    pub(super) fn drive<F: Future>(&self, future: F) -> F::Output {
        self.check_drivable();
        blocking::wait(future)
    }

    /// Panics if an async factory would be driven by a blocking call on a thread that runs an
    /// aplex executor: its timers and I/O would register with that executor's reactor, which
    /// cannot turn while the thread is blocked, and the call would hang instead.
    pub(super) fn check_drivable(&self) {
        if matches!(self.config.factory, Factory::Async(_)) && with_current(|_| ()).is_some() {
            panic!(
                "ConnectionPool: a blocking call with an async factory inside block_on or a pool \
                 worker would stall this thread's reactor; use acquire().await or build_async()"
            );
        }
    }

    /// Whether a connection opened at `created` has outlived `max_life`.
    fn expired(&self, created: Instant, now: Instant) -> bool {
        self.config
            .max_life
            .is_some_and(|life| now.saturating_duration_since(created) >= life)
    }

    /// Takes the expired connections out of `idle` (to be cleaned after the lock is released).
    #[must_use = "clean the expired connections after releasing the lock"]
    fn take_expired(&self, state: &mut State<T>) -> Vec<T> {
        let mut expired = Vec::new();
        if self.config.max_life.is_none() {
            return expired;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < state.idle.len() {
            if self.expired(state.idle[i].created, now) {
                expired.push(state.idle.remove(i).conn);
            } else {
                i += 1;
            }
        }
        expired
    }

    /// Passes a retired connection to the cleanup callback (or drops it). No lock may be held.
    fn clean(&self, conn: T) {
        match &self.config.cleanup {
            Some(cleanup) => cleanup(conn),
            None => drop(conn),
        }
    }

    /// Cleans every connection, even if the cleanup panics for some: the first panic is
    /// resumed once all were passed to it — unless this thread is already unwinding (a
    /// `Pooled` dropped by a panic gives its connection back from its `Drop`, where a second
    /// panic would abort the process): the cleanup's panic is dropped then.
    fn clean_all(&self, conns: Vec<T>) {
        let mut first_panic = None;
        for conn in conns {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.clean(conn))) {
                first_panic.get_or_insert(panic);
            }
        }
        if let Some(panic) = first_panic {
            if std::thread::panicking() {
                crate::runtime::task::drop_contained(panic);
            } else {
                resume_unwind(panic);
            }
        }
    }

    /// Runs the factory.
    async fn open(&self) -> io::Result<T> {
        match &self.config.factory {
            Factory::Blocking(open) => open(),
            Factory::Async(open) => open().await,
        }
    }

    /// Runs the health check; a check that panics fails (`Err` with its message).
    fn check_health(&self, conn: &T) -> Result<bool, String> {
        match &self.config.health_check {
            None => Ok(true),
            Some(check) => catch_unwind(AssertUnwindSafe(|| check(conn)))
                .map_err(crate::runtime::task::take_panic_message),
        }
    }

    pub(super) async fn acquire(self: &Arc<Self>) -> Result<Pooled<T>, Error> {
        // A closed pool is caught by `fill` or `wait_for_slot`, so no check is needed here.
        let slot = match self.slots.try_acquire_arc() {
            Some(slot) => slot,
            None => self.wait_for_slot().await?,
        };
        self.fill(slot).await
    }

    /// Waits in line for a slot, or for `close`.
    async fn wait_for_slot(&self) -> Result<SemaphoreGuardArc, Error> {
        let _waiting = Waiting::new(&self.waiters);
        let mut slot = self.slots.acquire_arc();
        let mut closed = self.closed.wait();
        poll_fn(|cx| {
            if Pin::new(&mut closed).poll(cx).is_ready() {
                // Dropping `slot` gives back a permit it may have been granted meanwhile.
                return Poll::Ready(Err(Error::ShutDown));
            }
            Pin::new(&mut slot).poll(cx).map(Ok)
        })
        .await
    }

    /// With a slot in hand, finds a healthy connection: an idle one, or a new one. A new one
    /// that fails the check is cleaned and the search goes on (an idle connection may have come
    /// back meanwhile), until `new_connection_attempts` new ones in a row have failed.
    async fn fill(self: &Arc<Self>, mut slot: SemaphoreGuardArc) -> Result<Pooled<T>, Error> {
        let mut failed_new = 0;
        loop {
            let (next, expired) = {
                let mut state = lock(&self.state);
                if state.closed {
                    drop(state);
                    return Err(Error::ShutDown);
                }
                let expired = self.take_expired(&mut state);
                let next = match state.idle.pop() {
                    Some(idle) => {
                        state.in_use += 1;
                        Next::Idle(idle)
                    }
                    None => Next::Open(Opening::start(self, &mut state)),
                };
                (next, expired)
            };
            // Guard the connection counted in `in_use` before any user code runs: a cleanup
            // that panics below then gives it back as the guard drops.
            let next = match next {
                Next::Idle(idle) => Ok(Pooled::new(self, idle.conn, idle.created, slot)),
                Next::Open(opening) => Err((opening, slot)),
            };
            self.clean_all(expired);
            let (pooled, fresh) = match next {
                Ok(pooled) => (pooled, false),
                Err((opening, slot)) => {
                    let Some((conn, mut state)) = opening.open().await? else {
                        return Err(Error::ShutDown);
                    };
                    state.in_use += 1;
                    drop(state);
                    (Pooled::new(self, conn, Instant::now(), slot), true)
                }
            };
            let failure = match self.check_health(&pooled) {
                Ok(true) => return Ok(pooled),
                Ok(false) if fresh => {
                    failed_new += 1;
                    (failed_new >= self.config.new_connection_attempts).then(|| {
                        format!(
                            "{failed_new} newly opened connection(s) in a row failed the health \
                             check"
                        )
                    })
                }
                Ok(false) => None,
                // A check that panics is a bug, not an unlucky connection: opening more would
                // only panic again.
                Err(why) if fresh => Some(format!(
                    "the health check panicked on a new connection: {why}"
                )),
                Err(_) => None,
            };
            // Failed (or panicked): never handed out again.
            slot = pooled.retire();
            if let Some(failure) = failure {
                return Err(Error::Io(io::Error::other(failure)));
            }
            // A factory that returns at once would make this loop never return `Pending`: yield
            // between attempts, so that the caller's deadline (`acquire_timeout`) gets a look
            // and the executor's other tasks a turn.
            crate::runtime::yield_now().await;
        }
    }

    /// A connection comes back from a `Pooled` guard.
    pub(super) fn give_back(&self, conn: T, created: Instant) {
        let mut state = lock(&self.state);
        state.in_use -= 1;
        let mut retired = self.take_expired(&mut state);
        if state.closed || self.expired(created, Instant::now()) {
            retired.push(conn);
        } else {
            state.idle.push(Idle { conn, created });
        }
        drop(state);
        self.clean_all(retired);
    }

    /// A connection held by a `Pooled` guard leaves the pool.
    pub(super) fn retire_in_use(&self, conn: T) {
        lock(&self.state).in_use -= 1;
        self.clean(conn);
    }

    /// Sweeps expired idle connections, then opens up to `min_size`.
    pub(super) async fn top_up(&self) -> io::Result<usize> {
        let expired = self.take_expired(&mut lock(&self.state));
        self.clean_all(expired);
        let mut opened = 0;
        while let Some(slot) = self.slots.try_acquire_arc() {
            let opening = {
                let mut state = lock(&self.state);
                let size = state.idle.len() + state.in_use + state.opening;
                if state.closed || size >= self.config.min_size {
                    break;
                }
                Opening::start(self, &mut state)
            };
            let Some((conn, mut state)) = opening.open().await? else {
                break;
            };
            let created = Instant::now();
            state.idle.push(Idle { conn, created });
            drop(state);
            drop(slot);
            opened += 1;
        }
        Ok(opened)
    }

    pub(super) fn stats(&self) -> ConnectionPoolStats {
        let state = lock(&self.state);
        ConnectionPoolStats {
            size: state.idle.len() + state.in_use,
            available: state.idle.len(),
            in_use: state.in_use,
            // ORDERING: a statistic; no other memory depends on it.
            waiters: self.waiters.load(Ordering::Relaxed),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    pub(super) fn close(&self) {
        let mut state = lock(&self.state);
        let idle = if state.closed {
            Vec::new()
        } else {
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        drop(state);
        self.closed.set();
        self.clean_all(idle.into_iter().map(|idle| idle.conn).collect());
    }
}

impl<T> Drop for Inner<T> {
    /// The last handle and the last guard are gone: clean what is still idle.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let idle = std::mem::take(&mut state.idle);
        for Idle { conn, .. } in idle {
            // A panic cannot leave a drop safely: a cleanup that panics is skipped, the others
            // still run.
            crate::runtime::task::contain(|| self.clean(conn));
        }
    }
}
