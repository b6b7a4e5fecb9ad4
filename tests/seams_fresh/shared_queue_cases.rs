//! `ThreadPoolBuilder::shared_queue(true)` at its seams: a queue holding only cancelled works,
//! shutdowns racing submits from many threads, works that wait on their own pool, a map with
//! chunks and a timeout, dropped handles and panics, and loads that must never wrap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Barrier};
use std::time::Duration;

use aplex::{Error, Handle, ThreadPool};

use crate::{case, eventually, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "sq_only_cancelled_works_queued_then_a_graceful_shutdown",
            sq_only_cancelled_works_queued_then_a_graceful_shutdown,
        ),
        case(
            "sq_shutdowns_racing_submits_from_eight_threads",
            sq_shutdowns_racing_submits_from_eight_threads,
        ),
        case(
            "sq_a_work_waits_on_its_own_two_thread_pool",
            sq_a_work_waits_on_its_own_two_thread_pool,
        ),
        case(
            "sq_an_async_work_that_blocks_does_not_hold_a_later_push",
            sq_an_async_work_that_blocks_does_not_hold_a_later_push,
        ),
        case(
            "sq_map_with_chunks_and_a_timeout_over_a_held_worker",
            sq_map_with_chunks_and_a_timeout_over_a_held_worker,
        ),
        case(
            "sq_dropped_handles_and_panics_all_run_once",
            sq_dropped_handles_and_panics_all_run_once,
        ),
        case(
            "sq_timers_in_works_on_spinning_workers",
            sq_timers_in_works_on_spinning_workers,
        ),
    ]
}

fn shared(workers: usize, max_works: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .max_works_per_worker(max_works)
        .shared_queue(true)
        .build()
        .expect("a shared-queue pool")
}

/// A plain closure that holds its worker until `gate` says go (or the hang bound passes);
/// `started` hears when it runs.
fn hold(pool: &ThreadPool) -> (Handle<()>, std_mpsc::Sender<()>) {
    let (go, gate) = std_mpsc::channel::<()>();
    let (started_tx, started) = std_mpsc::channel();
    let h = pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = gate.recv_timeout(HANG);
    });
    started.recv_timeout(HANG).expect("the holder starts");
    (h, go)
}

/// No entry of the loads wrapped below zero (a wrapped `usize` is near `usize::MAX`).
fn assert_sane(loads: &[usize], most: usize) {
    assert!(
        loads.iter().all(|&l| l <= most),
        "loads {loads:?} over {most}: a count wrapped"
    );
}

fn sq_only_cancelled_works_queued_then_a_graceful_shutdown() {
    within(
        "a graceful shutdown with only cancelled works queued",
        || {
            let pool = Arc::new(shared(1, 1));
            let (held, go) = hold(&pool);
            let runs = Arc::new(AtomicUsize::new(0));
            let queued: Vec<Handle<usize>> = (0..50)
                .map(|i| {
                    let runs = runs.clone();
                    if i % 2 == 0 {
                        pool.submit(move || runs.fetch_add(1, Ordering::SeqCst))
                    } else {
                        pool.spawn(move || async move { runs.fetch_add(1, Ordering::SeqCst) })
                    }
                })
                .collect();
            for h in &queued {
                assert!(h.cancel(), "a queued work cancels");
                assert!(h.cancel(), "asking again gives the same answer");
            }
            assert_sane(&pool.loads(), 51);
            // The graceful shutdown waits for the holder, then must pass the cancelled works by.
            let p = pool.clone();
            let shutdown = std::thread::spawn(move || p.shutdown());
            go.send(()).unwrap();
            shutdown.join().expect("shutdown returns");
            assert_eq!(held.wait(), Ok(()));
            for h in queued {
                assert_eq!(h.wait(), Err(Error::Cancelled));
            }
            assert_eq!(
                runs.load(Ordering::SeqCst),
                0,
                "a cancelled work never runs"
            );
            assert_eq!(pool.loads(), vec![0], "nothing left counted");
            let late = pool.submit(|| 1);
            assert_eq!(late.wait(), Err(Error::ShutDown));
        },
    );
}

fn sq_shutdowns_racing_submits_from_eight_threads() {
    for round in 0..6 {
        within("shutdown and shutdown_now racing submits", move || {
            let pool = Arc::new(shared(2, 2));
            let runs = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Barrier::new(10));
            let submitters: Vec<_> = (0..8)
                .map(|t| {
                    let (pool, runs, start) = (pool.clone(), runs.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        (0..300u64)
                            .map(|i| {
                                let runs = runs.clone();
                                let n = t * 1000 + i;
                                let h = if i % 2 == 0 {
                                    pool.submit(move || {
                                        runs.fetch_add(1, Ordering::SeqCst);
                                        n
                                    })
                                } else {
                                    pool.spawn(move || async move {
                                        aplex::yield_now().await;
                                        runs.fetch_add(1, Ordering::SeqCst);
                                        n
                                    })
                                };
                                (n, h)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let (p1, p2, s1, s2) = (pool.clone(), pool.clone(), start.clone(), start.clone());
            let graceful = std::thread::spawn(move || {
                s1.wait();
                p1.shutdown();
            });
            let now = std::thread::spawn(move || {
                s2.wait();
                if round % 2 == 0 {
                    std::thread::yield_now();
                }
                p2.shutdown_now();
            });
            let mut values = 0;
            for s in submitters {
                for (n, h) in s.join().unwrap() {
                    match h.wait() {
                        Ok(v) => {
                            assert_eq!(v, n);
                            values += 1;
                        }
                        Err(Error::Cancelled | Error::ShutDown) => {}
                        Err(e) => panic!("work {n}: {e:?}"),
                    }
                }
            }
            graceful.join().unwrap();
            now.join().unwrap();
            // Every value came from one run, and a work cancelled after it started (an async
            // one, at its yield) ran but gave no value.
            assert!(runs.load(Ordering::SeqCst) >= values);
            assert_eq!(pool.loads(), vec![0, 0]);
        });
    }
}

fn sq_a_work_waits_on_its_own_two_thread_pool() {
    within("a work waiting on its own two-thread pool", || {
        let pool = Arc::new(shared(2, 1));
        for i in 0..200u64 {
            let p = pool.clone();
            let outer = if i % 2 == 0 {
                pool.submit(move || p.submit(move || i * 2).wait())
            } else {
                pool.spawn(move || async move { p.spawn(move || async move { i * 2 }).await })
            };
            assert_eq!(outer.wait(), Ok(Ok(i * 2)), "round {i}");
        }
    });
}

/// An async work that blocks its thread (a plain wait inside) holds up only its own worker:
/// a work pushed after it started goes to the idle one.
fn sq_an_async_work_that_blocks_does_not_hold_a_later_push() {
    within("an async work blocking its thread", || {
        let pool = shared(2, 4);
        for _ in 0..100 {
            let (started_tx, started) = std_mpsc::channel();
            let (freed_tx, freed) = std_mpsc::channel::<()>();
            let blocker = pool.spawn(move || async move {
                started_tx.send(()).unwrap();
                freed.recv_timeout(HANG).is_ok()
            });
            started.recv_timeout(HANG).unwrap();
            let freer = pool.spawn(move || async move { freed_tx.send(()).is_ok() });
            assert_eq!(freer.wait(), Ok(true));
            assert_eq!(blocker.wait(), Ok(true));
        }
    });
}

fn sq_map_with_chunks_and_a_timeout_over_a_held_worker() {
    within("a shared-queue map with chunks and a timeout", || {
        let pool = shared(2, 1);
        let (go, gate) = std_mpsc::channel::<()>();
        let g = Arc::new(std::sync::Mutex::new(gate));
        // Item 20 waits for a gate opened only after the map has ended: it can never be Ok.
        let results: Vec<Result<u64, Error>> = pool
            .map(
                move |i: u64| {
                    if i == 20 {
                        let _ = g.lock().unwrap().recv_timeout(HANG);
                    }
                    i * 3
                },
                0..100u64,
            )
            .chunk_size(7)
            .timeout(Duration::from_millis(300))
            .collect();
        go.send(()).unwrap();
        // Values in input order up to the timeout, which is the last outcome (the rest were
        // cancelled and the map ended): item 20 can never have given a value.
        let (last, values) = results.split_last().expect("at least the timeout");
        assert_eq!(last, &Err(Error::TimedOut));
        assert!(values.len() <= 20, "{} values", values.len());
        for (i, r) in values.iter().enumerate() {
            assert_eq!(r, &Ok(i as u64 * 3), "item {i}");
        }
        drop(pool); // graceful: must not hang on the chunk that held item 20
    });
}

fn sq_dropped_handles_and_panics_all_run_once() {
    within("dropped handles and panics on a shared queue", || {
        let pool = shared(2, 3);
        let runs = Arc::new(AtomicUsize::new(0));
        let mut kept = Vec::new();
        for i in 0..1000u64 {
            let runs = runs.clone();
            let h = if i % 2 == 0 {
                pool.submit(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    assert!(i % 3 != 0, "work {i} panics");
                    i
                })
            } else {
                pool.spawn(move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    aplex::yield_now().await;
                    assert!(i % 3 != 0, "work {i} panics");
                    i
                })
            };
            if i % 4 < 2 {
                kept.push((i, h));
            } // else dropped at once: the work still runs
        }
        for (i, h) in kept {
            match h.wait() {
                Ok(v) => assert_eq!(v, i),
                Err(Error::Panicked(msg)) => {
                    assert_eq!(i % 3, 0);
                    assert!(msg.contains(&format!("work {i} panics")), "{msg}");
                }
                other => panic!("work {i}: {other:?}"),
            }
        }
        pool.shutdown();
        assert_eq!(runs.load(Ordering::SeqCst), 1000, "every work ran, once");
        assert_eq!(pool.loads(), vec![0, 0]);
    });
}

fn sq_timers_in_works_on_spinning_workers() {
    within("timers in works on spinning shared-queue workers", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .max_works_per_worker(8)
            .shared_queue(true)
            .spin(Duration::from_millis(5))
            .build()
            .unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..64u64)
            .map(|i| {
                let done = done.clone();
                pool.spawn(move || async move {
                    aplex::time::sleep(Duration::from_millis(i % 3)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.wait(), Ok(i as u64));
        }
        eventually("every timer fired", || done.load(Ordering::SeqCst) == 64);
    });
}
