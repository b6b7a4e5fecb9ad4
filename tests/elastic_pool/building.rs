//! What `build()` refuses, start hooks that panic, and durations too long for an `Instant`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aplex::{ElasticPool, Error, ShutdownOptions};

use crate::expected_panics::expect_panics;

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
fn a_pool_without_scaling_and_without_workers_is_refused() {
    let refused = ElasticPool::builder().max_workers(4).scaling(false).build();
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    let pool = ElasticPool::builder()
        .workers(1)
        .scaling(false)
        .build()
        .unwrap();
    assert!(pool.resize(0, 2).is_err());
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
}

#[test]
fn a_worker_whose_start_hook_panicked_is_reported_and_replaced() {
    expect_panics(&["expected"]);
    let first = Arc::new(AtomicBool::new(true));
    let f = first.clone();
    let pool = ElasticPool::builder()
        .min_workers(0)
        .max_workers(1)
        .on_worker_start(move |_| {
            if f.swap(false, Ordering::SeqCst) {
                panic!("expected: the first start fails");
            }
        })
        .build()
        .unwrap();
    let mut h = pool.try_submit(|| 6 * 7).unwrap();
    assert_eq!(h.wait_timeout(Duration::from_secs(30)), Ok(42), "replaced");
    assert_eq!(pool.stats().workers, 1, "the failed worker is not counted");
    let counts = pool.join();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(matches!(&counts[0], Err(Error::WorkerLost(why)) if why.contains("first start")));
    assert_eq!(counts[1], Ok(1));
}

#[test]
fn durations_too_long_for_an_instant_mean_never() {
    let pool = ElasticPool::builder()
        .min_workers(0)
        .max_workers(1)
        .queue_capacity(1)
        .idle_timeout(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
    aplex::block_on(pool.drain());
    assert!(aplex::block_on(pool.wait_for_slot(Duration::MAX)));
    assert_eq!(pool.stats().workers, 1, "an idle worker never times out");
    let report = pool.shutdown(ShutdownOptions {
        cancel_pending: false,
        idle_timeout: Some(Duration::MAX),
        total_timeout: Some(Duration::MAX),
    });
    assert!(!report.timed_out);
    assert_eq!(pool.join(), vec![Ok(1)]);
}
