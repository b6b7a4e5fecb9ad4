//! What the peer ports share: a test task in the manner of `tokio_test::task` (poll by hand,
//! see whether the waker was woken and how many clones of it are alive), a quiet panic hook,
//! and the hang bound.
//!
//! Each `tests/peer_*.rs` file includes this with `mod peer_common;` and uses only part of it.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A bound that only catches a hang: seconds of slack over anything a 2-core machine needs.
pub const HANG: Duration = Duration::from_secs(30);

/// The waker of a [`TestTask`]: records wake-ups.
struct Flag {
    woken: AtomicBool,
    wakes: AtomicUsize,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A task context to poll things by hand with.
pub struct TestTask {
    flag: Arc<Flag>,
    waker: Waker,
}

impl TestTask {
    pub fn new() -> TestTask {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(false),
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(Arc::clone(&flag));
        TestTask { flag, waker }
    }

    /// Runs `f` with this task's context.
    pub fn enter<R>(&self, f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let mut cx = Context::from_waker(&self.waker);
        f(&mut cx)
    }

    /// Polls `fut` once in this task.
    pub fn poll<F: Future + Unpin>(&self, fut: &mut F) -> Poll<F::Output> {
        self.enter(|cx| Pin::new(fut).poll(cx))
    }

    /// Whether the waker was woken since the last call (which clears the mark).
    pub fn is_woken(&self) -> bool {
        self.flag.woken.swap(false, Ordering::SeqCst)
    }

    /// How many wakers of this task are alive, beyond the task's own.
    pub fn stored_wakers(&self) -> usize {
        // The task holds the flag twice: `flag` and `waker`.
        Arc::strong_count(&self.flag) - 2
    }
}

/// A future and the task it is polled in: `tokio_test::task::spawn`.
pub struct Spawned<F> {
    pub task: TestTask,
    pub future: Pin<Box<F>>,
}

pub fn spawn<F: Future>(future: F) -> Spawned<F> {
    Spawned {
        task: TestTask::new(),
        future: Box::pin(future),
    }
}

impl<F: Future> Spawned<F> {
    pub fn poll(&mut self) -> Poll<F::Output> {
        let future = self.future.as_mut();
        self.task.enter(|cx| future.poll(cx))
    }

    pub fn is_woken(&self) -> bool {
        self.task.is_woken()
    }
}

/// The start of every panic message a test expects (on any thread): the hook keeps those quiet.
pub const EXPECTED: &str = "expected panic";

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps expected panics quiet: those whose message starts with [`EXPECTED`], and every panic
/// on this thread from now on (for `#[should_panic]` tests of a library's own panics). Other
/// panics print as usual.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !message.starts_with(EXPECTED) && !QUIET.with(|q| q.get()) {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
}

/// The value of a ready poll; fails the test on `Pending`.
#[track_caller]
pub fn ready<T>(poll: Poll<T>) -> T {
    match poll {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("expected Ready, got Pending"),
    }
}

/// Waits until `event` holds, checking every millisecond; fails the test after [`HANG`]. For
/// events a test cannot be told of (a waker woken by a timer thread).
#[track_caller]
pub fn wait_for(what: &str, mut event: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + HANG;
    while !event() {
        assert!(std::time::Instant::now() < give_up, "hang: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
