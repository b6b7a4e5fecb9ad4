//! Timers: sleeps, timeouts, intervals, and their clean-up.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use aplex::time::{interval, pending_timers, sleep, sleep_until, timeout, Elapsed};
use aplex::{block_on, spawn_local, yield_now};

#[test]
fn ten_thousand_concurrent_sleeps_complete_none_early() {
    const N: u64 = stress(10_000) as u64;
    let early = Rc::new(Cell::new(0u32));
    let done = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    block_on(async {
        for i in 0..N {
            let (early, done) = (early.clone(), done.clone());
            let ms = 20 + i % 31; // 20..=50 ms
            spawn_local(async move {
                let begun = Instant::now();
                sleep(Duration::from_millis(ms)).await;
                if begun.elapsed() < Duration::from_millis(ms) {
                    early.set(early.get() + 1);
                }
                done.set(done.get() + 1);
            })
            .detach();
        }
        while done.get() < N {
            sleep(Duration::from_millis(1)).await;
        }
    });
    let wall = start.elapsed();
    assert_eq!(early.get(), 0, "some sleeps ended early");
    assert!(wall >= Duration::from_millis(50));
    // Close to the longest sleep: not a sum, not a crawl (generous for debug builds on CI).
    assert!(wall < Duration::from_millis(1000), "took {wall:?}");
}

#[test]
fn hundred_thousand_dropped_timeouts_leave_no_timers() {
    block_on(async {
        assert_eq!(pending_timers(), 0);
        for _ in 0..stress(100_000) {
            let r = timeout(Duration::from_secs(3600), async { 1 }).await;
            assert_eq!(r, Ok(1));
        }
        // Timeouts that did register (the inner future was pending once) are removed too.
        for _ in 0..stress(1_000) {
            let r = timeout(Duration::from_secs(3600), yield_now()).await;
            assert_eq!(r, Ok(()));
        }
        assert_eq!(pending_timers(), 0);
        let pending: Vec<_> = (0..stress(1000))
            .map(|_| sleep(Duration::from_secs(3600)))
            .collect();
        let mut pending: Vec<_> = pending.into_iter().map(Box::pin).collect();
        for s in &mut pending {
            // Poll each once so it registers.
            let _ = timeout(Duration::ZERO, s.as_mut()).await;
        }
        assert_eq!(pending_timers(), stress(1000));
        drop(pending);
        assert_eq!(pending_timers(), 0);
    });
}

#[test]
fn timeout_elapses_and_drops_the_inner_future() {
    block_on(async {
        let start = Instant::now();
        let r = timeout(Duration::from_millis(20), sleep(Duration::from_secs(10))).await;
        assert_eq!(r, Err(Elapsed));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(pending_timers(), 0);
    });
}

#[test]
fn timeout_accepts_a_non_unpin_future() {
    let r = block_on(timeout(Duration::from_secs(1), async {
        let local = [1u8; 4];
        let r = &local;
        yield_now().await;
        r.len()
    }));
    assert_eq!(r, Ok(4));
}

#[test]
fn sleep_until_a_past_deadline_is_ready_at_once() {
    block_on(async {
        let past = Instant::now() - Duration::from_millis(5);
        sleep_until(past).await;
        assert_eq!(pending_timers(), 0);
    });
}

/// How many times a stress loop runs: `n`, or 10 under Miri (the checker for undefined
/// behaviour), which interprets every step about 100× slower.
const fn stress(n: usize) -> usize {
    if cfg!(miri) {
        10
    } else {
        n
    }
}

#[test]
fn a_huge_sleep_never_fires_and_does_not_panic() {
    block_on(async {
        let r = timeout(Duration::from_millis(5), sleep(Duration::MAX)).await;
        assert!(r.is_err());
    });
}

#[test]
fn interval_ticks_on_its_grid_and_skips_missed_ticks() {
    block_on(async {
        let mut every = interval(Duration::from_millis(10));
        let first = every.tick().await;
        let second = every.tick().await;
        assert_eq!(second - first, Duration::from_millis(10));
        // Fall behind by ~3.5 periods: the next tick is on the grid, later than now.
        std::thread::sleep(Duration::from_millis(35));
        let late = every.tick().await;
        assert_eq!(late - second, Duration::from_millis(10)); // the overdue one fires at once
        let next = every.tick().await;
        let offset = (next - first).as_nanos() % Duration::from_millis(10).as_nanos();
        assert_eq!(offset, 0, "ticks stay on the grid");
        assert!(
            next > late + Duration::from_millis(10),
            "missed ticks were skipped"
        );
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn a_zero_interval_panics() {
    let _ = interval(Duration::ZERO);
}

#[test]
fn sleep_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = sleep(Duration::from_millis(1));
    assert_send(&s);
    let t = timeout(Duration::from_millis(1), async {});
    assert_send(&t);
}

/// A minimal foreign executor: poll on this thread, park between polls.
fn foreign_block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread, AtomicBool);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.store(true, Ordering::SeqCst);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        while !unpark.1.swap(false, Ordering::SeqCst) {
            std::thread::park();
        }
    }
}

#[test]
fn sleep_works_under_a_foreign_executor() {
    let start = Instant::now();
    foreign_block_on(sleep(Duration::from_millis(20)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(20));
    assert!(took < Duration::from_secs(2));
    let r = foreign_block_on(timeout(
        Duration::from_millis(10),
        sleep(Duration::from_secs(10)),
    ));
    assert_eq!(r, Err(Elapsed));
}

#[test]
fn a_sleep_moved_to_another_thread_still_fires() {
    let mut s = Box::pin(sleep(Duration::from_millis(30)));
    block_on(async {
        // Register with this thread's reactor, then leave it.
        let _ = timeout(Duration::ZERO, s.as_mut()).await;
    });
    let start = Instant::now();
    std::thread::spawn(move || block_on(s)).join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
}
