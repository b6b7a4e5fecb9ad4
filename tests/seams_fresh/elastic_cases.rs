//! `ElasticPool`'s blocking submits after their change: on its own worker a full queue is
//! `QueueFull` through the `Priority` view too; any other thread still blocks, and is released
//! when room frees.

use std::sync::{mpsc as std_mpsc, Arc};

use aplex::{ElasticPool, Error};

use crate::{case, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "elastic_priority_view_on_its_own_full_worker_is_queue_full",
            elastic_priority_view_on_its_own_full_worker_is_queue_full,
        ),
        case(
            "elastic_other_threads_block_until_room_frees",
            elastic_other_threads_block_until_room_frees,
        ),
    ]
}

fn full_pool() -> Arc<ElasticPool> {
    Arc::new(
        ElasticPool::builder()
            .min_workers(1)
            .max_workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    )
}

fn elastic_priority_view_on_its_own_full_worker_is_queue_full() {
    within(
        "the Priority view's blocking submits on its own worker",
        || {
            let pool = full_pool();
            let (started_tx, started) = std_mpsc::channel();
            let (open, gate) = std_mpsc::channel::<()>();
            let p = pool.clone();
            let outer = pool
                .try_submit(move || {
                    started_tx.send(()).unwrap();
                    let _ = gate.recv_timeout(HANG);
                    let view = p.priority(5);
                    let plain = view.submit_blocking(|| 1).map(|h| h.wait());
                    let future = view
                        .spawn_when_room_blocking(|| async { 1 })
                        .map(|h| h.wait());
                    (plain, future)
                })
                .unwrap();
            started.recv().unwrap();
            let queued = pool.try_submit(|| 2).unwrap();
            open.send(()).unwrap();
            let outer = outer.wait();
            assert!(
                matches!(outer, Ok((Err(Error::QueueFull), Err(Error::QueueFull)))),
                "{outer:?}"
            );
            assert_eq!(queued.wait(), Ok(2));
        },
    );
}

fn elastic_other_threads_block_until_room_frees() {
    within("blocked submitters on other threads are released", || {
        let pool = full_pool();
        let (started_tx, started) = std_mpsc::channel();
        let (open, gate) = std_mpsc::channel::<()>();
        let held = pool
            .try_submit(move || {
                started_tx.send(()).unwrap();
                let _ = gate.recv_timeout(HANG);
                0
            })
            .unwrap();
        started.recv().unwrap();
        let queued = pool.try_submit(|| 1).unwrap();
        assert!(matches!(pool.try_submit(|| 9), Err(Error::QueueFull)));
        let submitters: Vec<_> = (0..4i32)
            .map(|i| {
                let p = pool.clone();
                std::thread::spawn(move || match i {
                    0 => p.submit_blocking(move || 10 + i).map(|h| h.wait()),
                    1 => p
                        .priority(3)
                        .submit_blocking(move || 10 + i)
                        .map(|h| h.wait()),
                    2 => p
                        .spawn_when_room_blocking(move || async move { 10 + i })
                        .map(|h| h.wait()),
                    _ => p
                        .priority(-2)
                        .spawn_when_room_blocking(move || async move { 10 + i })
                        .map(|h| h.wait()),
                })
            })
            .collect();
        open.send(()).unwrap();
        assert_eq!(held.wait(), Ok(0));
        assert_eq!(queued.wait(), Ok(1));
        for (i, s) in submitters.into_iter().enumerate() {
            assert_eq!(s.join().unwrap(), Ok(Ok(10 + i as i32)), "submitter {i}");
        }
    });
}
