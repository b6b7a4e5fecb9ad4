//! Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::io;
use std::net::Shutdown;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::Async;

/// A Unix-domain socket server, listening for connections.
///
/// ```
/// use aplex::io::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("aplex-doc-listener-{}", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// aplex::block_on(async {
///     let listener = UnixListener::bind(&path)?;
///     let mut client = UnixStream::connect(&path).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"local").await?;
///     let mut buf = [0; 5];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"local");
///     Ok::<(), std::io::Error>(())
/// })?;
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    io: Async<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds a listener to the socket file `path`, which must not exist yet.
    ///
    /// A plain function, not an `async` one: binding never waits. The socket file stays after
    /// the listener is dropped; remove it yourself.
    ///
    /// # Errors
    ///
    /// The error of `bind(2)`, such as `AddrInUse` if `path` exists.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("aplex-doc-bind-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = aplex::io::UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// assert!(aplex::io::UnixListener::bind(&path).is_err()); // taken
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Wraps a std listener (made non-blocking and registered with this thread's reactor).
    ///
    /// # Errors
    ///
    /// As [`Async::new`].
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("aplex-doc-lstd-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
    /// let listener = aplex::io::UnixListener::from_std(std_listener)?;
    /// assert!(listener.local_addr()?.as_pathname().is_some());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Async::new(listener)?,
        })
    }

    /// Waits for the next connection; returns it and the peer's address (usually unnamed).
    ///
    /// # Errors
    ///
    /// The error of `accept(2)`, such as running out of fds.
    ///
    /// ```
    /// use aplex::io::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("aplex-doc-accept-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// aplex::block_on(async {
    ///     let listener = UnixListener::bind(&path)?;
    ///     let _client = UnixStream::connect(&path).await?;
    ///     let (_server, peer) = listener.accept().await?;
    ///     assert!(peer.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.io.read_with(|l| l.accept()).await?;
        Ok((UnixStream::from_std(stream)?, addr))
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// The error of `getsockname(2)`.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("aplex-doc-laddr-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = aplex::io::UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The std listener inside (in non-blocking mode).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("aplex-doc-lref-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = aplex::io::UnixListener::bind(&path)?;
    /// assert!(listener.get_ref().local_addr()?.as_pathname().is_some());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::os::unix::net::UnixListener {
        self.io.get_ref()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A Unix-domain stream connection.
///
/// As with [`TcpStream`](super::TcpStream), reading and writing take `&mut self`; split a stream
/// between a reading and a writing task with [`try_clone`](UnixStream::try_clone).
///
/// ```
/// use aplex::io::UnixStream;
/// aplex::block_on(async {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.write_all(b"over").await?;
///     a.shutdown(std::net::Shutdown::Write)?;
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await?;
///     assert_eq!(got, b"over");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    io: Async<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file `path`.
    ///
    /// A Unix-domain connect completes at once (or fails at once, say with `NotFound` or
    /// `ConnectionRefused`), except when the listener's backlog is full: the kernel then offers
    /// no readiness event to wait for, so this one case blocks the thread until the listener
    /// accepts (std's connect).
    ///
    /// # Errors
    ///
    /// The error of `connect(2)`.
    ///
    /// ```
    /// aplex::block_on(async {
    ///     let err = aplex::io::UnixStream::connect("/nonexistent/aplex.sock").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        UnixStream::from_std(std::os::unix::net::UnixStream::connect(path)?)
    }

    /// A pair of connected streams (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// The error of `socketpair(2)`, such as running out of fds.
    ///
    /// ```
    /// aplex::block_on(async {
    ///     let (mut a, mut b) = aplex::io::UnixStream::pair()?;
    ///     b.write_all(b"pong").await?;
    ///     let mut buf = [0; 4];
    ///     a.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"pong");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a connected std stream (made non-blocking and registered with this thread's
    /// reactor).
    ///
    /// # Errors
    ///
    /// As [`Async::new`].
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = aplex::io::UnixStream::from_std(a)?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
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
    /// # aplex::block_on(async {
    /// let (mut a, b) = aplex::io::UnixStream::pair()?;
    /// drop(b);
    /// let mut buf = [0; 8];
    /// assert_eq!(a.read(&mut buf).await?, 0); // end of stream
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
    /// # aplex::block_on(async {
    /// let (mut a, _b) = aplex::io::UnixStream::pair()?;
    /// assert_eq!(a.write(b"12345").await?, 5);
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
    /// # aplex::block_on(async {
    /// let (mut a, mut b) = aplex::io::UnixStream::pair()?;
    /// b.write_all(b"ab").await?;
    /// drop(b);
    /// let mut buf = [0; 3];
    /// let err = a.read_exact(&mut buf).await.unwrap_err();
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
    /// # aplex::block_on(async {
    /// let (mut a, mut b) = aplex::io::UnixStream::pair()?;
    /// a.write_all(&[1; 100]).await?;
    /// let mut buf = [0; 100];
    /// b.read_exact(&mut buf).await?;
    /// assert_eq!(buf, [1; 100]);
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
    /// # aplex::block_on(async {
    /// let (mut a, mut b) = aplex::io::UnixStream::pair()?;
    /// b.write_all(b"bye").await?;
    /// drop(b);
    /// let mut buf = Vec::new();
    /// assert_eq!(a.read_to_end(&mut buf).await?, 3);
    /// assert_eq!(buf, b"bye");
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.io.read_to_end(buf).await
    }

    /// Does nothing: a socket has no user-space buffer. Here for symmetry with std.
    ///
    /// # Errors
    ///
    /// None.
    ///
    /// ```
    /// # aplex::block_on(async {
    /// let (mut a, _b) = aplex::io::UnixStream::pair()?;
    /// a.flush().await?;
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
    /// The error of `shutdown(2)`.
    ///
    /// ```
    /// # aplex::block_on(async {
    /// let (a, mut b) = aplex::io::UnixStream::pair()?;
    /// a.shutdown(std::net::Shutdown::Write)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(b.read(&mut buf).await?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The address of the remote end (unnamed for a [`pair`](UnixStream::pair)).
    ///
    /// # Errors
    ///
    /// The error of `getpeername(2)`.
    ///
    /// ```
    /// let (a, _b) = aplex::io::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address of this end (usually unnamed for a client).
    ///
    /// # Errors
    ///
    /// The error of `getsockname(2)`.
    ///
    /// ```
    /// let (a, _b) = aplex::io::UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// A second handle to the same connection (a duplicated fd with its own registration), so
    /// that one task can read while another writes.
    ///
    /// # Errors
    ///
    /// The error of `dup(2)`, such as running out of fds.
    ///
    /// ```
    /// aplex::block_on(async {
    ///     let (mut a, mut b) = aplex::io::UnixStream::pair()?;
    ///     let mut a_writer = a.try_clone()?;
    ///     a_writer.write_all(b"to b").await?;
    ///     b.write_all(b"to a").await?;
    ///     let mut buf = [0; 4];
    ///     a.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"to a");
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"to b");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        UnixStream::from_std(self.io.get_ref().try_clone()?)
    }

    /// The std stream inside (in non-blocking mode).
    ///
    /// ```
    /// let (a, _b) = aplex::io::UnixStream::pair()?;
    /// assert!(a.get_ref().peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &std::os::unix::net::UnixStream {
        self.io.get_ref()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}
