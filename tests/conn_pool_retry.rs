//! `ConnectionPool`: a brand-new connection that fails its health check is cleaned and the
//! factory tried again, up to `new_connection_attempts` new connections in a row (default 3) and
//! within the acquire's deadline, instead of failing the acquire at the first bad one.
#![cfg(feature = "conn-pool")]

use std::io;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use aplex::sync::Event;
use aplex::{block_on, ConnectionPool, ConnectionPoolBuilder, Error, Pooled};

/// Counts a pool's factory calls and cleanups; connections are numbered from 0 in opening order.
#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    cleaned: AtomicUsize,
}

impl Counts {
    fn opened(&self) -> usize {
        self.opened.load(SeqCst)
    }

    fn cleaned(&self) -> usize {
        self.cleaned.load(SeqCst)
    }
}

/// A pool whose connections are numbered and whose first `bad` connections fail the check.
fn first_bad(counts: &Arc<Counts>, bad: usize) -> ConnectionPoolBuilder<usize> {
    let (opening, cleaning) = (Arc::clone(counts), Arc::clone(counts));
    ConnectionPool::builder(move || Ok(opening.opened.fetch_add(1, SeqCst)))
        .health_check(move |id| *id >= bad)
        .cleanup(move |_| {
            cleaning.cleaned.fetch_add(1, SeqCst);
        })
}

/// Keeps the panics these tests cause (their messages start with "expected") quiet.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.starts_with("expected") {
                default(info);
            }
        }));
    });
}

#[test]
fn first_two_new_connections_fail_the_check_then_the_third_is_handed_out() {
    let counts = Arc::new(Counts::default());
    let pool = first_bad(&counts, 2).max_size(1).build().unwrap();
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(*conn, 2);
    assert_eq!((counts.opened(), counts.cleaned()), (3, 2));
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.in_use),
        (1, 1),
        "the failed ones left no count"
    );
}

#[test]
fn async_acquire_retries_too() {
    let counts = Arc::new(Counts::default());
    let pool = first_bad(&counts, 1).build().unwrap();
    let id = block_on(async { *pool.acquire().await.unwrap() });
    assert_eq!(id, 1);
    assert_eq!((counts.opened(), counts.cleaned()), (2, 1));
}

#[test]
fn default_gives_up_after_three_new_connections_in_a_row() {
    let counts = Arc::new(Counts::default());
    let pool = first_bad(&counts, usize::MAX).max_size(1).build().unwrap();
    match pool.acquire_blocking() {
        Err(Error::Io(e)) => assert!(e.to_string().contains("3 newly opened"), "{e}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!((counts.opened(), counts.cleaned()), (3, 3));
    assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
    // The slot was not lost: the next acquire tries three more.
    assert!(matches!(pool.acquire_blocking(), Err(Error::Io(_))));
    assert_eq!(counts.opened(), 6);
}

#[test]
fn the_attempts_count_per_acquire_and_are_configurable() {
    let counts = Arc::new(Counts::default());
    let pool = first_bad(&counts, 3)
        .new_connection_attempts(2)
        .build()
        .unwrap();
    assert!(matches!(pool.acquire_blocking(), Err(Error::Io(_))));
    assert_eq!(counts.opened(), 2, "0 and 1 failed: two attempts");
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(
        *conn, 3,
        "a new acquire starts counting again: 2 failed, 3 passed"
    );
}

#[test]
fn one_attempt_fails_at_the_first_bad_new_connection() {
    let counts = Arc::new(Counts::default());
    let pool = first_bad(&counts, 1)
        .new_connection_attempts(1)
        .build()
        .unwrap();
    assert!(matches!(pool.acquire_blocking(), Err(Error::Io(_))));
    assert_eq!((counts.opened(), counts.cleaned()), (1, 1));
    assert_eq!(*pool.acquire_blocking().unwrap(), 1);
}

#[test]
fn zero_attempts_is_refused_by_build() {
    let refused = ConnectionPool::builder(|| Ok(()))
        .new_connection_attempts(0)
        .build();
    assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_check_that_panics_on_a_new_connection_is_not_retried() {
    quiet_panics();
    let counts = Arc::new(Counts::default());
    let opening = Arc::clone(&counts);
    let pool = ConnectionPool::builder(move || Ok(opening.opened.fetch_add(1, SeqCst)))
        .health_check(|_| panic!("expected: the check itself is broken"))
        .build()
        .unwrap();
    match pool.acquire_blocking() {
        Err(Error::Io(e)) => assert!(e.to_string().contains("broken"), "{e}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!(counts.opened(), 1);
    assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
}

#[test]
fn an_idle_connection_returned_during_a_retry_is_taken_instead_of_opening_another() {
    // Connection 0 is held; the second acquire opens 1, whose factory call gives 0 back, and 1
    // fails its check: the retry finds 0 idle and takes it, with no third factory call.
    let counts = Arc::new(Counts::default());
    let held: Arc<Mutex<Option<Pooled<usize>>>> = Arc::default();
    let (opening, to_return) = (Arc::clone(&counts), Arc::clone(&held));
    let pool = ConnectionPool::builder(move || {
        let id = opening.opened.fetch_add(1, SeqCst);
        if id == 1 {
            drop(to_return.lock().unwrap().take()); // connection 0 comes back now
        }
        Ok(id)
    })
    .health_check(|id| *id != 1)
    .max_size(2)
    .build()
    .unwrap();
    *held.lock().unwrap() = Some(pool.acquire_blocking().unwrap());
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(*conn, 0);
    assert_eq!(counts.opened(), 2);
    assert_eq!(pool.stats().size, 1, "connection 1 was cleaned");
}

#[test]
fn the_retries_stop_at_the_acquires_deadline() {
    // Connection 0 fails its check; opening connection 1 waits for a gate that opens only
    // after the acquire's timeout has passed: the acquire ends `TimedOut`, not after the gate.
    let counts = Arc::new(Counts::default());
    let gate = Arc::new(Event::new());
    let (opening, open_gate) = (Arc::clone(&counts), Arc::clone(&gate));
    let pool = ConnectionPool::builder_async(move || {
        let id = opening.opened.fetch_add(1, SeqCst);
        let gate = Arc::clone(&open_gate);
        async move {
            if id == 1 {
                gate.wait().await;
            }
            Ok(id)
        }
    })
    .health_check(|id| *id != 0)
    .max_size(1)
    .build()
    .unwrap();
    // Whenever the timeout fires (before the first attempt on a stalled machine, or, as
    // normally, during the second), the outcome is `TimedOut`: never the first attempt's
    // failure, and never a wait for the gate.
    let late = block_on(pool.acquire_timeout(Duration::from_millis(100)));
    assert_eq!(late.unwrap_err(), Error::TimedOut);
    assert!(counts.opened() <= 2);
    assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
    gate.set();
    let conn = block_on(pool.acquire()).unwrap();
    assert_ne!(
        *conn, 0,
        "the slot was given back, and the check still holds"
    );
}
