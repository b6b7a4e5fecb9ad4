//! The oneshot channel: send, receive, close, drop on either side.

use super::*;

#[test]
fn oneshot_send_then_recv() {
    let (tx, rx) = oneshot::channel();
    tx.send(String::from("hello")).unwrap();
    assert_eq!(block_on(rx), Ok(String::from("hello")));
}

#[test]
fn oneshot_recv_then_send_from_other_thread() {
    let (tx, rx) = oneshot::channel();
    let sender = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        tx.send(7u32)
    });
    assert_eq!(block_on(rx), Ok(7));
    assert_eq!(sender.join(), Ok(()));
}

#[test]
fn oneshot_sender_dropped_then_recv_error() {
    let (tx, rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(rx.recv_blocking(), Err(oneshot::RecvError));

    let (tx, mut rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
}

#[test]
fn oneshot_pending_receiver_woken_when_sender_dropped() {
    let (tx, rx) = oneshot::channel::<u8>();
    let receiver = spawn_job(move || block_on(rx));
    receiver.assert_blocked();
    drop(tx);
    assert_eq!(receiver.join(), Err(oneshot::RecvError));
}

#[test]
fn oneshot_receiver_dropped_then_send_returns_value() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![1, 2]), Err(vec![1, 2]));
}

#[test]
fn oneshot_closed_resolves_when_receiver_dropped_on_other_thread() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let (counter, waker) = counting_waker();
    {
        let mut closed = tx.closed();
        assert!(poll_once(&mut closed, &waker).is_pending());
    }
    let dropper = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        drop(rx);
    });
    block_on(tx.closed());
    dropper.join();
    assert_eq!(
        counter.wakes(),
        0,
        "a dropped closed() future must not be woken"
    );
    assert_eq!(tx.send(1), Err(1));
}

#[test]
fn oneshot_receiver_dropped_drops_sent_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    tx.send(DropCounter(Arc::clone(&drops))).ok().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn oneshot_receiver_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = oneshot::channel();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    assert!(poll_once(&mut rx, &first_waker).is_pending());
    assert!(poll_once(&mut rx, &second_waker).is_pending());
    tx.send(1).unwrap();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut rx, &second_waker), Poll::Ready(Ok(1)));
    assert_eq!(
        poll_once(&mut rx, &second_waker),
        Poll::Ready(Err(oneshot::RecvError))
    );
}

#[test]
fn oneshot_recv_timeout_times_out_then_receives() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(oneshot::RecvTimeoutError::Timeout)
    );
    tx.send(3).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(3));
}

#[test]
fn oneshot_close_wakes_a_pending_closed_then_send_gives_the_value_back() {
    let (mut tx, mut rx) = oneshot::channel::<String>();
    let (counter, waker) = counting_waker();
    {
        let mut closed = tx.closed();
        assert!(poll_once(&mut closed, &waker).is_pending());
        rx.close();
        assert_eq!(counter.wakes(), 1);
        assert_eq!(poll_once(&mut closed, &waker), Poll::Ready(()));
    }
    assert!(tx.is_closed());
    assert_eq!(tx.send("late".to_string()), Err("late".to_string()));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert_eq!(block_on(rx), Err(oneshot::RecvError));
}

#[test]
fn oneshot_close_after_send_keeps_the_value_receivable() {
    let (tx, mut rx) = oneshot::channel();
    tx.send(5).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
}

#[test]
fn oneshot_try_recv_empty_then_value() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    spawn_job(move || tx.send(9).unwrap()).join();
    assert_eq!(rx.try_recv(), Ok(9));
}
