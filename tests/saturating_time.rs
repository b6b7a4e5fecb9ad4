//! Durations saturate: a duration too large to add to the clock means "never", not a panic.

use std::sync::mpsc;
use std::time::Duration;

use aplex::time::{interval, sleep, timeout};
use aplex::{block_on, Error, ThreadPool};

/// Long enough to see that nothing fires, short enough for a test.
const GLANCE: Duration = Duration::from_millis(30);

#[test]
fn an_interval_of_duration_max_ticks_once_then_never() {
    block_on(async {
        let mut every = interval(Duration::MAX);
        every.tick().await; // the first tick is at once
        assert!(timeout(GLANCE, every.tick()).await.is_err());
        assert!(timeout(GLANCE, every.tick()).await.is_err());
    });
}

#[test]
fn an_interval_whose_second_tick_overflows_does_not_panic() {
    // Not representable from now plus the period, though the period itself is fine.
    let period = Duration::from_secs(u64::MAX / 2);
    block_on(async {
        let mut every = interval(period);
        every.tick().await;
        assert!(timeout(GLANCE, every.tick()).await.is_err());
    });
}

#[test]
fn sleep_and_timeout_of_duration_max_never_fire() {
    block_on(async {
        assert!(timeout(GLANCE, sleep(Duration::MAX)).await.is_err());
        assert_eq!(timeout(Duration::MAX, async { 3 }).await, Ok(3));
        assert_eq!(
            timeout(Duration::MAX, aplex::yield_now()).await,
            Ok(()),
            "a pending inner future under a never-firing timeout"
        );
    });
}

#[test]
fn wait_timeout_of_duration_max_waits_for_the_outcome() {
    let pool = ThreadPool::new(1);
    let (tx, rx) = mpsc::channel::<u32>();
    let mut h = pool.submit(move || rx.recv().unwrap());
    tx.send(9).unwrap();
    assert_eq!(h.wait_timeout(Duration::MAX), Ok(9));
}

#[test]
fn a_map_with_a_timeout_of_duration_max_never_times_out() {
    let pool = ThreadPool::new(2);
    let out: Vec<_> = pool
        .map(|x: u32| x + 1, 0..100)
        .timeout(Duration::MAX)
        .collect();
    assert_eq!(out, (1..=100).map(Ok).collect::<Vec<Result<u32, Error>>>());
}

#[test]
fn a_spin_window_of_duration_max_is_capped_and_timers_still_fire() {
    let pool = ThreadPool::builder()
        .workers(1)
        .spin(Duration::MAX)
        .build()
        .unwrap();
    for i in 0..10 {
        assert_eq!(pool.submit(move || i).wait(), Ok(i));
    }
    let h = pool.spawn(|| async {
        sleep(Duration::from_millis(5)).await;
        1
    });
    assert_eq!(h.wait(), Ok(1));
}
