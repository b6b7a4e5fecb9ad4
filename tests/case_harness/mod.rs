//! The harness of the outside-in case targets (`seams`, `seams_more`, `seams_process`,
//! `seams_fresh`): they run with `harness = false`, because their process cases launch the
//! test binary as a worker and libtest would print on the stdout the protocol needs. Each case
//! runs on its own thread under a hang bound, so a hang is reported and the others still run.
//! Every panic is quiet (cases panic on purpose); a failing case prints its message.

use std::future::Future;
use std::panic::catch_unwind;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

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
///
/// Returns only once that thread has ended, its thread-locals destroyed: a `block_on` there
/// made an executor whose fds close only then, and a count of fds taken next must not see
/// them vanish midway. (A destructor that hung would be caught by the case's own bound.)
pub(crate) fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std_mpsc::channel();
    let thread = std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    let outcome = match rx.recv_timeout(HANG) {
        Ok(outcome) => outcome,
        Err(_) => panic!("hung: {what} did not finish within {HANG:?}"),
    };
    let _ = thread.join();
    match outcome {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Joins a case's thread, which has sent its verdict and is only ending (destroying its
/// thread-locals); fails after [`HANG`] instead of hanging if a destructor hangs.
fn join_ended(thread: std::thread::JoinHandle<()>) -> Result<(), String> {
    let end = Instant::now() + HANG;
    while !thread.is_finished() {
        if Instant::now() >= end {
            return Err(format!("its thread did not end within {HANG:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Its main has returned: what is left (thread-local destructors) cannot wait on us.
    let _ = thread.join();
    Ok(())
}

/// Waits (polling every millisecond) until `cond` holds; fails the case after [`HANG`].
#[allow(dead_code)] // not every target or feature cut waits for a condition
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < end, "hung: waited {HANG:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A waker that counts its wakes, as a foreign executor's would.
#[derive(Debug, Default)]
#[allow(dead_code)] // not every target polls by hand
pub(crate) struct CountingWaker {
    pub(crate) wakes: AtomicUsize,
}

#[allow(dead_code)] // not every target polls by hand
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

/// The text of a panic's payload.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Runs `cases` as the target's `main` does: each on its own thread under a hang bound,
/// filtered by the command line's substrings (`--ignored` runs the known bugs too); prints
/// `target: N passed, N failed, N ignored` last and exits with the verdict.
pub(crate) fn run_cases(target: &str, cases: Vec<Case>) -> ! {
    // Quiet panics: cases panic on purpose; a failing case's message is printed below.
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ignored_too = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for case in cases {
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
        // The next case starts once this one's thread has ended: its thread-locals (the
        // executor of a `block_on` on it, with its fds) are gone before another case counts.
        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(catch_unwind(run).map_err(|p| message(&*p)));
        });
        let outcome = match rx.recv_timeout(HANG * 3) {
            Ok(outcome) => join_ended(thread).and(outcome),
            Err(_) => Err(format!("hung for {:?}", HANG * 3)),
        };
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
    eprintln!("{target}: {passed} passed, {failed} failed, {ignored} ignored");
    // Hung threads of failed cases must not keep the process alive.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Polls `fut` once with `waker`.
#[allow(dead_code)] // not every target polls by hand
pub(crate) fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// A foreign executor: polls `fut` on the calling thread with a waker that unparks it and
/// counts its wakes; fails the case after [`HANG`].
#[allow(dead_code)] // not every target needs a foreign executor
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
