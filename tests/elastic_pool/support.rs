//! What the tests share: waiting for a condition, and a closure held at a gate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls `cond` until it holds; panics after 5 s (a hang catcher, not a speed bound).
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A closure that holds its worker until `gate` opens (bounded, so a failing test ends).
pub fn blocker(gate: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let gate = gate.clone();
    move || {
        let end = Instant::now() + Duration::from_secs(10);
        while !gate.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
