//! Seams: adversarial tests of the public API from the outside, the way a user's own test suite
//! (tokio's and futures' style), fuzzing or fault injection would reach it. Each case pins one
//! sequence at a seam — the async side of a blocking API, a future dropped mid-way, a panic in
//! user code, a pool torn down under its works — and asserts that every submitted work ends in
//! exactly one outcome, that nothing hangs and that nothing is lost silently.
//!
//! `harness = false`: the process-pool cases launch this binary as their worker, and libtest
//! would print on the stdout the protocol needs. `main` runs the cases, each on its own thread
//! under a hang bound, and prints `N passed, N failed, N ignored` last. Arguments: substrings
//! of case names to run only those; `--ignored` runs the cases marked as known bugs.
//!
//! Every panic is quiet (some cases panic on purpose); a failing case prints its message.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

mod case_harness;

#[cfg(feature = "conn-pool")]
#[path = "seams/conn_cases.rs"]
mod conn_cases;
#[cfg(feature = "elastic")]
#[path = "seams/elastic_cases.rs"]
mod elastic_cases;
#[cfg(feature = "helpers")]
#[path = "seams/helper_cases.rs"]
mod helper_cases;
#[path = "seams/pool_cases.rs"]
mod pool_cases;
#[cfg(feature = "process")]
#[path = "seams/process_cases.rs"]
mod process_cases;
#[path = "seams/sync_cases.rs"]
mod sync_cases;
#[path = "seams/time_cases.rs"]
mod time_cases;

#[allow(unused_imports)] // each feature cut uses a different part
pub(crate) use case_harness::{bug, case, eventually, message, within, Case, CountingWaker, HANG};

/// Polls `fut` once with `waker`.
pub(crate) fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// A value that counts its drops.
#[derive(Debug)]
pub(crate) struct DropCount(pub(crate) Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A value whose drop panics (unless the thread is already unwinding).
#[derive(Debug)]
pub(crate) struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("PanicOnDrop dropped");
        }
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(sync_cases::cases());
    cases.extend(time_cases::cases());
    cases.extend(pool_cases::cases());
    #[cfg(feature = "helpers")]
    cases.extend(helper_cases::cases());
    #[cfg(feature = "conn-pool")]
    cases.extend(conn_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_cases::cases());
    #[cfg(feature = "process")]
    cases.extend(process_cases::cases());
    cases
}

fn main() {
    #[cfg(feature = "process")]
    process_cases::serve();
    case_harness::run_cases("seams", all_cases())
}
