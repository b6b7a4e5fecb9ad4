//! Thread accounting: a pool leaves no thread behind, however it ends.
//!
//! One test in its own binary, so that no other test's threads are counted.

use std::time::{Duration, Instant};

use aplex::ThreadPool;

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .count()
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

/// How long anything may take before the test fails instead of hanging: only a hang or a
/// leak reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

/// Threads may take a moment to leave the task list after join returns.
fn settles_to(threads: usize) -> bool {
    let end = Instant::now() + BOUND;
    while Instant::now() < end {
        if thread_count() == threads {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

// Miri cannot emulate this one: it counts threads and fds in /proc, which Miri's interpreted
// threads and virtual fds do not appear in (and isolation hides the file system).
#[test]
#[cfg_attr(miri, ignore)]
fn no_thread_or_fd_outlives_a_pool() {
    let threads = thread_count();
    let fds = fd_count();

    // Graceful shutdown with 10,000 queued works.
    let pool = ThreadPool::new(2);
    assert_eq!(thread_count(), threads + 2);
    let handles: Vec<_> = (0..10_000).map(|i| pool.submit(move || i)).collect();
    drop(pool);
    assert!(handles
        .into_iter()
        .enumerate()
        .all(|(i, h)| h.wait() == Ok(i)));
    assert!(
        settles_to(threads),
        "threads left after drop: {}",
        thread_count() - threads
    );

    // Shutdown now with 10,000 sleeping works.
    let pool = ThreadPool::new(2);
    let handles: Vec<_> = (0..10_000)
        .map(|_| pool.spawn(|| async { aplex::time::sleep(Duration::from_secs(60)).await }))
        .collect();
    pool.shutdown_now();
    for h in handles {
        let mut h = h;
        assert_eq!(h.wait_timeout(BOUND), Err(aplex::Error::Cancelled));
    }
    drop(pool);
    assert!(settles_to(threads), "threads left after shutdown_now");

    // 100 pools created and dropped.
    for _ in 0..100 {
        let pool = ThreadPool::new(2);
        assert_eq!(pool.submit(|| 1).wait(), Ok(1));
    }
    assert!(settles_to(threads), "threads left after 100 pools");
    assert_eq!(fd_count(), fds, "fds leaked");
}
