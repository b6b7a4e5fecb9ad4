//! Behaviour of `aplex::ConnectionPool`: the size bound under contention, FIFO service, health
//! checks, max life, discard, close, factory errors, timeouts, cancellation and stats.
#![cfg(feature = "conn-pool")]

use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use aplex::{block_on, spawn_local, yield_now, ConnectionPool, Error, Pooled};

/// The longest any wait in these tests may take before the test fails instead of hanging.
const BOUND: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Helpers

/// Counts what a pool's factory and cleanup did.
#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    cleaned: AtomicUsize,
    /// Connections alive right now: opened and not yet cleaned.
    live: AtomicUsize,
    /// The most ever alive at once.
    peak: AtomicUsize,
}

impl Counts {
    fn open(&self) -> usize {
        let id = self.opened.fetch_add(1, SeqCst);
        let live = self.live.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(live, SeqCst);
        id
    }

    fn clean(&self) {
        self.cleaned.fetch_add(1, SeqCst);
        self.live.fetch_sub(1, SeqCst);
    }

    fn opened(&self) -> usize {
        self.opened.load(SeqCst)
    }

    fn cleaned(&self) -> usize {
        self.cleaned.load(SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(SeqCst)
    }
}

/// A connection: its id, numbered from 0 in opening order.
type Conn = usize;

/// A pool builder whose factory and cleanup report to `counts`.
fn counted(counts: &Arc<Counts>) -> aplex::ConnectionPoolBuilder<Conn> {
    let (opening, cleaning) = (Arc::clone(counts), Arc::clone(counts));
    ConnectionPool::builder(move || Ok(opening.open())).cleanup(move |_| cleaning.clean())
}

/// A no-op waker, for polling by hand.
fn noop_waker() -> Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// Polls `f` once by hand.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = noop_waker();
    std::pin::Pin::new(f).poll(&mut Context::from_waker(&waker))
}

/// Runs `f` on a thread and fails the test if it does not finish within `BOUND`.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .expect("the test body did not finish in time")
}

/// Yields in `block_on` until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        yield_now().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The size bound and FIFO service

#[test]
fn peak_stays_within_max_size_under_100_tasks() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).max_size(8).build().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (pool, served) = (pool.clone(), Arc::clone(&served));
                spawn_local(async move {
                    for _ in 0..5 {
                        let conn = pool.acquire().await.unwrap();
                        assert!(pool.stats().in_use <= 8);
                        aplex::time::sleep(Duration::from_micros(200)).await;
                        drop(conn);
                        served.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
    assert_eq!(served.load(SeqCst), 500);
    assert_eq!(counts.peak(), 8, "the pool grew to max_size and no further");
    assert_eq!(counts.opened(), 8, "returned connections were reused");
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.available, stats.in_use, stats.waiters),
        (8, 8, 0, 0)
    );
}

#[test]
fn peak_stays_within_max_size_under_100_threads() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).max_size(8).build().unwrap();
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                for _ in 0..5 {
                    let conn = pool.acquire_blocking().unwrap();
                    thread::sleep(Duration::from_micros(100));
                    drop(conn);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(counts.peak() <= 8, "peak {} > max_size 8", counts.peak());
    assert_eq!(counts.peak(), counts.opened());
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(pool.stats().waiters, 0);
}

#[test]
fn peak_stays_within_max_size_with_discards_and_an_async_factory() {
    let counts = Arc::new(Counts::default());
    let (opening, cleaning) = (Arc::clone(&counts), Arc::clone(&counts));
    let pool = ConnectionPool::builder_async(move || {
        let counts = Arc::clone(&opening);
        async move {
            aplex::time::sleep(Duration::from_micros(100)).await;
            Ok(counts.open())
        }
    })
    .cleanup(move |_| cleaning.clean())
    .max_size(4)
    .build()
    .unwrap();
    block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let pool = pool.clone();
                spawn_local(async move {
                    let conn = pool.acquire().await.unwrap();
                    yield_now().await;
                    if i % 3 == 0 {
                        conn.discard(); // forces new connections all along
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
    assert!(counts.peak() <= 4, "peak {} > max_size 4", counts.peak());
    assert_eq!(counts.cleaned(), 34);
    assert_eq!(counts.live.load(SeqCst), pool.stats().size);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    block_on(async {
        let held = pool.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (p, order) = (pool.clone(), Arc::clone(&order));
            tasks.push(spawn_local(async move {
                let conn = p.acquire().await.unwrap();
                order.lock().unwrap().push(i);
                yield_now().await; // hold it across a turn: the others must keep waiting
                drop(conn);
            }));
            // Let task i join the line before task i + 1 is spawned.
            until(|| pool.stats().waiters == i + 1).await;
        }
        drop(held);
        for task in tasks {
            task.await;
        }
    });
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn blocked_threads_are_served_in_arrival_order() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = pool.acquire_blocking().unwrap();
    let mut threads = Vec::new();
    for i in 0..6 {
        let (p, order) = (pool.clone(), Arc::clone(&order));
        threads.push(thread::spawn(move || {
            let conn = p.acquire_blocking().unwrap();
            order.lock().unwrap().push(i);
            drop(conn);
        }));
        let deadline = Instant::now() + BOUND;
        while pool.stats().waiters != i + 1 {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(1));
        }
    }
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..6).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Health check and max life

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
    let pool = counted(&counts)
        .max_life(Duration::from_millis(30))
        .build()
        .unwrap();
    assert_eq!(*pool.acquire_blocking().unwrap(), 0);
    assert_eq!(*pool.acquire_blocking().unwrap(), 0, "still young: reused");
    thread::sleep(Duration::from_millis(40));
    assert_eq!(*pool.acquire_blocking().unwrap(), 1, "expired: replaced");
    assert_eq!(counts.cleaned(), 1);
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
    let pool = counted(&counts)
        .min_size(3)
        .max_size(4)
        .max_life(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(pool.stats().available, 3);
    thread::sleep(Duration::from_millis(30));
    assert_eq!(pool.maintain_blocking().unwrap(), 3);
    assert_eq!((counts.opened(), counts.cleaned()), (6, 3));
    assert_eq!(pool.stats().available, 3);
    assert_eq!(block_on(pool.maintain()).unwrap(), 0, "already warm");
}

// ---------------------------------------------------------------------------------------------
// Discard, close and drop

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

// ---------------------------------------------------------------------------------------------
// Factory errors

#[test]
fn factory_error_is_io_and_the_slot_is_not_lost() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ConnectionPool::builder(move || {
        if c.fetch_add(1, SeqCst) < 5 {
            Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"))
        } else {
            Ok("up")
        }
    })
    .max_size(1)
    .build()
    .unwrap();
    for _ in 0..5 {
        match pool.acquire_blocking() {
            Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("expected an Io error, got {other:?}"),
        }
    }
    assert_eq!(*pool.acquire_blocking().unwrap(), "up");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.in_use), (1, 0)); // the guard above was dropped
}

#[test]
fn factory_error_in_build_is_returned_and_opened_ones_are_cleaned() {
    let counts = Arc::new(Counts::default());
    let (opening, cleaning) = (Arc::clone(&counts), Arc::clone(&counts));
    let built = ConnectionPool::builder(move || {
        if opening.opened() == 2 {
            return Err(io::Error::other("third one fails"));
        }
        Ok(opening.open())
    })
    .cleanup(move |_| cleaning.clean())
    .min_size(3)
    .build();
    assert_eq!(built.unwrap_err().to_string(), "third one fails");
    assert_eq!((counts.opened(), counts.cleaned()), (2, 2));
}

#[test]
fn bad_sizes_are_rejected_by_build() {
    let zero = ConnectionPool::builder(|| Ok(())).max_size(0).build();
    assert_eq!(zero.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let inverted = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(3)
        .build();
    assert_eq!(inverted.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let full = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(2)
        .build();
    assert_eq!(full.unwrap().stats().size, 2);
}

// ---------------------------------------------------------------------------------------------
// Timeouts and cancellation

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
        let got = pool.acquire_timeout(Duration::from_secs(2)).await;
        assert!(got.is_ok());
        releaser.await;
    });
    let held = pool.acquire_blocking().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        drop(held);
    });
    assert!(pool
        .acquire_blocking_timeout(Duration::from_secs(2))
        .is_ok());
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
    let again = pool.acquire_blocking_timeout(Duration::from_secs(1));
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
    let again = pool.acquire_blocking_timeout(Duration::from_secs(1));
    assert!(again.is_ok(), "the slot was leaked: {again:?}");
}

#[test]
fn acquire_cancelled_while_the_async_factory_runs_leaks_no_slot() {
    let counts = Arc::new(Counts::default());
    let opening = Arc::clone(&counts);
    let pool = ConnectionPool::builder_async(move || {
        let counts = Arc::clone(&opening);
        async move {
            aplex::time::sleep(Duration::from_millis(200)).await;
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
        let conn = pool.acquire_timeout(Duration::from_secs(2)).await.unwrap();
        assert_eq!(*conn, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Stats, async factories, blocking callers

#[test]
fn stats_track_every_field() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(1)
        .build()
        .unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (1, 1, 0, 0));
    let a = pool.acquire_blocking().unwrap();
    let b = pool.acquire_blocking().unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (2, 0, 2, 0));
    let mut pending = Box::pin(pool.acquire());
    assert!(poll_once(&mut pending).is_pending());
    assert_eq!(pool.stats().waiters, 1);
    drop(a);
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use), (2, 1, 1));
    let Poll::Ready(Ok(c)) = poll_once(&mut pending) else {
        panic!("the returned connection went to the waiter");
    };
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (2, 0, 2, 0));
    drop((b, c));
    assert_eq!(pool.stats().available, 2);
    assert_eq!(pool.max_size(), 2);
}

#[test]
fn async_factory_works_from_tasks_threads_and_build_async() {
    let pool = ConnectionPool::builder_async(|| async {
        aplex::time::sleep(Duration::from_millis(1)).await;
        Ok(String::from("conn"))
    })
    .min_size(1)
    .build()
    .unwrap();
    assert_eq!(pool.stats().available, 1);
    let p = pool.clone();
    let from_thread = bounded(move || p.acquire_blocking().map(|c| c.len()));
    assert_eq!(from_thread, Ok(4));
    block_on(async {
        assert_eq!(pool.acquire().await.unwrap().as_str(), "conn");
        let built = ConnectionPool::builder_async(|| async { Ok(1u8) })
            .min_size(2)
            .build_async()
            .await
            .unwrap();
        assert_eq!(built.stats().available, 2);
    });
}

#[test]
fn blocking_call_with_an_async_factory_inside_block_on_panics_instead_of_hanging() {
    let pool = ConnectionPool::builder_async(|| async { Ok(()) })
        .build()
        .unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(async { pool.acquire_blocking().map(drop) })
    }));
    assert!(caught.is_err());
    assert!(pool.acquire_blocking().is_ok(), "fine outside block_on");
}

#[test]
fn pooled_guards_move_across_threads() {
    let pool = ConnectionPool::builder(|| Ok(vec![1, 2, 3]))
        .max_size(1)
        .build()
        .unwrap();
    let mut conn: Pooled<Vec<i32>> = pool.acquire_blocking().unwrap();
    conn.push(4);
    thread::spawn(move || drop(conn)).join().unwrap();
    assert_eq!(*pool.acquire_blocking().unwrap(), vec![1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------------
// Compile-time checks

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let pool = ConnectionPool::builder(|| std::net::TcpStream::connect("127.0.0.1:9"))
        .build()
        .unwrap();
    send_sync(&pool);
    send_sync(&ConnectionPool::builder(|| Ok(())));
    let acquire = pool.acquire();
    send(&acquire);
    let timed = pool.acquire_timeout(Duration::from_secs(1));
    send(&timed);
    let maintain = pool.maintain();
    send(&maintain);
    let pooled = ConnectionPool::builder(|| Ok(std::cell::Cell::new(0)))
        .build()
        .unwrap()
        .acquire_blocking()
        .unwrap();
    send(&pooled); // a Send connection that is not Sync
    let _ = format!("{pool:?} {pooled:?}");
}

#[test]
fn connection_types_need_not_be_debug() {
    struct Opaque; // no Debug: results holding a guard still unwrap and print
    let pool = ConnectionPool::builder(|| Ok(Opaque))
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    let late = pool.acquire_blocking_timeout(Duration::from_millis(1));
    assert_eq!(late.unwrap_err(), Error::TimedOut);
    assert!(format!("{held:?}").contains("Opaque"));
}

// ---------------------------------------------------------------------------------------------
// Panics in user closures keep the counts right.

/// Installs (once) a panic hook that keeps the panics these tests cause quiet.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.contains("expected") {
                default(info);
            }
        }));
    });
}

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
