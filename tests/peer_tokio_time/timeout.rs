//! tokio `tests/time_timeout.rs`.

use std::future::pending;
use std::time::{Duration, Instant};

use aplex::sync::oneshot;
use aplex::time::{timeout, timeout_at, Elapsed};

use crate::peer_common::{ready, spawn, wait_for};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn simultaneous_deadline_future_completion() {
    // tokio: simultaneous_deadline_future_completion: a ready future wins over a due deadline
    let mut fut = spawn(timeout_at(Instant::now(), async {}));
    assert_eq!(ready(fut.poll()), Ok(()));
}

#[test]
fn completed_future_past_deadline() {
    // tokio: completed_future_past_deadline
    let now = Instant::now();
    let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
    let mut fut = spawn(timeout_at(past, async {}));
    assert_eq!(ready(fut.poll()), Ok(()));
}

#[test]
fn future_and_deadline_in_future() {
    // tokio: future_and_deadline_in_future (the deadline an hour away stands for a paused one)
    let (tx, rx) = oneshot::channel();
    let mut fut = spawn(timeout_at(Instant::now() + HOUR, rx));
    assert!(fut.poll().is_pending());
    assert!(fut.poll().is_pending());
    tx.send(()).unwrap();
    assert!(fut.is_woken());
    assert_eq!(ready(fut.poll()), Ok(Ok(())));
}

#[test]
fn future_and_timeout_in_future() {
    // tokio: future_and_timeout_in_future
    let (tx, rx) = oneshot::channel();
    let mut fut = spawn(timeout(HOUR, rx));
    assert!(fut.poll().is_pending());
    assert!(fut.poll().is_pending());
    tx.send(()).unwrap();
    assert_eq!(ready(fut.poll()), Ok(Ok(())));
}

#[test]
fn very_large_timeout() {
    // tokio: very_large_timeout (`Duration::MAX`: never fires, no panic)
    let (tx, rx) = oneshot::channel();
    let mut fut = spawn(timeout(Duration::MAX, rx));
    assert!(fut.poll().is_pending());
    assert!(!fut.future.is_elapsed());
    tx.send(()).unwrap();
    assert_eq!(ready(fut.poll()), Ok(Ok(())));
}

#[test]
fn deadline_now_elapses() {
    // tokio: deadline_now_elapses
    let mut fut = spawn(timeout_at(Instant::now(), pending::<()>()));
    assert_eq!(ready(fut.poll()), Err(Elapsed));
}

#[test]
fn deadline_future_elapses() {
    // tokio: deadline_future_elapses: pending, woken at the deadline, then elapsed
    let deadline = Instant::now() + Duration::from_millis(30);
    let mut fut = spawn(timeout_at(deadline, pending::<()>()));
    assert!(fut.poll().is_pending());
    wait_for("the deadline wakes the timeout", || fut.is_woken());
    assert!(Instant::now() >= deadline);
    assert_eq!(ready(fut.poll()), Err(Elapsed));
}

#[test]
fn timeout_is_not_exhausted_by_future() {
    // tokio: timeout_is_not_exhausted_by_future: an inner future that is always ready to
    // run again (it yields forever) does not starve the deadline
    aplex::block_on(async {
        let fut = timeout(Duration::from_millis(1), async {
            loop {
                aplex::yield_now().await;
            }
        });
        assert_eq!(fut.await, Err::<(), _>(Elapsed));
    });
}
