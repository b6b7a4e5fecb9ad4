//! aioutils' nested loops: ten outer tasks each spawn ten inner 100 ms tasks into the same
//! group, driven from plain synchronous code; then a `Yielder` and an `OrderedYielder`.
//!
//! ```sh
//! cargo run --example nested_groups
//! ```
//!
//! Prints about 0.2 s for the hundred inner tasks (not 11 s), then results in completion order
//! and in spawn order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::time::sleep;
use aplex::{Group, OrderedYielder, Yielder};

fn main() {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let group = Group::new();
    for _ in 0..10 {
        let handle = group.handle();
        let done = done.clone();
        group.spawn(async move {
            sleep(Duration::from_millis(100)).await;
            for _ in 0..10 {
                let done = done.clone();
                handle.spawn(async move {
                    sleep(Duration::from_millis(100)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    }
    group.join().expect("no task panicked");
    println!(
        "{} inner tasks done in {:.2?}",
        done.load(Ordering::SeqCst),
        start.elapsed()
    );

    let start = Instant::now();
    let limited = Group::with_limit(2);
    for _ in 0..6 {
        limited.spawn(async { sleep(Duration::from_millis(100)).await });
    }
    limited.join().expect("no task panicked");
    println!("6 tasks, 2 at a time, in {:.2?}", start.elapsed());

    let yielder = Yielder::new();
    let ordered = OrderedYielder::new();
    for ms in [30u64, 10, 20] {
        yielder.spawn(async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        });
        ordered.spawn(async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        });
    }
    println!(
        "completion order: {:?}",
        yielder.into_iter().collect::<Vec<_>>()
    );
    println!(
        "spawn order:      {:?}",
        ordered.into_iter().collect::<Vec<_>>()
    );
}
