//! Seams of the process pool, its wire format and the balancers: the third round of
//! outside-in tests. The process pool driven from the async side (foreign executors, a thread
//! pool's works, cancels at every stage, maps whose worker dies while awaited, shutdowns racing
//! calls); a **fake worker** that speaks the protocol by hand and lies in every way a count or a
//! length can lie; the wire format at its edge values and on truncated input; and balancers
//! that return nonsense, panic, or pin everything to one busy worker. Every submitted work must
//! end in exactly one outcome, nothing may hang, and nothing in the parent may panic.
//!
//! `harness = false`, like `seams`: the process cases launch this binary as their worker (a
//! real one, or the fake one when `SEAMS_FAKE` names a script), and libtest would print on the
//! stdout the protocol needs. `main` runs each case on its own thread under a hang bound, one
//! at a time (memory peaks and loads taken by one are not disturbed by another), and prints
//! `N passed, N failed, N ignored` last. Arguments: substrings of case names to run only
//! those; `--ignored` runs the cases marked as known bugs.
//!
//! Every panic is quiet (some cases panic on purpose); a failing case prints its message.

use std::task::{Context, Poll, Waker};

mod case_harness;

#[cfg(feature = "process")]
#[path = "seams_process/async_cases.rs"]
mod async_cases;
#[path = "seams_process/balance_cases.rs"]
mod balance_cases;
#[cfg(feature = "process")]
#[path = "seams_process/fake_cases.rs"]
mod fake_cases;
#[cfg(feature = "process")]
#[path = "seams_process/fake_worker.rs"]
mod fake_worker;
#[cfg(feature = "process")]
#[path = "seams_process/lifecycle_cases.rs"]
mod lifecycle_cases;
#[cfg(feature = "process")]
#[path = "seams_process/wire_cases.rs"]
mod wire_cases;
#[cfg(feature = "process")]
#[path = "seams_process/works.rs"]
mod works;

#[allow(unused_imports)] // each feature cut uses a different part
pub(crate) use case_harness::{bug, case, eventually, message, within, Case, CountingWaker, HANG};

/// Polls `fut` once with `waker`.
#[allow(dead_code)]
pub(crate) fn poll_with<F: std::future::Future + Unpin>(
    fut: &mut F,
    waker: &Waker,
) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// The peak resident memory of this process so far, in KiB (Linux's `VmHWM`); 0 if unknown.
#[allow(dead_code)]
pub(crate) fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // First: the fake worker's cases check the memory peak, which only grows.
    #[cfg(feature = "process")]
    cases.extend(fake_cases::cases());
    #[cfg(feature = "process")]
    cases.extend(wire_cases::cases());
    cases.extend(balance_cases::cases());
    #[cfg(feature = "process")]
    cases.extend(async_cases::cases());
    #[cfg(feature = "process")]
    cases.extend(lifecycle_cases::cases());
    cases
}

fn main() {
    #[cfg(feature = "process")]
    {
        fake_worker::serve_if_fake();
        works::serve();
    }
    case_harness::run_cases("seams_process", all_cases())
}
