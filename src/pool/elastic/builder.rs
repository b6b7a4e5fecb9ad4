//! Configuring an [`ElasticPool`].

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::{Config, Shared};
use super::room::Rooms;
use super::{check_bounds, ElasticPool};

// The default of `max_works_per_worker`: the `ThreadPool`'s default too, so a work moved
// between the two pools meets the same limit.
const DEFAULT_MAX_WORKS: usize = 300;

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
            .field("max_works_per_worker", &self.max_works)
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
            max_works: DEFAULT_MAX_WORKS,
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
    /// `Duration::MAX` (or any duration too long for `Instant`) means never.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Whether to add workers under load (default true). Without it the pool keeps
    /// `min_workers`, changed only by [`ElasticPool::resize`]; so `min_workers` must then be at
    /// least 1 (`build` refuses 0: no work would ever run).
    ///
    /// ```
    /// let refused = aplex::ElasticPool::builder().max_workers(4).scaling(false).build();
    /// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// let fixed = aplex::ElasticPool::builder().workers(2).scaling(false).build().unwrap();
    /// assert_eq!(fixed.stats().workers, 2);
    /// ```
    pub fn scaling(mut self, on: bool) -> Self {
        self.scaling = on;
        self
    }

    /// Async works one worker runs at once (default 300, as the [`ThreadPool`]'s).
    ///
    /// An async work that waits (on a timer, a socket, a channel) leaves its worker free to run
    /// the others, so one worker overlaps many such works and the pool need not grow a thread
    /// per waiting work. A plain closure is not held back by this limit: it takes its worker's
    /// thread until it returns, whatever the limit, and another worker takes over the works
    /// queued meanwhile. So the limit only matters for async works: set 1 for a classic pool
    /// where every async work holds a worker for its whole life (one thread per work in
    /// flight, up to `max_workers`).
    ///
    /// For a plain closure, a worker that runs async works is busy: the closure goes to a
    /// worker with nothing running if one is idle, else the pool grows, and only at
    /// `max_workers` (with no such worker) does it run beside async works, stalling them until
    /// it returns. There, a closure that blocks on one of the async works of its own worker
    /// (`handle.wait()`) never returns; await the handle from an async work instead, or keep
    /// `max_workers` above what such closures need, or set this limit to 1.
    ///
    /// [`ThreadPool`]: crate::ThreadPool
    ///
    /// # Examples
    ///
    /// With the default, three async works all run at once on a single worker:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use aplex::sync::{mpsc, Event};
    ///
    /// let pool = aplex::ElasticPool::builder().workers(1).build().unwrap();
    /// let gate = Arc::new(Event::new());
    /// let (started, mut starts) = mpsc::unbounded();
    /// let works: Vec<_> = (0..3)
    ///     .map(|i| {
    ///         let (gate, started) = (Arc::clone(&gate), started.clone());
    ///         pool.try_spawn(move || async move {
    ///             started.try_send(i).unwrap();
    ///             gate.wait().await; // held open until all three have started
    ///             i
    ///         })
    ///         .unwrap()
    ///     })
    ///     .collect();
    /// // The bound only catches a hang: with a limit of 1, the second would never start.
    /// let all_started = (0..3).all(|_| starts.recv_timeout(Duration::from_secs(30)).is_ok());
    /// gate.set(); // whatever happened, so that the works end and the pool can drop
    /// assert!(all_started);
    /// let done: Vec<_> = works.into_iter().map(|h| h.wait().unwrap()).collect();
    /// assert_eq!(done, [0, 1, 2]);
    /// ```
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
    ///
    /// A worker whose hook panics does not start: `build` fails with the panic's message for
    /// one of `min_workers`; later, the pool starts another in its place, and
    /// [`join`](ElasticPool::join) reports it as `Error::WorkerLost`. When no worker is alive and
    /// starts fail three times in a row, every queued work fails with `Error::WorkerLost`
    /// (naming the hook's panic or the OS error), rather than wait for a worker that may never
    /// come; the pool stays open, and a later submit tries to start a worker again.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let broken = Arc::new(AtomicBool::new(true));
    /// let b = Arc::clone(&broken);
    /// let pool = aplex::ElasticPool::builder()
    ///     .min_workers(0)
    ///     .on_worker_start(move |_| assert!(!b.load(Ordering::SeqCst), "no database"))
    ///     .build()
    ///     .unwrap();
    /// let lost = pool.try_submit(|| 1).unwrap().wait();
    /// assert!(matches!(lost, Err(aplex::Error::WorkerLost(why)) if why.contains("no database")));
    /// broken.store(false, Ordering::SeqCst); // the trouble passes: the next submit is served
    /// assert_eq!(pool.try_submit(|| 2).unwrap().wait(), Ok(2));
    /// ```
    pub fn on_worker_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Builds the pool and starts `min_workers`; returns once they run.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for any configuration that could never run a work: `max_workers == 0`,
    /// `min_workers > max_workers`, a zero `queue_capacity` or `max_works_per_worker`, and
    /// `scaling(false)` with `min_workers` 0. The OS error if a thread cannot start; `Other`
    /// if a start hook panicked.
    pub fn build(self) -> io::Result<ElasticPool> {
        let max = self.max.unwrap_or_else(crate::runtime::available_cores);
        check_bounds(self.min, max, self.scaling)?;
        if self.queue_capacity == Some(0) || self.max_works == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queue_capacity and max_works_per_worker must be at least 1",
            ));
        }
        // More spinners than cores would only take turns on them.
        let cores = crate::runtime::available_cores();
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
        let rooms = self.queue_capacity.map(Rooms::new);
        let shared = Arc::new(Shared::new(config, self.min, max, rooms));
        let pool = ElasticPool {
            shared,
            started: Instant::now(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for _ in 0..self.min {
            pool.shared.start_new_worker(Some(ready_tx.clone()))?;
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
