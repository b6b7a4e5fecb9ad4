//! ElasticPool: priorities, a bounded queue, scaling, resize, drain, shutdown and its report.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplex::{ElasticPool, Error, ShutdownOptions};

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A closure that holds its worker until `gate` opens (bounded, so a failing test ends).
fn blocker(gate: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let gate = gate.clone();
    move || {
        let end = Instant::now() + Duration::from_secs(10);
        while !gate.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn queued_works_run_in_priority_order_fifo_within_a_priority() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (p, name) in [
        (1, "p1-a"),
        (5, "p5-a"),
        (1, "p1-b"),
        (9, "p9"),
        (5, "p5-b"),
        (-3, "neg"),
    ] {
        let order = order.clone();
        handles.push(
            pool.priority(p)
                .try_submit(move || order.lock().unwrap().push(name))
                .unwrap(),
        );
    }
    gate.store(true, Ordering::SeqCst);
    busy.wait().unwrap();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(
        *order.lock().unwrap(),
        vec!["p9", "p5-a", "p5-b", "p1-a", "p1-b", "neg"]
    );
}

#[test]
fn a_full_queue_refuses_try_submit_and_submit_waits_for_room() {
    let pool = ElasticPool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let a = pool.try_submit(|| 1).unwrap();
    let b = pool.try_submit(|| 2).unwrap();
    assert_eq!(pool.try_submit(|| 3).unwrap_err(), Error::QueueFull);
    assert!(!aplex::block_on(
        pool.wait_for_slot(Duration::from_millis(10))
    ));
    // A submit that waits, on another thread, gets in once the blocker ends.
    let pool = Arc::new(pool);
    let p = pool.clone();
    let waiter = std::thread::spawn(move || aplex::block_on(p.submit(|| 3)).unwrap().wait());
    std::thread::sleep(Duration::from_millis(30));
    assert!(!waiter.is_finished(), "submit should wait for room");
    gate.store(true, Ordering::SeqCst);
    busy.wait().unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(3));
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
    assert_eq!(pool.submit_blocking(|| 4).unwrap().wait(), Ok(4));
}

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
fn drain_waits_for_the_queue_and_the_running_works() {
    let pool = ElasticPool::builder().max_workers(2).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let d = done.clone();
        drop(pool.try_spawn(move || async move {
            aplex::time::sleep(Duration::from_millis(i % 5)).await;
            d.fetch_add(1, Ordering::SeqCst);
        }));
    }
    aplex::block_on(pool.drain());
    assert_eq!(done.load(Ordering::SeqCst), 20);
    let s = pool.stats();
    assert_eq!((s.queued, s.running), (0, 0));
}

#[test]
fn shutdown_with_cancel_pending_cancels_the_queue() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let queued: Vec<_> = (0..5)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    let g = gate.clone();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        g.store(true, Ordering::SeqCst);
    });
    let report = pool.shutdown(ShutdownOptions {
        cancel_pending: true,
        ..ShutdownOptions::default()
    });
    opener.join().unwrap();
    assert_eq!(report.cancelled, 5);
    assert!(!report.timed_out);
    assert_eq!(report.completed, 1);
    assert_eq!(busy.wait(), Ok(()));
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(Error::ShutDown));
}

#[test]
fn total_timeout_bounds_the_shutdown_and_cancels_what_is_left() {
    let pool = ElasticPool::builder().workers(2).build().unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| {
            pool.try_spawn(|| aplex::time::sleep(Duration::from_secs(60)))
                .unwrap()
        })
        .collect();
    eventually("both run", || pool.stats().running == 2);
    let queued = pool.try_submit(|| 1).unwrap();
    let start = Instant::now();
    let report = pool.shutdown(ShutdownOptions {
        total_timeout: Some(Duration::from_millis(100)),
        ..ShutdownOptions::default()
    });
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(report.timed_out);
    assert_eq!(report.cancelled, 3, "{report:?}");
    assert_eq!(report.unfinished, 0);
    for h in running {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert_eq!(queued.wait(), Err(Error::Cancelled));
}

#[test]
fn join_reports_completed_counts_per_worker() {
    let pool = ElasticPool::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..10)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    handles.into_iter().for_each(|h| drop(h.wait()));
    let counts = pool.join();
    assert_eq!(counts.len(), 2);
    assert_eq!(
        counts.iter().map(|c| *c.as_ref().unwrap()).sum::<usize>(),
        10
    );
}

#[test]
fn map_and_starmap_keep_input_order() {
    let pool = ElasticPool::builder().max_workers(2).build().unwrap();
    let squares: Vec<u64> = pool
        .map(|x: u64| x * x, 0..100)
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares, (0..100).map(|x| x * x).collect::<Vec<_>>());
    let joined: Vec<String> = pool
        .starmap(|a: &str, b: u8| format!("{a}{b}"), vec![("x", 1), ("y", 2)])
        .map(Result::unwrap)
        .collect();
    assert_eq!(joined, vec!["x1", "y2"]);
    let chunked: Vec<_> = pool.map(|x: u32| x + 1, 0..1000).chunk_size(64).collect();
    assert_eq!(chunked.len(), 1000);
    assert_eq!(chunked[999], Ok(1000));
}

#[test]
fn async_works_and_panics() {
    let pool = ElasticPool::builder()
        .max_workers(2)
        .max_works_per_worker(10)
        .build()
        .unwrap();
    let h = pool
        .try_spawn(|| async {
            let local = std::rc::Rc::new(3);
            aplex::time::sleep(Duration::from_millis(5)).await;
            *local
        })
        .unwrap();
    assert_eq!(h.wait(), Ok(3));
    let bad = pool
        .try_submit(|| -> u8 { panic!("elastic boom") })
        .unwrap();
    assert_eq!(bad.wait(), Err(Error::Panicked("elastic boom".into())));
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
}

#[test]
fn bad_bounds_fail_build() {
    assert!(ElasticPool::builder().max_workers(0).build().is_err());
    assert!(ElasticPool::builder()
        .min_workers(3)
        .max_workers(2)
        .build()
        .is_err());
    assert!(ElasticPool::builder().queue_capacity(0).build().is_err());
}

#[test]
fn dropping_the_pool_inside_its_own_work_does_not_deadlock() {
    let pool = Arc::new(Mutex::new(Some(
        ElasticPool::builder().workers(2).build().unwrap(),
    )));
    let p = pool.clone();
    let h = pool
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .try_submit(move || drop(p.lock().unwrap().take()))
        .unwrap();
    assert_eq!(h.wait(), Ok(()));
}

#[test]
fn the_pool_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ElasticPool>();
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
