//! Channels, oneshot, Semaphore and Event at their seams: cancelled waits, dropped halves,
//! wakers changed between polls, and the capacity and permit accounting behind them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use aplex::sync::mpsc::{self, SendError, TryRecvError, TrySendError};
use aplex::sync::{oneshot, AcquireError, Event, Semaphore};

use crate::{case, poll_with, within, Case, CountingWaker, DropCount};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "mpsc_sender_waiting_for_room_gets_its_value_back_when_the_receiver_drops",
            mpsc_sender_waiting_for_room_gets_its_value_back_when_the_receiver_drops,
        ),
        case(
            "mpsc_served_reserve_dropped_unpolled_hands_its_slot_to_the_next_sender",
            mpsc_served_reserve_dropped_unpolled_hands_its_slot_to_the_next_sender,
        ),
        case(
            "mpsc_permits_count_against_capacity_until_used_or_dropped",
            mpsc_permits_count_against_capacity_until_used_or_dropped,
        ),
        case(
            "mpsc_close_with_values_in_flight_delivers_the_buffer_and_returns_the_blocked",
            mpsc_close_with_values_in_flight_delivers_the_buffer_and_returns_the_blocked,
        ),
        case(
            "mpsc_recv_many_respects_its_limit_and_zero",
            mpsc_recv_many_respects_its_limit_and_zero,
        ),
        case(
            "mpsc_last_sender_dropped_wakes_a_receiver_on_a_foreign_waker",
            mpsc_last_sender_dropped_wakes_a_receiver_on_a_foreign_waker,
        ),
        case(
            "mpsc_cancelled_sends_drop_their_values_exactly_once",
            mpsc_cancelled_sends_drop_their_values_exactly_once,
        ),
        case(
            "mpsc_recv_rewoken_on_the_latest_waker",
            mpsc_recv_rewoken_on_the_latest_waker,
        ),
        case(
            "mpsc_receiver_drop_drops_the_buffer",
            mpsc_receiver_drop_drops_the_buffer,
        ),
        case(
            "mpsc_permit_send_after_close_is_still_received",
            mpsc_permit_send_after_close_is_still_received,
        ),
        case(
            "mpsc_many_threads_bounded_one_loses_nothing",
            mpsc_many_threads_bounded_one_loses_nothing,
        ),
        case(
            "oneshot_states_drop_close_try_recv",
            oneshot_states_drop_close_try_recv,
        ),
        case(
            "oneshot_send_wakes_the_latest_waker",
            oneshot_send_wakes_the_latest_waker,
        ),
        case(
            "oneshot_closed_future_resolves_when_the_receiver_drops_on_another_thread",
            oneshot_closed_future_resolves_when_the_receiver_drops_on_another_thread,
        ),
        case(
            "semaphore_acquire_more_than_total_waits_for_add_permits",
            semaphore_acquire_more_than_total_waits_for_add_permits,
        ),
        case(
            "semaphore_cancelled_head_wakes_the_next_waiter",
            semaphore_cancelled_head_wakes_the_next_waiter,
        ),
        case(
            "semaphore_granted_then_dropped_acquire_passes_its_permits_on",
            semaphore_granted_then_dropped_acquire_passes_its_permits_on,
        ),
        case(
            "semaphore_close_fails_waiters_and_keeps_guards",
            semaphore_close_fails_waiters_and_keeps_guards,
        ),
        case(
            "semaphore_forget_permits_takes_only_free_ones",
            semaphore_forget_permits_takes_only_free_ones,
        ),
        case(
            "semaphore_guard_drop_never_panics_at_the_permit_ceiling",
            semaphore_guard_drop_never_panics_at_the_permit_ceiling,
        ),
        case(
            "semaphore_survives_an_overflowing_add_permits",
            semaphore_survives_an_overflowing_add_permits,
        ),
        case(
            "semaphore_cancel_race_loses_no_permit",
            semaphore_cancel_race_loses_no_permit,
        ),
        case(
            "event_waiter_released_by_set_survives_a_clear",
            event_waiter_released_by_set_survives_a_clear,
        ),
    ]
}

fn mpsc_sender_waiting_for_room_gets_its_value_back_when_the_receiver_drops() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = CountingWaker::new();
    let mut send = tx.send(2);
    assert!(poll_with(&mut send, &waker).is_pending());
    let mut reserve = tx.reserve();
    assert!(poll_with(&mut reserve, &waker).is_pending());
    drop(rx);
    assert!(counter.count() >= 2, "both waiting senders are woken");
    assert_eq!(poll_with(&mut send, &waker), Poll::Ready(Err(SendError(2))));
    assert!(matches!(
        poll_with(&mut reserve, &waker),
        Poll::Ready(Err(SendError(())))
    ));
    // And from a blocked thread.
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        tx.send_blocking(7)
    });
    started_rx.recv().unwrap();
    drop(rx);
    let got = within("send_blocking after the receiver dropped", move || {
        sender.join().unwrap()
    });
    assert_eq!(got, Err(SendError(7)));
}

fn mpsc_served_reserve_dropped_unpolled_hands_its_slot_to_the_next_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let (a_counter, a_waker) = CountingWaker::new();
    let (b_counter, b_waker) = CountingWaker::new();
    let mut reserve = tx.reserve();
    assert!(poll_with(&mut reserve, &a_waker).is_pending());
    let mut send = tx.send(5);
    assert!(poll_with(&mut send, &b_waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // frees the slot: it goes to the reserve
    assert_eq!(a_counter.count(), 1);
    assert_eq!(b_counter.count(), 0);
    drop(reserve); // served, never polled: the slot passes on to the send
    assert_eq!(b_counter.count(), 1, "the next sender is woken");
    assert_eq!(poll_with(&mut send, &b_waker), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.try_send(6).unwrap(); // and the capacity is whole again
}

fn mpsc_permits_count_against_capacity_until_used_or_dropped() {
    let (tx, mut rx) = mpsc::channel(2);
    let (p1, p2) =
        aplex::block_on(async { (tx.reserve().await.unwrap(), tx.reserve().await.unwrap()) });
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    drop(p1);
    assert_eq!(tx.try_send(1), Ok(()));
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    p2.send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(3));
    tx.try_send(4).unwrap();
    tx.try_send(5).unwrap();
    assert_eq!(tx.try_send(6), Err(TrySendError::Full(6)));
}

fn mpsc_close_with_values_in_flight_delivers_the_buffer_and_returns_the_blocked() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let (_counter, waker) = CountingWaker::new();
    let mut blocked = tx.send(3);
    assert!(poll_with(&mut blocked, &waker).is_pending());
    rx.close();
    assert_eq!(
        poll_with(&mut blocked, &waker),
        Poll::Ready(Err(SendError(3)))
    );
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
    assert_eq!(rx.try_recv(), Ok(1));
    // Receiving after close frees a slot, which must not go to anyone.
    assert_eq!(rx.recv_blocking(), Some(2));
    assert_eq!(rx.recv_blocking(), None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

fn mpsc_recv_many_respects_its_limit_and_zero() {
    let (tx, mut rx) = mpsc::channel(3);
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    // Three more wait for room; recv_many serves them as it frees slots.
    let extra: Vec<_> = (3..6)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send_blocking(i))
        })
        .collect();
    crate::eventually("three senders blocked", || {
        format!("{rx:?}").contains("blocked_senders: 3")
    });
    let mut buf = Vec::new();
    aplex::block_on(async {
        assert_eq!(rx.recv_many(&mut buf, 0).await, 0);
        assert!(buf.is_empty());
        assert_eq!(rx.recv_many(&mut buf, 2).await, 2);
        assert_eq!(buf.len(), 2);
    });
    drop(tx);
    // The two served senders' values came in behind 2; the third moves in as this frees room.
    let (mut rx, mut buf) = within("draining the rest", move || {
        aplex::block_on(async { while rx.recv_many(&mut buf, 100).await > 0 {} });
        (rx, buf)
    });
    for t in extra {
        within("a blocked sender", move || t.join().unwrap()).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    buf[2..].sort();
    assert_eq!(buf, [0, 1, 2, 3, 4, 5]);
}

fn mpsc_last_sender_dropped_wakes_a_receiver_on_a_foreign_waker() {
    let (tx, mut rx) = mpsc::unbounded::<u8>();
    let tx2 = tx.clone();
    let (counter, waker) = CountingWaker::new();
    {
        let mut recv = rx.recv();
        assert!(poll_with(&mut recv, &waker).is_pending());
        drop(tx);
        assert_eq!(counter.count(), 0, "a sender remains");
        std::thread::spawn(move || drop(tx2)).join().unwrap();
        assert_eq!(counter.count(), 1);
        assert_eq!(poll_with(&mut recv, &waker), Poll::Ready(None));
    }
}

fn mpsc_cancelled_sends_drop_their_values_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(DropCount(drops.clone())).unwrap();
    let (_c, waker) = CountingWaker::new();
    let mut cancelled = tx.send(DropCount(drops.clone()));
    assert!(poll_with(&mut cancelled, &waker).is_pending());
    let mut served = tx.send(DropCount(drops.clone()));
    assert!(poll_with(&mut served, &waker).is_pending());
    drop(cancelled); // still blocked: its value is dropped, never delivered
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(rx.try_recv().unwrap()); // frees a slot: the second send's value moves in
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(served); // served before its drop: delivered, not dropped
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(rx.try_recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert!(rx.try_recv().is_err());
}

fn mpsc_recv_rewoken_on_the_latest_waker() {
    let (tx, mut rx) = mpsc::channel(4);
    let (a, a_waker) = CountingWaker::new();
    let (b, b_waker) = CountingWaker::new();
    let mut recv = rx.recv();
    assert!(poll_with(&mut recv, &a_waker).is_pending());
    assert!(poll_with(&mut recv, &b_waker).is_pending());
    std::thread::spawn(move || tx.send_blocking(1).unwrap())
        .join()
        .unwrap();
    assert_eq!((a.count(), b.count()), (0, 1));
    assert_eq!(poll_with(&mut recv, &b_waker), Poll::Ready(Some(1)));
}

fn mpsc_receiver_drop_drops_the_buffer() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded();
    for _ in 0..5 {
        tx.try_send(DropCount(drops.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    let back = tx.try_send(DropCount(drops.clone()));
    assert!(matches!(back, Err(TrySendError::Closed(_))));
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

fn mpsc_permit_send_after_close_is_still_received() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = aplex::block_on(tx.reserve()).unwrap();
    rx.close();
    assert_eq!(permit.send(1), Ok(()));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

fn mpsc_many_threads_bounded_one_loses_nothing() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    if i % 3 == 0 {
                        aplex::block_on(async {
                            let permit = tx.reserve().await.unwrap();
                            permit.send(p * 1000 + i).unwrap();
                        });
                    } else {
                        tx.send_blocking(p * 1000 + i).unwrap();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut got = within("1000 values through a channel of one", move || {
        rx.collect::<Vec<_>>()
    });
    for p in producers {
        p.join().unwrap();
    }
    got.sort();
    let want: Vec<u32> = (0..4)
        .flat_map(|p| (0..250).map(move |i| p * 1000 + i))
        .collect();
    assert_eq!(got, want);
}

fn oneshot_states_drop_close_try_recv() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert_eq!(aplex::block_on(rx), Err(oneshot::RecvError));

    let (tx, mut rx) = oneshot::channel::<u8>();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.send(3), Err(3));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));

    let (tx, mut rx) = oneshot::channel::<u8>();
    tx.send(4).unwrap();
    rx.close(); // too late: the value is still receivable
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));

    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    tx.send(DropCount(drops.clone())).map_err(drop).unwrap();
    drop(rx);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "a sent, unreceived value is dropped"
    );
}

fn oneshot_send_wakes_the_latest_waker() {
    let (tx, mut rx) = oneshot::channel();
    let (a, a_waker) = CountingWaker::new();
    let (b, b_waker) = CountingWaker::new();
    assert!(poll_with(&mut rx, &a_waker).is_pending());
    assert!(poll_with(&mut rx, &b_waker).is_pending());
    std::thread::spawn(move || tx.send(9).unwrap())
        .join()
        .unwrap();
    assert_eq!((a.count(), b.count()), (0, 1));
    assert_eq!(poll_with(&mut rx, &a_waker), Poll::Ready(Ok(9)));
}

fn oneshot_closed_future_resolves_when_the_receiver_drops_on_another_thread() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let dropper = std::thread::spawn(move || drop(rx));
    within("Sender::closed", move || {
        aplex::block_on(tx.closed());
        assert!(tx.is_closed());
    });
    dropper.join().unwrap();
}

fn semaphore_acquire_more_than_total_waits_for_add_permits() {
    let sem = Arc::new(Semaphore::new(2));
    let (counter, waker) = CountingWaker::new();
    let mut big = sem.acquire_many_arc(5);
    assert!(poll_with(&mut big, &waker).is_pending());
    // FIFO: a small acquire waits behind the big one even though permits are free.
    assert!(sem.try_acquire().is_none());
    sem.add_permits(2);
    assert_eq!(counter.count(), 0);
    sem.add_permits(1);
    assert_eq!(counter.count(), 1);
    let Poll::Ready(guard) = poll_with(&mut big, &waker) else {
        panic!("granted, yet pending");
    };
    assert_eq!((guard.permits(), sem.available_permits()), (5, 0));
    drop(guard);
    assert_eq!(sem.available_permits(), 5);
}

fn semaphore_cancelled_head_wakes_the_next_waiter() {
    // One free permit; the head wants two, the next wants one.
    let sem = Semaphore::new(3);
    let held = sem.try_acquire_many(2).unwrap();
    let (a, a_waker) = CountingWaker::new();
    let (b, b_waker) = CountingWaker::new();
    let mut head = sem.acquire_many(2);
    assert!(poll_with(&mut head, &a_waker).is_pending());
    let mut next = sem.acquire();
    assert!(poll_with(&mut next, &b_waker).is_pending());
    drop(head); // the free permit now fits the next waiter: it must be woken
    assert_eq!(a.count(), 0);
    assert_eq!(
        b.count(),
        1,
        "lost wake-up: the waiter behind a cancelled head"
    );
    let Poll::Ready(guard) = poll_with(&mut next, &b_waker) else {
        panic!("woken but not granted");
    };
    assert_eq!(sem.available_permits(), 0);
    drop((guard, held));
    assert_eq!(sem.available_permits(), 3);
}

fn semaphore_granted_then_dropped_acquire_passes_its_permits_on() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire_many(2).unwrap();
    let (a, a_waker) = CountingWaker::new();
    let (b, b_waker) = CountingWaker::new();
    let mut first = sem.acquire_many(2);
    assert!(poll_with(&mut first, &a_waker).is_pending());
    let mut second = sem.checked_acquire();
    assert!(poll_with(&mut second, &b_waker).is_pending());
    drop(held); // grants both permits to `first`
    assert_eq!((a.count(), b.count()), (1, 0));
    assert_eq!(sem.available_permits(), 0);
    drop(first); // granted, never polled: its permits go back and on to `second`
    assert_eq!(b.count(), 1);
    let Poll::Ready(Ok(guard)) = poll_with(&mut second, &b_waker) else {
        panic!("second not granted");
    };
    assert_eq!(sem.available_permits(), 1);
    drop(guard);
    assert_eq!(sem.available_permits(), 2);
}

fn semaphore_close_fails_waiters_and_keeps_guards() {
    let sem = Arc::new(Semaphore::new(1));
    let guard = sem.try_acquire_arc().unwrap();
    let waiter = {
        let sem = Arc::clone(&sem);
        std::thread::spawn(move || {
            aplex::block_on(sem.checked_acquire_many(1)).map(|g| g.permits())
        })
    };
    crate::eventually("a waiter", || format!("{sem:?}").contains("waiters: 1"));
    sem.close();
    assert_eq!(
        within("a waiter on close", move || waiter.join().unwrap()),
        Err(AcquireError)
    );
    drop(guard);
    assert_eq!(sem.available_permits(), 1, "a guard gives back after close");
    assert!(sem.try_acquire().is_none());
    assert_eq!(
        aplex::block_on(sem.checked_acquire()).map(|g| g.permits()),
        Err(AcquireError)
    );
    // The documented panic of the guard-returning forms.
    let panicked = std::panic::catch_unwind(|| drop(sem.acquire_blocking()));
    assert!(panicked.is_err());
}

fn semaphore_forget_permits_takes_only_free_ones() {
    let sem = Semaphore::new(3);
    let g = sem.try_acquire_many(2).unwrap();
    assert_eq!(sem.forget_permits(usize::MAX), 1);
    assert_eq!(sem.available_permits(), 0);
    drop(g);
    assert_eq!(sem.available_permits(), 2);
}

fn semaphore_guard_drop_never_panics_at_the_permit_ceiling() {
    // add_permits is documented to panic on overflow; a guard giving its permits back is not:
    // a panic in a drop aborts if the thread is already unwinding.
    let sem = Semaphore::new(usize::MAX);
    let guard = sem.try_acquire().unwrap();
    sem.add_permits(1); // the free count is usize::MAX again: allowed
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    assert!(dropped.is_ok(), "a guard's drop panicked");
    assert_eq!(sem.available_permits(), usize::MAX);
}

fn semaphore_survives_an_overflowing_add_permits() {
    let sem = Semaphore::new(usize::MAX - 1);
    let panicked = std::panic::catch_unwind(|| sem.add_permits(2));
    assert!(
        panicked.is_err(),
        "documented: add_permits panics on overflow"
    );
    assert_eq!(sem.available_permits(), usize::MAX - 1);
    let g = sem.try_acquire_many(5).unwrap();
    drop(g);
    assert_eq!(sem.available_permits(), usize::MAX - 1);
}

fn semaphore_cancel_race_loses_no_permit() {
    // Acquires cancelled (dropped) from one thread while guards are dropped on others: at the
    // end every permit is back.
    let sem = Arc::new(Semaphore::new(3));
    let rounds = if cfg!(miri) { 10 } else { 2000 };
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || {
                let (_c, waker) = CountingWaker::new();
                for i in 0..rounds {
                    let mut fut = sem.acquire_many_arc(1 + (i + t) % 3);
                    match poll_with(&mut fut, &waker) {
                        Poll::Ready(guard) => drop(guard),
                        Poll::Pending => {
                            std::thread::yield_now();
                            drop(fut) // cancelled, maybe after a grant
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        within("the cancel race", move || t.join().unwrap());
    }
    assert_eq!(sem.available_permits(), 3);
    assert!(format!("{sem:?}").contains("waiters: 0"));
}

fn event_waiter_released_by_set_survives_a_clear() {
    let event = Event::new();
    let (counter, waker) = CountingWaker::new();
    let mut wait = event.wait();
    assert!(poll_with(&mut wait, &waker).is_pending());
    event.set();
    event.clear();
    assert_eq!(counter.count(), 1);
    assert_eq!(poll_with(&mut wait, &waker), Poll::Ready(()));
    assert!(!event.wait_timeout(std::time::Duration::from_millis(1)));
    assert!(!event.wait_timeout(std::time::Duration::ZERO));
}
