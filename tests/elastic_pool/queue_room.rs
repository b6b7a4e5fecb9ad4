//! A bounded queue: `try_` refuses when full, the waiting forms wait, `wait_for_slot` watches,
//! and a cancelled work frees its room at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::{ElasticPool, Error, Handle};

use crate::support::{blocker, eventually};

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
fn many_threads_on_try_submit_and_wait_for_slot_all_get_through() {
    // 50 threads loop on try_submit, waiting for a slot on QueueFull. A free room must never be
    // refused because someone watches for one, so all 500 works get in, with no hang.
    let pool = Arc::new(
        ElasticPool::builder()
            .max_workers(2)
            .queue_capacity(5)
            .build()
            .unwrap(),
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (pool, ran) = (pool.clone(), ran.clone());
            std::thread::spawn(move || {
                let mut handles = Vec::new();
                while handles.len() < 10 {
                    assert!(Instant::now() < end, "submitters are stuck");
                    let r = ran.clone();
                    match pool.try_submit(move || r.fetch_add(1, Ordering::SeqCst)) {
                        Ok(h) => handles.push(h),
                        Err(Error::QueueFull) => {
                            aplex::block_on(pool.wait_for_slot(Duration::from_secs(1)));
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                handles.into_iter().for_each(|h| {
                    h.wait().unwrap();
                });
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(ran.load(Ordering::SeqCst), 500);
}

#[test]
fn wait_for_slot_with_a_free_room_is_true_and_try_submit_then_succeeds() {
    let pool = ElasticPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let queued = pool.try_submit(|| 1).unwrap();
    let pool = Arc::new(pool);
    let p = pool.clone();
    // A watcher waits while the queue is full; the room that frees is not promised to it.
    let watcher = std::thread::spawn(move || {
        let free = aplex::block_on(p.wait_for_slot(Duration::from_secs(30)));
        (free, p.try_submit(|| 2).map(Handle::wait))
    });
    gate.store(true, Ordering::SeqCst);
    busy.wait().unwrap();
    assert_eq!(queued.wait(), Ok(1));
    let (free, submitted) = watcher.join().unwrap();
    assert!(free);
    assert_eq!(submitted, Ok(Ok(2)));
    assert!(aplex::block_on(pool.wait_for_slot(Duration::MAX)));
}

#[test]
fn cancelling_queued_works_frees_their_rooms_at_once() {
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
    assert!(a.cancel() && b.cancel());
    assert_eq!(pool.stats().queued, 0);
    let c = pool.try_submit(|| 3).unwrap();
    let d = pool.try_submit(|| 4).unwrap();
    gate.store(true, Ordering::SeqCst);
    assert_eq!((busy.wait(), c.wait(), d.wait()), (Ok(()), Ok(3), Ok(4)));
    assert_eq!(
        (a.wait(), b.wait()),
        (Err(Error::Cancelled), Err(Error::Cancelled))
    );
    aplex::block_on(pool.drain());
    assert_eq!(pool.stats().completed, 5);
}
