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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

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
#[allow(dead_code)] // with some features off, no known bug is left in the cut
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
#[allow(dead_code)] // not every feature cut waits for a condition
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < end, "hung: waited {HANG:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A waker that counts its wakes, as a foreign executor's would.
#[derive(Debug, Default)]
#[allow(dead_code)] // not every feature cut polls by hand
pub(crate) struct CountingWaker {
    wakes: AtomicUsize,
}

#[allow(dead_code)]
impl CountingWaker {
    /// A fresh counter and a waker that bumps it.
    pub(crate) fn new() -> (Arc<CountingWaker>, Waker) {
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
    eprintln!("seams_process: {passed} passed, {failed} failed, {ignored} ignored");
    // Hung threads of failed cases must not keep the process alive.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
