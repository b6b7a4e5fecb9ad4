//! `Handle<T>`: the future of one submitted work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::cell::{uncount_cancelled, Outcome, QueuedCounts};
use crate::Error;

/// How long a blocking wait spins before it parks: a parked thread's wake-up costs ~10 µs, so a
/// work that finishes within this window is seen without one.
const WAIT_SPIN: Duration = Duration::from_micros(20);

/// The future of one work submitted to a pool.
///
/// Await it from any executor (aplex's [`block_on`](crate::block_on), or another runtime), or
/// block on it with [`wait`](Handle::wait). It resolves to the work's value or an [`Error`]:
/// `Panicked`, `Cancelled`, `TimedOut`, `WorkerLost` or `ShutDown` — exactly one, once.
///
/// Dropping a handle does **not** cancel its work (the work runs on; its value is dropped);
/// [`cancel_on_drop`](Handle::cancel_on_drop) changes that.
///
/// ```
/// let pool = aplex::ThreadPool::new(2);
/// let a = pool.submit(|| 2 + 2);
/// let b = pool.spawn(|| async { 10 });
/// assert_eq!(a.wait(), Ok(4));
/// assert_eq!(aplex::block_on(b), Ok(10));
/// ```
#[must_use = "a dropped Handle lets its work run on unobserved; keep it to get the result"]
pub struct Handle<T> {
    outcome: Arc<dyn Outcome<T>>,
    /// The counts of waiting works of the pool that queued the work, if they are kept per
    /// work (a thread pool's): a cancel that finds the work still waiting lowers its load.
    queued_in: Option<Arc<dyn QueuedCounts>>,
}

impl<T> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Handle<T> {
    pub(crate) fn new(outcome: Arc<dyn Outcome<T>>) -> Handle<T> {
        Handle {
            outcome,
            queued_in: None,
        }
    }

    /// A handle whose cancel uncounts the work from `counts` while it waits in a queue.
    pub(crate) fn counted_in(
        outcome: Arc<dyn Outcome<T>>,
        counts: Arc<dyn QueuedCounts>,
    ) -> Handle<T> {
        Handle {
            outcome,
            queued_in: Some(counts),
        }
    }

    /// A handle that has already failed with `error` (a work that could not be submitted).
    #[cfg_attr(not(all(feature = "helpers", feature = "process")), allow(dead_code))] // by in_process
    pub(crate) fn failed(error: Error) -> Handle<T>
    where
        T: Send + 'static,
    {
        let completion = Arc::new(super::cell::Completion::new());
        completion.fail(error);
        Handle::new(completion)
    }

    /// Blocks the calling thread until the work ends, and returns its outcome.
    ///
    /// # Blocking
    ///
    /// Do not call this inside an async work or `block_on` (it would stall that executor);
    /// `.await` the handle there instead.
    pub fn wait(self) -> Result<T, Error> {
        let mut this = self;
        match this.wait_until(None) {
            Some(result) => result,
            None => unreachable!("a wait without a deadline returns only with the outcome"),
        }
    }

    /// Blocks until the work ends or `timeout` passes; `Err(Error::TimedOut)` then, and the
    /// handle stays usable (the work goes on). After it returned the outcome, the handle is
    /// spent: waiting again panics.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use aplex::sync::Event;
    ///
    /// let pool = aplex::ThreadPool::new(1);
    /// let go = Arc::new(Event::new());
    /// let g = Arc::clone(&go);
    /// let mut slow = pool.spawn(move || async move {
    ///     g.wait().await;
    ///     "late"
    /// });
    /// assert_eq!(slow.wait_timeout(Duration::from_millis(1)), Err(aplex::Error::TimedOut));
    /// go.set();
    /// assert_eq!(slow.wait_timeout(Duration::from_secs(20)), Ok("late"));
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<T, Error> {
        let deadline = Instant::now().checked_add(timeout);
        self.wait_until(deadline).unwrap_or(Err(Error::TimedOut))
    }

    /// The blocking core: `None` when the deadline passed first.
    pub(crate) fn wait_until(&mut self, deadline: Option<Instant>) -> Option<Result<T, Error>> {
        let completion = self.outcome.completion();
        if !completion.is_done() {
            let spin_end = Instant::now() + WAIT_SPIN;
            'spin: loop {
                for _ in 0..8 {
                    if completion.is_done() {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if Instant::now() >= spin_end {
                    break;
                }
                std::thread::yield_now(); // let a worker that shares our core run
            }
        }
        if completion.is_done() {
            // The common case: take the outcome without making a parker. (A winner that has
            // not written it yet is waited for below.)
            if let Poll::Ready(result) = completion.poll_result(Waker::noop()) {
                return Some(result);
            }
        }
        crate::sync::blocking::wait_deadline(&mut *self, deadline)
    }

    /// Cancels the work. Returns true exactly when the outcome is (or will be)
    /// `Err(Error::Cancelled)`, whoever decided it — this call, an earlier one, `shutdown_now`:
    /// asking again gives the same answer. A queued work is removed and never runs; a running
    /// async work is stopped at its next suspension point. A running plain closure cannot be
    /// interrupted, and a finished work has its outcome already: `false` for both.
    ///
    /// `cancel()` never blocks. When the handle then reports `Cancelled` for a work that had
    /// started, the work's future **has already been dropped** on its worker: whatever it held
    /// (a permit, a connection, a lock, a file) is released by then. If that worker is busy in a
    /// long plain closure, the handle resolves once the worker gets to drop the future.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = aplex::ThreadPool::new(1);
    /// let h = pool.spawn(|| async {
    ///     aplex::time::sleep(Duration::from_secs(60)).await;
    /// });
    /// assert!(h.cancel());
    /// assert!(h.cancel()); // the same answer
    /// assert_eq!(h.wait(), Err(aplex::Error::Cancelled));
    /// ```
    pub fn cancel(&self) -> bool {
        self.cancel_counted(self.queued_in.as_deref())
    }

    /// Cancels the work as [`cancel`](Handle::cancel) does, uncounting it from `counts` if it
    /// still waits in a queue (for a map, which keeps its pool's counts once for all its
    /// handles).
    pub(crate) fn cancel_counted(&self, counts: Option<&dyn QueuedCounts>) -> bool {
        let cancelled = self.outcome.cancel();
        if let (true, Some(counts)) = (cancelled, counts) {
            uncount_cancelled(self.outcome.completion(), counts);
        }
        cancelled
    }

    /// True once the work has an outcome (the handle will not wait). A running async work whose
    /// cancel is decided is not finished until its worker has dropped its future.
    ///
    /// For `select!` users: a `Handle` is not fused — after it resolved, polling it again
    /// panics (the outcome was moved out). Keep a flag, or check `is_finished` before polling a
    /// handle you keep across loop turns: `futures::select!` wants `FusedFuture`, which a
    /// one-line wrapper gives (`handle.fuse()` from `futures`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Event;
    ///
    /// let pool = aplex::ThreadPool::new(1);
    /// let go = Arc::new(Event::new());
    /// let g = Arc::clone(&go);
    /// let mut h = pool.spawn(move || async move { g.wait().await; 5 });
    /// assert!(!h.is_finished());
    /// go.set();
    /// assert_eq!(aplex::block_on(&mut h), Ok(5));
    /// assert!(h.is_finished()); // polling `h` again would panic
    /// ```
    pub fn is_finished(&self) -> bool {
        self.outcome.completion().is_done()
    }

    /// Makes dropping this handle cancel its work.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use aplex::sync::Event;
    ///
    /// let pool = aplex::ThreadPool::new(1);
    /// let go = Arc::new(Event::new());
    /// let g = Arc::clone(&go);
    /// let blocker = pool.submit(move || g.wait_blocking()); // holds the only worker
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// drop(pool.submit(move || r.store(true, Ordering::SeqCst)).cancel_on_drop());
    /// go.set();
    /// blocker.wait().unwrap();
    /// drop(pool); // waits for accepted works
    /// assert!(!ran.load(Ordering::SeqCst));
    /// ```
    pub fn cancel_on_drop(self) -> Handle<T> {
        self.outcome.completion().set_cancel_on_drop();
        self
    }
}

impl<T> Future for Handle<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        self.outcome.completion().poll_result(cx.waker())
    }
}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        if self.outcome.completion().cancels_on_drop() {
            self.cancel();
        }
    }
}
