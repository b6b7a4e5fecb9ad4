//! The semaphore: fairness, cancelled waiters, close, forgetting and adding permits.

use super::*;

#[test]
fn semaphore_two_tasks_wanting_three_of_four_both_finish_repeatedly() {
    const ROUNDS: usize = stress(500);
    let sem = Arc::new(Semaphore::new(4));
    let in_use = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let sem = Arc::clone(&sem);
            let in_use = Arc::clone(&in_use);
            spawn_job(move || {
                for _ in 0..ROUNDS {
                    // One side awaits an owned guard, the other blocks for a borrowed one.
                    if id == 0 {
                        let _guard = block_on(sem.acquire_many_arc(3));
                        hold_three(&in_use);
                    } else {
                        let _guard = sem.acquire_many_blocking(3);
                        hold_three(&in_use);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join();
    }
    assert_eq!(sem.available_permits(), 4);
}

/// Checks that nobody else holds 3 permits while we do.
fn hold_three(in_use: &AtomicUsize) {
    assert_eq!(in_use.fetch_add(3, Ordering::SeqCst), 0);
    thread::yield_now();
    in_use.fetch_sub(3, Ordering::SeqCst);
}

#[test]
fn semaphore_head_waiter_for_three_not_starved_by_later_waiters_for_one() {
    let sem = Semaphore::new(3);
    let held = sem.acquire_many_blocking(2); // 1 free
    let (big_counter, big_waker) = counting_waker();
    let (small_counter, small_waker) = counting_waker();

    let mut big = sem.acquire_many(3);
    assert!(poll_once(&mut big, &big_waker).is_pending());
    // One permit is free, but the big waiter is queued first.
    let mut small = sem.acquire();
    assert!(poll_once(&mut small, &small_waker).is_pending());
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.available_permits(), 1);

    drop(held);
    assert_eq!((big_counter.wakes(), small_counter.wakes()), (1, 0));
    let big_guard = match poll_once(&mut big, &big_waker) {
        Poll::Ready(guard) => guard,
        Poll::Pending => panic!("big waiter should have been granted"),
    };
    assert_eq!(big_guard.permits(), 3);
    assert!(poll_once(&mut small, &small_waker).is_pending());

    drop(big_guard);
    assert_eq!(small_counter.wakes(), 1);
    assert!(poll_once(&mut small, &small_waker).is_ready());
    drop((big, small));
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_guard_drop_releases_permits() {
    let sem = Semaphore::new(3);
    let a = sem.acquire_blocking();
    let b = block_on(sem.acquire_many(2));
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(b);
    assert_eq!(sem.available_permits(), 2);
    drop(a);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_failed_try_acquire_takes_and_gives_back_nothing() {
    let sem = Arc::new(Semaphore::new(2));
    let held = sem.try_acquire_many(2).unwrap();
    assert!(sem.try_acquire().is_none());
    assert!(sem.try_acquire_many(2).is_none());
    assert!(sem.try_acquire_arc().is_none());
    assert!(sem.try_acquire_many_arc(1).is_none());
    assert_eq!(sem.available_permits(), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_forget_keeps_permits_taken() {
    let sem = Arc::new(Semaphore::new(3));
    sem.acquire_blocking().forget();
    sem.try_acquire_arc().unwrap().forget();
    assert_eq!(sem.available_permits(), 1);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_add_permits_wakes_blocked_waiters() {
    let sem = Arc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let sem = Arc::clone(&sem);
            spawn_job(move || sem.acquire_many_blocking(2).permits())
        })
        .collect();
    for waiter in &waiters {
        waiter.assert_blocked();
    }
    sem.add_permits(4);
    for waiter in waiters {
        assert_eq!(waiter.join(), 2);
    }
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn semaphore_granted_then_dropped_unpolled_returns_permits() {
    let sem = Semaphore::new(2);
    let held = sem.acquire_many_blocking(2);
    let (counter, waker) = counting_waker();
    let mut pending = sem.acquire_many(2);
    assert!(poll_once(&mut pending, &waker).is_pending());
    drop(held); // grants both permits to `pending`
    assert_eq!(counter.wakes(), 1);
    assert_eq!(sem.available_permits(), 0);
    drop(pending); // never polled again
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_granted_then_dropped_unpolled_passes_permits_to_next_waiter() {
    let sem = Semaphore::new(1);
    let held = sem.acquire_blocking();
    let (first_counter, first_waker) = counting_waker();
    let (second_counter, second_waker) = counting_waker();
    let mut first = sem.acquire();
    let mut second = sem.acquire();
    assert!(poll_once(&mut first, &first_waker).is_pending());
    assert!(poll_once(&mut second, &second_waker).is_pending());
    drop(held);
    assert_eq!((first_counter.wakes(), second_counter.wakes()), (1, 0));
    drop(first);
    assert_eq!(second_counter.wakes(), 1);
    let guard = match poll_once(&mut second, &second_waker) {
        Poll::Ready(guard) => guard,
        Poll::Pending => panic!("second waiter should have been granted"),
    };
    assert_eq!(sem.available_permits(), 0);
    drop(guard);
    drop(second);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_cancelled_head_waiter_lets_smaller_waiters_through() {
    let sem = Semaphore::new(2);
    let held = sem.acquire(); // 1 free once polled
    let held = block_on(held);
    let (_, waker) = counting_waker();
    let (small_counter, small_waker) = counting_waker();
    let mut big = sem.acquire_many(2);
    let mut small = sem.acquire();
    assert!(poll_once(&mut big, &waker).is_pending());
    assert!(poll_once(&mut small, &small_waker).is_pending());
    drop(big);
    assert_eq!(small_counter.wakes(), 1);
    assert!(poll_once(&mut small, &small_waker).is_ready());
    drop((held, small));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_acquire_repolled_with_new_waker_wakes_only_new_waker() {
    let sem = Semaphore::new(1);
    let held = sem.acquire_blocking();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut acquire = sem.acquire();
    assert!(poll_once(&mut acquire, &first_waker).is_pending());
    assert!(poll_once(&mut acquire, &second_waker).is_pending());
    drop(held);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert!(poll_once(&mut acquire, &second_waker).is_ready());
}

#[test]
fn semaphore_arc_guard_moves_to_another_thread() {
    let sem = Arc::new(Semaphore::new(1));
    let guard = block_on(sem.acquire_arc());
    assert_eq!(sem.available_permits(), 0);
    spawn_job(move || drop(guard)).join();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_mixed_sizes_never_exceed_the_permits() {
    const PERMITS: usize = 5;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let in_use = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (1..=4)
        .map(|k| {
            let sem = Arc::clone(&sem);
            let in_use = Arc::clone(&in_use);
            spawn_job(move || {
                for round in 0..stress(200) {
                    let guard = if round % 2 == 0 {
                        sem.acquire_many_blocking(k)
                    } else {
                        block_on(sem.acquire_many(k))
                    };
                    assert!(in_use.fetch_add(k, Ordering::SeqCst) + k <= PERMITS);
                    in_use.fetch_sub(k, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join();
    }
    assert_eq!(sem.available_permits(), PERMITS);
}

#[test]
fn semaphore_close_fails_pending_and_later_checked_acquires() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let (counter, waker) = counting_waker();
    let mut pending = sem.checked_acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.close();
    assert_eq!(counter.wakes(), 1);
    assert!(matches!(
        poll_once(&mut pending, &waker),
        Poll::Ready(Err(aplex::sync::AcquireError))
    ));
    assert!(sem.is_closed());
    assert!(block_on(sem.checked_acquire_many(0)).is_err());
    assert!(sem.try_acquire().is_none());
    // A guard handed out before the close gives its permit back as usual.
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.try_acquire().is_none());
}

#[test]
fn semaphore_granted_before_close_keeps_its_permits() {
    let sem = Semaphore::new(0);
    let (_counter, waker) = counting_waker();
    let mut pending = sem.checked_acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.add_permits(1); // granted now
    sem.close();
    let Poll::Ready(Ok(guard)) = poll_once(&mut pending, &waker) else {
        panic!("an acquire granted before the close must succeed");
    };
    assert_eq!(guard.permits(), 1);
}

#[test]
fn semaphore_close_wakes_a_blocked_thread_with_an_error() {
    let sem = Arc::new(Semaphore::new(0));
    let waiter = spawn_job({
        let sem = Arc::clone(&sem);
        move || block_on(sem.checked_acquire_many(2)).map(|g| g.permits())
    });
    waiter.assert_blocked();
    sem.close();
    assert_eq!(waiter.join(), Err(aplex::sync::AcquireError));
}

#[test]
fn semaphore_guard_returning_acquire_panics_on_close() {
    expect_panics(&["Semaphore: acquire on a closed semaphore"]);
    let sem = Semaphore::new(0);
    let (_counter, waker) = counting_waker();
    let mut pending = sem.acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.close();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = poll_once(&mut pending, &waker);
    }));
    assert!(polled.is_err());
    drop(pending);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn semaphore_forget_permits_removes_only_free_ones() {
    let sem = Semaphore::new(4);
    let held = sem.try_acquire_many(3).unwrap();
    assert_eq!(sem.forget_permits(2), 1);
    assert_eq!(sem.forget_permits(2), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(sem.forget_permits(3), 3);
    assert!(sem.try_acquire().is_none());
}
