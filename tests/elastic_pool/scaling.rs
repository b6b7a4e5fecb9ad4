//! Workers come and go: growth under load up to `max_workers`, retirement to `min_workers`,
//! `resize`, and no idle worker while works wait behind a busy one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aplex::ElasticPool;

use crate::support::{blocker, eventually};

#[test]
fn a_burst_grows_the_pool_to_max_and_idle_workers_retire_to_min() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(4)
        .idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(pool.stats().workers, 1);
    let gate = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..8)
        .map(|_| pool.try_submit(blocker(&gate)).unwrap())
        .collect();
    eventually("four run", || pool.stats().running == 4);
    let s = pool.stats();
    assert_eq!((s.workers, s.queued), (4, 4), "{s:?}");
    gate.store(true, Ordering::SeqCst);
    handles.into_iter().for_each(|h| h.wait().unwrap());
    eventually("idle workers retire", || pool.stats().workers == 1);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(pool.stats().workers, 1, "never below min");
    assert_eq!(pool.stats().completed, 8);
}

#[test]
fn without_scaling_the_pool_keeps_its_size() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(4)
        .scaling(false)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            pool.try_submit(|| std::thread::sleep(Duration::from_millis(10)))
                .unwrap()
        })
        .collect();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(pool.stats().workers, 1);
}

#[test]
fn resize_live_starts_and_retires_workers() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(2)
        .build()
        .unwrap();
    pool.resize(3, 5).unwrap();
    assert_eq!(pool.stats().workers, 3);
    pool.resize(0, 1).unwrap();
    eventually("extra workers leave", || pool.stats().workers == 1);
    assert_eq!(pool.try_submit(|| 7).unwrap().wait(), Ok(7));
    assert!(pool.resize(3, 2).is_err());
    assert!(pool.resize(0, 0).is_err());
}

#[test]
fn resize_grows_the_pool_for_works_already_queued() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(1)
        .build()
        .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..4)
        .map(|_| pool.try_submit(blocker(&gate)).unwrap())
        .collect();
    eventually("one runs", || pool.stats().running == 1);
    assert_eq!(pool.stats().queued, 3);
    pool.resize(1, 4).unwrap();
    eventually("all four run", || pool.stats().running == 4);
    assert_eq!(pool.stats().workers, 4);
    gate.store(true, Ordering::SeqCst);
    handles.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn workers_that_come_and_go_still_count_in_join() {
    let pool = ElasticPool::builder()
        .min_workers(0)
        .max_workers(3)
        .idle_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let mut total = 0;
    for round in 0..2 {
        let gate = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..6)
            .map(|_| pool.try_submit(blocker(&gate)).unwrap())
            .collect();
        eventually("the pool grows", || pool.stats().workers == 3);
        gate.store(true, Ordering::SeqCst);
        handles.into_iter().for_each(|h| h.wait().unwrap());
        total += 6;
        eventually("the workers retire", || pool.stats().workers == 0);
        assert_eq!(pool.stats().completed, total, "round {round}");
    }
    let counts = pool.join();
    assert!(
        counts.len() >= 6,
        "every worker that ever ran is reported: {counts:?}"
    );
    assert_eq!(
        counts.iter().map(|c| *c.as_ref().unwrap()).sum::<usize>(),
        total
    );
}

#[test]
fn works_taken_by_a_worker_that_blocks_run_on_the_idle_one() {
    let pool = ElasticPool::builder().workers(2).build().unwrap();
    let (ga, gb, gc) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let a = pool.try_submit(blocker(&ga)).unwrap();
    let b = pool.try_submit(blocker(&gb)).unwrap();
    eventually("both workers are held", || pool.stats().running == 2);
    // Queued behind them: a third blocker and six quick works. Whichever worker is let go
    // first takes several of them in one step, the blocker among them.
    let c = pool.try_submit(blocker(&gc)).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let quick: Vec<_> = (0..6)
        .map(|_| {
            let r = ran.clone();
            pool.try_submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    ga.store(true, Ordering::SeqCst);
    gb.store(true, Ordering::SeqCst);
    // One worker is held by the third blocker; the other runs every quick work, including
    // those the held one had taken.
    eventually("every quick work ran while one worker is held", || {
        ran.load(Ordering::SeqCst) == 6
    });
    eventually("only the third blocker is left", || {
        let s = pool.stats();
        (s.running, s.queued) == (1, 0)
    });
    gc.store(true, Ordering::SeqCst);
    for h in [a, b, c].into_iter().chain(quick) {
        h.wait().unwrap();
    }
}
