//! Cancel and shutdown-now on the thread pool, as sequences of events: `cancel()` is true exactly
//! when the outcome is `Cancelled` (however often it is asked), a cancelled running async work's
//! future is dropped before its handle reports it, and `shutdown_now` cancels every work that
//! has not started.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::sync::Semaphore;
use aplex::time::sleep;
use aplex::{Error, Handle, ThreadPool};

/// Repeats of each racy seam.
const ROUNDS: usize = if cfg!(miri) { 3 } else { 200 };

/// A one-shot gate a plain work waits on, bounded so that a broken test cannot hang forever.
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wait(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        while !self.0.load(Ordering::SeqCst) {
            assert!(Instant::now() < end, "a gate was never opened");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Sets its flag when dropped: tells whether a work's future is gone.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Submits a plain work that holds the worker until `gate` opens, and waits until it runs.
fn hold_worker(pool: &ThreadPool, gate: &Gate) -> Handle<()> {
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let h = pool.submit(move || {
        tx.send(()).unwrap();
        g.wait();
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the holding work started");
    h
}

#[test]
fn cancel_a_queued_work_twice_and_both_say_cancelled() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let blocker = hold_worker(&pool, &gate);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = pool.submit(move || r.store(true, Ordering::SeqCst));
    assert!(queued.cancel());
    assert!(queued.cancel(), "asking again reports the same outcome");
    assert!(queued.is_finished());
    gate.open();
    blocker.wait().unwrap();
    assert!(queued.cancel());
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    drop(pool);
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_a_finished_work_and_it_says_no_every_time() {
    let pool = ThreadPool::new(1);
    let mut h = pool.submit(|| 5);
    assert_eq!(h.wait_timeout(Duration::from_secs(20)), Ok(5));
    assert!(!h.cancel());
    assert!(!h.cancel());
}

#[test]
fn cancel_a_running_plain_work_says_no_and_it_finishes() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let h = pool.submit(move || {
        tx.send(()).unwrap();
        g.wait();
        7
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(!h.cancel());
    gate.open();
    assert!(!h.cancel() || h.is_finished());
    assert_eq!(h.wait(), Ok(7));
}

/// The future holds a semaphore permit; once the handle says `Cancelled`, the permit is back.
#[test]
fn cancel_a_running_async_work_then_its_future_is_gone_when_the_handle_says_so() {
    let pool = ThreadPool::new(1);
    let sem = Arc::new(Semaphore::new(1));
    for _ in 0..ROUNDS {
        let dropped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (s, d) = (sem.clone(), dropped.clone());
        let h = pool.spawn(move || async move {
            let _permit = s.acquire().await;
            let _flag = DropFlag(d);
            tx.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
        });
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(h.cancel());
        assert!(h.cancel(), "asking again reports the same outcome");
        assert_eq!(h.wait(), Err(Error::Cancelled));
        assert!(
            dropped.load(Ordering::SeqCst),
            "the future outlived the handle"
        );
        assert!(
            sem.try_acquire().is_some(),
            "the permit outlived the handle"
        );
    }
}

/// The cancel comes while the worker is stuck in a plain closure: `cancel()` returns at once,
/// and the handle reports `Cancelled` only after the worker got to drop the future.
#[test]
fn cancel_while_the_worker_is_busy_does_not_block_and_reports_after_the_drop() {
    let pool = ThreadPool::builder()
        .workers(1)
        .max_works_per_worker(4)
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let d = dropped.clone();
    let h = pool.spawn(move || async move {
        let _flag = DropFlag(d);
        tx.send(()).unwrap();
        sleep(Duration::from_secs(3600)).await;
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let gate = Gate::default();
    let blocker = hold_worker(&pool, &gate);
    assert!(h.cancel(), "cancel decides at once");
    assert!(!h.is_finished(), "the future still exists: no outcome yet");
    assert!(!dropped.load(Ordering::SeqCst));
    gate.open();
    blocker.wait().unwrap();
    assert_eq!(h.wait(), Err(Error::Cancelled));
    assert!(dropped.load(Ordering::SeqCst));
}

/// A cancel racing with the work's own end: the handle's outcome and `cancel()` agree.
#[test]
fn cancel_racing_completion_agrees_with_the_outcome() {
    let pool = ThreadPool::new(2);
    for i in 0..ROUNDS * 5 {
        let h = if i % 2 == 0 {
            pool.spawn(move || async move {
                aplex::yield_now().await;
                i
            })
        } else {
            pool.submit(move || i)
        };
        let said = h.cancel();
        match h.wait() {
            Err(Error::Cancelled) => assert!(said, "round {i}: cancelled but cancel said no"),
            Ok(v) => {
                assert_eq!(v, i);
                assert!(!said, "round {i}: cancel said yes but the work finished");
            }
            other => panic!("round {i}: unexpected outcome {other:?}"),
        }
    }
}

/// Dropping a handle made with `cancel_on_drop` cancels a running async work, and the work's
/// future is dropped.
#[test]
fn drop_a_cancel_on_drop_handle_then_the_future_is_dropped() {
    let pool = ThreadPool::new(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let d = dropped.clone();
    let h = pool
        .spawn(move || async move {
            let _flag = DropFlag(d);
            tx.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
        })
        .cancel_on_drop();
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
    drop(h);
    eventually("the future to be dropped", || {
        dropped.load(Ordering::SeqCst)
    });
}

/// One worker held by a gated work, 50 plain works queued behind it (taken into the worker's
/// batch or still in its queue): `shutdown_now` cancels all 50, and waits only for the held one.
#[test]
fn shutdown_now_cancels_every_work_that_has_not_started() {
    let pool = Arc::new(ThreadPool::new(1));
    let gate = Gate::default();
    let blocker = hold_worker(&pool, &gate);
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..50)
        .map(|_| {
            let r = ran.clone();
            pool.submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let p = pool.clone();
    let stopper = std::thread::spawn(move || p.shutdown_now());
    // Once a new work is refused at once, shutdown_now has begun. (A probe accepted before
    // that waits behind the held worker, and is cancelled too.)
    eventually("shutdown_now to begin", || pool.submit(|| ()).is_finished());
    gate.open();
    stopper.join().unwrap();
    assert_eq!(blocker.wait(), Ok(()), "the running work finished");
    for h in &queued {
        assert!(
            h.is_finished(),
            "shutdown_now returned before every handle resolved"
        );
        assert!(
            h.cancel(),
            "cancel() reports the outcome shutdown_now decided"
        );
    }
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a work that had not started ran"
    );
}

/// `shutdown_now` drops running async works' futures before their handles say `Cancelled`.
#[test]
fn shutdown_now_drops_running_futures_before_reporting() {
    let pool = ThreadPool::new(2);
    let mut flags = Vec::new();
    let mut handles = Vec::new();
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let dropped = Arc::new(AtomicBool::new(false));
        let (d, tx) = (dropped.clone(), tx.clone());
        handles.push(pool.spawn(move || async move {
            let _flag = DropFlag(d);
            tx.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
        }));
        flags.push(dropped);
    }
    for _ in 0..10 {
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    pool.shutdown_now();
    for (h, dropped) in handles.into_iter().zip(flags) {
        assert_eq!(h.wait(), Err(Error::Cancelled));
        assert!(dropped.load(Ordering::SeqCst));
    }
}
