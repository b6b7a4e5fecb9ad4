//! Benchmark of `ConnectionPool`: acquire/release pairs per second on a pool of 8 shared by 100
//! concurrent tasks inside one `block_on`. Prints one `name value unit` line.
//!
//! Run with `cargo bench --bench conn_pool`. Each task holds its connection across one
//! `yield_now`, so 8 tasks hold connections while the other 92 wait in line: every pair goes
//! through the waiting path (queue, grant, wake), not only the uncontended fast path.

use std::time::Instant;

use aplex::ConnectionPool;

const TASKS: usize = 100;
const PAIRS_PER_TASK: usize = 2_000;
const MAX_SIZE: usize = 8;
const RUNS: usize = 5;

fn median_of<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    let mut v: Vec<f64> = (0..runs).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[runs / 2]
}

fn main() {
    let rate = median_of(RUNS, || {
        let pool = ConnectionPool::builder(|| Ok([0u8; 64]))
            .max_size(MAX_SIZE)
            .min_size(MAX_SIZE)
            .build()
            .expect("the pool builds");
        aplex::block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let pool = pool.clone();
                    aplex::spawn_local(async move {
                        for _ in 0..PAIRS_PER_TASK {
                            let conn = pool.acquire().await.expect("the pool stays open");
                            aplex::yield_now().await;
                            drop(conn);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            let pairs = TASKS * PAIRS_PER_TASK;
            assert!(pool.stats().size <= MAX_SIZE);
            pairs as f64 / start.elapsed().as_secs_f64()
        })
    });
    println!("conn_pool_acquire_release_100t {rate:.0} pairs/s");
}
