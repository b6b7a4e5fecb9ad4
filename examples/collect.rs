//! aioextensions' `collect`: five 100 ms fetches, two at a time, results in input order.
//!
//! ```sh
//! cargo run --example collect
//! ```
//!
//! Prints each fetch's start and end, then the total: about 300 ms (three rounds), not 500.

use std::time::{Duration, Instant};

async fn fetch(start: Instant, n: u32) -> u32 {
    println!("{:>6.1?}  fetch({n}) starts", start.elapsed());
    aplex::time::sleep(Duration::from_millis(100)).await;
    println!("{:>6.1?}  fetch({n}) ends", start.elapsed());
    n * 10
}

fn main() {
    let start = Instant::now();
    let results = aplex::block_on(aplex::collect((0..5).map(|n| fetch(start, n)), 2));
    println!("results {results:?} in {:.1?}", start.elapsed());

    // The streaming form: each result as soon as it and all before it are ready.
    let start = Instant::now();
    aplex::block_on(async {
        let mut stream = aplex::resolve((0..5).map(|n| fetch(start, n)), 2);
        while let Some(r) = stream.next().await {
            println!("{:>6.1?}  resolved {r}", start.elapsed());
        }
    });
}
