//! Shutting down: graceful (accepted calls end with their value, new ones `ShutDown`), now
//! (every call not started is `Cancelled`), during a respawn, and awaited without blocking a
//! thread (`shutdown_async`, `closed`).

use std::sync::{mpsc, Arc};

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    calls_after_shutdown_are_shut_down,
    shutdown_now_cancels_every_call_not_started,
    calls_waiting_for_a_respawn_are_never_shut_down,
    shutdown_async_leaves_its_thread_free_and_ends_every_call,
    closed_resolves_after_a_shutdown_on_another_thread,
];

/// A call that holds the shutdown until a local task of the awaiting thread opens its gate:
/// the shutdown can end only if awaiting it left that thread free to run the task.
pub(crate) fn shutdown_async_leaves_its_thread_free_and_ends_every_call() {
    let dir = temp_dir("shutdown_async");
    let gate = dir.join("gate");
    let pool = Arc::new(pool(1));
    let pids = pool.worker_pids();
    let held = pool.call(
        &works::shell,
        format!(
            "while [ ! -e '{}' ]; do sleep 0.01; done; exit 7",
            gate.display()
        ),
    );
    // Another thread waits for the end without starting it.
    let (closed_tx, closed_rx) = mpsc::channel();
    let watcher = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            aplex::block_on(pool.closed());
            closed_tx.send(()).unwrap();
        })
    };
    let (done_tx, done_rx) = mpsc::channel();
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            aplex::block_on(async {
                let opener = aplex::spawn_local(async move {
                    aplex::yield_now().await;
                    std::fs::write(&gate, b"").unwrap();
                });
                pool.shutdown_async().await;
                opener.await;
            });
            done_tx.send(()).unwrap();
        })
    };
    // Only a hang bound: the gate opens as soon as the closing thread runs its task.
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown_async blocked the thread that awaited it");
    closed_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("closed() did not resolve after the shutdown");
    closer.join().unwrap();
    watcher.join().unwrap();
    assert_eq!(held.wait(), Ok(7), "an accepted call ends with its value");
    assert!(pids.iter().all(|&pid| is_gone(pid)), "every worker reaped");
    assert_eq!(pool.call(&works::double, 1).wait(), Err(Error::ShutDown));
    // Again, and after the end: both resolve at once.
    aplex::block_on(pool.shutdown_async());
    aplex::block_on(pool.closed());
}

/// `closed` awaited while a blocking `shutdown` runs on another thread resolves after it,
/// and a second blocking `shutdown` waits for the first one's end.
pub(crate) fn closed_resolves_after_a_shutdown_on_another_thread() {
    let pool = Arc::new(pool(2));
    let pids = pool.worker_pids();
    let call = pool.call(&works::nap, 20);
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.shutdown())
    };
    aplex::block_on(pool.closed());
    assert!(pids.iter().all(|&pid| is_gone(pid)), "every worker reaped");
    assert_eq!(call.wait(), Ok(20));
    pool.shutdown(); // already over: returns
    closer.join().unwrap();
}

pub(crate) fn calls_after_shutdown_are_shut_down() {
    let pool = pool(1);
    let running = pool.call(&works::nap, 50);
    pool.shutdown();
    assert_eq!(running.wait(), Ok(50)); // accepted work finishes
    assert_eq!(pool.call(&works::double, 1).wait(), Err(Error::ShutDown));
    let pool = super::pool(1);
    let running = pool.call(&works::nap, 10_000);
    pool.shutdown_now();
    assert_eq!(running.wait(), Err(Error::Cancelled));
}

pub(crate) fn shutdown_now_cancels_every_call_not_started() {
    let pool = pool(1);
    let running = pool.call(&works::block, 60_000);
    let queued: Vec<_> = (0..50).map(|i| pool.call(&works::double, i)).collect();
    let start = Instant::now();
    pool.shutdown_now();
    assert_eq!(running.wait(), Err(Error::Cancelled));
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert!(start.elapsed() < HANG); // not the running work's 60 s
}

pub(crate) fn calls_waiting_for_a_respawn_are_never_shut_down() {
    let dir = temp_dir("respawn-drop");
    // Every start after the first says hello only once `go` exists.
    let mut cmd = script(
        &dir,
        "launch",
        &format!(
            "if mkdir '{0}/first' 2>/dev/null; then exec \"$EXE\"; fi\nwhile [ ! -e '{0}/go' ]; do sleep 0.02; done\nexec \"$EXE\"",
            dir.display()
        ),
    );
    cmd.env("APLEX_TEST_TOKEN", "respawn-drop");
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    lost(pool.call(&works::exit_now, 0).wait());
    eventually("a replacement starting", HANG, || {
        pool.slot_states() == [aplex::SlotState::Starting]
    });
    let waiting: Vec<_> = (0..5).map(|i| pool.call(&works::double, i)).collect();
    let go = dir.join("go");
    let dropper = std::thread::spawn(move || drop(pool));
    std::thread::sleep(Duration::from_millis(50)); // not a gate: either order is fine
    std::fs::write(&go, b"").unwrap();
    dropper.join().unwrap();
    for (i, h) in waiting.into_iter().enumerate() {
        match h.wait() {
            Ok(v) => assert_eq!(v, 2 * i as u64),
            Err(Error::WorkerLost(_)) => {}
            other => panic!("a call waiting for a respawn ended {other:?}"),
        }
    }
}
