//! More seams: the second round of outside-in tests, at the edges `tests/seams.rs` does not
//! reach — the async sockets as tokio's and async-io's own suites drive them, the runtime's
//! misuse paths (nested `block_on`, `spawn_local` with no executor, wakers that outlive their
//! executor), the global pools, handles and maps under foreign executors, and the elastic
//! pool's blocking and scaling seams.
//!
//! `harness = false`, like `seams`: `main` runs each case on its own thread under a hang bound
//! (so a hang is a failure, not a stuck CI job) and prints `N passed, N failed, N ignored`
//! last. Arguments: substrings of case names to run only those; `--ignored` runs the cases
//! marked as known bugs. The cases run one at a time, so fd and thread counts taken by one are
//! not disturbed by another; the case that shuts the global pool down runs last.
//!
//! Every panic is quiet (some cases panic on purpose); a failing case prints its message.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod case_harness;

#[cfg(feature = "elastic")]
#[path = "seams_more/elastic_cases.rs"]
mod elastic_cases;
#[cfg(feature = "helpers")]
#[path = "seams_more/global_cases.rs"]
mod global_cases;
#[path = "seams_more/handle_cases.rs"]
mod handle_cases;
#[cfg(feature = "io")]
#[path = "seams_more/io_cases.rs"]
mod io_cases;
#[path = "seams_more/runtime_cases.rs"]
mod runtime_cases;

#[allow(unused_imports)] // each feature cut uses a different part
pub(crate) use case_harness::{
    bug, case, eventually, message, poll_with, run_foreign, within, Case, CountingWaker, HANG,
};

/// A value that counts its drops.
#[derive(Debug)]
#[allow(dead_code)] // not every feature cut counts drops
pub(crate) struct DropCount(pub(crate) Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many threads this process has (Linux's `/proc/self/task`).
#[allow(dead_code)] // not every feature cut counts threads
pub(crate) fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// How many fds this process has open (Linux's `/proc/self/fd`).
#[allow(dead_code)] // not every feature cut counts fds
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Runs `f` and returns its panic message, failing the case if it does not panic.
pub(crate) fn panic_message_of<T>(f: impl FnOnce() -> T) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => message(&*payload),
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(runtime_cases::cases());
    cases.extend(handle_cases::cases());
    #[cfg(feature = "io")]
    cases.extend(io_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_cases::cases());
    // Last: one of them shuts the global pool down for good.
    #[cfg(feature = "helpers")]
    cases.extend(global_cases::cases());
    cases
}

fn main() {
    case_harness::run_cases("seams_more", all_cases())
}
