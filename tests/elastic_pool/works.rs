//! Works and their outcomes: async works, panics, `map`/`starmap`, and `drain`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aplex::{ElasticPool, Error};

use crate::expected_panics::expect_panics;

#[test]
fn the_pool_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ElasticPool>();
}

#[test]
fn async_works_and_panics() {
    expect_panics(&["expected"]);
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
        .try_submit(|| -> u8 { panic!("expected: elastic boom") })
        .unwrap();
    assert_eq!(
        bad.wait(),
        Err(Error::Panicked("expected: elastic boom".into()))
    );
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
}

#[test]
fn an_async_work_whose_closure_panics_is_counted() {
    expect_panics(&["expected"]);
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let h = pool
        .try_spawn(|| -> std::future::Ready<u8> { panic!("expected: no future") })
        .unwrap();
    assert_eq!(h.wait(), Err(Error::Panicked("expected: no future".into())));
    aplex::block_on(pool.drain());
    assert_eq!(pool.stats().completed, 1);
    assert_eq!(pool.join(), vec![Ok(1)]);
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
fn drain_returns_only_after_every_accepted_work_published_its_outcome() {
    let pool = ElasticPool::builder()
        .max_workers(2)
        .max_works_per_worker(4)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    for round in 0..2_000 {
        let d = done.clone();
        let a = pool
            .try_spawn(move || async move {
                aplex::yield_now().await;
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let d = done.clone();
        let b = pool
            .try_submit(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        aplex::block_on(pool.drain());
        assert!(
            a.is_finished() && b.is_finished(),
            "round {round}: drain returned before the works' outcomes"
        );
        assert_eq!(done.load(Ordering::SeqCst), 2 * (round + 1));
        let s = pool.stats();
        assert_eq!((s.queued, s.running), (0, 0), "round {round}");
    }
}
