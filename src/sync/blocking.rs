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
