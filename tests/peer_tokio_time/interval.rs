//! tokio `tests/time_interval.rs`.
//!
//! tokio drives these with a paused clock. Here the test makes ticks late by blocking its own
//! thread (the lateness is the point, its length is not), and checks each tick from the
//! `Instant`s involved: ticks lie on the grid `start + k * period`, come in order, and a late
//! tick is followed by the next grid point after the moment it was taken (tokio's `Skip`),
//! never by catch-up ticks.

use std::time::{Duration, Instant};

use aplex::time::{self, Interval};

use crate::peer_common::{quiet_panics, ready, TestTask};

const PERIOD: Duration = Duration::from_millis(20);

fn on_grid(start: Instant, tick: Instant) -> bool {
    tick >= start && (tick - start).as_nanos() % PERIOD.as_nanos() == 0
}

/// Blocks this thread until more than `periods` periods have passed since `since`.
fn fall_behind(since: Instant, periods: u32) {
    let until = since + PERIOD * periods;
    while Instant::now() <= until {
        std::thread::sleep(
            until.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
        );
    }
}

fn tick(i: &mut Interval) -> Instant {
    aplex::block_on(i.tick())
}

#[test]
#[should_panic]
fn interval_zero_duration() {
    // tokio: interval_zero_duration
    quiet_panics();
    let _ = time::interval_at(Instant::now(), Duration::ZERO);
}

#[test]
fn skip() {
    // tokio: skip (aplex's one documented missed-tick behaviour)
    let start = Instant::now();
    let mut i = time::interval_at(start, PERIOD);
    let task = TestTask::new();

    // The first tick is the start itself, at once.
    assert_eq!(ready(task.enter(|cx| i.poll_tick(cx))), start);

    // On time: the next tick is one period on.
    assert_eq!(tick(&mut i), start + PERIOD);

    // Fall more than two periods behind: the late tick comes at once, as scheduled (on the
    // grid, already past)...
    fall_behind(Instant::now(), 3);
    let taken_late = Instant::now();
    let late = ready(task.enter(|cx| i.poll_tick(cx)));
    assert!(on_grid(start, late) && late > start + PERIOD && late < taken_late);
    // ...and the next one is the first grid point after the late one was taken: no burst.
    let next = tick(&mut i);
    assert!(on_grid(start, next));
    assert!(next > taken_late, "a missed tick was not skipped");

    // Then one period apart again (or later on the grid, if this thread stalled).
    let after = tick(&mut i);
    assert!(on_grid(start, after));
    assert!(after > next);
}

#[test]
#[ignore = "differs: aplex documents tokio's Skip behaviour for missed ticks, not Burst (tokio's default)"]
fn burst() {
    // tokio: burst: missed ticks come back to back
    let start = Instant::now();
    let mut i = time::interval_at(start, PERIOD);
    assert_eq!(tick(&mut i), start);
    fall_behind(start, 3);
    let task = TestTask::new();
    assert_eq!(ready(task.enter(|cx| i.poll_tick(cx))), start + PERIOD);
    assert_eq!(ready(task.enter(|cx| i.poll_tick(cx))), start + PERIOD * 2);
}

#[test]
fn reset() {
    // tokio: reset: after `reset`, the next tick is one period from the reset
    let start = Instant::now();
    let mut i = time::interval_at(start, PERIOD);
    assert_eq!(tick(&mut i), start);
    assert_eq!(tick(&mut i), start + PERIOD);

    let before = Instant::now();
    i.reset();
    let after = Instant::now();
    let next = tick(&mut i);
    assert!(next >= before + PERIOD && next <= after + PERIOD);
    let again = tick(&mut i);
    assert!(again > next);
    assert_eq!((again - next).as_nanos() % PERIOD.as_nanos(), 0);
}

#[test]
fn pending_until_the_next_tick() {
    // tokio: burst's first steps: after the first tick, the interval is pending
    let mut i = time::interval_at(Instant::now(), Duration::from_secs(3600));
    let task = TestTask::new();
    assert!(task.enter(|cx| i.poll_tick(cx)).is_ready());
    assert!(task.enter(|cx| i.poll_tick(cx)).is_pending());
    assert!(task.enter(|cx| i.poll_tick(cx)).is_pending());
}
