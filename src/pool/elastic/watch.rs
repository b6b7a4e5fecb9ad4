//! Waiting for the pool's state to change: what a shutdown waits for, blocking the calling
//! thread (`shutdown`, `join`, drop) or as a future (`shutdown_async`, `closed`).
//!
//! # Ownership rules
//!
//! - A waiter counts itself in `Mirrors::watching`, under the pool's lock, before its first
//!   look at the state, and stops counting when it stops waiting (an async waiter: when its
//!   future completes or is dropped). Whoever changes what a waiter looks at — a work's end, a
//!   thread's exit, a plain closure's start, the intake, a shutdown's end — calls
//!   [`Shared::notify`] with the lock, which wakes every waiter if any is counted.
//! - A blocking waiter sleeps on `Shared::changed`. An async waiter leaves its waker in
//!   `State::watchers`; `notify` takes them all out under the lock and wakes them after it, and
//!   each waiter that is not done puts its waker back when it looks again.
//! - Both look at the state only under the lock, so a change made under the lock is never
//!   missed; a change made without it (a plain closure's start) is published with a SeqCst
//!   order against the count (see `Shared::plain_started`).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::queue::{Shared, State};
use crate::runtime::reactor::lock;
use crate::time::Sleep;

/// How a shutdown waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Parks the calling thread (no timer, no executor needed: safe inside any `block_on`).
    Blocking,
    /// Returns `Pending` and is woken, with aplex's timers for the time limits.
    Async,
}

/// An async waiter's place in `Mirrors::watching`, given back when the waiter goes.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        // ORDERING: SeqCst, as the increment; a stale count only costs a needless wake-up.
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// When the wait gives up: at `deadline`, or once no work has ended for `stall`.
struct Limits {
    deadline: Option<Instant>,
    stall: Option<Duration>,
    /// The count of ended works at the last change, and when it changed.
    progress: Option<(usize, Instant)>,
}

impl Limits {
    /// The instant the wait gives up, as of `now` with the state `st`.
    fn give_up_at(&mut self, st: &State, now: Instant) -> Option<Instant> {
        let progress = self.progress.get_or_insert((st.tally.ended, now));
        if st.tally.ended != progress.0 {
            *progress = (st.tally.ended, now);
        }
        let stalled_at = self.stall.and_then(|d| progress.1.checked_add(d));
        self.deadline.into_iter().chain(stalled_at).min()
    }
}

impl Shared {
    /// Releases the lock and wakes every waiter (blocking and async), if any.
    pub(super) fn notify(&self, mut st: MutexGuard<'_, State>) {
        // ORDERING: Relaxed: `watching` grows only under the lock we hold.
        let watched = self.mirrors.watching.load(Ordering::Relaxed) > 0;
        let wakers = if watched {
            std::mem::take(&mut st.watchers)
        } else {
            Vec::new()
        };
        drop(st);
        if watched {
            self.changed.notify_all();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Waits, as `how` says, until `done` holds, or until `deadline`, or until no work has
    /// ended for `stall`; true if `done` holds.
    pub(crate) async fn wait_until(
        &self,
        how: Waiting,
        done: impl Fn(&State) -> bool,
        deadline: Option<Instant>,
        stall: Option<Duration>,
    ) -> bool {
        let limits = Limits {
            deadline,
            stall,
            progress: None,
        };
        match how {
            Waiting::Blocking => self.wait_blocking(done, limits),
            Waiting::Async => self.wait_async(done, limits).await,
        }
    }

    fn wait_blocking(&self, done: impl Fn(&State) -> bool, mut limits: Limits) -> bool {
        let mut st = lock(&self.state);
        // Counted before the first look, so that a change made without the lock (a plain
        // closure's start, see `plain_started`) that a look misses finds us counted.
        self.mirrors.watching.fetch_add(1, Ordering::SeqCst);
        let done = loop {
            if done(&st) {
                break true;
            }
            let now = Instant::now();
            let give_up_at = limits.give_up_at(&st, now);
            if give_up_at.is_some_and(|at| now >= at) {
                break false;
            }
            st = match give_up_at {
                None => self
                    .changed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    let (st, _) = self
                        .changed
                        .wait_timeout(st, at - now)
                        .unwrap_or_else(PoisonError::into_inner);
                    st
                }
            };
        };
        self.mirrors.watching.fetch_sub(1, Ordering::SeqCst);
        done
    }

    async fn wait_async(&self, done: impl Fn(&State) -> bool, mut limits: Limits) -> bool {
        let mut counted: Option<Counted<'_>> = None;
        // The timer of the current time limit, re-armed when the limit moves.
        let mut timer: Option<(Instant, Sleep)> = None;
        poll_fn(|cx| loop {
            let mut st = lock(&self.state);
            if counted.is_none() {
                // Counted before the first look, as in `wait_blocking`.
                self.mirrors.watching.fetch_add(1, Ordering::SeqCst);
                counted = Some(Counted(&self.mirrors.watching));
            }
            if done(&st) {
                return Poll::Ready(true);
            }
            let now = Instant::now();
            let give_up_at = limits.give_up_at(&st, now);
            if give_up_at.is_some_and(|at| now >= at) {
                return Poll::Ready(false);
            }
            if !st.watchers.iter().any(|w| w.will_wake(cx.waker())) {
                st.watchers.push(cx.waker().clone());
            }
            drop(st);
            let Some(at) = give_up_at else {
                return Poll::Pending;
            };
            if timer.as_ref().is_none_or(|(armed, _)| *armed != at) {
                timer = Some((at, crate::time::sleep_until(at)));
            }
            if let Some((_, sleep)) = &mut timer {
                if Pin::new(sleep).poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            // The limit passed: look once more, then give up.
        })
        .await
    }
}
