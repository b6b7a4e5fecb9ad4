//! CPU-bound works use every worker. Its own binary: no other test competes for the cores.

use std::time::{Duration, Instant};

use aplex::ThreadPool;

/// About `ms` milliseconds of pure computation.
fn spin_work(ms: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut x = 1u64;
    while Instant::now() < end {
        for _ in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
    }
    x
}

fn run(workers: usize) -> Duration {
    let pool = ThreadPool::new(workers);
    let start = Instant::now();
    let handles: Vec<_> = (0..64).map(|_| pool.submit(|| spin_work(5))).collect();
    for h in handles {
        h.wait().unwrap();
    }
    start.elapsed()
}

#[test]
fn sixty_four_cpu_bound_works_use_both_cores() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        return; // nothing to show on one core
    }
    let one = run(1);
    let two = run(2);
    // Ideal is 0.5; allow a shared, noisy machine plenty of slack.
    assert!(
        two.as_secs_f64() < one.as_secs_f64() * 0.8,
        "1 worker {one:?}, 2 workers {two:?}"
    );
}
