//! A tour of aplex, mirroring Python aplex's quickstart: submit, map with a timeout, await a
//! handle inside `block_on`, choose a balancer, exit gracefully.
//!
//! Run it with `cargo run --release --example tour`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use aplex::balance::{KeyAffinity, LeastLoaded};
use aplex::time::sleep;
use aplex::{block_on, Error, ThreadPool};

/// Stands in for the quickstart's "fetch a page": an async work that waits a little.
async fn demo(id: u64) -> String {
    sleep(Duration::from_millis(20 + id % 5)).await;
    format!(
        "work {id} done on {}",
        std::thread::current().name().unwrap_or("?")
    )
}

fn main() {
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(100)
        .build()
        .expect("the pool starts");

    // 1. Submit async works and block on one result.
    let start = Instant::now();
    let handle = pool.spawn(|| demo(1));
    println!(
        "{} ({:?})",
        handle.wait().expect("the work succeeds"),
        start.elapsed()
    );

    // 2. A hundred async works at once: one worker runs many of them concurrently.
    let start = Instant::now();
    let handles: Vec<_> = (0..100).map(|i| pool.spawn(move || demo(i))).collect();
    let done = handles
        .into_iter()
        .map(|h| h.wait())
        .filter(Result::is_ok)
        .count();
    println!(
        "{done} async works of ~20 ms on 2 workers took {:?}",
        start.elapsed()
    );

    // 3. The future need not be Send: Rc and RefCell are fine inside a work.
    let handle = pool.spawn(|| async {
        let shared = Rc::new(std::cell::RefCell::new(Vec::new()));
        for i in 0..3 {
            shared.borrow_mut().push(i);
            aplex::yield_now().await;
        }
        let n = shared.borrow().len();
        n
    });
    println!("a work holding an Rc counted {:?}", handle.wait());

    // 4. map, in input order, with a timeout for the whole map: the slow tail is cancelled.
    let start = Instant::now();
    let results: Vec<Result<u64, Error>> = pool
        .map(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                ms
            },
            vec![5, 5, 5, 1000, 5],
        )
        .timeout(Duration::from_millis(200))
        .collect();
    println!(
        "map with a 200 ms timeout: {results:?} ({:?})",
        start.elapsed()
    );

    // 5. Await handles inside block_on (or any other executor).
    let sum = block_on(async {
        let a = pool.submit(|| 20);
        let b = pool.spawn(|| async { 22 });
        a.await.unwrap_or(0) + b.await.unwrap_or(0)
    });
    println!("awaited inside block_on: {sum}");

    // 6. Cancel: a running async work is dropped at its next await.
    let slow = pool.spawn(|| async {
        sleep(Duration::from_secs(60)).await;
        "never"
    });
    println!("cancelled: {} -> {:?}", slow.cancel(), slow.wait());

    // 7. Balancers: least-loaded steers around busy workers; key affinity keeps a key on one
    //    worker, so works with the same key run in order.
    let keyed = ThreadPool::builder()
        .workers(2)
        .balancer(KeyAffinity::new())
        .build()
        .expect("the pool starts");
    let workers: Vec<String> = (0..4)
        .map(|_| {
            keyed.submit_with(42, || {
                std::thread::current().name().unwrap_or("?").to_string()
            })
        })
        .map(|h| h.wait().unwrap_or_default())
        .collect();
    println!("key 42 always ran on: {workers:?}");
    let least = ThreadPool::builder()
        .workers(2)
        .balancer(LeastLoaded::new())
        .build()
        .expect("the pool starts");
    let busy = least.submit(|| std::thread::sleep(Duration::from_millis(100)));
    let loads = least.loads();
    let elsewhere = least.submit(|| std::thread::current().name().unwrap_or("?").to_string());
    println!(
        "with loads {loads:?}, the next work ran on {:?}",
        elsewhere.wait()
    );
    let _ = busy.wait();

    // 8. An async work that talks to a local TCP server (the quickstart fetches a URL; there is
    //    no internet here, so the tour serves its own pages from a work on the same pool).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let addr = listener.local_addr().expect("a bound address");
    let server = pool.spawn(move || async move {
        let listener = aplex::io::TcpListener::from_std(listener)?;
        loop {
            let (mut conn, _) = listener.accept().await?;
            aplex::spawn_local(async move {
                let mut buf = [0u8; 256];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let path = String::from_utf8_lossy(&buf[..n])
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                let body = format!("hello from {path}");
                let reply = format!(
                    "HTTP/1.0 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            })
            .detach();
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let start = Instant::now();
    let fetches: Vec<_> = (0..20)
        .map(|i| {
            pool.spawn(move || async move {
                let mut conn = aplex::io::TcpStream::connect(addr).await?;
                conn.write_all(format!("GET /page/{i} HTTP/1.0\r\n\r\n").as_bytes())
                    .await?;
                let mut reply = Vec::new();
                conn.read_to_end(&mut reply).await?;
                let text = String::from_utf8_lossy(&reply).to_string();
                Ok::<String, std::io::Error>(
                    text.rsplit("\r\n\r\n").next().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    let pages: Vec<String> = fetches
        .into_iter()
        .filter_map(|h| h.wait().ok().and_then(Result::ok))
        .collect();
    println!(
        "fetched {} pages from the local server in {:?}, e.g. {:?}",
        pages.len(),
        start.elapsed(),
        pages.first()
    );
    println!("stopping the server: cancelled = {}", server.cancel());

    // 9. Graceful exit: dropping a pool finishes what it accepted and joins its threads.
    let last = pool.spawn(|| async {
        sleep(Duration::from_millis(30)).await;
        "finished before the pool went away"
    });
    drop(pool);
    println!("after drop: {:?}", last.wait());
}
