//! Fd sources: the fds `aplex::io` registers with a reactor, and the part of the reactor's wait
//! that asks `poll(2)` about them. Built only with the `io` feature.
//!
//! # Ownership rules
//!
//! - A [`Source`] is shared by its `Async` owner (any thread) and the reactor's slab; its wakers
//!   sit behind its own lock.
//! - Only the owner thread builds the poll set (in [`Reactor::turn`]), from the sources that have
//!   a waiter; a source that gains its first waiter from another thread rouses the owner so
//!   that the next poll set includes it.

use std::io;
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{lock, Reactor};
use crate::sys::{PollFd, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

/// The fd sources of one reactor.
#[derive(Default)]
pub(super) struct Sources {
    slab: Mutex<Slab>,
    /// Reused `pollfd` array and the source each entry belongs to (owner thread only).
    scratch: Mutex<(Vec<PollFd>, Vec<Arc<Source>>)>,
}

/// Registered fd sources, in a slab so that a source knows its own key.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Arc<Source>>>,
    free: Vec<usize>,
    live: usize,
}

impl Reactor {
    /// How many fd sources are registered.
    pub(crate) fn source_count(&self) -> usize {
        lock(&self.sources.slab).live
    }

    /// Waits in `poll(2)` on the wake-up signal and every source that has a waiter, until one
    /// is ready or `timeout` passes; pushes the wakers of the ready sources onto `ready`.
    /// True if the wake-up signal fired.
    pub(super) fn wait(
        &self,
        timeout: Option<Duration>,
        ready: &mut Vec<Waker>,
    ) -> io::Result<bool> {
        let mut scratch = lock(&self.sources.scratch);
        let (fds, owners) = &mut *scratch;
        fds.clear();
        owners.clear();
        fds.push(PollFd::new(self.wakeup.fd(), POLLIN));
        for source in lock(&self.sources.slab).slots.iter().flatten() {
            let events = source.interest();
            if events != 0 {
                fds.push(PollFd::new(source.fd, events));
                owners.push(source.clone());
            }
        }
        if fds.len() == 1 && timeout == Some(Duration::ZERO) {
            return Ok(false); // nothing to ask the kernel: skip the syscall
        }
        self.wakeup.wait(fds, timeout)?;
        for (pfd, source) in fds[1..].iter().zip(owners.iter()) {
            if pfd.revents != 0 {
                source.set_ready(pfd.revents, ready);
            }
        }
        owners.clear();
        Ok(fds[0].revents != 0)
    }

    /// Registers `fd` for readiness events. The fd must stay open until the source is removed.
    pub(crate) fn register(self: &Arc<Self>, fd: RawFd) -> Arc<Source> {
        let mut sources = lock(&self.sources.slab);
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
            let mut sources = lock(&self.sources.slab);
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
        if removed.is_some() {
            // This reactor's thread may be asleep in `poll` with the fd in its set, and a
            // sleeping `poll` pins the open file: closed by its owner now, the socket would
            // stay open (no end of file for the peer) until that thread next woke. Rouse it,
            // so it lets go of the file at once.
            self.notify();
        }
        drop(removed);
        let mut wakers = Vec::new();
        for dir in lock(&source.dirs).iter_mut() {
            wakers.extend(dir.waker.take());
        }
        super::wake_contained(wakers);
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
        if previous.is_none() && !crate::runtime::executor::is_current_reactor(&reactor) {
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
