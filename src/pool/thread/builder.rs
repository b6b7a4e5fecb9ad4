//! The [`ThreadPool`] builder: sizes, balancer or shared queue, names, start hook, spin; `build`
//! starts every worker and returns once all have started.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::queueing::Queueing;
use super::{ExitGuard, PoolInner, ThreadPool, WorkerExits, DEFAULT_MAX_WORKS, DEFAULT_SPIN};
use crate::balance::{Balancer, RoundRobin};
use crate::pool::picker::Picker;
use crate::pool::worker::{start_thread, StartFailure, ThreadStart};
use crate::sync::Event;

/// Configures a [`ThreadPool`].
pub struct Builder {
    workers: Option<usize>,
    max_works: usize,
    balancer: Box<dyn Balancer>,
    /// `balancer(..)` was called (refused with a shared queue).
    balancer_set: bool,
    shared_queue: bool,
    name: String,
    on_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
    /// `None`: the default, which depends on the worker count.
    spin: Option<Duration>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.workers)
            .field("max_works_per_worker", &self.max_works)
            .field("shared_queue", &self.shared_queue)
            .field("thread_name", &self.name)
            .field("spin", &self.spin)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            workers: None,
            max_works: DEFAULT_MAX_WORKS,
            balancer: Box::new(RoundRobin::new()),
            balancer_set: false,
            shared_queue: false,
            name: "aplex".to_string(),
            on_start: None,
            spin: None,
        }
    }
}

impl Builder {
    /// How many worker threads (default: the available cores).
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// How many works run at once on one worker (default 300); more wait in its queue.
    pub fn max_works_per_worker(mut self, n: usize) -> Builder {
        self.max_works = n;
        self
    }

    /// The balancer that picks a worker for each work (default [`RoundRobin`]). Not with
    /// [`shared_queue(true)`](Builder::shared_queue), which has no picks to make.
    pub fn balancer(mut self, balancer: impl Balancer + 'static) -> Builder {
        self.balancer = Box::new(balancer);
        self.balancer_set = true;
        self
    }

    /// Whether the workers serve one shared queue, first come, first served (default `false`:
    /// each worker has its own queue, fed by the balancer).
    ///
    /// Choose it for **blocking closures that must start in arrival order** (it is what
    /// [`in_thread`](crate::in_thread)'s pool uses): when every worker is busy, the works that
    /// wait start strictly in the order they were submitted, each on whichever worker frees up
    /// first. With a queue per worker, a freed worker starts the oldest work of *its own* queue,
    /// which may be younger than another queue's oldest; idle workers steal, but only roughly
    /// in order.
    ///
    /// What it gives up:
    ///
    /// - **Balancing and affinity**: there is no balancer. [`build`](Builder::build) refuses a
    ///   [`balancer(..)`](Builder::balancer) set with it (`InvalidInput`), and the hint of
    ///   [`submit_with`](super::ThreadPool::submit_with) / `spawn_with` is accepted and ignored:
    ///   the work joins the back of the queue like any other (works with one
    ///   [`KeyAffinity`](crate::balance::KeyAffinity) key may then run on different workers, and
    ///   at the same time).
    /// - **Locality**: submitters and all workers share one lock, and a work runs wherever a
    ///   worker is free, so a busy pool of short works contends more than with a queue per
    ///   worker.
    ///
    /// A worker takes from the queue only what it starts at once: async works while it has room
    /// ([`max_works_per_worker`](Builder::max_works_per_worker)), up to and including one plain
    /// closure — and, while other workers with nothing running are idle, no more than its fair
    /// share, so that async works pushed to an idle pool spread over its workers. A work
    /// cancelled while it waits leaves the loads at once. The waiting works belong to no worker: [`loads`](super::ThreadPool::loads) and
    /// [`detailed_loads`](super::ThreadPool::detailed_loads) report each worker's running works,
    /// and spread the waiting ones evenly over the workers (the first workers get the
    /// remainder), so that the loads still add up to every work the pool holds.
    ///
    /// ```
    /// use std::sync::{mpsc, Arc, Mutex};
    ///
    /// let pool = aplex::ThreadPool::builder().workers(1).shared_queue(true).build()?;
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started_tx, started) = mpsc::channel();
    /// let hold = pool.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     gate.recv().unwrap() // holds the only worker until released
    /// });
    /// started.recv().unwrap();
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// let waiting: Vec<_> = (0..3)
    ///     .map(|i| {
    ///         let order = Arc::clone(&order);
    ///         pool.submit(move || order.lock().unwrap().push(i))
    ///     })
    ///     .collect();
    /// let held = pool.detailed_loads()[0];
    /// assert_eq!(held.queued, 3); // the only worker, so all of the queue is on it
    /// release.send(()).unwrap();
    /// hold.wait().unwrap();
    /// for h in waiting {
    ///     h.wait().unwrap();
    /// }
    /// assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
    ///
    /// // No balancer to go with it:
    /// let refused = aplex::ThreadPool::builder()
    ///     .shared_queue(true)
    ///     .balancer(aplex::balance::LeastLoaded::new())
    ///     .build();
    /// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shared_queue(mut self, shared: bool) -> Builder {
        self.shared_queue = shared;
        self
    }

    /// The prefix of the worker threads' names: worker *i* is `"{prefix}-{i}"` (default
    /// `"aplex"`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.name = prefix.into();
        self
    }

    /// Runs `f(worker_index)` on each worker thread, inside its executor, before it takes any
    /// work (aplex's `worker_loop_factory` hook): set thread-locals, or `spawn_local` a
    /// background task there. If `f` panics, [`build`](Builder::build) fails.
    ///
    /// It is also the place to enter another runtime's context on each worker, so that works
    /// can use that runtime's thread-bound APIs (`tokio::time`, `tokio::net`, which otherwise
    /// fail with "there is no reactor running"). With tokio (not a dependency of aplex, so this
    /// is not compiled here), one small runtime per worker whose own thread drives its timers
    /// and I/O, entered for the worker's whole life:
    ///
    /// ```ignore
    /// use std::cell::RefCell;
    ///
    /// thread_local! {
    ///     // Kept for the thread's life: dropping the guard would leave the runtime's context.
    ///     static TOKIO: RefCell<Option<tokio::runtime::EnterGuard<'static>>> = RefCell::new(None);
    /// }
    ///
    /// let pool = aplex::ThreadPool::builder()
    ///     .workers(4)
    ///     .on_worker_start(|_i| {
    ///         // multi_thread with one thread: that thread drives the timers and sockets (a
    ///         // current_thread runtime would only drive them inside its own block_on).
    ///         let rt = tokio::runtime::Builder::new_multi_thread()
    ///             .worker_threads(1)
    ///             .enable_all()
    ///             .build()
    ///             .expect("a tokio runtime per worker");
    ///         let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
    ///         TOKIO.with(|guard| *guard.borrow_mut() = Some(rt.enter()));
    ///     })
    ///     .build()?;
    /// let h = pool.spawn(|| async {
    ///     tokio::time::sleep(std::time::Duration::from_millis(10)).await; // works here now
    ///     7
    /// });
    /// assert_eq!(h.wait()?, 7);
    /// ```
    ///
    /// (One shared runtime works too: build it outside, and enter a clone of its
    /// `tokio::runtime::Handle` per worker.) A panic in `f` is reported by `build`, as above.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let s = started.clone();
    /// let pool = aplex::ThreadPool::builder()
    ///     .workers(3)
    ///     .on_worker_start(move |_i| { s.fetch_add(1, Ordering::SeqCst); })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(started.load(Ordering::SeqCst), 3); // build() waits for every worker
    /// ```
    pub fn on_worker_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Builder {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// How long an idle worker spins, looking for work, before it parks (default 50 µs when
    /// the pool has no more workers than cores, else 0: more spinners than cores would only
    /// take turns on them).
    ///
    /// Spinning turns a ~10 µs wake-up into well under one for works that arrive one after the
    /// other, at the cost of that much CPU after each burst; an idle pool uses none.
    /// `Duration::ZERO` never spins; a window longer than 1 ms (`Duration::MAX` included) is
    /// taken as 1 ms, since a spinning worker does not look at its timers or fds.
    pub fn spin(mut self, spin: Duration) -> Builder {
        self.spin = Some(spin);
        self
    }

    /// Starts the workers; returns once every one of them runs.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero workers, a zero `max_works_per_worker`, or a `balancer` set
    /// with `shared_queue(true)` (a shared queue makes no picks); the OS error if a
    /// thread cannot be started; `Other` if `on_worker_start` panicked.
    pub fn build(self) -> io::Result<ThreadPool> {
        let cores = crate::runtime::available_cores;
        let n = self.workers.unwrap_or_else(cores);
        if n == 0 {
            return Err(invalid("a pool needs at least one worker"));
        }
        if self.max_works == 0 {
            return Err(invalid("max_works_per_worker must be at least 1"));
        }
        if self.shared_queue && self.balancer_set {
            return Err(invalid(
                "a shared queue has no balancer: works start in arrival order on whichever \
                 worker is free; drop balancer(..) or shared_queue(true)",
            ));
        }
        let spin = self.spin.unwrap_or_else(|| {
            if n <= cores() {
                DEFAULT_SPIN
            } else {
                Duration::ZERO
            }
        });
        let workers = Queueing::new(self.shared_queue, n, self.max_works);
        let exits = Arc::new(WorkerExits {
            live: AtomicUsize::new(0),
            all_gone: Event::new(),
        });
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), StartFailure>>();
        let mut threads = Vec::with_capacity(n);
        let mut failure = None;
        for i in 0..n {
            let queues = workers.clone();
            let max = self.max_works;
            let start = ThreadStart {
                name: format!("{}-{i}", self.name),
                index: i,
                spin,
                on_start: self.on_start.clone(),
                ready: Some(ready_tx.clone()),
                on_no_executor: None,
            };
            let exit = ExitGuard::new(&exits);
            let spawned = start_thread(start, move || {
                let dispatcher = queues.dispatcher(i, max);
                async move {
                    let _exit = exit;
                    dispatcher.await;
                }
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(ready_tx);
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(StartFailure::Hook(msg))) => {
                    failure.get_or_insert_with(|| {
                        io::Error::other(format!("on_worker_start panicked: {msg}"))
                    });
                }
                // The thread could not make its reactor: the cause (EMFILE) is the OS's.
                Ok(Err(StartFailure::Os(e))) => {
                    failure.get_or_insert(e);
                }
                Err(_) => {
                    failure.get_or_insert_with(|| {
                        io::Error::other("a worker thread ended before it started")
                    });
                }
            }
        }
        let inner = Arc::new(PoolInner {
            thread_ids: threads.iter().map(|t| t.thread().id()).collect(),
            threads: Mutex::new(threads),
            queued_counts: workers.counts(),
            workers,
            picker: Picker::new(self.balancer),
            open: AtomicBool::new(true),
            exits,
        });
        if let Some(e) = failure {
            inner.close(true);
            return Err(e);
        }
        Ok(ThreadPool { inner })
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
