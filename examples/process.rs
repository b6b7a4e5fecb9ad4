//! The process pool: declare works, start worker processes, call and map, await inside
//! `block_on`, and survive a worker crash.
//!
//! `cargo run --example process`

use std::time::Duration;

use aplex::{Error, ProcessPool};

aplex::works! {
    /// The works this program offers to its worker processes.
    pub mod works {
        /// A plain work: runs to its end in the worker.
        pub fn double(x: u64) -> u64 { x * 2 }
        /// An async work: many run at once in one worker.
        pub async fn nap(ms: u64) -> u64 {
            aplex::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
        /// Several arguments travel as one tuple.
        pub fn greet(who: (String, u32)) -> String {
            println!("printing in a work goes to stderr, never into the protocol");
            format!("hello {} #{}", who.0, who.1)
        }
        /// Kills its worker process, as a segfault in C code would.
        pub fn crash(code: i32) { std::process::exit(code) }
        /// The worker's process id.
        pub fn pid(_unit: ()) -> u32 { std::process::id() }
    }
}

fn main() -> Result<(), Error> {
    // First line: when this program is launched as a worker, it serves here and never returns.
    aplex::serve_if_worker(&works::WORKS);

    let pool = ProcessPool::builder().workers(2).build(&works::WORKS)?;
    println!("workers: {:?}", pool.worker_pids());
    for slot in pool.slots() {
        println!(
            "slot {} on {:?}: pid {:?}, {:?}",
            slot.index, slot.host, slot.pid, slot.state
        );
    }

    // Call, and block on the handle.
    assert_eq!(pool.call(&works::double, 21).wait()?, 42);
    println!(
        "{}",
        pool.call(&works::greet, ("process".to_string(), 1))
            .wait()?
    );

    // Await handles inside block_on: ten 100 ms naps overlap inside the workers.
    let start = std::time::Instant::now();
    let total: u64 = aplex::block_on(async {
        let naps: Vec<_> = (0..10).map(|_| pool.call(&works::nap, 100)).collect();
        let mut total = 0;
        for nap in naps {
            total += nap.await.unwrap();
        }
        total
    });
    println!(
        "ten naps of 100 ms: {total} ms of sleep in {:?}",
        start.elapsed()
    );

    // Map: results in input order; chunks put many items in one frame.
    let doubled: Vec<u64> = pool
        .map(&works::double, 0..100_000)
        .chunk_size(256)
        .map(Result::unwrap)
        .collect();
    assert_eq!(doubled[99_999], 199_998);
    println!("mapped {} items", doubled.len());

    // A crash loses only the works on that worker; a replacement takes its place.
    match pool.call(&works::crash, 7).wait() {
        Err(Error::WorkerLost(why)) => println!("survived a crash: {why}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.call(&works::double, 1).wait()?, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while pool.worker_pids().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5)); // the replacement is starting
    }
    println!("workers after the crash: {:?}", pool.worker_pids());

    // Dropping the pool shuts it down: workers finish, exit and are reaped.
    drop(pool);
    Ok(())
}
