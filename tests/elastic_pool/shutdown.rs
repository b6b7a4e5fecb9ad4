//! The blocking shutdown and its report: cancel_pending, timeouts that give up, `join`, a pool
//! whose workers cannot start, a drop from inside the pool's own work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplex::{ElasticPool, Error, Handle, ShutdownOptions};

use crate::expected_panics::expect_panics;
use crate::support::{blocker, eventually};

#[test]
fn shutdown_with_cancel_pending_cancels_the_queue() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let queued: Vec<_> = (0..5)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    let pool = Arc::new(pool);
    let (p, g) = (pool.clone(), gate.clone());
    // The gate opens once the shutdown has taken the queue out: only then may the blocker end.
    let opener = std::thread::spawn(move || {
        eventually("the queue is cancelled", || p.stats().queued == 0);
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
    let pool = ElasticPool::builder()
        .workers(2)
        .max_works_per_worker(1)
        .build()
        .unwrap();
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
    // Far less than the 60 s the works would take: the timeout ended the shutdown.
    assert!(
        start.elapsed() < Duration::from_secs(30),
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

/// Eight works on three workers: one plain closure held by `gate`, two async works that sleep
/// for a minute, five queued behind them.
fn eight_works(gate: &Arc<AtomicBool>) -> (ElasticPool, Vec<Handle<()>>) {
    let pool = ElasticPool::builder()
        .workers(3)
        .max_works_per_worker(1)
        .build()
        .unwrap();
    let mut handles = vec![pool.try_submit(blocker(gate)).unwrap()];
    for _ in 0..2 {
        handles.push(
            pool.try_spawn(|| aplex::time::sleep(Duration::from_secs(60)))
                .unwrap(),
        );
    }
    eventually("three run", || pool.stats().running == 3);
    for _ in 0..5 {
        handles.push(pool.try_submit(|| ()).unwrap());
    }
    (pool, handles)
}

#[test]
fn a_shutdown_that_gives_up_counts_each_work_once() {
    for opts in [
        ShutdownOptions {
            total_timeout: Some(Duration::from_millis(100)),
            ..ShutdownOptions::default()
        },
        ShutdownOptions {
            idle_timeout: Some(Duration::from_millis(100)),
            ..ShutdownOptions::default()
        },
    ] {
        let gate = Arc::new(AtomicBool::new(false));
        let (pool, handles) = eight_works(&gate);
        let report = pool.shutdown(opts);
        assert!(report.timed_out, "{opts:?}");
        assert_eq!(
            (report.completed, report.cancelled, report.unfinished),
            (0, 7, 1),
            "{opts:?}: {report:?}"
        );
        gate.store(true, Ordering::SeqCst);
        let outcomes: Vec<_> = handles.into_iter().map(Handle::wait).collect();
        assert_eq!(outcomes[0], Ok(()));
        assert!(outcomes[1..].iter().all(|o| *o == Err(Error::Cancelled)));
    }
}

#[test]
fn shutdown_with_cancel_pending_cancels_works_a_worker_took_but_had_not_begun() {
    let pool = Arc::new(
        ElasticPool::builder()
            .workers(1)
            .max_works_per_worker(10)
            .build()
            .unwrap(),
    );
    // The worker is held while the queue fills; when it is let go it takes its next work, a
    // second blocker, with all the others behind it in the queue (a worker that took a batch
    // of works would now hold nine of them, not begun).
    let (first_gate, gate) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let first = pool.try_submit(blocker(&first_gate)).unwrap();
    eventually("the first blocker runs", || pool.stats().running == 1);
    let started = Arc::new(AtomicBool::new(false));
    let (s, hold) = (started.clone(), blocker(&gate));
    let busy = pool
        .try_submit(move || {
            s.store(true, Ordering::SeqCst);
            hold();
        })
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..50)
        .map(|_| {
            let r = ran.clone();
            pool.try_submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    first_gate.store(true, Ordering::SeqCst);
    eventually("the second blocker runs", || started.load(Ordering::SeqCst));
    let (p, g) = (pool.clone(), gate.clone());
    let opener = std::thread::spawn(move || {
        eventually("the queue is cancelled", || p.stats().queued == 0);
        g.store(true, Ordering::SeqCst);
    });
    let report = pool.shutdown(ShutdownOptions {
        cancel_pending: true,
        ..ShutdownOptions::default()
    });
    opener.join().unwrap();
    assert_eq!((first.wait(), busy.wait()), (Ok(()), Ok(())));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "no work behind the blocker ran"
    );
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert_eq!(
        (report.completed, report.cancelled, report.unfinished),
        (1, 50, 0)
    );
}

#[test]
fn a_pool_whose_workers_never_start_fails_the_queued_works_and_tries_again_later() {
    expect_panics(&["expected"]);
    let broken = Arc::new(AtomicBool::new(true));
    let b = broken.clone();
    let pool = ElasticPool::builder()
        .min_workers(0)
        .max_workers(2)
        .on_worker_start(move |_| assert!(!b.load(Ordering::SeqCst), "expected: hook fails"))
        .build()
        .unwrap();
    // No worker alive and every start failing: the works end WorkerLost, naming the hook's
    // panic, rather than wait for a worker that never comes.
    let handles: Vec<_> = (0..3)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    for mut h in handles {
        // The bound only catches a hang (the works waiting until the shutdown).
        match h.wait_timeout(Duration::from_secs(20)) {
            Err(Error::WorkerLost(why)) => assert!(why.contains("expected: hook fails"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    eventually("the failed starts stop", || pool.stats().workers == 0);
    // The trouble passes: a later submit starts a worker, which serves it.
    broken.store(false, Ordering::SeqCst);
    assert_eq!(pool.try_submit(|| 7).unwrap().wait(), Ok(7));
    // A handle resolves a moment before its worker counts the work ended: wait for the count.
    eventually("the last work to be counted", || {
        pool.stats().completed == 4
    });
    // Every work had ended before: the shutdown ends none.
    let report = pool.shutdown(ShutdownOptions::default());
    assert_eq!(
        (report.completed, report.cancelled, report.unfinished),
        (0, 0, 0)
    );
    assert_eq!(pool.stats().completed, 4);
    let counts = pool.join();
    assert!(counts
        .iter()
        .any(|c| matches!(c, Err(Error::WorkerLost(_)))));
    assert_eq!(
        counts.iter().filter_map(|c| c.as_ref().ok()).sum::<usize>(),
        1
    );
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
