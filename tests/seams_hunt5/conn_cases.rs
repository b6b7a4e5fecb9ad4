//! The connection pool's retry of new connections that fail their check (new today), at its
//! seams: checks that never pass, factories that panic mid-retry, an acquire deadline over an
//! endless retry, many threads at the size bound, a close while a retry waits on the factory,
//! and the extreme sizes and durations a user may give.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use aplex::{ConnectionPool, Error};

use super::{case, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "conn_a_check_that_never_passes_ends_after_the_attempts",
            a_check_that_never_passes_ends_after_the_attempts,
        ),
        case(
            "conn_a_factory_that_panics_on_the_retry_loses_no_slot",
            a_factory_that_panics_on_the_retry_loses_no_slot,
        ),
        case(
            "conn_a_deadline_ends_an_endless_retry_of_a_blocking_factory",
            a_deadline_ends_an_endless_retry_of_a_blocking_factory,
        ),
        case(
            "conn_a_deadline_ends_an_endless_retry_of_a_ready_async_factory",
            a_deadline_ends_an_endless_retry_of_a_ready_async_factory,
        ),
        case(
            "conn_many_threads_at_max_size_with_retries",
            many_threads_at_max_size_with_retries,
        ),
        case(
            "conn_close_while_a_retry_waits_on_the_factory",
            close_while_a_retry_waits_on_the_factory,
        ),
        case(
            "conn_extreme_sizes_and_durations",
            extreme_sizes_and_durations,
        ),
        case(
            "conn_acquire_dropped_mid_factory_and_a_panicking_async_factory",
            acquire_dropped_mid_factory_and_a_panicking_async_factory,
        ),
        case(
            "conn_blocking_acquires_with_an_async_factory_take_turns",
            blocking_acquires_with_an_async_factory_take_turns,
        ),
        case(
            "conn_pooled_dropped_in_an_unwind_with_a_cleanup_that_panics",
            || super::sync_cases::run_unwind_probe("conn"),
        ),
    ]
}

/// A check that fails every connection: the acquire opens exactly `attempts` connections,
/// cleans each, and fails with `Io`; the slot comes back (the next acquire fails the same way,
/// it does not wait).
fn a_check_that_never_passes_ends_after_the_attempts() {
    within("a check that never passes", || {
        let opened = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let (o, c) = (Arc::clone(&opened), Arc::clone(&cleaned));
        let pool = ConnectionPool::builder(move || Ok(o.fetch_add(1, Ordering::SeqCst)))
            .max_size(1)
            .new_connection_attempts(4)
            .health_check(|_| false)
            .cleanup(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        for round in 1..=2 {
            let err = pool.acquire_blocking().unwrap_err();
            assert!(matches!(err, Error::Io(_)), "{err:?}");
            assert_eq!(opened.load(Ordering::SeqCst), 4 * round);
            assert_eq!(cleaned.load(Ordering::SeqCst), 4 * round);
        }
        let stats = pool.stats();
        assert_eq!((stats.size, stats.in_use, stats.waiters), (0, 0, 0));
    });
}

/// The first new connection fails its check; the factory panics on the retry. The panic
/// reaches the caller, the failed connection was cleaned, and the pool's one slot is free: the
/// next acquire gets a connection.
fn a_factory_that_panics_on_the_retry_loses_no_slot() {
    within("a factory panicking on the retry", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let (k, c) = (Arc::clone(&calls), Arc::clone(&cleaned));
        let pool = ConnectionPool::builder(move || {
            let n = k.fetch_add(1, Ordering::SeqCst);
            assert!(n != 1, "the factory panics on its second call");
            Ok(n)
        })
        .max_size(1)
        .health_check(|&n| n != 0)
        .cleanup(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.acquire_blocking()));
        assert!(panicked.is_err());
        assert_eq!(cleaned.load(Ordering::SeqCst), 1);
        let conn = pool
            .acquire_blocking_timeout(HANG)
            .expect("the slot came back");
        assert_eq!(*conn, 2);
        assert_eq!(pool.stats().in_use, 1);
    });
}

/// `new_connection_attempts(usize::MAX)` and a check that never passes: only the acquire's
/// deadline can end it. A blocking factory returns at once each time, so the retry loop must
/// still give the deadline a look; after it, nothing is left counted.
fn a_deadline_ends_an_endless_retry_of_a_blocking_factory() {
    within("an endless retry under a deadline", || {
        let opened = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let (o, c) = (Arc::clone(&opened), Arc::clone(&cleaned));
        let pool = ConnectionPool::builder(move || Ok(o.fetch_add(1, Ordering::SeqCst)))
            .max_size(1)
            .new_connection_attempts(usize::MAX)
            .health_check(|_| false)
            .cleanup(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let blocking = pool.acquire_blocking_timeout(Duration::from_millis(20));
        assert!(matches!(blocking, Err(Error::TimedOut)), "{blocking:?}");
        let awaited = aplex::block_on(pool.acquire_timeout(Duration::from_millis(20)));
        assert!(matches!(awaited, Err(Error::TimedOut)), "{awaited:?}");
        assert_eq!(
            opened.load(Ordering::SeqCst),
            cleaned.load(Ordering::SeqCst)
        );
        let stats = pool.stats();
        assert_eq!((stats.size, stats.in_use, stats.waiters), (0, 0, 0));
    });
}

/// As above with an async factory whose future is ready at once, awaited on a foreign
/// executor.
fn a_deadline_ends_an_endless_retry_of_a_ready_async_factory() {
    within("an endless async retry under a deadline", || {
        let pool = ConnectionPool::builder_async(|| async { io::Result::Ok(()) })
            .max_size(2)
            .new_connection_attempts(usize::MAX)
            .health_check(|()| false)
            .build()
            .unwrap();
        let out = super::run_foreign(pool.acquire_timeout(Duration::from_millis(20)));
        assert!(matches!(out, Err(Error::TimedOut)), "{out:?}");
        assert_eq!(pool.stats().in_use, 0);
    });
}

/// Eight threads acquire 40 times each from a pool of two whose check fails every third new
/// connection: every acquire succeeds, never more than two connections exist, and everything
/// comes back.
fn many_threads_at_max_size_with_retries() {
    within("many threads at max size", || {
        let opened = Arc::new(AtomicUsize::new(0));
        let o = Arc::clone(&opened);
        let pool = ConnectionPool::builder(move || Ok(o.fetch_add(1, Ordering::SeqCst)))
            .max_size(2)
            .health_check(|&n| n % 3 != 2)
            .build()
            .unwrap();
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (pool, start) = (pool.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..40 {
                        let conn = pool.acquire_blocking_timeout(HANG).unwrap();
                        assert!(*conn % 3 != 2, "a connection that failed its check");
                        let stats = pool.stats();
                        assert!(stats.size <= 2 && stats.in_use <= 2, "{stats:?}");
                        drop(conn);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = pool.stats();
        assert_eq!((stats.in_use, stats.waiters), (0, 0), "{stats:?}");
        assert!(stats.size <= 2, "{stats:?}");
    });
}

/// An acquire on another thread retries after a failed check; the factory's second call
/// waits on the test. The pool is closed meanwhile: the acquire ends `ShutDown`, and every
/// connection opened was cleaned.
fn close_while_a_retry_waits_on_the_factory() {
    within("close during a retry", || {
        let (entered_tx, entered) = std_mpsc::channel();
        let (release, held) = std_mpsc::channel::<()>();
        let held = std::sync::Mutex::new(held);
        let entered_tx = std::sync::Mutex::new(entered_tx);
        let calls = Arc::new(AtomicUsize::new(0));
        let cleaned = Arc::new(AtomicUsize::new(0));
        let (k, c) = (Arc::clone(&calls), Arc::clone(&cleaned));
        let pool = ConnectionPool::builder(move || {
            let n = k.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                entered_tx.lock().unwrap().send(()).unwrap();
                held.lock().unwrap().recv().unwrap();
            }
            Ok(n)
        })
        .max_size(1)
        .health_check(|&n| n != 0)
        .cleanup(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
        let other = pool.clone();
        let acquirer = std::thread::spawn(move || other.acquire_blocking().map(|c| *c));
        entered.recv_timeout(HANG).unwrap();
        pool.close();
        // A second acquire, after the close, fails at once.
        assert!(matches!(pool.acquire_blocking(), Err(Error::ShutDown)));
        release.send(()).unwrap();
        assert!(matches!(acquirer.join().unwrap(), Err(Error::ShutDown)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cleaned.load(Ordering::SeqCst), 2);
        assert_eq!(pool.stats().size, 0);
    });
}

/// `max_size(usize::MAX)`, zero and maximal timeouts, a zero and a maximal `max_life`.
fn extreme_sizes_and_durations() {
    within("extreme sizes", || {
        assert!(ConnectionPool::builder(|| Ok(()))
            .new_connection_attempts(0)
            .build()
            .is_err());
        assert!(ConnectionPool::builder(|| Ok(()))
            .max_size(0)
            .build()
            .is_err());
        let huge = ConnectionPool::builder(|| Ok(1u8))
            .max_size(usize::MAX)
            .max_life(Duration::MAX)
            .build()
            .unwrap();
        let a = huge.acquire_blocking_timeout(Duration::MAX).unwrap();
        let b = aplex::block_on(huge.acquire_timeout(Duration::MAX)).unwrap();
        assert_eq!(huge.stats().in_use, 2);
        drop((a, b));
        // Zero time with an idle connection ready: handed out, or a clean TimedOut.
        match huge.acquire_blocking_timeout(Duration::ZERO) {
            Ok(c) => assert_eq!(*c, 1),
            Err(e) => assert_eq!(e, Error::TimedOut),
        }
        assert_eq!(huge.stats().in_use, 0);
        let opened = Arc::new(AtomicUsize::new(0));
        let o = Arc::clone(&opened);
        let fresh = ConnectionPool::builder(move || Ok(o.fetch_add(1, Ordering::SeqCst)))
            .max_size(1)
            .max_life(Duration::ZERO)
            .build()
            .unwrap();
        for i in 0..3 {
            assert_eq!(*fresh.acquire_blocking().unwrap(), i);
        }
        assert_eq!(fresh.stats().size, 0);
        assert_eq!(fresh.maintain_blocking().unwrap(), 0);
    });
}

/// An acquire whose async factory waits on the test is polled once and dropped: the factory
/// call is uncounted and its slot freed, so the pool's one slot serves the next acquire; a
/// factory future that panics on a worker ends that work `Panicked` and loses no slot either.
fn acquire_dropped_mid_factory_and_a_panicking_async_factory() {
    within("an acquire dropped mid-factory", || {
        let gate = Arc::new(aplex::sync::Event::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let (g, k) = (Arc::clone(&gate), Arc::clone(&calls));
        let pool = ConnectionPool::builder_async(move || {
            let (g, n) = (Arc::clone(&g), k.fetch_add(1, Ordering::SeqCst));
            async move {
                match n {
                    0 => g.wait().await,
                    1 => panic!("the async factory panics on purpose"),
                    _ => {}
                }
                io::Result::Ok(n)
            }
        })
        .max_size(1)
        .build()
        .unwrap();
        {
            let (_counter, waker) = super::CountingWaker::new();
            let mut acquire = std::pin::pin!(pool.acquire());
            assert!(super::poll_with(acquire.as_mut(), &waker).is_pending());
        }
        assert_eq!(pool.stats().in_use, 0);
        let workers = aplex::ThreadPool::new(1);
        let p = pool.clone();
        let panicked = workers.spawn(move || async move { p.acquire().await.map(|c| *c) });
        assert!(matches!(panicked.wait(), Err(Error::Panicked(m)) if m.contains("on purpose")));
        let p = pool.clone();
        let third = workers.spawn(move || async move { p.acquire().await.map(|c| *c) });
        assert_eq!(third.wait(), Ok(Ok(2)));
        let stats = pool.stats();
        assert_eq!((stats.size, stats.in_use, stats.waiters), (1, 0, 0));
    });
}

/// Six threads `acquire_blocking_timeout` from a pool of one with an async factory, each
/// holding its connection across a barrier with nobody else: the size never exceeds one,
/// every thread gets its turn, nobody times out.
fn blocking_acquires_with_an_async_factory_take_turns() {
    within("blocking acquires with an async factory", || {
        let pool = ConnectionPool::builder_async(|| async {
            aplex::time::sleep(Duration::from_millis(1)).await;
            io::Result::Ok(())
        })
        .max_size(1)
        .build()
        .unwrap();
        let turns = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (pool, turns) = (pool.clone(), Arc::clone(&turns));
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let conn = pool.acquire_blocking_timeout(HANG).unwrap();
                        assert_eq!(pool.stats().in_use, 1);
                        turns.fetch_add(1, Ordering::SeqCst);
                        drop(conn);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(turns.load(Ordering::SeqCst), 30);
        assert!(pool.stats().size <= 1);
    });
}

/// Run by the test binary re-launched as the probe: a `Pooled` guard whose connection has
/// outlived `max_life` is dropped while a panic unwinds, and the cleanup it gets passed to
/// panics. A panic out of that drop, during the unwind, would abort the process.
pub(crate) fn unwind_probe() {
    std::panic::set_hook(Box::new(|_| {}));
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&cleaned);
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .max_life(Duration::ZERO)
        .cleanup(move |()| {
            // Only the first time: the probe's last connection is cleaned at its end.
            assert!(
                c.fetch_add(1, Ordering::SeqCst) > 0,
                "the cleanup panics on purpose"
            );
        })
        .build()
        .unwrap();
    let conn = pool.acquire_blocking().unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = conn;
        panic!("a user panic while the connection is held");
    }));
    assert!(unwound.is_err());
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    let stats = pool.stats();
    assert_eq!((stats.size, stats.in_use), (0, 0));
    assert!(pool.acquire_blocking_timeout(HANG).is_ok());
}
