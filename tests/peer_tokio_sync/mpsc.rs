//! tokio `tests/sync_mpsc.rs`.
//!
//! aplex's `Sender::send` is async on unbounded channels too: tokio's synchronous unbounded
//! `send(v)` is `try_send(v)` here. tokio's `TryRecvError::Disconnected` is `Closed`.
//!
//! Not ported: `try_reserve_owned` (aplex has no owned permits; `try_reserve` is tested in
//! `tests/sync_parity.rs`);
//! `send_recv_stream_*` (no `Stream` impl: `poll_next` is tested instead);
//! `blocking_recv_async` and `blocking_send_async` (tokio panics when a blocking call runs
//! inside its runtime; aplex's blocking calls document "do not call from async code" and do
//! not detect it); `recv_timeout_panic` (no runtime context is needed); `test_tx_capacity`
//! (aplex's `capacity()` is the bound, tokio's `max_capacity()`, as its docs say).
//! As in tokio, a permit reserved before `Receiver::close` can still send, and the receiver
//! reports the end only once every such permit has sent or been dropped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aplex::sync::mpsc::{self, SendError, TryRecvError, TrySendError};
use aplex::time::timeout;

use crate::peer_common::{quiet_panics, ready, spawn, TestTask};

fn assert_send<T: Send>() {}

fn is_debug<T: fmt::Debug>(_: &T) {}

#[test]
fn halves_are_send() {
    // tokio: `impl AssertSend for mpsc::Sender<i32>` / `Receiver<i32>`
    assert_send::<mpsc::Sender<i32>>();
    assert_send::<mpsc::Receiver<i32>>();
}

#[test]
fn send_recv_with_buffer() {
    // tokio: send_recv_with_buffer
    aplex::block_on(async {
        let (tx, mut rx) = mpsc::channel::<i32>(16);
        let permit = tx.reserve().await.unwrap();
        permit.send(1).unwrap();
        tx.try_send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    });
}

#[test]
fn reserve_disarm() {
    // tokio: reserve_disarm
    let (tx, mut rx) = mpsc::channel::<i32>(2);
    let tx1 = tx.clone();
    let tx2 = tx.clone();
    let tx3 = tx.clone();
    let tx4 = tx;

    let permit1 = aplex::block_on(tx1.reserve()).unwrap();
    let permit2 = aplex::block_on(tx2.reserve()).unwrap();

    // A third is not ready, nor a fourth.
    let mut r3 = spawn(tx3.reserve());
    assert!(r3.poll().is_pending());
    let mut r4 = spawn(tx4.reserve());
    assert!(r4.poll().is_pending());

    // Sending with a permit does not free its slot: receiving does.
    permit1.send(1).unwrap();
    assert!(!r3.is_woken());
    assert_eq!(aplex::block_on(rx.recv()), Some(1));
    assert!(r3.is_woken());
    assert!(!r4.is_woken());

    // Dropping a permit frees its slot too.
    drop(permit2);
    assert!(r4.is_woken());

    let mut r1 = spawn(tx1.reserve());
    assert!(r1.poll().is_pending());
}

#[test]
fn async_send_recv_with_buffer() {
    // tokio: async_send_recv_with_buffer
    let (tx, mut rx) = mpsc::channel(16);
    let sender = std::thread::spawn(move || {
        aplex::block_on(async move {
            tx.send(1).await.unwrap();
            tx.send(2).await.unwrap();
        })
    });
    aplex::block_on(async {
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    });
    sender.join().unwrap();
}

#[test]
fn async_send_recv_many_with_buffer() {
    // tokio: async_send_recv_many_with_buffer
    let (tx, mut rx) = mpsc::channel(2);
    let sender = std::thread::spawn(move || {
        aplex::block_on(async move {
            tx.send(1).await.unwrap();
            tx.send(2).await.unwrap();
            tx.send(7).await.unwrap();
        })
    });
    aplex::block_on(async {
        let mut buffer = Vec::with_capacity(16);
        let mut recv_count = 0;
        while recv_count < 3 {
            let n = rx.recv_many(&mut buffer, 16).await;
            assert!(n > 0);
            recv_count += n;
        }
        assert_eq!(recv_count, 3);
        assert_eq!(buffer.iter().sum::<i32>(), 10);
        // tokio also asserts that this took more than one call; aplex hands a blocked
        // sender's value over as its slot frees, so one call may take all three.
        assert_eq!(rx.recv().await, None);
    });
    sender.join().unwrap();
}

#[test]
fn start_send_past_cap() {
    // tokio: start_send_past_cap
    let t1 = TestTask::new();
    let (tx1, mut rx) = mpsc::channel(1);
    let tx2 = tx1.clone();
    tx1.try_send(()).unwrap();

    let mut r1 = tx1.reserve();
    assert!(t1.poll(&mut r1).is_pending());
    {
        let mut r2 = spawn(tx2.reserve());
        assert!(r2.poll().is_pending());
        drop(r1);
        assert!(aplex::block_on(rx.recv()).is_some());
        assert!(r2.is_woken());
        assert!(!t1.is_woken());
    }
    drop(tx1);
    drop(tx2);
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
#[should_panic]
fn buffer_gteq_one() {
    // tokio: buffer_gteq_one
    quiet_panics();
    let _ = mpsc::channel::<i32>(0);
}

#[test]
fn send_recv_unbounded() {
    // tokio: send_recv_unbounded
    aplex::block_on(async {
        let (tx, mut rx) = mpsc::unbounded::<i32>();
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        assert!(rx.recv().await.is_none());
    });
}

#[test]
fn send_recv_many_unbounded() {
    // tokio: send_recv_many_unbounded
    aplex::block_on(async {
        let (tx, mut rx) = mpsc::unbounded::<i32>();
        for v in [7, 13, 100, 1002] {
            tx.try_send(v).unwrap();
        }
        let mut buffer = Vec::new();
        assert_eq!(rx.recv_many(&mut buffer, 16).await, 4);
        assert_eq!(buffer, [7, 13, 100, 1002]);
        drop(tx);
        assert!(rx.recv().await.is_none());
    });
}

#[test]
fn async_send_recv_unbounded() {
    // tokio: async_send_recv_unbounded
    let (tx, mut rx) = mpsc::unbounded();
    let sender = std::thread::spawn(move || {
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
    });
    aplex::block_on(async {
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    });
    sender.join().unwrap();
}

#[test]
fn recv_as_a_stream() {
    // tokio: send_recv_stream_with_buffer (through `poll_next`, the stream adapter's one line)
    let (tx, mut rx) = mpsc::channel(16);
    let sender = std::thread::spawn(move || {
        tx.send_blocking(1).unwrap();
        tx.send_blocking(2).unwrap();
    });
    aplex::block_on(async {
        for expected in [Some(1), Some(2), None] {
            assert_eq!(std::future::poll_fn(|cx| rx.poll_next(cx)).await, expected);
        }
    });
    sender.join().unwrap();
}

#[test]
fn no_t_bounds_buffer() {
    // tokio: no_t_bounds_buffer: Debug and Clone without them on T
    struct NoImpls;
    let (tx, mut rx) = mpsc::channel(100);
    is_debug(&tx);
    is_debug(&rx);
    assert!(tx.clone().try_send(NoImpls).is_ok());
    assert!(aplex::block_on(rx.recv()).is_some());
}

#[test]
fn no_t_bounds_unbounded() {
    // tokio: no_t_bounds_unbounded
    struct NoImpls;
    let (tx, mut rx) = mpsc::unbounded();
    is_debug(&tx);
    is_debug(&rx);
    assert!(tx.clone().try_send(NoImpls).is_ok());
    assert!(aplex::block_on(rx.recv()).is_some());
}

#[test]
fn send_recv_buffer_limited() {
    // tokio: send_recv_buffer_limited
    let (tx, mut rx) = mpsc::channel::<i32>(1);
    let p1 = aplex::block_on(tx.reserve()).unwrap();
    p1.send(1).unwrap();

    let mut p2 = spawn(tx.reserve());
    assert!(p2.poll().is_pending());

    assert!(aplex::block_on(rx.recv()).is_some());
    assert!(p2.is_woken());
    // The freed slot is promised to the waiting reserve.
    assert!(tx.try_send(1337).is_err());

    let permit = ready(p2.poll()).unwrap();
    permit.send(2).unwrap();
    assert!(aplex::block_on(rx.recv()).is_some());
}

#[test]
fn recv_close_gets_none_idle() {
    // tokio: recv_close_gets_none_idle
    let (tx, mut rx) = mpsc::channel::<i32>(10);
    rx.close();
    aplex::block_on(async {
        assert!(rx.recv().await.is_none());
        assert_eq!(tx.send(1).await, Err(SendError(1)));
    });
}

#[test]
fn recv_close_gets_none_reserved() {
    // tokio: recv_close_gets_none_reserved
    let (tx1, mut rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit1 = aplex::block_on(tx1.reserve()).unwrap();
    let mut permit2 = spawn(tx2.reserve());
    assert!(permit2.poll().is_pending());

    rx.close();
    assert!(permit2.is_woken());
    assert!(ready(permit2.poll()).is_err());
    {
        let mut recv = spawn(rx.recv());
        assert!(recv.poll().is_pending());
        permit1.send(123).unwrap();
        assert!(recv.is_woken());
        assert_eq!(ready(recv.poll()), Some(123));
    }
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
fn close_wakes_a_waiting_reserve_with_an_error() {
    // tokio: recv_close_gets_none_reserved, received without a waiting recv: a reserve waiting
    // for room is woken by the close and fails; the permit taken before it still delivers
    let (tx1, mut rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit1 = aplex::block_on(tx1.reserve()).unwrap();
    let mut permit2 = spawn(tx2.reserve());
    assert!(permit2.poll().is_pending());

    rx.close();
    assert!(permit2.is_woken());
    assert!(ready(permit2.poll()).is_err());
    assert_eq!(permit1.send(123), Ok(()));
    assert_eq!(aplex::block_on(rx.recv()), Some(123));
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
fn tx_close_gets_none() {
    // tokio: tx_close_gets_none
    let (_, mut rx) = mpsc::channel::<i32>(10);
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
fn try_send_fail() {
    // tokio: try_send_fail
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send("hello").unwrap();
    assert!(matches!(
        tx.try_send("fail"),
        Err(TrySendError::Full("fail"))
    ));
    assert_eq!(aplex::block_on(rx.recv()), Some("hello"));
    tx.try_send("goodbye").unwrap();
    drop(tx);
    assert_eq!(aplex::block_on(rx.recv()), Some("goodbye"));
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
fn try_send_fail_with_try_recv() {
    // tokio: try_send_fail_with_try_recv
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send("hello").unwrap();
    assert!(matches!(tx.try_send("fail"), Err(TrySendError::Full(_))));
    assert_eq!(rx.try_recv(), Ok("hello"));
    tx.try_send("goodbye").unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok("goodbye"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn drop_permit_releases_permit() {
    // tokio: drop_permit_releases_permit
    let (tx1, _rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit = aplex::block_on(tx1.reserve()).unwrap();
    let mut reserve2 = spawn(tx2.reserve());
    assert!(reserve2.poll().is_pending());
    drop(permit);
    assert!(reserve2.is_woken());
    assert!(ready(reserve2.poll()).is_ok());
}

#[test]
fn dropping_rx_closes_channel() {
    // tokio: dropping_rx_closes_channel: the buffered value is dropped with the receiver
    let (tx, rx) = mpsc::channel(100);
    let msg = Arc::new(());
    tx.try_send(Arc::clone(&msg)).unwrap();
    drop(rx);
    assert!(aplex::block_on(tx.reserve()).is_err());
    assert_eq!(Arc::strong_count(&msg), 1);
}

#[test]
fn dropping_rx_closes_channel_for_try() {
    // tokio: dropping_rx_closes_channel_for_try
    let (tx, rx) = mpsc::channel(100);
    let msg = Arc::new(());
    tx.try_send(Arc::clone(&msg)).unwrap();
    drop(rx);
    assert!(matches!(
        tx.try_send(Arc::clone(&msg)),
        Err(TrySendError::Closed(_))
    ));
    assert_eq!(Arc::strong_count(&msg), 1);
}

#[test]
fn unconsumed_messages_are_dropped() {
    // tokio: unconsumed_messages_are_dropped
    let msg = Arc::new(());
    let (tx, rx) = mpsc::channel(100);
    tx.try_send(Arc::clone(&msg)).unwrap();
    assert_eq!(Arc::strong_count(&msg), 2);
    drop((tx, rx));
    assert_eq!(Arc::strong_count(&msg), 1);
}

#[test]
fn blocking_recv() {
    // tokio: blocking_recv
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    let sync_code = std::thread::spawn(move || assert_eq!(rx.recv_blocking(), Some(10)));
    aplex::block_on(async move {
        let _ = tx.send(10).await;
    });
    sync_code.join().unwrap();
}

#[test]
fn blocking_send() {
    // tokio: blocking_send
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    let sync_code = std::thread::spawn(move || tx.send_blocking(10).unwrap());
    aplex::block_on(async move {
        assert_eq!(rx.recv().await, Some(10));
    });
    sync_code.join().unwrap();
}

#[test]
fn ready_close_cancel_bounded() {
    // tokio: ready_close_cancel_bounded (tokio's receiver waits for the outstanding permit)
    let (tx, mut rx) = mpsc::channel::<()>(100);
    let _tx2 = tx.clone();
    let permit = aplex::block_on(tx.reserve()).unwrap();
    rx.close();
    let mut recv = spawn(rx.recv());
    assert!(recv.poll().is_pending());
    drop(permit);
    assert!(recv.is_woken());
    assert!(ready(recv.poll()).is_none());
}

#[test]
fn permit_available_not_acquired_close() {
    // tokio: permit_available_not_acquired_close
    let (tx1, mut rx) = mpsc::channel::<()>(1);
    let tx2 = tx1.clone();
    let permit1 = aplex::block_on(tx1.reserve()).unwrap();
    let mut permit2 = spawn(tx2.reserve());
    assert!(permit2.poll().is_pending());
    rx.close();
    drop(permit1);
    assert!(permit2.is_woken());
    drop(permit2);
    assert!(aplex::block_on(rx.recv()).is_none());
}

#[test]
fn try_recv_bounded() {
    // tokio: try_recv_bounded
    let (tx, mut rx) = mpsc::channel(5);
    for _ in 0..5 {
        tx.try_send("hello").unwrap();
    }
    assert!(tx.try_send("hello").is_err());
    for _ in 0..5 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    for _ in 0..4 {
        tx.try_send("hello").unwrap();
    }
    assert_eq!(rx.try_recv(), Ok("hello"));
    tx.try_send("hello").unwrap();
    tx.try_send("hello").unwrap();
    assert!(tx.try_send("hello").is_err());
    for _ in 0..5 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    for _ in 0..3 {
        tx.try_send("hello").unwrap();
    }
    drop(tx);
    for _ in 0..3 {
        assert_eq!(rx.try_recv(), Ok("hello"));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn try_recv_unbounded() {
    // tokio: try_recv_unbounded
    for num in 0..100 {
        let (tx, mut rx) = mpsc::unbounded();
        for i in 0..num {
            tx.try_send(i).unwrap();
        }
        for i in 0..num {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

#[test]
fn try_recv_close_while_empty_bounded() {
    // tokio: try_recv_close_while_empty_bounded
    let (tx, mut rx) = mpsc::channel::<()>(5);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn try_recv_close_while_empty_unbounded() {
    // tokio: try_recv_close_while_empty_unbounded
    let (tx, mut rx) = mpsc::unbounded::<()>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn send_timeout() {
    // tokio: recv_timeout (tokio's `send_timeout(v, d)` is `timeout(d, tx.send(v))` here;
    // the sixth send waits for room nobody makes, so it must time out)
    let (tx, rx) = mpsc::channel(5);
    aplex::block_on(async {
        for v in [10, 20, 30, 40, 50] {
            assert_eq!(
                timeout(Duration::from_secs(1), tx.send(v)).await,
                Ok(Ok(()))
            );
        }
        assert!(timeout(Duration::from_millis(20), tx.send(60))
            .await
            .is_err());
        drop(rx);
        assert_eq!(
            timeout(Duration::from_secs(1), tx.send(70)).await,
            Ok(Err(SendError(70)))
        );
    });
}

#[test]
fn cancelled_send_keeps_no_value() {
    // tokio: recv_timeout, the cancel side: a send that timed out left nothing in the channel
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let mut send = spawn(tx.send(2));
    assert!(send.poll().is_pending());
    drop(send);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}
