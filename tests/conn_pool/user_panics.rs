//! Panics in user closures keep the counts right.

use super::*;

#[test]
fn an_idle_connection_whose_health_check_panics_is_never_handed_out_again() {
    quiet_panics();
    let counts = Arc::new(Counts::default());
    let poisoned = Arc::new(AtomicBool::new(false));
    let p = Arc::clone(&poisoned);
    let pool = counted(&counts)
        .max_size(1)
        .health_check(move |conn: &Conn| {
            if *conn == 0 && p.load(SeqCst) {
                panic!("expected: connection 0 is broken");
            }
            true
        })
        .build()
        .unwrap();
    assert_eq!(*pool.acquire_blocking().unwrap(), 0);
    poisoned.store(true, SeqCst);
    assert_eq!(
        *pool.acquire_blocking().unwrap(),
        1,
        "replaced, not handed out"
    );
    assert_eq!(counts.cleaned(), 1);
    for _ in 0..3 {
        assert_eq!(*pool.acquire_blocking().unwrap(), 1);
    }
    let stats = pool.stats();
    assert_eq!((stats.size, stats.available, stats.in_use), (1, 1, 0));
}

#[test]
fn a_factory_that_panics_propagates_and_loses_no_slot() {
    quiet_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ConnectionPool::builder(move || {
        if c.fetch_add(1, SeqCst) == 0 {
            panic!("expected: the factory blew up");
        }
        Ok(())
    })
    .max_size(1)
    .build()
    .unwrap();
    let first = panic::catch_unwind(AssertUnwindSafe(|| pool.acquire_blocking()));
    assert!(first.is_err());
    assert_eq!(pool.stats(), aplex::ConnectionPoolStats::default());
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!((pool.stats().size, pool.stats().in_use), (1, 1));
    drop(conn);
}

#[test]
fn a_cleanup_that_panics_in_the_expiry_sweep_keeps_the_counts_right() {
    quiet_panics();
    let counts = Arc::new(Counts::default());
    let panic_next = Arc::new(AtomicBool::new(false));
    let (opening, cleaning, p) = (
        Arc::clone(&counts),
        Arc::clone(&counts),
        Arc::clone(&panic_next),
    );
    let life = Duration::from_millis(300);
    let pool = ConnectionPool::builder(move || Ok(opening.open()))
        .cleanup(move |_| {
            cleaning.clean();
            if p.swap(false, SeqCst) {
                panic!("expected: cleanup blew up");
            }
        })
        .max_size(2)
        .max_life(life)
        .build()
        .unwrap();
    // Connection 0, then connection 1 about half a life later; both go back, 1 last (so it is
    // taken next) while 0 expires first.
    let old = pool.acquire_blocking().unwrap();
    let born = Instant::now() - old.age();
    while old.age() < life / 2 {
        thread::sleep(Duration::from_millis(5)); // time must pass: this is what max_life measures
    }
    let young = pool.acquire_blocking().unwrap();
    drop(old);
    drop(young);
    while Instant::now() < born + life {
        thread::sleep(Duration::from_millis(5));
    }
    // The sweep cleans connection 0 and its cleanup panics while connection 1 (if still young)
    // is on its way out of `idle`: the caller sees the panic, connection 1 goes back.
    panic_next.store(true, SeqCst);
    let swept = panic::catch_unwind(AssertUnwindSafe(|| pool.acquire_blocking().map(|c| *c)));
    assert!(swept.is_err(), "the cleanup's panic reaches the caller");
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert!(stats.size <= 1, "{stats:?}");
    let (a, b) = (
        pool.acquire_blocking().unwrap(),
        pool.acquire_blocking().unwrap(),
    );
    assert_eq!(pool.stats().size, 2, "never more than max_size");
    drop((a, b));
    assert!(counts.peak() <= 2);
}

#[test]
fn close_with_a_cleanup_that_panics_still_cleans_every_idle_connection() {
    quiet_panics();
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&cleaned);
    let pool = ConnectionPool::builder(|| Ok(()))
        .min_size(3)
        .cleanup(move |()| {
            if c.fetch_add(1, SeqCst) == 0 {
                panic!("expected: the first cleanup blew up");
            }
        })
        .build()
        .unwrap();
    assert_eq!(pool.stats().available, 3);
    let closed = panic::catch_unwind(AssertUnwindSafe(|| pool.close()));
    assert!(closed.is_err(), "the panic reaches the caller of close");
    assert_eq!(cleaned.load(SeqCst), 3, "every idle connection was cleaned");
    assert!(pool.is_closed());
    assert_eq!(pool.acquire_blocking().unwrap_err(), Error::ShutDown);
}
