//! `aplex::io` at its seams, as tokio's and async-io's own socket tests drive it: half-close,
//! a reader and a writer pending on one socket from two tasks, a writer whose peer goes away,
//! large transfers through full buffers, streams that change threads or executors between
//! operations, futures dropped mid-wait, and the fds all of it leaves behind.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::Poll;
use std::time::Duration;

use aplex::io::{Async, TcpListener, TcpStream, UnixStream};
use aplex::time::timeout;
use aplex::{block_on, spawn_local, yield_now, ThreadPool};

use crate::{
    case, eventually, open_fds, poll_with, run_foreign, within, Case, CountingWaker, HANG,
};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "tcp_half_close_then_the_peer_still_answers",
            tcp_half_close_then_the_peer_still_answers,
        ),
        case(
            "a_read_and_a_write_pending_on_one_socket_from_two_tasks",
            a_read_and_a_write_pending_on_one_socket_from_two_tasks,
        ),
        case(
            "a_writer_blocked_on_a_full_buffer_sees_its_peer_go",
            a_writer_blocked_on_a_full_buffer_sees_its_peer_go,
        ),
        case(
            "a_pending_accept_cancelled_then_the_listener_dropped",
            a_pending_accept_cancelled_then_the_listener_dropped,
        ),
        case(
            "big_writes_across_threads_lose_and_duplicate_nothing",
            big_writes_across_threads_lose_and_duplicate_nothing,
        ),
        case(
            "a_stream_from_a_finished_block_on_read_on_another_thread",
            a_stream_from_a_finished_block_on_read_on_another_thread,
        ),
        case(
            "a_stream_whose_home_thread_ended_waits_without_spinning",
            a_stream_whose_home_thread_ended_waits_without_spinning,
        ),
        case(
            "one_async_read_and_written_from_two_other_threads",
            one_async_read_and_written_from_two_other_threads,
        ),
        case(
            "a_stream_on_a_foreign_executor_wakes_the_latest_waker",
            a_stream_on_a_foreign_executor_wakes_the_latest_waker,
        ),
        case(
            "a_read_pending_in_one_task_while_another_drops_its_share",
            a_read_pending_in_one_task_while_another_drops_its_share,
        ),
        case(
            "a_self_waking_task_does_not_starve_io",
            a_self_waking_task_does_not_starve_io,
        ),
        case(
            "sockets_opened_refused_cancelled_and_dropped_leak_no_fd",
            sockets_opened_refused_cancelled_and_dropped_leak_no_fd,
        ),
    ]
}

/// Byte `i` of a long pattern that does not repeat within 2^16 bytes and tells offsets apart.
fn pattern(i: usize) -> u8 {
    (i ^ (i >> 8) ^ (i >> 16)).wrapping_mul(31) as u8
}

fn tcp_half_close_then_the_peer_still_answers() {
    within("half-close", || {
        block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn_local(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                conn.read_to_end(&mut got).await.unwrap();
                // Reads after the end keep saying "end".
                let mut buf = [0; 8];
                assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
                conn.write_all(&(got.len() as u64).to_le_bytes())
                    .await
                    .unwrap();
                got
            });
            let payload: Vec<u8> = (0..300_000).map(pattern).collect();
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(&payload).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let err = client.write(b"late").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, (payload.len() as u64).to_le_bytes());
            assert!(server.await == payload);
        });
    });
}

fn a_read_and_a_write_pending_on_one_socket_from_two_tasks() {
    const BIG: usize = 4 << 20;
    within("a reader and a writer on one socket", || {
        block_on(async {
            // Two registrations of one socket (try_clone), one task each.
            let (a, mut b) = UnixStream::pair().unwrap();
            let mut a_reader = a.try_clone().unwrap();
            let mut a_writer = a;
            let reader = spawn_local(async move {
                let mut buf = [0; 4];
                a_reader.read_exact(&mut buf).await.unwrap();
                buf
            });
            let writer = spawn_local(async move {
                let data: Vec<u8> = (0..BIG).map(pattern).collect();
                a_writer.write_all(&data).await.unwrap();
            });
            yield_now().await; // both wait now: nothing to read, no room to write
            let mut got = vec![0; BIG];
            b.read_exact(&mut got).await.unwrap();
            assert!(got.iter().enumerate().all(|(i, &x)| x == pattern(i)));
            b.write_all(b"pong").await.unwrap();
            writer.await;
            assert_eq!(&reader.await, b"pong");

            // One registration shared by two tasks, one per direction.
            let (x, y) = StdUnixStream::pair().unwrap();
            let x = Rc::new(Async::new(x).unwrap());
            let mut y = UnixStream::from_std(y).unwrap();
            let xr = x.clone();
            let reader = spawn_local(async move {
                let mut buf = [0; 4];
                let n = xr.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                buf[..n].to_vec()
            });
            let xw = x.clone();
            let writer = spawn_local(async move {
                let data: Vec<u8> = (0..BIG).map(pattern).collect();
                let mut sent = 0;
                while sent < BIG {
                    sent += xw.write_with(|mut s| s.write(&data[sent..])).await.unwrap();
                }
            });
            yield_now().await;
            let mut got = vec![0; BIG];
            y.read_exact(&mut got).await.unwrap();
            assert!(got.iter().enumerate().all(|(i, &x)| x == pattern(i)));
            y.write_all(b"ping").await.unwrap();
            writer.await;
            assert_eq!(reader.await, b"ping");
        });
    });
}

fn a_writer_blocked_on_a_full_buffer_sees_its_peer_go() {
    within("a blocked writer whose peer goes", || {
        block_on(async {
            let (mut a, b) = UnixStream::pair().unwrap();
            let writer = spawn_local(async move {
                let data = vec![7u8; 8 << 20];
                a.write_all(&data).await
            });
            yield_now().await;
            assert!(!writer.is_finished());
            drop(b);
            let err = writer.await.unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ),
                "{err}"
            );

            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let writer = spawn_local(async move {
                let data = vec![7u8; 64 << 20];
                client.write_all(&data).await
            });
            yield_now().await;
            assert!(!writer.is_finished());
            drop(server);
            let err = timeout(HANG, writer)
                .await
                .expect("the writer hung")
                .unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ),
                "{err}"
            );
        });
    });
}

fn a_pending_accept_cancelled_then_the_listener_dropped() {
    within("a cancelled accept", || {
        block_on(async {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = listener.local_addr().unwrap();
            let l = listener.clone();
            let accepting = spawn_local(async move { l.accept().await.map(|_| ()) });
            yield_now().await;
            assert!(accepting.cancel().is_none());
            yield_now().await; // the cancelled task drops its share of the listener
            assert_eq!(Rc::strong_count(&listener), 1);
            drop(listener);
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        });
    });
}

fn big_writes_across_threads_lose_and_duplicate_nothing() {
    const TOTAL: usize = 24 << 20;
    within("a big transfer between threads", || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The writer runs on a pool worker (its reactor), with odd-sized partial writes.
        let pool = ThreadPool::new(1);
        let writer = pool.spawn(move || async move {
            let mut stream = TcpStream::connect(addr).await?;
            let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
            let mut sent = 0;
            let mut step = 1;
            while sent < TOTAL {
                let end = (sent + step * 7919).min(TOTAL);
                let n = stream.write(&data[sent..end]).await?;
                assert!(n > 0 && n <= end - sent);
                sent += n;
                step = step % 97 + 1;
            }
            stream.shutdown(Shutdown::Write)?;
            Ok::<usize, std::io::Error>(sent)
        });
        let (conn, _) = listener.accept().unwrap();
        let received = block_on(async move {
            let mut conn = TcpStream::from_std(conn).unwrap();
            let mut buf = vec![0; 65_537];
            let mut at = 0;
            let mut size = 1;
            loop {
                let want = (size * 331).min(buf.len());
                let n = conn.read(&mut buf[..want]).await.unwrap();
                if n == 0 {
                    break at;
                }
                for (k, &x) in buf[..n].iter().enumerate() {
                    assert_eq!(x, pattern(at + k), "byte {} differs", at + k);
                }
                at += n;
                size = size % 199 + 1;
            }
        });
        assert_eq!(received, TOTAL);
        assert_eq!(writer.wait().unwrap().unwrap(), TOTAL);
    });
}

fn a_stream_from_a_finished_block_on_read_on_another_thread() {
    within("a stream moved to another thread", || {
        let (mut far, near) = StdUnixStream::pair().unwrap();
        // Made inside a block_on on thread A, which then waits, running no executor.
        let (to_b, from_a) = std_mpsc::channel();
        let (release_a, a_waits) = std_mpsc::channel::<()>();
        let a = std::thread::spawn(move || {
            let stream = block_on(async { UnixStream::from_std(near).unwrap() });
            to_b.send(stream).unwrap();
            let _ = a_waits.recv();
        });
        let mut stream = from_a.recv().unwrap();
        let (reading_tx, reading) = std_mpsc::channel();
        let b = std::thread::spawn(move || {
            block_on(async move {
                let t = spawn_local(async move {
                    let mut buf = [0; 5];
                    stream.read_exact(&mut buf).await.map(|()| buf)
                });
                yield_now().await; // the read waits now
                reading_tx.send(()).unwrap();
                timeout(HANG, t).await
            })
        });
        reading.recv().unwrap();
        far.write_all(b"hello").unwrap();
        let got = b.join().unwrap();
        release_a.send(()).unwrap();
        a.join().unwrap();
        let got = got.expect("the read on thread B was never woken").unwrap();
        assert_eq!(&got, b"hello");
    });
}

fn a_stream_whose_home_thread_ended_waits_without_spinning() {
    within("a stream whose home thread ended", || {
        let (_far, near) = StdUnixStream::pair().unwrap();
        let mut stream =
            std::thread::spawn(move || block_on(async { UnixStream::from_std(near).unwrap() }))
                .join()
                .unwrap();
        // Nothing will come: the read must wait (and let the timer end it), not spin.
        let outcome = block_on(async move {
            let mut buf = [0; 1];
            timeout(Duration::from_millis(50), stream.read(&mut buf)).await
        });
        assert!(outcome.is_err(), "read returned {outcome:?}");
    });
}

fn one_async_read_and_written_from_two_other_threads() {
    const BIG: usize = 2 << 20;
    within("one Async on two foreign threads", || {
        let (far, near) = StdUnixStream::pair().unwrap();
        // Home: a block_on that has returned. Used at once from two threads, each its own
        // block_on, one direction each: neither runs its home reactor.
        let near = Arc::new(block_on(async { Async::new(near).unwrap() }));
        let n = near.clone();
        let reader = std::thread::spawn(move || {
            block_on(async move {
                let mut got = Vec::new();
                let mut buf = [0; 4096];
                while got.len() < BIG {
                    let k = n.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                    assert!(k > 0, "early end");
                    got.extend_from_slice(&buf[..k]);
                }
                got
            })
        });
        let n = near.clone();
        let writer = std::thread::spawn(move || {
            block_on(async move {
                let data: Vec<u8> = (0..BIG).map(pattern).collect();
                let mut sent = 0;
                while sent < BIG {
                    sent += n.write_with(|mut s| s.write(&data[sent..])).await.unwrap();
                }
            })
        });
        // The far end echoes, through a pool worker's reactor.
        let pool = ThreadPool::new(1);
        let echo = pool.spawn(move || async move {
            let mut far = UnixStream::from_std(far)?;
            let mut buf = vec![0; 8192];
            let mut moved = 0;
            while moved < BIG {
                let k = far.read(&mut buf).await?;
                far.write_all(&buf[..k]).await?;
                moved += k;
            }
            Ok::<usize, std::io::Error>(moved)
        });
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(echo.wait().unwrap().unwrap(), BIG);
        assert!(got.iter().enumerate().all(|(i, &x)| x == pattern(i)));
    });
}

fn a_stream_on_a_foreign_executor_wakes_the_latest_waker() {
    within("a stream under counting wakers", || {
        let (mut far, near) = StdUnixStream::pair().unwrap();
        // Made outside any aplex executor: the fallback reactor serves it.
        let mut stream = UnixStream::from_std(near).unwrap();
        let (c1, w1) = CountingWaker::new();
        let (c2, w2) = CountingWaker::new();
        {
            let mut buf = [0; 3];
            {
                let mut read = pin!(stream.read(&mut buf));
                assert!(poll_with(read.as_mut(), &w1).is_pending());
                assert!(poll_with(read.as_mut(), &w2).is_pending());
                far.write_all(b"abc").unwrap();
                eventually("the latest waker's wake", || c2.count() > 0);
                assert!(matches!(poll_with(read.as_mut(), &w2), Poll::Ready(Ok(3))));
            }
            assert_eq!(&buf, b"abc");
        }
        // A read dropped while it waits takes nothing; the next one, on a new waker, gets all.
        {
            let mut buf = [0; 3];
            let mut read = Box::pin(stream.read(&mut buf));
            assert!(poll_with(read.as_mut(), &w1).is_pending());
        }
        let before = c1.count();
        let (c3, w3) = CountingWaker::new();
        let mut buf = [0; 8];
        {
            let mut read = pin!(stream.read(&mut buf));
            assert!(poll_with(read.as_mut(), &w3).is_pending());
            far.write_all(b"xyz").unwrap();
            eventually("the new waker's wake", || c3.count() > 0);
            assert!(matches!(poll_with(read.as_mut(), &w3), Poll::Ready(Ok(3))));
        }
        assert_eq!(&buf[..3], b"xyz");
        // Once the dropped read left, its waker is not woken for later readiness.
        assert_eq!(c1.count(), before);
        // And a whole exchange under a foreign executor.
        far.write_all(b"more").unwrap();
        let mut buf = [0; 4];
        run_foreign(stream.read_exact(&mut buf)).unwrap();
        assert_eq!(&buf, b"more");
    });
}

fn a_read_pending_in_one_task_while_another_drops_its_share() {
    within("a read pending while its share goes", || {
        block_on(async {
            // A clone dropped: the reader goes on waiting and gets the data.
            let (a, mut b) = UnixStream::pair().unwrap();
            let mut a2 = a.try_clone().unwrap();
            let reader = spawn_local(async move {
                let mut buf = [0; 2];
                a2.read_exact(&mut buf).await.map(|()| buf)
            });
            yield_now().await;
            drop(a);
            yield_now().await;
            assert!(!reader.is_finished());
            b.write_all(b"ok").await.unwrap();
            assert_eq!(&reader.await.unwrap(), b"ok");

            // The reader's task cancelled while it waits: its fd closes; the peer sees the end.
            let (a, mut b) = UnixStream::pair().unwrap();
            let dropped = Rc::new(Cell::new(false));
            let d = dropped.clone();
            let reader = spawn_local(async move {
                let mut a = a;
                let _flag = scopeguard(move || d.set(true));
                let mut buf = [0; 1];
                a.read(&mut buf).await
            });
            yield_now().await;
            assert_eq!(reader.cancel().map(|r| r.is_ok()), None);
            yield_now().await;
            assert!(dropped.get());
            let mut rest = Vec::new();
            assert_eq!(b.read_to_end(&mut rest).await.unwrap(), 0);

            // A shared `Async` whose other owner drops it: the read still ends at the peer's end.
            let (x, y) = StdUnixStream::pair().unwrap();
            let x = Rc::new(Async::new(x).unwrap());
            let xr = x.clone();
            let reader = spawn_local(async move {
                let mut buf = [0; 1];
                xr.read_with(|mut s| s.read(&mut buf)).await
            });
            yield_now().await;
            drop(x);
            drop(y);
            assert_eq!(reader.await.unwrap(), 0);
        });
    });
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

fn a_self_waking_task_does_not_starve_io() {
    within("io beside a self-waking task", || {
        block_on(async {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let spinner = spawn_local(std::future::poll_fn(move |cx| {
                if s.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }));
            let (mut far, near) = StdUnixStream::pair().unwrap();
            let mut near = UnixStream::from_std(near).unwrap();
            let writer = std::thread::spawn(move || far.write_all(b"through"));
            let mut buf = [0; 7];
            near.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"through");
            writer.join().unwrap().unwrap();
            stop.store(true, Ordering::SeqCst);
            spinner.await;
        });
    });
}

fn sockets_opened_refused_cancelled_and_dropped_leak_no_fd() {
    within("fd accounting", || {
        // Warm up: this thread's reactor and the fallback reactor hold fds for good.
        block_on(async {});
        drop(UnixStream::pair().unwrap());
        let before = open_fds();
        block_on(async {
            let refused = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            for _ in 0..50 {
                assert!(TcpStream::connect(refused).await.is_err());
            }
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            for _ in 0..50 {
                let mut c = TcpStream::connect(addr).await.unwrap();
                let (mut s, _) = listener.accept().await.unwrap();
                c.write_all(b"x").await.unwrap();
                let mut buf = [0; 1];
                s.read_exact(&mut buf).await.unwrap();
            }
            for _ in 0..50 {
                let (mut a, _b) = UnixStream::pair().unwrap();
                let t = spawn_local(async move {
                    let mut buf = [0; 1];
                    a.read(&mut buf).await
                });
                yield_now().await;
                assert!(t.cancel().is_none());
            }
            let listener = Rc::new(listener);
            for _ in 0..50 {
                let l = listener.clone();
                let t = spawn_local(async move { l.accept().await.map(|_| ()) });
                yield_now().await;
                assert!(t.cancel().is_none());
            }
            yield_now().await;
        });
        // Made on a foreign thread (the fallback reactor), dropped while a read waits.
        for _ in 0..20 {
            let (a, _b) = StdUnixStream::pair().unwrap();
            let mut a = UnixStream::from_std(a).unwrap();
            let (_, waker) = CountingWaker::new();
            let mut buf = [0; 1];
            let mut read = Box::pin(a.read(&mut buf));
            assert!(poll_with(read.as_mut(), &waker).is_pending());
        }
        let after = open_fds();
        assert!(
            after <= before,
            "fds leaked: {before} before, {after} after"
        );
    });
}
