//! The mpsc channel: bounded and unbounded, blocking and async, reserve, recv_many, close.

use super::*;

#[test]
fn mpsc_full_channel_blocks_sender_until_recv() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Full(3)));

    let blocked = spawn_job(move || tx.send_blocking(3));
    blocked.assert_blocked();
    assert_eq!(rx.len(), 2);

    assert_eq!(rx.recv_blocking(), Some(1));
    assert_eq!(blocked.join(), Ok(()));
    assert_eq!(rx.recv_blocking(), Some(2));
    assert_eq!(rx.recv_blocking(), Some(3));
    assert_eq!(rx.recv_blocking(), None);
}

#[test]
fn mpsc_four_senders_ten_thousand_each_arrive_in_order_per_sender() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = stress(10_000);
    let (tx, rx) = mpsc::channel(16);
    for id in 0..SENDERS {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..PER_SENDER {
                // Half the senders use the async side, half the blocking side.
                if id % 2 == 0 {
                    tx.send_blocking((id, i)).unwrap();
                } else {
                    block_on(tx.send((id, i))).unwrap();
                }
            }
        });
    }
    drop(tx);
    let consumer = spawn_job(move || {
        let mut next = [0; SENDERS];
        for (id, i) in rx {
            assert_eq!(i, next[id], "sender {id} out of order");
            next[id] += 1;
        }
        next
    });
    assert_eq!(consumer.join(), [PER_SENDER; SENDERS]);
}

#[test]
fn mpsc_receiver_dropped_then_sends_return_the_value() {
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Closed(1)));
    assert_eq!(tx.send_blocking(2), Err(mpsc::SendError(2)));
    assert_eq!(block_on(tx.send(3)), Err(mpsc::SendError(3)));
}

#[test]
fn mpsc_receiver_dropped_wakes_blocked_sender_with_its_value() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send("first").unwrap();
    let blocked = spawn_job(move || tx.send_blocking("second"));
    blocked.assert_blocked();
    drop(rx);
    assert_eq!(blocked.join(), Err(mpsc::SendError("second")));
}

#[test]
fn mpsc_last_sender_dropped_then_recv_drains_buffer_then_none() {
    let (tx, mut rx) = mpsc::channel(4);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx2);
    assert_eq!(block_on(rx.recv()), Some(2));
    assert_eq!(block_on(rx.recv()), None);
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Closed));
}

#[test]
fn mpsc_last_sender_dropped_wakes_blocked_receiver() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let tx2 = tx.clone();
    let blocked = spawn_job(move || rx.recv_blocking());
    blocked.assert_blocked();
    drop(tx);
    blocked.assert_blocked(); // one sender is still alive
    drop(tx2);
    assert_eq!(blocked.join(), None);
}

#[test]
fn mpsc_receiver_iterator_ends_when_senders_drop() {
    let (tx, rx) = mpsc::channel(3);
    let producer = spawn_job(move || {
        for i in 0..100 {
            tx.send_blocking(i).unwrap();
        }
    });
    let got: Vec<i32> = rx.collect();
    producer.join();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn mpsc_unbounded_accepts_everything_without_waiting() {
    let (tx, rx) = mpsc::unbounded();
    assert_eq!(rx.capacity(), None);
    const N: usize = stress(10_000);
    for i in 0..N {
        tx.try_send(i).unwrap();
    }
    block_on(tx.send(N)).unwrap();
    tx.send_blocking(N + 1).unwrap();
    assert_eq!(rx.len(), N + 2);
    drop(tx);
    assert!((0..N + 2).eq(rx));
}

#[test]
fn mpsc_pending_send_dropped_before_room_is_not_delivered() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (_, waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &waker).is_pending());
    drop(send);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_pending_send_moved_in_by_recv_then_dropped_is_delivered_once() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // frees the slot: value 2 moves in, sender woken
    assert_eq!(counter.wakes(), 1);
    drop(send); // never polled to completion, yet the value was delivered
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
}

#[test]
fn mpsc_blocked_senders_resume_in_fifo_order() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let (counter, waker) = counting_waker();
    let mut sends: Vec<_> = (1..=3).map(|i| tx.send(i)).collect();
    for send in &mut sends {
        assert!(poll_once(send, &waker).is_pending());
    }
    // A late try_send must not jump the queue.
    assert_eq!(tx.try_send(99), Err(mpsc::TrySendError::Full(99)));
    for expected in 0..=3 {
        assert_eq!(rx.try_recv(), Ok(expected));
    }
    assert_eq!(counter.wakes(), 3);
    for send in &mut sends {
        assert_eq!(poll_once(send, &waker), Poll::Ready(Ok(())));
    }
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn mpsc_zero_capacity_panics() {
    expect_panics(&["mpsc::channel: capacity must be at least 1"]);
    let _ = mpsc::channel::<u8>(0);
}

#[test]
fn mpsc_pending_recv_dropped_then_send_loses_nothing() {
    let (tx, mut rx) = mpsc::channel(1);
    let (counter, waker) = counting_waker();
    let mut recv = rx.recv();
    assert!(poll_once(&mut recv, &waker).is_pending());
    drop(recv);
    tx.try_send(7).unwrap();
    assert_eq!(
        counter.wakes(),
        0,
        "a dropped recv future must not be woken"
    );
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn mpsc_close_then_blocked_sender_gets_value_back_and_buffer_drains() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let blocked = spawn_job({
        let tx = tx.clone();
        move || tx.send_blocking(2)
    });
    blocked.assert_blocked();
    rx.close();
    assert_eq!(blocked.join(), Err(mpsc::SendError(2)));
    assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Closed(3)));
    assert_eq!(rx.recv_blocking(), Some(1));
    assert_eq!(rx.recv_blocking(), None); // a sender is alive, but the channel is closed
}

#[test]
fn mpsc_recv_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = mpsc::channel(1);
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut recv = rx.recv();
    assert!(poll_once(&mut recv, &first_waker).is_pending());
    assert!(poll_once(&mut recv, &second_waker).is_pending());
    tx.try_send(5).unwrap();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut recv, &second_waker), Poll::Ready(Some(5)));
}

#[test]
fn mpsc_send_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &first_waker).is_pending());
    assert!(poll_once(&mut send, &second_waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut send, &second_waker), Poll::Ready(Ok(())));
}

#[test]
fn mpsc_receiver_dropped_drops_buffered_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded();
    for _ in 0..3 {
        tx.try_send(DropCounter(Arc::clone(&drops))).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn mpsc_recv_timeout_times_out_then_receives() {
    let (tx, mut rx) = mpsc::channel(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(mpsc::RecvTimeoutError::Timeout)
    );
    let _sender = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        tx.send_blocking(8).unwrap();
    });
    assert_eq!(rx.recv_timeout(BOUND), Ok(8));
    assert_eq!(rx.recv_timeout(BOUND), Err(mpsc::RecvTimeoutError::Closed));
}

#[test]
fn mpsc_poll_next_pending_then_woken_by_send_then_none_after_last_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    let (counter, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(rx.poll_next(&mut cx).is_pending());
    tx.try_send(3).unwrap();
    assert_eq!(counter.wakes(), 1);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(3)));
    assert!(rx.poll_recv(&mut cx).is_pending());
    drop(tx);
    assert_eq!(counter.wakes(), 2);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(None));
}

#[test]
fn mpsc_poll_next_frees_a_slot_for_a_blocked_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let blocked = spawn_job({
        let tx = tx.clone();
        move || tx.send_blocking(2)
    });
    blocked.assert_blocked();
    let (_counter, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(1)));
    assert_eq!(blocked.join(), Ok(()));
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(2)));
}

#[test]
fn mpsc_reserve_takes_the_slot_until_the_permit_sends() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = block_on(tx.reserve()).unwrap();
    assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Full(1)));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    permit.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_permit_dropped_unused_hands_the_slot_to_the_blocked_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = block_on(tx.reserve()).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.send(7);
    assert!(poll_once(&mut blocked, &waker).is_pending());
    drop(permit);
    assert_eq!(counter.wakes(), 1);
    assert_eq!(rx.try_recv(), Ok(7)); // moved in by the permit's drop
    assert_eq!(poll_once(&mut blocked, &waker), Poll::Ready(Ok(())));
}

#[test]
fn mpsc_reserve_waits_in_line_and_is_served_by_recv() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut reserve = tx.reserve();
    assert!(poll_once(&mut reserve, &waker).is_pending());
    // A later send waits behind the reserve: the freed slot is the reserve's.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(counter.wakes(), 1);
    assert_eq!(tx.try_send(2), Err(mpsc::TrySendError::Full(2)));
    let Poll::Ready(Ok(permit)) = poll_once(&mut reserve, &waker) else {
        panic!("a served reserve must be ready");
    };
    permit.send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_served_reserve_dropped_unpolled_gives_the_slot_back() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (_counter, waker) = counting_waker();
    let mut reserve = tx.reserve();
    assert!(poll_once(&mut reserve, &waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // the slot is handed to the reserve
    drop(reserve);
    assert_eq!(tx.try_send(2), Ok(()));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn mpsc_reserve_on_a_closed_channel_fails_and_a_blocked_reserve_is_released() {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.reserve();
    assert!(poll_once(&mut blocked, &waker).is_pending());
    rx.close();
    assert_eq!(counter.wakes(), 1);
    assert!(matches!(
        poll_once(&mut blocked, &waker),
        Poll::Ready(Err(mpsc::SendError(())))
    ));
    assert!(block_on(tx.reserve()).is_err());
    assert_eq!(rx.try_recv(), Ok(1)); // the buffered value is still there
}

#[test]
fn mpsc_unbounded_reserve_is_always_ready() {
    let (tx, mut rx) = mpsc::unbounded();
    let permits: Vec<_> = (0..100).map(|_| block_on(tx.reserve()).unwrap()).collect();
    for (i, permit) in permits.into_iter().enumerate() {
        permit.send(i).unwrap();
    }
    assert_eq!(rx.len(), 100);
    assert_eq!(rx.try_recv(), Ok(0));
}

#[test]
fn mpsc_recv_many_waits_for_one_then_takes_up_to_limit() {
    let (tx, mut rx) = mpsc::channel(4);
    let mut buf = vec![100];
    let (counter, waker) = counting_waker();
    {
        let mut many = std::pin::pin!(rx.recv_many(&mut buf, 3));
        assert!(many
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        for i in 0..4 {
            tx.try_send(i).unwrap();
        }
        assert!(counter.wakes() >= 1);
        assert_eq!(
            many.as_mut().poll(&mut Context::from_waker(&waker)),
            Poll::Ready(3)
        );
    }
    assert_eq!(buf, [100, 0, 1, 2]);
    assert_eq!(block_on(rx.recv_many(&mut buf, 0)), 0);
    drop(tx);
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 1);
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 0);
    assert_eq!(buf, [100, 0, 1, 2, 3]);
}

#[test]
fn mpsc_recv_many_serves_blocked_senders_in_order() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(0).unwrap();
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.send(2);
    assert!(poll_once(&mut blocked, &waker).is_pending());
    let mut buf = Vec::new();
    // Taking both buffered values moves the blocked value in, which is taken too.
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 3);
    assert_eq!(counter.wakes(), 1);
    assert_eq!(poll_once(&mut blocked, &waker), Poll::Ready(Ok(())));
    assert_eq!(buf, [0, 1, 2]);
}

#[test]
fn mpsc_sender_sees_capacity_and_close() {
    let (tx, mut rx) = mpsc::channel::<u8>(5);
    assert_eq!(tx.capacity(), Some(5));
    assert_eq!(mpsc::unbounded::<u8>().0.capacity(), None);
    assert!(!tx.is_closed());
    rx.close();
    assert!(tx.is_closed());
}
