//! What the tests share: waiting for a condition, a closure held at a gate, a hang catcher,
//! and two ways to drive a future by hand.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Polls `cond` until it holds; panics after 30 s (a hang catcher, not a speed bound: a busy
/// machine can take seconds to start a worker thread).
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A closure that holds its worker until `gate` opens (bounded, so a failing test ends; the
/// bound is longer than `eventually`'s, so a slow passing test never sees it let go early).
pub fn blocker(gate: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let gate = gate.clone();
    move || {
        let end = Instant::now() + Duration::from_secs(60);
        while !gate.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs `f` on a thread of its own and returns its value; panics if it has not returned after
/// 30 s (a hang catcher, not a speed bound: the awaits it guards end by events).
pub fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(value) => {
            thread.join().expect("the thread returned its value");
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what}"),
        // The thread panicked: hand its panic on.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it returns"),
        },
    }
}

/// Drives `fut` on this thread with a waker of its own that unparks it: a stand-in for another
/// runtime's executor (no aplex executor runs here, so aplex timers use their global thread).
pub fn foreign_block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(value) = fut.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// Polls `fut` once, with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}
