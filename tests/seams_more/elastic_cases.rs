//! `ElasticPool` at its blocking and scaling seams: a work that blocks on its own full pool,
//! drain while works submit more, idle workers leaving while submits race them, and the
//! priority order as gates reveal it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use aplex::{ElasticPool, Error};

use crate::{case, eventually, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "submit_blocking_from_a_work_of_its_own_full_pool",
            submit_blocking_from_a_work_of_its_own_full_pool,
        ),
        case(
            "submit_awaited_in_an_async_work_of_its_own_full_pool",
            submit_awaited_in_an_async_work_of_its_own_full_pool,
        ),
        case(
            "drain_while_works_submit_more",
            drain_while_works_submit_more,
        ),
        case(
            "idle_workers_leaving_while_submits_race_them",
            idle_workers_leaving_while_submits_race_them,
        ),
        case(
            "priorities_order_the_queue_as_gates_show",
            priorities_order_the_queue_as_gates_show,
        ),
    ]
}

fn submit_blocking_from_a_work_of_its_own_full_pool() {
    within("submit_blocking from its own worker", || {
        let pool = Arc::new(
            ElasticPool::builder()
                .min_workers(1)
                .max_workers(1)
                .queue_capacity(1)
                .build()
                .unwrap(),
        );
        let (started_tx, started) = std_mpsc::channel();
        let (open, gate) = std_mpsc::channel::<()>();
        let p = pool.clone();
        let outer = pool
            .try_submit(move || {
                started_tx.send(()).unwrap();
                let _ = gate.recv();
                // The queue is full and this thread is the only worker: no room can free.
                let plain = p.submit_blocking(|| 1).map(|h| h.wait());
                let future = p.spawn_when_room_blocking(|| async { 1 }).map(|h| h.wait());
                (plain, future)
            })
            .unwrap();
        started.recv().unwrap();
        let queued = pool.try_submit(|| 2).unwrap();
        open.send(()).unwrap();
        // Not a hang: on its own worker, a full queue is an error at once.
        let outer = outer.wait();
        assert!(
            matches!(outer, Ok((Err(Error::QueueFull), Err(Error::QueueFull)))),
            "{outer:?}"
        );
        assert_eq!(queued.wait(), Ok(2));
    });
}

fn submit_awaited_in_an_async_work_of_its_own_full_pool() {
    within("submit().await from its own worker", || {
        let pool = Arc::new(
            ElasticPool::builder()
                .min_workers(1)
                .max_workers(1)
                .queue_capacity(1)
                // Two at once: the waiting work leaves room on its worker for the queued one
                // (with the default of one, a waiting async work holds its worker, by design).
                .max_works_per_worker(2)
                .build()
                .unwrap(),
        );
        let (started_tx, started) = std_mpsc::channel();
        let (open, gate) = aplex::sync::oneshot::channel::<()>();
        let p = pool.clone();
        let outer = pool
            .try_spawn(move || async move {
                started_tx.send(()).unwrap();
                let _ = gate.await;
                // The async wait for room lets this worker start the queued work, which frees it.
                p.submit(|| 1).await.unwrap().await
            })
            .unwrap();
        started.recv().unwrap();
        let queued = pool.try_submit(|| 2).unwrap();
        open.send(()).unwrap();
        assert_eq!(outer.wait(), Ok(Ok(1)));
        assert_eq!(queued.wait(), Ok(2));
    });
}

fn drain_while_works_submit_more() {
    const DEPTH: usize = 30;
    within("drain under resubmission", || {
        let pool = Arc::new(
            ElasticPool::builder()
                .min_workers(1)
                .max_workers(3)
                .build()
                .unwrap(),
        );
        let ran = Arc::new(AtomicUsize::new(0));
        fn chain(pool: Arc<ElasticPool>, ran: Arc<AtomicUsize>, left: usize) {
            let p = pool.clone();
            let r = ran.clone();
            let queued = pool.try_submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
                if left > 0 {
                    chain(p, r, left - 1);
                }
            });
            drop(queued.expect("an unbounded queue takes every work"));
        }
        for _ in 0..4 {
            chain(pool.clone(), ran.clone(), DEPTH);
        }
        aplex::block_on(pool.drain());
        // A drain ends when the pool is empty: each work queues its successor before it ends,
        // so every link has run.
        assert_eq!(ran.load(Ordering::SeqCst), 4 * (DEPTH + 1));
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.running), (0, 0), "{stats:?}");
    });
}

fn idle_workers_leaving_while_submits_race_them() {
    within("scale-down racing submits", || {
        let pool = ElasticPool::builder()
            .min_workers(0)
            .max_workers(2)
            .idle_timeout(Duration::from_millis(1))
            .build()
            .unwrap();
        for round in 0..200u32 {
            if round % 20 == 0 {
                // Let every worker leave, then submit into an empty pool.
                eventually("the idle workers to leave", || pool.stats().workers == 0);
            }
            let a = pool.try_submit(move || round).unwrap();
            let b =
                aplex::block_on(pool.spawn_when_room(move || async move { round + 1 })).unwrap();
            assert_eq!(a.wait(), Ok(round));
            assert_eq!(b.wait(), Ok(round + 1));
            if round % 3 == 0 {
                // Sit idle just about as long as the timeout, so leaving and submitting race.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
}

fn priorities_order_the_queue_as_gates_show() {
    within("priority order", || {
        let pool = ElasticPool::builder()
            .min_workers(1)
            .max_workers(1)
            .build()
            .unwrap();
        let (started_tx, started) = std_mpsc::channel();
        let (open, gate) = std_mpsc::channel::<()>();
        let blocker = pool
            .try_submit(move || {
                started_tx.send(()).unwrap();
                let _ = gate.recv_timeout(HANG);
            })
            .unwrap();
        started.recv().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (p, name) in [(0, "a"), (5, "b"), (-1, "c"), (5, "d"), (10, "e"), (0, "f")] {
            let o = order.clone();
            handles.push(
                pool.priority(p)
                    .try_submit(move || o.lock().unwrap().push(name))
                    .unwrap(),
            );
        }
        assert_eq!(pool.stats().queued, 6);
        open.send(()).unwrap();
        blocker.wait().unwrap();
        for h in handles {
            h.wait().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["e", "b", "d", "a", "f", "c"]);
    });
}
