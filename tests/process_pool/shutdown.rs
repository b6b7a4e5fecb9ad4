//! `shutdown_async` and `closed`: the shutdown awaited without blocking a thread.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use aplex::Error;

use super::{is_gone, pool, temp_dir, works};

/// A call that holds the shutdown until a local task of the awaiting thread opens its gate:
/// the shutdown can end only if awaiting it left that thread free to run the task.
pub fn shutdown_async_leaves_its_thread_free_and_ends_every_call() {
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
    let _ = std::fs::remove_dir_all(dir);
}

/// `closed` awaited while a blocking `shutdown` runs on another thread resolves after it,
/// and a second blocking `shutdown` waits for the first one's end.
pub fn closed_resolves_after_a_shutdown_on_another_thread() {
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
