//! `block_on`: run a future to completion on the calling thread, with this thread's executor and
//! reactor, so that spawned local tasks, timers and I/O all work inside it.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::executor::Local;
use super::task::{Header, MAIN};

/// The waker of the `block_on` future: it queues the index [`MAIN`].
struct MainWaker(Header);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}

/// Leaves the executor when `block_on` returns or unwinds.
struct Exit<'a>(&'a Local);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// Runs a future to completion on the current thread and returns its output
/// (aioextensions' `run`).
///
/// The thread runs an executor and a reactor while it waits, so the future can
/// [`spawn_local`](crate::spawn_local) tasks, sleep, and do I/O. The future may borrow from the
/// caller (no `'static` or `Send` bound). Tasks spawned inside and still unfinished when the
/// future completes are dropped. The executor is kept per thread and reused by later calls.
///
/// # Panics
///
/// Panics if called inside another `block_on` (or a pool worker) on the same thread: the outer
/// executor would stall. Use `.await` there instead. A panic of the future itself propagates.
///
/// Also panics, on a thread's first call, if the thread's reactor cannot be made: it needs a
/// socket pair (two fds), so a process out of fds (`EMFILE`, `ENFILE`) gets a panic whose
/// message carries the OS error (under `panic = "abort"`, the process ends). Pools do not
/// reach this: `ThreadPool::builder().build()` returns that OS error instead.
///
/// ```
/// use std::time::Duration;
/// let words = vec!["a", "b"];
/// let n = aplex::block_on(async {
///     aplex::time::sleep(Duration::from_millis(1)).await;
///     words.len() // borrows from the caller
/// });
/// assert_eq!(n, 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let local = Local::enter();
    let _exit = Exit(&local);
    let main = Arc::new(MainWaker(Header::new(MAIN, false, local.shared.clone())));
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        main.0.start_poll();
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !local.tick() {}
    }
}
