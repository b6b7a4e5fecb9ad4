//! asyncutils `ConnectionPool`, as aplex's `ConnectionPool`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aplex::{ConnectionPool, Error};

use crate::peer_common::HANG;

/// A factory of numbered connections that counts what it made.
fn numbered() -> (
    Arc<AtomicUsize>,
    impl Fn() -> std::io::Result<usize> + Send + Sync,
) {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    (made, move || Ok(counter.fetch_add(1, Ordering::SeqCst)))
}

#[test]
fn acquire_release_reuses() {
    // asyncutils: ConnectionPool.acquire / release: a released connection is handed out again
    let (made, factory) = numbered();
    let pool = ConnectionPool::builder(factory)
        .max_size(2)
        .build()
        .unwrap();
    let first = *pool.acquire_blocking().unwrap();
    let again = *pool.acquire_blocking().unwrap();
    assert_eq!(first, again);
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[test]
fn minsize_made_at_start() {
    // asyncutils: ConnectionPool(minsize=) with `currsize`, `available`, `in_use`
    let (made, factory) = numbered();
    let pool = ConnectionPool::builder(factory)
        .min_size(2)
        .max_size(4)
        .build()
        .unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 2);
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use), (2, 2, 0));
    let held = pool.acquire_blocking().unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use), (2, 1, 1));
    drop(held);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn maxsize_makes_acquirers_wait() {
    // asyncutils: ConnectionPool(maxsize=): beyond it, acquire waits for a release
    let (made, factory) = numbered();
    let pool = ConnectionPool::builder(factory)
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    aplex::block_on(async {
        assert!(pool
            .acquire_timeout(Duration::from_millis(10))
            .await
            .is_err());
    });
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.acquire_blocking_timeout(HANG).map(|c| *c))
    };
    crate::peer_common::wait_for("the acquirer waits", || pool.stats().waiters == 1);
    let id = *held;
    drop(held);
    assert_eq!(waiter.join().unwrap(), Ok(id));
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[test]
fn healthchecker_discards() {
    // asyncutils: ConnectionPool(healthchecker=, cleaner=): a connection that fails its
    // check when acquired again is not handed out; the cleaner gets it, and a new one is made
    let (made, factory) = numbered();
    let broken = Arc::new(Mutex::new(Vec::new()));
    let cleaned = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&cleaned);
    let check = Arc::clone(&broken);
    let pool = ConnectionPool::builder(factory)
        .max_size(2)
        .health_check(move |conn| !check.lock().unwrap().contains(conn))
        .cleanup(move |conn| sink.lock().unwrap().push(conn))
        .build()
        .unwrap();
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(*conn, 0);
    broken.lock().unwrap().push(0);
    drop(conn);
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(*conn, 1, "connection 0 failed its check");
    assert_eq!(*cleaned.lock().unwrap(), [0]);
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[test]
fn maxlife_retires() {
    // asyncutils: ConnectionPool(maxlife=): an older connection is retired, not reused
    let (made, factory) = numbered();
    let pool = ConnectionPool::builder(factory)
        .max_size(1)
        .max_life(Duration::from_millis(5))
        .build()
        .unwrap();
    let first = pool.acquire_blocking().unwrap();
    let id = *first;
    while first.age() <= Duration::from_millis(5) {
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(first);
    let next = pool.acquire_blocking().unwrap();
    assert_ne!(*next, id);
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[test]
fn stop_closes() {
    // asyncutils: ConnectionPool.stop (aplex: `close`): no acquire after it
    let (_made, factory) = numbered();
    let pool = ConnectionPool::builder(factory)
        .max_size(1)
        .build()
        .unwrap();
    pool.close();
    assert!(pool.is_closed());
    assert_eq!(pool.acquire_blocking().unwrap_err(), Error::ShutDown);
}
