//! The system calls std does not wrap, declared by hand, each behind a safe function.
//!
//! This is the only file with `extern "C"` declarations. Every wrapper checks its inputs so that
//! callers stay in safe Rust; every `unsafe` block says why the call holds.

use std::io;
use std::os::raw::{c_int, c_short};
use std::os::unix::io::RawFd;
use std::time::Duration;

/// `nfds_t`: `unsigned long` on Linux and the BSDs we know of, `unsigned int` on Apple platforms.
#[cfg(not(target_vendor = "apple"))]
type NfdsT = std::os::raw::c_ulong;
#[cfg(target_vendor = "apple")]
type NfdsT = std::os::raw::c_uint;

/// One entry of the array `poll(2)` takes: the layout of C's `struct pollfd`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollFd {
    pub fd: c_int,
    pub events: c_short,
    pub revents: c_short,
}

/// There is data to read.
pub(crate) const POLLIN: c_short = 0x001;
/// Writing now will not block.
pub(crate) const POLLOUT: c_short = 0x004;
/// An error condition (output only).
pub(crate) const POLLERR: c_short = 0x008;
/// The peer hung up (output only).
pub(crate) const POLLHUP: c_short = 0x010;
/// The fd is not open (output only).
pub(crate) const POLLNVAL: c_short = 0x020;

extern "C" {
    fn poll(fds: *mut PollFd, nfds: NfdsT, timeout: c_int) -> c_int;
}

impl PollFd {
    /// An entry asking about `fd` for `events`.
    pub(crate) fn new(fd: RawFd, events: c_short) -> PollFd {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None` waits without limit).
///
/// The timeout is rounded *up* to whole milliseconds so that a timer is never woken early
/// (waking early would spin on a deadline that has not come yet). `EINTR` counts as a wake-up
/// with nothing ready: the caller re-checks its state anyway.
pub(crate) fn poll_fds(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms: c_int = match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(c_int::MAX as u128) as c_int
        }
    };
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `#[repr(C)]` pollfd structs, and
    // `nfds` is its exact length, so the kernel reads and writes only inside it.
    let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as NfdsT, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}
