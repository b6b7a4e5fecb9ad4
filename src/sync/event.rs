//! A settable flag that tasks and threads can wait on.
//!
//! # Ownership rules
//!
//! One `Mutex<State>` guards the flag and the waiter list. `set` raises the flag and, in the same
//! critical section, pops every waiter: a waiter registered before a `set` is released by it even
//! if `clear` runs before the waiter is polled again (its entry is gone, and a future whose entry
//! is gone completes). A waiter registered after a `clear` waits for the next `set`. Wakers are
//! woken after the lock is released.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::blocking;
use super::waiters::{lock, wake_all, Registration, Waiters};

struct State {
    /// Whether the event is set.
    set: bool,
    /// Waits registered while the flag was clear.
    waiters: Waiters<()>,
}

/// A flag that starts clear; [`set`](Event::set) wakes everyone waiting for it.
///
/// `Event` is not `Clone`: share it by reference (scoped threads, borrowed futures) or in an
/// [`Arc`](std::sync::Arc).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use aplex::sync::Event;
///
/// let ready = Arc::new(Event::new());
/// let waiter = {
///     let ready = Arc::clone(&ready);
///     std::thread::spawn(move || ready.wait_blocking())
/// };
/// ready.set();
/// waiter.join().unwrap();
/// assert!(ready.is_set());
/// ```
pub struct Event {
    state: Mutex<State>,
}

impl Event {
    /// Creates a clear event.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!aplex::sync::Event::new().is_set());
    /// ```
    pub const fn new() -> Self {
        Event {
            state: Mutex::new(State {
                set: false,
                waiters: Waiters::new(),
            }),
        }
    }

    /// Sets the flag and wakes every waiter, async and blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = aplex::sync::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// aplex::block_on(event.wait()); // completes at once
    /// ```
    pub fn set(&self) {
        let mut state = lock(&self.state);
        state.set = true;
        let released = state.waiters.take_all();
        drop(state);
        wake_all(released.into_iter().map(|entry| entry.waker));
    }

    /// Clears the flag: later waits wait for the next [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = aplex::sync::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        lock(&self.state).set = false;
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = aplex::sync::Event::new();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        lock(&self.state).set
    }

    /// Waits until the flag is set (at once if it already is).
    ///
    /// A wait that was pending when [`set`](Event::set) ran completes even if the flag is
    /// cleared again before the future is next polled. Dropping the future unregisters it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Event;
    ///
    /// let event = Arc::new(Event::new());
    /// let setter = Arc::clone(&event);
    /// std::thread::spawn(move || setter.set());
    /// aplex::block_on(event.wait());
    /// assert!(event.is_set());
    /// ```
    pub fn wait(&self) -> WaitFuture<'_> {
        WaitFuture {
            event: self,
            registration: Registration::Idle,
        }
    }

    /// Blocks the current thread until the flag is set.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = aplex::sync::Event::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     event.wait_blocking();
    /// });
    /// assert!(event.is_set());
    /// ```
    pub fn wait_blocking(&self) {
        blocking::wait(self.wait());
    }

    /// Blocks the current thread until the flag is set or `timeout` passes; returns whether it
    /// was set.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = aplex::sync::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(5)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large to represent means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        blocking::wait_deadline(&mut self.wait(), deadline).is_some()
    }
}

impl Default for Event {
    /// A clear event.
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Event")
            .field("set", &state.set)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// The future of [`Event::wait`].
///
/// # Examples
///
/// ```
/// use aplex::sync::{Event, WaitFuture};
///
/// let event = Event::new();
/// event.set();
/// let fut: WaitFuture<'_> = event.wait();
/// aplex::block_on(fut);
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct WaitFuture<'a> {
    event: &'a Event,
    registration: Registration,
}

impl Future for WaitFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = lock(&this.event.state);
        match this.registration {
            Registration::Idle if state.set => {}
            Registration::Idle => {
                let id = state.waiters.push(cx.waker().clone(), ());
                this.registration = Registration::Waiting(id);
                return Poll::Pending;
            }
            Registration::Waiting(id) => {
                if let Some(entry) = state.waiters.get_mut(id) {
                    let stale = entry.refresh(cx.waker());
                    drop(state);
                    drop(stale);
                    return Poll::Pending;
                }
                // Released by a `set`.
            }
            Registration::Done => {}
        }
        this.registration = Registration::Done;
        Poll::Ready(())
    }
}

impl Drop for WaitFuture<'_> {
    fn drop(&mut self) {
        if let Registration::Waiting(id) = self.registration {
            let entry = lock(&self.event.state).waiters.remove(id);
            drop(entry);
        }
    }
}
