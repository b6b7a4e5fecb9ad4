//! Acquire timeouts and acquires dropped mid-way: no slot is ever lost.

use super::*;

#[test]
fn acquire_timeout_times_out_while_all_are_in_use() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .build()
        .unwrap();
    block_on(async {
        let _a = pool.acquire().await.unwrap();
        let _b = pool.acquire().await.unwrap();
        let start = Instant::now();
        let late = pool.acquire_timeout(Duration::from_millis(30)).await;
        assert_eq!(late.unwrap_err(), Error::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < BOUND);
        assert_eq!(
            pool.stats().waiters,
            0,
            "the timed-out acquire left the line"
        );
    });
    let _a = pool.acquire_blocking().unwrap();
    let _b = pool.acquire_blocking().unwrap();
    let late = pool.acquire_blocking_timeout(Duration::from_millis(20));
    assert_eq!(late.unwrap_err(), Error::TimedOut);
}

#[test]
fn acquire_timeout_succeeds_when_a_connection_comes_back_in_time() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    block_on(async {
        let held = pool.acquire().await.unwrap();
        let releaser = spawn_local(async move {
            aplex::time::sleep(Duration::from_millis(10)).await;
            drop(held);
        });
        let got = pool.acquire_timeout(BOUND).await;
        assert!(got.is_ok());
        releaser.await;
    });
    let held = pool.acquire_blocking().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        drop(held);
    });
    assert!(pool.acquire_blocking_timeout(BOUND).is_ok());
    releaser.join().unwrap();
}

#[test]
fn dropped_pending_acquire_leaks_no_slot() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    {
        let mut pending = pin!(pool.acquire());
        assert!(poll_once(&mut pending).is_pending());
        assert_eq!(pool.stats().waiters, 1);
    } // dropped while waiting in line
    assert_eq!(pool.stats().waiters, 0);
    drop(held);
    let again = pool.acquire_blocking_timeout(BOUND);
    assert!(again.is_ok(), "the slot was leaked: {again:?}");
}

#[test]
fn dropped_acquire_that_was_granted_but_never_polled_leaks_no_slot() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    let mut pending = Box::pin(pool.acquire());
    assert!(poll_once(&mut pending).is_pending());
    drop(held); // grants the slot to `pending`, which is never polled again
    drop(pending);
    let again = pool.acquire_blocking_timeout(BOUND);
    assert!(again.is_ok(), "the slot was leaked: {again:?}");
}

#[test]
fn acquire_cancelled_while_the_async_factory_runs_leaks_no_slot() {
    let counts = Arc::new(Counts::default());
    let opening = Arc::clone(&counts);
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = ConnectionPool::builder_async(move || {
        let counts = Arc::clone(&opening);
        // The first call never ends on its own, however late the timeout fires; the next is quick.
        let first = calls.fetch_add(1, SeqCst) == 0;
        async move {
            if first {
                std::future::pending::<()>().await;
            }
            Ok(counts.open())
        }
    })
    .max_size(1)
    .build()
    .unwrap();
    block_on(async {
        let slow = pool.acquire_timeout(Duration::from_millis(10)).await;
        assert_eq!(slow.unwrap_err(), Error::TimedOut);
        assert_eq!(
            counts.opened(),
            0,
            "the factory's future was dropped midway"
        );
        assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
        let conn = pool.acquire_timeout(BOUND).await.unwrap();
        assert_eq!(*conn, 0);
    });
}
