//! ProcessPool benchmarks, with this binary as its own worker. Prints `name value unit` lines.
//!
//! `cargo bench --bench process_pool` (all lines), or `... -- map` (the lines of one group:
//! `round_trip`, `calls`, `map`, `pipe_hop`, `start`).

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

/// Makes this binary a minimal pipe worker (the baseline): no aplex, 8-byte numbers in,
/// doubled numbers out, written as soon as a read's worth is answered.
const PIPE_WORKER_ENV: &str = "APLEX_BENCH_PIPE_WORKER";

/// The minimal pipe worker: reads whatever arrived, answers every whole number in it with one
/// write.
fn pipe_worker() {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let n = input.read(&mut buf[have..]).unwrap();
        if n == 0 {
            return;
        }
        have += n;
        let whole = have / 8 * 8;
        out.clear();
        for x in buf[..whole].chunks_exact(8) {
            let x = u64::from_le_bytes(x.try_into().unwrap());
            out.extend_from_slice(&(x * 2).to_le_bytes());
        }
        output.write_all(&out).unwrap();
        output.flush().unwrap();
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
}

/// Makes this binary a pipe worker of aplex's thread shape (the floor of that shape): an input
/// thread reads the pipe and hands each read to the thread that computes and answers, as a
/// worker's input thread hands frames to its executor.
const THREADED_WORKER_ENV: &str = "APLEX_BENCH_THREADED_WORKER";

/// The pipe worker of aplex's thread shape: see [`THREADED_WORKER_ENV`].
fn threaded_pipe_worker() {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            let n = input.read(&mut buf).unwrap();
            if n == 0 {
                std::process::exit(0);
            }
            buf.truncate(n);
            tx.send(buf).unwrap();
        }
    });
    let mut output = std::io::stdout().lock();
    let mut have = Vec::new();
    let mut out = Vec::with_capacity(64 * 1024);
    for buf in rx {
        have.extend_from_slice(&buf);
        let whole = have.len() / 8 * 8;
        out.clear();
        for x in have[..whole].chunks_exact(8) {
            let x = u64::from_le_bytes(x.try_into().unwrap());
            out.extend_from_slice(&(x * 2).to_le_bytes());
        }
        output.write_all(&out).unwrap();
        output.flush().unwrap();
        have.drain(..whole);
    }
}

/// A minimal pipe-framed process pool: `n` children of this binary as pipe workers, calls
/// dealt round-robin, one write per call (or per chunk), one reader thread per child.
struct PipePool {
    children: Vec<std::process::Child>,
    inputs: Vec<std::process::ChildStdin>,
    outputs: Vec<Option<std::process::ChildStdout>>,
}

impl PipePool {
    fn start(n: usize) -> PipePool {
        PipePool::start_as(n, PIPE_WORKER_ENV)
    }

    /// `n` children of this binary as the pipe workers that `role` (an environment marker)
    /// makes them.
    fn start_as(n: usize, role: &str) -> PipePool {
        let exe = std::env::current_exe().unwrap();
        let mut children = Vec::new();
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let mut child = Command::new(&exe)
                .env(role, "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            inputs.push(child.stdin.take().unwrap());
            outputs.push(child.stdout.take());
            children.push(child);
        }
        PipePool {
            children,
            inputs,
            outputs,
        }
    }

    /// Sends `0..n` in pieces of `chunk` numbers (one write each), dealt round-robin, and reads
    /// every answer back; checks them.
    fn run(&mut self, n: u64, chunk: u64) {
        let workers = self.inputs.len() as u64;
        let readers: Vec<_> = self
            .outputs
            .iter_mut()
            .enumerate()
            .map(|(w, out)| {
                let mut out = out.take().unwrap();
                // The numbers this worker gets: pieces w, w + workers, ...
                let mine: u64 = (0..n.div_ceil(chunk))
                    .filter(|p| p % workers == w as u64)
                    .map(|p| (n - p * chunk).min(chunk))
                    .sum();
                std::thread::spawn(move || {
                    let mut back = vec![0u8; (mine * 8) as usize];
                    out.read_exact(&mut back).unwrap();
                    out
                })
            })
            .collect();
        let mut frame = Vec::with_capacity((chunk * 8) as usize);
        for (p, start) in (0..n).step_by(chunk as usize).enumerate() {
            frame.clear();
            for x in start..(start + chunk).min(n) {
                frame.extend_from_slice(&x.to_le_bytes());
            }
            self.inputs[p % workers as usize].write_all(&frame).unwrap();
        }
        for (slot, r) in self.outputs.iter_mut().zip(readers) {
            *slot = Some(r.join().unwrap());
        }
    }

    /// Like [`run`](PipePool::run), in aplex's thread shape (the children being threaded
    /// workers): each child's reader thread hands every read to the caller through a channel,
    /// and the caller takes in the answers as they come while it writes, as a map's caller
    /// does, then the rest; checks them.
    fn run_handed(&mut self, n: u64, chunk: u64) {
        let workers = self.inputs.len();
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<u8>)>();
        let readers: Vec<_> = self
            .outputs
            .iter_mut()
            .enumerate()
            .map(|(w, out)| {
                let mut out = out.take().unwrap();
                let tx = tx.clone();
                std::thread::spawn(move || loop {
                    let mut buf = vec![0u8; 64 * 1024];
                    let got = out.read(&mut buf).unwrap();
                    buf.truncate(got);
                    if got == 0 || tx.send((w, buf)).is_err() {
                        return out;
                    }
                })
            })
            .collect();
        drop(tx);
        // Each worker's answers in its order; a number is checked when its 8 bytes are in.
        let mut partial = vec![Vec::new(); workers];
        let mut answered = 0u64;
        let mut take = |(w, buf): (usize, Vec<u8>), answered: &mut u64| {
            let have: &mut Vec<u8> = &mut partial[w];
            have.extend_from_slice(&buf);
            let whole = have.len() / 8 * 8;
            for x in have[..whole].chunks_exact(8) {
                std::hint::black_box(u64::from_le_bytes(x.try_into().unwrap()));
                *answered += 1;
            }
            have.drain(..whole);
        };
        let mut frame = Vec::with_capacity((chunk * 8) as usize);
        for (p, start) in (0..n).step_by(chunk as usize).enumerate() {
            frame.clear();
            for x in start..(start + chunk).min(n) {
                frame.extend_from_slice(&x.to_le_bytes());
            }
            self.inputs[p % workers].write_all(&frame).unwrap();
            while let Ok(read) = rx.try_recv() {
                take(read, &mut answered);
            }
        }
        while answered < n {
            take(rx.recv().unwrap(), &mut answered);
        }
        // Close the inputs so the children exit and the readers see their end.
        let children = std::mem::take(&mut self.children);
        self.inputs.clear();
        for r in readers {
            r.join().unwrap();
        }
        for mut c in children {
            c.wait().unwrap();
        }
    }

    fn stop(self) {
        drop(self.inputs);
        for mut c in self.children {
            c.wait().unwrap();
        }
    }
}

/// The baseline's calls per second: `n` calls of one number each, one write per call.
fn pipe_pool_calls_per_second(n: u64) -> f64 {
    let mut pool = PipePool::start(2);
    let t = Instant::now();
    pool.run(n, 1);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    pool.stop();
    rate
}

/// The baseline's map: `n` numbers in chunks of 256, one write per chunk.
fn pipe_pool_map_per_second(n: u64) -> f64 {
    let mut pool = PipePool::start(2);
    let t = Instant::now();
    pool.run(n, 256);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    pool.stop();
    rate
}

/// The floor of aplex's thread shape for calls: `n` calls of one number each, one write per
/// call, to threaded workers, the answers handed to the caller through a channel.
fn handed_pool_calls_per_second(n: u64) -> f64 {
    let mut pool = PipePool::start_as(2, THREADED_WORKER_ENV);
    let t = Instant::now();
    pool.run_handed(n, 1);
    n as f64 / t.elapsed().as_secs_f64()
}

/// The floor of aplex's thread shape for a map: `n` numbers in chunks of 256, one write per
/// chunk, to threaded workers, the answers handed to the caller through a channel.
fn handed_pool_map_per_second(n: u64) -> f64 {
    let mut pool = PipePool::start_as(2, THREADED_WORKER_ENV);
    let t = Instant::now();
    pool.run_handed(n, 256);
    n as f64 / t.elapsed().as_secs_f64()
}

/// The baseline's start: two pipe workers started, one number answered.
fn pipe_pool_start_to_first_result() -> f64 {
    let t = Instant::now();
    let mut pool = PipePool::start(2);
    pool.run(1, 1);
    let took = t.elapsed().as_secs_f64() * 1e3;
    pool.stop();
    took
}

/// The floor of a pool whose start waits for every worker (as `build` does, for their
/// hellos): two pipe workers started, and one number answered by each.
fn pipe_pool_start_to_every_worker_answered() -> f64 {
    let t = Instant::now();
    let mut pool = PipePool::start(2);
    pool.run(2, 1);
    let took = t.elapsed().as_secs_f64() * 1e3;
    pool.stop();
    took
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

/// The groups of lines a run prints: all, or those whose name contains the first argument
/// (`cargo bench --bench process_pool -- map`).
fn wanted(group: &str) -> bool {
    match std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        Some(filter) => group.contains(&filter),
        None => true,
    }
}

/// Medians of `runs` runs of `a` and of `b`, the two interleaved (a, b, a, b, ...), so that a
/// change of the machine's load during the run weighs on both alike.
fn paired(runs: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> (f64, f64) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        xs.push(a());
        ys.push(b());
    }
    (median(xs), median(ys))
}

/// Medians of `runs` runs of each of `fs`, interleaved (a, b, c, a, b, c, ...), as
/// [`paired`] does for two.
fn interleaved<const N: usize>(runs: usize, fs: [&mut dyn FnMut() -> f64; N]) -> [f64; N] {
    let mut samples: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let mut fs = fs;
    for _ in 0..runs {
        for (f, xs) in fs.iter_mut().zip(&mut samples) {
            xs.push(f());
        }
    }
    samples.map(median)
}

fn main() {
    if std::env::var_os(PIPE_WORKER_ENV).is_some() {
        return pipe_worker();
    }
    if std::env::var_os(THREADED_WORKER_ENV).is_some() {
        return threaded_pipe_worker();
    }
    aplex::serve_if_worker(&works::WORKS);
    let runs = 5;
    if wanted("round_trip") {
        let pool = ProcessPool::builder()
            .workers(2)
            .build(&works::WORKS)
            .unwrap();
        let (rt, floor) = paired(runs, || round_trip(&pool), pipe_echo_floor);
        println!("pipe_echo_floor_median {floor:.1} us");
        println!("process_round_trip_median {rt:.1} us");
        println!("process_round_trip_over_floor {:.2} x", rt / floor);
        println!("pipe_floor_over_process_round_trip {:.2} x", floor / rt);
    }
    if wanted("calls") {
        let pool = ProcessPool::builder()
            .workers(2)
            .build(&works::WORKS)
            .unwrap();
        let calls = median(
            (0..runs)
                .map(|_| calls_per_second(&pool, 100_000))
                .collect(),
        );
        println!("process_calls_100k_2_workers {calls:.0} works/s");
        let [calls_20k, pipe_calls, handed_calls] = interleaved(
            runs,
            [
                &mut || calls_per_second(&pool, 20_000),
                &mut || pipe_pool_calls_per_second(20_000),
                &mut || handed_pool_calls_per_second(20_000),
            ],
        );
        println!("process_calls_20k_2_workers {calls_20k:.0} works/s");
        println!("pipe_pool_calls_20k_2_workers {pipe_calls:.0} works/s");
        println!(
            "process_calls_20k_vs_pipe_pool {:.2} x",
            calls_20k / pipe_calls
        );
        // The floor of aplex's thread shape: the same pipes with a worker input thread and a
        // reader that hands answers to the caller (the hops a call crosses).
        println!("handed_pool_calls_20k_2_workers {handed_calls:.0} works/s");
        println!(
            "handed_pool_calls_20k_vs_pipe_pool {:.2} x",
            handed_calls / pipe_calls
        );
        println!(
            "process_calls_20k_vs_handed_pool {:.2} x",
            calls_20k / handed_calls
        );
    }
    if wanted("map") {
        let pool = ProcessPool::builder()
            .workers(2)
            .build(&works::WORKS)
            .unwrap();
        let [map, pipe_map, handed_map] = interleaved(
            runs,
            [
                &mut || map_per_second(&pool, 1_000_000),
                &mut || pipe_pool_map_per_second(1_000_000),
                &mut || handed_pool_map_per_second(1_000_000),
            ],
        );
        println!("process_map_chunk_256_2_workers {map:.0} works/s");
        println!("pipe_pool_map_chunk_256_2_workers {pipe_map:.0} works/s");
        println!("process_map_chunk_256_vs_pipe_pool {:.2} x", map / pipe_map);
        println!("handed_pool_map_chunk_256_2_workers {handed_map:.0} works/s");
        println!(
            "handed_pool_map_chunk_256_vs_pipe_pool {:.2} x",
            handed_map / pipe_map
        );
        println!(
            "process_map_chunk_256_vs_handed_pool {:.2} x",
            map / handed_map
        );
    }
    if wanted("pipe_hop") {
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
    }
    if wanted("start") {
        std::thread::sleep(Duration::from_millis(50));
        let (start, pipe_start) = paired(
            2 * runs + 1,
            start_to_first_result,
            pipe_pool_start_to_first_result,
        );
        println!("process_pool_start_to_first_result {start:.2} ms");
        println!("pipe_pool_start_to_first_result {pipe_start:.2} ms");
        println!("process_start_vs_pipe_pool {:.2} x", start / pipe_start);
        let (every, pipe_start) = paired(
            2 * runs + 1,
            pipe_pool_start_to_every_worker_answered,
            pipe_pool_start_to_first_result,
        );
        println!("pipe_pool_start_to_every_worker_answered {every:.2} ms");
        println!(
            "pipe_pool_every_worker_vs_first_result {:.2} x",
            every / pipe_start
        );
    }
}
