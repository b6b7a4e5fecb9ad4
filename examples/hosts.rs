//! A process pool across hosts, over `ssh`: one worker per host, what each slot says about
//! itself, a round trip and a `map`.
//!
//! ```text
//! cargo run --release --example hosts -- HOST [HOST…]   # over ssh: this binary at the same path on each host
//! cargo run --release --example hosts -- --local        # direct vs `sh -c exec` vs a pipe hop, no ssh
//! ```
//!
//! Over ssh it uses [`ProcessPoolBuilder::hosts`](aplex::ProcessPoolBuilder::hosts): plain
//! `ssh` from the `PATH`, so `~/.ssh/config` (or an `ssh` wrapper earlier on the `PATH`) sets
//! ports and keys. It prints `OK` last when every check passed.

use std::process::Command;
use std::time::{Duration, Instant};

use aplex::{Error, ProcessPool, ProcessPoolBuilder, SlotState};

aplex::works! {
    /// The works this program offers to its workers.
    pub mod works {
        /// A work that costs nothing: the round trip is all there is.
        pub fn double(x: u64) -> u64 { x * 2 }
        /// Where the worker runs: its host name (as its hello says it) and pid.
        pub fn whoami(_unit: ()) -> (String, u32) {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            (host.trim().to_string(), std::process::id())
        }
        /// Ends its worker, as a crash would.
        pub fn crash(code: i32) { std::process::exit(code) }
    }
}

/// Round trips timed one after the other, and the map's items.
const CALLS: usize = 2_000;
const ITEMS: u64 = 200_000;
const CHUNK: usize = 256;

fn main() -> Result<(), Error> {
    // First line: launched as a worker (`--aplex-worker`, or the environment marker), this
    // process serves here and never returns.
    aplex::serve_if_worker(&works::WORKS);

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: hosts HOST [HOST…] | hosts --local");
        std::process::exit(2);
    }
    if args[0] == "--local" {
        return local();
    }
    let pool = ProcessPool::builder()
        .hosts(args.iter().map(String::as_str), 1)
        .build(&works::WORKS)?;
    for slot in pool.slots() {
        println!(
            "slot {} on {:?}: worker pid {:?}, ssh pid {:?}, {:?}",
            slot.index, slot.host, slot.pid, slot.launcher_pid, slot.state
        );
        assert_eq!(slot.state, SlotState::Ready);
        assert!(slot.pid.is_some() && slot.host.is_some());
    }
    let (_, pid) = pool.call(&works::whoami, ()).wait()?;
    assert!(pool.slots().iter().any(|s| s.pid == Some(pid)));
    measure("over ssh", &pool)?;
    let completed: u64 = pool.slots().iter().map(|s| s.completed).sum();
    assert!(completed > ITEMS);

    // A remote worker dies: its work ends WorkerLost with the slot and host, and the slot's
    // own launcher starts a replacement on the same host.
    match pool.call(&works::crash, 3).wait() {
        Err(Error::WorkerLost(why)) => println!("lost, as expected: {why}"),
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.slots().iter().map(|s| s.restarts).sum::<u64>() < 1
        || pool.slots().iter().any(|s| s.state != SlotState::Ready)
    {
        assert!(
            Instant::now() < deadline,
            "no replacement: {:?}",
            pool.slots()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pool.call(&works::double, 21).wait()?, 42);
    println!("OK");
    Ok(())
}

/// Direct workers, workers behind `sh -c 'exec …'` (no hop), and behind `cat | … | cat`
/// (a pipe hop each way, as a relay such as ssh adds).
fn local() -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    let quoted = format!("'{}'", exe.display());
    let builders: [(&str, ProcessPoolBuilder); 3] = [
        ("direct", ProcessPool::builder()),
        (
            "sh -c exec (no hop)",
            ProcessPool::builder().command(sh(&format!("exec {quoted}"))),
        ),
        (
            "cat | worker | cat (a hop each way)",
            ProcessPool::builder().command(sh(&format!("cat | {quoted} | cat"))),
        ),
    ];
    for (name, builder) in builders {
        let pool = builder.workers(2).build(&works::WORKS)?;
        measure(name, &pool)?;
    }
    println!("OK");
    Ok(())
}

fn sh(script: &str) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script);
    sh
}

/// Prints the median of `CALLS` sequential round trips, and the items per second of a map of
/// `ITEMS` in chunks of `CHUNK`.
fn measure(name: &str, pool: &ProcessPool) -> Result<(), Error> {
    for i in 0..100 {
        pool.call(&works::double, i).wait()?; // warm up
    }
    let mut times: Vec<Duration> = (0..CALLS as u64)
        .map(|i| {
            let start = Instant::now();
            let out = pool.call(&works::double, i).wait();
            assert_eq!(out, Ok(2 * i));
            start.elapsed()
        })
        .collect();
    times.sort();
    let start = Instant::now();
    let mut sum = 0u64;
    for out in pool.map(&works::double, 0..ITEMS).chunk_size(CHUNK) {
        sum += out?;
    }
    let took = start.elapsed();
    assert_eq!(sum, ITEMS * (ITEMS - 1));
    println!(
        "{name}: round trip p50 {:?}, map (chunk {CHUNK}) {:.2} M items/s",
        times[CALLS / 2],
        ITEMS as f64 / took.as_secs_f64() / 1e6
    );
    Ok(())
}
