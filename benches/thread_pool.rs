//! ThreadPool benchmarks, beside a naive `Mutex<VecDeque>` + `Condvar` pool measured in the same
//! run. Prints one `name value unit` line per figure; run with `cargo bench --bench thread_pool`.
//! Figures that report peak memory run in a child process of their own.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aplex::ThreadPool;

const RUNS: usize = 5;

mod common;
use common::*;

fn main() {
    if run_child_case(&[("sleeps", sleeps_100k)]) {
        return;
    }
    submit_throughput();
    round_trip();
    in_child("sleeps");
    cpu_scaling();
    map_throughput();
}

/// 1,000,000 no-op works on 2 workers, every handle kept and waited: on per-worker queues, on
/// one shared queue (`shared_queue(true)`, first come, first served), on the elastic pool and
/// on the naive pool.
fn submit_throughput() {
    const N: usize = 1_000_000;
    let rate_of = |pool: &ThreadPool| {
        median(
            (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..N).map(|i| pool.submit(move || i)).collect();
                    for h in handles {
                        h.wait().unwrap();
                    }
                    N as f64 / start.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let pool = ThreadPool::new(2);
    let aplex_rate = rate_of(&pool);
    drop(pool);
    let shared = ThreadPool::builder()
        .workers(2)
        .shared_queue(true)
        .build()
        .unwrap();
    let shared_rate = rate_of(&shared);
    drop(shared);
    let naive = NaivePool::new(2);
    let naive_rate = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let handles: Vec<_> = (0..N).map(|i| naive.submit(move || i)).collect();
                for h in handles {
                    h.wait();
                }
                N as f64 / start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let elastic = aplex::ElasticPool::builder().workers(2).build().unwrap();
    let elastic_rate = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let handles: Vec<_> = (0..N)
                    .map(|i| elastic.try_submit(move || i).unwrap())
                    .collect();
                for h in handles {
                    h.wait().unwrap();
                }
                N as f64 / start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    drop(elastic);
    println!("pool_submit_1m_noop_2w {aplex_rate:.0} works/s");
    println!("pool_shared_queue_submit_1m_noop_2w {shared_rate:.0} works/s");
    println!("elastic_submit_1m_noop_2w {elastic_rate:.0} works/s");
    println!("elastic_vs_pool_submit {:.2} x", elastic_rate / aplex_rate);
    println!("naive_pool_submit_1m_noop_2w {naive_rate:.0} works/s");
    println!("pool_submit_vs_naive {:.2} x", aplex_rate / naive_rate);
}

/// Sequential submit → wait round trips; then the CPU an idle pool uses after its spin window.
fn round_trip() {
    const N: usize = 20_000;
    let pool = ThreadPool::new(2);
    let mut lat = Vec::with_capacity(N);
    for i in 0..N {
        let start = Instant::now();
        pool.submit(move || i).wait().unwrap();
        lat.push(start.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    println!("pool_round_trip_median {:.2} us", lat[N / 2]);
    println!("pool_round_trip_p99 {:.2} us", lat[N * 99 / 100]);

    let naive = NaivePool::new(2);
    let mut nlat = Vec::with_capacity(N);
    for i in 0..N {
        let start = Instant::now();
        naive.submit(move || i).wait();
        nlat.push(start.elapsed().as_secs_f64() * 1e6);
    }
    nlat.sort_by(f64::total_cmp);
    println!("naive_pool_round_trip_median {:.2} us", nlat[N / 2]);

    // Idle: past the spin window, the workers must park. Read to the nanosecond: the clock
    // ticks of /proc/self/stat are 10 ms, one tick of a 500 ms window is 2 %.
    std::thread::sleep(Duration::from_millis(20));
    let cpu0 = threads_cpu_seconds();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let idle = (threads_cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    println!("pool_idle_cpu {idle:.2} percent");
    drop(pool);
}

/// 100,000 concurrent 10 ms async sleeps across a 2-worker pool: wall time and peak memory.
fn sleeps_100k() {
    const N: usize = 100_000;
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(N)
        .build()
        .unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|_| pool.spawn(|| aplex::time::sleep(Duration::from_millis(10))))
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    let wall = start.elapsed();
    println!(
        "pool_100k_sleeps_10ms_wall {:.1} ms",
        wall.as_secs_f64() * 1e3
    );
    println!("pool_100k_sleeps_peak_rss {:.1} MiB", peak_rss_mib());
}

/// 64 CPU-bound works of ~5 ms on 1 and on 2 workers.
fn cpu_scaling() {
    fn burn(ms: u64) -> u64 {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut x = 1u64;
        while Instant::now() < end {
            for _ in 0..1000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        x
    }
    let wall = |workers: usize| {
        let pool = ThreadPool::new(workers);
        let start = Instant::now();
        let hs: Vec<_> = (0..64).map(|_| pool.submit(|| burn(5))).collect();
        hs.into_iter().for_each(|h| {
            h.wait().unwrap();
        });
        start.elapsed().as_secs_f64()
    };
    let ratio = median((0..RUNS).map(|_| wall(1) / wall(2)).collect());
    println!("pool_cpu_scaling_2w_vs_1w {ratio:.2} x");
}

/// Ordered map of 1,000,000 tiny items, chunk sizes 1 and 1024.
fn map_throughput() {
    const N: u64 = 1_000_000;
    let pool = ThreadPool::new(2);
    for chunk in [1usize, 1024] {
        let rate = median(
            (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let mut expect = 0u64;
                    for r in pool.map(|x: u64| x + 1, 0..N).chunk_size(chunk) {
                        expect += 1;
                        assert_eq!(r, Ok(expect));
                    }
                    N as f64 / start.elapsed().as_secs_f64()
                })
                .collect(),
        );
        println!("pool_map_1m_chunk{chunk} {rate:.0} items/s");
    }
}

/// The naive pool's queue and its "closed" flag, with the condvar its workers wait on.
type NaiveShared = Arc<(Mutex<(VecDeque<Box<dyn FnOnce() + Send>>, bool)>, Condvar)>;

/// The baseline: one shared `Mutex<VecDeque>` and a `Condvar`, one `Mutex` + `Condvar` per result.
struct NaivePool {
    shared: NaiveShared,
    threads: Vec<JoinHandle<()>>,
}

struct NaiveHandle<T>(Arc<(Mutex<Option<T>>, Condvar)>);

impl<T> NaiveHandle<T> {
    fn wait(self) -> T {
        let (m, c) = &*self.0;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(v) = g.take() {
                return v;
            }
            g = c.wait(g).unwrap();
        }
    }
}

impl NaivePool {
    fn new(n: usize) -> NaivePool {
        let shared: NaiveShared = Arc::new((Mutex::new((VecDeque::new(), false)), Condvar::new()));
        let threads = (0..n)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || loop {
                    let job = {
                        let (m, c) = &*s;
                        let mut g = m.lock().unwrap();
                        loop {
                            if let Some(j) = g.0.pop_front() {
                                break j;
                            }
                            if g.1 {
                                return;
                            }
                            g = c.wait(g).unwrap();
                        }
                    };
                    job();
                })
            })
            .collect();
        NaivePool { shared, threads }
    }

    fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> NaiveHandle<T> {
        let slot = Arc::new((Mutex::new(None), Condvar::new()));
        let s = slot.clone();
        let (m, c) = &*self.shared;
        m.lock().unwrap().0.push_back(Box::new(move || {
            let v = f();
            *s.0.lock().unwrap() = Some(v);
            s.1.notify_one();
        }));
        c.notify_one();
        NaiveHandle(slot)
    }
}

impl Drop for NaivePool {
    fn drop(&mut self) {
        self.shared.0.lock().unwrap().1 = true;
        self.shared.1.notify_all();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// CPU time of this process's threads so far, to the nanosecond: the sum of each thread's run
/// time in /proc/self/task/*/schedstat (the reading thread's own reads included).
fn threads_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}
