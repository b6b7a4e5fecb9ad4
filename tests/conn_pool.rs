//! Behaviour of `aplex::ConnectionPool`: the size bound under contention, FIFO service, health
//! checks, max life, discard, close, factory errors, timeouts, cancellation and stats.
#![cfg(feature = "conn-pool")]

use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use aplex::{block_on, spawn_local, yield_now, ConnectionPool, Error, Pooled};

/// The longest any wait in these tests may take before the test fails instead of hanging: only
/// a hang reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers

/// Counts what a pool's factory and cleanup did.
#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    cleaned: AtomicUsize,
    /// Connections alive right now: opened and not yet cleaned.
    live: AtomicUsize,
    /// The most ever alive at once.
    peak: AtomicUsize,
}

impl Counts {
    fn open(&self) -> usize {
        let id = self.opened.fetch_add(1, SeqCst);
        let live = self.live.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(live, SeqCst);
        id
    }

    fn clean(&self) {
        self.cleaned.fetch_add(1, SeqCst);
        self.live.fetch_sub(1, SeqCst);
    }

    fn opened(&self) -> usize {
        self.opened.load(SeqCst)
    }

    fn cleaned(&self) -> usize {
        self.cleaned.load(SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(SeqCst)
    }
}

/// A connection: its id, numbered from 0 in opening order.
type Conn = usize;

/// A pool builder whose factory and cleanup report to `counts`.
fn counted(counts: &Arc<Counts>) -> aplex::ConnectionPoolBuilder<Conn> {
    let (opening, cleaning) = (Arc::clone(counts), Arc::clone(counts));
    ConnectionPool::builder(move || Ok(opening.open())).cleanup(move |_| cleaning.clean())
}

/// A no-op waker, for polling by hand.
fn noop_waker() -> Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// Polls `f` once by hand.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = noop_waker();
    std::pin::Pin::new(f).poll(&mut Context::from_waker(&waker))
}

/// Runs `f` on a thread and fails the test if it does not finish within `BOUND`.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .expect("the test body did not finish in time")
}

/// Yields in `block_on` until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        yield_now().await;
    }
}

/// Installs (once) a panic hook that keeps the panics these tests cause quiet.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.contains("expected") {
                default(info);
            }
        }));
    });
}

#[path = "conn_pool/bound_and_order.rs"]
mod bound_and_order;
#[path = "conn_pool/discard_close_drop.rs"]
mod discard_close_drop;
#[path = "conn_pool/factory_errors.rs"]
mod factory_errors;
#[path = "conn_pool/health_and_life.rs"]
mod health_and_life;
#[path = "conn_pool/stats_and_callers.rs"]
mod stats_and_callers;
#[path = "conn_pool/timeouts_and_cancel.rs"]
mod timeouts_and_cancel;
#[path = "conn_pool/user_panics.rs"]
mod user_panics;
