//! aioextensions' `in_thread`: fifty blocking 100 ms calls on the global thread pool, awaited
//! from async code.
//!
//! ```sh
//! cargo run --example in_thread
//! ```
//!
//! Prints the total: about 100 ms with 50 threads or more (the pool has 10 per core by default;
//! this example asks for 64), not 5 s.

use std::time::{Duration, Instant};

use aplex::global::{self, GlobalConfig};

fn blocking_read(i: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(100)); // a blocking call: a file, a DB driver...
    i
}

fn main() {
    global::configure(GlobalConfig {
        threads: Some(64),
        ..Default::default()
    })
    .expect("configured before first use");

    let start = Instant::now();
    let sum = aplex::block_on(async {
        let handles: Vec<_> = (0..50)
            .map(|i| aplex::in_thread(move || blocking_read(i)))
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("the call ran");
        }
        sum
    });
    println!("50 blocking calls, sum {sum}, in {:.1?}", start.elapsed());

    // A blocking iterator streamed to async code, with backpressure.
    let start = Instant::now();
    let lines = aplex::generate_in_thread((1..=5).map(|i| {
        std::thread::sleep(Duration::from_millis(20));
        format!("line {i}")
    }));
    aplex::block_on(async move {
        let mut lines = lines;
        while let Some(line) = lines.recv().await {
            println!("{:>6.1?}  {line}", start.elapsed());
        }
    });

    global::shutdown(); // join the pool's threads before exit
}
