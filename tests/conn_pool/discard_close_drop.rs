//! Discarded connections, a closed pool, a dropped pool.

use super::*;

#[test]
fn discard_cleans_the_connection_and_frees_its_slot() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).max_size(1).build().unwrap();
    pool.acquire_blocking().unwrap().discard();
    assert_eq!(counts.cleaned(), 1);
    assert_eq!(pool.stats().size, 0);
    assert_eq!(
        *pool.acquire_blocking().unwrap(),
        1,
        "a new one took its slot"
    );
}

#[test]
fn close_cleans_idle_at_once_and_in_use_on_return() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).min_size(3).build().unwrap();
    let held = pool.acquire_blocking().unwrap();
    pool.close();
    assert!(pool.is_closed());
    assert_eq!(counts.cleaned(), 2, "the two idle ones, at once");
    assert_eq!(pool.acquire_blocking().unwrap_err(), Error::ShutDown);
    assert_eq!(block_on(pool.acquire()).unwrap_err(), Error::ShutDown);
    drop(held);
    assert_eq!(counts.cleaned(), 3, "the one in use, when returned");
    pool.close(); // twice is fine
    assert_eq!(counts.cleaned(), 3);
    assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
}

#[test]
fn close_wakes_every_waiter_with_shut_down() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let p = pool.clone();
            thread::spawn(move || p.acquire_blocking().map(drop))
        })
        .collect();
    let deadline = Instant::now() + BOUND;
    while pool.stats().waiters != 5 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    }
    pool.close();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Err(Error::ShutDown));
    }
    drop(held);
    assert_eq!(pool.stats().waiters, 0);
}

#[test]
fn dropping_the_pool_cleans_idle_now_and_in_use_when_returned() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).min_size(2).build().unwrap();
    let held = pool.acquire_blocking().unwrap();
    drop(pool);
    assert_eq!(counts.cleaned(), 0, "the guard keeps the pool alive");
    drop(held);
    assert_eq!(counts.cleaned(), 2);

    let pool = counted(&counts).min_size(2).build().unwrap();
    drop(pool);
    assert_eq!(counts.cleaned(), 4);
}
