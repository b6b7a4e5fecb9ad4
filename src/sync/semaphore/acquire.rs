//! The acquire futures and the guards of [`Semaphore`] (see the ownership rules of
//! [`semaphore`](super) for where a permit is at each step).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::super::waiters::Registration;
use super::{AcquireError, Semaphore, CLOSED_PANIC};

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// Dropping it cancels the acquire without leaking permits.
///
/// # Examples
///
/// ```
/// use aplex::sync::{AcquireFuture, Semaphore};
///
/// let sem = Semaphore::new(1);
/// let fut: AcquireFuture<'_> = sem.acquire();
/// assert_eq!(aplex::block_on(fut).permits(), 1);
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireFuture<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) permits: usize,
    pub(super) registration: Registration,
}

impl<'a> Future for AcquireFuture<'a> {
    type Output = SemaphoreGuard<'a>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuard<'a>> {
        let this = self.get_mut();
        this.sem
            .poll_acquire(this.permits, &mut this.registration, cx)
            .map(|granted| match granted {
                Ok(()) => SemaphoreGuard {
                    sem: this.sem,
                    permits: this.permits,
                },
                Err(AcquireError) => panic!("{CLOSED_PANIC}"),
            })
    }
}

impl Drop for AcquireFuture<'_> {
    fn drop(&mut self) {
        self.sem.cancel_acquire(self.permits, self.registration);
    }
}

/// The future of [`Semaphore::checked_acquire`] and [`Semaphore::checked_acquire_many`]: a
/// guard, or [`AcquireError`] once the semaphore is closed.
///
/// Dropping it cancels the acquire without leaking permits.
///
/// # Examples
///
/// ```
/// use aplex::sync::{CheckedAcquireFuture, Semaphore};
///
/// let sem = Semaphore::new(1);
/// let fut: CheckedAcquireFuture<'_> = sem.checked_acquire();
/// assert!(aplex::block_on(fut).is_ok());
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct CheckedAcquireFuture<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) permits: usize,
    pub(super) registration: Registration,
}

impl<'a> Future for CheckedAcquireFuture<'a> {
    type Output = Result<SemaphoreGuard<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.sem
            .poll_acquire(this.permits, &mut this.registration, cx)
            .map(|granted| {
                granted.map(|()| SemaphoreGuard {
                    sem: this.sem,
                    permits: this.permits,
                })
            })
    }
}

impl Drop for CheckedAcquireFuture<'_> {
    fn drop(&mut self) {
        self.sem.cancel_acquire(self.permits, self.registration);
    }
}

/// The future of [`Semaphore::acquire_arc`] and [`Semaphore::acquire_many_arc`].
///
/// Dropping it cancels the acquire without leaking permits.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use aplex::sync::{AcquireArcFuture, Semaphore};
///
/// let sem = Arc::new(Semaphore::new(1));
/// let fut: AcquireArcFuture = sem.acquire_arc();
/// assert_eq!(aplex::block_on(fut).permits(), 1);
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireArcFuture {
    pub(super) sem: Arc<Semaphore>,
    pub(super) permits: usize,
    pub(super) registration: Registration,
}

impl Future for AcquireArcFuture {
    type Output = SemaphoreGuardArc;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuardArc> {
        let this = self.get_mut();
        this.sem
            .poll_acquire(this.permits, &mut this.registration, cx)
            .map(|granted| match granted {
                Ok(()) => SemaphoreGuardArc {
                    sem: Arc::clone(&this.sem),
                    permits: this.permits,
                },
                Err(AcquireError) => panic!("{CLOSED_PANIC}"),
            })
    }
}

impl Drop for AcquireArcFuture {
    fn drop(&mut self) {
        self.sem.cancel_acquire(self.permits, self.registration);
    }
}

/// Permits taken from a [`Semaphore`]; they go back when the guard is dropped.
///
/// # Examples
///
/// ```
/// let sem = aplex::sync::Semaphore::new(2);
/// {
///     let _guard = sem.acquire_many_blocking(2);
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 2);
/// ```
#[derive(Debug)]
#[must_use = "the permits are released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    pub(super) sem: &'a Semaphore,
    pub(super) permits: usize,
}

impl SemaphoreGuard<'_> {
    /// How many permits this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(3);
    /// assert_eq!(sem.acquire_many_blocking(2).permits(), 2);
    /// ```
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Drops the guard without giving its permits back: they are gone from the semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = aplex::sync::Semaphore::new(2);
    /// sem.acquire_blocking().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}

/// Permits taken from a [`Semaphore`] in an [`Arc`]; `'static` and `Send`, so it can move into
/// a spawned task or thread. The permits go back when it is dropped.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use aplex::sync::Semaphore;
///
/// let sem = Arc::new(Semaphore::new(1));
/// let guard = sem.try_acquire_arc().unwrap();
/// let worker = std::thread::spawn(move || {
///     let _held = guard;
/// });
/// worker.join().unwrap();
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[derive(Debug)]
#[must_use = "the permits are released as soon as the guard is dropped"]
pub struct SemaphoreGuardArc {
    pub(super) sem: Arc<Semaphore>,
    pub(super) permits: usize,
}

impl SemaphoreGuardArc {
    /// How many permits this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(aplex::sync::Semaphore::new(3));
    /// assert_eq!(sem.try_acquire_many_arc(3).unwrap().permits(), 3);
    /// ```
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Drops the guard without giving its permits back: they are gone from the semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(aplex::sync::Semaphore::new(1));
    /// sem.try_acquire_arc().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphoreGuardArc {
    fn drop(&mut self) {
        self.sem.release(self.permits);
    }
}
