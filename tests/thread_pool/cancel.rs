//! Dropped handles, and cancelling a work queued, running or finished.

use super::*;

/// Counts its drops; panics in its drop when `panics`.
struct DropProbe {
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("unobserved value's drop panics");
        }
    }
}

/// Works whose handles are dropped before they start run all the same (no one sees their
/// outcome); their values are dropped on the worker, their panics (in the work or in the value's
/// drop) are contained, and a handle dropped with `cancel_on_drop` still cancels its work.
#[test]
fn works_whose_handles_were_dropped_run_and_their_panics_are_contained() {
    expect_panics(&["unobserved work panics", "unobserved value's drop panics"]);
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let g = gate.clone();
    let mut held = pool.submit(move || g.wait()); // everything below queues behind it
    let (ran, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    const N: usize = 30;
    for i in 0..N {
        let (r, d) = (ran.clone(), drops.clone());
        drop(pool.submit(move || {
            r.fetch_add(1, Ordering::SeqCst);
            if i % 3 == 1 {
                panic!("unobserved work panics {i}");
            }
            DropProbe {
                drops: d,
                panics: i % 3 == 2,
            }
        }));
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let c = cancelled.clone();
    drop(
        pool.submit(move || c.store(true, Ordering::SeqCst))
            .cancel_on_drop(),
    );
    gate.open();
    assert_eq!(held.wait_timeout(BOUND), Ok(()));
    // One worker takes its queue in order: the works above ran before this one.
    assert_eq!(pool.submit(|| 7).wait_timeout(BOUND), Ok(7));
    assert_eq!(ran.load(Ordering::SeqCst), N);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2 * N / 3,
        "every value dropped once"
    );
    assert!(!cancelled.load(Ordering::SeqCst), "a cancelled work ran");
    eventually("the worker lets go of the works", || {
        pool.detailed_loads()[0].running == 0
    });
}

#[test]
fn cancel_a_queued_work_and_it_never_runs() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait());
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = pool.submit(move || r.store(true, Ordering::SeqCst));
    assert!(queued.cancel());
    assert!(queued.cancel(), "asking again reports the same outcome");
    gate.open();
    blocker.wait().unwrap();
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_a_running_async_work_and_it_stops_at_its_next_await() {
    let pool = ThreadPool::new(1);
    let (parked, go_on) = (Gate::default(), Gate::default());
    let after = Arc::new(AtomicBool::new(false));
    let (p, g, a) = (parked.clone(), go_on.clone(), after.clone());
    let h = pool.spawn(move || async move {
        g.passed_after_parking(&p).await;
        a.store(true, Ordering::SeqCst);
    });
    parked.wait();
    assert!(h.cancel());
    go_on.open(); // a work that was not stopped would now run past its await
    assert_eq!(h.wait(), Err(Error::Cancelled));
    // The handle says Cancelled only once the future is dropped: the store can no longer come.
    assert!(
        !after.load(Ordering::SeqCst),
        "the side effect after the await happened"
    );
    eventually("the worker lets go of the work", || {
        pool.detailed_loads()[0].running == 0
    });
}

#[test]
fn cancel_a_running_plain_closure_returns_false() {
    let pool = ThreadPool::new(1);
    let (started, finish) = (Gate::default(), Gate::default());
    let (s, f) = (started.clone(), finish.clone());
    let h = pool.submit(move || {
        s.open();
        f.wait();
        5
    });
    started.wait();
    assert!(!h.cancel(), "a running closure cannot be stopped");
    finish.open();
    assert_eq!(h.wait(), Ok(5));
}

#[test]
fn cancel_a_finished_work_returns_false() {
    let pool = ThreadPool::new(1);
    let mut h = pool.submit(|| 3);
    eventually("the work finishes", || h.is_finished());
    assert!(!h.cancel());
    assert_eq!(h.wait_timeout(BOUND), Ok(3));
}
