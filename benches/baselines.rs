//! The thread pool beside in-repo baselines of its peers' shapes, measured in the same run.
//! Prints one `name value unit` line per figure, and the ratio to its baseline.
//!
//! - `channel pool`: the shape of the `threadpool` crate (and of a crossbeam-channel pool): N
//!   threads taking boxed closures from one `std::sync::mpsc` channel behind a mutex; results go
//!   back over a channel and an ordered map reorders them by index.
//! - `scoped split`: what rayon's `par_iter().map().collect()` approaches for tiny items: the
//!   input split in one piece per thread, each mapped on a scoped thread, the pieces joined.
//!
//! Run with `cargo bench --bench baselines`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use aplex::ThreadPool;

mod common;
use common::*;

const RUNS: usize = 5;
const WORKERS: usize = 2;

fn main() {
    fire_and_forget();
    ordered_map_chunk_1();
    ordered_map_chunk_1024();
}

type Job = Box<dyn FnOnce() + Send>;

/// N threads sharing one channel's receiver, as the `threadpool` crate does.
struct ChannelPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl ChannelPool {
    fn new(n: usize) -> ChannelPool {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..n)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
            })
            .collect();
        ChannelPool {
            tx: Some(tx),
            threads,
        }
    }

    fn execute(&self, f: impl FnOnce() + Send + 'static) {
        self.tx.as_ref().unwrap().send(Box::new(f)).unwrap();
    }
}

impl Drop for ChannelPool {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// Waits until `done` reaches `n`, yielding.
fn until(done: &AtomicUsize, n: usize) {
    while done.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
}

/// 1,000,000 no-op works whose handles are dropped at once; the clock stops when all ran.
/// Submits `n` no-op closures to `pool`, dropping each handle at once, and waits until all ran.
fn fire_into(pool: &ThreadPool, n: usize) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let d = done.clone();
        drop(pool.submit(move || {
            d.fetch_add(1, Ordering::Release);
        }));
    }
    until(&done, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn fire_and_forget() {
    const N: usize = 1_000_000;
    let pool = ThreadPool::new(WORKERS);
    // The same pool with one shared queue (`shared_queue(true)`): the channel pool's shape.
    let shared = ThreadPool::builder()
        .workers(WORKERS)
        .shared_queue(true)
        .build()
        .expect("the bench's threads start");
    let baseline = ChannelPool::new(WORKERS);
    let (mut ours, mut ours_shared, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(fire_into(&pool, N));
        ours_shared.push(fire_into(&shared, N));

        let done = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        for _ in 0..N {
            let d = done.clone();
            baseline.execute(move || {
                d.fetch_add(1, Ordering::Release);
            });
        }
        until(&done, N);
        theirs.push(N as f64 / start.elapsed().as_secs_f64());
    }
    let (ours, ours_shared, theirs) = (median(ours), median(ours_shared), median(theirs));
    println!("pool_fire_1m_noop_2w {ours:.0} works/s");
    println!("pool_shared_queue_fire_1m_noop_2w {ours_shared:.0} works/s");
    println!("channel_pool_fire_1m_noop_2w {theirs:.0} works/s");
    println!("pool_fire_vs_channel_pool {:.2} x", ours / theirs);
    println!(
        "pool_shared_queue_fire_vs_channel_pool {:.2} x",
        ours_shared / theirs
    );
}

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761) >> 7
}

/// The channel pool's ordered map: one job per item, results sent back with their index and
/// put in place.
fn channel_pool_map(pool: &ChannelPool, n: usize) -> Vec<u64> {
    let (tx, rx) = channel::<(usize, u64)>();
    for i in 0..n {
        let tx = tx.clone();
        pool.execute(move || tx.send((i, tiny(i as u64))).unwrap());
    }
    drop(tx);
    let mut out = vec![0; n];
    for (i, v) in rx {
        out[i] = v;
    }
    out
}

/// 100,000 tiny items, one work each, results in input order.
fn ordered_map_chunk_1() {
    const N: usize = 100_000;
    let pool = ThreadPool::new(WORKERS);
    let baseline = ChannelPool::new(WORKERS);
    let expected: Vec<u64> = (0..N as u64).map(tiny).collect();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let out: Vec<u64> = pool.map(tiny, 0..N as u64).map(Result::unwrap).collect();
        ours.push(N as f64 / start.elapsed().as_secs_f64());
        assert_eq!(out, expected);

        let start = Instant::now();
        let out = channel_pool_map(&baseline, N);
        theirs.push(N as f64 / start.elapsed().as_secs_f64());
        assert_eq!(out, expected);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("pool_map_100k_chunk1 {ours:.0} items/s");
    println!("channel_pool_map_100k {theirs:.0} items/s");
    println!("pool_map_chunk1_vs_channel_pool {:.2} x", ours / theirs);
}

/// The scoped split: one piece of the input per thread, mapped and joined in order.
fn scoped_split_map(input: &[u64], threads: usize) -> Vec<u64> {
    let piece = input.len().div_ceil(threads);
    let parts: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = input
            .chunks(piece)
            .map(|part| s.spawn(move || part.iter().map(|&x| tiny(x)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    parts.concat()
}

/// 1,000,000 tiny items in chunks of 1,024, results in input order.
fn ordered_map_chunk_1024() {
    const N: usize = 1_000_000;
    let pool = ThreadPool::new(WORKERS);
    let input: Vec<u64> = (0..N as u64).collect();
    let expected: Vec<u64> = input.iter().map(|&x| tiny(x)).collect();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let out: Vec<u64> = pool
            .map(tiny, 0..N as u64)
            .chunk_size(1024)
            .map(Result::unwrap)
            .collect();
        ours.push(N as f64 / start.elapsed().as_secs_f64());
        assert_eq!(out, expected);

        let start = Instant::now();
        let out = scoped_split_map(&input, WORKERS);
        theirs.push(N as f64 / start.elapsed().as_secs_f64());
        assert_eq!(out, expected);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("pool_map_1m_chunk1024 {ours:.0} items/s");
    println!("scoped_split_map_1m {theirs:.0} items/s");
    println!("pool_map_chunk1024_vs_scoped_split {:.2} x", ours / theirs);
}
