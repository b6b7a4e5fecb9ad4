//! `Handle` and `Map` driven from foreign executors: wakers that alternate, handles polled once
//! and dropped, maps half read and dropped under a pool that then shuts down.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::Poll;
use std::time::Duration;

use aplex::{Error, ThreadPool};

use crate::{case, eventually, poll_with, run_foreign, threads, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "handle_polled_by_two_wakers_alternately_wakes_the_latest",
            handle_polled_by_two_wakers_alternately_wakes_the_latest,
        ),
        case(
            "handle_polled_once_then_dropped_the_work_still_runs",
            handle_polled_once_then_dropped_the_work_still_runs,
        ),
        case(
            "map_of_uneven_works_half_read_dropped_then_shutdown_leaks_no_thread",
            map_of_uneven_works_half_read_dropped_then_shutdown_leaks_no_thread,
        ),
        case(
            "map_next_pending_on_a_foreign_waker_then_shutdown_now",
            map_next_pending_on_a_foreign_waker_then_shutdown_now,
        ),
    ]
}

fn handle_polled_by_two_wakers_alternately_wakes_the_latest() {
    within("alternating wakers", || {
        let pool = ThreadPool::new(1);
        for round in 0..20 {
            let (open, gate) = std_mpsc::channel::<()>();
            let mut h = pool.submit(move || {
                let _ = gate.recv();
                round
            });
            let (c1, w1) = CountingWaker::new();
            let (c2, w2) = CountingWaker::new();
            let (first, last) = if round % 2 == 0 {
                (&w1, &w2)
            } else {
                (&w2, &w1)
            };
            for _ in 0..3 {
                assert!(poll_with(Pin::new(&mut h), first).is_pending());
                assert!(poll_with(Pin::new(&mut h), last).is_pending());
            }
            open.send(()).unwrap();
            let latest = if round % 2 == 0 { &c2 } else { &c1 };
            eventually("the latest waker's wake", || latest.count() > 0);
            assert_eq!(poll_with(Pin::new(&mut h), last), Poll::Ready(Ok(round)));
        }
    });
}

fn handle_polled_once_then_dropped_the_work_still_runs() {
    within("a handle dropped after one poll", || {
        let pool = ThreadPool::new(2);
        let (done_tx, done) = std_mpsc::channel();
        let (open, gate) = std_mpsc::channel::<()>();
        let d = done_tx.clone();
        let mut h = pool.submit(move || {
            let _ = gate.recv();
            d.send("plain").unwrap();
        });
        let (_, waker) = CountingWaker::new();
        assert!(poll_with(Pin::new(&mut h), &waker).is_pending());
        drop(h);
        // An async work whose handle was polled from a foreign thread and dropped.
        let d = done_tx.clone();
        let (open2, gate2) = aplex::sync::oneshot::channel::<()>();
        let mut h2 = pool.spawn(move || async move {
            let _ = gate2.await;
            d.send("async").unwrap();
        });
        assert!(poll_with(Pin::new(&mut h2), &waker).is_pending());
        drop(h2);
        open.send(()).unwrap();
        open2.send(()).unwrap();
        let mut got = vec![
            done.recv_timeout(crate::HANG).expect("the plain work ran"),
            done.recv_timeout(crate::HANG).expect("the async work ran"),
        ];
        got.sort_unstable();
        assert_eq!(got, ["async", "plain"]);
    });
}

/// A pseudo-random small number from `i`.
fn jitter(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61 // 0..8
}

fn map_of_uneven_works_half_read_dropped_then_shutdown_leaks_no_thread() {
    within("a half-read map", || {
        let before = threads();
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let pool = ThreadPool::new(3);
        let mut map = pool
            .map(
                move |i: u64| {
                    s.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(100 * jitter(i)));
                    i * 3
                },
                0..400u64,
            )
            .chunk_size(3);
        for i in 0..200u64 {
            assert_eq!(Iterator::next(&mut map), Some(Ok(i * 3)));
        }
        drop(map);
        pool.shutdown();
        drop(pool);
        // Every work the map started ran; fewer than all were started (the map is lazy).
        assert!(started.load(Ordering::SeqCst) >= 200);
        eventually("the pool's threads to end", || threads() <= before);

        // The same from an async reader on a foreign executor.
        let pool = ThreadPool::new(2);
        let mut map = pool.map(
            |i: u64| {
                std::thread::sleep(Duration::from_micros(50 * jitter(i)));
                i
            },
            0..100u64,
        );
        let firsts = run_foreign(async {
            let mut got = Vec::new();
            for _ in 0..50 {
                got.push(map.next().await);
            }
            got
        });
        assert_eq!(firsts, (0..50).map(|i| Some(Ok(i))).collect::<Vec<_>>());
        drop(map);
        drop(pool);
        eventually("the second pool's threads to end", || threads() <= before);
    });
}

/// Calls `shutdown_now` on another thread (it joins the workers, so it blocks while a plain
/// closure runs) and returns once the pool has stopped taking works: a probe submitted then is
/// refused at once.
fn shutdown_now_in_background<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    pool: &'s ThreadPool,
) -> std::thread::ScopedJoinHandle<'s, ()> {
    let closing = scope.spawn(move || pool.shutdown_now());
    eventually("shutdown_now to close the pool", || {
        let probe = pool.submit(|| ());
        probe.is_finished() && probe.wait() == Err(Error::ShutDown)
    });
    closing
}

/// Every item of `rest` is its value or ended `Cancelled`/`ShutDown`; `ran` items must be values.
fn assert_outcomes(rest: &[Result<u32, Error>], ran: usize) {
    assert_eq!(rest.len(), 10, "{rest:?}");
    for (i, r) in rest.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v as usize, i),
            Err(Error::Cancelled | Error::ShutDown) if i >= ran => {}
            Err(e) => panic!("item {i}: unexpected {e:?} in {rest:?}"),
        }
    }
}

fn map_next_pending_on_a_foreign_waker_then_shutdown_now() {
    // The first item is running (a plain closure, so it finishes) when the pool shuts down now.
    within("a map pending when its pool shuts down now", || {
        let pool = ThreadPool::new(1);
        let (started_tx, started) = std_mpsc::channel::<()>();
        let (open, gate) = std_mpsc::channel::<()>();
        let gate = std::sync::Mutex::new((started_tx, gate));
        let mut map = pool.map(
            move |i: u32| {
                if i == 0 {
                    let ends = gate.lock().unwrap();
                    let _ = ends.0.send(());
                    let _ = ends.1.recv();
                }
                i
            },
            0..10u32,
        );
        let (counter, waker) = CountingWaker::new();
        assert!(map
            .poll_next(&mut std::task::Context::from_waker(&waker))
            .is_pending());
        started.recv().unwrap();
        std::thread::scope(|scope| {
            let closing = shutdown_now_in_background(scope, &pool);
            open.send(()).unwrap();
            closing.join().unwrap();
        });
        eventually("a wake after shutdown_now", || counter.count() > 0);
        let rest: Vec<_> = map.collect();
        assert_outcomes(&rest, 1);
    });

    // No item has started (another work holds the only worker) when the pool shuts down now.
    within("a queued map when its pool shuts down now", || {
        let pool = ThreadPool::new(1);
        let (started_tx, started) = std_mpsc::channel::<()>();
        let (open, gate) = std_mpsc::channel::<()>();
        let blocker = pool.submit(move || {
            started_tx.send(()).unwrap();
            let _ = gate.recv();
        });
        started.recv().unwrap();
        let mut map = pool.map(|i: u32| i, 0..10u32);
        let (counter, waker) = CountingWaker::new();
        assert!(map
            .poll_next(&mut std::task::Context::from_waker(&waker))
            .is_pending());
        std::thread::scope(|scope| {
            let closing = shutdown_now_in_background(scope, &pool);
            open.send(()).unwrap();
            closing.join().unwrap();
        });
        assert_eq!(blocker.wait(), Ok(()));
        eventually("a wake after shutdown_now", || counter.count() > 0);
        let rest: Vec<_> = map.collect();
        assert_outcomes(&rest, 0);
        assert!(rest.iter().all(|r| r.is_err()), "{rest:?}");
    });
}
