//! Health checks and max life.

use super::*;

#[test]
fn health_check_runs_on_new_connections_too() {
    let checks = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&checks);
    let pool = ConnectionPool::builder(|| Ok(()))
        .health_check(move |_| {
            c.fetch_add(1, SeqCst);
            true
        })
        .build()
        .unwrap();
    drop(pool.acquire_blocking().unwrap()); // new
    assert_eq!(checks.load(SeqCst), 1);
    drop(pool.acquire_blocking().unwrap()); // reused
    assert_eq!(checks.load(SeqCst), 2);
}

#[test]
fn unhealthy_idle_connection_is_cleaned_and_replaced() {
    let counts = Arc::new(Counts::default());
    let bad = Arc::new(Mutex::new(Vec::<Conn>::new()));
    let b = Arc::clone(&bad);
    let pool = counted(&counts)
        .min_size(2)
        .health_check(move |id| !b.lock().unwrap().contains(id))
        .build()
        .unwrap();
    assert_eq!(counts.opened(), 2);
    bad.lock().unwrap().extend([0, 1]); // both idle ones go bad
    let conn = pool.acquire_blocking().unwrap();
    assert_eq!(*conn, 2, "both bad ones were skipped, a new one opened");
    assert_eq!(counts.cleaned(), 2);
    assert_eq!(pool.stats().size, 1);
}

#[test]
fn new_connection_failing_the_health_check_is_an_io_error_and_frees_the_slot() {
    let counts = Arc::new(Counts::default());
    let healthy = Arc::new(AtomicBool::new(false));
    let h = Arc::clone(&healthy);
    let pool = counted(&counts)
        .max_size(1)
        .health_check(move |_| h.load(SeqCst))
        .new_connection_attempts(1)
        .build()
        .unwrap();
    assert!(matches!(pool.acquire_blocking(), Err(Error::Io(_))));
    assert_eq!((counts.opened(), counts.cleaned()), (1, 1));
    healthy.store(true, SeqCst);
    assert_eq!(
        *pool.acquire_blocking().unwrap(),
        1,
        "the slot was not lost"
    );
}

#[test]
fn a_health_check_that_panics_fails_the_connection_and_loses_no_slot() {
    quiet_panics();
    let counts = Arc::new(Counts::default());
    let panicked = Arc::new(AtomicBool::new(false));
    let p = Arc::clone(&panicked);
    let pool = counted(&counts)
        .max_size(1)
        .health_check(move |_| {
            if !p.swap(true, SeqCst) {
                panic!("expected: health check blew up");
            }
            true
        })
        .build()
        .unwrap();
    match pool.acquire_blocking() {
        Err(Error::Io(e)) => assert!(e.to_string().contains("blew up"), "{e}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!((stats.size, stats.available, stats.in_use), (0, 0, 0));
    assert_eq!(counts.cleaned(), 1, "the failed connection was cleaned");
    assert_eq!(
        *pool.acquire_blocking().unwrap(),
        1,
        "a new one, not the failed one"
    );
}

#[test]
fn max_life_retires_an_idle_connection_instead_of_handing_it_out() {
    let counts = Arc::new(Counts::default());
    let life = Duration::from_millis(100);
    let pool = counted(&counts).max_life(life).build().unwrap();
    let before_birth = Instant::now();
    assert_eq!(*pool.acquire_blocking().unwrap(), 0);
    let again = pool.acquire_blocking().unwrap();
    // Young, so reused. Only a thread stalled past the max life (a busy machine) may have seen
    // connection 0 expire: then this check cannot tell, and the rest still holds.
    if before_birth.elapsed() < life {
        assert_eq!(*again, 0, "still young: reused");
    }
    let id = *again;
    // Time must pass: this is what max life measures. `now - age` is not before the birth.
    let born = Instant::now() - again.age();
    drop(again);
    while born.elapsed() <= life {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *pool.acquire_blocking().unwrap(),
        id + 1,
        "expired: replaced"
    );
    assert_eq!(counts.cleaned(), id + 1);
}

#[test]
fn max_life_retires_a_connection_when_it_is_returned() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts)
        .max_life(Duration::from_millis(20))
        .build()
        .unwrap();
    let conn = pool.acquire_blocking().unwrap();
    thread::sleep(Duration::from_millis(30));
    assert!(conn.age() >= Duration::from_millis(20));
    drop(conn);
    assert_eq!(counts.cleaned(), 1);
    assert_eq!(pool.stats().size, 0);
}

#[test]
fn maintain_sweeps_expired_and_tops_up_to_min_size() {
    let counts = Arc::new(Counts::default());
    let life = Duration::from_millis(100);
    let pool = counted(&counts)
        .min_size(3)
        .max_size(4)
        .max_life(life)
        .build()
        .unwrap();
    let built = Instant::now(); // not before the first three were born
    assert_eq!(pool.stats().available, 3);
    while built.elapsed() <= life {
        thread::sleep(Duration::from_millis(5));
    }
    let before_top_up = Instant::now();
    assert_eq!(pool.maintain_blocking().unwrap(), 3);
    assert_eq!((counts.opened(), counts.cleaned()), (6, 3));
    assert_eq!(pool.stats().available, 3);
    let swept = block_on(pool.maintain()).unwrap();
    // The three new ones are still young, unless a busy machine stalled this thread past
    // their max life: then this check cannot tell.
    if before_top_up.elapsed() < life {
        assert_eq!(swept, 0, "already warm");
    }
}
