//! The fifth outside-in hunt: cases at the seams between features that the earlier rounds
//! (`seams`, `seams_more`, `seams_process`, `seams_fresh`) do not reach — the elastic pool
//! with async works sharing a worker (its default since `max_works_per_worker` became 300),
//! the connection pool's retry of new connections that fail their check, the channels' newest
//! calls from many threads, timers polled where no aplex executor runs, drops at awkward
//! moments, and the numbers a user may give at their extremes (0, `usize::MAX`,
//! `Duration::MAX`).
//!
//! `harness = false`, like the other seams targets: `main` runs each case on its own thread
//! under a hang bound and prints `N passed, N failed, N ignored` last. Arguments: substrings of
//! case names to run only those; `--ignored` runs the cases marked as known bugs. Every panic
//! is quiet (some cases panic on purpose); a failing case prints its message.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

mod case_harness;

#[cfg(feature = "conn-pool")]
#[path = "seams_hunt5/conn_cases.rs"]
mod conn_cases;
#[path = "seams_hunt5/drop_cases.rs"]
mod drop_cases;
#[cfg(feature = "elastic")]
#[path = "seams_hunt5/elastic_cases.rs"]
mod elastic_cases;
#[cfg(feature = "elastic")]
#[path = "seams_hunt5/elastic_life_cases.rs"]
mod elastic_life_cases;
#[cfg(feature = "elastic")]
#[path = "seams_hunt5/elastic_plain_cases.rs"]
mod elastic_plain_cases;
#[path = "seams_hunt5/foreign_cases.rs"]
mod foreign_cases;
#[cfg(feature = "helpers")]
#[path = "seams_hunt5/helper_cases.rs"]
mod helper_cases;
#[path = "seams_hunt5/sync_cases.rs"]
mod sync_cases;
#[path = "seams_hunt5/time_cases.rs"]
mod time_cases;

#[allow(unused_imports)] // each feature cut uses a different part
pub(crate) use case_harness::{bug, case, eventually, message, within, Case, CountingWaker, HANG};

/// Polls `fut` once with `waker`.
pub(crate) fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// A foreign executor: polls `fut` on the calling thread with a waker that unparks it and
/// counts its wakes; fails the case after [`HANG`].
pub(crate) fn run_foreign<F: Future>(fut: F) -> F::Output {
    struct Unpark {
        thread: std::thread::Thread,
        wakes: AtomicUsize,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut fut = std::pin::pin!(fut);
    let end = Instant::now() + HANG;
    loop {
        let seen = unpark.wakes.load(Ordering::SeqCst);
        if let Poll::Ready(out) = poll_with(fut.as_mut(), &waker) {
            return out;
        }
        // Parked until woken: a wake that never comes is the hang this catches.
        while unpark.wakes.load(Ordering::SeqCst) == seen {
            assert!(Instant::now() < end, "hung: no wake within {HANG:?}");
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }
}

/// A value that counts its drops.
#[derive(Debug)]
pub(crate) struct DropCount(pub(crate) Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(sync_cases::cases());
    cases.extend(time_cases::cases());
    cases.extend(drop_cases::cases());
    cases.extend(foreign_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_life_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_plain_cases::cases());
    #[cfg(feature = "conn-pool")]
    cases.extend(conn_cases::cases());
    #[cfg(feature = "helpers")]
    cases.extend(helper_cases::cases());
    cases
}

fn main() {
    // Re-launched by a case as a probe whose failure would abort the process, or that must
    // run under an fd limit.
    #[cfg(feature = "elastic")]
    if std::env::var(elastic_life_cases::FD_PROBE_ENV).is_ok() {
        return elastic_life_cases::fd_shortage_probe();
    }
    match std::env::var(sync_cases::UNWIND_PROBE_ENV).as_deref() {
        Ok("sync") => return sync_cases::unwind_probe(),
        #[cfg(feature = "conn-pool")]
        Ok("conn") => return conn_cases::unwind_probe(),
        _ => {}
    }
    case_harness::run_cases("seams_hunt5", all_cases())
}
