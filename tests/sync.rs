//! Behaviour of `aplex::sync`: channels, semaphore and event, driven by `block_on`, by plain
//! threads, by hand-polling, and by a minimal foreign executor written below.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use aplex::block_on;
use aplex::sync::{mpsc, oneshot, Event, Semaphore};

mod expected_panics;
use expected_panics::expect_panics;

/// How long to wait before concluding that a blocked call is really blocked.
const SETTLE: Duration = Duration::from_millis(50);
/// The longest any background job may take before a test fails instead of hanging: only a
/// hang or a lost wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A closure running on its own thread whose result is awaited with a time bound.
struct Job<T> {
    result: std::sync::mpsc::Receiver<T>,
}

fn spawn_job<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Job<T> {
    let (tx, result) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    Job { result }
}

impl<T> Job<T> {
    /// The job's result; fails the test if it does not come within `BOUND`.
    fn join(self) -> T {
        self.result
            .recv_timeout(BOUND)
            .expect("job did not finish in time")
    }

    /// Asserts that the job is still blocked after a short pause.
    fn assert_blocked(&self) {
        thread::sleep(SETTLE);
        assert!(
            self.result.try_recv().is_err(),
            "job finished but should be blocked"
        );
    }
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

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (Arc::clone(&counter), Waker::from(counter))
}

impl CountingWaker {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// A value that counts how many times it was dropped.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A minimal foreign executor: a Condvar-based waker and a loop, sharing no code with aplex.
mod foreign {
    use super::*;

    struct Signal {
        woken: Mutex<bool>,
        cond: Condvar,
    }

    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            *self.woken.lock().unwrap() = true;
            self.cond.notify_one();
        }
    }

    /// Drives `f` to completion on this thread.
    pub fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let signal = Arc::new(Signal {
            woken: Mutex::new(false),
            cond: Condvar::new(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            let mut woken = signal.woken.lock().unwrap();
            while !*woken {
                woken = signal.cond.wait(woken).unwrap();
            }
            *woken = false;
        }
    }

    /// Polls two futures concurrently on one thread until both complete.
    pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
        let mut a = std::pin::pin!(a);
        let mut b = std::pin::pin!(b);
        let (mut ra, mut rb) = (None, None);
        std::future::poll_fn(move |cx| {
            if ra.is_none() {
                if let Poll::Ready(v) = a.as_mut().poll(cx) {
                    ra = Some(v);
                }
            }
            if rb.is_none() {
                if let Poll::Ready(v) = b.as_mut().poll(cx) {
                    rb = Some(v);
                }
            }
            if ra.is_some() && rb.is_some() {
                Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[path = "sync/across_executors.rs"]
mod across_executors;
#[path = "sync/event.rs"]
mod event;
#[path = "sync/mpsc.rs"]
mod mpsc_channel;
#[path = "sync/oneshot.rs"]
mod oneshot_channel;
#[path = "sync/semaphore.rs"]
mod semaphore;
