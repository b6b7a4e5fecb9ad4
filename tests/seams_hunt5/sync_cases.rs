//! The channels' and the semaphore's newest calls from many threads: `try_reserve` racing a
//! receiver's close, permits outliving the receiver, `recv_many` with zero and huge limits
//! across threads, the oneshot's `is_closed` / `is_empty` / `is_terminated` against a racing
//! send and close, and a semaphore closed under waiters of every form.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use aplex::sync::mpsc::{self, TrySendError};
use aplex::sync::oneshot::{self, TryRecvError};
use aplex::sync::{AcquireError, Semaphore};

use super::{case, within, Case, DropCount, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "mpsc_try_reserve_from_threads_racing_a_close_loses_nothing",
            try_reserve_from_threads_racing_a_close_loses_nothing,
        ),
        case(
            "mpsc_permit_outliving_its_receiver_gives_the_value_back_once",
            permit_outliving_its_receiver_gives_the_value_back_once,
        ),
        case(
            "mpsc_receiver_after_close_waits_for_a_permit_held_on_another_thread",
            receiver_after_close_waits_for_a_permit_held_on_another_thread,
        ),
        case(
            "mpsc_recv_many_zero_and_huge_limits_across_threads",
            recv_many_zero_and_huge_limits_across_threads,
        ),
        case(
            "oneshot_send_racing_close_agrees_with_the_state_queries",
            send_racing_close_agrees_with_the_state_queries,
        ),
        case(
            "semaphore_close_under_waiters_of_every_form_on_threads",
            close_under_waiters_of_every_form_on_threads,
        ),
        case(
            "oneshot_closed_resolves_on_a_close_from_another_thread",
            oneshot_closed_resolves_on_a_close_from_another_thread,
        ),
        case(
            "sync_guards_and_halves_dropped_in_an_unwind_with_a_waker_that_panics",
            a_guard_dropped_in_an_unwind_with_a_waiter_whose_waker_panics,
        ),
    ]
}

/// Eight threads reserve and send into a channel of four while the receiver drains, then
/// closes half way and drains to the end. Every value whose send returned `Ok` is received
/// exactly once; the ones refused come back; none is dropped unseen.
fn try_reserve_from_threads_racing_a_close_loses_nothing() {
    within("try_reserve racing a close", || {
        for _round in 0..20 {
            let (tx, mut rx) = mpsc::channel::<usize>(4);
            let sent = Arc::new(AtomicUsize::new(0));
            let refused = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Barrier::new(9));
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let (tx, sent, refused, start) = (
                        tx.clone(),
                        Arc::clone(&sent),
                        Arc::clone(&refused),
                        Arc::clone(&start),
                    );
                    std::thread::spawn(move || {
                        start.wait();
                        for i in 0..200 {
                            match tx.try_reserve() {
                                Ok(permit) => {
                                    permit.send(t * 1000 + i).unwrap();
                                    sent.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(TrySendError::Full(())) => std::thread::yield_now(),
                                Err(TrySendError::Closed(())) => {
                                    refused.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            start.wait();
            let mut got = Vec::new();
            while got.len() < 50 {
                match rx.recv_timeout(HANG) {
                    Ok(v) => got.push(v),
                    Err(_) => break, // every sender finished early
                }
            }
            rx.close();
            while let Some(v) = rx.recv_blocking() {
                got.push(v);
            }
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(got.len(), sent.load(Ordering::SeqCst));
            let mut unique = got.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), got.len(), "a value arrived twice");
        }
    });
}

/// A permit reserved, the receiver dropped on another thread, then the permit sends: the
/// value comes back in `SendError`, and is dropped exactly once (by the caller).
fn permit_outliving_its_receiver_gives_the_value_back_once() {
    within("a permit outliving its receiver", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<DropCount>(1);
        let permit = tx.try_reserve().unwrap();
        std::thread::spawn(move || drop(rx)).join().unwrap();
        assert!(tx.is_closed());
        let back = permit.send(DropCount(Arc::clone(&drops))).unwrap_err();
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
        drop(tx);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// The receiver closes while another thread holds a permit, and awaits (on a foreign
/// executor) the end: it gets the permit's value, then `None` only after the permit is gone;
/// a second permit dropped unused ends it too.
fn receiver_after_close_waits_for_a_permit_held_on_another_thread() {
    within("a receiver waiting for a permit", || {
        let (tx, mut rx) = mpsc::channel::<u8>(2);
        let (go_tx, go) = std::sync::mpsc::channel::<bool>();
        let (held_tx, held) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let a = tx.try_reserve().unwrap();
            let b = tx.try_reserve().unwrap();
            held_tx.send(()).unwrap();
            // Each message: send through the next permit (true) or drop it (false).
            for permit in [a, b] {
                if go.recv().unwrap() {
                    permit.send(7).unwrap();
                } else {
                    drop(permit);
                }
            }
        });
        held.recv_timeout(HANG).unwrap();
        rx.close();
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
        go_tx.send(true).unwrap();
        assert_eq!(super::run_foreign(rx.recv()), Some(7));
        let dropper = std::thread::spawn(move || go_tx.send(false).unwrap());
        assert_eq!(super::run_foreign(rx.recv()), None);
        dropper.join().unwrap();
        sender.join().unwrap();
    });
}

/// `recv_many` with a limit of 0 (nothing moves, even with values buffered) and of
/// `usize::MAX` (takes what is there, at least one) while four threads send 1000 values each.
fn recv_many_zero_and_huge_limits_across_threads() {
    within("recv_many limits", || {
        let (tx, mut rx) = mpsc::channel::<usize>(16);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        tx.send_blocking(t * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut all = Vec::new();
        aplex::block_on(async {
            loop {
                let mut none = Vec::new();
                assert_eq!(rx.recv_many(&mut none, 0).await, 0);
                assert!(none.is_empty());
                let before = all.len();
                let n = rx.recv_many(&mut all, usize::MAX).await;
                assert_eq!(all.len() - before, n);
                if n == 0 {
                    break;
                }
            }
        });
        for t in threads {
            t.join().unwrap();
        }
        all.sort_unstable();
        let expected: Vec<usize> = (0..4000).collect();
        assert_eq!(all, expected);
    });
}

/// A send and a close race on two threads, many times. Either the send won (the value is
/// still received after the close) or the close won (the send gave its value back); the
/// state queries agree with that at each step.
fn send_racing_close_agrees_with_the_state_queries() {
    within("send racing close", || {
        for _ in 0..500 {
            let (tx, mut rx) = oneshot::channel::<u32>();
            let start = Arc::new(Barrier::new(2));
            let s = Arc::clone(&start);
            let sender = std::thread::spawn(move || {
                s.wait();
                tx.send(9).is_ok()
            });
            start.wait();
            rx.close();
            let delivered = sender.join().unwrap();
            assert!(rx.is_closed());
            assert!(!rx.is_terminated());
            assert_eq!(rx.is_empty(), !delivered);
            if delivered {
                assert_eq!(rx.try_recv(), Ok(9));
            } else {
                assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            }
            assert!(rx.is_terminated() && rx.is_empty() && rx.is_closed());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            assert_eq!(aplex::block_on(&mut rx), Err(oneshot::RecvError));
            assert_eq!(
                rx.recv_timeout(Duration::ZERO),
                Err(oneshot::RecvTimeoutError::Closed)
            );
        }
    });
}

/// Waiters of every form on threads (checked async, checked many, blocking, async on a
/// foreign executor) when the semaphore closes: the checked ones fail with `AcquireError`,
/// the unchecked ones panic as documented; none hangs, and the guards held keep working.
fn close_under_waiters_of_every_form_on_threads() {
    within("close under waiters", || {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.try_acquire_arc().unwrap();
        let checked = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || aplex::block_on(sem.checked_acquire()).map(drop))
        };
        let checked_many = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || {
                super::run_foreign(sem.checked_acquire_many(usize::MAX)).map(drop)
            })
        };
        let blocking = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || drop(sem.acquire_blocking()))
        };
        let unchecked = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || super::run_foreign(async { drop(sem.acquire().await) }))
        };
        super::eventually("four waiters started", || {
            // Four threads, the test and the held guard. A waiter that comes after the close
            // fails the same way, so the exact moment does not change the outcome.
            Arc::strong_count(&sem) == 6
        });
        sem.close();
        assert_eq!(checked.join().unwrap(), Err(AcquireError));
        assert_eq!(checked_many.join().unwrap(), Err(AcquireError));
        assert!(
            blocking.join().is_err(),
            "acquire_blocking on a closed semaphore panics"
        );
        assert!(
            unchecked.join().is_err(),
            "acquire on a closed semaphore panics"
        );
        assert_eq!(held.permits(), 1);
        drop(held);
        assert!(sem.try_acquire().is_none());
        // As tokio's: a closed semaphore refuses even zero permits.
        assert_eq!(
            aplex::block_on(sem.checked_acquire_many(0)).map(drop),
            Err(AcquireError)
        );
    });
}

/// The environment variable that turns this test binary into the probe below.
pub(crate) const UNWIND_PROBE_ENV: &str = "APLEX_HUNT5_UNWIND_PROBE";

/// Run by the test binary re-launched as the probe: a semaphore guard dropped while a panic
/// unwinds, with a waiter whose waker panics when the released permit wakes it; then the
/// oneshot's and the mpsc's halves dropped so, with a peer's waker that panics. A panic out
/// of any of those drops, during the unwind, would abort the process.
pub(crate) fn unwind_probe() {
    std::panic::set_hook(Box::new(|_| {}));
    let sem = Semaphore::new(1);
    let guard = sem.try_acquire().unwrap();
    let bad = Arc::new(super::time_cases::PanickingWaker::default());
    let waker = std::task::Waker::from(Arc::clone(&bad));
    let mut waiter = Box::pin(sem.acquire());
    assert!(super::poll_with(waiter.as_mut(), &waker).is_pending());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = guard;
        panic!("a user panic while the guard is held");
    }));
    assert!(unwound.is_err());
    assert_eq!(bad.wakes.load(Ordering::SeqCst), 1);
    // The waiter was granted the permit; it gets it when polled again.
    let (_counter, good) = super::CountingWaker::new();
    assert!(super::poll_with(waiter.as_mut(), &good).is_ready());

    // The channels' halves wake the other side from their drops too.
    let (tx, mut rx) = oneshot::channel::<u8>();
    assert!(super::poll_with(std::pin::Pin::new(&mut rx), &waker).is_pending());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = tx;
        panic!("a user panic while the oneshot sender is held");
    }));
    assert!(unwound.is_err());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

    let (mut tx, rx) = oneshot::channel::<u8>();
    {
        let mut closed = std::pin::pin!(tx.closed());
        assert!(super::poll_with(closed.as_mut(), &waker).is_pending());
    }
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = rx;
        panic!("a user panic while the oneshot receiver is held");
    }));
    assert!(unwound.is_err());
    assert!(tx.is_closed());

    let (tx, mut rx) = mpsc::channel::<u8>(1);
    {
        let mut recv = std::pin::pin!(rx.recv());
        assert!(super::poll_with(recv.as_mut(), &waker).is_pending());
    }
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = tx;
        panic!("a user panic while the last mpsc sender is held");
    }));
    assert!(unwound.is_err());
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Closed));
}

/// Re-launches this binary as the probe named `which` (see `main`): it must exit cleanly,
/// not abort.
pub(crate) fn run_unwind_probe(which: &'static str) {
    within("the unwind probe", move || {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env(UNWIND_PROBE_ENV, which)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the {which} probe ended with {status}");
    });
}

fn a_guard_dropped_in_an_unwind_with_a_waiter_whose_waker_panics() {
    run_unwind_probe("sync");
}

/// `Sender::closed` awaited on a foreign executor while another thread calls
/// `Receiver::close` (not a drop): it resolves, the send then gives the value back, and the
/// receiver reports the end.
fn oneshot_closed_resolves_on_a_close_from_another_thread() {
    within("closed on a close", || {
        for _ in 0..100 {
            let (mut tx, mut rx) = oneshot::channel::<u8>();
            let closer = std::thread::spawn(move || {
                rx.close();
                rx
            });
            super::run_foreign(tx.closed());
            assert!(tx.is_closed());
            assert_eq!(tx.send(1), Err(1));
            let mut rx = closer.join().unwrap();
            assert!(rx.is_closed() && rx.is_empty());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            assert!(rx.is_terminated());
        }
    });
}
