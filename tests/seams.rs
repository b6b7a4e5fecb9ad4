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
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

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

/// One case: its name, its body, and why it is ignored (a known bug), if it is.
#[derive(Debug)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) run: fn(),
    pub(crate) ignored: Option<&'static str>,
}

/// A case that runs.
pub(crate) const fn case(name: &'static str, run: fn()) -> Case {
    Case {
        name,
        run,
        ignored: None,
    }
}

/// A case that pins a known bug: run only with `--ignored`.
pub(crate) const fn bug(name: &'static str, run: fn(), why: &'static str) -> Case {
    Case {
        name,
        run,
        ignored: Some(why),
    }
}

/// The bound that catches a hang: far beyond any honest wait on a busy machine.
pub(crate) const HANG: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread and returns its value; fails the case if it takes longer than
/// [`HANG`] (the thread is left behind: it is hung).
pub(crate) fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("hung: {what} did not finish within {HANG:?}"),
    }
}

/// Waits (polling every millisecond) until `cond` holds; fails the case after [`HANG`].
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < end, "hung: waited {HANG:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A waker that counts its wakes, as a foreign executor's would.
#[derive(Debug, Default)]
pub(crate) struct CountingWaker {
    pub(crate) wakes: AtomicUsize,
}

impl CountingWaker {
    /// A fresh counter and a waker that bumps it.
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        (counter, waker)
    }

    pub(crate) fn count(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

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

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
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
    // Quiet panics: cases panic on purpose; a failing case's message is printed below.
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ignored_too = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for case in all_cases() {
        if !filters.is_empty() && !filters.iter().any(|f| case.name.contains(f.as_str())) {
            continue;
        }
        if let (Some(why), false) = (case.ignored, ignored_too) {
            eprintln!("test {} ... ignored, {why}", case.name);
            ignored += 1;
            continue;
        }
        let start = Instant::now();
        let run = case.run;
        // A case that hangs past its own bounds is reported, and the others still run.
        let (tx, rx) = std_mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(catch_unwind(run).map_err(|p| message(&*p)));
        });
        let outcome = rx
            .recv_timeout(HANG * 3)
            .unwrap_or_else(|_| Err(format!("hung for {:?}", HANG * 3)));
        match outcome {
            Ok(()) => {
                passed += 1;
                eprintln!("test {} ... ok ({:?})", case.name, start.elapsed());
            }
            Err(why) => {
                failed += 1;
                eprintln!("test {} ... FAILED: {why}", case.name);
            }
        }
    }
    eprintln!("seams: {passed} passed, {failed} failed, {ignored} ignored");
    // Hung threads of failed cases must not keep the process alive.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
