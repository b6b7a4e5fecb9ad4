//! TCP: [`TcpListener`] and [`TcpStream`], with a connect that never blocks the thread.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};

use super::Async;
use crate::sys;

/// A TCP socket server, listening for connections.
///
/// ```
/// use aplex::io::{TcpListener, TcpStream};
/// aplex::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server_side, peer) = listener.accept().await?;
///     assert_eq!(peer, client.local_addr()?);
///     assert_eq!(server_side.peer_addr()?, client.local_addr()?);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    io: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds a listener to `addr` (the first of its addresses that works, as std does).
    ///
    /// This is a plain function, not an `async` one: binding and listening never wait for the
    /// network. Resolving a host *name* does block the thread (std's resolver); pass an IP
    /// address, or a [`SocketAddr`], to avoid it. Port 0 picks a free port:
    /// [`local_addr`](TcpListener::local_addr) tells which.
    ///
    /// # Errors
    ///
    /// The error of the last address tried (`AddrInUse`, `PermissionDenied`…), or of the
    /// resolver.
    ///
    /// ```
    /// let listener = aplex::io::TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::from_std(std::net::TcpListener::bind(addr)?)
    }

    /// Wraps a std listener (made non-blocking and registered with this thread's reactor).
    ///
    /// # Errors
    ///
    /// As [`Async::new`].
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = std_listener.local_addr()?;
    /// let listener = aplex::io::TcpListener::from_std(std_listener)?;
    /// assert_eq!(listener.local_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Async::new(listener)?,
        })
    }

    /// Waits for the next connection; returns it and the peer's address.
    ///
    /// # Errors
    ///
    /// The error of `accept(2)`: running out of fds (`EMFILE`) is one; a later call may succeed.
    ///
    /// ```
    /// use aplex::io::{TcpListener, TcpStream};
    /// aplex::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let client = aplex::spawn_local(async move { TcpStream::connect(addr).await });
    ///     let (_conn, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.await?.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.io.read_with(|l| l.accept()).await?;
        Ok((TcpStream::from_std(stream)?, addr))
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// The error of `getsockname(2)`.
    ///
    /// ```
    /// let listener = aplex::io::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The std listener inside (in non-blocking mode).
    ///
    /// ```
    /// let listener = aplex::io::TcpListener::bind("127.0.0.1:0")?;
    /// assert_eq!(listener.get_ref().local_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpListener {
        self.io.get_ref()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A TCP connection.
///
/// Reading and writing take `&mut self`: one task drives a stream at a time, which is what the
/// reactor's one-waiter-per-direction rule needs. To read in one task while another writes, give
/// one of them a [`try_clone`](TcpStream::try_clone).
///
/// ```
/// use aplex::io::{TcpListener, TcpStream};
/// aplex::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"ping").await?;
///     client.shutdown(std::net::Shutdown::Write)?;
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?;
///     assert_eq!(got, b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    io: Async<std::net::TcpStream>,
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each of its addresses in turn.
    ///
    /// The connect itself never blocks the thread: the socket is non-blocking, and the task
    /// waits in the reactor until the kernel finishes the handshake. Resolving a host *name*
    /// does block (std's resolver); pass an IP address or a [`SocketAddr`] to avoid it. The
    /// kernel gives up on an unanswered handshake only after minutes: wrap the call in
    /// [`time::timeout`](crate::time::timeout) for a shorter limit.
    ///
    /// # Errors
    ///
    /// The error of the last address tried (`ConnectionRefused`, `TimedOut`…), or
    /// `InvalidInput` if `addr` resolves to no address.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use aplex::io::{TcpListener, TcpStream};
    /// aplex::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let stream = TcpStream::connect(addr).await?;
    ///     assert_eq!(stream.peer_addr()?, addr);
    ///     drop(listener); // nobody listens there any more
    ///     let err = TcpStream::connect(addr).await.unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match connect_one(&addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to no socket address",
            )
        }))
    }

    /// Wraps a connected std stream (made non-blocking and registered with this thread's
    /// reactor).
    ///
    /// # Errors
    ///
    /// As [`Async::new`].
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let stream = aplex::io::TcpStream::from_std(std_stream)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Async::new(stream)?,
        })
    }

    /// Reads some bytes into `buf`; returns how many, 0 meaning the peer closed its side (or
    /// `buf` is empty). Waits while nothing is there to read.
    ///
    /// # Errors
    ///
    /// The error of `read(2)`, such as `ConnectionReset`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// # let (mut server, _) = listener.accept().await?;
    /// client.write_all(b"abc").await?;
    /// let mut buf = [0; 16];
    /// let n = server.read(&mut buf).await?;
    /// assert!(n > 0 && b"abc".starts_with(&buf[..n]));
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_some(buf).await
    }

    /// Writes some bytes of `buf`; returns how many. Waits while the send buffer is full.
    ///
    /// # Errors
    ///
    /// The error of `write(2)`, such as `BrokenPipe` after the peer closed.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(client.write(b"hello").await?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_some(buf).await
    }

    /// Fills `buf` completely.
    ///
    /// If the future is dropped midway, the bytes read so far are lost.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the peer closes first; otherwise the error of `read(2)`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// # let (mut server, _) = listener.accept().await?;
    /// client.write_all(b"12").await?;
    /// drop(client);
    /// let mut buf = [0; 4];
    /// let err = server.read_exact(&mut buf).await.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.io.read_exact(buf).await
    }

    /// Writes all of `buf`.
    ///
    /// If the future is dropped midway, an unknown prefix of `buf` has been sent.
    ///
    /// # Errors
    ///
    /// The error of `write(2)`; `WriteZero` if the socket accepts nothing.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// # let (mut server, _) = listener.accept().await?;
    /// client.write_all(&[7; 1000]).await?;
    /// let mut buf = [0; 1000];
    /// server.read_exact(&mut buf).await?;
    /// assert!(buf.iter().all(|&b| b == 7));
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.io.write_all(buf).await
    }

    /// Reads until the peer closes its side, appending to `buf`; returns how many bytes were
    /// appended.
    ///
    /// If the future is dropped midway, `buf` keeps the bytes read so far.
    ///
    /// # Errors
    ///
    /// The error of `read(2)`; `buf` then keeps what was read before it.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// # let (mut server, _) = listener.accept().await?;
    /// client.write_all(b"all of it").await?;
    /// drop(client);
    /// let mut buf = b"> ".to_vec();
    /// assert_eq!(server.read_to_end(&mut buf).await?, 9);
    /// assert_eq!(buf, b"> all of it");
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.io.read_to_end(buf).await
    }

    /// Does nothing: a TCP socket has no user-space buffer. Here for symmetry with std.
    ///
    /// # Errors
    ///
    /// None.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// client.write_all(b"x").await?;
    /// client.flush().await?;
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Shuts down the reading side, the writing side, or both (`shutdown(2)`). After
    /// `Shutdown::Write` the peer reads end-of-stream; this side can still read.
    ///
    /// # Errors
    ///
    /// The error of `shutdown(2)`, such as `NotConnected`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let client = TcpStream::connect(listener.local_addr()?).await?;
    /// # let (mut server, _) = listener.accept().await?;
    /// client.shutdown(std::net::Shutdown::Write)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(server.read(&mut buf).await?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The address of the remote end.
    ///
    /// # Errors
    ///
    /// The error of `getpeername(2)`, such as `NotConnected`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(client.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address of this end.
    ///
    /// # Errors
    ///
    /// The error of `getsockname(2)`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// assert!(client.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Turns Nagle's algorithm off (`true`) or on (`TCP_NODELAY`).
    ///
    /// # Errors
    ///
    /// The error of `setsockopt(2)`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// client.set_nodelay(true)?;
    /// assert!(client.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    ///
    /// # Errors
    ///
    /// The error of `getsockopt(2)`.
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// client.set_nodelay(false)?;
    /// assert!(!client.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// A second handle to the same connection (a duplicated fd with its own registration), so
    /// that one task can read while another writes.
    ///
    /// # Errors
    ///
    /// The error of `dup(2)`, such as running out of fds.
    ///
    /// ```
    /// use aplex::io::{TcpListener, TcpStream};
    /// aplex::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut reader = TcpStream::connect(listener.local_addr()?).await?;
    ///     let mut writer = reader.try_clone()?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     let echo = aplex::spawn_local(async move {
    ///         let mut buf = [0; 3];
    ///         server.read_exact(&mut buf).await?;
    ///         server.write_all(&buf).await
    ///     });
    ///     writer.write_all(b"dup").await?;
    ///     let mut buf = [0; 3];
    ///     reader.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"dup");
    ///     echo.await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        TcpStream::from_std(self.io.get_ref().try_clone()?)
    }

    /// The std stream inside (in non-blocking mode).
    ///
    /// ```
    /// # use aplex::io::{TcpListener, TcpStream};
    /// # aplex::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(client.get_ref().peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.io.get_ref()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// Connects to one address: start a non-blocking connect, wait until the socket is writable,
/// then ask the socket how the handshake ended.
async fn connect_one(addr: &SocketAddr) -> io::Result<TcpStream> {
    let (socket, in_progress) = sys::net::tcp_connect(addr)?;
    let stream = TcpStream::from_std(socket)?;
    if in_progress {
        loop {
            stream.io.writable().await?;
            if let Some(e) = stream.io.get_ref().take_error()? {
                return Err(e);
            }
            match stream.io.get_ref().peer_addr() {
                Ok(_) => break,
                // Not finished yet: a spurious wake-up. Wait again.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(stream)
}
