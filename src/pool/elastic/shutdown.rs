//! Ending an elastic pool: `shutdown` (blocking, with options and a report), its async twin
//! `shutdown_async`, `closed` (waiting for someone else's shutdown), `join`, and the drop.
//!
//! One body, [`ElasticPool::shut_down`], does every shutdown; it waits through the `watch`
//! module, parking the thread or as a future. The blocking forms drive it with a parker: it
//! never returns `Pending` then, and starts no timer, so they work inside any executor.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::queue::{self, Intake, Shared};
use super::watch::Waiting;
use super::ElasticPool;
use crate::runtime::reactor::lock;
use crate::Error;

/// How long a shutdown that gave up waits for the workers not held by a plain closure to leave
/// (they do at once, unless an async work blocks its thread).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// How [`ElasticPool::shutdown`] (or [`shutdown_async`](ElasticPool::shutdown_async)) ends the
/// pool.
///
/// A timeout of `Duration::MAX` (or any too long for `Instant`) means no timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownOptions {
    /// Cancel every work that has not begun (their handles resolve `Error::Cancelled`) instead
    /// of running them; wait only for the works already running.
    pub cancel_pending: bool,
    /// Give up waiting when no work has finished for this long (a stalled pool).
    pub idle_timeout: Option<Duration>,
    /// Give up waiting after this long in all.
    pub total_timeout: Option<Duration>,
}

/// What [`ElasticPool::shutdown`] (or `shutdown_async`) did with the works accepted and not ended when it began:
/// each is counted once, so `completed + cancelled + unfinished` is their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Works that ended during the shutdown, other than by it (any outcome: a value, a panic,
    /// a cancel from their handle).
    pub completed: usize,
    /// Works the shutdown ended: queued ones it took out (`cancel_pending`, or when it gave up:
    /// `Error::Cancelled`; when no worker was left to run them: `Error::ShutDown`) and running
    /// async ones it dropped when it gave up (`Error::Cancelled`).
    pub cancelled: usize,
    /// Works still running when the shutdown gave up: plain closures cannot be interrupted
    /// (their threads are detached), nor async works that share a thread with one.
    pub unfinished: usize,
    /// How long the shutdown took.
    pub elapsed: Duration,
    /// Whether a timeout ended the wait.
    pub timed_out: bool,
}

impl ElasticPool {
    /// Shuts down gracefully and reports, for each worker in start order (retired workers
    /// included), how many works it took from the queue that have ended. A worker whose start
    /// hook panicked, or whose thread died outside any work, reports `Error::WorkerLost`.
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread for the shutdown, as [`shutdown`](ElasticPool::shutdown) does.
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
                None => Ok(r.finished.load(Ordering::Relaxed)),
            })
            .collect()
    }

    /// Shuts the pool down: no new works (they fail with `Error::ShutDown`, and submitters
    /// waiting for room stop waiting), the queue is run (or cancelled, with `cancel_pending`),
    /// and the workers leave. The wait is bounded by the options' timeouts; when one runs out,
    /// queued and running async works are cancelled and threads still in a plain closure are
    /// detached. Every handle resolves, whatever the configuration: works that no worker is
    /// left to run end with `Error::ShutDown`. Idempotent: a later call reports nothing more.
    ///
    /// Called from inside one of the pool's own works, it closes the pool and returns without
    /// waiting: the workers finish the queue and leave on their own.
    ///
    /// # Blocking
    ///
    /// Blocks the calling thread until the workers have left (or a timeout ran out); in async
    /// code, await [`shutdown_async`](ElasticPool::shutdown_async) instead. Dropping the pool
    /// does what `shutdown(ShutdownOptions::default())` does, blocking too.
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
    /// assert_eq!((report.completed, report.cancelled, report.unfinished), (0, 1, 0));
    /// assert_eq!(slow.wait(), Err(aplex::Error::Cancelled));
    /// ```
    pub fn shutdown(&self, opts: ShutdownOptions) -> ShutdownReport {
        crate::sync::blocking::wait(self.shut_down(opts, Waiting::Blocking))
    }

    /// Shuts down as [`shutdown`](ElasticPool::shutdown) does, with the same options and the
    /// same report, and resolves once the workers have left (or a timeout ran out) — without
    /// blocking the thread that awaits it, so it may be awaited under `block_on`, in a work of
    /// another pool, or in another runtime's task (its timeouts are aplex timers, which run
    /// under any executor). Dropping the future does not undo the shutdown (which has begun at
    /// its first poll); the pool's drop then waits for what is left. Idempotent: a later call
    /// reports nothing more.
    ///
    /// Awaited inside one of this pool's own works, it begins the shutdown and resolves at once
    /// (a worker cannot wait for its own exit).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use aplex::ShutdownOptions;
    ///
    /// let pool = aplex::ElasticPool::builder().max_workers(2).build().unwrap();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let d = Arc::clone(&done);
    ///     drop(pool.try_spawn(move || async move {
    ///         aplex::yield_now().await;
    ///         d.fetch_add(1, Ordering::SeqCst);
    ///     }));
    /// }
    /// aplex::block_on(async {
    ///     let report = pool.shutdown_async(ShutdownOptions::default()).await;
    ///     assert!(!report.timed_out);
    ///     assert_eq!(done.load(Ordering::SeqCst), 10); // every accepted work ended
    /// });
    /// assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(aplex::Error::ShutDown));
    /// ```
    pub async fn shutdown_async(&self, opts: ShutdownOptions) -> ShutdownReport {
        self.shut_down(opts, Waiting::Async).await
    }

    /// Resolves once the pool has been shut down (by [`shutdown`](ElasticPool::shutdown),
    /// `shutdown_async` or [`join`](ElasticPool::join), from any thread) and that shutdown has
    /// ended: every handle has its outcome and the workers have left (or were given up on, when
    /// a timeout ran out). It does not start a shutdown itself, and does not block the thread
    /// that awaits it.
    ///
    /// # Panics
    ///
    /// Panics if polled inside one of this pool's own works: that worker would wait for its own
    /// exit forever.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::ShutdownOptions;
    ///
    /// let pool = Arc::new(aplex::ElasticPool::builder().max_workers(1).build().unwrap());
    /// let closer = {
    ///     let pool = Arc::clone(&pool);
    ///     std::thread::spawn(move || pool.shutdown(ShutdownOptions::default()))
    /// };
    /// aplex::block_on(pool.closed());
    /// assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(aplex::Error::ShutDown));
    /// closer.join().unwrap();
    /// ```
    pub async fn closed(&self) {
        assert!(
            !self.on_own_worker(),
            "ElasticPool::closed awaited inside one of the pool's own works: it would wait forever"
        );
        let ended = |st: &queue::State| {
            st.shut || (st.intake != Intake::Open && st.threads == 0 && st.tally.unfinished == 0)
        };
        self.shared
            .wait_until(Waiting::Async, ended, None, None)
            .await;
        self.shared.reap(false);
    }

    /// Every shutdown: closes the intake, runs (or cancels) the queue, waits for the workers
    /// within the options' limits, gives up on what is left, and reports.
    async fn shut_down(&self, opts: ShutdownOptions, how: Waiting) -> ShutdownReport {
        let start = Instant::now();
        let before = self.shared.set_intake(Intake::Closing);
        let report = |after: queue::Tally, timed_out| {
            let cancelled = after.by_shutdown - before.by_shutdown;
            ShutdownReport {
                completed: before.unfinished - cancelled - after.unfinished,
                cancelled,
                unfinished: after.unfinished,
                elapsed: start.elapsed(),
                timed_out,
            }
        };
        if lock(&self.shared.state).shut || self.on_own_worker() {
            // Done already; or called from one of our own works, where waiting would wait for
            // ourselves: the workers finish the queue and leave on their own.
            return report(before, false);
        }
        if opts.cancel_pending {
            self.shared.end_queued(|| Error::Cancelled);
        }
        let deadline = opts.total_timeout.and_then(|d| start.checked_add(d));
        let all_left = self
            .shared
            .wait_until(how, |st| st.threads == 0, deadline, opts.idle_timeout)
            .await;
        if all_left {
            // No worker is left: whatever is still queued (workers that failed to start) can
            // never run.
            self.shared.end_queued(|| Error::ShutDown);
        } else {
            self.shared.end_queued(|| Error::Cancelled);
            self.shared.set_intake(Intake::Stopping);
            // Workers not held by a plain closure leave now, dropping their async works.
            let grace = Instant::now().checked_add(STOP_GRACE);
            let only_plain_left = |st: &queue::State| st.threads <= Shared::plain_running(st);
            self.shared
                .wait_until(how, only_plain_left, grace, None)
                .await;
        }
        self.shared.reap(!all_left);
        let mut st = lock(&self.shared.state);
        st.shut = true;
        let after = st.tally;
        self.shared.notify(st); // for `closed`
        report(after, !all_left)
    }

    /// True on one of this pool's worker threads.
    pub(super) fn on_own_worker(&self) -> bool {
        let me = std::thread::current().id();
        lock(&self.shared.state)
            .records
            .iter()
            .any(|r| r.thread.as_ref().is_some_and(|t| t.thread().id() == me))
    }
}

impl Drop for ElasticPool {
    fn drop(&mut self) {
        self.shutdown(ShutdownOptions::default());
    }
}
