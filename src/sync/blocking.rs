//! The blocking side of every primitive: drive one future on the current thread, parking it
//! between polls.
//!
//! # Ownership rules
//!
//! Each call makes its own `Parker` in an `Arc`. The calling thread owns the future and polls it;
//! the `Waker` handed to the future is a clone of that `Arc` and may travel to any thread. A wake
//! only sets `notified` and unparks the thread; only the calling thread clears `notified`, and it
//! polls the future again after every clear.
//!
//! A waker may fire after its `wait` has returned (a clone was still stored somewhere). That sets
//! the flag of a parker nobody reads any more and unparks the thread once. A later `wait` on the
//! same thread has its own parker and flag, so the stray unpark only makes one of its `park`
//! calls return early; it finds its own flag clear and parks again. `thread::park` is documented
//! to return spuriously, so any other code on the thread that parks must loop the same way.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

/// Wakes one thread blocked in [`wait_deadline`].
struct Parker {
    thread: Thread,
    /// Set by a wake, cleared by the waiting thread just before it polls again.
    notified: AtomicBool,
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // ORDERING: Release pairs with the Acquire swap in `wait_deadline`, so what the waking
        // thread wrote before the wake is visible to the poll that follows it. If the flag was
        // already set, the earlier waker unparked (or the thread has not parked yet): no unpark.
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

/// Drives `f` to completion on the current thread, parking while it is pending.
pub(crate) fn wait<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match wait_deadline(&mut f, None) {
        Some(output) => output,
        None => unreachable!("wait_deadline without a deadline never times out"),
    }
}

/// Drives `f` on the current thread until it completes or `deadline` passes.
///
/// Returns `None` on timeout, leaving `f` pending (the caller may drop it, which cancels it, or
/// wait again). `f` is polled at least once, even with a deadline in the past; a wake that
/// arrives before the deadline is always followed by one more poll.
pub(crate) fn wait_deadline<F: Future + Unpin>(
    f: &mut F,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let parker = Arc::new(Parker {
        thread: thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&parker));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = Pin::new(&mut *f).poll(&mut cx) {
            return Some(output);
        }
        // A future that keeps waking itself must still time out.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        // ORDERING: Acquire pairs with the Release swap in `Parker::wake_by_ref`.
        while !parker.notified.swap(false, Ordering::Acquire) {
            match deadline {
                None => thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    thread::park_timeout(d - now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::Mutex;
    use std::time::Duration;

    /// A future that is pending until `fire` has been called through the waker it stored.
    fn pending_until_woken(
        slot: Arc<Mutex<(bool, Option<Waker>)>>,
        polls: &mut u32,
    ) -> impl Future<Output = ()> + Unpin + '_ {
        poll_fn(move |cx| {
            *polls += 1;
            let mut slot = slot.lock().unwrap();
            if slot.0 {
                return Poll::Ready(());
            }
            slot.1 = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Wakes the future above from another thread once it has stored its waker, and `delay`
    /// later (time for the waiter to park: that path is the one under test, but the outcome
    /// does not depend on reaching it). Waiting for the waker, not for a time, keeps a stalled
    /// waiter from finding its wake lost.
    fn fire_later(slot: Arc<Mutex<(bool, Option<Waker>)>>, delay: Duration) {
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(20);
            while slot.lock().unwrap().1.is_none() {
                assert!(Instant::now() < end, "the future was never polled");
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(delay);
            let waker = {
                let mut slot = slot.lock().unwrap();
                slot.0 = true;
                slot.1.take()
            };
            waker.expect("polled before firing").wake();
        });
    }

    #[test]
    fn wake_before_first_park_is_not_lost() {
        let mut polls = 0;
        let out = wait(poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                cx.waker().wake_by_ref(); // fires before wait parks
                Poll::Pending
            } else {
                Poll::Ready(7)
            }
        }));
        assert_eq!((out, polls), (7, 2));
    }

    #[test]
    fn stray_unpark_does_not_cause_an_extra_poll() {
        let slot = Arc::new(Mutex::new((false, None)));
        let mut polls = 0;
        thread::current().unpark(); // a token left over from unrelated code
        fire_later(Arc::clone(&slot), Duration::from_millis(20));
        wait(pending_until_woken(slot, &mut polls));
        assert_eq!(polls, 2);
    }

    #[test]
    fn stale_waker_from_an_earlier_wait_does_not_disturb_a_later_one() {
        let mut stale = None;
        wait(poll_fn(|cx| {
            if stale.is_none() {
                stale = Some(cx.waker().clone());
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        let stale = stale.unwrap();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            stale.wake();
        });
        let slot = Arc::new(Mutex::new((false, None)));
        let mut polls = 0;
        fire_later(Arc::clone(&slot), Duration::from_millis(30));
        wait(pending_until_woken(slot, &mut polls));
        assert_eq!(polls, 2);
    }

    #[test]
    fn deadline_passes_then_future_is_still_usable() {
        let slot = Arc::new(Mutex::new((false, None)));
        let mut polls = 0;
        let mut fut = pending_until_woken(Arc::clone(&slot), &mut polls);
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(wait_deadline(&mut fut, Some(soon)), None);
        fire_later(slot, Duration::from_millis(5));
        assert_eq!(wait_deadline(&mut fut, None), Some(()));
    }

    #[test]
    fn past_deadline_still_polls_once() {
        let past = Instant::now();
        assert_eq!(
            wait_deadline(&mut poll_fn(|_| Poll::Ready(1)), Some(past)),
            Some(1)
        );
    }

    #[test]
    fn self_waking_future_still_times_out() {
        let mut spin = poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let deadline = Instant::now() + Duration::from_millis(10);
        assert_eq!(wait_deadline(&mut spin, Some(deadline)), None);
    }
}
