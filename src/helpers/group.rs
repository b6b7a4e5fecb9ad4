//! `Group`: spawn futures from plain synchronous code, then wait for all of them (aioutils'
//! `Group` and, with a limit, `Pool`).
//!
//! # Ownership rules
//!
//! - A group owns a small [`ThreadPool`] of its own, in `Shared`; the [`Group`] and every
//!   [`GroupHandle`] hold `Shared` through an `Arc`. The futures run on that pool, never on the
//!   caller's thread.
//! - `pending` counts futures spawned and not yet ended. It goes up in `spawn`, before the future
//!   is handed to the pool, and down when the future's [`Ticket`] drops: after the future ended
//!   (its value, its panic) or was dropped unrun (the pool was closed). So `pending == 0` means
//!   nothing spawned is left, nested spawns included: a future that spawns holds its own ticket
//!   while it does.
//! - `first_panic` is written once, by the ticket of the first future that panicked.
//! - The state lock is held only to change those two fields; the condvar is notified under it
//!   (a condvar is not a waker: no user code runs).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::Poll;

use crate::runtime::reactor::lock;
use crate::runtime::task::take_panic_message;
use crate::sync::Semaphore;
use crate::{Error, ThreadPool};

/// Where a future may run at once on one of a group's workers: no practical limit, since a
/// group promises that everything spawned runs concurrently (`with_limit` aside).
const WORKS_PER_WORKER: usize = 1 << 20;

/// Gives each group an id, so that a worker knows which group it belongs to.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the group whose worker this thread is (0: none).
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

/// Runs `future`, turning a panic inside it into `Err(message)`. The future is dropped here,
/// as soon as it finished, so that a panic in its `Drop` is an `Err` too: left to the caller's
/// drop, it would unwind past the code that reports the outcome, and the outcome would be
/// lost without a word.
pub(crate) async fn catch_panic<F: Future>(future: F) -> Result<F::Output, String> {
    // Boxed, so that the finished future can be moved out of its slot (the box moves, not the
    // future) and dropped inside the guard.
    let mut slot = Some(Box::pin(future));
    poll_fn(|cx| {
        let Some(future) = slot.as_mut() else {
            unreachable!("catch_panic polled after it finished")
        };
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        if let Ok(Poll::Pending) = polled {
            return Poll::Pending;
        }
        // Finished (a value or a panic): drop the future now, inside the guard.
        let finished = slot.take();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(finished)));
        Poll::Ready(match (polled, dropped) {
            (Err(payload), dropped) => {
                // The first panic is the outcome; a second one, from the drop, is let go.
                crate::runtime::task::drop_contained(dropped);
                Err(take_panic_message(payload))
            }
            (Ok(_), Err(payload)) => Err(take_panic_message(payload)),
            (Ok(Poll::Ready(value)), Ok(())) => Ok(value),
            (Ok(Poll::Pending), Ok(())) => unreachable!("returned above"),
        })
    })
    .await
}

#[derive(Debug, Default)]
struct State {
    pending: usize,
    first_panic: Option<String>,
}

/// What a group and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    id: u64,
    pool: ThreadPool,
    state: Mutex<State>,
    idle: Condvar,
    limit: Option<Arc<Semaphore>>,
}

/// One spawned future's place in `pending`; dropping it ends the future's count.
struct Ticket {
    shared: Arc<Shared>,
    panic: Option<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        if let Some(msg) = self.panic.take() {
            state.first_panic.get_or_insert(msg);
        }
        state.pending -= 1;
        if state.pending == 0 {
            self.shared.idle.notify_all();
        }
    }
}

impl Shared {
    fn start(limit: Option<usize>) -> Arc<Shared> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let workers = crate::runtime::available_cores();
        let pool = ThreadPool::builder()
            .workers(workers)
            .max_works_per_worker(WORKS_PER_WORKER)
            .thread_name("aplex-group")
            .on_worker_start(move |_| WORKER_OF.with(|w| w.set(id)))
            .build()
            .unwrap_or_else(|e| panic!("aplex::Group: cannot start its worker threads: {e}"));
        Arc::new(Shared {
            id,
            pool,
            state: Mutex::new(State::default()),
            idle: Condvar::new(),
            limit: limit.map(|n| Arc::new(Semaphore::new(n))),
        })
    }

    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        lock(&self.state).pending += 1;
        let mut ticket = Ticket {
            shared: Arc::clone(self),
            panic: None,
        };
        let limit = self.limit.clone();
        // The handle is not needed: the ticket reports the end and any panic.
        let handle = self.pool.spawn(move || async move {
            let _permit = match &limit {
                Some(limit) => Some(limit.acquire_arc().await),
                None => None,
            };
            if let Err(msg) = catch_panic(future).await {
                ticket.panic = Some(msg);
            }
            drop(ticket);
        });
        drop(handle); // the work runs on; its outcome is not needed
    }

    /// Whether the calling thread is one of this group's workers.
    fn on_own_worker(&self) -> bool {
        WORKER_OF.with(Cell::get) == self.id
    }

    /// Blocks until nothing spawned is left, then stops the pool; the first panic, if any.
    fn wait_all(&self) -> Option<String> {
        let mut state = lock(&self.state);
        while state.pending > 0 {
            state = self
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let panic = state.first_panic.take();
        drop(state);
        self.pool.shutdown();
        panic
    }

    /// Cancels every future still running or waiting, and stops the pool.
    pub(crate) fn cancel_all(&self) {
        self.pool.shutdown_now();
    }
}

/// Futures spawned from plain synchronous code and waited for together: aioutils' `Group`
/// (and, made with [`with_limit`](Group::with_limit), its `Pool`).
///
/// The futures run on a small thread pool the group owns (one thread per core), not on the
/// caller's thread, so the caller needs no runtime: spawn from `main`, then
/// [`join`](Group::join). Futures spawn more futures into the same group through a
/// [`GroupHandle`], and `join` waits for those too.
///
/// Why a pool of its own rather than the global one: `join` blocks its thread, and a group
/// joined from inside a global-pool closure (or inside another group's future) must not wait
/// for futures queued behind that very thread. A group's own threads only ever run its futures.
///
/// Dropping a group without `join` waits the same way (ignoring panics).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
///
/// let done = Arc::new(AtomicUsize::new(0));
/// let group = aplex::Group::new();
/// let start = Instant::now();
/// for _ in 0..10 {
///     let handle = group.handle();
///     let done = done.clone();
///     group.spawn(async move {
///         for _ in 0..10 {
///             let done = done.clone();
///             handle.spawn(async move {
///                 aplex::time::sleep(Duration::from_millis(100)).await;
///                 done.fetch_add(1, Ordering::SeqCst);
///             });
///         }
///     });
/// }
/// group.join().unwrap();
/// assert_eq!(done.load(Ordering::SeqCst), 100);
/// assert!(start.elapsed() < Duration::from_secs(5)); // concurrent: ~0.1 s; in turns, 10 s
/// ```
pub struct Group {
    shared: Arc<Shared>,
    joined: bool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("pending", &lock(&self.shared.state).pending)
            .field("limit", &self.shared.limit.is_some())
            .finish()
    }
}

impl Default for Group {
    fn default() -> Group {
        Group::new()
    }
}

impl Group {
    /// A group whose futures all run concurrently.
    ///
    /// # Panics
    ///
    /// Panics if its worker threads cannot be started.
    ///
    /// ```
    /// let group = aplex::Group::new();
    /// group.spawn(async {});
    /// assert!(group.join().is_ok());
    /// ```
    pub fn new() -> Group {
        Group {
            shared: Shared::start(None),
            joined: false,
        }
    }

    /// A group that runs at most `n` of its futures at once (aioutils' `Pool`); the others wait
    /// for a free place before their first poll.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0, or if its worker threads cannot be started.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let group = aplex::Group::with_limit(2);
    /// let start = Instant::now();
    /// for _ in 0..4 {
    ///     group.spawn(async { aplex::time::sleep(Duration::from_millis(50)).await });
    /// }
    /// group.join().unwrap();
    /// assert!(start.elapsed() >= Duration::from_millis(100)); // two rounds of two
    /// ```
    pub fn with_limit(n: usize) -> Group {
        assert!(
            n > 0,
            "aplex::Group::with_limit: n must be at least 1 (got 0)"
        );
        Group {
            shared: Shared::start(Some(n)),
            joined: false,
        }
    }

    /// Starts `future` on the group's threads. It runs even if nobody joins (a drop waits).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let group = aplex::Group::new();
    /// let r = ran.clone();
    /// group.spawn(async move { r.store(true, Ordering::SeqCst) });
    /// group.join().unwrap();
    /// assert!(ran.load(Ordering::SeqCst));
    /// ```
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shared.spawn(future);
    }

    /// A cloneable handle that spawns into this group, from inside its futures or from other
    /// threads.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let count = Arc::new(AtomicUsize::new(0));
    /// let group = aplex::Group::new();
    /// let handle = group.handle();
    /// let c = count.clone();
    /// group.spawn(async move {
    ///     let c2 = c.clone();
    ///     handle.spawn(async move { c2.fetch_add(1, Ordering::SeqCst); });
    ///     c.fetch_add(1, Ordering::SeqCst);
    /// });
    /// group.join().unwrap();
    /// assert_eq!(count.load(Ordering::SeqCst), 2); // the nested one too
    /// ```
    pub fn handle(&self) -> GroupHandle {
        GroupHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Blocks until every spawned future has ended, the nested ones included, then stops the
    /// group's threads.
    ///
    /// # Errors
    ///
    /// `Err(Error::Panicked(message))` with the message of the first future that panicked. A
    /// panic ends only its own future: the others run to their end before `join` returns.
    ///
    /// # Panics
    ///
    /// Panics if called from inside one of the group's own futures (it would wait for itself).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: call it from synchronous code, not from async code running on
    /// an executor.
    ///
    /// ```
    /// let group = aplex::Group::new();
    /// group.spawn(async { panic!("boom") });
    /// group.spawn(async {});
    /// assert_eq!(group.join(), Err(aplex::Error::Panicked("boom".to_string())));
    /// ```
    pub fn join(mut self) -> Result<(), Error> {
        assert!(
            !self.shared.on_own_worker(),
            "aplex::Group::join: called from one of the group's own futures, it would wait for itself"
        );
        self.joined = true;
        match self.shared.wait_all() {
            Some(msg) => Err(Error::Panicked(msg)),
            None => Ok(()),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.joined && !self.shared.on_own_worker() {
            self.shared.wait_all();
        }
    }
}

/// Spawns into a [`Group`] from anywhere: inside the group's futures (nested spawns), or from
/// other threads. Made by [`Group::handle`]; `Clone + Send + Sync`.
///
/// A handle may outlive its group's `join`: spawning through it afterwards drops the future
/// unrun (the group's threads are stopped).
///
/// ```
/// fn assert_send_clone<T: Send + Sync + Clone>(_: &T) {}
/// let group = aplex::Group::new();
/// let handle = group.handle();
/// assert_send_clone(&handle);
/// std::thread::spawn(move || handle.spawn(async {})).join().unwrap();
/// group.join().unwrap();
/// ```
#[derive(Clone)]
pub struct GroupHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GroupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupHandle")
            .field("pending", &lock(&self.shared.state).pending)
            .finish()
    }
}

impl GroupHandle {
    /// Starts `future` in the handle's group; the group's `join` waits for it.
    ///
    /// ```
    /// let group = aplex::Group::new();
    /// let handle = group.handle();
    /// handle.spawn(async {});
    /// assert!(group.join().is_ok());
    /// ```
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shared.spawn(future);
    }
}
