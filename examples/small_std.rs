//! The std-only baseline for the README's size figures: the same program as `small.rs` (two
//! threads run 1,000 closures, then a 10 ms sleep) with std alone — an mpsc channel of boxed
//! closures and `thread::sleep`. Built and stripped the same way:
//!
//! ```text
//! cargo build --release --example small_std && strip target/release/examples/small_std
//! ```

use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

fn main() {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || loop {
                let next = queue.lock().expect("no worker panics").recv();
                match next {
                    Ok(job) => job(),
                    Err(_) => break, // every sender is gone
                }
            })
        })
        .collect();
    let (results, answers) = mpsc::channel();
    for i in 0..1_000u64 {
        let results = results.clone();
        let job: Job = Box::new(move || {
            let _ = results.send(i * 2);
        });
        jobs.send(job).expect("the workers are alive");
    }
    let sum: u64 = answers.iter().take(1_000).sum();
    let (slept_tx, slept) = mpsc::channel();
    let job: Job = Box::new(move || {
        thread::sleep(Duration::from_millis(10));
        let _ = slept_tx.send("slept");
    });
    jobs.send(job).expect("the workers are alive");
    let slept = slept.recv().expect("the sleeping job answers");
    drop(jobs);
    for worker in workers {
        worker.join().expect("no worker panics");
    }
    assert_eq!(sum, 999_000);
    println!("sum of 1,000 closures: {sum}; the sleeping job {slept}");
}
