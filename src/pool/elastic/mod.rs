//! `ElasticPool`: asyncutils' AdvancedPool — a shared priority queue, workers that come and go
//! between a minimum and a maximum, a bounded queue, drain, resize, and a shutdown report.
//!
//! It shares the thread pool's core: the same work cells and [`Handle`]s, the same dispatcher
//! and worker threads (each with its own executor), and the same [`Map`].

mod builder;
mod held;
mod lanes;
mod parked;
mod priority;
mod queue;
mod room;
mod shutdown;
mod starts;
mod steps;
mod track;
mod watch;

use std::future::{poll_fn, Future};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::queue::Shared;
use self::room::QueueRoom;
use super::{Handle, Map};
use crate::runtime::reactor::lock;
use crate::Error;

pub use builder::ElasticPoolBuilder;
pub use priority::{Apply, Priority};
pub use shutdown::{ShutdownOptions, ShutdownReport};

/// A thread pool that grows under load and shrinks when idle, fed from one priority queue.
///
/// - Works wait in one queue, **higher priority first**, first come first served within a
///   priority ([`priority`](ElasticPool::priority)).
/// - When a work is queued and every worker is busy, a worker is added, up to `max_workers`;
///   a worker above `min_workers` that stays idle for `idle_timeout` leaves. For a plain
///   closure, which holds its worker's thread until it returns, a worker that runs async works
///   is busy too (see
///   [`max_works_per_worker`](ElasticPoolBuilder::max_works_per_worker)).
/// - With a `queue_capacity`, [`try_submit`](ElasticPool::try_submit) fails with
///   `Error::QueueFull` at once, [`submit`](ElasticPool::submit) waits for room, and
///   [`submit_blocking`](ElasticPool::submit_blocking) blocks for it. The capacity counts
///   waiting works only, not running ones.
///
/// Plain closures and async works are both accepted, as in [`ThreadPool`](crate::ThreadPool),
/// each in three forms named for what they do when the queue is full:
///
/// | | never waits | waits (async) | blocks the calling thread |
/// |---|---|---|---|
/// | plain closure | [`try_submit`](ElasticPool::try_submit) | [`submit`](ElasticPool::submit) | [`submit_blocking`](ElasticPool::submit_blocking) |
/// | async work | [`try_spawn`](ElasticPool::try_spawn) | [`spawn_when_room`](ElasticPool::spawn_when_room) | [`spawn_when_room_blocking`](ElasticPool::spawn_when_room_blocking) |
///
/// Only the `try_` forms fail (`Error::QueueFull`) — and the blocking forms called from one of
/// the pool's own works, which fail the same way rather than wait for their own worker. A
/// shut-down pool gives a handle that resolves `Error::ShutDown`. Dropping the pool shuts it down gracefully.
///
/// ```
/// use std::time::Duration;
/// let pool = aplex::ElasticPool::builder()
///     .min_workers(1)
///     .max_workers(4)
///     .queue_capacity(100)
///     .idle_timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// let h = pool.try_submit(|| 6 * 7).unwrap();
/// let urgent = pool.priority(10).try_submit(|| "first").unwrap();
/// assert_eq!(h.wait(), Ok(42));
/// assert_eq!(urgent.wait(), Ok("first"));
/// assert!(pool.stats().workers >= 1);
/// ```
pub struct ElasticPool {
    shared: Arc<Shared>,
    started: Instant,
}

impl std::fmt::Debug for ElasticPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticPool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// A snapshot of an [`ElasticPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElasticStats {
    /// Works finished since the pool started (any outcome).
    pub completed: usize,
    /// Works waiting to start: in the queue, or taken by a worker that has not started them yet
    /// (they still hold their queue room, and another worker may still take them).
    pub queued: usize,
    /// Works running now.
    pub running: usize,
    /// Workers alive (or starting).
    pub workers: usize,
    /// Workers with nothing to run.
    pub idle: usize,
    /// Time since the pool was built.
    pub uptime: Duration,
}

impl ElasticPool {
    /// A builder; see [`ElasticPoolBuilder`].
    pub fn builder() -> ElasticPoolBuilder {
        ElasticPoolBuilder::default()
    }

    /// A view that submits at priority `p` (higher runs first; the default is 0).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
    /// let h = pool.priority(-5).try_submit(|| "later").unwrap();
    /// assert_eq!(h.wait(), Ok("later"));
    /// ```
    pub fn priority(&self, p: i32) -> Priority<'_> {
        Priority::new(self, p)
    }

    /// Queues a plain closure, or `Err(Error::QueueFull)` at once if the queue is full. A free
    /// room is never refused, even while others wait for one with `submit`.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let h = pool.try_submit(|| 2 + 2).unwrap();
    /// assert_eq!(h.wait(), Ok(4));
    /// ```
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).try_submit(f)
    }

    /// Queues a plain closure, waiting (asynchronously) for room in the queue. Waiting
    /// submitters are handed the rooms that free, in arrival order.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let h = aplex::block_on(pool.submit(|| 7)).unwrap();
    /// assert_eq!(h.wait(), Ok(7));
    /// ```
    pub async fn submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).submit(f).await
    }

    /// Queues a plain closure, blocking the thread until there is room in the queue.
    ///
    /// # Blocking
    ///
    /// Blocks while the queue is full; in async code, await [`submit`](ElasticPool::submit)
    /// instead. Called from one of this pool's own works, it does not block: the room might
    /// only ever be freed by the worker that would wait for it, so a full queue is
    /// `Err(Error::QueueFull)` there, as from [`try_submit`](ElasticPool::try_submit).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// assert_eq!(pool.submit_blocking(|| 7).unwrap().wait(), Ok(7));
    /// ```
    pub fn submit_blocking<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).submit_blocking(f)
    }

    /// Queues an async work (its future runs on a worker and need not be `Send`), or
    /// `Err(Error::QueueFull)`.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
    /// let h = pool.try_spawn(|| async { 5 }).unwrap();
    /// assert_eq!(h.wait(), Ok(5));
    /// ```
    pub fn try_spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).try_spawn(f)
    }

    /// Queues an async work, waiting (asynchronously) for room in the queue: the async-work
    /// twin of [`submit`](ElasticPool::submit). Named for the wait, since
    /// [`ThreadPool::spawn`](crate::ThreadPool::spawn) never waits. The `Result` is always `Ok`
    /// (a shut-down pool gives a handle that resolves `Error::ShutDown`); it has
    /// [`try_spawn`](ElasticPool::try_spawn)'s type, so the forms swap freely.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).queue_capacity(1).build().unwrap();
    /// let h = aplex::block_on(pool.spawn_when_room(|| async { 5 })).unwrap();
    /// assert_eq!(h.wait(), Ok(5));
    /// ```
    pub async fn spawn_when_room<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).spawn_when_room(f).await
    }

    /// Queues an async work, blocking the calling thread until there is room in the queue (the
    /// work itself runs on a worker, as always; this is not tokio's `spawn_blocking`).
    ///
    /// # Blocking
    ///
    /// Blocks while the queue is full; in async code, await
    /// [`spawn_when_room`](ElasticPool::spawn_when_room) instead. Called from one of this
    /// pool's own works, a full queue is `Err(Error::QueueFull)` at once, as for
    /// [`submit_blocking`](ElasticPool::submit_blocking).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).queue_capacity(1).build().unwrap();
    /// let h = pool.spawn_when_room_blocking(|| async { 5 }).unwrap();
    /// assert_eq!(h.wait(), Ok(5));
    /// ```
    pub fn spawn_when_room_blocking<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).spawn_when_room_blocking(f)
    }

    /// The old name of [`spawn_when_room`](ElasticPool::spawn_when_room), kept for one release.
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `spawn_when_room`: it waits for room in the queue, which \
                `ThreadPool::spawn` never does"
    )]
    pub async fn spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_when_room(f).await
    }

    /// The old name of [`spawn_when_room_blocking`](ElasticPool::spawn_when_room_blocking),
    /// kept for one release.
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `spawn_when_room_blocking`: it blocks the calling thread until there \
                is room in the queue; it does not run blocking code as tokio's `spawn_blocking` does"
    )]
    pub fn spawn_blocking<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_when_room_blocking(f)
    }

    /// Waits up to `timeout` until the queue has a free room; true if it has (always, for an
    /// unbounded queue or a shut-down pool). `Duration::MAX` waits without a limit.
    ///
    /// It takes nothing: when it returns true, a room was free and not promised to anyone, so a
    /// `try_submit` right after succeeds unless another submitter took that room first (then
    /// it fails with `QueueFull` and the caller waits again). Rooms that free go first to the
    /// callers waiting in [`submit`](ElasticPool::submit) / `submit_blocking`; use those to be
    /// handed a room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = aplex::ElasticPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let h = loop {
    ///     match pool.try_submit(|| 1) {
    ///         Ok(h) => break h,
    ///         Err(_) => { aplex::block_on(pool.wait_for_slot(Duration::from_secs(1))); }
    ///     }
    /// };
    /// assert_eq!(h.wait(), Ok(1));
    /// ```
    pub async fn wait_for_slot(&self, timeout: Duration) -> bool {
        let Some(rooms) = &self.shared.rooms else {
            return true;
        };
        match Instant::now().checked_add(timeout) {
            Some(deadline) => crate::time::timeout_at(deadline, rooms.watch())
                .await
                .is_ok(),
            None => {
                rooms.watch().await;
                true
            }
        }
    }

    /// Applies `f` to every item of `iter`, results in input order (see [`Map`]). Map items
    /// are not held to the queue capacity: the map's own window bounds them.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(2).build().unwrap();
    /// let out: Vec<u32> = pool.map(|x: u32| x * 3, 1..=4).map(Result::unwrap).collect();
    /// assert_eq!(out, vec![3, 6, 9, 12]);
    /// ```
    pub fn map<A, T, F, I>(&self, f: F, iter: I) -> Map<T>
    where
        F: Fn(A) -> T + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        let (one, chunks) = (self.shared.clone(), self.shared.clone());
        let workers = lock(&self.shared.state).max;
        Map::from_items(
            f,
            iter.into_iter(),
            workers,
            move |item| {
                let work = track::plain(move || item.run(), &one);
                one.accept(0, work, QueueRoom::unbounded())
            },
            move |chunk| {
                let work = track::plain(move || chunk.run(), &chunks);
                chunks.accept(0, work, QueueRoom::unbounded())
            },
        )
    }

    /// Like [`map`](ElasticPool::map), for a function of several arguments given as tuples.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(2).build().unwrap();
    /// let sums: Vec<i64> = pool
    ///     .starmap(|a: i64, b: i64| a + b, vec![(1, 2), (3, 4)])
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(sums, vec![3, 7]);
    /// ```
    pub fn starmap<Args, F, I>(&self, f: F, iter: I) -> Map<F::Output>
    where
        F: Apply<Args>,
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
        Args: Send + 'static,
        F::Output: Send + 'static,
    {
        self.map(move |args| f.apply(args), iter)
    }

    /// Waits until every work accepted so far has ended and its handle has its outcome: nothing
    /// queued, nothing running (works submitted meanwhile are waited for too).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = aplex::ElasticPool::builder().max_workers(2).build().unwrap();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let d = done.clone();
    ///     drop(pool.try_submit(move || { d.fetch_add(1, Ordering::SeqCst); }).unwrap());
    /// }
    /// aplex::block_on(pool.drain());
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// ```
    pub async fn drain(&self) {
        poll_fn(|cx| self.shared.poll_drained(cx)).await;
    }

    /// Changes the worker bounds live: starts workers up to `min` and, with scaling, as many
    /// more (up to `max`) as the works already queued need; lets idle ones above `max` leave.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `max` is 0, `min > max`, or `min` is 0 on a pool built with
    /// `scaling(false)` (it would have no worker to run anything).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().min_workers(0).max_workers(1).build().unwrap();
    /// pool.resize(2, 4).unwrap();
    /// assert_eq!(pool.stats().workers, 2);
    /// ```
    pub fn resize(&self, min: usize, max: usize) -> io::Result<()> {
        check_bounds(min, max, self.shared.config.scaling)?;
        self.shared.resize(min, max);
        Ok(())
    }

    /// A snapshot of the pool's counts. A work counts as running from the moment a worker
    /// starts it until its end is counted, just after its outcome is published (a worker counts
    /// the ends of a batch together, before it takes more).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().workers(1).build().unwrap();
    /// pool.try_submit(|| ()).unwrap().wait().unwrap();
    /// aplex::block_on(pool.drain());
    /// let stats = pool.stats();
    /// assert_eq!((stats.completed, stats.queued, stats.running, stats.workers), (1, 0, 0, 1));
    /// ```
    pub fn stats(&self) -> ElasticStats {
        let st = lock(&self.shared.state);
        let busy = st
            .records
            .iter()
            .filter(|r| r.counts.running.load(Ordering::Relaxed) > 0)
            .count();
        ElasticStats {
            completed: st.tally.ended,
            queued: st.queued_len(),
            running: st.tally.unfinished - st.queued_len(),
            workers: st.workers,
            idle: st.workers.saturating_sub(busy),
            uptime: self.started.elapsed(),
        }
    }
}

fn check_bounds(min: usize, max: usize, scaling: bool) -> io::Result<()> {
    if max == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "max_workers must be at least 1",
        ));
    }
    if min > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("min_workers ({min}) is greater than max_workers ({max})"),
        ));
    }
    if min == 0 && !scaling {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "without scaling the pool runs min_workers workers, and min_workers is 0: no work \
             would ever run (set min_workers, or workers(n) for a fixed size)",
        ));
    }
    Ok(())
}
