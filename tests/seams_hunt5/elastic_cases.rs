//! The elastic pool with async works sharing a worker (`max_works_per_worker` defaults to 300):
//! a plain closure beside them (more in `elastic_plain_cases`), a panic among them, scaling and
//! idling, resize, drain on a foreign executor, and a shutdown that gives up while they share a
//! thread with a closure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use aplex::sync::Event;
use aplex::{ElasticPool, Error, ShutdownOptions};

use super::{case, eventually, run_foreign, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "elastic_a_panic_among_async_works_sharing_a_worker",
            a_panic_among_async_works_sharing_a_worker,
        ),
        case(
            "elastic_shutdown_gives_up_on_async_works_sharing_a_stuck_closures_thread",
            shutdown_gives_up_on_async_works_sharing_a_stuck_closures_thread,
        ),
        case(
            "elastic_resize_and_join_while_async_works_share_a_worker",
            resize_and_join_while_async_works_share_a_worker,
        ),
        case(
            "elastic_drain_on_a_foreign_executor_while_shared_works_wait",
            drain_on_a_foreign_executor_while_shared_works_wait,
        ),
        case(
            "elastic_zero_idle_timeout_scales_to_zero_and_back",
            zero_idle_timeout_scales_to_zero_and_back,
        ),
        case(
            "elastic_extreme_sizes_build_or_refuse",
            extreme_sizes_build_or_refuse,
        ),
        case(
            "elastic_priorities_among_shared_async_works",
            priorities_among_shared_async_works,
        ),
        case(
            "elastic_cancel_one_of_the_async_works_sharing_a_worker",
            cancel_one_of_the_async_works_sharing_a_worker,
        ),
        case(
            "elastic_map_with_a_timeout_beside_shared_async_works",
            map_with_a_timeout_beside_shared_async_works,
        ),
    ]
}

/// Three async works share one worker; the middle one panics. The others still end with
/// their values, the panic is an outcome, and the counts add up.
fn a_panic_among_async_works_sharing_a_worker() {
    within("a panic among shared works", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                pool.try_spawn(move || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait().await;
                    assert!(i != 1, "work {i} panics on purpose");
                    i
                })
                .unwrap()
            })
            .collect();
        eventually("all three started on one worker", || {
            started.load(Ordering::SeqCst) == 3
        });
        assert_eq!(pool.stats().workers, 1);
        gate.set();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
        assert_eq!(outcomes[0], Ok(0));
        assert!(matches!(&outcomes[1], Err(Error::Panicked(m)) if m.contains("on purpose")));
        assert_eq!(outcomes[2], Ok(2));
        // The worker survived the panic: it still runs works.
        assert_eq!(pool.try_submit(|| 5).unwrap().wait(), Ok(5));
        eventually("the pool counted four works", || {
            pool.stats().completed == 4
        });
    });
}

/// One worker runs two async works that wait forever and a plain closure held by the test.
/// A shutdown with a total timeout gives up; once the closure is let go, the async works are
/// dropped (`Cancelled`) and the closure's value arrives: no handle waits forever.
fn shutdown_gives_up_on_async_works_sharing_a_stuck_closures_thread() {
    within("a shutdown giving up", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let (started, dropped) = (Arc::clone(&started), Arc::clone(&dropped));
                pool.try_spawn(move || async move {
                    let _count = super::DropCount(dropped);
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<u8>().await
                })
                .unwrap()
            })
            .collect();
        eventually("both async works started", || {
            started.load(Ordering::SeqCst) == 2
        });
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let closure = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
                "closure"
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let report = pool.shutdown(ShutdownOptions {
            total_timeout: Some(Duration::from_millis(50)),
            ..ShutdownOptions::default()
        });
        assert!(report.timed_out, "{report:?}");
        assert_eq!(
            report.completed + report.cancelled + report.unfinished,
            3,
            "{report:?}"
        );
        release.send(()).unwrap();
        assert_eq!(closure.wait(), Ok("closure"));
        for h in waiting {
            assert_eq!(h.wait(), Err(Error::Cancelled));
        }
        eventually("both async futures dropped", || {
            dropped.load(Ordering::SeqCst) == 2
        });
        drop(pool);
    });
}

/// Ten async works share the first worker while the pool is resized down to one worker and
/// up again; every work ends with its value and `join` counts all of them.
fn resize_and_join_while_async_works_share_a_worker() {
    within("resize with shared works", || {
        let pool = ElasticPool::builder()
            .min_workers(1)
            .max_workers(4)
            .build()
            .unwrap();
        let gate = Arc::new(Event::new());
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                pool.try_spawn(move || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait().await;
                    i
                })
                .unwrap()
            })
            .collect();
        eventually("all ten started", || started.load(Ordering::SeqCst) == 10);
        pool.resize(0, 1).unwrap();
        pool.resize(2, 3).unwrap();
        gate.set();
        let values: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        assert_eq!(values, (0..10).collect::<Vec<_>>());
        let counts = pool.join();
        let total: usize = counts.iter().map(|c| *c.as_ref().unwrap()).sum();
        assert_eq!(total, 10, "{counts:?}");
    });
}

/// `drain` awaited by a foreign executor while shared async works wait on a gate that another
/// thread opens: the drain ends, woken, with nothing left running.
fn drain_on_a_foreign_executor_while_shared_works_wait() {
    within("drain on a foreign executor", || {
        let pool = ElasticPool::builder().workers(2).build().unwrap();
        let gate = Arc::new(Event::new());
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                pool.try_spawn(move || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait().await;
                })
                .unwrap()
            })
            .collect();
        eventually("all twenty started", || {
            started.load(Ordering::SeqCst) == 20
        });
        let opener = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.set())
        };
        run_foreign(pool.drain());
        opener.join().unwrap();
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.running), (0, 0), "{stats:?}");
        assert!(handles.iter().all(aplex::Handle::is_finished));
    });
}

/// `idle_timeout(0)`, `min_workers(0)`: workers leave as soon as they idle (none waits on
/// shared async works that are still running), and a later submit grows the pool again.
fn zero_idle_timeout_scales_to_zero_and_back() {
    within("scale to zero and back", || {
        let pool = ElasticPool::builder()
            .min_workers(0)
            .max_workers(2)
            .idle_timeout(Duration::ZERO)
            .build()
            .unwrap();
        let gate = Arc::new(Event::new());
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let gate = Arc::clone(&gate);
                pool.try_spawn(move || async move {
                    gate.wait().await;
                    i
                })
                .unwrap()
            })
            .collect();
        gate.set();
        let sum: usize = handles.into_iter().map(|h| h.wait().unwrap()).sum();
        assert_eq!(sum, 10);
        eventually("every worker left", || pool.stats().workers == 0);
        assert_eq!(pool.try_submit(|| 3).unwrap().wait(), Ok(3));
        let again = pool
            .try_spawn(|| async {
                aplex::time::sleep(Duration::from_millis(1)).await;
                4
            })
            .unwrap();
        assert_eq!(again.wait(), Ok(4));
    });
}

/// The numbers a user gives, at their extremes: zeros are refused by `build`, maxima mean
/// "unbounded" or "never" and still run works.
fn extreme_sizes_build_or_refuse() {
    within("extreme sizes", || {
        for refused in [
            ElasticPool::builder().max_workers(0).build(),
            ElasticPool::builder().max_works_per_worker(0).build(),
            ElasticPool::builder().queue_capacity(0).build(),
            ElasticPool::builder().min_workers(3).max_workers(2).build(),
        ] {
            assert_eq!(
                refused.unwrap_err().kind(),
                std::io::ErrorKind::InvalidInput
            );
        }
        let pool = ElasticPool::builder()
            .min_workers(1)
            .max_workers(usize::MAX)
            .max_works_per_worker(usize::MAX)
            .queue_capacity(usize::MAX)
            .idle_timeout(Duration::MAX)
            .build()
            .unwrap();
        assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
        let h = pool.try_spawn(|| async { 2 }).unwrap();
        assert_eq!(h.wait(), Ok(2));
        assert!(aplex::block_on(pool.wait_for_slot(Duration::MAX)));
        assert!(aplex::block_on(pool.wait_for_slot(Duration::ZERO)));
        pool.resize(0, usize::MAX).unwrap();
        let report = pool.shutdown(ShutdownOptions {
            cancel_pending: false,
            idle_timeout: Some(Duration::MAX),
            total_timeout: Some(Duration::MAX),
        });
        assert!(!report.timed_out, "{report:?}");
        // After the shutdown: typed errors, never a panic.
        assert!(matches!(
            pool.try_submit(|| 1),
            Err(Error::ShutDown) | Ok(_)
        ));
    });
}

/// One worker with async works waiting; works of mixed priorities queue behind a held plain
/// closure. Once it ends, the higher priority starts first, and every work ends once.
fn priorities_among_shared_async_works() {
    within("priorities with shared works", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let sharing = pool
            .try_spawn(move || async move {
                g.wait().await;
                "shared"
            })
            .unwrap();
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let closure = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for p in [0, 5, -3, 9] {
            let order = Arc::clone(&order);
            handles.push(
                pool.priority(p)
                    .try_spawn(move || async move {
                        order.lock().unwrap().push(p);
                        p
                    })
                    .unwrap(),
            );
        }
        release.send(()).unwrap();
        closure.wait().unwrap();
        gate.set();
        assert_eq!(sharing.wait(), Ok("shared"));
        let got: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        assert_eq!(got, [0, 5, -3, 9]);
        assert_eq!(*order.lock().unwrap(), [9, 5, 0, -3]);
    });
}

/// Three async works share one worker; the middle one is cancelled while it waits. When its
/// handle reports `Cancelled` its future is already dropped; the other two are untouched.
fn cancel_one_of_the_async_works_sharing_a_worker() {
    within("cancel a shared work", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let started = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (gate, started, dropped) = (
                    Arc::clone(&gate),
                    Arc::clone(&started),
                    Arc::clone(&dropped),
                );
                pool.try_spawn(move || async move {
                    let _count = super::DropCount(dropped);
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait().await;
                    i
                })
                .unwrap()
            })
            .collect();
        eventually("all three started", || started.load(Ordering::SeqCst) == 3);
        let mut handles = handles.into_iter();
        let (first, middle, last) = (
            handles.next().unwrap(),
            handles.next().unwrap(),
            handles.next().unwrap(),
        );
        assert!(middle.cancel());
        assert!(middle.cancel(), "asked again, the same answer");
        assert_eq!(middle.wait(), Err(Error::Cancelled));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "dropped before the outcome"
        );
        gate.set();
        assert_eq!(first.wait(), Ok(0));
        assert_eq!(last.wait(), Ok(2));
    });
}

/// A map with a timeout over an elastic pool whose one worker also runs waiting async
/// works: every item ends once, in order, with its value or `TimedOut`.
fn map_with_a_timeout_beside_shared_async_works() {
    within("a map beside shared works", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let waiting = pool
            .try_spawn(move || async move {
                g.wait().await;
            })
            .unwrap();
        let outcomes: Vec<_> = pool
            .map(|x: u32| x * 2, 0..20)
            .timeout(Duration::from_secs(30))
            .collect();
        gate.set();
        assert_eq!(outcomes.len(), 20);
        for (i, o) in outcomes.iter().enumerate() {
            assert!(
                matches!(o, Ok(v) if *v == 2 * i as u32) || *o == Err(Error::TimedOut),
                "{i}: {o:?}"
            );
        }
        waiting.wait().unwrap();
    });
}
