//! tokio `tests/sync_semaphore.rs`.
//!
//! Not ported: `merge` and `merge_unrelated_permits` (aplex guards have no `merge`; a guard of
//! `k` permits comes from `acquire_many(k)`, tested below as `many_permits_in_one_guard`);
//! `panic_when_exceeds_maxpermits` and `no_panic_at_maxpermits` (aplex has no
//! `MAX_PERMITS`: any `usize` is a valid count, and `add_permits` panics only on overflow of
//! `usize`, tested below).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aplex::sync::Semaphore;

use crate::peer_common::{quiet_panics, spawn};

#[test]
fn no_permits() {
    // tokio: no_permits: a semaphore with none does not panic
    let sem = Semaphore::new(0);
    assert!(sem.try_acquire().is_none());
}

#[test]
fn try_acquire() {
    // tokio: try_acquire
    let sem = Semaphore::new(1);
    {
        let p1 = sem.try_acquire();
        assert!(p1.is_some());
        let p2 = sem.try_acquire();
        assert!(p2.is_none());
    }
    assert!(sem.try_acquire().is_some());
}

#[test]
fn acquire() {
    // tokio: acquire: a waiter gets the permit a dropped guard gives back
    let sem = Arc::new(Semaphore::new(1));
    let p1 = sem.try_acquire_arc().unwrap();
    let waiter = {
        let sem = Arc::clone(&sem);
        std::thread::spawn(move || aplex::block_on(async move { drop(sem.acquire().await) }))
    };
    drop(p1);
    waiter.join().unwrap();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn acquire_is_woken_by_a_dropped_guard() {
    // tokio: acquire, with the wake-up seen by hand
    let sem = Semaphore::new(1);
    let p1 = sem.try_acquire().unwrap();
    let mut waiting = spawn(sem.acquire());
    assert!(waiting.poll().is_pending());
    drop(p1);
    assert!(waiting.is_woken());
    let guard = crate::peer_common::ready(waiting.poll());
    assert_eq!(guard.permits(), 1);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn add_permits() {
    // tokio: add_permits
    let sem = Arc::new(Semaphore::new(0));
    let waiter = {
        let sem = Arc::clone(&sem);
        std::thread::spawn(move || aplex::block_on(async move { drop(sem.acquire().await) }))
    };
    sem.add_permits(1);
    waiter.join().unwrap();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn forget() {
    // tokio: forget
    let sem = Arc::new(Semaphore::new(1));
    {
        let p = sem.try_acquire().unwrap();
        assert_eq!(sem.available_permits(), 0);
        p.forget();
        assert_eq!(sem.available_permits(), 0);
    }
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
}

#[test]
fn many_permits_in_one_guard() {
    // tokio: merge (one guard holding several permits gives them all back on drop)
    let sem = Semaphore::new(3);
    {
        let p1 = sem.try_acquire().unwrap();
        assert_eq!(sem.available_permits(), 2);
        let p2 = sem.try_acquire_many(2).unwrap();
        assert_eq!(p2.permits(), 2);
        assert_eq!(sem.available_permits(), 0);
        drop(p1);
        assert_eq!(sem.available_permits(), 1);
        drop(p2);
    }
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn stress_test() {
    // tokio: stress_test: 1000 tasks through 5 permits, then exactly 5 are free
    let sem = Arc::new(Semaphore::new(5));
    let done = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    aplex::block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let sem = Arc::clone(&sem);
            let done = Arc::clone(&done);
            let most = Arc::clone(&most);
            tasks.push(aplex::spawn_local(async move {
                let _p = sem.acquire().await;
                most.fetch_max(5 - sem.available_permits(), Ordering::SeqCst);
                aplex::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await;
        }
    });
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    assert!(most.load(Ordering::SeqCst) <= 5);
    let _p1 = sem.try_acquire().unwrap();
    let _p2 = sem.try_acquire().unwrap();
    let _p3 = sem.try_acquire().unwrap();
    let _p4 = sem.try_acquire().unwrap();
    let _p5 = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
}

#[test]
fn stress_test_across_threads() {
    // tokio: stress_test, on the multi-thread runtime: 4 threads × 250 acquires
    let sem = Arc::new(Semaphore::new(5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let _p = aplex::block_on(sem.acquire());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sem.available_permits(), 5);
}

#[test]
fn add_max_amount_permits() {
    // tokio: add_max_amount_permits (aplex's most is `usize::MAX`)
    let s = Semaphore::new(0);
    s.add_permits(usize::MAX);
    assert_eq!(s.available_permits(), usize::MAX);
}

#[test]
#[should_panic]
fn add_more_than_max_amount_permits1() {
    // tokio: add_more_than_max_amount_permits1
    quiet_panics();
    let s = Semaphore::new(1);
    s.add_permits(usize::MAX);
}

#[test]
#[should_panic]
fn add_more_than_max_amount_permits2() {
    // tokio: add_more_than_max_amount_permits2
    quiet_panics();
    let s = Semaphore::new(usize::MAX - 1);
    s.add_permits(1);
    s.add_permits(1);
}
