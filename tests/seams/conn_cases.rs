//! The connection pool at its seams: factories and health checks that fail or panic, acquires
//! after or during close, and connections returned from other threads. After each, no slot may
//! be lost: the pool must still hand out `max_size` connections.
#![cfg(feature = "conn-pool")]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aplex::{ConnectionPool, Error};

use crate::{case, eventually, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "conn_failing_factory_loses_no_slot",
            conn_failing_factory_loses_no_slot,
        ),
        case(
            "conn_panicking_factory_loses_no_slot",
            conn_panicking_factory_loses_no_slot,
        ),
        case(
            "conn_panicking_health_check_retires_and_reopens",
            conn_panicking_health_check_retires_and_reopens,
        ),
        case(
            "conn_acquire_after_and_during_close",
            conn_acquire_after_and_during_close,
        ),
        case(
            "conn_pooled_dropped_on_another_thread_wakes_a_waiter",
            conn_pooled_dropped_on_another_thread_wakes_a_waiter,
        ),
    ]
}

/// Both slots of a `max_size(2)` pool can be held at once.
fn both_slots_work(pool: &ConnectionPool<usize>) {
    let a = pool.acquire_blocking().expect("first slot");
    let b = pool.acquire_blocking().expect("second slot");
    drop((a, b));
}

fn conn_failing_factory_loses_no_slot() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ConnectionPool::builder(move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n < 3 {
            Err(io::Error::other("refused"))
        } else {
            Ok(n)
        }
    })
    .max_size(2)
    .build()
    .unwrap();
    for _ in 0..3 {
        assert!(matches!(pool.acquire_blocking(), Err(Error::Io(_))));
    }
    within("both slots after failures", move || both_slots_work(&pool));
}

fn conn_panicking_factory_loses_no_slot() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ConnectionPool::builder(move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n < 2 {
            panic!("factory {n}");
        }
        Ok(n)
    })
    .max_size(2)
    .build()
    .unwrap();
    for _ in 0..2 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.acquire_blocking()));
        assert!(
            r.is_err() || matches!(r, Ok(Err(_))),
            "a factory panic is not a connection"
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.size, stats.in_use), (0, 0));
    within("both slots after factory panics", move || {
        both_slots_work(&pool)
    });
}

fn conn_panicking_health_check_retires_and_reopens() {
    let opened = Arc::new(AtomicUsize::new(0));
    let o = Arc::clone(&opened);
    let pool = ConnectionPool::builder(move || Ok(o.fetch_add(1, Ordering::SeqCst)))
        .max_size(2)
        .health_check(|conn: &usize| {
            if *conn == 0 {
                panic!("health check");
            }
            true
        })
        .build()
        .unwrap();
    // The first connection (0) fails its check on open: an error, not a panic.
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.acquire_blocking()));
    assert!(matches!(first, Ok(Err(Error::Io(_)))), "{first:?}");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.in_use), (0, 0));
    within("both slots after a panicking check", move || {
        both_slots_work(&pool)
    });
}

fn conn_acquire_after_and_during_close() {
    let pool = Arc::new(
        ConnectionPool::builder(|| Ok(1usize))
            .max_size(1)
            .build()
            .unwrap(),
    );
    let held = pool.acquire_blocking().unwrap();
    let waiter = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.acquire_blocking().map(|c| *c))
    };
    eventually("a waiter", || pool.stats().waiters == 1);
    pool.close();
    assert!(matches!(
        within("a waiter on close", move || waiter.join().unwrap()),
        Err(Error::ShutDown)
    ));
    drop(held); // returned after close: cleaned up, not kept
    assert_eq!(pool.stats().size, 0);
    assert!(matches!(pool.acquire_blocking(), Err(Error::ShutDown)));
    assert!(matches!(
        aplex::block_on(pool.acquire()),
        Err(Error::ShutDown)
    ));
}

fn conn_pooled_dropped_on_another_thread_wakes_a_waiter() {
    let pool = Arc::new(
        ConnectionPool::builder(|| Ok(5usize))
            .max_size(1)
            .build()
            .unwrap(),
    );
    for _ in 0..50 {
        let held = pool.acquire_blocking().unwrap();
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || aplex::block_on(pool.acquire()).map(|c| *c))
        };
        std::thread::spawn(move || drop(held)).join().unwrap();
        assert_eq!(
            within("a waiter after a drop elsewhere", move || waiter
                .join()
                .unwrap())
            .ok(),
            Some(5)
        );
    }
    assert_eq!(pool.stats().size, 1);
}
