//! Timers at their seams: zero and `MAX` durations, a reset while the task waits, timeouts of
//! futures that are ready at once, and timers polled from a foreign executor's thread.

use std::future::{pending, ready, Future};
use std::task::Poll;
use std::time::{Duration, Instant};

use aplex::time::{interval, sleep, sleep_until, timeout, timeout_at};

use crate::{bug, case, eventually, poll_with, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    let _ = bug; // the macro of known bugs, when there is one here
    vec![
        case(
            "sleep_zero_and_past_deadlines_are_ready_at_once",
            sleep_zero_and_past_deadlines_are_ready_at_once,
        ),
        case(
            "duration_max_means_never_not_a_panic",
            duration_max_means_never_not_a_panic,
        ),
        case(
            "timeout_of_a_ready_future_is_ok_even_with_zero_time",
            timeout_of_a_ready_future_is_ok_even_with_zero_time,
        ),
        case(
            "sleep_reset_to_the_past_wakes_the_waiting_task",
            sleep_reset_to_the_past_wakes_the_waiting_task,
        ),
        case(
            "sleep_reset_earlier_wakes_the_waiting_task_on_a_foreign_waker",
            sleep_reset_earlier_wakes_the_waiting_task_on_a_foreign_waker,
        ),
        case(
            "interval_reset_while_waiting_wakes_the_task",
            interval_reset_while_waiting_wakes_the_task,
        ),
        case(
            "sleep_polled_by_a_foreign_waker_fires",
            sleep_polled_by_a_foreign_waker_fires,
        ),
        case(
            "sleep_moved_between_block_on_and_a_foreign_thread",
            sleep_moved_between_block_on_and_a_foreign_thread,
        ),
        case(
            "interval_after_missed_ticks_keeps_going",
            interval_after_missed_ticks_keeps_going,
        ),
    ]
}

fn sleep_zero_and_past_deadlines_are_ready_at_once() {
    let (_c, waker) = CountingWaker::new();
    assert_eq!(
        poll_with(&mut sleep(Duration::ZERO), &waker),
        Poll::Ready(())
    );
    let past = Instant::now();
    assert_eq!(poll_with(&mut sleep_until(past), &waker), Poll::Ready(()));
    // Polled again after completion: ready again (documented), no panic.
    let mut s = sleep(Duration::ZERO);
    assert!(poll_with(&mut s, &waker).is_ready());
    assert!(poll_with(&mut s, &waker).is_ready());
    aplex::block_on(sleep(Duration::ZERO));
}

fn duration_max_means_never_not_a_panic() {
    let (counter, waker) = CountingWaker::new();
    let mut s = sleep(Duration::MAX);
    assert!(poll_with(&mut s, &waker).is_pending());
    assert_eq!(s.deadline(), None);
    assert!(!s.is_elapsed());
    let r = aplex::block_on(timeout(Duration::MAX, async { 5 }));
    assert_eq!(r, Ok(5));
    let mut every = interval(Duration::MAX);
    aplex::block_on(every.tick()); // the first tick is now
    assert!(every
        .poll_tick(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    // timeout(MAX) of a never-ready future stays pending, quietly.
    let mut t = Box::pin(timeout(Duration::MAX, pending::<()>()));
    assert!(t
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    assert_eq!(counter.count(), 0);
    let mut h = aplex::ThreadPool::new(1).submit(|| 3);
    assert_eq!(h.wait_timeout(Duration::MAX), Ok(3));
}

fn timeout_of_a_ready_future_is_ok_even_with_zero_time() {
    assert_eq!(aplex::block_on(timeout(Duration::ZERO, ready(1))), Ok(1));
    assert_eq!(aplex::block_on(timeout_at(Instant::now(), ready(2))), Ok(2));
    let r = aplex::block_on(timeout(Duration::ZERO, pending::<()>()));
    assert!(r.is_err());
}

fn sleep_reset_to_the_past_wakes_the_waiting_task() {
    // tokio's `reset_sleep_to_past`: a pending sleep reset to a passed deadline wakes its task
    // at once, without being polled again.
    within("reset to the past", || {
        aplex::block_on(async {
            let mut s = Box::pin(sleep(Duration::from_secs(3600)));
            let mut reset_done = false;
            std::future::poll_fn(|cx| {
                if s.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if !reset_done {
                    reset_done = true;
                    // Reset from outside the sleep's own poll, as a select arm would.
                    s.as_mut().get_mut().reset(Instant::now());
                }
                Poll::Pending
            })
            .await;
        })
    });
}

fn sleep_reset_earlier_wakes_the_waiting_task_on_a_foreign_waker() {
    let (counter, waker) = CountingWaker::new();
    let mut s = sleep(Duration::from_secs(3600));
    assert!(poll_with(&mut s, &waker).is_pending());
    s.reset(Instant::now() + Duration::from_millis(1));
    eventually("the reset sleep to wake its task", || counter.count() > 0);
    assert!(s.is_elapsed());
    assert!(poll_with(&mut s, &waker).is_ready());
}

fn interval_reset_while_waiting_wakes_the_task() {
    let (counter, waker) = CountingWaker::new();
    let mut every = interval(Duration::from_secs(3600));
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(every.poll_tick(&mut cx).is_ready()); // the first tick is now
    assert!(every.poll_tick(&mut cx).is_pending());
    // A shorter wait is not possible through reset (it moves the tick one period from now);
    // the task must still be woken when that tick is due, which here is an hour: check only
    // that reset keeps the task registered rather than dropping its waker.
    every.reset();
    assert!(every.poll_tick(&mut cx).is_pending());
    assert_eq!(counter.count(), 0);
}

fn sleep_polled_by_a_foreign_waker_fires() {
    within("a sleep on the global timer thread", || {
        let (counter, waker) = CountingWaker::new();
        let mut s = sleep(Duration::from_millis(5));
        assert!(poll_with(&mut s, &waker).is_pending());
        eventually("the timer thread to wake", || counter.count() > 0);
        assert!(poll_with(&mut s, &waker).is_ready());
    });
}

fn sleep_moved_between_block_on_and_a_foreign_thread() {
    let mut s = sleep(Duration::from_millis(30));
    aplex::block_on(async {
        // Registered with this block_on's reactor, then abandoned there.
        let (_c, waker) = CountingWaker::new();
        let _ = poll_with(&mut s, &waker);
    });
    let done = within("a sleep re-homed on another thread", move || {
        let (counter, waker) = CountingWaker::new();
        if poll_with(&mut s, &waker).is_pending() {
            eventually("the re-homed sleep to wake", || counter.count() > 0);
        }
        poll_with(&mut s, &waker).is_ready()
    });
    assert!(done);
}

fn interval_after_missed_ticks_keeps_going() {
    within("an interval that missed ticks", || {
        aplex::block_on(async {
            let mut every = interval(Duration::from_millis(1));
            let first = every.tick().await;
            std::thread::sleep(Duration::from_millis(20)); // miss many ticks
            let mut last = first;
            for _ in 0..5 {
                let t = every.tick().await;
                assert!(t > last, "ticks move forward");
                last = t;
            }
        })
    });
}
