//! Timers where no aplex executor runs (the global timer thread serves them): intervals and
//! resets on plain threads, extreme periods and timeouts, wakers swapped between polls, and
//! foreign wakers that panic when woken.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

use aplex::time::{interval, interval_at, sleep, timeout, Elapsed};

use super::{case, eventually, poll_with, run_foreign, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "time_interval_on_a_plain_thread_ticks_resets_and_catches_up",
            interval_on_a_plain_thread_ticks_resets_and_catches_up,
        ),
        case(
            "time_extreme_periods_and_timeouts_on_a_plain_thread",
            extreme_periods_and_timeouts_on_a_plain_thread,
        ),
        case(
            "time_sleep_wakes_the_waker_of_its_latest_poll_on_another_thread",
            sleep_wakes_the_waker_of_its_latest_poll_on_another_thread,
        ),
        case(
            "time_a_foreign_waker_that_panics_does_not_stop_the_timer_thread",
            a_foreign_waker_that_panics_does_not_stop_the_timer_thread,
        ),
        case(
            "time_a_waker_that_panics_inside_block_on_does_not_stop_it",
            a_waker_that_panics_inside_block_on_does_not_stop_it,
        ),
    ]
}

/// A waker that panics when woken (after counting the wake).
#[derive(Debug, Default)]
pub(crate) struct PanickingWaker {
    pub(crate) wakes: AtomicUsize,
}

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        panic!("this waker panics on purpose");
    }
}

/// `interval` and `interval_at` polled by a foreign executor: ticks come in order, a reset
/// moves the next tick a period on, and a start in the past ticks at once.
fn interval_on_a_plain_thread_ticks_resets_and_catches_up() {
    within("an interval on a plain thread", || {
        let mut every = interval(Duration::from_millis(2));
        let first = run_foreign(every.tick());
        let second = run_foreign(every.tick());
        assert!(second >= first + Duration::from_millis(2));
        every.reset();
        let before_third = Instant::now();
        let third = run_foreign(every.tick());
        assert!(third >= before_third + Duration::from_millis(2) - Duration::from_micros(1));
        let past = Instant::now() - Duration::from_millis(50);
        let mut late = interval_at(past, Duration::from_millis(10));
        assert_eq!(run_foreign(late.tick()), past);
        // Behind by several periods: the next tick is due at once, then the schedule goes on.
        let next = run_foreign(late.tick());
        assert!(next > past);
        assert_eq!(late.period(), Duration::from_millis(10));
    });
}

/// Zero and maximal durations where the user gives them: a `Duration::MAX` period ticks once
/// and then never (pending, no panic); a zero timeout of a pending future elapses; a maximal
/// timeout of a future finished from another thread gives its value.
fn extreme_periods_and_timeouts_on_a_plain_thread() {
    within("extreme periods", || {
        let mut never_again = interval(Duration::MAX);
        run_foreign(never_again.tick());
        never_again_is_pending(&mut never_again);
        never_again.reset();
        never_again_is_pending(&mut never_again);
        let zero = run_foreign(timeout(Duration::ZERO, std::future::pending::<()>()));
        assert_eq!(zero, Err(Elapsed));
        let (tx, rx) = aplex::sync::oneshot::channel();
        let sender = std::thread::spawn(move || tx.send(5).unwrap());
        assert_eq!(run_foreign(timeout(Duration::MAX, rx)), Ok(Ok(5)));
        sender.join().unwrap();
        assert!(std::panic::catch_unwind(|| interval(Duration::ZERO)).is_err());
    });
}

/// Polls the next tick once: it must be pending, and stay unwoken.
fn never_again_is_pending(every: &mut aplex::time::Interval) {
    let (counter, waker) = CountingWaker::new();
    let mut tick = std::pin::pin!(every.tick());
    assert!(poll_with(tick.as_mut(), &waker).is_pending());
    assert_eq!(counter.count(), 0);
}

/// A sleep polled on one thread with one waker, then moved to another thread and polled with
/// a second waker: the second is woken when it is due.
fn sleep_wakes_the_waker_of_its_latest_poll_on_another_thread() {
    within("a sleep moved with a new waker", || {
        let mut nap = Box::pin(sleep(Duration::from_millis(5)));
        let (_first, waker) = CountingWaker::new();
        assert!(poll_with(nap.as_mut(), &waker).is_pending());
        let second = std::thread::spawn(move || {
            let (counter, waker) = CountingWaker::new();
            if poll_with(nap.as_mut(), &waker).is_ready() {
                return;
            }
            eventually("the second waker woken", || counter.count() > 0);
            assert_eq!(poll_with(nap.as_mut(), &waker), Poll::Ready(()));
        });
        second.join().unwrap();
    });
}

/// A sleep polled on a plain thread by a waker that panics when woken. Its panic must stay
/// with the waker: sleeps polled afterwards on plain threads still fire, and so does one due
/// in the same turn.
fn a_foreign_waker_that_panics_does_not_stop_the_timer_thread() {
    within("a panicking waker on the timer thread", || {
        let bad = Arc::new(PanickingWaker::default());
        let bad_waker = Waker::from(Arc::clone(&bad));
        let mut doomed = Box::pin(sleep(Duration::from_millis(1)));
        assert!(poll_with(doomed.as_mut(), &bad_waker).is_pending());
        let mut beside = Box::pin(sleep(Duration::from_millis(1)));
        let (counter, good) = CountingWaker::new();
        assert!(poll_with(beside.as_mut(), &good).is_pending());
        eventually("the panicking waker woken", || {
            bad.wakes.load(Ordering::SeqCst) > 0
        });
        eventually("the waker due in the same turn woken", || {
            counter.count() > 0
        });
        // The timer thread goes on serving.
        run_foreign(sleep(Duration::from_millis(1)));
        run_foreign(sleep(Duration::from_millis(3)));
    });
}

/// Inside `block_on`, a task polls a sleep by hand with a waker that panics when woken, then
/// waits on a second sleep. The panic must not unwind out of the executor's reactor turn.
fn a_waker_that_panics_inside_block_on_does_not_stop_it() {
    within("a panicking waker inside block_on", || {
        let bad = Arc::new(PanickingWaker::default());
        let bad_waker = Waker::from(Arc::clone(&bad));
        let done = aplex::block_on(async {
            let mut doomed = Box::pin(sleep(Duration::from_millis(1)));
            assert!(poll_with(doomed.as_mut(), &bad_waker).is_pending());
            sleep(Duration::from_millis(3)).await;
            sleep(Duration::from_millis(1)).await;
            "survived"
        });
        assert_eq!(done, "survived");
        assert!(bad.wakes.load(Ordering::SeqCst) > 0);
    });
}
