//! Async I/O: TCP and Unix streams, `Async<T>` over std objects, the fallback reactor.
//!
//! The tests take one lock each, so that the fd count of the process is stable while
//! `drop_closes_and_deregisters_every_fd` counts.
#![cfg(feature = "io")]

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, UdpSocket};
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use aplex::io::{Async, TcpListener, TcpStream, UnixListener, UnixStream};
use aplex::time::timeout;
use aplex::{block_on, spawn_local};

/// Long enough never to fire on a slow CI machine, short enough to fail a hang.
const LIMIT: Duration = Duration::from_secs(30);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Message `i` of the echo test: a distinct length in 1..=64 KiB and distinct contents.
fn message(i: usize) -> Vec<u8> {
    let len = 1 + (i * 655) % 65536;
    (0..len).map(|j| (i * 7 + j * 13) as u8).collect()
}

#[test]
fn echo_server_then_100_clients() {
    let _serial = serial();
    let start = Instant::now();
    block_on(async {
        timeout(LIMIT, async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            spawn_local(async move {
                loop {
                    let (mut conn, _) = listener.accept().await.unwrap();
                    spawn_local(async move {
                        let mut buf = vec![0; 16 * 1024];
                        loop {
                            let n = conn.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            conn.write_all(&buf[..n]).await.unwrap();
                        }
                    })
                    .detach();
                }
            })
            .detach();

            let clients: Vec<_> = (0..100)
                .map(|i| {
                    spawn_local(async move {
                        let msg = message(i);
                        let mut reader = TcpStream::connect(addr).await.unwrap();
                        reader.set_nodelay(true).unwrap();
                        let mut writer = reader.try_clone().unwrap();
                        let sent = msg.clone();
                        let write = spawn_local(async move {
                            writer.write_all(&sent).await.unwrap();
                            writer.shutdown(Shutdown::Write).unwrap();
                        });
                        let mut back = vec![0; msg.len()];
                        reader.read_exact(&mut back).await.unwrap();
                        write.await;
                        assert_eq!(back, msg, "client {i} got another message back");
                        // The server saw our end of stream and closed its side.
                        assert_eq!(reader.read(&mut [0; 1]).await.unwrap(), 0);
                        msg.len()
                    })
                })
                .collect();
            let mut total = 0;
            for client in clients {
                total += client.await;
            }
            assert_eq!(total, (0..100).map(|i| message(i).len()).sum::<usize>());
        })
        .await
        .expect("the echo test hung");
    });
    assert!(start.elapsed() < LIMIT);
}

#[test]
fn connect_to_closed_port_is_refused() {
    let _serial = serial();
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }; // closed again: nothing listens there now
    block_on(async {
        let result = timeout(LIMIT, TcpStream::connect(addr))
            .await
            .expect("a refused connect must not hang");
        assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn connect_tries_each_address_in_turn() {
    let _serial = serial();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap();
    block_on(async {
        let stream = TcpStream::connect(&[closed, open][..]).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), open);
        let none: &[std::net::SocketAddr] = &[];
        let err = TcpStream::connect(none).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn unix_pair_round_trip_then_shutdown_then_early_eof() {
    let _serial = serial();
    block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"question").await.unwrap();
        let mut buf = [0; 8];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"question");
        b.write_all(b"answer").await.unwrap();
        let mut buf = [0; 6];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"answer");

        // After the peer shuts down writing, a read returns 0, and this side can still write.
        b.shutdown(Shutdown::Write).unwrap();
        assert_eq!(a.read(&mut [0; 4]).await.unwrap(), 0);
        a.write_all(b"still").await.unwrap();
        let mut rest = Vec::new();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(b.read_to_end(&mut rest).await.unwrap(), 5);
        assert_eq!(rest, b"still");

        // read_exact on a stream that ends early.
        let (mut c, mut d) = UnixStream::pair().unwrap();
        d.write_all(b"abc").await.unwrap();
        drop(d);
        let mut buf = [0; 10];
        let err = c.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    });
}

#[test]
fn read_waits_for_a_writer_in_another_task() {
    let _serial = serial();
    block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let reader = spawn_local(async move {
            let mut buf = [0; 5];
            a.read_exact(&mut buf).await.unwrap();
            buf
        });
        aplex::yield_now().await; // the reader is parked in the reactor now
        b.write_all(b"later").await.unwrap();
        assert_eq!(&timeout(LIMIT, reader).await.unwrap(), b"later");
    });
}

#[test]
fn waiting_reader_sees_end_of_stream_when_the_peer_is_dropped() {
    let _serial = serial();
    block_on(async {
        let (mut waiting, other) = UnixStream::pair().unwrap();
        let waiter = spawn_local(async move { waiting.read(&mut [0; 1]).await.unwrap() });
        aplex::yield_now().await; // the reader is parked in the reactor now
        drop(other);
        assert_eq!(timeout(LIMIT, waiter).await.unwrap(), 0);
    });
}

#[test]
fn unix_listener_accepts_connections() {
    let _serial = serial();
    /// Removes the socket file however the test ends.
    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let path = std::env::temp_dir().join(format!("aplex-test-io-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _remove = RemoveOnDrop(path.clone());
    block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let server = spawn_local(async move {
            for _ in 0..3 {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                conn.read_to_end(&mut got).await.unwrap();
                conn.write_all(&got).await.unwrap();
            }
        });
        for word in [&b"one"[..], b"two", b"three"] {
            let mut client = UnixStream::connect(&path).await.unwrap();
            client.write_all(word).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, word);
        }
        timeout(LIMIT, server).await.unwrap();
    });
}

#[test]
fn async_udp_socket_with_readable_writable_and_helpers() {
    let _serial = serial();
    block_on(async {
        let a = Async::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let b = Async::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let a_addr = a.get_ref().local_addr().unwrap();
        let b_addr = b.get_ref().local_addr().unwrap();

        // Nothing there yet: a plain recv would block, so it says WouldBlock.
        let mut buf = [0; 32];
        assert_eq!(
            a.get_ref().recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );

        b.writable().await.unwrap();
        assert_eq!(b.get_ref().send_to(b"one", a_addr).unwrap(), 3);
        timeout(LIMIT, a.readable()).await.unwrap().unwrap();
        assert_eq!(a.get_ref().recv(&mut buf).unwrap(), 3);

        // read_with waits for a datagram sent later by another task.
        // The sender runs only once this task waits in read_with below.
        let sender = spawn_local(async move {
            b.write_with(|s| s.send_to(b"two", a_addr)).await.unwrap();
            b
        });
        let (n, from) = timeout(LIMIT, a.read_with(|s| s.recv_from(&mut buf)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"two"[..], b_addr));
        let b = sender.await;

        // The _mut variants, and into_inner.
        let mut a = a;
        b.get_ref().send_to(b"three", a_addr).unwrap();
        let n = a.read_with_mut(|s| s.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"three");
        let std_socket = a.into_inner().unwrap();
        assert_eq!(std_socket.local_addr().unwrap(), a_addr);
    });
}

#[test]
fn async_unix_stream_helpers_with_std_read_write() {
    let _serial = serial();
    block_on(async {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, mut b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
        let reader = spawn_local(async move {
            let mut buf = [0; 6];
            a.read_with(|mut s| s.read_exact(&mut buf).map(|()| buf))
                .await
                .unwrap()
        });
        b.write_with_mut(|s| s.write_all(b"abcdef")).await.unwrap();
        assert_eq!(&timeout(LIMIT, reader).await.unwrap(), b"abcdef");
    });
}

#[test]
fn cancelled_read_leaves_the_stream_usable() {
    let _serial = serial();
    block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut buf = [0; 4];
        // Nothing to read: the read is dropped by the timeout while it waits.
        assert!(timeout(Duration::from_millis(10), a.read(&mut buf))
            .await
            .is_err());
        b.write_all(b"next").await.unwrap();
        timeout(LIMIT, a.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"next");
    });
}

/// How many fds this process has open (read from Linux's `/proc`).
#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether `fd` is open in this process (Linux's `/proc`).
#[cfg(target_os = "linux")]
fn is_open(fd: std::os::unix::io::RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok()
}

/// Other threads (a finished test's, ending: its executor's fds close with it) may close fds
/// meanwhile, never open ones: the counts can only fall by their doing, so the test checks its
/// own fds by number, and the count only as an upper bound.
#[test]
#[cfg(target_os = "linux")]
fn drop_closes_and_deregisters_every_fd() {
    use std::os::unix::io::AsRawFd;
    let _serial = serial();
    block_on(async {
        let before = open_fds();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conns = Vec::new();
        for _ in 0..200 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            conns.push((client, server));
        }
        let (a, b) = UnixStream::pair().unwrap();
        let udp = Async::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut ours: Vec<_> = conns
            .iter()
            .flat_map(|(c, s)| [c.as_raw_fd(), s.as_raw_fd()])
            .chain([a.as_raw_fd(), b.as_raw_fd(), listener.as_raw_fd()])
            .chain([udp.as_raw_fd()])
            .collect();
        ours.sort_unstable();
        ours.dedup();
        assert_eq!(ours.len(), 404, "every object has an fd of its own");
        assert!(ours.iter().all(|&fd| is_open(fd)));

        drop(conns);
        drop((a, b, listener));
        let inner = udp.into_inner().unwrap();
        drop(inner);
        let left: Vec<_> = ours.into_iter().filter(|&fd| is_open(fd)).collect();
        assert!(left.is_empty(), "fds left open: {left:?}");
        let after = open_fds();
        assert!(
            after <= before,
            "fds leaked: {before} before, {after} after"
        );
    });
}

#[test]
fn large_transfer_through_a_unix_pair() {
    let _serial = serial();
    const LEN: usize = 8 * 1024 * 1024;
    let data: Rc<Vec<u8>> = Rc::new((0..LEN).map(|i| (i * 31 + i / 4096) as u8).collect());
    block_on(async {
        let (mut tx, mut rx) = UnixStream::pair().unwrap();
        let sent = data.clone();
        let writer = spawn_local(async move {
            // Odd-sized writes, so the kernel buffer fills midway through a call.
            for chunk in sent.chunks(100_003) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let reader = spawn_local(async move {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            got
        });
        let got = timeout(LIMIT, async {
            writer.await;
            reader.await
        })
        .await
        .expect("the transfer hung");
        assert_eq!(got.len(), LEN);
        assert!(got == *data, "the bytes arrived changed");
    });
}

#[test]
fn objects_made_outside_block_on_use_the_fallback_reactor() {
    let _serial = serial();
    let (mut a, mut b) = UnixStream::pair().unwrap(); // no executor here: the fallback reactor
    block_on(async move {
        let reader = spawn_local(async move {
            let mut buf = [0; 3];
            a.read_exact(&mut buf).await.unwrap();
            buf
        });
        aplex::yield_now().await; // the reader is parked in the fallback reactor now
        b.write_all(b"far").await.unwrap();
        assert_eq!(&timeout(LIMIT, reader).await.unwrap(), b"far");
    });
}

/// The smallest executor: poll, and park the thread until the waker unparks it.
fn run_on_plain_thread<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(Instant::now() < deadline, "the future hung");
        thread::park_timeout(Duration::from_secs(1));
    }
}

#[test]
fn tcp_works_under_a_foreign_executor() {
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 11];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let echoed = thread::spawn(move || {
        run_on_plain_thread(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(b"not aplex's").await?;
            let mut buf = [0; 11];
            stream.read_exact(&mut buf).await?;
            let refused = {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                l.local_addr()?
            };
            let err = TcpStream::connect(refused).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
            Ok::<_, std::io::Error>(buf)
        })
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(&echoed, b"not aplex's");
    server.join().unwrap();
}

#[test]
fn ipv6_loopback_when_the_host_has_it() {
    let _serial = serial();
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        return; // no IPv6 on this machine
    };
    let addr = listener.local_addr().unwrap();
    block_on(async {
        let mut client = timeout(LIMIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        client.write_all(b"v6").await.unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"v6");
    });
}

#[test]
fn io_types_and_their_futures_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TcpStream>();
    send_sync::<TcpListener>();
    send_sync::<UnixStream>();
    send_sync::<UnixListener>();
    send_sync::<Async<UdpSocket>>();

    let _serial = serial();
    let (mut a, _b) = UnixStream::pair().unwrap();
    let mut buf = [0; 1];
    send(&a.read(&mut buf));
    send(&TcpStream::connect("127.0.0.1:1"));
}

#[test]
fn pool_workers_do_io_on_their_own_reactors() {
    let _serial = serial();
    let pool = aplex::ThreadPool::new(3);
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_local(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                spawn_local(async move {
                    let mut buf = Vec::new();
                    conn.read_to_end(&mut buf).await.unwrap();
                    conn.write_all(&buf).await.unwrap();
                })
                .detach();
            }
        })
        .detach();
        let works: Vec<_> = (0..12)
            .map(|i| {
                pool.spawn(move || async move {
                    let mut stream = TcpStream::connect(addr).await?;
                    let msg = message(i * 8);
                    stream.write_all(&msg).await?;
                    stream.shutdown(Shutdown::Write)?;
                    let mut back = Vec::new();
                    stream.read_to_end(&mut back).await?;
                    Ok::<bool, std::io::Error>(back == msg)
                })
            })
            .collect();
        for work in works {
            let echoed = timeout(LIMIT, work).await.expect("a work hung");
            assert!(echoed.unwrap().unwrap(), "a work got another message back");
        }
    });
}
