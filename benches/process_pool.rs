//! ProcessPool benchmarks, with this binary as its own worker. Prints `name value unit` lines.
//!
//! `cargo bench --bench process_pool`

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aplex::ProcessPool;

aplex::works! {
    /// The works of this bench binary.
    pub mod works {
        pub fn double(x: u64) -> u64 { x * 2 }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The floor: 16-byte frames written to a `cat` child and read back, one at a time.
fn pipe_echo_floor() -> f64 {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let frame = [7u8; 16];
    let mut back = [0u8; 16];
    let mut samples = Vec::new();
    for i in 0..20_000 {
        let t = Instant::now();
        input.write_all(&frame).unwrap();
        output.read_exact(&mut back).unwrap();
        if i >= 1000 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(input);
    child.wait().unwrap();
    median(samples)
}

fn round_trip(pool: &ProcessPool) -> f64 {
    let mut samples = Vec::new();
    for i in 0..20_000u64 {
        let t = Instant::now();
        assert_eq!(pool.call(&works::double, i).wait(), Ok(2 * i));
        if i >= 1000 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    median(samples)
}

fn calls_per_second(pool: &ProcessPool, n: u64) -> f64 {
    let t = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| pool.call(&works::double, i)).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as u64));
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn map_per_second(pool: &ProcessPool, n: u64) -> f64 {
    let t = Instant::now();
    let mut count = 0;
    for r in pool.map(&works::double, 0..n).chunk_size(256) {
        r.unwrap();
        count += 1;
    }
    assert_eq!(count, n);
    n as f64 / t.elapsed().as_secs_f64()
}

fn start_to_first_result() -> f64 {
    let t = Instant::now();
    let pool = ProcessPool::builder()
        .workers(2)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
    let took = t.elapsed().as_secs_f64() * 1e3;
    drop(pool);
    took
}

fn main() {
    aplex::serve_if_worker(&works::WORKS);
    let runs = 5;
    let floor = median((0..runs).map(|_| pipe_echo_floor()).collect());
    println!("pipe_echo_floor_median {floor:.1} us");
    let pool = ProcessPool::builder()
        .workers(2)
        .build(&works::WORKS)
        .unwrap();
    let rt = median((0..runs).map(|_| round_trip(&pool)).collect());
    println!("process_round_trip_median {rt:.1} us");
    println!("process_round_trip_over_floor {:.2} x", rt / floor);
    let calls = median(
        (0..runs)
            .map(|_| calls_per_second(&pool, 100_000))
            .collect(),
    );
    println!("process_calls_100k_2_workers {calls:.0} works/s");
    let map = median(
        (0..runs)
            .map(|_| map_per_second(&pool, 1_000_000))
            .collect(),
    );
    println!("process_map_chunk_256_2_workers {map:.0} works/s");
    drop(pool);
    // Behind a launcher that adds a pipe hop each way (as a relay such as ssh does).
    let exe = std::env::current_exe().unwrap();
    let mut hop = std::process::Command::new("sh");
    hop.arg("-c")
        .arg(format!("cat | '{}' | cat", exe.display()));
    let pool = ProcessPool::builder()
        .workers(2)
        .command(hop)
        .build(&works::WORKS)
        .unwrap();
    let rt = median((0..runs).map(|_| round_trip(&pool)).collect());
    println!("process_round_trip_pipe_hop_median {rt:.1} us");
    let map = median(
        (0..runs)
            .map(|_| map_per_second(&pool, 1_000_000))
            .collect(),
    );
    println!("process_map_chunk_256_pipe_hop_2_workers {map:.0} works/s");
    drop(pool);
    std::thread::sleep(Duration::from_millis(50));
    let start = median((0..runs).map(|_| start_to_first_result()).collect());
    println!("process_pool_start_to_first_result {start:.2} ms");
}
