//! The names of the submit forms: `try_` never waits, the plain `async fn` waits for room,
//! `_blocking` blocks the calling thread for it; handles never fail at submit time; the old
//! names still work.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};

use aplex::{ElasticPool, Error, ShutdownOptions};

use crate::support::{blocker, eventually};

/// A pool of one worker held by a blocker, whose queue of one room is full.
fn full_pool(gate: &Arc<AtomicBool>) -> (ElasticPool, Vec<aplex::Handle<()>>) {
    let pool = ElasticPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let busy = pool.try_submit(blocker(gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let queued = pool.try_submit(|| ()).unwrap();
    (pool, vec![busy, queued])
}

#[test]
fn on_a_full_queue_try_spawn_refuses_and_spawn_when_room_waits_for_room() {
    let gate = Arc::new(AtomicBool::new(false));
    let (pool, held) = full_pool(&gate);
    assert_eq!(
        pool.try_spawn(|| async { 1 }).unwrap_err(),
        Error::QueueFull
    );
    assert_eq!(
        pool.priority(5).try_spawn(|| async { 1 }).unwrap_err(),
        Error::QueueFull
    );
    // Polled once, the waiting form is in line for a room: pending, and nothing was queued.
    let mut waiting = pin!(pool.spawn_when_room(|| async { 2 }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    assert_eq!(pool.stats().queued, 1);
    gate.store(true, Ordering::SeqCst);
    let handle = aplex::block_on(waiting).unwrap();
    assert_eq!(handle.wait(), Ok(2));
    held.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn spawn_when_room_blocking_blocks_its_thread_until_there_is_room() {
    let gate = Arc::new(AtomicBool::new(false));
    let (pool, held) = full_pool(&gate);
    let pool = Arc::new(pool);
    let p = pool.clone();
    let blocked = std::thread::spawn(move || {
        p.priority(3)
            .spawn_when_room_blocking(|| async { 3 })
            .map(aplex::Handle::wait)
    });
    // The blocked thread cannot have queued anything: the one room is taken until the gate
    // opens.
    assert_eq!(pool.stats().queued, 1);
    gate.store(true, Ordering::SeqCst);
    assert_eq!(blocked.join().unwrap(), Ok(Ok(3)));
    held.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(
        pool.spawn_when_room_blocking(|| async { 4 })
            .unwrap()
            .wait(),
        Ok(4)
    );
}

#[test]
fn every_form_gives_a_handle_that_resolves_shut_down_on_a_closed_pool() {
    let pool = ElasticPool::builder().max_workers(1).build().unwrap();
    pool.shutdown(ShutdownOptions::default());
    let p = pool.priority(7);
    let handles = [
        pool.try_submit(|| 1).unwrap(),
        aplex::block_on(pool.submit(|| 1)).unwrap(),
        pool.submit_blocking(|| 1).unwrap(),
        pool.try_spawn(|| async { 1 }).unwrap(),
        aplex::block_on(pool.spawn_when_room(|| async { 1 })).unwrap(),
        pool.spawn_when_room_blocking(|| async { 1 }).unwrap(),
        p.try_submit(|| 1).unwrap(),
        aplex::block_on(p.spawn_when_room(|| async { 1 })).unwrap(),
        p.spawn_when_room_blocking(|| async { 1 }).unwrap(),
    ];
    for h in handles {
        assert_eq!(h.wait(), Err(Error::ShutDown));
    }
}

#[test]
#[allow(deprecated)]
fn the_old_names_still_queue_async_works() {
    let pool = ElasticPool::builder()
        .max_workers(1)
        .queue_capacity(4)
        .build()
        .unwrap();
    let a = aplex::block_on(pool.spawn(|| async { 1 })).unwrap();
    let b = pool.spawn_blocking(|| async { 2 }).unwrap();
    let c = aplex::block_on(pool.priority(1).spawn(|| async { 3 })).unwrap();
    let d = pool.priority(1).spawn_blocking(|| async { 4 }).unwrap();
    assert_eq!(
        [a.wait(), b.wait(), c.wait(), d.wait()],
        [Ok(1), Ok(2), Ok(3), Ok(4)]
    );
}
