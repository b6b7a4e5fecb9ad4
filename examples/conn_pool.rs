//! A `ConnectionPool` of TCP connections to a small echo server this example starts itself,
//! shared by 100 concurrent tasks with `max_size` 8.
//!
//! ```sh
//! cargo run --release --example conn_pool
//! ```

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplex::io::{TcpListener, TcpStream};
use aplex::{block_on, spawn_local, ConnectionPool};

const TASKS: usize = 100;
const REQUESTS_PER_TASK: usize = 20;
const MAX_SIZE: usize = 8;

/// Live connections now, and the most ever open at once (kept by the factory and cleanup).
#[derive(Default)]
struct Gauge {
    live: AtomicUsize,
    peak: AtomicUsize,
    opened: AtomicUsize,
}

/// Echoes every byte back on each accepted connection, one task per connection.
async fn echo_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        spawn_local(async move {
            let mut buf = [0u8; 1024];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
        .detach();
    }
}

fn main() -> io::Result<()> {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr: SocketAddr = listener.local_addr()?;
        let _server = spawn_local(echo_server(listener));

        let gauge = Arc::new(Gauge::default());
        let (opening, cleaning) = (Arc::clone(&gauge), Arc::clone(&gauge));
        let pool = ConnectionPool::builder_async(move || {
            let gauge = Arc::clone(&opening);
            async move {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                gauge.opened.fetch_add(1, SeqCst);
                let live = gauge.live.fetch_add(1, SeqCst) + 1;
                gauge.peak.fetch_max(live, SeqCst);
                Ok(stream)
            }
        })
        .max_size(MAX_SIZE)
        .max_life(Duration::from_secs(30))
        .health_check(|stream: &TcpStream| stream.peer_addr().is_ok())
        .cleanup(move |stream: TcpStream| {
            let _ = stream.shutdown(Shutdown::Both);
            cleaning.live.fetch_sub(1, SeqCst);
        })
        .build_async()
        .await?;

        let start = Instant::now();
        let waits = Arc::new(AtomicUsize::new(0)); // total nanoseconds spent waiting in acquire
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (pool, waits) = (pool.clone(), Arc::clone(&waits));
                spawn_local(async move {
                    for request in 0..REQUESTS_PER_TASK {
                        let asked = Instant::now();
                        let mut conn = pool.acquire().await.map_err(io::Error::other)?;
                        waits.fetch_add(asked.elapsed().as_nanos() as usize, SeqCst);
                        let message = format!("task {task:3} request {request:2}\n");
                        conn.write_all(message.as_bytes()).await?;
                        let mut echoed = vec![0u8; message.len()];
                        conn.read_exact(&mut echoed).await?;
                        assert_eq!(echoed, message.as_bytes());
                    }
                    Ok::<(), io::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        let elapsed = start.elapsed();

        let requests = TASKS * REQUESTS_PER_TASK;
        let stats = pool.stats();
        println!("{TASKS} tasks x {REQUESTS_PER_TASK} echo round trips over a pool of {MAX_SIZE}");
        println!(
            "  {requests} round trips in {:.1} ms ({:.0} per second)",
            elapsed.as_secs_f64() * 1e3,
            requests as f64 / elapsed.as_secs_f64()
        );
        println!(
            "  mean wait in acquire: {:.1} us",
            waits.load(SeqCst) as f64 / requests as f64 / 1e3
        );
        println!(
            "  connections opened: {}, peak live: {} (max_size {MAX_SIZE})",
            gauge.opened.load(SeqCst),
            gauge.peak.load(SeqCst)
        );
        println!(
            "  stats: size {}, available {}, in use {}, waiters {}",
            stats.size, stats.available, stats.in_use, stats.waiters
        );
        assert!(gauge.peak.load(SeqCst) <= MAX_SIZE);

        pool.close();
        println!(
            "  after close: {} live connections",
            gauge.live.load(SeqCst)
        );
        Ok(())
    })
}
