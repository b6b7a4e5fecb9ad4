//! The event: set, clear, timeouts and dropped waits.

use super::*;

#[test]
fn event_set_wakes_all_async_and_blocking_waiters() {
    let event = Arc::new(Event::new());
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let event = Arc::clone(&event);
            spawn_job(move || {
                if i % 2 == 0 {
                    event.wait_blocking();
                } else {
                    block_on(event.wait());
                }
            })
        })
        .collect();
    for waiter in &waiters {
        waiter.assert_blocked();
    }
    event.set();
    for waiter in waiters {
        waiter.join();
    }
}

#[test]
fn event_clear_after_set_makes_waits_wait_again() {
    let event = Event::new();
    event.set();
    block_on(event.wait());
    event.clear();
    assert!(!event.is_set());
    let (_, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
}

#[test]
fn event_wait_timeout_false_then_true() {
    let event = Arc::new(Event::new());
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    let setter = {
        let event = Arc::clone(&event);
        spawn_job(move || {
            thread::sleep(Duration::from_millis(10));
            event.set();
        })
    };
    assert!(event.wait_timeout(BOUND));
    setter.join();
    assert!(event.wait_timeout(Duration::ZERO));
}

#[test]
fn event_set_then_clear_still_releases_pending_waiters() {
    let event = Event::new();
    let (counter, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
    event.set();
    event.clear();
    assert_eq!(counter.wakes(), 1);
    assert!(poll_once(&mut wait, &waker).is_ready());
}

#[test]
fn event_dropped_wait_future_unregisters() {
    let event = Event::new();
    let (counter, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
    assert!(format!("{event:?}").contains("waiters: 1"));
    drop(wait);
    assert!(format!("{event:?}").contains("waiters: 0"));
    event.set();
    assert_eq!(counter.wakes(), 0);
}
