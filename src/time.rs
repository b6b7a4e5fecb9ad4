//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
//!
//! A timer registers with the reactor of the thread that polls it (inside
//! [`block_on`](crate::block_on) or a pool worker). Polled anywhere else — inside another runtime,
//! say — it registers with a small global timer thread started on first such use, so these
//! futures work under any executor. Dropping a pending timer removes it from its reactor.
//!
//! **Durations saturate.** A duration too large to add to the clock (`Duration::MAX`, say) means
//! "never": such a sleep never completes, such a timeout never fires, such an interval ticks
//! once and then never again. The same holds for every duration the crate takes
//! ([`Handle::wait_timeout`](crate::Handle::wait_timeout), [`Map::timeout`](crate::Map::timeout),
//! pool and limiter settings): no duration a user passes makes aplex panic on overflow.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use aplex::time::{sleep, timeout};
//!
//! aplex::block_on(async {
//!     let start = Instant::now();
//!     sleep(Duration::from_millis(20)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(20));
//!
//!     let slow = sleep(Duration::from_secs(60));
//!     assert!(timeout(Duration::from_millis(5), slow).await.is_err());
//! });
//! ```

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::executor::with_current;
use crate::runtime::reactor::{fallback_reactor, Reactor};

/// Waits until `duration` has passed.
///
/// The future is `Send` and `Unpin`. A duration too large to add to now never completes.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// aplex::block_on(aplex::time::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::new(Instant::now().checked_add(duration))
}

/// Waits until `deadline`. A deadline in the past completes at the first poll.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(10);
/// aplex::block_on(aplex::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(Some(deadline))
}

/// The future of [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    /// `None`: never (the deadline overflowed `Instant`).
    deadline: Option<Instant>,
    /// Where the timer is registered, its id there, and the waker of the poll that registered
    /// it (kept so that a `reset` can move the timer without a poll), while it is.
    timer: Option<Registered>,
}

/// A registered timer.
#[derive(Debug)]
struct Registered {
    reactor: Arc<Reactor>,
    id: u64,
    waker: Waker,
}

impl Sleep {
    fn new(deadline: Option<Instant>) -> Sleep {
        Sleep {
            deadline,
            timer: None,
        }
    }

    /// When this sleep completes (`None`: never).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the deadline has passed, so the next poll completes. For `select!`-style code
    /// that keeps a `Sleep` across loop turns: a sleep that has completed stays elapsed (until
    /// [`reset`](Sleep::reset)), and polling it again completes again at once. A sleep that
    /// never completes (its duration overflowed the clock) is never elapsed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let now = Instant::now();
    /// let past = aplex::time::sleep_until(now);
    /// assert!(past.is_elapsed());
    /// let mut later = aplex::time::sleep(Duration::from_secs(3600));
    /// assert!(!later.is_elapsed());
    /// later.reset(now);
    /// assert!(later.is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Moves the deadline; the sleep is pending again until then.
    ///
    /// A task waiting on the sleep stays registered: it is woken at the new deadline (at once,
    /// if that has passed) without polling the sleep again, as after a `select!` arm that
    /// resets a sleep it does not poll in the same turn.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut s = aplex::time::sleep(Duration::from_secs(3600));
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// s.reset(soon);
    /// aplex::block_on(&mut s);
    /// assert!(Instant::now() >= soon);
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        let Some(Registered { reactor, id, waker }) = self.timer.take() else {
            return; // not waiting: the next poll registers
        };
        reactor.remove_timer(id);
        if Instant::now() >= deadline {
            waker.wake();
            return;
        }
        let id = reactor.insert_timer(deadline, waker.clone());
        // The reactor's thread may be parked until the old, later deadline.
        reactor.notify();
        self.timer = Some(Registered { reactor, id, waker });
    }

    fn unregister(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.reactor.remove_timer(timer.id);
        }
    }
}

/// The reactor a timer polled on this thread belongs to: this thread's executor's, or else the
/// global timer thread's.
fn home_reactor() -> (Option<Arc<Reactor>>, *const Reactor) {
    match with_current(|local| Arc::as_ptr(&local.shared.reactor)) {
        Some(ptr) => (None, ptr),
        None => {
            let fallback = fallback_reactor();
            let ptr = Arc::as_ptr(fallback);
            (Some(fallback.clone()), ptr)
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if Instant::now() >= deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let (fallback, home) = home_reactor();
        if let Some(timer) = &mut self.timer {
            if Arc::as_ptr(&timer.reactor) == home
                && timer.reactor.update_timer(timer.id, cx.waker())
            {
                if !timer.waker.will_wake(cx.waker()) {
                    timer.waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
        }
        // Not registered yet, or polled on another thread's reactor now: register here.
        self.unregister();
        let on_fallback = fallback.is_some();
        let reactor = match fallback {
            Some(fallback) => fallback,
            None => with_current(|local| local.shared.reactor.clone())
                .expect("an executor runs on this thread: it was seen just above"),
        };
        let id = reactor.insert_timer(deadline, cx.waker().clone());
        if on_fallback {
            reactor.notify(); // the timer thread may sleep past this deadline
        }
        self.timer = Some(Registered {
            reactor,
            id,
            waker: cx.waker().clone(),
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Runs `future` with a time limit: `Err(Elapsed)` if `duration` passes first (the future is
/// then dropped with the `Timeout`). Accepts any future, `Unpin` or not.
///
/// ```
/// use std::time::Duration;
/// use aplex::time::{sleep, timeout};
/// aplex::block_on(async {
///     assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
///     let late = timeout(Duration::from_millis(1), sleep(Duration::from_secs(5))).await;
///     assert_eq!(late, Err(aplex::time::Elapsed));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Like [`timeout`], with a deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let out = aplex::block_on(aplex::time::timeout_at(deadline, async { "done" }));
/// assert_eq!(out, Ok("done"));
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

/// The future of [`timeout`] and [`timeout_at`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    /// Whether the time limit has passed: the next poll gives `Err(Elapsed)` unless the inner
    /// future completes in that very poll (it is polled first).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = aplex::time::timeout_at(Instant::now(), std::future::pending::<()>());
    /// assert!(t.is_elapsed());
    /// assert_eq!(aplex::block_on(t), Err(aplex::time::Elapsed));
    /// let t = aplex::time::timeout(Duration::from_secs(3600), async { 1 });
    /// assert!(!t.is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.sleep.is_elapsed()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of a pinned `Timeout`
        // (no method hands it out by value, and `Timeout` has no `Drop` impl that could), and
        // `Timeout` is `Unpin` only when `F` is. `sleep` is not pinned (`Sleep: Unpin`).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above: `this.future` stays where it is until it is dropped.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| Err(Elapsed))
    }
}

/// The error of [`timeout`]: the time ran out before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// A stream of evenly spaced instants: the first [`Interval::tick`] completes at once, then one
/// every `period`.
///
/// Missed ticks are skipped: a tick that comes late is followed by the next one on the original
/// grid, never by a burst of catch-up ticks.
///
/// # Panics
///
/// Panics if `period` is zero.
///
/// ```
/// use std::time::{Duration, Instant};
/// aplex::block_on(async {
///     let start = Instant::now();
///     let mut every = aplex::time::interval(Duration::from_millis(5));
///     for _ in 0..3 {
///         every.tick().await;
///     }
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "aplex::time::interval: the period must be non-zero"
    );
    new_interval(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start` rather than at once; then one every
/// `period` after it.
///
/// # Panics
///
/// Panics if `period` is zero.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now() + Duration::from_millis(10);
/// aplex::block_on(async {
///     let mut every = aplex::time::interval_at(start, Duration::from_millis(5));
///     assert_eq!(every.tick().await, start);
///     assert!(Instant::now() >= start);
///     let second = every.tick().await; // 5 ms on, or later on the grid if this thread stalled
///     assert_eq!((second - start).as_nanos() % 5_000_000, 0);
///     assert!(second > start);
/// });
/// ```
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "aplex::time::interval_at: the period must be non-zero"
    );
    new_interval(start, period)
}

fn new_interval(start: Instant, period: Duration) -> Interval {
    Interval {
        period,
        next: start,
        sleep: sleep_until(start),
    }
}

/// The timer of [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Instant,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// Cancel-safe: dropping the future before it completes loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick: the core of [`tick`](Interval::tick), for adapting an
    /// interval into another crate's stream type without a dependency, e.g.
    /// `futures::stream::poll_fn(move |cx| every.poll_tick(cx).map(Some))`.
    ///
    /// `Ready(instant)` gives the instant the tick was scheduled for and moves on to the next.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let mut every = aplex::time::interval_at(start, Duration::from_millis(5));
    /// let first = aplex::block_on(poll_fn(|cx| every.poll_tick(cx)));
    /// assert_eq!(first, start);
    /// ```
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.next;
        // A period too long for the clock: the next tick never comes.
        let Some(mut next) = scheduled.checked_add(self.period) else {
            self.sleep = Sleep::new(None);
            return Poll::Ready(scheduled);
        };
        let now = Instant::now();
        if next <= now {
            let behind = (now - next).as_nanos() / self.period.as_nanos() + 1;
            let skip = self
                .period
                .saturating_mul(behind.min(u32::MAX as u128) as u32);
            next = next.checked_add(skip).unwrap_or(now);
        }
        self.next = next;
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }

    /// Restarts the grid from now: the next tick comes one `period` from now (not at once),
    /// then one every `period`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// aplex::block_on(async {
    ///     let mut every = aplex::time::interval(Duration::from_millis(5));
    ///     every.tick().await; // the first tick is at once
    ///     let before = Instant::now();
    ///     every.reset();
    ///     let next = every.tick().await;
    ///     assert!(next >= before + Duration::from_millis(5));
    /// });
    /// ```
    pub fn reset(&mut self) {
        match Instant::now().checked_add(self.period) {
            Some(next) => {
                self.next = next;
                self.sleep.reset(next);
            }
            None => self.sleep = Sleep::new(None),
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// How many timers are registered with the reactor of this thread's executor (inside
/// [`block_on`](crate::block_on) or a pool worker); 0 on a thread that runs none.
///
/// A diagnostic: a pending [`Sleep`] holds one timer, and dropping it removes it.
///
/// ```
/// use std::time::Duration;
/// aplex::block_on(async {
///     let before = aplex::time::pending_timers();
///     let t = aplex::time::timeout(Duration::from_secs(60), aplex::yield_now());
///     assert_eq!(t.await, Ok(()));
///     assert_eq!(aplex::time::pending_timers(), before);
/// });
/// ```
pub fn pending_timers() -> usize {
    with_current(|local| local.shared.reactor.timer_count()).unwrap_or(0)
}
