//! tokio `tests/time_sleep.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use aplex::time::{self, Sleep};

use crate::peer_common::{spawn, wait_for, TestTask, HANG};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn immediate_sleep() {
    // tokio: immediate_sleep: a deadline of now is ready at the first poll
    let now = Instant::now();
    let mut sleep = spawn(time::sleep_until(now));
    assert!(sleep.poll().is_ready());
    aplex::block_on(time::sleep_until(now));
}

#[test]
fn is_elapsed() {
    // tokio: is_elapsed
    let mut sleep = time::sleep(HOUR);
    assert!(!sleep.is_elapsed());
    let task = TestTask::new();
    assert!(task.poll(&mut sleep).is_pending());
    assert!(!sleep.is_elapsed());
    sleep.reset(Instant::now() + ms(10));
    aplex::block_on(&mut sleep);
    assert!(sleep.is_elapsed());
}

#[test]
fn delayed_sleep_level_0() {
    // tokio: delayed_sleep_level_0: never before the deadline
    aplex::block_on(async {
        for i in [1, 10, 60] {
            let now = Instant::now();
            time::sleep_until(now + ms(i)).await;
            assert!(Instant::now() >= now + ms(i));
        }
    });
}

#[test]
fn sub_ms_delayed_sleep() {
    // tokio: sub_ms_delayed_sleep: a deadline between milliseconds is not rounded down
    aplex::block_on(async {
        for _ in 0..5 {
            let deadline = Instant::now() + ms(1) + Duration::new(0, 1);
            time::sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        }
    });
}

#[test]
fn delayed_sleep_wrapping_level_0() {
    // tokio: delayed_sleep_wrapping_level_0
    aplex::block_on(async {
        time::sleep(ms(5)).await;
        let now = Instant::now();
        time::sleep_until(now + ms(60)).await;
        assert!(Instant::now() >= now + ms(60));
    });
}

#[test]
fn reset_future_sleep_before_fire() {
    // tokio: reset_future_sleep_before_fire
    aplex::block_on(async {
        let now = Instant::now();
        let mut sleep = time::sleep_until(now + ms(100));
        assert!(
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut sleep).poll(cx)))
                .await
                .is_pending()
        );
        let later = Instant::now() + ms(200);
        sleep.reset(later);
        sleep.await;
        assert!(Instant::now() >= later);
    });
}

#[test]
fn reset_past_sleep_before_turn() {
    // tokio: reset_past_sleep_before_turn: an earlier deadline is honoured
    let now = Instant::now();
    let mut sleep = time::sleep_until(now + HOUR);
    let task = TestTask::new();
    assert!(task.poll(&mut sleep).is_pending());
    sleep.reset(now + ms(80));
    aplex::block_on(sleep);
    assert!(Instant::now() >= now + ms(80));
}

#[test]
fn reset_past_sleep_before_fire() {
    // tokio: reset_past_sleep_before_fire
    aplex::block_on(async {
        let now = Instant::now();
        let mut sleep = time::sleep_until(now + HOUR);
        let task = TestTask::new();
        assert!(task.poll(&mut sleep).is_pending());
        time::sleep(ms(10)).await;
        sleep.reset(now + ms(80));
        sleep.await;
        assert!(Instant::now() >= now + ms(80));
    });
}

#[test]
fn reset_future_sleep_after_fire() {
    // tokio: reset_future_sleep_after_fire
    aplex::block_on(async {
        let now = Instant::now();
        let mut sleep = time::sleep_until(now + ms(100));
        (&mut sleep).await;
        assert!(Instant::now() >= now + ms(100));
        sleep.reset(now + ms(110));
        sleep.await;
        assert!(Instant::now() >= now + ms(110));
    });
}

#[test]
fn reset_sleep_to_past() {
    // tokio: reset_sleep_to_past (and its "TODO: is this required?": aplex documents that a
    // waiting task is woken at the new deadline without polling, so it is checked too)
    let now = Instant::now();
    let mut sleep = spawn(time::sleep_until(now + HOUR));
    assert!(sleep.poll().is_pending());
    assert!(!sleep.is_woken());
    sleep.future.as_mut().reset(now);
    wait_for("the reset sleep wakes its task", || sleep.task.is_woken());
    assert!(sleep.poll().is_ready());
}

#[test]
fn sleep_outside_any_executor() {
    // tokio: creating_sleep_outside_of_context (tokio panics; aplex documents that a timer
    // polled outside its executors registers with a global timer thread)
    let deadline = Instant::now() + ms(20);
    let mut sleep = spawn(time::sleep_until(deadline));
    assert!(sleep.poll().is_pending());
    wait_for("the timer thread wakes the sleep", || sleep.task.is_woken());
    assert!(sleep.poll().is_ready());
    assert!(Instant::now() >= deadline);
}

#[test]
fn greater_than_max() {
    // tokio: greater_than_max (five years: pending, no panic)
    const YR_5: u64 = 5 * 365 * 24 * 60 * 60 * 1000;
    let mut sleep = spawn(time::sleep_until(Instant::now() + ms(YR_5)));
    assert!(sleep.poll().is_pending());
    aplex::block_on(async {
        assert!(time::timeout(ms(1), time::sleep(ms(YR_5))).await.is_err());
    });
}

#[test]
fn short_sleeps() {
    // tokio: short_sleeps
    aplex::block_on(async {
        for _ in 0..10000 {
            time::sleep(ms(0)).await;
        }
    });
}

#[test]
fn long_sleeps_are_pending_without_panic() {
    // tokio: multi_long_sleeps, long_sleeps (a year, ten years: pending, deadline kept)
    let now = Instant::now();
    for years in [1, 10] {
        let span = Duration::from_secs(years * 365 * 24 * 3600);
        let mut sleep = spawn(time::sleep(span));
        assert!(sleep.poll().is_pending());
        let deadline = sleep.future.deadline().expect("ten years fit the clock");
        assert!(deadline >= now + span);
    }
}

#[test]
fn reset_after_firing() {
    // tokio: reset_after_firing
    aplex::block_on(async {
        let mut timer = time::sleep(ms(1));
        let deadline = timer.deadline();
        (&mut timer).await;
        let task = TestTask::new();
        assert!(task.poll(&mut timer).is_ready());
        timer.reset(Instant::now() + Duration::from_secs(600));
        assert_ne!(deadline, timer.deadline());
        assert!(task.poll(&mut timer).is_pending());
        assert!(task.poll(&mut timer).is_pending());
    });
}

#[test]
fn exactly_max() {
    // tokio: exactly_max, no_out_of_bounds_close_to_max (tokio's wheel's largest spans)
    const MAX_DURATION: u64 = (1 << 36) - 1;
    for span in [MAX_DURATION, MAX_DURATION - 1] {
        let mut sleep = spawn(time::sleep(ms(span)));
        assert!(sleep.poll().is_pending());
    }
}

#[test]
fn issue_5183() {
    // tokio: issue_5183: a huge sleep raced against a tiny one
    let big = Duration::from_secs(u64::MAX / 10);
    aplex::block_on(async {
        assert!(time::timeout(Duration::from_nanos(1), time::sleep(big))
            .await
            .is_err());
    });
    let mut never = spawn(time::sleep(Duration::MAX));
    assert!(never.poll().is_pending());
    assert_eq!(never.future.deadline(), None);
}

#[test]
fn drop_after_reschedule_at_new_scheduled_time() {
    // tokio: drop_after_reschedule_at_new_scheduled_time
    aplex::block_on(async {
        let start = Instant::now();
        let task = TestTask::new();
        let mut a = time::sleep(ms(5));
        let mut b = time::sleep(ms(5));
        let mut c = time::sleep(ms(10));
        let _ = task.poll(&mut a);
        let _ = task.poll(&mut b);
        let _ = task.poll(&mut c);
        b.reset(start + ms(10));
        a.await;
        drop(b);
        drop(c);
    });
}

/// A waker whose wake drops every timer in the list, its own included.
struct DropWaker {
    panicked: Arc<AtomicBool>,
    list: Arc<Mutex<Vec<Sleep>>>,
}

impl Wake for DropWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            *self.list.lock().unwrap() = Vec::new();
        }));
        if result.is_err() {
            self.panicked.store(true, Ordering::SeqCst);
        }
    }
}

fn drop_from_wake_on(register_inside_block_on: bool) {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let panicked = Arc::new(AtomicBool::new(false));
        let list = Arc::new(Mutex::new(Vec::new()));
        let waker = Waker::from(Arc::new(DropWaker {
            panicked: Arc::clone(&panicked),
            list: Arc::clone(&list),
        }));
        let register = || {
            let mut timers = list.lock().unwrap();
            for _ in 0..100 {
                let mut timer = time::sleep(ms(10));
                let _ = Pin::new(&mut timer).poll(&mut Context::from_waker(&waker));
                timers.push(timer);
            }
        };
        if register_inside_block_on {
            aplex::block_on(async {
                register();
                time::sleep(ms(11)).await;
                // Every timer fired: let the reactor run the last wakes.
                aplex::yield_now().await;
            });
        } else {
            register();
        }
        wait_for("every timer fired", || list.lock().unwrap().is_empty());
        done_tx.send(panicked.load(Ordering::SeqCst)).unwrap();
    });
    let panicked = done_rx
        .recv_timeout(HANG)
        .expect("a waker that drops timers deadlocked the timer code");
    assert!(!panicked, "panicked when dropping timers");
}

#[test]
fn drop_from_wake() {
    // tokio: drop_from_wake, on a block_on thread's reactor
    drop_from_wake_on(true);
}

#[test]
fn drop_from_wake_on_the_timer_thread() {
    // tokio: drop_from_wake, with the timers on the global timer thread
    drop_from_wake_on(false);
}
