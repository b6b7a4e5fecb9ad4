//! The reactor: timers and fd readiness for one runtime thread.
//!
//! # Ownership rules
//!
//! - A `Reactor` is shared through an `Arc`: wakers, `Sleep` futures and `Async` sources may sit on
//!   any thread, so every field is behind a `Mutex` or is itself thread-safe.
//! - Only the owner thread calls [`Reactor::turn`], which is where the thread parks: in `poll(2)`
//!   with the nearest timer deadline as the timeout and the read end of a wake pipe in slot 0
//!   (under Miri, which has no `poll(2)`, on a condvar: see [`super::wakeup`]).
//! - Any thread may call [`Reactor::notify`]; a written byte makes the owner's `poll` return.
//! - No lock is held while a waker runs: `turn` collects wakers first, unlocks, then wakes.
//!
//! Fd sources (the [`sources`] module) serve only `aplex::io`: without that feature the poll
//! set is the wake-up signal alone, and none of the source code is built.

#[cfg(feature = "io")]
mod sources;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::timers::{TimerId, Timers};
use super::wakeup::Wakeup;
#[cfg(feature = "io")]
pub(crate) use sources::{Interest, Source};

/// Locks `m`, recovering the data if a panicking thread poisoned it: every critical section in
/// the runtime leaves its data consistent before it can panic.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Timers, fd sources and the wake pipe of one runtime thread.
pub(crate) struct Reactor {
    /// Timer deadlines are kept as nanoseconds since this instant.
    epoch: Instant,
    timers: Mutex<Timers>,
    #[cfg(feature = "io")]
    sources: sources::Sources,
    wakeup: Wakeup,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Reactor");
        d.field("timers", &lock(&self.timers).len());
        #[cfg(feature = "io")]
        d.field("sources", &self.source_count());
        d.finish()
    }
}

impl Reactor {
    /// A reactor with a fresh wake pipe.
    pub(crate) fn new() -> io::Result<Reactor> {
        let wakeup = Wakeup::new()?;
        Ok(Reactor {
            epoch: Instant::now(),
            timers: Mutex::new(Timers::default()),
            #[cfg(feature = "io")]
            sources: sources::Sources::default(),
            wakeup,
        })
    }

    /// Rouses the owner thread from `poll`, or makes its next `poll` return at once.
    ///
    /// Callers merge repeated notifications themselves (the executor writes only when its owner
    /// said it is going to sleep), so this signals unconditionally.
    pub(crate) fn notify(&self) {
        self.wakeup.notify();
    }

    fn nanos(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.epoch).as_nanos();
        nanos.min(u64::MAX as u128) as u64
    }

    /// Registers a timer that wakes `waker` at `deadline`; returns its id.
    pub(crate) fn insert_timer(&self, deadline: Instant, waker: Waker) -> TimerId {
        let nanos = self.nanos(deadline);
        lock(&self.timers).insert(nanos, waker)
    }

    /// Replaces the waker of a pending timer. Returns false if the timer already fired.
    pub(crate) fn update_timer(&self, id: TimerId, waker: &Waker) -> bool {
        lock(&self.timers).update(id, waker)
    }

    /// Removes a timer (fired or not).
    pub(crate) fn remove_timer(&self, id: TimerId) {
        let removed = lock(&self.timers).remove(id);
        drop(removed); // the waker is dropped outside the lock
    }

    /// How many timers are pending (for tests and debugging).
    pub(crate) fn timer_count(&self) -> usize {
        lock(&self.timers).len()
    }

    /// Takes the wakers of every timer due at `now`; returns the next deadline still pending.
    fn take_due_timers(&self, now: Instant, due: &mut Vec<Waker>) -> Option<Instant> {
        let now = self.nanos(now);
        let next = lock(&self.timers).pop_due(now, due)?;
        Some(self.epoch + Duration::from_nanos(next))
    }

    /// Wakes every due timer without blocking. Returns true if a waker was woken.
    pub(crate) fn fire_timers(&self) -> bool {
        let mut due = Vec::new();
        self.take_due_timers(Instant::now(), &mut due);
        let any = !due.is_empty();
        wake_contained(due);
        any
    }

    /// Waits for I/O readiness, a due timer, a notification, or `timeout` (whichever comes
    /// first; `None` waits for the others only), then wakes whatever became ready.
    ///
    /// Owner thread only.
    pub(crate) fn turn(&self, timeout: Option<Duration>) -> io::Result<()> {
        let mut ready = Vec::new();
        let now = Instant::now();
        let next = self.take_due_timers(now, &mut ready);
        let mut timeout = match next {
            Some(deadline) => Some(min_duration(timeout, deadline - now)),
            None => timeout,
        };
        if !ready.is_empty() {
            timeout = Some(Duration::ZERO);
        }

        if self.wait(timeout, &mut ready)? {
            self.wakeup.clear();
        }

        self.take_due_timers(Instant::now(), &mut ready);
        wake_contained(ready);
        Ok(())
    }
}

/// Waiting without fd sources: the poll set is the wake-up signal alone.
#[cfg(not(feature = "io"))]
impl Reactor {
    /// Waits for a notification or `timeout`. True if the wake-up signal fired.
    fn wait(&self, timeout: Option<Duration>, _ready: &mut Vec<Waker>) -> io::Result<bool> {
        if timeout == Some(Duration::ZERO) {
            return Ok(false); // nothing to ask the kernel: skip the syscall
        }
        let mut fds = [crate::sys::PollFd::new(
            self.wakeup.fd(),
            crate::sys::POLLIN,
        )];
        self.wakeup.wait(&mut fds, timeout)?;
        Ok(fds[0].revents != 0)
    }
}

/// Wakes every waker, each inside an unwind guard. A waker is user code (a foreign
/// executor's): one whose `wake` panics must neither skip the wakers after it nor unwind out
/// of a reactor turn, which would end `block_on`, a pool worker, or the global timer thread
/// (every later sleep outside an executor would then wait forever).
pub(crate) fn wake_contained(wakers: Vec<Waker>) {
    for waker in wakers {
        super::task::contain(move || waker.wake());
    }
}

/// The reactor of the global fallback thread, started on first use: it serves timers and fds
/// polled on threads that run no aplex executor (inside another runtime, say).
pub(crate) fn fallback_reactor() -> &'static Arc<Reactor> {
    static FALLBACK: OnceLock<Arc<Reactor>> = OnceLock::new();
    FALLBACK.get_or_init(|| {
        let reactor =
            Arc::new(Reactor::new().unwrap_or_else(|e| {
                panic!("aplex could not create the global fallback reactor: {e}")
            }));
        let r = reactor.clone();
        std::thread::Builder::new()
            .name("aplex-reactor".into())
            .spawn(move || loop {
                if r.turn(None).is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap_or_else(|e| panic!("aplex could not start its fallback reactor thread: {e}"));
        reactor
    })
}

/// The reactor of the executor on this thread, or else the global fallback one.
#[cfg(feature = "io")]
pub(crate) fn current_or_fallback() -> Arc<Reactor> {
    super::executor::current_reactor().unwrap_or_else(|| fallback_reactor().clone())
}

fn min_duration(a: Option<Duration>, b: Duration) -> Duration {
    match a {
        Some(a) => a.min(b),
        None => b,
    }
}
