//! A counting semaphore with fair (FIFO), all-or-nothing multi-permit acquisition.
//!
//! # Ownership rules
//!
//! One `Mutex<State>` guards everything: `permits` (free permits) and `waiters` (pending acquires,
//! oldest first, each entry holding how many permits it wants). A permit is always in exactly
//! one place: free in `permits`, held by a guard, or in transit from a grant to an acquire future.
//!
//! - A grant happens under the lock, only from the head of `waiters`: while the head wants no
//!   more than `permits`, its count is subtracted and its entry popped (then its waker woken after
//!   the lock is released). An acquire takes all its permits in one grant, or none.
//! - An acquire future whose entry is gone was granted: it owns its permits, and hands them to a
//!   guard when polled, or back to the semaphore (`release`) when dropped first.
//! - While anyone waits, `try_acquire*` and first polls do not take permits around the queue, so
//!   a waiter wanting many is not starved by a stream wanting few.
//! - Guards give their permits back with `release`, which grants to waiters and wakes them after
//!   the lock is released.
//! - `closed` is set once, by `close`; from then on nothing is granted and no permit is taken.
//!   `close` wakes every waiter but leaves its entry in place: a woken future finding its entry
//!   still there (and the semaphore closed) removes it and fails, while one whose entry is gone
//!   was granted before the close and owns its permits as usual.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::blocking;
use super::waiters::{lock, wake_all, Registration, Waiters};

mod acquire;

pub use super::error::AcquireError;
pub use acquire::{
    AcquireArcFuture, AcquireFuture, CheckedAcquireFuture, SemaphoreGuard, SemaphoreGuardArc,
};

/// The panic of the acquires that cannot report an error, on a closed semaphore.
const CLOSED_PANIC: &str =
    "Semaphore: acquire on a closed semaphore (use checked_acquire to get an AcquireError)";

struct State {
    /// Free permits.
    permits: usize,
    /// Pending acquires with the number of permits each wants.
    waiters: Waiters<usize>,
    /// Closed: acquires fail, nothing more is granted.
    closed: bool,
}

impl State {
    /// Takes `k` permits now if nobody is queued ahead and they are free (`k == 0` always fits).
    fn try_take(&mut self, k: usize) -> bool {
        if self.closed {
            return false;
        }
        let fits = k == 0 || (self.waiters.is_empty() && self.permits >= k);
        if fits {
            self.permits -= k;
        }
        fits
    }

    /// Adds `n` new free permits ([`Semaphore::add_permits`]).
    fn add(&mut self, n: usize) {
        self.permits = self
            .permits
            .checked_add(n)
            .expect("Semaphore: permit count overflowed usize");
    }

    /// Takes back `n` permits that were handed out (a guard, a granted acquire). Saturates
    /// instead of panicking: `add_permits` may have filled the free count to `usize::MAX`
    /// while they were out, and a guard's drop must not panic (during an unwind it would
    /// abort). A count at `usize::MAX` is unlimited for any caller.
    fn give_back(&mut self, n: usize) {
        self.permits = self.permits.saturating_add(n);
    }

    /// Grants permits to waiters from the head of the queue while they fit; returns the wakers
    /// to wake once the lock is released.
    #[must_use = "wake the granted waiters after releasing the lock"]
    fn grant(&mut self) -> Vec<Waker> {
        let mut woken = Vec::new();
        if self.closed {
            return woken;
        }
        while let Some(entry) = self.waiters.pop_front_if(|&want| want <= self.permits) {
            self.permits -= entry.data;
            woken.push(entry.waker);
        }
        woken
    }
}

/// A counting semaphore, usable from async code and from plain threads.
///
/// Acquires are served first come, first served; [`acquire_many`](Semaphore::acquire_many)
/// takes all its permits at once or waits without holding any. Share it by reference, or in an
/// [`Arc`] to use the `*_arc` methods whose guards are `'static`.
///
/// # Examples
///
/// ```
/// use aplex::sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.try_acquire().unwrap();
/// let b = sem.try_acquire().unwrap();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// # drop(b);
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

impl Semaphore {
    /// Creates a semaphore with `permits` free permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Self {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: Waiters::new(),
                closed: false,
            }),
        }
    }

    /// The number of free permits right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(4);
    /// let _guard = sem.try_acquire_many(3).unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        lock(&self.state).permits
    }

    /// Adds `n` permits, waking the waiters they satisfy.
    ///
    /// # Panics
    ///
    /// Panics if the number of free permits would overflow `usize`. (Permits that guards give
    /// back never panic: the free count saturates at `usize::MAX`.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(0));
    /// let waiter = {
    ///     let sem = Arc::clone(&sem);
    ///     std::thread::spawn(move || sem.acquire_blocking().forget())
    /// };
    /// sem.add_permits(1);
    /// waiter.join().unwrap();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn add_permits(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = lock(&self.state);
        state.add(n);
        let woken = state.grant();
        drop(state);
        wake_all(woken);
    }

    /// Removes up to `n` free permits for good (permits held by guards are not touched);
    /// returns how many it removed.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(5);
    /// let held = sem.try_acquire_many(2).unwrap();
    /// assert_eq!(sem.forget_permits(4), 3); // only 3 were free
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        let mut state = lock(&self.state);
        let removed = n.min(state.permits);
        state.permits -= removed;
        removed
    }

    /// Closes the semaphore: every pending acquire and every later one fails — with
    /// [`AcquireError`] from [`checked_acquire`](Semaphore::checked_acquire) and
    /// [`checked_acquire_many`](Semaphore::checked_acquire_many), with a panic from the forms
    /// whose output is a guard (`acquire`, `acquire_many`, the `_arc` and `_blocking` forms),
    /// and with `None` from the `try_` forms. Guards already handed out keep their permits and
    /// give them back as usual. Idempotent.
    ///
    /// Closing is how an owner tells waiting tasks to stop (a shutdown), without a second
    /// signal beside the semaphore; code that may meet a closed semaphore uses the `checked_`
    /// forms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::{AcquireError, Semaphore};
    ///
    /// let sem = Arc::new(Semaphore::new(0));
    /// let waiter = {
    ///     let sem = Arc::clone(&sem);
    ///     std::thread::spawn(move || aplex::block_on(sem.checked_acquire()).map(drop))
    /// };
    /// sem.close();
    /// assert_eq!(waiter.join().unwrap(), Err(AcquireError));
    /// assert!(sem.is_closed());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        let wakers = state.waiters.wakers();
        drop(state);
        wake_all(wakers);
    }

    /// Whether [`close`](Semaphore::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(1);
    /// assert!(!sem.is_closed());
    /// sem.close();
    /// assert!(sem.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Waits for one permit, or fails once the semaphore is closed.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed, or closes while this waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::{AcquireError, Semaphore};
    ///
    /// let sem = Semaphore::new(1);
    /// aplex::block_on(async {
    ///     assert_eq!(sem.checked_acquire().await.map(|g| g.permits()), Ok(1));
    ///     sem.close();
    ///     assert_eq!(sem.checked_acquire().await.map(|g| g.permits()), Err(AcquireError));
    /// });
    /// ```
    pub fn checked_acquire(&self) -> CheckedAcquireFuture<'_> {
        self.checked_acquire_many(1)
    }

    /// Waits for `k` permits taken all at once (as [`acquire_many`](Semaphore::acquire_many)
    /// does), or fails once the semaphore is closed.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed, or closes while this waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(3);
    /// let guard = aplex::block_on(sem.checked_acquire_many(3)).unwrap();
    /// assert_eq!(guard.permits(), 3);
    /// ```
    pub fn checked_acquire_many(&self, k: usize) -> CheckedAcquireFuture<'_> {
        CheckedAcquireFuture {
            sem: self,
            permits: k,
            registration: Registration::Idle,
        }
    }

    /// Takes back `n` permits handed out earlier and grants them to waiters.
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = lock(&self.state);
        state.give_back(n);
        let woken = state.grant();
        drop(state);
        wake_all(woken);
    }

    /// Polls an acquire of `k` permits; `Ready(Ok)` means the caller now owns them.
    fn poll_acquire(
        &self,
        k: usize,
        registration: &mut Registration,
        cx: &Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        match *registration {
            Registration::Idle => {
                let mut state = lock(&self.state);
                if state.closed {
                    *registration = Registration::Done;
                    return Poll::Ready(Err(AcquireError));
                }
                if state.try_take(k) {
                    *registration = Registration::Done;
                    return Poll::Ready(Ok(()));
                }
                let id = state.waiters.push(cx.waker().clone(), k);
                *registration = Registration::Waiting(id);
                Poll::Pending
            }
            Registration::Waiting(id) => {
                let mut state = lock(&self.state);
                let closed = state.closed;
                match state.waiters.get_mut(id) {
                    None => {
                        // Granted: `grant` popped our entry and took our permits.
                        *registration = Registration::Done;
                        Poll::Ready(Ok(()))
                    }
                    Some(_) if closed => {
                        let entry = state.waiters.remove(id);
                        drop(state);
                        drop(entry);
                        *registration = Registration::Done;
                        Poll::Ready(Err(AcquireError))
                    }
                    Some(entry) => {
                        let stale = entry.refresh(cx.waker());
                        drop(state);
                        drop(stale);
                        Poll::Pending
                    }
                }
            }
            Registration::Done => panic!("Semaphore acquire future polled after completion"),
        }
    }

    /// Cancels a pending acquire of `k` permits (its future was dropped).
    fn cancel_acquire(&self, k: usize, registration: Registration) {
        let Registration::Waiting(id) = registration else {
            return;
        };
        let mut state = lock(&self.state);
        let removed = state.waiters.remove(id);
        if removed.is_none() {
            // Granted but never polled: the permits are ours to give back.
            state.give_back(k);
        }
        // Either way the head may have changed, so later waiters may fit now.
        let woken = state.grant();
        drop(state);
        drop(removed);
        wake_all(woken);
    }

    /// Waits for one permit.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(1);
    /// aplex::block_on(async {
    ///     let guard = sem.acquire().await;
    ///     assert_eq!(sem.available_permits(), 0);
    ///     drop(guard);
    /// });
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> AcquireFuture<'_> {
        self.acquire_many(1)
    }

    /// Waits for `k` permits, taken all at once.
    ///
    /// Waiters are served in FIFO order: while this one is at the head of the queue, later
    /// acquires wait behind it even if they want fewer permits than are free. Asking for more
    /// permits than currently exist is not an error: the acquire waits until
    /// [`add_permits`](Semaphore::add_permits) makes enough (possibly forever), and blocks the
    /// queue behind it meanwhile. `k == 0` completes at once.
    ///
    /// Dropping the future cancels the acquire; if it had already been granted its permits, they
    /// go back to the semaphore (and on to the next waiter).
    ///
    /// # Panics
    ///
    /// The future panics if the semaphore is [closed](Semaphore::close) (before or while it
    /// waits); [`checked_acquire_many`](Semaphore::checked_acquire_many) returns an error
    /// instead. The same holds for `acquire`, the `_arc` and the `_blocking` forms.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(4);
    /// aplex::block_on(async {
    ///     let three = sem.acquire_many(3).await;
    ///     assert_eq!(three.permits(), 3);
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// assert_eq!(sem.available_permits(), 4);
    /// ```
    pub fn acquire_many(&self, k: usize) -> AcquireFuture<'_> {
        AcquireFuture {
            sem: self,
            permits: k,
            registration: Registration::Idle,
        }
    }

    /// Takes one permit if one is free and nobody is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(1);
    /// let guard = sem.try_acquire();
    /// assert!(guard.is_some());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `k` permits if they are free and nobody is waiting (all or none).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert_eq!(sem.try_acquire_many(2).map(|g| g.permits()), Some(2));
    /// ```
    pub fn try_acquire_many(&self, k: usize) -> Option<SemaphoreGuard<'_>> {
        let taken = lock(&self.state).try_take(k);
        // Build the guard only once the permits are ours: a guard gives permits back on drop.
        taken.then(|| SemaphoreGuard {
            sem: self,
            permits: k,
        })
    }

    /// Blocks the current thread until a permit is free.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(1);
    /// let guard = sem.acquire_blocking();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(guard);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_blocking(&self) -> SemaphoreGuard<'_> {
        blocking::wait(self.acquire())
    }

    /// Blocks the current thread until `k` permits can be taken at once (see
    /// [`acquire_many`](Semaphore::acquire_many)).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread: do not call it from async code running on an executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(5);
    /// let guard = sem.acquire_many_blocking(5);
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(guard);
    /// assert_eq!(sem.available_permits(), 5);
    /// ```
    pub fn acquire_many_blocking(&self, k: usize) -> SemaphoreGuard<'_> {
        blocking::wait(self.acquire_many(k))
    }

    /// Waits for one permit, with a guard that owns an `Arc` of the semaphore (`'static`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let guard = aplex::block_on(sem.acquire_arc());
    /// std::thread::spawn(move || drop(guard)).join().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_arc(self: &Arc<Self>) -> AcquireArcFuture {
        self.acquire_many_arc(1)
    }

    /// Waits for `k` permits taken at once, with a `'static` guard (see
    /// [`acquire_many`](Semaphore::acquire_many)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(3));
    /// let guard = aplex::block_on(sem.acquire_many_arc(2));
    /// assert_eq!((guard.permits(), sem.available_permits()), (2, 1));
    /// ```
    pub fn acquire_many_arc(self: &Arc<Self>, k: usize) -> AcquireArcFuture {
        AcquireArcFuture {
            sem: Arc::clone(self),
            permits: k,
            registration: Registration::Idle,
        }
    }

    /// Takes one permit if one is free and nobody is waiting, with a `'static` guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let guard = sem.try_acquire_arc().unwrap();
    /// assert!(sem.try_acquire_arc().is_none());
    /// drop(guard);
    /// assert!(sem.try_acquire_arc().is_some());
    /// ```
    pub fn try_acquire_arc(self: &Arc<Self>) -> Option<SemaphoreGuardArc> {
        self.try_acquire_many_arc(1)
    }

    /// Takes `k` permits if they are free and nobody is waiting, with a `'static` guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aplex::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(2));
    /// assert!(sem.try_acquire_many_arc(2).is_some());
    /// ```
    pub fn try_acquire_many_arc(self: &Arc<Self>, k: usize) -> Option<SemaphoreGuardArc> {
        let taken = lock(&self.state).try_take(k);
        taken.then(|| SemaphoreGuardArc {
            sem: Arc::clone(self),
            permits: k,
        })
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("waiters", &state.waiters.len())
            .field("closed", &state.closed)
            .finish()
    }
}
