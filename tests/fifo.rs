//! A thread pool built with `shared_queue(true)` (and the global pool behind `in_thread`, which
//! is one) starts the works that find every worker busy first come, first served. Decided by
//! gates and channels: a work that waits on its gate holds its worker until the test opens it,
//! and each work says when it starts.
//!
//! Only `in_thread_serves_excess_calls_first_come_first_served` touches the global pool, which
//! is one per process: it configures it first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use aplex::balance::LeastLoaded;
use aplex::sync::Event;
use aplex::{Error, Handle, ThreadPool};

/// A hang catcher: far longer than any of these steps takes on a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

const ROUNDS: usize = if cfg!(miri) { 1 } else { 5 };
const RACE_ROUNDS: usize = if cfg!(miri) { 20 } else { 1_000 };

fn shared_pool(workers: usize, max_works: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .max_works_per_worker(max_works)
        .shared_queue(true)
        .build()
        .unwrap()
}

/// Waits for a handle, failing the test (instead of hanging) if it does not finish in time.
fn finish<T>(mut h: Handle<T>, what: &str) -> Result<T, Error> {
    let outcome = h.wait_timeout(BOUND);
    assert!(
        !matches!(outcome, Err(Error::TimedOut)),
        "{what} never finished"
    );
    outcome
}

/// Plain works that each say when they start, then hold their thread until their gate opens.
struct Gated {
    starts: Arc<Mutex<Vec<&'static str>>>,
    started_tx: mpsc::Sender<&'static str>,
    started: mpsc::Receiver<&'static str>,
    gates: HashMap<&'static str, mpsc::Sender<()>>,
}

impl Gated {
    fn new() -> Gated {
        let (started_tx, started) = mpsc::channel();
        Gated {
            starts: Arc::default(),
            started_tx,
            started,
            gates: HashMap::new(),
        }
    }

    /// The closure of work `name`, for any way of submitting it.
    fn work(&mut self, name: &'static str) -> impl FnOnce() -> &'static str + Send + 'static {
        let (open, gate) = mpsc::channel::<()>();
        self.gates.insert(name, open);
        let (starts, started_tx) = (Arc::clone(&self.starts), self.started_tx.clone());
        move || {
            starts.lock().unwrap().push(name);
            started_tx.send(name).unwrap();
            gate.recv_timeout(BOUND).expect("a gate was never opened");
            name
        }
    }

    /// Waits until the next work says it started; returns its name.
    fn next_start(&self) -> &'static str {
        self.started
            .recv_timeout(BOUND)
            .expect("no work started: a freed worker did not take the queue's oldest")
    }

    fn open(&self, name: &str) {
        self.gates[name].send(()).unwrap();
    }

    fn starts(&self) -> Vec<&'static str> {
        self.starts.lock().unwrap().clone()
    }
}

/// A and B hold both threads; C, D, E, F wait in that order. The threads are freed one at a
/// time, the later-submitted hold (B) first: each freed thread starts the queue's oldest, so
/// the starts are exactly C, D, E, F. (With a queue per worker, B's thread would start the
/// oldest of its own queue, D, before C.) `submit` is whatever submits a plain work.
fn excess_works_start_in_arrival_order(
    mut submit: impl FnMut(usize, Box<dyn FnOnce() -> &'static str + Send>) -> Handle<&'static str>,
) {
    let mut gated = Gated::new();
    let a = submit(0, Box::new(gated.work("A")));
    let b = submit(1, Box::new(gated.work("B")));
    let mut held = [gated.next_start(), gated.next_start()];
    held.sort_unstable();
    assert_eq!(held, ["A", "B"]);
    let waiting: Vec<_> = ["C", "D", "E", "F"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| submit(i + 2, Box::new(gated.work(name))))
        .collect();
    for (free, expected) in [("B", "C"), ("A", "D"), ("D", "E"), ("C", "F")] {
        gated.open(free);
        assert_eq!(gated.next_start(), expected, "freeing {free}");
    }
    gated.open("E");
    gated.open("F");
    assert_eq!(finish(a, "A"), Ok("A"));
    assert_eq!(finish(b, "B"), Ok("B"));
    for (h, name) in waiting.into_iter().zip(["C", "D", "E", "F"]) {
        assert_eq!(finish(h, name), Ok(name));
    }
    assert_eq!(gated.starts()[2..], ["C", "D", "E", "F"]);
}

#[test]
fn excess_plain_works_start_first_come_first_served() {
    for _ in 0..ROUNDS {
        let pool = shared_pool(2, 300);
        excess_works_start_in_arrival_order(|_, f| pool.submit(f));
    }
}

/// Hints mean nothing to a shared queue: hinted works wait in line with the others.
#[test]
fn hinted_works_keep_their_place_in_the_shared_queue() {
    for _ in 0..ROUNDS {
        let pool = shared_pool(2, 300);
        excess_works_start_in_arrival_order(|i, f| {
            if i % 2 == 1 {
                pool.submit_with(7, f)
            } else {
                pool.submit(f)
            }
        });
    }
}

#[cfg(feature = "helpers")]
#[test]
fn in_thread_serves_excess_calls_first_come_first_served() {
    use aplex::global::{self, GlobalConfig};
    let two = GlobalConfig {
        threads: Some(2),
        ..GlobalConfig::default()
    };
    global::configure(two).expect("no other test of this binary uses the global pool");
    for _ in 0..ROUNDS {
        excess_works_start_in_arrival_order(|_, f| aplex::in_thread(f));
    }
}

/// `shutdown_now` cancels every queued work at once, even while plain closures hold every
/// thread; the running closures finish.
#[test]
fn shutdown_now_cancels_everything_queued() {
    let pool = Arc::new(shared_pool(2, 300));
    let mut gated = Gated::new();
    let a = pool.submit(gated.work("A"));
    let b = pool.submit(gated.work("B"));
    gated.next_start();
    gated.next_start();
    let ran = Arc::new(AtomicUsize::new(0));
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.shutdown_now())
    };
    // Decided while A and B still hold both threads.
    for h in waiting {
        assert_eq!(finish(h, "a queued work"), Err(Error::Cancelled));
    }
    gated.open("A");
    gated.open("B");
    closer.join().unwrap();
    assert_eq!(finish(a, "A"), Ok("A"));
    assert_eq!(finish(b, "B"), Ok("B"));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
}

/// `shutdown_now` also cancels the running async works of a shared-queue pool.
#[test]
fn shutdown_now_cancels_running_async_works() {
    let pool = shared_pool(2, 4);
    let (started_tx, started) = mpsc::channel();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let started_tx = started_tx.clone();
            pool.spawn(move || async move {
                started_tx.send(()).unwrap();
                aplex::time::sleep(Duration::from_secs(600)).await;
            })
        })
        .collect();
    for _ in 0..8 {
        started.recv_timeout(BOUND).unwrap();
    }
    pool.shutdown_now();
    for h in handles {
        assert_eq!(finish(h, "a sleeping work"), Err(Error::Cancelled));
    }
}

/// A graceful shutdown finishes what waits in the shared queue.
#[test]
fn shutdown_finishes_everything_queued() {
    let pool = Arc::new(shared_pool(2, 300));
    let mut gated = Gated::new();
    let a = pool.submit(gated.work("A"));
    let b = pool.submit(gated.work("B"));
    gated.next_start();
    gated.next_start();
    let waiting: Vec<_> = (0..10u32).map(|i| pool.submit(move || i)).collect();
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.shutdown())
    };
    gated.open("A");
    gated.open("B");
    for (i, h) in (0..10u32).zip(waiting) {
        assert_eq!(finish(h, "a queued work"), Ok(i));
    }
    closer.join().unwrap();
    assert_eq!(finish(a, "A"), Ok("A"));
    assert_eq!(finish(b, "B"), Ok("B"));
}

/// Async works on a shared queue: up to `max_works_per_worker` run at once on each worker, the
/// oldest first; the rest wait in the queue and start as room frees up.
#[test]
fn async_works_fill_every_workers_room_then_wait_in_the_queue() {
    for _ in 0..ROUNDS {
        let pool = shared_pool(2, 3);
        let gate = Arc::new(Event::new());
        let (started_tx, started) = mpsc::channel();
        let handles: Vec<_> = (0..10usize)
            .map(|i| {
                let (gate, started_tx) = (Arc::clone(&gate), started_tx.clone());
                pool.spawn(move || async move {
                    started_tx.send(i).unwrap();
                    gate.wait().await;
                    i
                })
            })
            .collect();
        let mut first: Vec<usize> = (0..6)
            .map(|_| started.recv_timeout(BOUND).unwrap())
            .collect();
        first.sort_unstable();
        assert_eq!(first, (0..6).collect::<Vec<_>>());
        let loads = pool.detailed_loads();
        assert_eq!(loads.iter().map(|l| l.running).collect::<Vec<_>>(), [3, 3]);
        assert_eq!(loads.iter().map(|l| l.queued).collect::<Vec<_>>(), [2, 2]);
        gate.set();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(finish(h, "an async work"), Ok(i));
        }
        let mut rest: Vec<usize> = (0..4)
            .map(|_| started.recv_timeout(BOUND).unwrap())
            .collect();
        rest.sort_unstable();
        assert_eq!(rest, [6, 7, 8, 9]);
    }
}

/// The queued works belong to no worker: the loads spread them evenly (the first workers get
/// the remainder), and add up to every work the pool holds.
#[test]
fn loads_spread_the_queued_works_over_the_workers() {
    let pool = shared_pool(2, 300);
    assert_eq!(pool.loads(), [0, 0]);
    let mut gated = Gated::new();
    let a = pool.submit(gated.work("A"));
    let b = pool.submit(gated.work("B"));
    gated.next_start();
    gated.next_start();
    assert_eq!(pool.loads(), [1, 1]);
    let c = pool.submit(gated.work("C"));
    let d = pool.submit(gated.work("D"));
    let e = pool.submit(gated.work("E"));
    let loads = pool.detailed_loads();
    assert_eq!(loads.iter().map(|l| l.running).collect::<Vec<_>>(), [1, 1]);
    assert_eq!(loads.iter().map(|l| l.queued).collect::<Vec<_>>(), [2, 1]);
    assert!(loads.iter().all(|l| l.capacity == 300));
    assert_eq!(pool.loads(), [3, 2]);
    gated.open("A");
    assert_eq!(gated.next_start(), "C");
    assert_eq!(pool.loads().iter().sum::<usize>(), 4);
    for name in ["B", "C", "D", "E"] {
        gated.open(name);
    }
    for (h, name) in [a, b, c, d, e].into_iter().zip(["A", "B", "C", "D", "E"]) {
        assert_eq!(finish(h, name), Ok(name));
    }
    pool.shutdown();
    assert_eq!(pool.loads(), [0, 0]);
}

/// A push racing an idle worker on its way to sleep must wake it: one work at a time, each
/// waited for, with a bound that turns a lost wake-up into a failure instead of a hang. Both
/// with the spin window (a wake-up that lands while the worker spins) and without (one that
/// lands as it parks), plain and async, from one submitter and from two at once.
#[test]
fn a_push_racing_an_idle_worker_going_to_sleep_wakes_it() {
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .shared_queue(true)
                .spin(spin)
                .build()
                .unwrap(),
        );
        for i in 0..RACE_ROUNDS {
            assert_eq!(finish(pool.submit(move || i), "a plain work"), Ok(i));
            let h = pool.spawn(move || async move { i });
            assert_eq!(finish(h, "an async work"), Ok(i));
        }
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for i in 0..RACE_ROUNDS / 2 {
                        assert_eq!(finish(pool.submit(move || i), "a plain work"), Ok(i));
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
    }
}

#[test]
fn map_runs_on_a_shared_queue_in_input_order() {
    let pool = shared_pool(2, 300);
    let doubled: Vec<u64> = pool
        .map(|x: u64| x * 2, 0..1_000)
        .map(Result::unwrap)
        .collect();
    assert_eq!(doubled, (0..1_000).map(|x| x * 2).collect::<Vec<_>>());
    let chunked: Vec<u64> = pool
        .map(|x: u64| x + 1, 0..1_000)
        .chunk_size(64)
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunked, (1..=1_000).collect::<Vec<_>>());
}

#[test]
fn a_balancer_with_a_shared_queue_is_refused() {
    for refused in [
        ThreadPool::builder()
            .shared_queue(true)
            .balancer(LeastLoaded::new())
            .build(),
        ThreadPool::builder()
            .balancer(LeastLoaded::new())
            .shared_queue(true)
            .build(),
    ] {
        let err = refused.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("shared queue"), "{err}");
    }
    // Turned off again, the balancer is fine.
    let pool = ThreadPool::builder()
        .workers(1)
        .shared_queue(true)
        .balancer(LeastLoaded::new())
        .shared_queue(false)
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 5).wait(), Ok(5));
}

/// Async works pushed while every worker is idle spread over the workers: the first worker to
/// wake takes its share, not every work its room allows. Each round, 8 works on 2 workers with
/// room for 8 each record their thread, then wait until all 8 have started (so none ends and
/// frees room early); both threads must have run some. Fresh pools and a reused one.
#[test]
fn async_works_pushed_to_idle_workers_spread_over_them() {
    fn round(pool: &ThreadPool) {
        let all_started = Arc::new(Event::new());
        let started = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (all_started, started) = (Arc::clone(&all_started), Arc::clone(&started));
                let threads = Arc::clone(&threads);
                pool.spawn(move || async move {
                    threads.lock().unwrap().push(std::thread::current().id());
                    if started.fetch_add(1, Ordering::SeqCst) + 1 == 8 {
                        all_started.set();
                    }
                    all_started.wait().await;
                })
            })
            .collect();
        for h in handles {
            finish(h, "a spread work").unwrap();
        }
        let mut seen = threads.lock().unwrap().clone();
        seen.sort_unstable_by_key(|id| format!("{id:?}"));
        seen.dedup();
        assert_eq!(seen.len(), 2, "every work ran on one worker");
        assert_eq!(pool.loads(), [0, 0]);
    }
    for _ in 0..ROUNDS {
        round(&shared_pool(2, 8));
    }
    let pool = shared_pool(2, 8);
    for _ in 0..ROUNDS * 4 {
        round(&pool);
    }
}
