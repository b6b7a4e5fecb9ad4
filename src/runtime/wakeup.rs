//! The reactor's wake-up signal: how any thread rouses the owner thread parked in the reactor.
//!
//! Normally it is a socket pair: the read end sits in slot 0 of the `poll(2)` set, and one
//! written byte makes `poll` return.
//!
//! Miri (the checker auditors run the unsafe code under) emulates neither `poll(2)` nor
//! `recv`/`send` on a socket pair, so under `cfg(miri)` the signal is a flag and a condvar: a
//! reactor that watches no fd parks on the condvar (with the timer deadline as its timeout)
//! instead of in `poll`. A reactor that does watch fds still calls `poll`, and Miri stops with
//! "unsupported operation": the fd tests are not run under Miri. Nothing else differs, so the
//! executor, tasks, timers and wakers Miri checks are the ones that ship.

#[cfg(miri)]
pub(crate) use self::condvar::Wakeup;
#[cfg(not(miri))]
pub(crate) use self::pipe::Wakeup;

#[cfg(not(miri))]
mod pipe {
    use std::io::{self, Read, Write};
    use std::os::unix::io::{AsRawFd, RawFd};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use crate::sys::{self, PollFd};

    /// A socket pair: `rx` in the poll set, `tx` written by `notify`.
    #[derive(Debug)]
    pub(crate) struct Wakeup {
        rx: UnixStream,
        tx: UnixStream,
    }

    impl Wakeup {
        pub(crate) fn new() -> io::Result<Wakeup> {
            let (rx, tx) = UnixStream::pair()?;
            rx.set_nonblocking(true)?;
            tx.set_nonblocking(true)?;
            Ok(Wakeup { rx, tx })
        }

        /// The fd to put in slot 0 of the poll set.
        pub(crate) fn fd(&self) -> RawFd {
            self.rx.as_raw_fd()
        }

        /// Makes the owner's current or next wait return. A full pipe already holds a pending
        /// wake-up, so `WouldBlock` is success.
        pub(crate) fn notify(&self) {
            let _ = (&self.tx).write(&[1]);
        }

        /// Waits in `poll(2)` on `fds` (slot 0 is this signal's fd).
        pub(crate) fn wait(&self, fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<()> {
            sys::poll_fds(fds, timeout).map(drop)
        }

        /// Consumes the pending wake-ups after `poll` reported slot 0 readable.
        pub(crate) fn clear(&self) {
            let mut buf = [0u8; 64];
            while let Ok(n) = (&self.rx).read(&mut buf) {
                if n < buf.len() {
                    break;
                }
            }
        }
    }
}

#[cfg(miri)]
mod condvar {
    use std::io;
    use std::os::unix::io::RawFd;
    use std::sync::{Condvar, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use crate::runtime::reactor::lock;
    use crate::sys::{self, PollFd};

    /// A flag set by `notify`, and the condvar the owner waits on for it.
    #[derive(Debug, Default)]
    pub(crate) struct Wakeup {
        notified: Mutex<bool>,
        condvar: Condvar,
    }

    impl Wakeup {
        pub(crate) fn new() -> io::Result<Wakeup> {
            Ok(Wakeup::default())
        }

        /// No fd: `poll(2)` skips a negative one.
        pub(crate) fn fd(&self) -> RawFd {
            -1
        }

        /// Makes the owner's current or next wait return.
        pub(crate) fn notify(&self) {
            *lock(&self.notified) = true;
            self.condvar.notify_one();
        }

        /// Parks on the condvar when slot 0 is the only entry; otherwise asks `poll(2)`, which
        /// Miri does not emulate (the fd tests are skipped under Miri).
        pub(crate) fn wait(&self, fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<()> {
            if fds.len() > 1 {
                return sys::poll_fds(fds, timeout).map(drop);
            }
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            let mut notified = lock(&self.notified);
            while !*notified {
                let Some(deadline) = deadline else {
                    notified = self
                        .condvar
                        .wait(notified)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                };
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                notified = self
                    .condvar
                    .wait_timeout(notified, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            *notified = false;
            Ok(())
        }

        /// Nothing to do: `wait` consumed the wake-up.
        pub(crate) fn clear(&self) {}
    }
}
