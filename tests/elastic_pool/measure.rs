//! Measurements (not assertions of speed): `cargo test --release --test elastic_pool --
//! --ignored --nocapture measure`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::ElasticPool;

#[test]
#[ignore = "a measurement; run it in release mode"]
fn measure_try_submit_with_wait_for_slot_throughput() {
    let pool = Arc::new(
        ElasticPool::builder()
            .max_workers(2)
            .queue_capacity(5)
            .build()
            .unwrap(),
    );
    let (threads, each) = (50, 2_000);
    let full = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let submitters: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, full) = (pool.clone(), full.clone());
            std::thread::spawn(move || {
                let mut handles = Vec::with_capacity(each);
                while handles.len() < each {
                    match pool.try_submit(|| 1u8) {
                        Ok(h) => handles.push(h),
                        Err(_) => {
                            full.fetch_add(1, Ordering::Relaxed);
                            aplex::block_on(pool.wait_for_slot(Duration::from_secs(1)));
                        }
                    }
                }
                handles
                    .into_iter()
                    .for_each(|h| assert_eq!(h.wait(), Ok(1)));
            })
        })
        .collect();
    submitters.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = start.elapsed();
    let works = threads * each;
    println!(
        "{works} works from {threads} threads through try_submit + wait_for_slot on \
         queue_capacity(5): {elapsed:?}, {:.0} works/s, {} QueueFull",
        works as f64 / elapsed.as_secs_f64(),
        full.load(Ordering::Relaxed)
    );
}

#[test]
#[ignore = "a measurement; run it in release mode"]
fn measure_drain_early_returns() {
    let pool = ElasticPool::builder()
        .max_workers(2)
        .max_works_per_worker(4)
        .build()
        .unwrap();
    let (mut early, drains) = (0, 100_000);
    for _ in 0..drains {
        let a = pool
            .try_spawn(|| async { aplex::yield_now().await })
            .unwrap();
        let b = pool.try_submit(|| ()).unwrap();
        aplex::block_on(pool.drain());
        if !(a.is_finished() && b.is_finished()) {
            early += 1;
        }
    }
    println!("{drains} drains: {early} returned before every work's outcome was published");
    assert_eq!(early, 0);
}
