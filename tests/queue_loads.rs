//! A work cancelled while it waits in a queue leaves the pool's loads at once — with a queue per
//! worker and with a shared queue — not when a worker gets round to popping it. Decided by gates:
//! a plain work that waits on its gate holds its worker, so the works queued behind it stay
//! queued until the test opens the gate.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use aplex::balance::{Balancer, LeastLoaded, Load};
use aplex::sync::Event;
use aplex::{Error, Handle, ThreadPool};

/// A hang catcher: far longer than any of these steps takes on a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

const RACE_ROUNDS: usize = if cfg!(miri) { 2 } else { 50 };

/// Waits for a handle, failing the test (instead of hanging) if it does not finish in time.
fn finish<T>(mut h: Handle<T>, what: &str) -> Result<T, Error> {
    let outcome = h.wait_timeout(BOUND);
    assert!(
        !matches!(outcome, Err(Error::TimedOut)),
        "{what} never finished"
    );
    outcome
}

/// Holds worker threads: each gated work says it started, then waits for the one gate.
struct Gate {
    open: Arc<Event>,
    started_tx: mpsc::Sender<()>,
    started: mpsc::Receiver<()>,
}

impl Gate {
    fn new() -> Gate {
        let (started_tx, started) = mpsc::channel();
        Gate {
            open: Arc::new(Event::new()),
            started_tx,
            started,
        }
    }

    /// A plain work that holds its worker until the gate opens.
    fn work(&self) -> impl FnOnce() + Send + 'static {
        let (open, started) = (Arc::clone(&self.open), self.started_tx.clone());
        move || {
            started.send(()).unwrap();
            assert!(open.wait_timeout(BOUND), "a gate was never opened");
        }
    }

    /// Waits until `n` gated works have started.
    fn started(&self, n: usize) {
        for _ in 0..n {
            self.started
                .recv_timeout(BOUND)
                .expect("a gated work never started");
        }
    }

    fn open(&self) {
        self.open.set();
    }
}

fn queued(pool: &ThreadPool) -> Vec<usize> {
    pool.detailed_loads().iter().map(|l| l.queued).collect()
}

/// Works `0..n` queued behind a gated work on a one-worker pool, half plain and half async.
fn queue_behind(pool: &ThreadPool, n: usize) -> Vec<Handle<usize>> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                pool.submit(move || i)
            } else {
                pool.spawn(move || async move { i })
            }
        })
        .collect()
}

#[test]
fn cancel_queued_then_open_the_gate_per_worker_queue() {
    let pool = ThreadPool::builder()
        .workers(1)
        .max_works_per_worker(4)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = pool.submit(gate.work());
    gate.started(1);
    let handles = queue_behind(&pool, 10);
    assert_eq!(pool.loads(), [11]);
    assert_eq!(queued(&pool), [10]);
    for h in handles.iter().take(6) {
        assert!(h.cancel());
    }
    // Before the worker could pop any of them: the gate is still shut.
    assert_eq!(queued(&pool), [4]);
    assert_eq!(pool.loads(), [5]);
    // Asking again changes nothing.
    assert!(handles[0].cancel());
    assert_eq!(pool.loads(), [5]);
    gate.open();
    finish(held, "the gated work").unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        let expected = if i < 6 { Err(Error::Cancelled) } else { Ok(i) };
        assert_eq!(finish(h, "a queued work"), expected);
    }
    assert_eq!(pool.loads(), [0]);
    pool.shutdown();
    assert_eq!(pool.loads(), [0]);
}

#[test]
fn cancel_queued_then_open_the_gate_shared_queue() {
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(1)
        .shared_queue(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held: Vec<_> = (0..2).map(|_| pool.submit(gate.work())).collect();
    gate.started(2);
    let handles = queue_behind(&pool, 9);
    assert_eq!(pool.loads().iter().sum::<usize>(), 11);
    for h in handles.iter().skip(2) {
        assert!(h.cancel());
    }
    // Two queued works left, spread over the two workers.
    assert_eq!(queued(&pool), [1, 1]);
    assert_eq!(pool.loads(), [2, 2]);
    gate.open();
    for h in held {
        finish(h, "a gated work").unwrap();
    }
    for (i, h) in handles.into_iter().enumerate() {
        let expected = if i >= 2 { Err(Error::Cancelled) } else { Ok(i) };
        assert_eq!(finish(h, "a queued work"), expected);
    }
    assert_eq!(pool.loads(), [0, 0]);
    pool.shutdown();
    assert_eq!(pool.loads(), [0, 0]);
}

#[test]
fn drop_a_cancel_on_drop_handle_then_loads_drop() {
    let pool = ThreadPool::new(1);
    let gate = Gate::new();
    let held = pool.submit(gate.work());
    gate.started(1);
    let kept = pool.submit(|| 1);
    let dropped = pool.spawn(|| async { 2 }).cancel_on_drop();
    assert_eq!(pool.loads(), [3]);
    drop(dropped);
    assert_eq!(pool.loads(), [2]);
    gate.open();
    finish(held, "the gated work").unwrap();
    assert_eq!(finish(kept, "the kept work"), Ok(1));
    pool.shutdown();
    assert_eq!(pool.loads(), [0]);
}

/// A map dropped with items still waiting cancels them, and they leave the loads at once.
#[test]
fn drop_a_map_with_queued_items_then_loads_drop() {
    let pool = ThreadPool::new(1);
    let gate = Gate::new();
    let held = pool.submit(gate.work());
    gate.started(1);
    let mut map = pool.map(|x: u64| x + 1, 0..100);
    let mut cx = Context::from_waker(Waker::noop());
    // One poll submits the map's first window; its first item waits behind the gate.
    assert!(map.poll_next(&mut cx).is_pending());
    let submitted = queued(&pool)[0];
    assert!(submitted > 0, "the map submitted nothing");
    drop(map);
    assert_eq!(queued(&pool), [0]);
    assert_eq!(pool.loads(), [1]);
    gate.open();
    finish(held, "the gated work").unwrap();
    pool.shutdown();
    assert_eq!(pool.loads(), [0]);
}

/// Shows `LeastLoaded` the loads, and records them; a hint sends the work to that worker.
struct Recording {
    least: LeastLoaded,
    seen: Arc<Mutex<Vec<Vec<Load>>>>,
}

impl Balancer for Recording {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        self.seen.lock().unwrap().push(loads.to_vec());
        match hint {
            Some(worker) => worker as usize,
            None => self.least.pick(loads, None),
        }
    }
}

#[test]
fn least_loaded_picks_the_worker_whose_queue_was_cancelled() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(1)
        .balancer(Recording {
            least: LeastLoaded::new(),
            seen: Arc::clone(&seen),
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let held: Vec<_> = (0..2u64)
        .map(|w| pool.submit_with(w, gate.work()))
        .collect();
    gate.started(2);
    // Three waiting works on each worker.
    let on_0: Vec<_> = (0..3).map(|i| pool.submit_with(0, move || i)).collect();
    let on_1: Vec<_> = (0..3)
        .map(|i| pool.spawn_with(1, move || async move { i }))
        .collect();
    assert_eq!(queued(&pool), [3, 3]);
    for h in &on_0 {
        assert!(h.cancel());
    }
    assert_eq!(queued(&pool), [0, 3]);
    // The balancer sees worker 0 with nothing waiting, and picks it for both new works
    // (totals 1 + 0 and then 2 + 0, against worker 1's 1 + 3).
    let next: Vec<_> = (0..2).map(|i| pool.submit(move || 10 + i)).collect();
    assert_eq!(queued(&pool), [2, 3]);
    {
        let seen = seen.lock().unwrap();
        let shown = &seen[seen.len() - 2];
        assert_eq!(shown[0].queued, 0);
        assert_eq!(shown[1].queued, 3);
    }
    gate.open();
    for h in held {
        finish(h, "a gated work").unwrap();
    }
    for h in on_0 {
        assert_eq!(finish(h, "a cancelled work"), Err(Error::Cancelled));
    }
    for (i, h) in on_1.into_iter().enumerate() {
        assert_eq!(finish(h, "a work on worker 1"), Ok(i));
    }
    for (i, h) in next.into_iter().enumerate() {
        assert_eq!(finish(h, "a work on worker 0"), Ok(10 + i));
    }
    pool.shutdown();
    assert_eq!(pool.loads(), [0, 0]);
}

/// Cancels racing the workers that pop the same works: whoever comes first uncounts each one,
/// once. The loads never show more works than were submitted (a count that wrapped below zero
/// would), and come back to zero.
#[test]
fn cancels_racing_pops_keep_the_loads_exact() {
    for shared in [false, true] {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .max_works_per_worker(2)
                .shared_queue(shared)
                .build()
                .unwrap(),
        );
        for _ in 0..RACE_ROUNDS {
            let handles: Vec<_> = (0..64usize)
                .map(|i| {
                    if i % 2 == 0 {
                        pool.submit(move || i)
                    } else {
                        pool.spawn(move || async move {
                            aplex::yield_now().await;
                            i
                        })
                    }
                })
                .collect();
            let canceller = {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    let mut cancelled = vec![false; handles.len()];
                    for (i, h) in handles.iter().enumerate().rev() {
                        cancelled[i] = h.cancel();
                        let total: usize = pool.loads().iter().sum();
                        assert!(total <= 64, "loads wrapped: {:?}", pool.loads());
                    }
                    (handles, cancelled)
                })
            };
            let (handles, cancelled) = canceller.join().unwrap();
            for ((i, h), cancelled) in handles.into_iter().enumerate().zip(cancelled) {
                let outcome = finish(h, "a raced work");
                if cancelled {
                    assert_eq!(outcome, Err(Error::Cancelled));
                } else {
                    assert_eq!(outcome, Ok(i));
                }
            }
            assert_eq!(pool.loads(), [0, 0], "shared queue: {shared}");
        }
    }
}

#[test]
fn a_cancel_after_the_work_started_leaves_the_loads_alone() {
    let pool = ThreadPool::builder()
        .workers(1)
        .max_works_per_worker(2)
        .build()
        .unwrap();
    let gate = Arc::new(Event::new());
    let g = Arc::clone(&gate);
    let (started_tx, started) = mpsc::channel();
    let running = pool.spawn(move || async move {
        started_tx.send(()).unwrap();
        g.wait().await;
    });
    started.recv_timeout(BOUND).unwrap();
    assert_eq!(pool.loads(), [1]);
    assert!(running.cancel());
    assert_eq!(finish(running, "the running work"), Err(Error::Cancelled));
    assert_eq!(pool.loads(), [0]);
    assert!(matches!(
        pool.detailed_loads()[0],
        Load {
            running: 0,
            queued: 0,
            ..
        }
    ));
}
