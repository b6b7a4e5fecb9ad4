//! The system calls std does not wrap, declared by hand, each behind a safe function.
//!
//! This is the only file with `extern "C"` declarations. Every wrapper checks its inputs so that
//! callers stay in safe Rust; every `unsafe` block says why the call holds.

use std::io;
use std::os::raw::{c_int, c_short};
use std::os::unix::io::RawFd;
use std::time::Duration;

/// `nfds_t`, as each libc declares it: `unsigned int` in Bionic (Android), on Apple platforms and
/// on the BSDs; `unsigned long` in glibc and musl (Linux), and on any other Unix.
#[cfg(not(any(
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd",
    target_os = "netbsd",
)))]
type NfdsT = std::os::raw::c_ulong;
#[cfg(any(
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd",
    target_os = "netbsd",
))]
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
#[cfg(any(feature = "io", feature = "process"))]
pub(crate) const POLLOUT: c_short = 0x004;
/// An error condition (output only).
#[cfg(feature = "io")]
pub(crate) const POLLERR: c_short = 0x008;
/// The peer hung up (output only).
#[cfg(feature = "io")]
pub(crate) const POLLHUP: c_short = 0x010;
/// The fd is not open (output only).
#[cfg(feature = "io")]
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

/// How many CPUs this thread's affinity mask allows (`sched_getaffinity`), `None` if the call
/// fails. The mask holds 1024 CPUs, as glibc's `cpu_set_t` does.
#[cfg(target_os = "linux")]
pub(crate) fn affinity_count() -> Option<usize> {
    extern "C" {
        fn sched_getaffinity(pid: c_int, size: usize, mask: *mut u64) -> c_int;
    }
    let mut mask = [0u64; 16];
    // SAFETY: `mask` is valid for writes of `size_of_val(&mask)` bytes for the whole call, the
    // size passed; pid 0 names the calling thread.
    let r = unsafe { sched_getaffinity(0, std::mem::size_of_val(&mask), mask.as_mut_ptr()) };
    (r == 0).then(|| mask.iter().map(|w| w.count_ones() as usize).sum())
}

/// How many CPUs are online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
#[cfg(target_os = "linux")]
pub(crate) fn online_cpus() -> usize {
    extern "C" {
        fn sysconf(name: c_int) -> std::os::raw::c_long;
    }
    /// Linux's value, in glibc and musl alike.
    const SC_NPROCESSORS_ONLN: c_int = 84;
    // SAFETY: `sysconf` takes an integer and touches no memory of ours.
    let n = unsafe { sysconf(SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Sockets and fd flags for `aplex::io`: `O_NONBLOCK` on any fd, and a TCP connect that does not
/// block (std's `TcpStream::connect` always does).
///
/// A module of its own, so that its names cannot clash with the rest of `sys`. The constants
/// below differ between kernels (and, on Linux, between a few architectures): the Linux ones
/// are checked against the kernel's headers, the BSD and macOS ones come from their headers but
/// are only compile-checked here. On a Unix not listed here everything still compiles:
/// `set_nonblocking` reports `Unsupported`, and `tcp_connect` falls back to std's blocking
/// connect.
#[cfg(any(feature = "io", feature = "process"))]
#[cfg_attr(not(feature = "io"), allow(dead_code))] // the process pool needs only `set_nonblocking`
pub(crate) mod net {
    use std::io;
    use std::net::{SocketAddr, TcpStream};
    use std::os::unix::io::RawFd;

    /// The values of `<fcntl.h>`, `<sys/socket.h>` and `<errno.h>` this module uses.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    mod consts {
        use std::os::raw::c_int;

        pub(super) const F_GETFL: c_int = 3;
        pub(super) const F_SETFL: c_int = 4;
        pub(super) const AF_INET: c_int = 2;
        pub(super) const AF_INET6: c_int = 10;

        #[cfg(not(any(
            target_arch = "mips",
            target_arch = "mips64",
            target_arch = "mips32r6",
            target_arch = "mips64r6",
            target_arch = "sparc",
            target_arch = "sparc64",
        )))]
        mod arch {
            use std::os::raw::c_int;
            pub(crate) const O_NONBLOCK: c_int = 0o4000;
            pub(crate) const SOCK_STREAM: c_int = 1;
            pub(crate) const SOCK_CLOEXEC: c_int = 0o2_000_000;
            pub(crate) const EINPROGRESS: i32 = 115;
        }
        #[cfg(any(
            target_arch = "mips",
            target_arch = "mips64",
            target_arch = "mips32r6",
            target_arch = "mips64r6",
        ))]
        mod arch {
            use std::os::raw::c_int;
            pub(crate) const O_NONBLOCK: c_int = 0x80;
            pub(crate) const SOCK_STREAM: c_int = 2;
            pub(crate) const SOCK_CLOEXEC: c_int = 0o2_000_000;
            pub(crate) const EINPROGRESS: i32 = 150;
        }
        #[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
        mod arch {
            use std::os::raw::c_int;
            pub(crate) const O_NONBLOCK: c_int = 0x4000;
            pub(crate) const SOCK_STREAM: c_int = 1;
            pub(crate) const SOCK_CLOEXEC: c_int = 0x400000;
            pub(crate) const EINPROGRESS: i32 = 36;
        }
        pub(super) use arch::{EINPROGRESS, O_NONBLOCK, SOCK_STREAM};
        /// Linux sets non-blocking and close-on-exec atomically in `socket(2)`
        /// (`SOCK_NONBLOCK` has the value of `O_NONBLOCK`).
        pub(super) const SOCKET_FLAGS: c_int = arch::SOCK_CLOEXEC | O_NONBLOCK;
    }

    /// The values of `<fcntl.h>`, `<sys/socket.h>` and `<errno.h>` this module uses.
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_os = "netbsd",
    ))]
    mod consts {
        use std::os::raw::c_int;

        pub(super) const F_GETFL: c_int = 3;
        pub(super) const F_SETFL: c_int = 4;
        pub(super) const F_SETFD: c_int = 2;
        pub(super) const FD_CLOEXEC: c_int = 1;
        pub(super) const O_NONBLOCK: c_int = 0x4;
        pub(super) const AF_INET: c_int = 2;
        #[cfg(target_vendor = "apple")]
        pub(super) const AF_INET6: c_int = 30;
        #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
        pub(super) const AF_INET6: c_int = 28;
        #[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
        pub(super) const AF_INET6: c_int = 24;
        pub(super) const SOCK_STREAM: c_int = 1;
        pub(super) const EINPROGRESS: i32 = 36;
        /// The BSDs set close-on-exec and non-blocking atomically in `socket(2)`
        /// (`SOCK_CLOEXEC | SOCK_NONBLOCK`), so a `fork` in another thread cannot inherit the
        /// socket; macOS has neither flag: there both are set with `fcntl` right after
        /// `socket(2)` (0 here says so).
        #[cfg(not(target_vendor = "apple"))]
        pub(super) const SOCKET_FLAGS: c_int = SOCK_CLOEXEC | SOCK_NONBLOCK;
        #[cfg(target_vendor = "apple")]
        pub(super) const SOCKET_FLAGS: c_int = 0;
        #[cfg(any(target_os = "freebsd", target_os = "dragonfly", target_os = "netbsd"))]
        const SOCK_CLOEXEC: c_int = 0x1000_0000;
        #[cfg(any(target_os = "freebsd", target_os = "dragonfly", target_os = "netbsd"))]
        const SOCK_NONBLOCK: c_int = 0x2000_0000;
        #[cfg(target_os = "openbsd")]
        const SOCK_CLOEXEC: c_int = 0x8000;
        #[cfg(target_os = "openbsd")]
        const SOCK_NONBLOCK: c_int = 0x4000;
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_os = "netbsd",
    ))]
    mod native {
        use super::consts::*;
        use super::*;
        use std::os::raw::{c_int, c_void};
        use std::os::unix::io::FromRawFd;

        /// `socklen_t`: an unsigned 32-bit integer on every platform of this module.
        type SockLen = u32;

        extern "C" {
            fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
            fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
            fn connect(fd: c_int, addr: *const c_void, len: SockLen) -> c_int;
        }

        /// C's `struct sockaddr_in`. `family` is `sa_family_t` (a native-endian `u16`) on
        /// Linux, and `sin_len` then `sin_family` (one byte each) on the BSDs; see [`family`].
        #[repr(C, align(4))]
        struct SockAddrIn {
            family: [u8; 2],
            port: [u8; 2],
            addr: [u8; 4],
            zero: [u8; 8],
        }

        /// C's `struct sockaddr_in6`, with `family` as in [`SockAddrIn`].
        #[repr(C)]
        struct SockAddrIn6 {
            family: [u8; 2],
            port: [u8; 2],
            flowinfo: u32,
            addr: [u8; 16],
            scope_id: u32,
        }

        /// The first two bytes of a `sockaddr` of `len` bytes for address family `af`.
        fn family(af: c_int, len: usize) -> [u8; 2] {
            if cfg!(any(target_os = "linux", target_os = "android")) {
                (af as u16).to_ne_bytes()
            } else {
                [len as u8, af as u8]
            }
        }

        pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
            // SAFETY: `F_GETFL` takes no third argument and only reads the flags of `fd`; a
            // closed or invalid fd makes it fail with `EBADF`, which is reported.
            let flags = unsafe { fcntl(fd, F_GETFL) };
            if flags < 0 {
                return Err(io::Error::last_os_error());
            }
            if flags & O_NONBLOCK != 0 {
                return Ok(());
            }
            // SAFETY: `F_SETFL` takes one `int` argument, passed as a `c_int`; it changes only
            // the status flags of the open file behind `fd`.
            if unsafe { fcntl(fd, F_SETFL, flags | O_NONBLOCK) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        pub(crate) fn tcp_connect(addr: &SocketAddr) -> io::Result<(TcpStream, bool)> {
            let domain = match addr {
                SocketAddr::V4(_) => AF_INET,
                SocketAddr::V6(_) => AF_INET6,
            };
            // SAFETY: `socket` takes three integers and touches no memory of ours.
            let fd = unsafe { socket(domain, SOCK_STREAM | SOCKET_FLAGS, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `socket` just returned `fd`: it is open, it is a TCP socket, and nothing
            // else owns it. The `TcpStream` takes it over and closes it on every path below.
            let stream = unsafe { TcpStream::from_raw_fd(fd) };
            if SOCKET_FLAGS == 0 {
                set_cloexec(fd)?;
                set_nonblocking(fd)?;
            }
            let rc = match addr {
                SocketAddr::V4(a) => {
                    let len = std::mem::size_of::<SockAddrIn>();
                    let raw = SockAddrIn {
                        family: family(AF_INET, len),
                        port: a.port().to_be_bytes(),
                        addr: a.ip().octets(),
                        zero: [0; 8],
                    };
                    // SAFETY: `raw` is a live `sockaddr_in` of exactly `len` bytes, read by the
                    // kernel only during the call; `fd` is the socket opened above.
                    unsafe { connect(fd, (&raw as *const SockAddrIn).cast(), len as SockLen) }
                }
                SocketAddr::V6(a) => {
                    let len = std::mem::size_of::<SockAddrIn6>();
                    let raw = SockAddrIn6 {
                        family: family(AF_INET6, len),
                        port: a.port().to_be_bytes(),
                        flowinfo: a.flowinfo(), // as std passes it: not byte-swapped
                        addr: a.ip().octets(),
                        scope_id: a.scope_id(),
                    };
                    // SAFETY: `raw` is a live `sockaddr_in6` of exactly `len` bytes, read by the
                    // kernel only during the call; `fd` is the socket opened above.
                    unsafe { connect(fd, (&raw as *const SockAddrIn6).cast(), len as SockLen) }
                }
            };
            if rc == 0 {
                return Ok((stream, false));
            }
            let err = io::Error::last_os_error();
            // EINTR: a non-blocking connect goes on in the background, as with EINPROGRESS.
            if err.raw_os_error() == Some(EINPROGRESS) || err.kind() == io::ErrorKind::Interrupted {
                Ok((stream, true))
            } else {
                Err(err)
            }
        }

        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        fn set_cloexec(fd: RawFd) -> io::Result<()> {
            // SAFETY: `F_SETFD` takes one `int` argument, passed as a `c_int`; it changes only
            // the descriptor flags of `fd`.
            if unsafe { fcntl(fd, F_SETFD, FD_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        #[cfg(any(target_os = "linux", target_os = "android"))]
        fn set_cloexec(_fd: RawFd) -> io::Result<()> {
            Ok(()) // done by `SOCK_CLOEXEC`
        }
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_os = "netbsd",
    )))]
    mod native {
        use super::*;

        pub(crate) fn set_nonblocking(_fd: RawFd) -> io::Result<()> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "aplex does not know this platform's O_NONBLOCK",
            ))
        }

        pub(crate) fn tcp_connect(addr: &SocketAddr) -> io::Result<(TcpStream, bool)> {
            let stream = TcpStream::connect(addr)?; // blocks: no native connect here
            stream.set_nonblocking(true)?;
            Ok((stream, false))
        }
    }

    /// Puts `fd` in non-blocking mode (`O_NONBLOCK`), if it is not already.
    ///
    /// The flag belongs to the open file, so it is shared with every duplicate of `fd`.
    pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
        native::set_nonblocking(fd)
    }

    /// Opens a non-blocking, close-on-exec TCP socket and starts connecting it to `addr`.
    ///
    /// Returns the socket and whether the connection is still in progress: if so, it is
    /// established (or failed) when the socket turns writable, and `take_error` tells which.
    /// An immediate failure (`ECONNREFUSED`, `ENETUNREACH`…) is returned as the error, with the
    /// socket closed.
    pub(crate) fn tcp_connect(addr: &SocketAddr) -> io::Result<(TcpStream, bool)> {
        native::tcp_connect(addr)
    }
}

/// Process plumbing for the process pool: moving the worker's protocol to private fds, asking
/// to die with the parent, exiting at once, and killing a worker's process group.
///
/// A module of its own, so that its names cannot clash with the rest of `sys`.
#[cfg(feature = "process")]
pub(crate) mod process {
    use std::io;
    use std::os::raw::c_int;
    use std::os::unix::io::RawFd;

    /// `fcntl`'s command to set the descriptor flags, and the close-on-exec flag: the same
    /// values on Linux, the BSDs and macOS.
    const F_SETFD: c_int = 2;
    const FD_CLOEXEC: c_int = 1;

    /// `SIGKILL`: 9 on every Unix.
    const SIGKILL: c_int = 9;

    extern "C" {
        fn dup(fd: c_int) -> c_int;
        fn dup2(old: c_int, new: c_int) -> c_int;
        fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        fn getppid() -> c_int;
        fn kill(pid: c_int, sig: c_int) -> c_int;
        fn _exit(code: c_int) -> !;
        fn gethostname(name: *mut std::os::raw::c_char, len: usize) -> c_int;
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios"
        ))]
        fn waitid(idtype: c_int, id: u32, info: *mut SigInfo, options: c_int) -> c_int;
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    extern "C" {
        fn prctl(option: c_int, arg2: std::os::raw::c_ulong, ...) -> c_int;
    }

    /// A new descriptor for the open file behind `fd`, marked close-on-exec so that programs
    /// a work starts do not inherit it, owned by the returned `File`.
    pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<std::fs::File> {
        use std::os::unix::io::FromRawFd;
        // SAFETY: `dup` takes an integer and touches no memory of ours; an invalid `fd` makes
        // it fail with `EBADF`, which is reported.
        let new = unsafe { dup(fd) };
        if new < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` just returned `new`: it is open and nothing else owns it. The `File`
        // takes it over, so it is closed on every path below.
        let file = unsafe { std::fs::File::from_raw_fd(new) };
        // SAFETY: `F_SETFD` takes one `int` argument, passed as a `c_int`; it changes only the
        // descriptor flags of `new`, which `dup` just returned.
        if unsafe { fcntl(new, F_SETFD, FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(file)
    }

    /// Makes `new` a descriptor for the open file behind `old` (closing what `new` was).
    pub(crate) fn redirect(old: RawFd, new: RawFd) -> io::Result<()> {
        // SAFETY: `dup2` takes two integers and touches no memory of ours; an invalid fd makes
        // it fail with `EBADF`, which is reported.
        if unsafe { dup2(old, new) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// This machine's host name, as `gethostname` gives it (`None` if it fails or is empty).
    pub(crate) fn host_name() -> Option<String> {
        // 256 bytes hold any host name (POSIX's HOST_NAME_MAX is at most 255).
        let mut buf = [0u8; 256];
        // SAFETY: `gethostname` writes at most `len` bytes into `buf`, which is valid for
        // writes of `buf.len()` bytes and outlives the call; it reads nothing of ours.
        if unsafe { gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return None;
        }
        // A name that fills the buffer may come without its terminating NUL: cut at the first.
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Some(String::from_utf8_lossy(&buf[..len]).into_owned()).filter(|h| !h.is_empty())
    }

    /// True if the child `pid` has ended, without reaping it (`waitid` with `WNOWAIT`): it
    /// stays a zombie, so its pid and process group id stay reserved. `None` where this cannot
    /// be told (an unknown platform, or an error).
    pub(crate) fn has_exited(pid: u32) -> Option<bool> {
        // Linux's and Apple's values; other Unixes number these differently (FreeBSD's
        // `P_PID` is 0 and its `WEXITED` 16), so they answer `None` rather than guess.
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios"
        )))]
        {
            let _ = pid;
            None
        }
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios"
        ))]
        {
            const P_PID: c_int = 1;
            const WNOHANG: c_int = 1;
            const WEXITED: c_int = 4;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            const WNOWAIT: c_int = 0x0100_0000;
            #[cfg(any(target_os = "macos", target_os = "ios"))]
            const WNOWAIT: c_int = 0x20;
            let mut info = SigInfo([0; 32]);
            // SAFETY: `info` is a zeroed, 8-aligned buffer of 128 bytes, as large as any
            // `siginfo_t`, valid for writes for the whole call; the other arguments are
            // integers. With `WNOWAIT` the child is not reaped, so no `Child` loses its status.
            let r = unsafe { waitid(P_PID, pid, &mut info, WEXITED | WNOHANG | WNOWAIT) };
            if r != 0 {
                return None;
            }
            // `si_signo` (SIGCHLD) is set when the child is waitable, left 0 when it is not.
            Some(info.0[0] != 0)
        }
    }

    /// Room for a `siginfo_t`: at most 128 bytes, 8-aligned, everywhere; its first field is
    /// `si_signo`.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    ))]
    #[repr(C, align(8))]
    struct SigInfo([c_int; 32]);

    /// The process id of this process's parent.
    pub(crate) fn parent_pid() -> u32 {
        // SAFETY: `getppid` takes nothing, cannot fail, and touches no memory.
        unsafe { getppid() as u32 }
    }

    /// Asks the kernel to SIGKILL this process when the thread that started it exits (Linux's
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`). Returns false where there is no such call.
    pub(crate) fn die_with_parent() -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            const PR_SET_PDEATHSIG: c_int = 1;
            const SIGKILL: std::os::raw::c_ulong = 9;
            // SAFETY: `PR_SET_PDEATHSIG` takes one integer argument (the signal) and touches
            // no memory of ours.
            unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            false
        }
    }

    /// Sends `SIGKILL` to every process of the process group `pgid`.
    ///
    /// The pool starts each worker as the leader of a group of its own (its pid is the group's
    /// id) and calls this only while that leader is not yet reaped, so the id cannot have been
    /// reused by an unrelated group.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an id that does not name one group (0, 1, or over `i32::MAX`: `kill`
    /// would read those as "my group" or "every process"); the OS error otherwise (`ESRCH`
    /// once the group is empty).
    pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
        let Ok(id) = c_int::try_from(pgid) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        if id <= 1 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: `kill` takes two integers and touches no memory of ours; a negative id
        // names exactly the group `id` (checked above to be neither 0 nor 1, whose negations
        // mean something else).
        if unsafe { kill(-id, SIGKILL) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ends this process now with `code`, running no exit handlers and flushing nothing:
    /// for a worker whose parent told it to stop, or is gone, while a work may hold locks.
    pub(crate) fn exit_now(code: i32) -> ! {
        // SAFETY: `_exit` takes an integer and does not return; skipping exit handlers and
        // destructors is memory-safe (the kernel reclaims the process).
        unsafe { _exit(code) }
    }
}
