//! `ElasticPool`: asyncutils' AdvancedPool — a shared priority queue, workers that come and go
//! between a minimum and a maximum, a bounded queue, drain, resize, and a shutdown report.
//!
//! It shares the thread pool's core: the same work cells and [`Handle`]s, the same dispatcher
//! and worker threads (each with its own executor), and the same [`Map`].

mod priority;
mod queue;

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::queue::{Config, Intake, Shared};
use super::cell::{AsyncJob, Job, Outcome, PlainJob};
use super::{Handle, Map};
use crate::runtime::reactor::lock;
use crate::sync::Semaphore;
use crate::Error;

pub use priority::{Apply, Priority};

/// A thread pool that grows under load and shrinks when idle, fed from one priority queue.
///
/// - Works wait in one queue, **higher priority first**, first come first served within a
///   priority ([`priority`](ElasticPool::priority)).
/// - When a work is queued and every worker is busy, a worker is added, up to `max_workers`;
///   a worker above `min_workers` that stays idle for `idle_timeout` leaves.
/// - With a `queue_capacity`, [`try_submit`](ElasticPool::try_submit) fails with
///   `Error::QueueFull` at once, [`submit`](ElasticPool::submit) waits for room, and
///   [`submit_blocking`](ElasticPool::submit_blocking) blocks for it. The capacity counts
///   waiting works only, not running ones.
///
/// Plain closures (`submit`) and async works (`spawn`) are both accepted, as in
/// [`ThreadPool`](crate::ThreadPool). Dropping the pool shuts it down gracefully.
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
    /// Queue room, when the queue is bounded.
    capacity: Option<Arc<Semaphore>>,
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
    /// Works waiting in the queue.
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

/// How [`ElasticPool::shutdown`] ends the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownOptions {
    /// Cancel the works still queued (their handles resolve `Error::Cancelled`) instead of
    /// running them.
    pub cancel_pending: bool,
    /// Give up waiting when no work has finished for this long (a stalled pool).
    pub idle_timeout: Option<Duration>,
    /// Give up waiting after this long in all.
    pub total_timeout: Option<Duration>,
}

/// What [`ElasticPool::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Works finished during the shutdown (any outcome but cancelled by it).
    pub completed: usize,
    /// Works the shutdown cancelled: queued ones (`cancel_pending`, or when it gave up) and
    /// running async ones (when it gave up).
    pub cancelled: usize,
    /// Plain closures still running when the shutdown gave up (their threads are detached).
    pub unfinished: usize,
    /// How long the shutdown took.
    pub elapsed: Duration,
    /// Whether a timeout ended the wait.
    pub timed_out: bool,
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

    /// Queues a plain closure, or `Err(Error::QueueFull)` at once if the queue is full.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).try_submit(f)
    }

    /// Queues a plain closure, waiting (asynchronously) for room in the queue.
    pub async fn submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).submit(f).await
    }

    /// Queues a plain closure, blocking the thread until there is room in the queue.
    pub fn submit_blocking<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.priority(0).submit_blocking(f)
    }

    /// Queues an async work (its future runs on a worker and need not be `Send`), or
    /// `Err(Error::QueueFull)`.
    pub fn try_spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).try_spawn(f)
    }

    /// Queues an async work, waiting for room in the queue.
    pub async fn spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).spawn(f).await
    }

    /// Queues an async work, blocking until there is room in the queue.
    pub fn spawn_blocking<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.priority(0).spawn_blocking(f)
    }

    /// Waits up to `timeout` until the queue has room; true if it has. Always true for an
    /// unbounded queue.
    pub async fn wait_for_slot(&self, timeout: Duration) -> bool {
        match &self.capacity {
            None => true,
            Some(sem) => crate::time::timeout(timeout, sem.acquire()).await.is_ok(),
        }
    }

    /// Queues a job at `priority`, with the queue permit it holds while waiting.
    fn enqueue<T>(
        &self,
        priority: i32,
        job: Arc<dyn Job>,
        outcome: Arc<dyn Outcome<T>>,
        permit: Option<crate::sync::SemaphoreGuardArc>,
    ) -> Handle<T> {
        let handle = Handle::new(outcome);
        self.shared.enqueue(priority, job, permit);
        handle
    }

    fn plain<F, T>(f: F) -> (Arc<dyn Job>, Arc<dyn Outcome<T>>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job = PlainJob::new(f);
        (job.clone(), job)
    }

    fn asynchronous<F, Fut>(f: F) -> (Arc<dyn Job>, Arc<dyn Outcome<Fut::Output>>)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let job = AsyncJob::new(f);
        (job.clone(), job)
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
                let job = PlainJob::new(move || item.run());
                one.enqueue(0, job.clone(), None);
                Handle::new(job as Arc<dyn Outcome<T>>)
            },
            move |chunk| {
                let job = PlainJob::new(move || chunk.run());
                chunks.enqueue(0, job.clone(), None);
                Handle::new(job as Arc<dyn Outcome<_>>)
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

    /// Waits until nothing is queued and nothing runs.
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
        loop {
            let (queued, running) = self.shared.queued_and_running();
            if queued == 0 && running == 0 {
                return;
            }
            self.shared.idle_event.wait().await;
            // The event may be stale (set before the last submit): look again.
            if self.shared.idle_event.is_set() {
                let (q, r) = self.shared.queued_and_running();
                if q == 0 && r == 0 {
                    return;
                }
                crate::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Changes the worker bounds live: starts workers up to `min`, lets idle ones above `max`
    /// leave.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `max` is 0 or `min > max`.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().min_workers(0).max_workers(1).build().unwrap();
    /// pool.resize(2, 4).unwrap();
    /// assert_eq!(pool.stats().workers, 2);
    /// ```
    pub fn resize(&self, min: usize, max: usize) -> io::Result<()> {
        check_bounds(min, max)?;
        self.shared.resize(min, max);
        Ok(())
    }

    /// A snapshot of the pool's counts.
    pub fn stats(&self) -> ElasticStats {
        let st = lock(&self.shared.state);
        let (mut running, mut completed) = (0, 0);
        for r in &st.records {
            running += r.counts.running.load(Ordering::Relaxed);
            completed += r.counts.ended.load(Ordering::Relaxed);
        }
        let busy = st
            .records
            .iter()
            .filter(|r| r.counts.running.load(Ordering::Relaxed) > 0)
            .count();
        ElasticStats {
            completed,
            queued: st.queued_len(),
            running,
            workers: st.workers,
            idle: st.workers.saturating_sub(busy),
            uptime: self.started.elapsed(),
        }
    }

    /// Shuts down gracefully and reports each worker's count of finished works, in start order
    /// (retired workers included). A worker thread that died outside any work reports
    /// `Error::WorkerLost`.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().min_workers(2).max_workers(2).build().unwrap();
    /// for i in 0..6 {
    ///     drop(pool.try_submit(move || i).unwrap());
    /// }
    /// let counts = pool.join();
    /// assert_eq!(counts.iter().map(|c| *c.as_ref().unwrap()).sum::<usize>(), 6);
    /// ```
    pub fn join(&self) -> Vec<Result<usize, Error>> {
        self.shutdown(ShutdownOptions::default());
        let st = lock(&self.shared.state);
        st.records
            .iter()
            .map(|r| match &r.lost {
                Some(why) => Err(Error::WorkerLost(why.clone())),
                None => Ok(r.counts.ended.load(Ordering::Relaxed)),
            })
            .collect()
    }

    /// Shuts the pool down: no new works (they fail with `Error::ShutDown`), the queue is run
    /// (or cancelled, with `cancel_pending`), and the workers leave. The wait is bounded by the
    /// options' timeouts; when one runs out, queued and running async works are cancelled and
    /// threads still in a plain closure are detached. Idempotent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aplex::ShutdownOptions;
    /// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
    /// let slow = pool.try_spawn(|| aplex::time::sleep(Duration::from_secs(60))).unwrap();
    /// let report = pool.shutdown(ShutdownOptions {
    ///     total_timeout: Some(Duration::from_millis(50)),
    ///     ..ShutdownOptions::default()
    /// });
    /// assert!(report.timed_out);
    /// assert_eq!(slow.wait(), Err(aplex::Error::Cancelled));
    /// ```
    pub fn shutdown(&self, opts: ShutdownOptions) -> ShutdownReport {
        let start = Instant::now();
        let ended_before = self.stats().completed;
        let mut cancelled = 0;
        self.shared.set_intake(Intake::Closing);
        if self.on_own_worker() {
            // Called from one of our own works: waiting would wait for ourselves. The workers
            // finish the queue and leave on their own.
            return ShutdownReport {
                completed: 0,
                cancelled: 0,
                unfinished: 0,
                elapsed: start.elapsed(),
                timed_out: false,
            };
        }
        if opts.cancel_pending {
            cancelled += cancel_all(self.shared.take_queued());
        }
        let deadline = opts.total_timeout.and_then(|d| start.checked_add(d));
        let mut last_progress = (Instant::now(), ended_before);
        let mut timed_out = false;
        loop {
            let alive = self.unjoined_alive();
            if alive == 0 {
                break;
            }
            let now = Instant::now();
            let completed = self.stats().completed;
            if completed != last_progress.1 {
                last_progress = (now, completed);
            }
            let stalled = opts
                .idle_timeout
                .is_some_and(|idle| now.duration_since(last_progress.0) >= idle);
            if deadline.is_some_and(|d| now >= d) || stalled {
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut unfinished = 0;
        if timed_out {
            cancelled += cancel_all(self.shared.take_queued());
            let running_before = self.stats().running;
            self.shared.set_intake(Intake::Stopping);
            // Async works are dropped by their workers as they leave; what still runs after a
            // short grace is a plain closure that cannot be interrupted.
            let grace = Instant::now() + Duration::from_millis(100);
            while self.unjoined_alive() > 0 && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(1));
            }
            unfinished = self.stats().running;
            cancelled += running_before.saturating_sub(unfinished);
        }
        self.shared.reap(timed_out);
        ShutdownReport {
            completed: self.stats().completed.saturating_sub(ended_before),
            cancelled,
            unfinished,
            elapsed: start.elapsed(),
            timed_out,
        }
    }

    /// True on one of this pool's worker threads.
    fn on_own_worker(&self) -> bool {
        let me = std::thread::current().id();
        lock(&self.shared.state)
            .records
            .iter()
            .any(|r| r.thread.as_ref().is_some_and(|t| t.thread().id() == me))
    }

    /// Worker threads started and not finished yet.
    fn unjoined_alive(&self) -> usize {
        lock(&self.shared.state)
            .records
            .iter()
            .filter(|r| r.thread.as_ref().is_some_and(|t| !t.is_finished()))
            .count()
    }
}

/// Cancels queued jobs; returns how many.
fn cancel_all(jobs: Vec<Arc<dyn Job>>) -> usize {
    let n = jobs.len();
    for job in jobs {
        job.fail(Error::Cancelled);
    }
    n
}

impl Drop for ElasticPool {
    fn drop(&mut self) {
        self.shutdown(ShutdownOptions::default());
    }
}

fn check_bounds(min: usize, max: usize) -> io::Result<()> {
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
    Ok(())
}

/// Configures an [`ElasticPool`].
pub struct ElasticPoolBuilder {
    min: usize,
    max: Option<usize>,
    queue_capacity: Option<usize>,
    idle_timeout: Duration,
    scaling: bool,
    max_works: usize,
    name: String,
    spin: Duration,
    on_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

impl std::fmt::Debug for ElasticPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticPoolBuilder")
            .field("min_workers", &self.min)
            .field("max_workers", &self.max)
            .field("queue_capacity", &self.queue_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("scaling", &self.scaling)
            .finish_non_exhaustive()
    }
}

impl Default for ElasticPoolBuilder {
    fn default() -> ElasticPoolBuilder {
        ElasticPoolBuilder {
            min: 0,
            max: None,
            queue_capacity: None,
            idle_timeout: Duration::from_secs(10),
            scaling: true,
            max_works: 1,
            name: "aplex-elastic".to_string(),
            spin: Duration::from_micros(50),
            on_start: None,
        }
    }
}

impl ElasticPoolBuilder {
    /// Workers kept even when idle, started by `build` (default 0).
    pub fn min_workers(mut self, n: usize) -> Self {
        self.min = n;
        self
    }

    /// Workers at most (default: the available cores).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max = Some(n);
        self
    }

    /// A fixed size: `min_workers` and `max_workers` both `n`.
    pub fn workers(self, n: usize) -> Self {
        self.min_workers(n).max_workers(n)
    }

    /// Works that may wait in the queue at most (default: unbounded). Running works do not
    /// count.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = Some(n);
        self
    }

    /// How long a worker above `min_workers` stays idle before it leaves (default 10 s).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Whether to add workers under load (default true). Without it the pool keeps
    /// `min_workers`, changed only by [`ElasticPool::resize`].
    pub fn scaling(mut self, on: bool) -> Self {
        self.scaling = on;
        self
    }

    /// Works one worker runs at once (default 1: an async work waiting on a timer holds its
    /// worker, like a classic pool; raise it to overlap async works).
    pub fn max_works_per_worker(mut self, n: usize) -> Self {
        self.max_works = n;
        self
    }

    /// The prefix of worker thread names: `"{prefix}-{n}"` (default `"aplex-elastic"`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Runs `f(n)` on each new worker thread before it takes work.
    pub fn on_worker_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Builds the pool and starts `min_workers`; returns once they run.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `max_workers == 0`, `min_workers > max_workers`, a zero
    /// `queue_capacity` or `max_works_per_worker`; the OS error if a thread cannot start.
    pub fn build(self) -> io::Result<ElasticPool> {
        let max = self
            .max
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        check_bounds(self.min, max)?;
        if self.queue_capacity == Some(0) || self.max_works == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queue_capacity and max_works_per_worker must be at least 1",
            ));
        }
        // More spinners than cores would only take turns on them.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let config = Config {
            name: self.name,
            spin: if max <= cores {
                self.spin
            } else {
                Duration::ZERO
            },
            max_works: self.max_works,
            idle_timeout: self.idle_timeout,
            scaling: self.scaling,
            on_start: self.on_start,
        };
        let shared = Arc::new(Shared::new(config, self.min, max));
        let pool = ElasticPool {
            shared,
            capacity: self.queue_capacity.map(|n| Arc::new(Semaphore::new(n))),
            started: Instant::now(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for _ in 0..self.min {
            pool.shared.start_worker(Some(ready_tx.clone()), false)?;
        }
        drop(ready_tx);
        for ready in ready_rx {
            if let Err(msg) = ready {
                return Err(io::Error::other(format!("on_worker_start panicked: {msg}")));
            }
        }
        Ok(pool)
    }
}
