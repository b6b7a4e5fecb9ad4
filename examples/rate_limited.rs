//! aioextensions' `rate_limited`: ten calls, at most 2 per 500 ms and at least 100 ms apart.
//!
//! ```sh
//! cargo run --example rate_limited
//! ```
//!
//! Prints each call's start: pairs at 0/100, 500/600, 1000/1100 ms and so on, about 2.1 s in all.

use std::time::{Duration, Instant};

use aplex::RateLimiter;

fn main() {
    let limiter =
        RateLimiter::new(2, Duration::from_millis(500)).min_interval(Duration::from_millis(100));
    let start = Instant::now();
    let calls = (0..10).map(|i| {
        limiter.run(async move {
            println!("{:>7.1?}  call {i} starts", start.elapsed());
            aplex::time::sleep(Duration::from_millis(30)).await; // the call itself
            i
        })
    });
    // All ten wait at once; the limiter lets them through in order.
    let done = aplex::block_on(aplex::collect(calls, 10));
    println!("{} calls in {:.1?}", done.len(), start.elapsed());
}
