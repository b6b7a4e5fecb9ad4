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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
pub(crate) use case_harness::{
    bug, case, eventually, message, poll_with, run_foreign, within, Case, CountingWaker, HANG,
};

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
