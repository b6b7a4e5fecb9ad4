//! No worker idles while a work that has not started waits behind a busy worker — unless the
//! balancer pinned it there. Decided by gates and channels: a work that waits for a gate holds
//! its worker until the test opens it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::balance::{KeyAffinity, RoundRobin};
use aplex::sync::Event;
use aplex::{Handle, ThreadPool};

/// A hang catcher: far longer than any of these steps takes on a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

const ROUNDS: usize = if cfg!(miri) { 2 } else { 20 };

/// A gate that plain works wait on (bounded, so a broken test fails instead of hanging).
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wait(&self) {
        let end = Instant::now() + BOUND;
        while !self.0.load(Ordering::SeqCst) {
            assert!(Instant::now() < end, "a gate was never opened");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn thread_index() -> usize {
    let name = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    name.rsplit('-').next().unwrap().parse().unwrap()
}

fn round_robin_pool(max_works: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(max_works)
        .balancer(RoundRobin::new())
        .build()
        .unwrap()
}

/// Waits for a handle, failing the test (instead of hanging) if it does not finish in time.
fn finish<T>(mut h: Handle<T>, what: &str) -> T {
    match h.wait_timeout(BOUND) {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A holds worker 0, B is quick on worker 1, C is queued behind A, D on worker 1: C and D both
/// run while A still holds its worker.
#[test]
fn a_queued_plain_work_runs_on_the_idle_worker_while_the_first_is_held() {
    for _ in 0..ROUNDS {
        let pool = round_robin_pool(300);
        let gate = Gate::default();
        let (started_tx, started_rx) = mpsc::channel();
        let g = gate.clone();
        let a = pool.submit(move || {
            started_tx.send(thread_index()).unwrap();
            g.wait();
        });
        let held = started_rx.recv_timeout(BOUND).unwrap();
        let b = pool.submit(thread_index);
        let c = pool.submit(thread_index);
        let d = pool.submit(thread_index);
        let other = 1 - held;
        assert_eq!(finish(b, "B"), other);
        assert_eq!(finish(c, "C, queued behind the held worker"), other);
        assert_eq!(finish(d, "D"), other);
        assert!(!a.is_finished());
        let loads = pool.detailed_loads();
        assert_eq!(
            loads[held].queued, 0,
            "a stolen work left its queue: {loads:?}"
        );
        gate.open();
        finish(a, "A");
        drop(pool);
    }
}

/// The same with async works on workers that run one work at a time: A waits on an event and
/// fills worker 0; C, queued there, runs on worker 1.
#[test]
fn a_queued_async_work_runs_on_the_idle_worker_while_the_first_is_full() {
    for _ in 0..ROUNDS {
        let pool = round_robin_pool(1);
        let release = Arc::new(Event::new());
        let (started_tx, started_rx) = mpsc::channel();
        let r = release.clone();
        let a = pool.spawn(move || async move {
            started_tx.send(thread_index()).unwrap();
            r.wait().await;
        });
        let held = started_rx.recv_timeout(BOUND).unwrap();
        let b = pool.spawn(|| async { thread_index() });
        let c = pool.spawn(|| async { thread_index() });
        let d = pool.spawn(|| async { thread_index() });
        let other = 1 - held;
        assert_eq!(finish(b, "B"), other);
        assert_eq!(finish(c, "C, queued behind the full worker"), other);
        assert_eq!(finish(d, "D"), other);
        assert!(!a.is_finished());
        release.set();
        finish(a, "A");
    }
}

/// Many works queued behind a held worker all run on the free one, and the loads are exact
/// once they are done.
#[test]
fn a_long_queue_behind_a_held_worker_drains_on_the_other() {
    let pool = round_robin_pool(300);
    let gate = Gate::default();
    let (started_tx, started_rx) = mpsc::channel();
    let g = gate.clone();
    let a = pool.submit(move || {
        started_tx.send(thread_index()).unwrap();
        g.wait();
    });
    let held = started_rx.recv_timeout(BOUND).unwrap();
    let works: Vec<_> = (0..1000).map(|_| pool.submit(thread_index)).collect();
    for h in works {
        assert_eq!(finish(h, "a queued work"), 1 - held);
    }
    let loads = pool.detailed_loads();
    assert_eq!(loads[held].queued, 0, "{loads:?}");
    assert_eq!(loads[1 - held].queued, 0, "{loads:?}");
    assert_eq!(loads[1 - held].running, 0, "{loads:?}");
    gate.open();
    finish(a, "A");
}

/// Works pinned to a key stay on their key's worker, even while it is held and the other
/// worker is idle (it goes idle after running an unkeyed work, and looks for works to take).
#[test]
fn affinity_pinned_works_stay_on_their_worker() {
    for _ in 0..ROUNDS {
        let pool = ThreadPool::builder()
            .workers(2)
            .balancer(KeyAffinity::new())
            .build()
            .unwrap();
        const KEY: u64 = 77;
        let gate = Gate::default();
        let (started_tx, started_rx) = mpsc::channel();
        let g = gate.clone();
        let a = pool.submit_with(KEY, move || {
            started_tx.send(thread_index()).unwrap();
            g.wait();
        });
        let home = started_rx.recv_timeout(BOUND).unwrap();
        let pinned: Vec<_> = (0..10)
            .map(|_| pool.submit_with(KEY, thread_index))
            .collect();
        // Unkeyed works land on (or are taken by) the other worker, which then goes idle.
        for _ in 0..4 {
            finish(pool.submit(thread_index), "an unkeyed work");
        }
        assert!(
            pinned.iter().all(|h| !h.is_finished()),
            "a pinned work moved"
        );
        gate.open();
        finish(a, "A");
        for h in pinned {
            assert_eq!(finish(h, "a pinned work"), home);
        }
    }
}

/// `in_thread`: excess calls are served by whichever thread is free; none waits behind a call
/// that holds its thread.
#[test]
#[cfg(feature = "helpers")]
fn in_thread_serves_excess_calls_on_any_free_thread() {
    aplex::global::configure(aplex::global::GlobalConfig {
        threads: Some(2),
        ..Default::default()
    })
    .unwrap();
    let gate = Gate::default();
    let (started_tx, started_rx) = mpsc::channel();
    let g = gate.clone();
    let a = aplex::in_thread(move || {
        started_tx.send(()).unwrap();
        g.wait();
    });
    started_rx.recv_timeout(BOUND).unwrap();
    let (order_tx, order_rx) = mpsc::channel();
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let tx = order_tx.clone();
            aplex::in_thread(move || tx.send(i).unwrap())
        })
        .collect();
    for h in calls {
        finish(h, "an excess call");
    }
    let mut ran: Vec<i32> = order_rx.try_iter().collect();
    ran.sort_unstable();
    assert_eq!(ran, (0..20).collect::<Vec<_>>());
    assert!(
        !a.is_finished(),
        "every call ran while the first still held its thread"
    );
    gate.open();
    finish(a, "the holding call");
}

/// The case as a user writes it: A, B, C, D submitted back to back, before any has
/// started (A may share a batch with C on worker 0). C and D still run while A holds its
/// worker: works a worker took but has not started are handed to the idle one.
#[test]
fn works_submitted_back_to_back_run_beside_a_held_one() {
    for round in 0..ROUNDS * 5 {
        let pool = round_robin_pool(300);
        let gate = Gate::default();
        let g = gate.clone();
        let a = pool.submit(move || g.wait());
        let b = pool.submit(thread_index);
        let c = pool.submit(thread_index);
        let d = pool.submit(thread_index);
        let later: Vec<usize> = [b, c, d]
            .into_iter()
            .map(|h| finish(h, &format!("round {round}: a work behind the held one")))
            .collect();
        gate.open();
        finish(a, "the held work");
        assert_eq!(later.len(), 3);
    }
}

/// The same through a map: its first item holds a worker, and every other item runs on the
/// other worker meanwhile (counted before the gate opens), whatever batches the items came in.
#[test]
fn map_items_behind_a_held_item_run_on_the_idle_worker() {
    for round in 0..ROUNDS * 5 {
        let pool = round_robin_pool(300);
        let gate = Gate::default();
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (g, r) = (gate.clone(), ran.clone());
        let mut map = pool.map(
            move |i: usize| {
                if i == 0 {
                    g.wait();
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                }
                i
            },
            0..8usize,
        );
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let first = Iterator::next(&mut map);
            let _ = tx.send(());
            (first, map.collect::<Vec<_>>())
        });
        let end = Instant::now() + BOUND;
        while ran.load(Ordering::SeqCst) < 7 {
            assert!(
                Instant::now() < end,
                "round {round}: {} of 7 items ran beside the held one",
                ran.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            rx.try_recv().is_err(),
            "the held item was read before its gate opened"
        );
        gate.open();
        let (first, rest) = reader.join().unwrap();
        assert_eq!(first, Some(Ok(0)));
        assert_eq!(rest, (1..8).map(Ok).collect::<Vec<_>>());
    }
}

/// Puts each work on the worker its hint names (without pinning it there).
struct ByHint;

impl aplex::balance::Balancer for ByHint {
    fn pick(&mut self, _loads: &[aplex::balance::Load], hint: Option<u64>) -> usize {
        hint.unwrap_or(0) as usize
    }
}

fn by_hint_pool() -> Arc<ThreadPool> {
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(300)
        .balancer(ByHint)
        .build()
        .unwrap();
    Arc::new(pool)
}

/// Holds worker `i`'s thread inside an async work (its dispatcher cannot take from its queue
/// meanwhile, and the worker is not busy, so no other worker takes from it) until the returned
/// gate opens: what is queued for it meanwhile, it takes in one batch.
fn stall(pool: &ThreadPool, i: u64) -> (Gate, Handle<()>) {
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let h = pool.spawn_with(i, move || async move {
        tx.send(()).unwrap();
        g.wait();
    });
    rx.recv_timeout(BOUND).unwrap();
    (gate, h)
}

/// A plain work that sends once it runs, then holds its worker until the gate opens.
fn holder(started: mpsc::Sender<usize>, gate: Gate) -> impl FnOnce() + Send + 'static {
    move || {
        started.send(thread_index()).unwrap();
        gate.wait();
    }
}

/// Worker 0 takes A, B, C, D in one batch; A holds its thread: B, C and D, taken but not
/// started, still run on the idle worker meanwhile.
#[test]
fn works_batched_behind_a_held_closure_run_on_the_idle_worker() {
    for round in 0..ROUNDS {
        let pool = by_hint_pool();
        let (stalled, stall_h) = stall(&pool, 0);
        let (gate, (tx, rx)) = (Gate::default(), mpsc::channel());
        let a = pool.submit_with(0, holder(tx, gate.clone()));
        let rest: Vec<_> = (0..3).map(|_| pool.submit_with(0, thread_index)).collect();
        stalled.open();
        finish(stall_h, "the stalling work");
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), 0);
        for h in rest {
            let at = finish(
                h,
                &format!("round {round}: a work batched behind the held one"),
            );
            assert_eq!(at, 1, "round {round}");
        }
        gate.open();
        finish(a, "the held work");
    }
}

/// A batch of pinned works behind a held closure stays on its worker, though the other one
/// is idle.
#[test]
fn pinned_works_batched_behind_a_held_closure_stay() {
    const KEY: u64 = 5;
    for _ in 0..ROUNDS {
        let pool = ThreadPool::builder()
            .workers(2)
            .max_works_per_worker(300)
            .balancer(KeyAffinity::new())
            .build()
            .unwrap();
        let (stalled, stall_h) = stall(&pool, KEY);
        let (gate, (tx, rx)) = (Gate::default(), mpsc::channel());
        let a = pool.submit_with(KEY, holder(tx, gate.clone()));
        let pinned: Vec<_> = (0..5)
            .map(|_| pool.submit_with(KEY, thread_index))
            .collect();
        stalled.open();
        finish(stall_h, "the stalling work");
        let home = rx.recv_timeout(BOUND).unwrap();
        // Unkeyed works run on the other worker, which then goes idle and looks for works.
        for _ in 0..4 {
            finish(pool.submit(thread_index), "an unkeyed work");
        }
        assert!(
            pinned.iter().all(|h| !h.is_finished()),
            "a pinned work moved"
        );
        gate.open();
        finish(a, "A");
        for h in pinned {
            assert_eq!(finish(h, "a pinned work"), home);
        }
    }
}

/// Worker 1 is held, so nobody takes the works batched behind A on worker 0; one of them is
/// cancelled, then A shuts the pool down (`now`: the others are cancelled; else they run).
/// No count is taken twice.
fn shutdown_with_works_batched_behind_a_held_closure(now: bool) {
    let pool = by_hint_pool();
    let (held1, (tx1, rx1)) = (Gate::default(), mpsc::channel());
    let h1 = pool.submit_with(1, holder(tx1, held1.clone()));
    assert_eq!(rx1.recv_timeout(BOUND).unwrap(), 1);
    let (stalled, stall_h) = stall(&pool, 0);
    let (gate, (tx, rx)) = (Gate::default(), mpsc::channel());
    let (g, p) = (gate.clone(), pool.clone());
    let a = pool.submit_with(0, move || {
        tx.send(()).unwrap();
        g.wait();
        if now {
            p.shutdown_now();
        } else {
            p.shutdown();
        }
    });
    let mut rest: Vec<_> = (0..3).map(|_| pool.submit_with(0, thread_index)).collect();
    stalled.open();
    finish(stall_h, "the stalling work");
    rx.recv_timeout(BOUND).unwrap();
    assert_eq!(
        pool.detailed_loads()[0].queued,
        0,
        "{:?}",
        pool.detailed_loads()
    );
    assert!(rest[0].cancel());
    assert_eq!(
        pool.detailed_loads()[0].queued,
        0,
        "{:?}",
        pool.detailed_loads()
    );
    gate.open();
    finish(a, "A");
    let want = if now {
        Err(aplex::Error::Cancelled)
    } else {
        Ok(0)
    };
    for mut h in rest.drain(1..) {
        assert_eq!(h.wait_timeout(BOUND), want);
    }
    assert_eq!(rest[0].wait_timeout(BOUND), Err(aplex::Error::Cancelled));
    held1.open();
    finish(h1, "the work holding worker 1");
    assert!(
        pool.detailed_loads().iter().all(|l| l.queued == 0),
        "{:?}",
        pool.detailed_loads()
    );
}

#[test]
fn shutdown_now_cancels_works_batched_behind_a_held_closure() {
    shutdown_with_works_batched_behind_a_held_closure(true);
}

#[test]
fn graceful_shutdown_runs_works_batched_behind_a_held_closure() {
    shutdown_with_works_batched_behind_a_held_closure(false);
}
