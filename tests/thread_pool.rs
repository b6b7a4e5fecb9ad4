//! ThreadPool behaviour: concurrency, balancers, cancel, map, panics, shutdown.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplex::balance::{Balancer, KeyAffinity, LeastLoaded, Load, RoundRobin};
use aplex::sync::Event;
use aplex::time::{sleep, timeout};
use aplex::{Error, ThreadPool};

mod expected_panics;

#[path = "thread_pool/cancel.rs"]
mod cancel;
#[path = "thread_pool/concurrency_and_balancers.rs"]
mod concurrency_and_balancers;
#[path = "thread_pool/handles.rs"]
mod handles;
#[path = "thread_pool/map.rs"]
mod map;
#[path = "thread_pool/panics_and_lifecycle.rs"]
mod panics_and_lifecycle;
#[path = "thread_pool/shutdown_async.rs"]
mod shutdown_async;
use expected_panics::expect_panics;

/// How long anything may take before a test fails instead of hanging: only a hang or a lost
/// wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Holds works where a test needs them until the test opens it. Waits are bounded, so that a
/// failed test cannot leave a work waiting forever (and the pool's drop waiting for it).
#[derive(Clone, Default)]
struct Gate(Arc<Event>);

impl Gate {
    fn open(&self) {
        self.0.set();
    }

    /// Blocks a plain work until the gate opens.
    fn wait(&self) {
        assert!(self.0.wait_timeout(BOUND), "a gate was never opened");
    }

    /// Suspends an async work until the gate opens.
    async fn passed(&self) {
        let opened = timeout(BOUND, self.0.wait()).await;
        assert!(opened.is_ok(), "a gate was never opened");
    }

    /// Like `passed`, and opens `parked` once the work is suspended here (not before: the test
    /// may then open this gate without the work running through it in the same poll).
    async fn passed_after_parking(&self, parked: &Gate) {
        let mut wait = pin!(timeout(BOUND, self.0.wait()));
        let opened = poll_fn(|cx| {
            let poll = wait.as_mut().poll(cx);
            if poll.is_pending() {
                parked.open();
            }
            poll
        })
        .await;
        assert!(opened.is_ok(), "a gate was never opened");
    }
}

fn thread_index() -> usize {
    let name = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    name.rsplit('-').next().unwrap().parse().unwrap()
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
