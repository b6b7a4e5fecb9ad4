//! `ThreadPool`: worker threads, each running its own executor, fed through a balancer.

mod builder;
mod queueing;

pub use self::builder::Builder;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use self::queueing::Queueing;
use super::cell::{AsyncJob, Job, Outcome, PlainJob, QueuedCounts};
use super::map::Map;
use super::picker::Picker;
use super::shared_queue::Queued;
use super::Handle;
use crate::balance::Load;
use crate::runtime::reactor::lock;
use crate::sync::Event;
use crate::Error;

/// Default limit of works running at once on one worker.
const DEFAULT_MAX_WORKS: usize = 300;
/// Default time an idle worker spins before it parks.
const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// A pool of worker threads, each running its own executor and reactor: aplex's
/// `ThreadAsyncPoolExecutor`.
///
/// - [`submit`](ThreadPool::submit) runs a plain closure on a worker.
/// - [`spawn`](ThreadPool::spawn) runs an async work: the `Send` closure is called on the worker
///   and the future it returns runs there, so **the future need not be `Send`** (it may hold an
///   `Rc`, a `RefCell`, a local socket). Up to `max_works_per_worker` async works run at once on
///   one worker; more wait in that worker's queue, where an idle worker may take them.
///
/// By default each worker has its own queue, fed by the pool's balancer. Built with
/// [`shared_queue(true)`](Builder::shared_queue), the workers serve one queue instead, and the
/// works that find every worker busy start strictly first come, first served (no balancer then).
/// - [`map`](ThreadPool::map) applies a function over an iterator, results in input order.
///
/// A plain closure runs on its worker thread to its end and holds that worker's async works
/// while it runs: balancers see it as a running work, so `LeastLoaded` steers around it.
///
/// Dropping the pool shuts it down gracefully: accepted works finish, every thread is joined.
/// The drop **blocks** the calling thread until then: inside async code (a `block_on`, another
/// runtime's task) that stalls the executor thread for as long as the works take. There,
/// `pool.shutdown_async().await` first (see [`shutdown_async`](ThreadPool::shutdown_async));
/// the drop after it has nothing left to wait for.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let pool = aplex::ThreadPool::new(2);
/// let square = pool.submit(|| 7 * 7);
/// let local = pool.spawn(|| async {
///     let not_send = Rc::new(5);
///     aplex::time::sleep(Duration::from_millis(5)).await;
///     *not_send * 2
/// });
/// assert_eq!(square.wait(), Ok(49));
/// assert_eq!(local.wait(), Ok(10));
/// ```
pub struct ThreadPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.inner.workers.len())
            .field("loads", &self.loads())
            .finish()
    }
}

/// What the pool, its maps and its handles share.
pub(crate) struct PoolInner {
    workers: Queueing,
    /// The same queues, as the counts of waiting works that a handle's cancel lowers.
    queued_counts: Arc<dyn QueuedCounts>,
    thread_ids: Vec<ThreadId>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    picker: Picker,
    open: AtomicBool,
    /// Tells when every worker thread has left its loop.
    exits: Arc<WorkerExits>,
}

/// Counts the worker threads still running; the last one to leave sets `all_gone`, so async
/// code can wait for a pool's end without joining (which would block its thread).
struct WorkerExits {
    live: AtomicUsize,
    all_gone: Event,
}

/// Held by one worker thread's body; dropped when the worker leaves its loop (or when the
/// thread ends without running it: a failed start).
struct ExitGuard(Arc<WorkerExits>);

impl ExitGuard {
    fn new(exits: &Arc<WorkerExits>) -> ExitGuard {
        // ORDERING: Relaxed: the count is read only by the guards' AcqRel decrements.
        exits.live.fetch_add(1, Ordering::Relaxed);
        ExitGuard(Arc::clone(exits))
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // ORDERING: AcqRel: the last guard sees every other worker's exit before it tells.
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_gone.set();
        }
    }
}

impl PoolInner {
    /// Picks a worker for one submission, counts the work as queued there, and queues it (or
    /// fails it if the pool is shut down). With a shared queue, the work joins its back (no
    /// pick, `hint` unused). `blocking`: the job is a plain closure.
    pub(crate) fn submit_job(&self, hint: Option<u64>, job: Arc<dyn Job>, blocking: bool) {
        if !self.open.load(Ordering::Acquire) {
            job.fail(Error::ShutDown);
            return;
        }
        let workers = match &self.workers {
            Queueing::PerWorker(workers) => workers,
            Queueing::Shared(queue) => return queue.push(Queued::new(job, blocking)),
        };
        let (index, pinned) = self.picker.pick_binding(
            workers.len(),
            |i| workers.worker(i).load(),
            hint,
            |i| {
                workers.worker(i).queued.fetch_add(1, Ordering::Relaxed);
            },
        );
        if let Some(mark) = job.queue_mark() {
            mark.set(index);
        }
        workers.push(index, job, pinned);
    }

    /// Submits `jobs` (without hints) as [`submit_job`](PoolInner::submit_job) does one by
    /// one — a pick each, in order — but takes the balancer's lock once and queues each
    /// worker's share under one lock, with one wake-up. Empties `jobs`, which are plain
    /// closures (a map's items and chunks).
    pub(crate) fn submit_jobs(&self, jobs: &mut Vec<Arc<dyn Job>>) {
        if !self.open.load(Ordering::Acquire) {
            for job in jobs.drain(..) {
                job.fail(Error::ShutDown);
            }
            return;
        }
        let workers = match &self.workers {
            Queueing::PerWorker(workers) => workers,
            Queueing::Shared(queue) => {
                return queue.push_all(jobs.drain(..).map(|job| Queued::new(job, true)))
            }
        };
        let mut shares: Vec<Vec<Arc<dyn Job>>> = (0..workers.len()).map(|_| Vec::new()).collect();
        let mut jobs = jobs.drain(..);
        self.picker.pick_each(
            jobs.len(),
            workers.len(),
            |i| workers.worker(i).load(),
            |_, i| {
                if let Some(job) = jobs.next() {
                    if let Some(mark) = job.queue_mark() {
                        mark.set(i);
                    }
                    shares[i].push(job);
                }
            },
            |i, added| {
                workers.worker(i).queued.fetch_add(added, Ordering::Relaxed);
            },
        );
        for (i, share) in shares.into_iter().enumerate() {
            if !share.is_empty() {
                workers.push_all(i, share.into_iter(), false);
            }
        }
    }

    pub(crate) fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The handle of a work this pool is about to queue: its cancel lowers the pool's loads
    /// at once while the work waits.
    fn handle<T>(&self, outcome: Arc<dyn Outcome<T>>) -> Handle<T> {
        Handle::counted_in(outcome, Arc::clone(&self.queued_counts))
    }

    fn close(&self, now: bool) {
        self.begin_close(now);
        self.join_threads();
    }

    /// Stops taking works and tells the workers to finish (or cancel) theirs and exit.
    fn begin_close(&self, now: bool) {
        self.open.store(false, Ordering::Release);
        self.workers.close(now);
    }

    /// Whether the calling thread is one of this pool's workers.
    fn on_own_worker(&self) -> bool {
        self.thread_ids.contains(&std::thread::current().id())
    }

    /// Joins every worker thread not joined yet (blocking until they end).
    fn join_threads(&self) {
        if self.on_own_worker() {
            // Called from one of our own works: joining would wait for ourselves. The workers
            // finish (or cancel) their works and exit on their own.
            return;
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Waits, without blocking the thread, until every worker has left its loop; then joins
    /// the threads, which by then have only their last instructions to run.
    async fn all_exited(&self) {
        self.exits.all_gone.wait().await;
        self.join_threads();
    }
}

impl ThreadPool {
    /// A pool of `workers` threads with the default settings.
    ///
    /// # Panics
    ///
    /// Panics if `workers` is 0 or a thread cannot be started; use
    /// [`ThreadPool::builder`] to get those as errors.
    pub fn new(workers: usize) -> ThreadPool {
        ThreadPool::builder()
            .workers(workers)
            .build()
            .unwrap_or_else(|e| panic!("aplex::ThreadPool::new({workers}): {e}"))
    }

    /// A builder to configure a pool.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::builder()
    ///     .workers(2)
    ///     .max_works_per_worker(100)
    ///     .balancer(aplex::balance::LeastLoaded::new())
    ///     .thread_name("crunch")
    ///     .build()
    ///     .unwrap();
    /// let name = pool.submit(|| std::thread::current().name().unwrap().to_string());
    /// assert!(name.wait().unwrap().starts_with("crunch-"));
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Runs a plain closure on a worker. See [`Handle`] for its outcome.
    pub fn submit<F, T>(&self, f: F) -> Handle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_inner(None, f)
    }

    /// Like [`submit`](ThreadPool::submit), passing `hint` to the balancer (aplex's
    /// `load_balancing_meta`; with [`KeyAffinity`](crate::balance::KeyAffinity), works with
    /// the same hint run on the same worker, in order). A pool with a
    /// [shared queue](Builder::shared_queue) has no balancer: the hint is ignored, and the work
    /// waits in line like any other.
    pub fn submit_with<F, T>(&self, hint: u64, f: F) -> Handle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_inner(Some(hint), f)
    }

    fn submit_inner<F, T>(&self, hint: Option<u64>, f: F) -> Handle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job = PlainJob::new(f);
        let handle = self.inner.handle(job.clone() as Arc<dyn Outcome<T>>);
        self.inner.submit_job(hint, job, true);
        handle
    }

    /// Runs an async work: `f` is called on a worker and the future it returns runs there.
    /// The future need not be `Send`; timers, I/O and channels work inside it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = aplex::ThreadPool::new(2);
    /// let start = Instant::now();
    /// let handles: Vec<_> = (0..10)
    ///     .map(|i| pool.spawn(move || async move {
    ///         aplex::time::sleep(Duration::from_millis(500)).await;
    ///         i
    ///     }))
    ///     .collect();
    /// let sum: u32 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    /// assert_eq!(sum, 45);
    /// assert!(start.elapsed() < Duration::from_secs(4)); // concurrent: ~0.5 s; in turns, 5 s
    /// ```
    pub fn spawn<F, Fut>(&self, f: F) -> Handle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_inner(None, f)
    }

    /// Like [`spawn`](ThreadPool::spawn), passing `hint` to the balancer.
    pub fn spawn_with<F, Fut>(&self, hint: u64, f: F) -> Handle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_inner(Some(hint), f)
    }

    fn spawn_inner<F, Fut>(&self, hint: Option<u64>, f: F) -> Handle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let job = AsyncJob::new(f);
        let handle = self
            .inner
            .handle(job.clone() as Arc<dyn Outcome<Fut::Output>>);
        self.inner.submit_job(hint, job, false);
        handle
    }

    /// Applies `f` to every item of `iter` on the pool; the results come in input order.
    ///
    /// The map is lazy and keeps a bounded window of items in flight, so an endless iterator
    /// is fine. See [`Map`] for `chunk_size` and `timeout`.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(2);
    /// let squares: Vec<u64> = pool
    ///     .map(|x: u64| x * x, 1..=5)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(squares, vec![1, 4, 9, 16, 25]);
    /// ```
    pub fn map<A, T, F, I>(&self, f: F, iter: I) -> Map<T>
    where
        F: Fn(A) -> T + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let workers = self.inner.worker_count();
        let counts = Arc::clone(&self.inner.queued_counts);
        Map::staged(
            f,
            iter.into_iter(),
            workers,
            Box::new(move |jobs| inner.submit_jobs(jobs)),
            counts,
        )
    }

    /// How many works each worker holds (running and queued), in worker order.
    ///
    /// With a [shared queue](Builder::shared_queue), the waiting works belong to no worker:
    /// they are spread evenly over the workers (the first ones get the remainder), so the sum
    /// is still every work the pool holds.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(2);
    /// assert_eq!(pool.loads(), vec![0, 0]);
    /// ```
    pub fn loads(&self) -> Vec<usize> {
        self.inner.workers.loads().iter().map(Load::total).collect()
    }

    /// Each worker's load as its balancer sees it (running, queued and capacity apart), in
    /// worker order. With a [shared queue](Builder::shared_queue), `queued` is the queue's
    /// length spread evenly over the workers (see [`loads`](ThreadPool::loads)).
    ///
    /// ```
    /// let pool = aplex::ThreadPool::builder().workers(1).max_works_per_worker(8).build()?;
    /// let load = pool.detailed_loads()[0];
    /// assert_eq!((load.running, load.queued, load.capacity), (0, 0, 8));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn detailed_loads(&self) -> Vec<Load> {
        self.inner.workers.loads()
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// Shuts down gracefully: no new works are accepted (they resolve `Error::ShutDown`), every
    /// accepted work finishes, every thread is joined. Idempotent.
    ///
    /// Called from inside one of the pool's own works, it closes the pool and returns without
    /// joining: the workers finish their works and exit on their own.
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread until every accepted work has ended; in async code, await
    /// [`shutdown_async`](ThreadPool::shutdown_async) instead.
    pub fn shutdown(&self) {
        self.inner.close(false);
    }

    /// Shuts down gracefully, as [`shutdown`](ThreadPool::shutdown) does, and resolves once
    /// every accepted work has ended and every worker thread has exited (each worker tells when
    /// it leaves its loop; the threads, with nothing left to run, are then joined) — without
    /// blocking the thread that awaits it, so it may be awaited under `block_on`, on another pool, or in
    /// another runtime's task. Dropping the future does not undo the shutdown (which has begun
    /// at its first poll); the pool's drop then waits for what is left.
    ///
    /// Awaited inside one of this pool's own works, it begins the shutdown and resolves at once
    /// (a worker cannot wait for its own exit).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = aplex::ThreadPool::new(2);
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let d = Arc::clone(&done);
    ///     drop(pool.spawn(move || async move {
    ///         aplex::yield_now().await;
    ///         d.fetch_add(1, Ordering::SeqCst);
    ///     }));
    /// }
    /// aplex::block_on(async {
    ///     pool.shutdown_async().await;
    ///     assert_eq!(done.load(Ordering::SeqCst), 10); // every accepted work ended
    /// });
    /// assert_eq!(pool.submit(|| 1).wait(), Err(aplex::Error::ShutDown));
    /// ```
    pub async fn shutdown_async(&self) {
        self.inner.begin_close(false);
        if self.inner.on_own_worker() {
            return;
        }
        self.inner.all_exited().await;
    }

    /// Resolves once the pool has been shut down (by [`shutdown`](ThreadPool::shutdown),
    /// [`shutdown_now`](ThreadPool::shutdown_now), `shutdown_async`, or another owner's drop)
    /// and every worker has left its loop, its works all ended. It does not start a shutdown
    /// itself, and does not block the thread that awaits it. It joins the threads too, unless
    /// the shutdown that ended them is joining them already.
    ///
    /// # Panics
    ///
    /// Panics if polled inside one of this pool's own works: that worker would wait for its own
    /// exit forever.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(aplex::ThreadPool::new(1));
    /// let closer = {
    ///     let pool = Arc::clone(&pool);
    ///     std::thread::spawn(move || pool.shutdown())
    /// };
    /// aplex::block_on(pool.closed());
    /// assert_eq!(pool.submit(|| 1).wait(), Err(aplex::Error::ShutDown));
    /// closer.join().unwrap();
    /// ```
    pub async fn closed(&self) {
        assert!(
            !self.inner.on_own_worker(),
            "ThreadPool::closed awaited inside one of the pool's own works: it would wait forever"
        );
        self.inner.all_exited().await;
    }

    /// Shuts down now: queued works and running async works are cancelled (their handles
    /// resolve `Error::Cancelled`); a plain closure already running finishes. Every thread is
    /// joined.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = aplex::ThreadPool::new(1);
    /// let h = pool.spawn(|| async { aplex::time::sleep(Duration::from_secs(60)).await });
    /// pool.shutdown_now();
    /// assert_eq!(h.wait(), Err(aplex::Error::Cancelled));
    /// ```
    pub fn shutdown_now(&self) {
        self.inner.close(true);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.inner.close(false);
    }
}
