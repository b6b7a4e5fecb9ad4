//! asyncutils `AdvancedPool`, as aplex's `ElasticPool`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use aplex::sync::Event;
use aplex::{ElasticPool, Error, ShutdownOptions};

use crate::peer_common::{wait_for, HANG};

/// A one-worker pool whose worker is held by a gated work: what is submitted next waits in
/// the queue until the gate opens.
fn held_pool(queue: usize) -> (ElasticPool, Arc<Event>, aplex::Handle<()>) {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(1)
        .queue_capacity(queue)
        .build()
        .unwrap();
    let open = Arc::new(Event::new());
    let (started_tx, started_rx) = mpsc::channel();
    let gate = Arc::clone(&open);
    let holder = pool
        .try_submit(move || {
            started_tx.send(()).unwrap();
            gate.wait_blocking();
        })
        .unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    (pool, open, holder)
}

#[test]
fn submit_nowait_when_full() {
    // asyncutils: AdvancedPool.submit_nowait on a full queue raises; `full`, `qsize`
    let (pool, open, holder) = held_pool(2);
    let a = pool.try_submit(|| 1).unwrap();
    let b = pool.try_submit(|| 2).unwrap();
    assert_eq!(pool.stats().queued, 2);
    assert_eq!(pool.try_submit(|| 3).unwrap_err(), Error::QueueFull);
    open.set();
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
    holder.wait().unwrap();
}

#[test]
fn submit_waits_for_room() {
    // asyncutils: AdvancedPool.submit (async) waits for a free slot in the queue
    let (pool, open, holder) = held_pool(1);
    let first = pool.try_submit(|| 1).unwrap();
    let pool = Arc::new(pool);
    let submitted = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let pool = Arc::clone(&pool);
        let submitted = Arc::clone(&submitted);
        std::thread::spawn(move || {
            let h = aplex::block_on(pool.submit(|| 2)).unwrap();
            submitted.fetch_add(1, Ordering::SeqCst);
            h.wait()
        })
    };
    // It cannot get in while the queue is full.
    assert!(!aplex::block_on(
        pool.wait_for_slot(Duration::from_millis(10))
    ));
    assert_eq!(submitted.load(Ordering::SeqCst), 0);
    open.set();
    assert_eq!(first.wait(), Ok(1));
    assert_eq!(waiter.join().unwrap(), Ok(2));
    holder.wait().unwrap();
}

#[test]
fn priority_order() {
    // asyncutils: AdvancedPool.submit(…, _priority=): higher priority first, FIFO within one
    let (pool, open, holder) = held_pool(10);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (name, p) in [
        ("low-1", 0),
        ("high-1", 5),
        ("low-2", 0),
        ("high-2", 5),
        ("mid", 2),
    ] {
        let order = Arc::clone(&order);
        handles.push(
            pool.priority(p)
                .try_submit(move || order.lock().unwrap().push(name))
                .unwrap(),
        );
    }
    open.set();
    for h in handles {
        h.wait().unwrap();
    }
    holder.wait().unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        ["high-1", "high-2", "mid", "low-1", "low-2"]
    );
}

#[test]
fn map_and_starmap_keep_order() {
    // asyncutils: AdvancedPool.map, starmap: results in input order
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(3)
        .build()
        .unwrap();
    let squares: Vec<_> = pool.map(|x: u64| x * x, 0..20).collect();
    assert_eq!(squares, (0..20).map(|x| Ok(x * x)).collect::<Vec<_>>());
    let sums: Vec<_> = pool
        .starmap(|a: u32, b: u32| a + b, (0..10).map(|i| (i, 10 * i)))
        .collect();
    assert_eq!(sums, (0..10).map(|i| Ok(11 * i)).collect::<Vec<_>>());
}

#[test]
fn drain_then_idle() {
    // asyncutils: AdvancedPool.drain / wait_until_idle, `empty`, `idle`, `completed`
    let pool = ElasticPool::builder()
        .min_workers(2)
        .max_workers(2)
        .build()
        .unwrap();
    for i in 0..10 {
        let _unobserved = pool.try_submit(move || i).unwrap();
    }
    aplex::block_on(aplex::time::timeout(HANG, pool.drain())).expect("drain hung");
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.running, stats.completed), (0, 0, 10));
}

#[test]
fn resize_bounds() {
    // asyncutils: AdvancedPool.resize(_min, _max): the pool grows to the new minimum
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(2)
        .build()
        .unwrap();
    pool.resize(3, 4).unwrap();
    wait_for("the pool grows to 3", || pool.stats().workers >= 3);
    assert!(pool.stats().workers <= 4);
    assert!(
        pool.resize(5, 4).is_err(),
        "a minimum above the maximum is refused"
    );
}

#[test]
fn shutdown_cancel_pending() {
    // asyncutils: AdvancedPool.shutdown(cancel_pending=True): queued works never run
    let (pool, open, holder) = held_pool(10);
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..3)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.try_submit(move || ran.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    let pool = Arc::new(pool);
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            pool.shutdown(ShutdownOptions {
                cancel_pending: true,
                total_timeout: Some(HANG),
                ..Default::default()
            })
        })
    };
    // The shutdown takes the queued works out while the worker is still held.
    wait_for("the shutdown empties the queue", || {
        pool.stats().queued == 0
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    open.set();
    let report = closer.join().unwrap();
    assert!(!report.timed_out);
    assert_eq!(report.cancelled, 3);
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert_eq!(holder.wait(), Ok(()));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(pool.try_submit(|| 0).unwrap().wait(), Err(Error::ShutDown));
}

#[test]
fn shutdown_total_timeout() {
    // asyncutils: AdvancedPool.shutdown(total_timeout=): returns when the time is up, and
    // says so, while a work still runs
    let (pool, open, mut holder) = held_pool(1);
    let report = pool.shutdown(ShutdownOptions {
        total_timeout: Some(Duration::from_millis(20)),
        ..Default::default()
    });
    assert!(report.timed_out);
    open.set();
    assert_eq!(holder.wait_timeout(HANG), Ok(()));
}

#[test]
fn uptime_and_completed() {
    // asyncutils: AdvancedPool.uptime, completed
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let before = pool.stats();
    pool.try_submit(|| ()).unwrap().wait().unwrap();
    aplex::block_on(pool.drain());
    let after = pool.stats();
    assert_eq!(after.completed, before.completed + 1);
    assert!(after.uptime >= before.uptime);
}
