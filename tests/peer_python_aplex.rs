//! Python aplex's own tests (lunluen/aplex: `tests/integration/test_inte_executors.py`,
//! `test_inte_futures.py`, `test_inte_loadbalancers.py`, `tests/unit/test_unit_futures.py`,
//! `test_unit_executors.py`, `test_unit_loadbalancers.py`, `test_unit_worker_managers.py`,
//! `test_unit_workers.py`, `tests/system/test_memory.py`), ported to aplex's `ThreadPool`.
//! Each test names the Python test it mirrors.
//!
//! Python parametrizes most of these over `ThreadAsyncPoolExecutor` and
//! `ProcessAsyncPoolExecutor`; this file ports the thread pool side (the process pool's test
//! binaries must run their own `main` as the worker, see `tests/process_pool.rs`). Python's
//! `sleep`s become gates (`aplex::sync::Event`), so no test depends on speed.
//!
//! Not ported, because aplex documents another behaviour: a `BaseException` in a work kills
//! Python's worker and cancels its works (`test_submit_work[BaseException]`,
//! `test_map_work_raise[BaseException]`, `test_base_exception_raised`); aplex catches a panic
//! as `Error::Panicked` and the worker lives on (`a_panic_does_not_end_the_worker` below).
//! Python's `submit`/`map` after shutdown raise `RuntimeError`; aplex's handles resolve
//! `Error::ShutDown` (`public_methods_after_shutdown` below). `test_protected`,
//! `test_submit_future_cancel_interface`, `test_submit_awaitable`, `test_shutdown_close_handler`
//! and `test_detect_broken` test Python internals (mocks, private fields); `test_loop_factory`'s
//! uvloop/Proactor loops have no Rust counterpart (its `worker_loop_factory` hook is
//! `on_worker_start`, tested); `test_inte_keyboardinterrupt.py` tests SIGINT handling.

mod peer_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use aplex::balance::{Balancer, LeastLoaded, Load, Random, RoundRobin};
use aplex::sync::Event;
use aplex::{Error, ThreadPool};

use peer_common::{quiet_panics, wait_for, EXPECTED, HANG};

const POOL_SIZE: usize = 2;
const MAX_WORKS_PER_WORKER: usize = 3;

fn pool(workers: usize, max_works: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .max_works_per_worker(max_works)
        .balancer(RoundRobin::new())
        .build()
        .unwrap()
}

/// A gate every gated work waits on, shared across threads. The test's own handle opens it
/// when dropped: a test that fails before opening it ends with its failure, instead of its
/// pool's drop waiting forever for the works held at the gate.
struct Gate(Arc<Event>);

impl Gate {
    /// The gate, for a work to wait on.
    fn share(&self) -> Arc<Event> {
        Arc::clone(&self.0)
    }

    fn set(&self) {
        self.0.set();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.0.set();
    }
}

fn gate() -> Gate {
    Gate(Arc::new(Event::new()))
}

#[test]
fn submit_work_value() {
    // Python: TestSubmit.test_submit_work[666-async_work], [666-sync_work]
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    assert_eq!(pool.submit(|| 666).wait(), Ok(666));
    assert_eq!(pool.spawn(|| async { 666 }).wait(), Ok(666));
}

#[test]
fn submit_work_error() {
    // Python: TestSubmit.test_submit_work[Exception('666')-…]: the exception comes back
    // with its message. A Rust work's error is its value; a panic is `Error::Panicked`.
    quiet_panics();
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    let failed: Result<(), String> = pool.submit(|| Err("666".to_string())).wait().unwrap();
    assert_eq!(failed, Err("666".to_string()));
    let sync_panic = pool.submit(|| -> u32 { panic!("{EXPECTED}: 666") }).wait();
    assert!(
        matches!(&sync_panic, Err(Error::Panicked(m)) if m.contains("666")),
        "{sync_panic:?}"
    );
    let async_panic = pool
        .spawn(|| async { panic!("{EXPECTED}: 666") as u32 })
        .wait();
    assert!(
        matches!(&async_panic, Err(Error::Panicked(m)) if m.contains("666")),
        "{async_panic:?}"
    );
}

#[test]
fn a_panic_does_not_end_the_worker() {
    // Python: test_base_exception_raised (Python's worker dies; aplex's lives on, as its
    // promises say): after a panic on each worker, every worker still runs works
    quiet_panics();
    let pool = pool(POOL_SIZE, 1);
    for _ in 0..POOL_SIZE {
        assert!(pool.submit(|| panic!("{EXPECTED}")).wait().is_err());
    }
    let names: Vec<_> = (0..10)
        .map(|i| pool.submit(move || i * 2))
        .map(|h| h.wait())
        .collect();
    assert_eq!(names, (0..10).map(|i| Ok(i * 2)).collect::<Vec<_>>());
}

#[test]
fn exceed_max_runnings() {
    // Python: TestSubmit.test_exceed_max_runnings: more works than the pool runs at once;
    // the extra ones wait (the last is not done), and all finish
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    let open = gate();
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2 * POOL_SIZE * MAX_WORKS_PER_WORKER + 1)
        .map(|_| {
            let open = open.share();
            let started = Arc::clone(&started);
            pool.spawn(move || async move {
                started.fetch_add(1, Ordering::SeqCst);
                open.wait().await;
            })
        })
        .collect();
    wait_for("the pool fills", || {
        started.load(Ordering::SeqCst) == POOL_SIZE * MAX_WORKS_PER_WORKER
    });
    assert!(!handles.last().unwrap().is_finished());
    for load in pool.detailed_loads() {
        assert!(load.running <= MAX_WORKS_PER_WORKER, "{load:?}");
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        POOL_SIZE * MAX_WORKS_PER_WORKER
    );
    open.set();
    for h in handles {
        assert_eq!(h.wait(), Ok(()));
    }
}

fn map_len() -> usize {
    2 * POOL_SIZE * MAX_WORKS_PER_WORKER + 1
}

#[test]
fn map_return_order_blocking() {
    // Python: TestMap.test_map_return_order[sync_map_work-False] (chunksize 2, iterated)
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    let target: Vec<_> = (0..map_len()).map(|i| Ok((i, i, i))).collect();
    let results: Vec<_> = pool
        .map(|i| (i, i, i), 0..map_len())
        .chunk_size(2)
        .collect();
    assert_eq!(results, target);
}

#[test]
fn map_return_order_async() {
    // Python: TestMap.test_map_return_order[…-True] (consumed with `async for`)
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    let mut map = pool.map(|i| (i, i, i), 0..map_len()).chunk_size(2);
    let results = aplex::block_on(async {
        let mut out = Vec::new();
        while let Some(r) = map.next().await {
            out.push(r);
        }
        out
    });
    assert_eq!(
        results,
        (0..map_len()).map(|i| Ok((i, i, i))).collect::<Vec<_>>()
    );
}

#[test]
fn map_work_raise() {
    // Python: TestMap.test_map_work_raise[Exception-…]: the failing item surfaces as an error
    // in its place (Python raises there; aplex yields `Err` and goes on)
    quiet_panics();
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    let n = POOL_SIZE * MAX_WORKS_PER_WORKER;
    let results: Vec<_> = pool
        .map(
            |i: usize| {
                if i == MAX_WORKS_PER_WORKER {
                    panic!("{EXPECTED}: item {i}");
                }
                i
            },
            0..n,
        )
        .chunk_size(1)
        .collect();
    for (i, r) in results.iter().enumerate() {
        if i == MAX_WORKS_PER_WORKER {
            assert!(matches!(r, Err(Error::Panicked(_))), "{r:?}");
        } else {
            assert_eq!(r, &Ok(i));
        }
    }
}

#[test]
fn map_empty_iterable() {
    // Python: TestMap.test_empty_iterable
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    assert_eq!(pool.map(|x: u8| x, Vec::new()).count(), 0);
}

#[test]
fn cancel_running_async_work() {
    // Python: TestCancel.test_cancel_running[async_long_work]: cancel reaches a running
    // async work
    let pool = pool(1, MAX_WORKS_PER_WORKER);
    let (started_tx, started_rx) = mpsc::channel();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let guard = CountDrop(Arc::clone(&dropped));
    let handle = pool.spawn(move || async move {
        let _guard = guard;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    started_rx.recv_timeout(HANG).unwrap();
    assert!(!handle.is_finished());
    assert!(handle.cancel());
    assert!(handle.cancel(), "asking again gives the same answer");
    // `cancel` never blocks; the handle's outcome comes once the worker dropped the future.
    assert_eq!(handle.wait(), Err(Error::Cancelled));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the future was dropped by then"
    );
}

#[test]
fn cancel_running_sync_work() {
    // Python: TestCancel.test_cancel_running[sync_long_work]: a running plain function
    // cannot be cancelled, and finishes
    let pool = pool(1, MAX_WORKS_PER_WORKER);
    let (started_tx, started_rx) = mpsc::channel();
    let open = gate();
    let gate_for_work = open.share();
    let handle = pool.submit(move || {
        started_tx.send(()).unwrap();
        gate_for_work.wait_blocking();
        "done"
    });
    started_rx.recv_timeout(HANG).unwrap();
    assert!(!handle.is_finished());
    assert!(!handle.cancel());
    open.set();
    assert_eq!(handle.wait(), Ok("done"));
}

#[test]
fn cancel_pending() {
    // Python: TestCancel.test_cancel_pending: a work that has not started is cancelled
    let pool = pool(1, 1);
    let open = gate();
    let blocker = {
        let open = open.share();
        pool.submit(move || open.wait_blocking())
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let queued = {
        let ran = Arc::clone(&ran);
        pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
    };
    assert!(queued.cancel());
    open.set();
    assert_eq!(blocker.wait(), Ok(()));
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled work never runs");
}

#[test]
fn cancel_cancelled() {
    // Python: TestCancel.test_cancel_cancelled (the concurrent.futures flavour: a second
    // cancel also returns true)
    let pool = pool(1, 1);
    let open = gate();
    let blocker = {
        let open = open.share();
        pool.submit(move || open.wait_blocking())
    };
    let queued = pool.submit(|| ());
    assert!(queued.cancel());
    assert!(queued.cancel());
    open.set();
    blocker.wait().unwrap();
    assert_eq!(queued.wait(), Err(Error::Cancelled));
}

#[test]
fn cancel_finished() {
    // Python: TestCancel.test_cancel_finished: a finished work is not cancelled
    let pool = pool(1, 1);
    let mut handle = pool.submit(|| 7);
    wait_for("the work finishes", || handle.is_finished());
    assert!(!handle.cancel());
    assert_eq!(handle.wait_timeout(HANG), Ok(7));
}

#[test]
fn public_methods_after_shutdown() {
    // Python: TestShutdown.test_public_methods_after_shutdown (Python raises RuntimeError;
    // aplex's handles resolve `ShutDown`, as its contract says)
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    pool.shutdown();
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
    assert_eq!(pool.spawn(|| async { 1 }).wait(), Err(Error::ShutDown));
    for r in pool.map(|x: u8| x, [1, 2]) {
        assert_eq!(r, Err(Error::ShutDown));
    }
    pool.shutdown(); // a second shutdown is harmless
}

#[test]
fn close_cancels_running_async_works() {
    // Python: test_receive_command[CLOSE]: closing the worker cancels its running async work
    let pool = pool(1, MAX_WORKS_PER_WORKER);
    let (started_tx, started_rx) = mpsc::channel();
    let handle = pool.spawn(move || async move {
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    started_rx.recv_timeout(HANG).unwrap();
    pool.shutdown_now();
    assert_eq!(handle.wait(), Err(Error::Cancelled));
}

/// Round robin that records where it put each work.
struct RecordedRoundRobin {
    round_robin: RoundRobin,
    picks: Arc<Mutex<Vec<usize>>>,
}

impl Balancer for RecordedRoundRobin {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        let pick = self.round_robin.pick(loads, hint);
        self.picks.lock().unwrap().push(pick);
        pick
    }
}

#[test]
fn find_available_worker() {
    // Python: test_inte_loadbalancers.test_find_available_worker: with every worker but the
    // last full, the next work goes to the last one, whatever the round-robin turn
    // Where the balancer put each work is read from its picks, not from the loads: a worker
    // taking a work from its queue has it counted nowhere until the work starts, and an idle
    // worker would take a work left behind a full one anyway.
    const WORKERS: usize = 3;
    const MAX: usize = 5;
    let picks = Arc::new(Mutex::new(Vec::new()));
    let pool = ThreadPool::builder()
        .workers(WORKERS)
        .max_works_per_worker(MAX)
        .balancer(RecordedRoundRobin {
            round_robin: RoundRobin::new(),
            picks: Arc::clone(&picks),
        })
        .build()
        .unwrap();
    let open = gate();
    let started = Arc::new(AtomicUsize::new(0));
    let mut heavy = Vec::new();
    let mut light = Vec::new();
    for i in 0..WORKERS * MAX {
        if (i + 1) % WORKERS == 0 {
            light.push(pool.spawn(|| async {}));
        } else {
            let (open, started) = (open.share(), Arc::clone(&started));
            heavy.push(pool.spawn(move || async move {
                started.fetch_add(1, Ordering::SeqCst);
                open.wait().await
            }));
        }
    }
    for h in light {
        h.wait().unwrap();
    }
    let turns: Vec<usize> = (0..WORKERS * MAX).map(|i| i % WORKERS).collect();
    assert_eq!(
        *picks.lock().unwrap(),
        turns,
        "round robin while all have room"
    );
    wait_for("the heavy works run and the light ones left", || {
        started.load(Ordering::SeqCst) == 10 && pool.loads() == [MAX, MAX, 0]
    });
    let open_for_last = open.share();
    heavy.push(pool.spawn(move || async move { open_for_last.wait().await }));
    // The turn is worker 0's, which is full: the work goes to the one with room.
    assert_eq!(picks.lock().unwrap().last(), Some(&2));
    wait_for("the last work runs on the last worker", || {
        pool.loads() == [MAX, MAX, 1]
    });
    open.set();
    for h in heavy {
        h.wait().unwrap();
    }
}

#[test]
fn get_proper_worker() {
    // Python: test_unit_loadbalancers.test_get_proper_worker: loads (7, 3, 7, 2, 7) of 7
    let loads: Vec<Load> = [7, 3, 7, 2, 7]
        .iter()
        .map(|&running| Load {
            running,
            queued: 0,
            capacity: 7,
        })
        .collect();
    assert_eq!(RoundRobin::new().pick(&loads, None), 1);
    assert_eq!(LeastLoaded::new().pick(&loads, None), 3);
    let mut random = Random::with_seed(7);
    for _ in 0..100 {
        let pick = random.pick(&loads, None);
        assert!(loads[pick].has_room(), "picked full worker {pick}");
    }
}

#[test]
fn calculate_loadings() {
    // Python: test_unit_worker_managers.test_calculate_loadings: 5 works on 2 workers of 3,
    // round robin: loads 3 and 2, then 0 and 0
    // Read once all five run: a worker taking a work from its queue has it counted nowhere
    // until the work starts.
    let pool = pool(POOL_SIZE, MAX_WORKS_PER_WORKER);
    assert_eq!(pool.loads(), [0, 0]);
    let open = gate();
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let (open, started) = (open.share(), Arc::clone(&started));
            pool.spawn(move || async move {
                started.fetch_add(1, Ordering::SeqCst);
                open.wait().await
            })
        })
        .collect();
    wait_for("all five run", || started.load(Ordering::SeqCst) == 5);
    assert_eq!(pool.loads(), [3, 2]);
    open.set();
    for h in handles {
        h.wait().unwrap();
    }
    wait_for("the loads drop", || pool.loads() == [0, 0]);
}

#[test]
fn worker_loop_factory() {
    // Python: test_loop_factory (aplex's `worker_loop_factory` is `on_worker_start`): each
    // worker runs it once, and lives on
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = {
        let seen = Arc::clone(&seen);
        ThreadPool::builder()
            .workers(3)
            .on_worker_start(move |i| seen.lock().unwrap().push(i))
            .build()
            .unwrap()
    };
    let mut started = seen.lock().unwrap().clone();
    started.sort_unstable();
    assert_eq!(started, [0, 1, 2]);
    assert_eq!(pool.submit(|| 1).wait(), Ok(1));
}

#[test]
fn tasks_collected() {
    // Python: test_memory.test_tasks_collected: after 100 works, nothing of them is left on
    // the worker (each future held a clone of the Arc)
    let pool = pool(1, 128);
    let held = Arc::new(());
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let held = Arc::clone(&held);
            pool.spawn(move || async move {
                aplex::time::sleep(Duration::from_millis(1)).await;
                drop(held);
            })
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    assert_eq!(Arc::strong_count(&held), 1);
    assert_eq!(pool.submit(aplex::time::pending_timers).wait(), Ok(0));
}
