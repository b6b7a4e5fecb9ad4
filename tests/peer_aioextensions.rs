//! aioextensions' own tests (fluidattacks/aioextensions `test/test___init__.py`: `test_resolve`)
//! and the behaviour its documentation promises for `collect`, `rate_limited`, `in_thread`,
//! `generate_in_thread`, `run`, `force_loop_cycle` and `Semaphore.acquire_many`, ported to
//! aplex's helpers. Each test names what it mirrors.
//!
//! aioextensions' test times its futures with `asyncio.sleep` and asserts the total time
//! (`round(elapsed, 1) == 0.4`): here the slow future waits on an event that only the others,
//! finishing first, can set, so the same schedule is checked by events; a time bound only
//! catches a hang.
//!
//! Not ported: `unblock_cpu`/`in_process` (needs a worker binary; the process pool's tests
//! cover it), `schedule` (aplex's `spawn_local` returns the task itself).

#![cfg(feature = "helpers")]

mod peer_common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::sync::{Event, Semaphore};
use aplex::time::timeout;
use aplex::{collect, generate_in_thread, in_thread, resolve, RateLimiter};

use peer_common::HANG;

#[derive(Debug, PartialEq)]
struct Caught;

#[test]
fn test_resolve() {
    // aioextensions: test_resolve: do(n) for n in 0..5 on 2 workers, greediness 4; do(0) is
    // slow, do(3) raises. One worker stays on 0 while the other runs 1..4: here do(0) can
    // only finish after 1..4 have, so resolve must run them past the slow one.
    let others_done = Event::new();
    let finished = Cell::new(0);
    let order = std::cell::RefCell::new(Vec::new());
    let work = |n: u32| {
        let others_done = &others_done;
        let finished = &finished;
        let order = &order;
        async move {
            if n == 0 {
                others_done.wait().await;
            } else {
                aplex::yield_now().await;
            }
            order.borrow_mut().push(n);
            finished.set(finished.get() + 1);
            if finished.get() == 4 {
                others_done.set();
            }
            if n == 3 {
                return Err(Caught);
            }
            Ok(n)
        }
    };
    let results = aplex::block_on(timeout(HANG, async {
        let mut r = resolve((0..5).map(work), 2).greediness(4);
        let mut results = Vec::new();
        while let Some(v) = r.next().await {
            results.push(v);
        }
        results
    }))
    .expect("resolve waited on the slow future before running the others");
    assert_eq!(results, vec![Ok(0), Ok(1), Ok(2), Err(Caught), Ok(4)]);
    assert_eq!(order.into_inner(), vec![1, 2, 3, 4, 0]);

    // One future; and none.
    assert_eq!(
        aplex::block_on(async {
            let mut r = resolve([async { 0 }], 1);
            let first = r.next().await;
            (first, r.next().await)
        }),
        (Some(0), None)
    );
    let mut empty = resolve(Vec::<std::future::Ready<u8>>::new(), 1);
    assert_eq!(aplex::block_on(empty.next()), None);
}

#[test]
fn resolve_greediness_bounds_unread_outputs() {
    // aioextensions: resolve's `greediness`: how many finished results may wait unread
    let pulled = Cell::new(0);
    let mut r = resolve(
        (0..10).map(|n| {
            pulled.set(pulled.get() + 1);
            async move { n }
        }),
        4,
    )
    .greediness(2);
    let first = aplex::block_on(r.next());
    assert_eq!(first, Some(0));
    assert!(r.buffered() <= 2, "{} outputs wait", r.buffered());
    let rest: Vec<_> = aplex::block_on(async {
        let mut rest = Vec::new();
        while let Some(v) = r.next().await {
            rest.push(v);
        }
        rest
    });
    assert_eq!(rest, (1..10).collect::<Vec<_>>());
    assert_eq!(pulled.get(), 10);
}

#[test]
fn collect_input_order_at_most_workers() {
    // aioextensions: collect(awaitables, workers=): results in input order, at most
    // `workers` running at once
    let running = Cell::new(0);
    let most = Cell::new(0);
    let out = aplex::block_on(collect(
        (0..20u32).map(|n| {
            let running = &running;
            let most = &most;
            async move {
                running.set(running.get() + 1);
                most.set(most.get().max(running.get()));
                for _ in 0..(20 - n) % 3 {
                    aplex::yield_now().await;
                }
                running.set(running.get() - 1);
                n * 10
            }
        }),
        3,
    ));
    assert_eq!(out, (0..20).map(|n| n * 10).collect::<Vec<_>>());
    assert_eq!(most.get(), 3);
}

#[test]
fn rate_limited() {
    // aioextensions: rate_limited(max_calls=2, max_calls_period=…,
    // min_seconds_between_calls=…): no window of `period` holds more than 2 starts, and
    // starts are at least `min_interval` apart (checked from the starts' own instants)
    let period = Duration::from_millis(60);
    let gap = Duration::from_millis(10);
    let limiter = RateLimiter::new(2, period).min_interval(gap);
    let starts = aplex::block_on(async {
        let mut starts = Vec::new();
        for _ in 0..6 {
            starts.push(limiter.run(async { Instant::now() }).await);
        }
        starts
    });
    for w in starts.windows(2) {
        assert!(w[1] - w[0] >= gap, "starts {:?} apart", w[1] - w[0]);
    }
    for i in 2..starts.len() {
        assert!(starts[i] - starts[i - 2] >= period);
    }
}

#[test]
fn rate_limited_is_shared_across_threads() {
    // aioextensions: rate_limited decorates a function that many tasks call: one limit
    // 9 starts at 3 per 50 ms: the 7th start is at least 100 ms after the first, so the last
    // record (taken after its start) is at least 100 ms after a moment before the first start.
    let limiter = RateLimiter::new(3, Duration::from_millis(50));
    let before_all = Instant::now();
    let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let limiter = limiter.clone();
            let starts = Arc::clone(&starts);
            std::thread::spawn(move || {
                for _ in 0..3 {
                    aplex::block_on(limiter.acquire());
                    starts.lock().unwrap().push(Instant::now());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 9);
    let last = starts.iter().max().unwrap();
    assert!(*last - before_all >= Duration::from_millis(100));
}

#[test]
fn in_thread_runs_elsewhere() {
    // aioextensions: in_thread(function): the blocking call runs on another thread, and the
    // awaiting loop is free meanwhile
    let caller = std::thread::current().id();
    let open = Arc::new(Event::new());
    let worker_open = Arc::clone(&open);
    let (id, ticks) = aplex::block_on(async {
        let handle = in_thread(move || {
            worker_open.wait_blocking();
            std::thread::current().id()
        });
        // The loop runs other work while the call blocks its thread.
        let ticks = aplex::spawn_local(async move {
            aplex::yield_now().await;
            open.set();
            1
        });
        (handle.await.unwrap(), ticks.await)
    });
    assert_ne!(id, caller);
    assert_eq!(ticks, 1);
}

#[test]
fn generate_in_thread_yields_in_order() {
    // aioextensions: generate_in_thread(gen_func): a blocking generator consumed
    // asynchronously, in order, produced on another thread
    let caller = std::thread::current().id();
    let rx = generate_in_thread((0..50).map(move |i| (i, std::thread::current().id() != caller)));
    let got = aplex::block_on(async move {
        let mut rx = rx;
        let mut got = Vec::new();
        while let Some(item) = rx.recv().await {
            got.push(item);
        }
        got
    });
    assert_eq!(got, (0..50).map(|i| (i, true)).collect::<Vec<_>>());
}

#[test]
fn generate_in_thread_stops_when_dropped() {
    // aioextensions: generate_in_thread of an endless generator: dropping the consumer stops it
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let mut rx = generate_in_thread((0..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(rx.recv_blocking(), Some(0));
    drop(rx);
    peer_common::wait_for("the producer stops", || {
        let before = produced.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        produced.load(Ordering::SeqCst) == before
    });
    // Bounded: what the channel held, plus the item that found it closed.
    assert!(produced.load(Ordering::SeqCst) <= aplex::GENERATE_CAPACITY + 2);
}

#[test]
fn run() {
    // aioextensions: run(coroutine): runs it to its end and returns its value
    let x = 20;
    assert_eq!(aplex::block_on(async { x + 22 }), 42);
}

#[test]
fn force_loop_cycle() {
    // aioextensions: force_loop_cycle(): lets the other tasks of the loop run
    let seen = aplex::block_on(async {
        let flag = std::rc::Rc::new(Cell::new(false));
        let other = {
            let flag = flag.clone();
            aplex::spawn_local(async move { flag.set(true) })
        };
        assert!(!flag.get());
        aplex::yield_now().await;
        let seen = flag.get();
        other.await;
        seen
    });
    assert!(seen);
}

#[test]
fn semaphore_acquire_many() {
    // aioextensions: Semaphore.acquire_many(times): all the permits at once, or none
    let sem = Semaphore::new(3);
    aplex::block_on(async {
        let three = sem.acquire_many(3).await;
        assert_eq!(three.permits(), 3);
        assert_eq!(sem.available_permits(), 0);
        assert!(timeout(Duration::from_millis(5), sem.acquire())
            .await
            .is_err());
        drop(three);
        let two = sem.acquire_many(2).await;
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire_many(2).is_none(), "all or none");
        assert_eq!(sem.available_permits(), 1);
        drop(two);
    });
    assert_eq!(sem.available_permits(), 3);
}
