//! The program behind the README's size figures: a 2-worker pool runs 1,000 closures and one
//! async sleep. It needs no feature, so it measures what the runtime and the thread pool cost
//! alone:
//!
//! ```text
//! cargo build --release --example small --no-default-features && strip target/release/examples/small
//! ```

use std::time::Duration;

fn main() {
    let pool = aplex::ThreadPool::new(2);
    let handles: Vec<_> = (0..1_000u64).map(|i| pool.submit(move || i * 2)).collect();
    let sum: u64 = handles
        .into_iter()
        .map(|h| h.wait().expect("a closure that cannot fail"))
        .sum();
    let slept = pool
        .spawn(|| async {
            aplex::time::sleep(Duration::from_millis(10)).await;
            "slept"
        })
        .wait()
        .expect("a sleep that cannot fail");
    assert_eq!(sum, 999_000);
    println!("sum of 1,000 closures: {sum}; the async work {slept}");
}
