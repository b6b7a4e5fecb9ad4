//! The runtime's timers and wake-ups, in every feature cut: with `io` off the reactor has no fd
//! sources, only its wake pipe and timers, and these must still wake every kind of waiter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use aplex::time::{interval, sleep, sleep_until, timeout};
use aplex::ThreadPool;

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "timers_many_deadlines_fire_in_block_on_and_in_workers",
            timers_many_deadlines_fire_in_block_on_and_in_workers,
        ),
        case(
            "timers_a_wake_from_another_thread_ends_a_long_sleep_race",
            timers_a_wake_from_another_thread_ends_a_long_sleep_race,
        ),
    ]
}

fn timers_many_deadlines_fire_in_block_on_and_in_workers() {
    within("timers under block_on and in pool works", || {
        let fired = aplex::block_on(async {
            let mut fired = 0;
            let start = Instant::now();
            sleep(Duration::from_millis(2)).await;
            fired += 1;
            sleep_until(start).await; // in the past: at once
            fired += 1;
            let never = std::future::pending::<()>();
            assert!(timeout(Duration::from_millis(3), never).await.is_err());
            fired += 1;
            let mut tick = interval(Duration::from_millis(1));
            for _ in 0..5 {
                tick.tick().await;
            }
            fired + 5
        });
        assert_eq!(fired, 8);
        let pool = ThreadPool::new(2);
        let count = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                let count = count.clone();
                pool.spawn(move || async move {
                    sleep(Duration::from_micros(i * 37 % 3000)).await;
                    count.fetch_add(1, Ordering::SeqCst)
                })
            })
            .collect();
        for h in handles {
            assert!(h.wait().is_ok());
        }
        assert_eq!(count.load(Ordering::SeqCst), 200);
    });
}

/// A task parked on a far timer is woken by a channel fed from another thread, many times over:
/// a lost wake-up (the reactor asleep on its timer, the wake pipe missed) would hang a round.
fn timers_a_wake_from_another_thread_ends_a_long_sleep_race() {
    within("wakes from another thread during long sleeps", || {
        for _ in 0..300 {
            let (tx, rx) = aplex::sync::oneshot::channel::<u32>();
            let (ready_tx, ready) = std_mpsc::channel();
            let feeder = std::thread::spawn(move || {
                ready.recv().unwrap();
                tx.send(7).unwrap();
            });
            let got = aplex::block_on(async move {
                ready_tx.send(()).unwrap();
                // Long enough that only the wake can end the wait within the hang bound.
                timeout(Duration::from_secs(60), rx).await
            });
            assert_eq!(got.map(Result::ok), Ok(Some(7)));
            feeder.join().unwrap();
        }
    });
}
