//! Timers: sleeps, timeouts, intervals, and their clean-up.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use aplex::time::{interval, pending_timers, sleep, sleep_until, timeout, Elapsed};
use aplex::{block_on, spawn_local, yield_now};

mod expected_panics;
use expected_panics::expect_panics;

/// How long anything may take before a test fails instead of hanging: only a hang or a lost
/// wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

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
    // One after another, the sleeps would take 350 s: only sleeps that overlap end in time.
    assert!(wall < BOUND, "took {wall:?}");
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
        let r = timeout(Duration::from_millis(20), sleep(Duration::from_secs(3600))).await;
        assert_eq!(r, Err(Elapsed)); // the timeout, not the inner sleep, ended it
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(pending_timers(), 0);
    });
}

#[test]
fn timeout_accepts_a_non_unpin_future() {
    let r = block_on(timeout(BOUND, async {
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
    const PERIOD: Duration = Duration::from_millis(10);
    /// Whole periods from `a` to `b`; fails if `b` is off the grid.
    fn periods(a: Instant, b: Instant) -> u128 {
        let (span, period) = ((b - a).as_nanos(), PERIOD.as_nanos());
        assert_eq!(span % period, 0, "ticks stay on the grid");
        span / period
    }
    block_on(async {
        let mut every = interval(PERIOD);
        let first = every.tick().await;
        let second = every.tick().await;
        // One period, unless this thread stalled past the second tick's time and it was skipped.
        assert!(periods(first, second) >= 1);
        // Fall behind by over three periods.
        std::thread::sleep(3 * PERIOD + PERIOD / 2);
        let asked = Instant::now();
        let late = every.tick().await;
        assert!(
            late < asked,
            "the overdue tick fires at once, not on a later grid point"
        );
        assert!(periods(second, late) >= 1);
        let next = every.tick().await;
        assert!(
            periods(late, next) >= 2,
            "missed ticks were skipped: {} period(s) after the late one",
            periods(late, next)
        );
        assert!(next >= asked, "a skipped-to tick is not in the past");
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn a_zero_interval_panics() {
    expect_panics(&["aplex::time::interval"]);
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

/// A minimal foreign executor: poll on this thread, park between polls. Fails after `BOUND`
/// rather than wait forever for a wake that never comes.
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
    let end = Instant::now() + BOUND;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        while !unpark.1.swap(false, Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the future was never woken");
            std::thread::park_timeout(left);
        }
    }
}

#[test]
fn sleep_works_under_a_foreign_executor() {
    let start = Instant::now();
    foreign_block_on(sleep(Duration::from_millis(20)));
    assert!(start.elapsed() >= Duration::from_millis(20));
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
    let (fired_tx, fired) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        block_on(s);
        let _ = fired_tx.send(());
    });
    assert!(
        fired.recv_timeout(BOUND).is_ok(),
        "the moved sleep never fired"
    );
}

/// A waker that only records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn sleep_is_elapsed_follows_its_deadline_and_reset() {
    let now = Instant::now();
    let mut s = sleep(Duration::from_secs(3600));
    assert!(!s.is_elapsed());
    s.reset(now);
    assert!(s.is_elapsed());
    block_on(&mut s);
    assert!(s.is_elapsed(), "a completed sleep stays elapsed");
    block_on(&mut s); // and completes again at once
    assert!(!sleep(Duration::MAX).is_elapsed());
    assert!(timeout_at_now_is_elapsed());
}

fn timeout_at_now_is_elapsed() -> bool {
    let t = aplex::time::timeout_at(Instant::now(), std::future::pending::<()>());
    let elapsed = t.is_elapsed();
    assert_eq!(block_on(t), Err(Elapsed));
    elapsed && !timeout(Duration::from_secs(3600), async {}).is_elapsed()
}

#[test]
fn interval_at_ticks_from_start_on_its_grid() {
    const PERIOD: Duration = Duration::from_millis(5);
    let start = Instant::now() + Duration::from_millis(20);
    block_on(async {
        let mut every = aplex::time::interval_at(start, PERIOD);
        assert_eq!(every.tick().await, start);
        assert!(Instant::now() >= start, "the first tick waits for start");
        let second = every.tick().await;
        assert!(second > start);
        assert_eq!((second - start).as_nanos() % PERIOD.as_nanos(), 0);
    });
}

#[test]
fn interval_poll_tick_is_pending_until_start_then_ready_after_a_reset() {
    let start = Instant::now() + Duration::from_secs(3600);
    let mut every = aplex::time::interval_at(start, Duration::from_millis(1));
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&flag));
    assert!(every
        .poll_tick(&mut Context::from_waker(&waker))
        .is_pending());
    assert!(!flag.0.load(Ordering::SeqCst));
    // A reset brings the next tick to one period from now, far before `start`.
    let before = Instant::now();
    every.reset();
    let tick = block_on(timeout(
        BOUND,
        std::future::poll_fn(|cx| every.poll_tick(cx)),
    ));
    let tick = tick.expect("a reset interval ticks one period later");
    assert!(tick >= before + Duration::from_millis(1) && tick < start);
}

#[test]
fn interval_reset_moves_the_next_tick_one_period_from_now() {
    const PERIOD: Duration = Duration::from_millis(10);
    block_on(async {
        let mut every = interval(PERIOD);
        every.tick().await; // at once
        let before = Instant::now();
        every.reset();
        let next = every.tick().await;
        assert!(next >= before + PERIOD, "not at once, one period later");
        assert!(Instant::now() >= next);
        let after = every.tick().await;
        // One period on, unless this thread stalled past that tick and it was skipped.
        assert!(after > next);
        assert_eq!(
            (after - next).as_nanos() % PERIOD.as_nanos(),
            0,
            "the grid continues from the reset"
        );
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn a_zero_interval_at_panics() {
    expect_panics(&["aplex::time::interval"]);
    let _ = aplex::time::interval_at(Instant::now(), Duration::ZERO);
}
