//! Async I/O over the reactor: [`Async`] for any fd, and the sockets built on it —
//! [`TcpListener`], [`TcpStream`], [`UnixListener`], [`UnixStream`].
//!
//! ```
//! use aplex::io::{TcpListener, TcpStream};
//!
//! aplex::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = aplex::spawn_local(async move {
//!         let (mut conn, _) = listener.accept().await?;
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf).await?;
//!         conn.write_all(&buf).await?; // echo
//!         Ok::<(), std::io::Error>(())
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut back = [0; 5];
//!     client.read_exact(&mut back).await?;
//!     assert_eq!(&back, b"hello");
//!     server.await
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How an operation waits
//!
//! Every fd is non-blocking. An operation is tried at once; if the kernel says `WouldBlock`, the
//! task waits until the reactor reports the fd ready in that direction, then tries again. The
//! reactor counts readiness reports per direction ("ticks"), and the count is read *before* the
//! attempt, so a report that lands between a failed attempt and the waker's registration is not
//! lost. The reactor is level-triggered (`poll(2)`): an fd that is already ready is reported on
//! its next turn.
//!
//! # Which reactor serves an object
//!
//! An I/O object registers with the reactor of the thread that creates it: the executor's inside
//! [`block_on`](crate::block_on) or a pool worker, otherwise a global fallback reactor thread (so
//! objects made outside aplex work under any executor). Used where that reactor does not run —
//! on another thread, under another executor, after its `block_on` returned or its thread
//! ended — an object moves its registration to the fallback reactor the first time it has to
//! wait there, and stays on it: moved objects keep working, at the price of one cross-thread
//! wake per readiness report.
//!
//! # Ownership rules
//!
//! - An [`Async<T>`] owns its `T` and its reactor registration. Dropping it deregisters first
//!   (waking any waiter), then drops `T`, which closes the fd: the reactor never watches an fd
//!   number that has been closed and maybe reused.
//! - The registration's source changes at most once, from its home reactor to the fallback one:
//!   the new source is put in place first (a `OnceLock`, so racing movers make one), then the
//!   home one is deregistered (which wakes its waiters). A waiter registers with the source it
//!   read, then checks that it is still the current one: either the deregistration woke it, or
//!   it sees the move and retries on the new source. Nothing waits on a source that will never
//!   report.
//! - Each direction has **one waiter**: a second task waiting to read from the same object
//!   replaces the first, which then waits for nothing. The stream types make that impossible
//!   by taking `&mut self` to read or write; to read in one task and write in another, split a
//!   stream with `try_clone` (each clone has its own registration).

#![forbid(unsafe_code)]

mod tcp;
mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use unix::{UnixListener, UnixStream};

use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use crate::runtime::executor::with_current;
use crate::runtime::reactor::{current_or_fallback, fallback_reactor, Interest, Reactor, Source};
use crate::sys;

/// An fd-owning I/O object in non-blocking mode, registered with a reactor
/// (smol's `Async`).
///
/// `T` is anything that owns an fd: a std socket, a pipe end, a `File` on a FIFO… Build the
/// operation you need from a non-blocking call of `T` with [`read_with`](Async::read_with) or
/// [`write_with`](Async::write_with), which retry it whenever it would block.
///
/// Dropping an `Async` removes it from its reactor, then drops `T` (closing the fd).
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use aplex::io::Async;
///
/// aplex::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let (a, b) = (Async::new(a)?, Async::new(b)?);
///     b.write_with(|mut s| s.write(b"ping")).await?;
///     let mut buf = [0; 8];
///     let n = a.read_with(|mut s| s.read(&mut buf)).await?;
///     assert_eq!(&buf[..n], b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Async<T> {
    // Field order matters: fields drop in declaration order, so the registration is removed
    // before `io` closes the fd.
    source: Registration,
    io: T,
}

/// A source registered with a reactor, removed on drop; moved to the fallback reactor when it
/// has to wait where its reactor does not run (see the module's ownership rules).
struct Registration {
    fd: RawFd,
    /// The source made by `Async::new`, on the reactor of the thread that made it.
    home: Arc<Source>,
    /// That reactor: compared by address only (the `Weak` keeps the address from being reused).
    home_reactor: Weak<Reactor>,
    /// The source on the fallback reactor, once the registration has moved there.
    moved: OnceLock<Arc<Source>>,
}

impl Registration {
    fn new(fd: RawFd) -> Registration {
        let reactor = current_or_fallback();
        Registration {
            fd,
            home: reactor.register(fd),
            home_reactor: Arc::downgrade(&reactor),
            moved: OnceLock::new(),
        }
    }

    /// The source waited on now.
    fn current(&self) -> &Arc<Source> {
        self.moved.get().unwrap_or(&self.home)
    }

    /// The source to wait on from this thread: the current one if this thread's executor or
    /// the always-running fallback reactor serves it; else the registration moves, for good,
    /// to the fallback reactor (not to this thread's executor: two threads using one object
    /// would move it back and forth forever).
    fn served(&self) -> &Arc<Source> {
        if let Some(moved) = self.moved.get() {
            return moved;
        }
        let home = self.home_reactor.as_ptr();
        let here = with_current(|local| std::ptr::eq(Arc::as_ptr(&local.shared.reactor), home));
        if here == Some(true) {
            return &self.home;
        }
        let fallback = fallback_reactor();
        if std::ptr::eq(Arc::as_ptr(fallback), home) {
            return &self.home;
        }
        let mut mover = false;
        let moved = self.moved.get_or_init(|| {
            mover = true;
            fallback.register(self.fd)
        });
        if mover {
            // After the new source is in place: a waiter the deregistration misses sees the move.
            self.home.deregister();
        }
        moved
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Each source is deregistered once: the home one by the move, if there was one.
        match self.moved.get() {
            Some(moved) => moved.deregister(),
            None => self.home.deregister(),
        }
    }
}

impl<T: AsRawFd> Async<T> {
    /// Puts `io`'s fd in non-blocking mode and registers it with this thread's reactor (see
    /// [the module docs](self#which-reactor-serves-an-object)).
    ///
    /// The non-blocking flag belongs to the open file, so duplicates of the fd (from `dup` or
    /// `try_clone`) become non-blocking too.
    ///
    /// # Errors
    ///
    /// The error of `fcntl(2)` if the flag cannot be set (a closed fd, say).
    ///
    /// ```
    /// use aplex::io::Async;
    /// let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// let mut buf = [0; 8];
    /// // Non-blocking now: nothing to read is an error, not a hang.
    /// let err = socket.get_ref().recv(&mut buf).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(io: T) -> io::Result<Async<T>> {
        let fd = io.as_raw_fd();
        sys::net::set_nonblocking(fd)?;
        Ok(Async {
            source: Registration::new(fd),
            io,
        })
    }
}

impl<T> Async<T> {
    /// The inner I/O object.
    ///
    /// ```
    /// use aplex::io::Async;
    /// let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// assert!(socket.get_ref().local_addr()?.port() != 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The inner I/O object, mutably.
    ///
    /// Do not replace it with an object of another fd (with `std::mem::swap`, say): the reactor
    /// would go on watching the old fd number. Nothing unsafe happens, but waits go wrong.
    ///
    /// ```
    /// use aplex::io::Async;
    /// let mut socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// socket.get_mut().set_ttl(9)?;
    /// assert_eq!(socket.get_ref().ttl()?, 9);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Removes the object from its reactor and gives it back.
    ///
    /// The fd stays in non-blocking mode; call the type's own `set_nonblocking(false)` to go
    /// back to blocking calls.
    ///
    /// # Errors
    ///
    /// None today (deregistering cannot fail with `poll(2)`); the `Result` leaves room for
    /// reactors where it can.
    ///
    /// ```
    /// use aplex::io::Async;
    /// let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// let socket: std::net::UdpSocket = socket.into_inner()?;
    /// socket.set_nonblocking(false)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> io::Result<T> {
        let Async { source, io } = self;
        drop(source); // deregisters
        Ok(io)
    }

    /// Waits until the reactor reports the fd readable (or hung up, or failed: then the next
    /// read tells which).
    ///
    /// The wait always goes through the reactor, even if the fd is readable already (it then
    /// completes on the reactor's next turn). Only one task may wait per direction: see
    /// [the module docs](self#ownership-rules).
    ///
    /// # Errors
    ///
    /// None today; the error of a failed fd shows at the next operation.
    ///
    /// ```
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let addr = socket.get_ref().local_addr()?;
    ///     std::net::UdpSocket::bind("127.0.0.1:0")?.send_to(b"hi", addr)?;
    ///     socket.readable().await?;
    ///     let mut buf = [0; 2];
    ///     assert_eq!(socket.get_ref().recv(&mut buf)?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::Read).await;
        Ok(())
    }

    /// Waits until the reactor reports the fd writable (or hung up, or failed).
    ///
    /// As with [`readable`](Async::readable), the wait always goes through the reactor, and only
    /// one task may wait per direction.
    ///
    /// # Errors
    ///
    /// None today; the error of a failed fd shows at the next operation.
    ///
    /// ```
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    ///     socket.writable().await?; // a fresh socket has room at once
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::Write).await;
        Ok(())
    }

    /// Runs the non-blocking read `op` until it does not return `WouldBlock`, waiting for
    /// readability before each retry; `Interrupted` is retried at once. Returns what `op`
    /// returned last.
    ///
    /// `op` must be non-blocking and must report "not now" as `WouldBlock` (std's I/O on a
    /// non-blocking fd does).
    ///
    /// # Errors
    ///
    /// Whatever error `op` returns, other than `WouldBlock` and `Interrupted`.
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let socket = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let addr = socket.get_ref().local_addr()?;
    ///     UdpSocket::bind("127.0.0.1:0")?.send_to(b"datagram", addr)?;
    ///     let mut buf = [0; 16];
    ///     let (n, _from) = socket.read_with(|s| s.recv_from(&mut buf)).await?;
    ///     assert_eq!(&buf[..n], b"datagram");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        until_done(&self.source, Interest::Read, || op(&self.io)).await
    }

    /// Like [`read_with`](Async::read_with), with mutable access to the object.
    ///
    /// # Errors
    ///
    /// Whatever error `op` returns, other than `WouldBlock` and `Interrupted`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let (mut tx, rx) = std::os::unix::net::UnixStream::pair()?;
    ///     let mut rx = Async::new(rx)?;
    ///     tx.write_all(b"abc")?;
    ///     let mut buf = [0; 3];
    ///     rx.read_with_mut(|s| s.read_exact(&mut buf)).await?;
    ///     assert_eq!(&buf, b"abc");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let Async { source, io } = self;
        until_done(source, Interest::Read, || op(io)).await
    }

    /// Runs the non-blocking write `op` until it does not return `WouldBlock`, waiting for
    /// writability before each retry; `Interrupted` is retried at once. Returns what `op`
    /// returned last.
    ///
    /// # Errors
    ///
    /// Whatever error `op` returns, other than `WouldBlock` and `Interrupted`.
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let receiver = UdpSocket::bind("127.0.0.1:0")?;
    ///     let socket = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let to = receiver.local_addr()?;
    ///     let n = socket.write_with(|s| s.send_to(b"hey", to)).await?;
    ///     assert_eq!(n, 3);
    ///     let mut buf = [0; 3];
    ///     assert_eq!(receiver.recv(&mut buf)?, 3);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        until_done(&self.source, Interest::Write, || op(&self.io)).await
    }

    /// Like [`write_with`](Async::write_with), with mutable access to the object.
    ///
    /// # Errors
    ///
    /// Whatever error `op` returns, other than `WouldBlock` and `Interrupted`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use aplex::io::Async;
    /// aplex::block_on(async {
    ///     let (tx, mut rx) = std::os::unix::net::UnixStream::pair()?;
    ///     let mut tx = Async::new(tx)?;
    ///     let n = tx.write_with_mut(|s| s.write(b"xyz")).await?;
    ///     assert_eq!(n, 3);
    ///     let mut buf = [0; 3];
    ///     rx.read_exact(&mut buf)?;
    ///     assert_eq!(&buf, b"xyz");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let Async { source, io } = self;
        until_done(source, Interest::Write, || op(io)).await
    }

    /// Waits for the next readiness report of `dir` after now.
    fn ready(&self, dir: Interest) -> Ready<'_> {
        let source = self.source.served();
        Ready {
            registration: &self.source,
            since: source.ticks(dir),
            source,
            dir,
        }
    }
}

/// The stream operations shared by [`TcpStream`] and [`UnixStream`].
impl<T> Async<T>
where
    for<'a> &'a T: Read + Write,
{
    pub(crate) async fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|mut io| io.read(buf)).await
    }

    pub(crate) async fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut io| io.write(buf)).await
    }

    pub(crate) async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_some(buf).await? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended before the buffer was filled",
                    ))
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_some(buf).await? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the stream accepted no more bytes",
                    ))
                }
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    pub(crate) async fn read_to_end(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        // Each read appends inside the closure, so `buf` holds exactly the bytes read so far at
        // every await point: dropping this future loses nothing and leaves no padding behind.
        while self.read_with(|io| append_some(io, buf)).await? != 0 {}
        Ok(buf.len() - start)
    }
}

/// Reads once from `io` onto the end of `buf`, growing it as needed; returns the count read.
fn append_some(mut io: impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    const CHUNK: usize = 64 * 1024;
    let len = buf.len();
    if buf.capacity() - len < 4096 {
        buf.reserve(len.clamp(4096, CHUNK));
    }
    let room = (buf.capacity() - len).min(CHUNK);
    buf.resize(len + room, 0);
    let result = io.read(&mut buf[len..]);
    buf.truncate(len + *result.as_ref().unwrap_or(&0));
    result
}

impl<T: AsRawFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async")
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

/// Runs `op` until it does not return `WouldBlock`, waiting for `dir` before each retry.
async fn until_done<R>(
    registration: &Registration,
    dir: Interest,
    mut op: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    // Read the count before each attempt: a report between the attempt and the wait counts.
    let mut source = registration.current();
    let mut since = source.ticks(dir);
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let served = registration.served();
                if Arc::ptr_eq(served, source) {
                    Ready {
                        registration,
                        source,
                        dir,
                        since,
                    }
                    .await;
                }
                // Else it just moved: try again, counting on the new source.
                source = served;
                since = source.ticks(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Completes once the reactor reported `dir` ready after the count `since`, or once the
/// registration moved away from `source` (which then reports nothing more).
struct Ready<'a> {
    registration: &'a Registration,
    source: &'a Arc<Source>,
    dir: Interest,
    since: u64,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.source.poll_ready(self.dir, self.since, cx).is_ready() {
            return Poll::Ready(());
        }
        // Checked after the waker is in place: see the module's ownership rules.
        if Arc::ptr_eq(self.registration.current(), self.source) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::executor::current_reactor;

    /// Dropping an `Async`, or taking its object back, removes it from the reactor.
    // Miri cannot emulate sockets (a UDP socket, non-blocking socket pairs).
    #[test]
    #[cfg_attr(miri, ignore)]
    fn drop_and_into_inner_deregister() {
        crate::block_on(async {
            let reactor = current_reactor().expect("inside block_on");
            let base = reactor.source_count();
            let (a, b) = UnixStream::pair().unwrap();
            let udp = Async::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
            assert_eq!(reactor.source_count(), base + 3);
            drop(a);
            assert_eq!(reactor.source_count(), base + 2);
            let _socket = udp.into_inner().unwrap();
            assert_eq!(reactor.source_count(), base + 1);
            drop(b);
            assert_eq!(reactor.source_count(), base);
        });
    }

    /// An object that waits off its home reactor moves to the fallback one, once: the home
    /// reactor no longer watches it, nor does dropping it deregister a second time there.
    // Miri cannot emulate sockets.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn waiting_off_home_moves_the_registration_once() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (home, a) = crate::block_on(async {
            let reactor = current_reactor().expect("inside block_on");
            (reactor, Async::new(a).unwrap())
        });
        let base = home.source_count();
        assert!(a.source.moved.get().is_none());
        let b = std::thread::spawn(move || {
            let b = Async::new(b).unwrap(); // on the fallback reactor
            crate::block_on(async {
                let reader = crate::spawn_local(async move {
                    let mut buf = [0; 2];
                    let n = a.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                    assert_eq!(&buf[..n], b"hi");
                    // Moved once; waiting again here does not move it back.
                    assert!(a.source.moved.get().is_some());
                    a
                });
                crate::yield_now().await;
                b.write_with(|mut s| s.write(b"hi")).await.unwrap();
                (reader.await, b)
            })
        });
        let (a, b) = b.join().unwrap();
        assert_eq!(home.source_count(), base - 1);
        drop((a, b));
        assert_eq!(home.source_count(), base - 1);
    }
}
