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

use std::io;
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::timers::{TimerId, Timers};
use super::wakeup::Wakeup;
use crate::sys::{PollFd, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

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
    sources: Mutex<Sources>,
    /// Reused `pollfd` array and the source each entry belongs to (owner thread only).
    scratch: Mutex<(Vec<PollFd>, Vec<Arc<Source>>)>,
    wakeup: Wakeup,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("timers", &lock(&self.timers).len())
            .field("sources", &lock(&self.sources).live)
            .finish()
    }
}

/// Registered fd sources, in a slab so that a source knows its own key.
#[derive(Default)]
struct Sources {
    slots: Vec<Option<Arc<Source>>>,
    free: Vec<usize>,
    live: usize,
}

impl Reactor {
    /// A reactor with a fresh wake pipe.
    pub(crate) fn new() -> io::Result<Reactor> {
        let wakeup = Wakeup::new()?;
        Ok(Reactor {
            epoch: Instant::now(),
            timers: Mutex::new(Timers::default()),
            sources: Mutex::new(Sources::default()),
            scratch: Mutex::new((Vec::new(), Vec::new())),
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

    /// How many fd sources are registered.
    pub(crate) fn source_count(&self) -> usize {
        lock(&self.sources).live
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
        due.into_iter().for_each(Waker::wake);
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

        let mut scratch = lock(&self.scratch);
        let (fds, owners) = &mut *scratch;
        fds.clear();
        owners.clear();
        fds.push(PollFd::new(self.wakeup.fd(), POLLIN));
        for source in lock(&self.sources).slots.iter().flatten() {
            let events = source.interest();
            if events != 0 {
                fds.push(PollFd::new(source.fd, events));
                owners.push(source.clone());
            }
        }
        if fds.len() == 1 && timeout == Some(Duration::ZERO) {
            // Nothing to ask the kernel: skip the syscall.
        } else {
            self.wakeup.wait(fds, timeout)?;
        }

        if fds[0].revents != 0 {
            self.wakeup.clear();
        }
        for (pfd, source) in fds[1..].iter().zip(owners.iter()) {
            if pfd.revents != 0 {
                source.set_ready(pfd.revents, &mut ready);
            }
        }
        owners.clear();
        drop(scratch);

        self.take_due_timers(Instant::now(), &mut ready);
        ready.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Registers `fd` for readiness events. The fd must stay open until the source is removed.
    pub(crate) fn register(self: &Arc<Self>, fd: RawFd) -> Arc<Source> {
        let mut sources = lock(&self.sources);
        let key = match sources.free.pop() {
            Some(key) => key,
            None => {
                sources.slots.push(None);
                sources.slots.len() - 1
            }
        };
        let source = Arc::new(Source {
            fd,
            key,
            reactor: Arc::downgrade(self),
            dirs: Mutex::new([Direction::default(), Direction::default()]),
        });
        sources.slots[key] = Some(source.clone());
        sources.live += 1;
        source
    }

    /// Forgets a source; its pending wakers are woken so that nothing waits on a dead fd.
    pub(crate) fn deregister(&self, source: &Source) {
        let removed = {
            let mut sources = lock(&self.sources);
            match sources.slots.get_mut(source.key) {
                Some(slot @ Some(_)) => {
                    let s = slot.take();
                    sources.free.push(source.key);
                    sources.live -= 1;
                    s
                }
                _ => None,
            }
        };
        drop(removed);
        let mut wakers = Vec::new();
        for dir in lock(&source.dirs).iter_mut() {
            wakers.extend(dir.waker.take());
        }
        wakers.into_iter().for_each(Waker::wake);
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
pub(crate) fn current_or_fallback() -> Arc<Reactor> {
    super::executor::current_reactor().unwrap_or_else(|| fallback_reactor().clone())
}

fn min_duration(a: Option<Duration>, b: Duration) -> Duration {
    match a {
        Some(a) => a.min(b),
        None => b,
    }
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Wait until the fd is readable.
    Read = 0,
    /// Wait until the fd is writable.
    Write = 1,
}

/// One direction of a source: who waits, and whether the reactor saw it ready since.
#[derive(Default)]
struct Direction {
    waker: Option<Waker>,
    /// Bumped each time the reactor reports this direction ready.
    ticks: u64,
}

/// An fd registered with a reactor.
pub(crate) struct Source {
    fd: RawFd,
    key: usize,
    reactor: std::sync::Weak<Reactor>,
    dirs: Mutex<[Direction; 2]>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("fd", &self.fd).finish()
    }
}

impl Source {
    fn interest(&self) -> i16 {
        let dirs = lock(&self.dirs);
        let mut events = 0;
        if dirs[Interest::Read as usize].waker.is_some() {
            events |= POLLIN;
        }
        if dirs[Interest::Write as usize].waker.is_some() {
            events |= POLLOUT;
        }
        events
    }

    fn set_ready(&self, revents: i16, wakers: &mut Vec<Waker>) {
        let failed = revents & (POLLERR | POLLHUP | POLLNVAL) != 0;
        let mut dirs = lock(&self.dirs);
        for (dir, mask) in [(Interest::Read, POLLIN), (Interest::Write, POLLOUT)] {
            if failed || revents & mask != 0 {
                let d = &mut dirs[dir as usize];
                if let Some(w) = d.waker.take() {
                    d.ticks = d.ticks.wrapping_add(1);
                    wakers.push(w);
                }
            }
        }
    }

    /// The readiness count of one direction, to pass to [`Source::poll_ready`] later.
    pub(crate) fn ticks(&self, dir: Interest) -> u64 {
        lock(&self.dirs)[dir as usize].ticks
    }

    /// Ready once the reactor reported `dir` ready after `since` (a value of [`Source::ticks`]);
    /// otherwise registers the waker and asks the reactor to watch the fd.
    pub(crate) fn poll_ready(&self, dir: Interest, since: u64, cx: &mut Context<'_>) -> Poll<()> {
        let Some(reactor) = self.reactor.upgrade() else {
            return Poll::Ready(()); // the reactor is gone; let the caller's syscall report it
        };
        let previous = {
            let mut dirs = lock(&self.dirs);
            let d = &mut dirs[dir as usize];
            if d.ticks != since {
                return Poll::Ready(());
            }
            match &d.waker {
                Some(w) if w.will_wake(cx.waker()) => return Poll::Pending,
                _ => d.waker.replace(cx.waker().clone()),
            }
        };
        // A newly watched fd must be added to the owner's poll set: rouse it if it is parked.
        // One waiter per direction: a second one replaces the first (as with `AtomicWaker`).
        if previous.is_none() && !super::executor::is_current_reactor(&reactor) {
            reactor.notify();
        }
        Poll::Pending
    }

    /// Removes this source from its reactor.
    pub(crate) fn deregister(&self) {
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.deregister(self);
        }
    }
}
