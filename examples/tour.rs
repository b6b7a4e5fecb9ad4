//! A tour of aplex, mirroring Python aplex's quickstart: submit, map with a timeout, await a
//! handle inside `block_on`, choose a balancer, exit gracefully. Each step prints what happened
//! in plain words.
//!
//! Run it with `cargo run --release --example tour`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use aplex::balance::{KeyAffinity, LeastLoaded, Load};
use aplex::time::sleep;
use aplex::{block_on, Error, ThreadPool};

/// Stands in for the quickstart's "fetch a page": an async work that waits a little.
async fn demo(id: u64) -> String {
    sleep(demo_time(id)).await;
    format!(
        "work {id} done on {}",
        std::thread::current().name().unwrap_or("?")
    )
}

/// How long `demo(id)` waits: 20 to 24 ms.
fn demo_time(id: u64) -> Duration {
    Duration::from_millis(20 + id % 5)
}

/// A duration as a newcomer reads it: "0.21 s".
fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Each worker's load in words: "worker 0: 1 work running, worker 1: idle".
fn loads_in_words(loads: &[Load]) -> String {
    let works = |n: usize| {
        if n == 1 {
            "1 work".to_string()
        } else {
            format!("{n} works")
        }
    };
    loads
        .iter()
        .enumerate()
        .map(|(i, load)| match (load.running, load.queued) {
            (0, 0) => format!("worker {i}: idle"),
            (r, 0) => format!("worker {i}: {} running", works(r)),
            (0, q) => format!("worker {i}: {} waiting", works(q)),
            (r, q) => format!("worker {i}: {} running, {q} waiting", works(r)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A work's outcome in words: the value, or what ended it.
fn outcome<T: std::fmt::Display>(result: &Result<T, Error>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(Error::TimedOut) => "timed out".to_string(),
        Err(Error::Cancelled) => "cancelled".to_string(),
        Err(e) => format!("failed ({e})"),
    }
}

fn main() {
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(100)
        .build()
        .expect("the pool starts");
    println!("A pool of 2 worker threads; each runs up to 100 async works at once.\n");

    // 1. Plain closures run on the workers, in parallel.
    let start = Instant::now();
    let naps: Vec<_> = (0..4)
        .map(|_| pool.submit(|| std::thread::sleep(Duration::from_millis(100))))
        .collect();
    let done = naps
        .into_iter()
        .map(|h| h.wait())
        .filter(Result::is_ok)
        .count();
    println!(
        "1. {done} plain closures of 100 ms each took {} on 2 workers \
         (one after another they would take 0.40 s).",
        secs(start.elapsed())
    );

    // 2. Submit an async work and block on its result.
    let start = Instant::now();
    let handle = pool.spawn(|| demo(1));
    let said = handle.wait().unwrap_or_else(|e| format!("failed ({e})"));
    println!(
        "2. One async work said \"{said}\" after {}.",
        secs(start.elapsed())
    );

    // 3. A hundred async works at once: one worker runs many of them concurrently, because a
    //    work that waits (here, on a timer) leaves its thread to the others.
    let start = Instant::now();
    let handles: Vec<_> = (0..100).map(|i| pool.spawn(move || demo(i))).collect();
    let done = handles
        .into_iter()
        .map(|h| h.wait())
        .filter(Result::is_ok)
        .count();
    let one_by_one: Duration = (0..100).map(demo_time).sum();
    println!(
        "3. {done} async works of 20-24 ms each took {} on 2 workers \
         (one after another they would take {}).",
        secs(start.elapsed()),
        secs(one_by_one)
    );

    // 4. The future need not be Send: Rc and RefCell are fine inside a work.
    let handle = pool.spawn(|| async {
        let shared = Rc::new(std::cell::RefCell::new(Vec::new()));
        for i in 0..3 {
            shared.borrow_mut().push(i);
            aplex::yield_now().await;
        }
        let n = shared.borrow().len();
        n
    });
    println!(
        "4. A work that holds an Rc (its future never leaves its worker) counted to {}.",
        outcome(&handle.wait())
    );

    // 5. map, in input order, with a timeout for the whole map: the slow tail is cancelled.
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
    let words: Vec<String> = results.iter().map(outcome).collect();
    let left = match 5 - results.len() {
        1 => "the item left".to_string(),
        n => format!("the {n} items left"),
    };
    println!(
        "5. map over naps of 5, 5, 5, 1000 and 5 ms, with 200 ms for the whole map, gave in input \
         order: {}; then it ended, cancelling {left} ({} in all).",
        words.join(", "),
        secs(start.elapsed())
    );

    // 6. Await handles inside block_on (or any other executor).
    let (a, b) = block_on(async {
        let a = pool.submit(|| 20);
        let b = pool.spawn(|| async { 22 });
        (a.await, b.await)
    });
    println!(
        "6. Inside block_on, awaited a closure's result ({}) and an async work's ({}): \
         together {}.",
        outcome(&a),
        outcome(&b),
        a.unwrap_or(0) + b.unwrap_or(0)
    );

    // 7. Cancel: a running async work is dropped at its next await.
    let slow = pool.spawn(|| async {
        sleep(Duration::from_secs(60)).await;
        "never"
    });
    let start = Instant::now();
    let cancelled = slow.cancel();
    println!(
        "7. Cancelled a work that sleeps for 60 s: cancel() said {cancelled}, its handle says \
         \"{}\" ({} later, not 60 s).",
        outcome(&slow.wait()),
        secs(start.elapsed())
    );

    // 8. Balancers: key affinity keeps a key on one worker, so works with the same key run in
    //    order; least-loaded steers around busy workers.
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
    let same = workers.windows(2).all(|w| w[0] == w[1]);
    println!(
        "8. Key affinity: 4 works with key 42 ran on {} ({}).",
        workers.first().map_or("?", String::as_str),
        if same {
            "all on that one worker"
        } else {
            "on several workers"
        }
    );
    let least = ThreadPool::builder()
        .workers(2)
        .balancer(LeastLoaded::new())
        .build()
        .expect("the pool starts");
    let busy = least.submit(|| std::thread::sleep(Duration::from_millis(100)));
    let loads = least.detailed_loads();
    let elsewhere = least.submit(|| std::thread::current().name().unwrap_or("?").to_string());
    println!(
        "   Least-loaded: the loads read \"{}\", so the next work went to {}.",
        loads_in_words(&loads),
        elsewhere.wait().unwrap_or_default()
    );
    let _ = busy.wait();

    // 9. An async work that talks to a local TCP server (the quickstart fetches a URL; there is
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
        "9. 20 async works fetched {} pages over TCP from a server that is itself a work on \
         the same pool, in {}; the first said \"{}\".",
        pages.len(),
        secs(start.elapsed()),
        pages.first().map_or("", String::as_str)
    );
    println!(
        "   Stopped the server by cancelling its work: cancel() said {}.",
        server.cancel()
    );

    // 10. Graceful exit: dropping a pool finishes what it accepted and joins its threads.
    let last = pool.spawn(|| async {
        sleep(Duration::from_millis(30)).await;
        "finished before the pool went away"
    });
    drop(pool);
    println!(
        "10. Dropped the pool while a work still ran; the drop waited, and the work said \"{}\".",
        outcome(&last.wait())
    );
}
