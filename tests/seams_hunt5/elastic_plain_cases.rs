//! The elastic pool's plain closures beside async works that share a worker: a closure holds
//! its worker's thread until it returns, so it goes to a worker with nothing running, or to a
//! new one, and only at `max_workers` to a worker whose async works it then stalls.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use aplex::sync::Event;
use aplex::ElasticPool;

use super::{case, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "elastic_closure_waiting_on_an_async_work_of_its_own_worker",
            closure_waiting_on_an_async_work_of_its_own_worker,
        ),
        case(
            "elastic_closure_at_max_shares_a_worker_running_async_works",
            closure_at_max_shares_a_worker_running_async_works,
        ),
        case(
            "elastic_a_burst_of_closures_each_waiting_on_its_own_async_work",
            a_burst_of_closures_each_waiting_on_its_own_async_work,
        ),
        case(
            "elastic_priorities_among_mixed_closures_and_async_works",
            priorities_among_mixed_closures_and_async_works,
        ),
        case(
            "elastic_closure_beside_async_works_when_no_worker_can_start",
            closure_beside_async_works_when_no_worker_can_start,
        ),
    ]
}

/// Worker 1 runs an async work that waits on a gate; a plain closure submitted next waits
/// (blocking) for that work. The pool may grow to 4, so nothing forces the closure onto the
/// thread the async work needs: the closure must get its value once the gate opens.
fn closure_waiting_on_an_async_work_of_its_own_worker() {
    super::within("a closure waiting on an async work", || {
        let pool = ElasticPool::builder()
            .min_workers(1)
            .max_workers(4)
            .build()
            .unwrap();
        let gate = Arc::new(Event::new());
        let (started_tx, started) = std_mpsc::channel();
        let g = Arc::clone(&gate);
        let first = pool
            .try_spawn(move || async move {
                started_tx.send(()).unwrap();
                g.wait().await;
                7
            })
            .unwrap();
        started.recv_timeout(HANG).unwrap();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let waiter = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                first.wait()
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        gate.set();
        assert_eq!(waiter.wait(), Ok(Ok(7)));
    });
}

/// The documented limit: at `max_workers(2)`, with both workers running async works that wait,
/// a plain closure goes to one of them (there is no other), and stalls that worker's async
/// works while it runs. Had it waited on one of them, it could hang; this one does not, and
/// everything ends once it returns.
fn closure_at_max_shares_a_worker_running_async_works() {
    super::within("a closure at max beside async works", || {
        let pool = ElasticPool::builder().workers(2).build().unwrap();
        let gate = Arc::new(Event::new());
        let (started_tx, started) = std_mpsc::channel::<String>();
        let mut threads = HashSet::new();
        let mut waiting = Vec::new();
        // Async works until both workers run one (each parks free, and a work goes to a free
        // worker first, so this takes two or three).
        while threads.len() < 2 {
            assert!(
                waiting.len() < 100,
                "async works never reached the second worker"
            );
            let (g, tx) = (Arc::clone(&gate), started_tx.clone());
            waiting.push(
                pool.try_spawn(move || async move {
                    let me = std::thread::current().name().unwrap_or("").to_string();
                    tx.send(me).unwrap();
                    g.wait().await;
                })
                .unwrap(),
            );
            threads.insert(started.recv_timeout(HANG).unwrap());
        }
        let closure = pool
            .try_submit(|| std::thread::current().name().unwrap_or("").to_string())
            .unwrap();
        let ran_on = closure.wait().unwrap();
        assert!(threads.contains(&ran_on), "{ran_on} not in {threads:?}");
        assert_eq!(pool.stats().workers, 2);
        gate.set();
        for h in waiting {
            assert_eq!(h.wait(), Ok(()));
        }
    });
}

/// Fifty pairs in a burst: an async work that waits for its own gate, and a plain closure that
/// opens that gate and then blocks until the async work ends. A closure must never land on the
/// thread its async work runs on; with room to grow (4 workers to begin with, up to 128, more
/// than fifty blocked closures and their hosts can need), every pair ends.
fn a_burst_of_closures_each_waiting_on_its_own_async_work() {
    super::within("a burst of closures waiting on async works", || {
        // A few rounds: the seam is a race between the workers' steps.
        for _ in 0..5 {
            let pool = ElasticPool::builder()
                .min_workers(4)
                .max_workers(128)
                .build()
                .unwrap();
            let closures: Vec<_> = (0..50usize)
                .map(|i| {
                    let gate = Arc::new(Event::new());
                    let g = Arc::clone(&gate);
                    let work = pool
                        .try_spawn(move || async move {
                            g.wait().await;
                            i
                        })
                        .unwrap();
                    pool.try_submit(move || {
                        gate.set();
                        work.wait()
                    })
                    .unwrap()
                })
                .collect();
            for (i, h) in closures.into_iter().enumerate() {
                assert_eq!(h.wait(), Ok(Ok(i)));
            }
        }
    });
}

/// One worker (so `max` is reached) running an async work that waits, and a held plain
/// closure; behind it, closures and async works of mixed priorities. Once the closure ends,
/// they start highest priority first, closures and async works alike, each once.
fn priorities_among_mixed_closures_and_async_works() {
    super::within("priorities among mixed works", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let sharing = pool
            .try_spawn(move || async move {
                g.wait().await;
                "shared"
            })
            .unwrap();
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let closure = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (p, plain) in [
            (0, true),
            (5, false),
            (-3, true),
            (9, false),
            (7, true),
            (2, false),
        ] {
            let order = Arc::clone(&order);
            let view = pool.priority(p);
            handles.push(if plain {
                view.try_submit(move || {
                    order.lock().unwrap().push(p);
                    p
                })
                .unwrap()
            } else {
                // Started when its future is made (it runs once the batch yields).
                view.try_spawn(move || {
                    order.lock().unwrap().push(p);
                    async move {
                        aplex::yield_now().await; // running across a step: the worker is busy
                        p
                    }
                })
                .unwrap()
            });
        }
        release.send(()).unwrap();
        closure.wait().unwrap();
        let got: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
        // Opened before any assertion, so that a failing one does not hang the pool's drop.
        gate.set();
        assert_eq!(sharing.wait(), Ok("shared"));
        assert_eq!(got, [Ok(0), Ok(5), Ok(-3), Ok(9), Ok(7), Ok(2)]);
        assert_eq!(*order.lock().unwrap(), [9, 7, 5, 2, 0, -3]);
    });
}

/// The first worker starts; every later start hook panics. With the first worker running an
/// async work that waits, a plain closure cannot get a free worker: once the starts have failed
/// often enough in a row, the busy worker runs it (and the async work ends afterwards).
fn closure_beside_async_works_when_no_worker_can_start() {
    super::within("a closure when no worker can start", || {
        let starts = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&starts);
        let pool = ElasticPool::builder()
            .min_workers(1)
            .max_workers(4)
            .on_worker_start(move |_| {
                let n = s.fetch_add(1, Ordering::SeqCst);
                assert!(n == 0, "start hook {n} panics on purpose");
            })
            .build()
            .unwrap();
        let gate = Arc::new(Event::new());
        let (started_tx, started) = std_mpsc::channel();
        let g = Arc::clone(&gate);
        let waiting = pool
            .try_spawn(move || async move {
                started_tx.send(()).unwrap();
                g.wait().await;
                "async"
            })
            .unwrap();
        started.recv_timeout(HANG).unwrap();
        let mut closure = pool.try_submit(|| "closure").unwrap();
        // The bound only catches the hang: the closure left waiting behind the async work.
        let outcome = closure.wait_timeout(HANG / 2);
        gate.set();
        assert_eq!(outcome, Ok("closure"));
        assert_eq!(waiting.wait(), Ok("async"));
        assert!(starts.load(Ordering::SeqCst) > 1);
    });
}
