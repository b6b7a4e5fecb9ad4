//! Seams of the code that changed last: the fourth round of outside-in tests. The thread
//! pool's shared queue (cancelled works still queued, shutdowns racing submits from many
//! threads, works that wait on their own pool, maps with chunks and a timeout, `in_thread`
//! from many threads); the runtime's timers and wake-ups in every feature cut; `aplex::io`
//! objects moving to the fallback reactor; the process pool's frame bounds, batches and user
//! `Wire` impls that panic; the elastic pool's blocking submits. Every submitted work must end
//! in exactly one outcome, nothing may hang, and nothing a user can reach may panic.
//!
//! `harness = false`, like `seams_process`: the process cases launch this binary as their
//! worker (a real one, or a fake one that says hello and then closes its input), and libtest
//! would print on the stdout the protocol needs. `main` runs each case on its own thread under
//! a hang bound, one at a time, and prints `N passed, N failed, N ignored` last. Arguments:
//! substrings of case names to run only those; `--ignored` runs the cases marked as known bugs.
//!
//! Every panic is quiet (some cases panic on purpose); a failing case prints its message.

mod case_harness;

#[cfg(feature = "elastic")]
#[path = "seams_fresh/elastic_cases.rs"]
mod elastic_cases;
#[cfg(feature = "helpers")]
#[path = "seams_fresh/in_thread_cases.rs"]
mod in_thread_cases;
#[cfg(feature = "io")]
#[path = "seams_fresh/io_cases.rs"]
mod io_cases;
#[cfg(feature = "process")]
#[path = "seams_fresh/process_cases.rs"]
mod process_cases;
#[path = "seams_fresh/shared_queue_cases.rs"]
mod shared_queue_cases;
#[path = "seams_fresh/timer_cases.rs"]
mod timer_cases;
#[cfg(feature = "process")]
#[path = "seams_fresh/works.rs"]
mod works;

#[allow(unused_imports)] // each feature cut uses a different part
pub(crate) use case_harness::{bug, case, eventually, message, within, Case, CountingWaker, HANG};

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(timer_cases::cases());
    cases.extend(shared_queue_cases::cases());
    #[cfg(feature = "io")]
    cases.extend(io_cases::cases());
    #[cfg(feature = "process")]
    cases.extend(process_cases::cases());
    #[cfg(feature = "elastic")]
    cases.extend(elastic_cases::cases());
    #[cfg(feature = "helpers")]
    cases.extend(in_thread_cases::cases());
    cases
}

fn main() {
    #[cfg(feature = "process")]
    {
        works::serve();
    }
    case_harness::run_cases("seams_fresh", all_cases())
}
