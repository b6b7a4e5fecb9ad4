//! The elastic pool's life at its seams: a pool dropped inside its own work, shutdowns polled
//! once and dropped, submitters waiting for room when the pool shuts down, room futures
//! dropped, wakers that panic in `drain` and `closed`, and start hooks that always panic.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use aplex::sync::Event;
use aplex::{ElasticPool, Error, ShutdownOptions};

use super::{case, eventually, run_foreign, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "elastic_workers_that_cannot_make_their_reactor_leave_no_count_behind",
            workers_that_cannot_make_their_reactor_leave_no_count_behind,
        ),
        case(
            "elastic_pool_dropped_inside_its_own_work",
            pool_dropped_inside_its_own_work,
        ),
        case(
            "elastic_shutdown_async_dropped_after_one_poll_then_shutdown",
            shutdown_async_dropped_after_one_poll_then_shutdown,
        ),
        case(
            "elastic_room_waiters_released_by_a_shutdown",
            room_waiters_released_by_a_shutdown,
        ),
        case(
            "elastic_drain_and_closed_with_a_waker_that_panics",
            drain_and_closed_with_a_waker_that_panics,
        ),
        case(
            "elastic_room_futures_dropped_after_one_poll_leak_no_room",
            room_futures_dropped_after_one_poll_leak_no_room,
        ),
        case(
            "elastic_scaled_workers_whose_start_hook_panics",
            scaled_workers_whose_start_hook_panics,
        ),
    ]
}

/// The last owner of an elastic pool is a work of that pool: its drop (a shutdown from one of
/// its own works) must not wait for itself, and every work queued behind still ends.
fn pool_dropped_inside_its_own_work() {
    within("an elastic pool dropped in its own work", || {
        let pool = Arc::new(ElasticPool::builder().workers(1).build().unwrap());
        let gate = Arc::new(Event::new());
        let (p, g) = (Arc::clone(&pool), Arc::clone(&gate));
        let dropper = pool
            .try_spawn(move || async move {
                g.wait().await;
                drop(p); // the last owner, by then
                "dropped"
            })
            .unwrap();
        let queued: Vec<_> = (0..5)
            .map(|i| pool.try_submit(move || i).unwrap())
            .collect();
        drop(pool);
        gate.set();
        assert_eq!(dropper.wait(), Ok("dropped"));
        let values: Vec<_> = queued.into_iter().map(aplex::Handle::wait).collect();
        assert!(
            values
                .iter()
                .all(|v| matches!(v, Ok(_) | Err(Error::ShutDown))),
            "{values:?}"
        );
    });
}

/// `shutdown_async` polled once on a foreign waker, dropped, then a blocking shutdown: the
/// report still counts every work once, and `closed` resolves on a foreign executor.
fn shutdown_async_dropped_after_one_poll_then_shutdown() {
    within("an elastic shutdown_async dropped", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let running = pool
            .try_spawn(move || async move {
                g.wait().await;
                1
            })
            .unwrap();
        {
            let (_counter, waker) = super::CountingWaker::new();
            let mut stop = std::pin::pin!(pool.shutdown_async(ShutdownOptions::default()));
            assert!(super::poll_with(stop.as_mut(), &waker).is_pending());
        }
        // Opened before any assertion, so that a failing one does not hang the pool's drop.
        gate.set();
        let late = pool.try_submit(|| 2).map(aplex::Handle::wait);
        assert!(
            matches!(late, Err(Error::ShutDown) | Ok(Err(Error::ShutDown))),
            "{late:?}"
        );
        let report = pool.shutdown(ShutdownOptions::default());
        assert!(!report.timed_out, "{report:?}");
        assert_eq!(running.wait(), Ok(1));
        run_foreign(pool.closed());
        let again = pool.shutdown(ShutdownOptions::default());
        assert_eq!(again.unfinished, 0, "{again:?}");
    });
}

/// A full queue (capacity 1, its one worker held by a closure): `wait_for_slot` on a foreign
/// executor and `submit_blocking` on another thread both wait. A shutdown from a third
/// thread must release them: the blocked submit gets `ShutDown` (as an error or a handle that
/// resolves so), the slot watcher returns, and the queued work still ends once.
fn room_waiters_released_by_a_shutdown() {
    within("room waiters and a shutdown", || {
        let pool = Arc::new(
            ElasticPool::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .unwrap(),
        );
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let holder = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let queued = pool.try_submit(|| "queued").unwrap();
        assert!(matches!(
            pool.try_submit(|| "refused"),
            Err(Error::QueueFull)
        ));
        let p = Arc::clone(&pool);
        let watcher = std::thread::spawn(move || run_foreign(p.wait_for_slot(Duration::MAX)));
        let p = Arc::clone(&pool);
        let blocked =
            std::thread::spawn(move || p.submit_blocking(|| "late").map(aplex::Handle::wait));
        eventually("both waiters started", || Arc::strong_count(&pool) == 3);
        let p = Arc::clone(&pool);
        let stopper = std::thread::spawn(move || p.shutdown(ShutdownOptions::default()));
        // The closure is let go only now: the shutdown began with the queue full.
        release.send(()).unwrap();
        holder.wait().unwrap();
        let late = blocked.join().unwrap();
        assert!(
            matches!(
                late,
                Err(Error::ShutDown) | Ok(Err(Error::ShutDown)) | Ok(Ok("late"))
            ),
            "{late:?}"
        );
        watcher.join().unwrap();
        assert!(matches!(queued.wait(), Ok("queued") | Err(Error::ShutDown)));
        let report = stopper.join().unwrap();
        assert!(!report.timed_out, "{report:?}");
    });
}

/// `drain` and `closed` polled once by a foreign waker that panics when woken; the worker
/// that ends the last work wakes them. The panic must stay with the waker: the worker lives,
/// later works run, and the shutdown ends.
fn drain_and_closed_with_a_waker_that_panics() {
    within("a panicking drain waker", || {
        let pool = ElasticPool::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let running = pool
            .try_spawn(move || async move {
                g.wait().await;
                1
            })
            .unwrap();
        let bad = Arc::new(super::time_cases::PanickingWaker::default());
        let waker = std::task::Waker::from(Arc::clone(&bad));
        let mut drain = Box::pin(pool.drain());
        assert!(super::poll_with(drain.as_mut(), &waker).is_pending());
        let mut closed = Box::pin(pool.closed());
        assert!(super::poll_with(closed.as_mut(), &waker).is_pending());
        gate.set();
        assert_eq!(running.wait(), Ok(1));
        eventually("the panicking waker woken", || {
            bad.wakes.load(Ordering::SeqCst) > 0
        });
        for i in 0..3 {
            assert_eq!(pool.try_submit(move || i).unwrap().wait(), Ok(i));
        }
        let v = pool.try_spawn(|| async { 4 }).unwrap();
        assert_eq!(v.wait(), Ok(4));
        drop(drain);
        drop(closed);
        let report = pool.shutdown(ShutdownOptions::default());
        assert!(!report.timed_out, "{report:?}");
        assert!(pool.join().iter().all(Result::is_ok));
    });
}

/// A full queue; `spawn_when_room` and `submit` futures polled once and dropped, and one
/// granted room dropped before its next poll. No room leaks: once the queue empties, the
/// capacity is whole again (exactly one waiting work fits, the next is `QueueFull`).
fn room_futures_dropped_after_one_poll_leak_no_room() {
    within("room futures dropped", || {
        let pool = ElasticPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let holder = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let queued = pool.try_submit(|| 1).unwrap();
        let (_counter, waker) = super::CountingWaker::new();
        for _ in 0..3 {
            let mut spawn = Box::pin(pool.spawn_when_room(|| async { 2 }));
            assert!(super::poll_with(spawn.as_mut(), &waker).is_pending());
            let mut submit = Box::pin(pool.submit(|| 3));
            assert!(super::poll_with(submit.as_mut(), &waker).is_pending());
        }
        // This one is granted the room as the queue empties, and dropped before it looks.
        let mut granted = Box::pin(pool.submit(|| 4));
        assert!(super::poll_with(granted.as_mut(), &waker).is_pending());
        release.send(()).unwrap();
        holder.wait().unwrap();
        assert_eq!(queued.wait(), Ok(1));
        drop(granted);
        // The queue is empty: one work may wait again, then it is full.
        let (release, held) = std_mpsc::channel::<()>();
        let (closure_tx, closure_started) = std_mpsc::channel();
        let holder = pool
            .try_submit(move || {
                closure_tx.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        closure_started.recv_timeout(HANG).unwrap();
        let waiting = pool.try_submit(|| 5);
        let refused = pool.try_submit(|| 6).map(|_| ());
        release.send(()).unwrap();
        holder.wait().unwrap();
        assert_eq!(waiting.unwrap().wait(), Ok(5));
        assert_eq!(refused, Err(Error::QueueFull));
    });
}

/// `min_workers(0)` and a start hook that always panics: `build` cannot know, but a work
/// accepted then must still end (it can never run: an error, not a handle that waits until
/// the pool is dropped), and the shutdown ends too.
fn scaled_workers_whose_start_hook_panics() {
    within("a start hook that always panics", || {
        let pool = ElasticPool::builder()
            .min_workers(0)
            .max_workers(2)
            .on_worker_start(|_| panic!("the start hook panics on purpose"))
            .build()
            .unwrap();
        // Half the hang bound each: the shutdown below must still fit in it.
        let mut first = pool.try_submit(|| 1).unwrap();
        let outcome = first.wait_timeout(HANG / 4);
        assert!(matches!(outcome, Err(Error::WorkerLost(_))), "{outcome:?}");
        // A later submit tries a new worker again, and fails the same way.
        let mut second = pool.try_spawn(|| async { 2 }).unwrap();
        let outcome = second.wait_timeout(HANG / 4);
        assert!(matches!(outcome, Err(Error::WorkerLost(_))), "{outcome:?}");
        let report = pool.shutdown(ShutdownOptions::default());
        assert!(!report.timed_out, "{report:?}");
        assert_eq!(pool.stats().workers, 0);
    });
}

/// The env var that makes this binary run [`fd_shortage_probe`] instead of its cases.
pub(crate) const FD_PROBE_ENV: &str = "APLEX_HUNT5_ELASTIC_FD_PROBE";

/// Run in a child under a small fd limit: the pool grows while no fd is left, so its new
/// threads cannot make their executors. Every work still ends, and the shutdown ends (a
/// failed start that stayed counted made it wait forever for a thread that had gone).
pub(crate) fn fd_shortage_probe() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(4)
        .max_works_per_worker(1)
        .build()
        .expect("the pool starts");
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Ok(1));
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    let (open, gate) = std_mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let g = gate.clone();
    // Holds the live worker, so the works after it make the pool grow (and fail to).
    let held = pool
        .try_submit(move || {
            let _ = g.lock().unwrap().recv();
        })
        .unwrap();
    let queued: Vec<_> = (0..4u32)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    open.send(()).unwrap();
    let mut outcomes = vec![held.wait().map(|()| 99)];
    outcomes.extend(queued.into_iter().map(|mut h| h.wait_timeout(HANG)));
    println!("OUTCOMES {outcomes:?}");
    let report = pool.shutdown(ShutdownOptions {
        total_timeout: Some(HANG),
        ..Default::default()
    });
    println!("SHUTDOWN timed_out={}", report.timed_out);
    drop(hog); // held to the end: every start the pool tried failed
}

fn workers_that_cannot_make_their_reactor_leave_no_count_behind() {
    within("an elastic pool growing with no fd left", || {
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && exec '{}'",
                std::env::current_exe().unwrap().display()
            ))
            .env(FD_PROBE_ENV, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the probe starts");
        let end = std::time::Instant::now() + HANG;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the probe hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        // Every work ran on the live worker, or ended WorkerLost: none timed out.
        let outcomes = stdout
            .lines()
            .find_map(|l| l.strip_prefix("OUTCOMES "))
            .unwrap_or_else(|| panic!("no outcomes: {stdout}\n{stderr}"));
        assert!(!outcomes.contains("TimedOut"), "{outcomes}");
        assert!(
            stdout.contains("SHUTDOWN timed_out=false"),
            "{stdout}\n{stderr}"
        );
    });
}
