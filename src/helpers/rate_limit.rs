//! `RateLimiter`: at most `max_calls` starts in any window of `period`, starts at least
//! `min_interval` apart, first come first served (aioextensions' `rate_limited`).
//!
//! # Ownership rules
//!
//! Every clone of a limiter shares one `State` behind a mutex. Callers line up in `queue`, in the
//! order of their first poll; only the head (`queue[0]`, ticket `served`) may start. The head
//! computes the earliest instant the rules allow from the *recorded* starts, sleeps until then
//! (outside the lock), and on waking records its start and hands the head to the next caller,
//! whose waker it wakes after releasing the lock. A caller that gives up (its future is dropped)
//! marks its place `Abandoned`, or, if it is the head, hands the head on at once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::reactor::lock;
use crate::time::{sleep_until, Sleep};

/// A caller's place in the line.
#[derive(Debug)]
enum Place {
    /// Waiting for its turn; its waker once it has been polled.
    Waiting(Option<Waker>),
    /// Its future was dropped before it started.
    Abandoned,
}

#[derive(Debug)]
struct State {
    limits: Limits,
    /// The last `max_calls` start instants, oldest first.
    starts: VecDeque<Instant>,
    /// Callers in line; `queue[i]` has ticket `served + i`.
    queue: VecDeque<Place>,
    served: u64,
}

#[derive(Debug)]
struct Limits {
    max_calls: usize,
    period: Duration,
    min_interval: Duration,
}

impl State {
    /// The earliest instant the next start may happen; `None` if never (a period or interval
    /// too long for `Instant`: `Duration::MAX` means never again).
    fn earliest(&self, now: Instant) -> Option<Instant> {
        let limits = &self.limits;
        let mut at = now;
        if self.starts.len() >= limits.max_calls {
            if let Some(oldest) = self.starts.front() {
                at = at.max(oldest.checked_add(limits.period)?);
            }
        }
        if let Some(last) = self.starts.back() {
            at = at.max(last.checked_add(limits.min_interval)?);
        }
        Some(at)
    }

    /// Removes the head of the line (it started or gave up) and any abandoned places behind
    /// it; returns the waker of the new head, to be woken after the lock is released.
    fn advance(&mut self) -> Option<Waker> {
        self.queue.pop_front();
        self.served += 1;
        while let Some(Place::Abandoned) = self.queue.front() {
            self.queue.pop_front();
            self.served += 1;
        }
        match self.queue.front_mut() {
            Some(Place::Waiting(waker)) => waker.take(),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
}

/// Limits how often calls start: at most `max_calls` in any window of `period`, successive
/// starts at least [`min_interval`](RateLimiter::min_interval) apart, callers served first come
/// first served (aioextensions' `rate_limited`).
///
/// A call starts when [`acquire`](RateLimiter::acquire) returns; [`run`](RateLimiter::run)
/// wraps one call. Clones share one limit, across tasks, threads and executors (the timers work
/// under any executor).
///
/// ```
/// use std::time::{Duration, Instant};
/// use aplex::RateLimiter;
///
/// let limiter = RateLimiter::new(2, Duration::from_millis(100));
/// let starts = aplex::block_on(async {
///     let mut starts = Vec::new();
///     for _ in 0..4 {
///         starts.push(limiter.run(async { Instant::now() }).await);
///     }
///     starts
/// });
/// // Two may start at once; the third waits until the first one's window has passed.
/// assert!(starts[2] - starts[0] >= Duration::from_millis(100));
/// assert!(starts[3] - starts[1] >= Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl RateLimiter {
    /// At most `max_calls` starts in any window of `period`. A period too long for `Instant`
    /// (`Duration::MAX`) means the first `max_calls` starts happen and no more.
    ///
    /// # Panics
    ///
    /// Panics if `max_calls` is 0 or `period` is zero.
    ///
    /// ```should_panic
    /// // panics: "aplex::RateLimiter::new: max_calls must be at least 1"
    /// aplex::RateLimiter::new(0, std::time::Duration::from_secs(1));
    /// ```
    pub fn new(max_calls: u32, period: Duration) -> RateLimiter {
        assert!(
            max_calls > 0,
            "aplex::RateLimiter::new: max_calls must be at least 1 (got 0)"
        );
        assert!(
            !period.is_zero(),
            "aplex::RateLimiter::new: period must be longer than zero"
        );
        let max_calls = usize::try_from(max_calls).unwrap_or(usize::MAX);
        RateLimiter {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    limits: Limits {
                        max_calls,
                        period,
                        min_interval: Duration::ZERO,
                    },
                    starts: VecDeque::with_capacity(max_calls.min(1024)),
                    queue: VecDeque::new(),
                    served: 0,
                }),
            }),
        }
    }

    /// Successive starts at least `interval` apart (anti-burst; default zero). Clones share
    /// the setting. An interval too long for `Instant` (`Duration::MAX`) means no start after
    /// the first.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let limiter = aplex::RateLimiter::new(10, Duration::from_secs(1))
    ///     .min_interval(Duration::from_millis(20));
    /// let start = Instant::now();
    /// aplex::block_on(async {
    ///     for _ in 0..3 {
    ///         limiter.acquire().await;
    ///     }
    /// });
    /// assert!(start.elapsed() >= Duration::from_millis(40));
    /// ```
    pub fn min_interval(self, interval: Duration) -> RateLimiter {
        lock(&self.inner.state).limits.min_interval = interval;
        self
    }

    /// Waits until a call may start, and counts it as started when it returns.
    ///
    /// Callers are served in the order they first polled. Dropping the future before it
    /// completes gives up its place without using a start.
    ///
    /// ```
    /// use std::time::Duration;
    /// let limiter = aplex::RateLimiter::new(1, Duration::from_secs(60));
    /// aplex::block_on(async {
    ///     limiter.acquire().await; // the first start is free
    ///     let second = aplex::time::timeout(Duration::from_millis(20), limiter.acquire()).await;
    ///     assert!(second.is_err()); // the next one waits for the period
    /// });
    /// ```
    pub fn acquire(&self) -> RateLimitAcquire<'_> {
        RateLimitAcquire {
            inner: &self.inner,
            ticket: None,
            sleep: None,
        }
    }

    /// Waits for a start as [`acquire`](RateLimiter::acquire) does, then runs `call` and returns
    /// its output.
    ///
    /// ```
    /// use std::time::Duration;
    /// let limiter = aplex::RateLimiter::new(5, Duration::from_secs(1));
    /// let out = aplex::block_on(limiter.run(async { 6 * 7 }));
    /// assert_eq!(out, 42);
    /// ```
    pub async fn run<F: Future>(&self, call: F) -> F::Output {
        self.acquire().await;
        call.await
    }
}

/// The future of [`RateLimiter::acquire`]: ready when a call may start.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct RateLimitAcquire<'a> {
    inner: &'a Inner,
    /// The place in line, once polled; `None` again after starting.
    ticket: Option<u64>,
    sleep: Option<Sleep>,
}

impl Future for RateLimitAcquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let mut state = lock(&this.inner.state);
            let ticket = match this.ticket {
                Some(ticket) => ticket,
                None => {
                    let ticket = state.served + state.queue.len() as u64;
                    state.queue.push_back(Place::Waiting(None));
                    this.ticket = Some(ticket);
                    ticket
                }
            };
            if ticket != state.served {
                // Not our turn: leave a waker in our place.
                let offset = usize::try_from(ticket - state.served).unwrap_or(usize::MAX);
                let mut stale = None;
                if let Some(Place::Waiting(waker)) = state.queue.get_mut(offset) {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        stale = waker.replace(cx.waker().clone());
                    }
                }
                drop(state);
                drop(stale); // an old waker, dropped outside the lock
                return Poll::Pending;
            }
            let now = Instant::now();
            let Some(at) = state.earliest(now) else {
                // Never: the head keeps its place, and the line waits behind it.
                drop(state);
                this.sleep = None;
                return Poll::Pending;
            };
            if at <= now {
                state.starts.push_back(now);
                while state.starts.len() > state.limits.max_calls {
                    state.starts.pop_front();
                }
                let next = state.advance();
                drop(state);
                this.ticket = None;
                this.sleep = None;
                if let Some(next) = next {
                    next.wake();
                }
                return Poll::Ready(());
            }
            drop(state);
            // Our turn, too early: sleep until the rules allow, then look again.
            let sleep = this.sleep.get_or_insert_with(|| sleep_until(at));
            if sleep.deadline() != Some(at) {
                sleep.reset(at);
            }
            if Pin::new(&mut *sleep).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for RateLimitAcquire<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else {
            return;
        };
        let mut state = lock(&self.inner.state);
        let (next, stale) = if ticket == state.served {
            (state.advance(), None)
        } else {
            let offset = usize::try_from(ticket - state.served).unwrap_or(usize::MAX);
            let stale = state
                .queue
                .get_mut(offset)
                .map(|place| std::mem::replace(place, Place::Abandoned));
            (None, stale)
        };
        drop(state);
        drop(stale); // our old waker, dropped outside the lock
        if let Some(next) = next {
            next.wake();
        }
    }
}
