//! ProcessPool behaviour, with this test binary as its own worker (`harness = false`: the
//! libtest harness prints to stdout, which a worker's protocol needs).
//!
//! Each case is a plain function; `main` runs them in order and prints `N passed, N failed`
//! last, exiting non-zero on failure.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aplex::balance::KeyAffinity;
use aplex::{Error, ProcessPool};

#[path = "process_pool/batches.rs"]
mod batches;
#[path = "process_pool/hosts.rs"]
mod hosts;
#[path = "process_pool/shutdown.rs"]
mod shutdown;

aplex::works! {
    /// The works of this test binary.
    pub mod works {
        pub fn double(x: u64) -> u64 { x * 2 }
        pub fn echo_numbers(v: (u8, u16, u32, u64, u128, i8, i64, isize)) -> (u8, u16, u32, u64, u128, i8, i64, isize) { v }
        pub fn echo_misc(v: (f32, f64, bool, char, (), String, Duration, [u8; 3])) -> (f32, f64, bool, char, (), String, Duration, [u8; 3]) { v }
        pub fn echo_containers(v: (Vec<String>, Option<i16>, Result<u8, String>, Box<u32>, HashMap<String, u32>, BTreeMap<u8, Vec<u8>>)) -> (Vec<String>, Option<i16>, Result<u8, String>, Box<u32>, HashMap<String, u32>, BTreeMap<u8, Vec<u8>>) { v }
        pub fn echo_string(s: String) -> String {
            s
        }
        pub fn echo_bytes(v: Vec<u8>) -> Vec<u8> { v }
        pub fn make_string(n: usize) -> String { "x".repeat(n) }
        pub fn boom(x: u32) -> u32 { panic!("boom {x}") }
        pub fn shout(s: String) -> String {
            println!("{s}");
            print!("no newline");
            std::io::stdout().flush().unwrap();
            s
        }
        pub async fn nap(ms: u64) -> u64 {
            aplex::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
        pub fn block(ms: u64) -> u64 {
            std::thread::sleep(Duration::from_millis(ms));
            ms
        }
        pub fn exit_now(code: i32) { std::process::exit(code) }
        pub fn garbage(_x: ()) { write_garbage() }
        pub fn pid(_x: ()) -> u32 { std::process::id() }
        pub fn unit(_x: ()) -> u8 { 1 }
        /// Marks that it started (creates `flag`), then blocks for 60 s.
        pub fn flag_then_block(flag: String) {
            std::fs::write(flag, b"").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        pub fn env_var(name: String) -> Option<String> { std::env::var(name).ok() }
        /// Logs `item` to `dir/log`, and returns it doubled. On host b, while `dir/hold`
        /// exists, marks that it started (`dir/held`) and holds.
        pub fn record(arg: (String, u64)) -> u64 {
            let (dir, item) = arg;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("{dir}/log"))
                .unwrap();
            log.write_all(format!("{item}\n").as_bytes()).unwrap();
            let hold = format!("{dir}/hold");
            if std::env::var("HOSTLABEL").as_deref() == Ok("b") && std::fs::exists(&hold).unwrap() {
                std::fs::write(format!("{dir}/held"), b"").unwrap();
                while std::fs::exists(&hold).unwrap() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            item * 2
        }
        pub fn shell(cmd: String) -> i32 {
            Command::new("sh").arg("-c").arg(cmd).status().map_or(-1, |s| s.code().unwrap_or(-1))
        }
        /// Doubles `item`, unless it is `victim`: then the worker exits with status 3.
        pub fn die_at(arg: (u64, u64)) -> u64 {
            let (item, victim) = arg;
            if item == victim {
                std::process::exit(3);
            }
            item * 2
        }
    }
}

/// Writes bytes that are not a frame to this worker's protocol stream: the write-only pipe
/// among fds 3+ (the protocol's private output).
fn write_garbage() {
    for fd in 3..64 {
        let path = format!("/proc/self/fd/{fd}");
        let is_pipe = std::fs::read_link(&path)
            .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"));
        if is_pipe && access_mode(fd) == Some(1) {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]).unwrap();
            return;
        }
    }
    panic!("no protocol pipe found");
}

/// `O_RDONLY` (0), `O_WRONLY` (1) or `O_RDWR` (2) for this process's `fd`.
fn access_mode(fd: i32) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok().map(|f| f & 3)
}

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(workers)
        .build(&works::WORKS)
        .unwrap()
}

fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses; a zombie is gone for our purpose.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

fn eventually(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lost(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::WorkerLost(why)) => why,
        other => panic!("expected WorkerLost, got {other:?}"),
    }
}

// ---- cases ----------------------------------------------------------------------------------

fn round_trip_of_every_wire_type() {
    let pool = pool(2);
    let numbers = (
        1u8,
        2u16,
        3u32,
        u64::MAX,
        u128::MAX - 5,
        -8i8,
        i64::MIN,
        -3isize,
    );
    assert_eq!(pool.call(&works::echo_numbers, numbers).wait(), Ok(numbers));
    let misc = (
        1.5f32,
        f64::MAX,
        true,
        'é',
        (),
        "héllo".to_string(),
        Duration::new(3, 7),
        [1, 2, 3],
    );
    assert_eq!(pool.call(&works::echo_misc, misc.clone()).wait(), Ok(misc));
    let containers = (
        vec!["a".to_string(), String::new()],
        Some(-4i16),
        Err::<u8, String>("no".to_string()),
        Box::new(9u32),
        HashMap::from([("k".to_string(), 1u32), ("l".to_string(), 2)]),
        BTreeMap::from([(1u8, vec![1u8, 2]), (2, vec![])]),
    );
    assert_eq!(
        pool.call(&works::echo_containers, containers.clone())
            .wait(),
        Ok(containers)
    );
    assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    assert_eq!(aplex::block_on(pool.call(&works::nap, 3)), Ok(3));
}

fn a_panic_is_panicked_and_the_worker_lives_on() {
    let pool = pool(1);
    let before = pool.worker_pids();
    assert_eq!(
        pool.call(&works::boom, 7).wait(),
        Err(Error::Panicked("boom 7".to_string()))
    );
    assert_eq!(pool.call(&works::double, 2).wait(), Ok(4));
    assert_eq!(pool.worker_pids(), before);
}

fn println_in_a_work_does_not_corrupt_the_stream() {
    let pool = pool(1);
    for i in 0..20 {
        let s = format!("line {i}");
        assert_eq!(pool.call(&works::shout, s.clone()).wait(), Ok(s));
    }
    assert_eq!(pool.call(&works::double, 5).wait(), Ok(10));
}

fn kill_9_a_worker_in_the_middle_of_50_works() {
    let pool = pool(2);
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    let handles: Vec<_> = (0..50).map(|_| pool.call(&works::nap, 300)).collect();
    std::thread::sleep(Duration::from_millis(50));
    let victim = pids[0];
    let killed = Instant::now();
    Command::new("kill")
        .arg("-9")
        .arg(victim.to_string())
        .status()
        .unwrap();
    let mut lost_count = 0;
    let mut ok_count = 0;
    for h in handles {
        match h.wait() {
            Ok(300) => ok_count += 1,
            Err(Error::WorkerLost(why)) => {
                assert!(why.contains("signal 9"), "reason: {why}");
                assert!(killed.elapsed() < Duration::from_secs(20));
                lost_count += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((lost_count, ok_count), (25, 25));
    eventually("a replacement worker", Duration::from_secs(3), || {
        pool.worker_pids().len() == 2
    });
    assert!(!pool.worker_pids().contains(&victim));
    let results: Vec<_> = (0..10).map(|i| pool.call(&works::double, i)).collect();
    for (i, h) in results.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as u64));
    }
    assert!(is_gone(victim));
}

fn garbage_on_the_protocol_stream_loses_the_worker() {
    let pool = pool(1);
    let why = lost(pool.call(&works::garbage, ()).wait());
    assert!(why.contains("malformed frame"), "reason: {why}");
    assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
}

fn a_worker_that_exits_0_at_once() {
    let pool = pool(1);
    let other = pool.call(&works::nap, 2000);
    let why = lost(pool.call(&works::exit_now, 0).wait());
    assert!(why.contains("exited with status 0"), "reason: {why}");
    assert!(matches!(other.wait(), Err(Error::WorkerLost(_))));
    assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
}

fn wrong_programs_and_missing_binaries_fail_build() {
    for program in ["/bin/cat", "/bin/true"] {
        // A deadline far away: the wrong program must be recognised, not timed out.
        let start = Instant::now();
        let err = ProcessPool::builder()
            .workers(1)
            .hello_timeout(Duration::from_secs(120))
            .command(Command::new(program))
            .build(&works::WORKS)
            .unwrap_err();
        assert!(matches!(err, Error::Wire(_)), "{program}: {err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{program} took {:?}",
            start.elapsed()
        );
    }
    let start = Instant::now();
    let err = ProcessPool::builder()
        .workers(1)
        .command(Command::new("/definitely/not/here"))
        .build(&works::WORKS)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

fn launching_through_sh_c() {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec '{}'", exe.display()));
    let pool = ProcessPool::builder()
        .workers(2)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 8).wait(), Ok(16));
    // Without exec, the shell stands between (the marker still passes through the env).
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("'{}'; exit $?", exe.display()));
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 9).wait(), Ok(18));
}

fn frames_over_the_maximum_are_typed_errors() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(4096)
        .build(&works::WORKS)
        .unwrap();
    match pool.call(&works::echo_bytes, vec![0; 5000]).wait() {
        Err(Error::Wire(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    match pool.call(&works::make_string, 5000).wait() {
        Err(Error::Remote(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        pool.call(&works::make_string, 10).wait().map(|s| s.len()),
        Ok(10)
    );
}

fn a_64_mib_round_trip_does_not_stall_other_workers() {
    let pool = ProcessPool::builder()
        .workers(2)
        .balancer(KeyAffinity::new())
        .build(&works::WORKS)
        .unwrap();
    // Find two hints that land on different workers.
    let on = |hint: u64| pool.call_with(hint, &works::pid, ()).wait().unwrap();
    let big_hint = 0;
    let small_hint = (1..100).find(|&h| on(h) != on(big_hint)).unwrap();
    // A String: its bytes are copied in bulk, so a debug build moves 64 MiB in well under a
    // second (a `Vec<u8>` is encoded byte by byte).
    let data: String = "0123456789abcdef".repeat(4 << 20);
    let big = pool.call_with(big_hint, &works::echo_string, data.clone());
    let start = Instant::now();
    // Small calls on the other worker come back while the big one is still in flight.
    let mut small_calls_during = 0;
    while !big.is_finished() && start.elapsed() < Duration::from_secs(60) {
        assert_eq!(pool.call_with(small_hint, &works::double, 1).wait(), Ok(2));
        if !big.is_finished() {
            small_calls_during += 1;
        }
    }
    assert_eq!(big.wait().map(|s| s == data), Ok(true));
    assert!(
        small_calls_during > 0,
        "every small call waited for the big one"
    );
}

fn cancel_a_running_async_work() {
    let pool = pool(1);
    let h = pool.call(&works::nap, 120_000);
    assert!(h.cancel());
    assert_eq!(h.wait(), Err(Error::Cancelled));
    // The worker dropped it: its slot is free and it serves the next works long before the
    // cancelled nap would have ended.
    let start = Instant::now();
    assert_eq!(pool.call(&works::nap, 1).wait(), Ok(1));
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(pool.loads(), vec![0]);
}

fn a_running_plain_work_cannot_be_cancelled_without_kill() {
    let pool = pool(1);
    let h = pool.call(&works::block, 200);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!h.cancel());
    assert_eq!(h.wait(), Ok(200));
}

fn kill_on_cancel_escalates_for_a_plain_work() {
    let pool = ProcessPool::builder()
        .workers(1)
        .kill_on_cancel(true)
        .build(&works::WORKS)
        .unwrap();
    let pid = pool.worker_pids()[0];
    let stuck = pool.call(&works::block, 60_000);
    let neighbour = pool.call(&works::nap, 60_000);
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    assert!(stuck.cancel());
    assert_eq!(stuck.wait(), Err(Error::Cancelled));
    let why = lost(neighbour.wait());
    assert!(why.contains("killed"), "{why}");
    assert!(start.elapsed() < Duration::from_secs(30)); // not the 60 s the works would take
    assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
    assert!(!pool.worker_pids().contains(&pid));
    eventually(
        "the killed worker is reaped",
        Duration::from_secs(2),
        || is_gone(pid),
    );
}

fn map_keeps_order_and_chunks() {
    let pool = pool(2);
    let out: Vec<u64> = pool
        .map(&works::double, 0..10_000)
        .chunk_size(256)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..10_000).map(|x| x * 2).collect::<Vec<_>>());
    let naps: Vec<_> = pool.map(&works::nap, [30, 1, 20, 2]).collect();
    assert_eq!(naps, vec![Ok(30), Ok(1), Ok(20), Ok(2)]);
    let mixed: Vec<_> = pool.map(&works::boom, [1, 2]).chunk_size(2).collect();
    assert_eq!(
        mixed,
        vec![
            Err(Error::Panicked("boom 1".into())),
            Err(Error::Panicked("boom 2".into()))
        ]
    );
}

/// The async `next` and the blocking `Iterator::next` yield the same items, for every chunk
/// size, with and without a timeout, and mixed on one map (the awaited map once gave none).
fn map_awaited_or_iterated_gives_every_item() {
    let pool = pool(2);
    for chunk in [1usize, 2, 3, 64, 1024] {
        for len in [0u64, 1, 10, 1500] {
            for timeout in [None, Some(Duration::from_secs(120)), Some(Duration::MAX)] {
                let expected: Vec<Result<u64, Error>> = (0..len).map(|x| Ok(x * 2)).collect();
                let make = || {
                    let map = pool.map(&works::double, 0..len).chunk_size(chunk);
                    match timeout {
                        Some(t) => map.timeout(t),
                        None => map,
                    }
                };
                let what = format!("chunk {chunk}, {len} items, timeout {timeout:?}");
                let iterated: Vec<_> = make().collect();
                assert_eq!(iterated, expected, "iterated: {what}");
                let mut map = make();
                let awaited = aplex::block_on(async {
                    let mut out = Vec::new();
                    while let Some(r) = map.next().await {
                        out.push(r);
                    }
                    out
                });
                assert_eq!(awaited, expected, "awaited: {what}");
                let mut map = make();
                let mut mixed = Vec::new();
                for i in 0.. {
                    let next = if i % 2 == 0 {
                        Iterator::next(&mut map)
                    } else {
                        aplex::block_on(map.next())
                    };
                    match next {
                        Some(r) => mixed.push(r),
                        None => break,
                    }
                }
                assert_eq!(mixed, expected, "mixed: {what}");
            }
        }
    }
}

fn map_timeout_cancels_the_rest() {
    let pool = pool(1);
    let start = Instant::now();
    let mut out = pool
        .map(&works::nap, [1, 120_000, 120_000])
        .timeout(Duration::from_secs(2));
    assert_eq!(Iterator::next(&mut out), Some(Ok(1)));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    assert!(start.elapsed() < Duration::from_secs(60)); // not the naps' 120 s
    drop(out);
    assert_eq!(pool.call(&works::nap, 1).wait(), Ok(1));
}

fn max_works_per_child_recycles_workers() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_works_per_child(5)
        .build(&works::WORKS)
        .unwrap();
    let pids: std::collections::HashSet<u32> = (0..12)
        .map(|_| pool.call(&works::pid, ()).wait().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
}

fn a_crash_loop_breaks_the_pool_but_one_crash_does_not() {
    let pool = pool(1);
    lost(pool.call(&works::exit_now, 3).wait());
    assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
    drop(pool);
    // Two slots; every worker after the first two dies before its hello. Slot 0 crash-loops
    // into Broken while slot 1 keeps serving every call; then slot 1 goes too, and calls
    // fail at once (or with the retry's death), never hang.
    let dir = temp_dir("crash-loop");
    let cmd = script(
        &dir,
        "launch",
        &format!(
            "if mkdir '{0}/a' 2>/dev/null || mkdir '{0}/b' 2>/dev/null; then exec \"$EXE\"; fi\nexit 3",
            dir.display()
        ),
    );
    let pool = ProcessPool::builder()
        .workers(2)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    use aplex::SlotState::{Broken, Ready};
    lost(pool.call_with(0, &works::exit_now, 3).wait()); // round-robin: slot 0
    eventually(
        "slot 0 broken, slot 1 ready",
        Duration::from_secs(10),
        || pool.slot_states() == [Broken, Ready],
    );
    for i in 0..10 {
        assert_eq!(pool.call(&works::double, i).wait(), Ok(2 * i));
    }
    lost(pool.call(&works::exit_now, 3).wait());
    eventually("both slots broken", Duration::from_secs(10), || {
        pool.slot_states() == [Broken, Broken]
    });
    let start = Instant::now();
    lost(pool.call(&works::double, 1).wait());
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(pool);
    let _ = std::fs::remove_dir_all(&dir);
}

fn calls_after_shutdown_are_shut_down() {
    let pool = pool(1);
    let running = pool.call(&works::nap, 50);
    pool.shutdown();
    assert_eq!(running.wait(), Ok(50)); // accepted work finishes
    assert_eq!(pool.call(&works::double, 1).wait(), Err(Error::ShutDown));
    let pool = self::pool(1);
    let running = pool.call(&works::nap, 10_000);
    pool.shutdown_now();
    assert_eq!(running.wait(), Err(Error::Cancelled));
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn a_hundred_pools_leave_no_fd_thread_or_child() {
    drop(pool(1)); // warm up lazily started globals
    let (fds, tasks) = (count("/proc/self/fd"), count("/proc/self/task"));
    for i in 0..100 {
        let pool = pool(1);
        if i % 10 == 0 {
            assert_eq!(pool.call(&works::double, i).wait(), Ok(2 * i));
        }
    }
    eventually("threads joined", Duration::from_secs(2), || {
        count("/proc/self/task") == tasks
    });
    assert_eq!(count("/proc/self/fd"), fds);
    // No zombie children: every worker was reaped.
    let me = std::process::id().to_string();
    let zombies = std::fs::read_dir("/proc").unwrap().flatten().filter(|e| {
        std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
            let rest = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .to_string();
            let mut parts = rest.split_whitespace();
            parts.next() == Some("Z") && parts.next() == Some(me.as_str())
        })
    });
    assert_eq!(zombies.count(), 0);
}

fn workers_die_with_a_killed_parent() {
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_TEST_ROLE", "parent")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pids: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{line:?}");
    assert!(pids.iter().all(|&p| !is_gone(p)));
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    eventually("the orphaned workers die", Duration::from_secs(2), || {
        pids.iter().all(|&p| is_gone(p))
    });
}

/// The helper parent of `workers_die_with_a_killed_parent`: starts a pool, prints its
/// workers' pids, and waits to be killed.
fn helper_parent() {
    let pool = pool(2);
    println!(
        "PIDS {}",
        pool.worker_pids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

fn in_process_runs_a_registered_work_on_the_global_pool() {
    let config = aplex::global::GlobalConfig {
        processes: Some(2),
        ..Default::default()
    };
    aplex::global::configure(config).unwrap();
    assert_eq!(aplex::in_process(&works::double, 21).wait(), Ok(42));
    // Async works too, awaited from block_on; both run in other processes.
    let (nap, pid) = aplex::block_on(async {
        let nap = aplex::in_process(&works::nap, 5).await;
        let pid = aplex::in_process(&works::pid, ()).await;
        (nap, pid)
    });
    assert_eq!(nap, Ok(5));
    assert_ne!(pid, Ok(std::process::id()));
    // Configuring after the start is refused; shutting down reaps the workers.
    assert!(aplex::global::configure(aplex::global::GlobalConfig::default()).is_err());
    aplex::global::shutdown();
    assert_eq!(
        aplex::in_process(&works::double, 1).wait(),
        Err(Error::ShutDown)
    );
}

// ---- faults ---------------------------------------------------------------------------------

/// A fresh directory for one test's launcher scripts.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aplex-pp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable shell script; `$EXE` in `body` is this test binary.
fn script(dir: &std::path::Path, name: &str, body: &str) -> Command {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let exe = std::env::current_exe().unwrap();
    let text = format!("#!/bin/sh\nEXE='{}'\n{body}\n", exe.display());
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new(path)
}

/// The processes whose environment holds `APLEX_TEST_TOKEN=token`, zombies excluded.
fn with_token(token: &str) -> Vec<u32> {
    let needle = format!("APLEX_TEST_TOKEN={token}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
                && !is_gone(pid)
        })
        .collect()
}

/// The role "hello_then_die": a worker that says hello and then its protocol closes. It runs
/// the real worker behind it, passes on its first frame, and exits: the worker is left behind
/// in the launcher's process group, for the pool to kill.
fn role_hello_then_die() {
    use std::io::Read;
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_WORKER", "1")
        .env_remove("APLEX_TEST_ROLE")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = worker.stdout.take().unwrap();
    let mut len = [0u8; 4];
    out.read_exact(&mut len).unwrap();
    let mut rest = vec![0u8; u32::from_le_bytes(len) as usize];
    out.read_exact(&mut rest).unwrap();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&len).unwrap();
    stdout.write_all(&rest).unwrap();
    stdout.flush().unwrap();
    std::process::exit(0);
}

fn a_worker_that_dies_right_after_its_hello_never_hangs_a_call() {
    let token = format!("hello-die-{}", std::process::id());
    let start = Instant::now();
    for round in 0..15 {
        let dir = temp_dir(&format!("hello-die-{round}"));
        // The first start (of either slot) dies right after its hello; the rest serve.
        let mut cmd = script(
            &dir,
            "launch",
            &format!(
                "if mkdir '{}/first' 2>/dev/null; then exec env APLEX_TEST_ROLE=hello_then_die \"$EXE\"; else exec \"$EXE\"; fi",
                dir.display()
            ),
        );
        cmd.env("APLEX_TEST_TOKEN", &token);
        let pool = ProcessPool::builder()
            .workers(2)
            .command(cmd)
            .build(&works::WORKS)
            .unwrap();
        let calls: Vec<_> = (0..10).map(|i| pool.call(&works::double, i)).collect();
        for (i, mut call) in calls.into_iter().enumerate() {
            match call.wait_timeout(Duration::from_secs(10)) {
                Ok(v) => assert_eq!(v, 2 * i as u64),
                Err(Error::WorkerLost(_)) => {}
                other => panic!("round {round}, call {i}: {other:?}"),
            }
        }
        // The slot that lost its worker serves again.
        eventually("both slots ready", Duration::from_secs(5), || {
            pool.slot_states() == [aplex::SlotState::Ready, aplex::SlotState::Ready]
        });
        assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
        drop(pool);
        let _ = std::fs::remove_dir_all(&dir);
    }
    eventually("no worker left", Duration::from_secs(3), || {
        with_token(&token).is_empty()
    });
    eprintln!("    15 rounds, all calls resolved in {:?}", start.elapsed());
}

fn a_works_child_cannot_read_the_protocol() {
    let pool = pool(1);
    // The shell would swallow the frames of the calls queued behind it if it shared fd 0.
    let mut eater = pool.call(
        &works::shell,
        "head -c 64 >/dev/null; echo read >&2".to_string(),
    );
    let queued: Vec<_> = (0..4).map(|i| pool.call(&works::double, i)).collect();
    assert_eq!(eater.wait_timeout(Duration::from_secs(10)), Ok(0));
    for (i, mut h) in queued.into_iter().enumerate() {
        assert_eq!(h.wait_timeout(Duration::from_secs(10)), Ok(2 * i as u64));
    }
}

fn a_hello_deadline_kills_the_whole_launcher_group() {
    let token = format!("hello-late-{}", std::process::id());
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "sleep 30; exec '{}'",
            std::env::current_exe().unwrap().display()
        ))
        .env("APLEX_TEST_TOKEN", &token);
    let start = Instant::now();
    let err = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .hello_timeout(Duration::from_millis(300))
        .build(&works::WORKS)
        .unwrap_err();
    assert!(matches!(err, Error::Wire(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The shell and its `sleep` were killed with the launched process's group.
    eventually("no launcher left", Duration::from_secs(3), || {
        with_token(&token).is_empty()
    });
    eprintln!("    build failed after {:?}", start.elapsed());
}

fn a_duration_max_hello_timeout_means_never() {
    let pool = ProcessPool::builder()
        .workers(1)
        .hello_timeout(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 2).wait(), Ok(4));
}

fn kill_on_cancel_stops_a_plain_work_behind_any_launcher() {
    let exe = std::env::current_exe().unwrap();
    for (name, line) in [
        (
            "sh -c without exec",
            format!("'{}'; exit $?", exe.display()),
        ),
        ("setsid -f", format!("setsid -f '{}'", exe.display())),
    ] {
        let token = format!("kill-behind-{}-{}", name.len(), std::process::id());
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(line).env("APLEX_TEST_TOKEN", &token);
        let pool = ProcessPool::builder()
            .workers(1)
            .command(cmd)
            .kill_on_cancel(true)
            .build(&works::WORKS)
            .unwrap();
        let worker = pool.worker_pids()[0];
        assert_eq!(pool.call(&works::pid, ()).wait(), Ok(worker), "{name}");
        let flag = std::env::temp_dir().join(format!("aplex-pp-{token}"));
        let stuck = pool.call(&works::flag_then_block, flag.display().to_string());
        eventually("the work started", Duration::from_secs(5), || flag.exists());
        let _ = std::fs::remove_file(&flag);
        let start = Instant::now();
        assert!(stuck.cancel(), "{name}");
        assert_eq!(stuck.wait(), Err(Error::Cancelled));
        eventually(name, Duration::from_secs(5), || is_gone(worker));
        let gone = start.elapsed();
        eventually("a replacement", Duration::from_secs(5), || {
            pool.worker_pids().first().is_some_and(|&p| p != worker)
        });
        assert_eq!(pool.call(&works::double, 1).wait(), Ok(2), "{name}");
        drop(pool);
        eventually("no process left", Duration::from_secs(3), || {
            with_token(&token).is_empty()
        });
        eprintln!("    {name}: worker gone {gone:?} after cancel");
    }
}

fn busy_workers_behind_sh_c_die_with_a_killed_parent() {
    let token = format!("orphans-{}", std::process::id());
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_TEST_ROLE", "parent_sh")
        .env("APLEX_TEST_TOKEN", &token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("BUSY"), "{line:?}");
    assert!(with_token(&token).len() >= 9, "parent, 4 shells, 4 workers");
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    let killed = Instant::now();
    eventually("no worker left", Duration::from_secs(2), || {
        with_token(&token).is_empty()
    });
    eprintln!(
        "    4 busy workers gone {:?} after the parent",
        killed.elapsed()
    );
}

/// The helper parent of `busy_workers_behind_sh_c_die_with_a_killed_parent`: 4 workers behind
/// `sh -c` (no exec), each in a 10 s plain work; says so, then waits to be killed.
fn role_parent_sh() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "'{}'; exit $?",
        std::env::current_exe().unwrap().display()
    ));
    let pool = ProcessPool::builder()
        .workers(4)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    let flags: Vec<_> = (0..4u64)
        .map(|i| std::env::temp_dir().join(format!("aplex-pp-busy-{}-{i}", std::process::id())))
        .collect();
    let _busy: Vec<_> = flags
        .iter()
        .enumerate()
        .map(|(i, f)| pool.call_with(i as u64, &works::flag_then_block, f.display().to_string()))
        .collect();
    for flag in &flags {
        eventually("busy", Duration::from_secs(5), || flag.exists());
        let _ = std::fs::remove_file(flag);
    }
    println!("BUSY");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

fn shutdown_now_cancels_every_call_not_started() {
    let pool = pool(1);
    let running = pool.call(&works::block, 300);
    let queued: Vec<_> = (0..50).map(|i| pool.call(&works::double, i)).collect();
    let start = Instant::now();
    pool.shutdown_now();
    assert_eq!(running.wait(), Err(Error::Cancelled));
    for h in queued {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

fn calls_waiting_for_a_respawn_are_never_shut_down() {
    let dir = temp_dir("respawn-drop");
    // Every start after the first says hello only once `go` exists.
    let mut cmd = script(
        &dir,
        "launch",
        &format!(
            "if mkdir '{0}/first' 2>/dev/null; then exec \"$EXE\"; fi\nwhile [ ! -e '{0}/go' ]; do sleep 0.02; done\nexec \"$EXE\"",
            dir.display()
        ),
    );
    cmd.env("APLEX_TEST_TOKEN", "respawn-drop");
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    lost(pool.call(&works::exit_now, 0).wait());
    eventually("a replacement starting", Duration::from_secs(5), || {
        pool.slot_states() == [aplex::SlotState::Starting]
    });
    let waiting: Vec<_> = (0..5).map(|i| pool.call(&works::double, i)).collect();
    let go = dir.join("go");
    let dropper = std::thread::spawn(move || drop(pool));
    std::thread::sleep(Duration::from_millis(50)); // not a gate: either order is fine
    std::fs::write(&go, b"").unwrap();
    dropper.join().unwrap();
    for (i, h) in waiting.into_iter().enumerate() {
        match h.wait() {
            Ok(v) => assert_eq!(v, 2 * i as u64),
            Err(Error::WorkerLost(_)) => {}
            other => panic!("a call waiting for a respawn ended {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads one frame: its kind and payload.
fn read_frame(out: &mut impl std::io::Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 13];
    out.read_exact(&mut head).unwrap();
    let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len - 9];
    out.read_exact(&mut payload).unwrap();
    (head[4], payload)
}

/// A hello's payload, as the protocol (version 2) lays it out: magic, a line break (see
/// `a_line_buffering_launcher_is_named_in_the_error`), version, pid, host, slot, work names,
/// and the parent's limits.
fn hello_payload(magic: &str, pid: u32, names: Vec<String>, works: u64, frame: u64) -> Vec<u8> {
    use aplex::wire::Wire;
    let mut out = Vec::new();
    magic.to_string().encode(&mut out);
    "\n".to_string().encode(&mut out);
    2u32.encode(&mut out);
    pid.encode(&mut out);
    "here".to_string().encode(&mut out);
    None::<u64>.encode(&mut out);
    names.encode(&mut out);
    works.encode(&mut out);
    frame.encode(&mut out);
    out
}

/// The role "lying_worker": a hand-written worker that answers every chunk with one result,
/// whatever the chunk's length, and every call with nothing.
fn role_lying_worker() {
    use std::io::Read;
    let names: Vec<String> = works::WORKS.names().iter().map(|n| n.to_string()).collect();
    let hello = hello_payload("aplex-worker", std::process::id(), names, 0, 0);
    let mut out = std::io::stdout().lock();
    let frame = |out: &mut std::io::StdoutLock, kind: u8, id: u64, payload: &[u8]| {
        out.write_all(&((9 + payload.len()) as u32).to_le_bytes())
            .unwrap();
        out.write_all(&[kind]).unwrap();
        out.write_all(&id.to_le_bytes()).unwrap();
        out.write_all(payload).unwrap();
        out.flush().unwrap();
    };
    frame(&mut out, 2, 0, &hello);
    let mut input = std::io::stdin().lock();
    loop {
        let mut head = [0u8; 13];
        if input.read_exact(&mut head).is_err() {
            std::process::exit(0);
        }
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len - 9];
        input.read_exact(&mut payload).unwrap();
        if head[4] == 4 {
            // OK, a count of 1, one OK outcome with the value 7.
            let mut result = vec![0u8];
            result.extend_from_slice(&1u64.to_le_bytes());
            result.push(0);
            aplex::wire::Wire::encode(&7u64, &mut result);
            frame(
                &mut out,
                6,
                u64::from_le_bytes(head[5..13].try_into().unwrap()),
                &result,
            );
        }
    }
}

fn a_chunk_result_with_the_wrong_count_is_a_wire_error() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("APLEX_TEST_ROLE", "lying_worker");
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    let out: Vec<_> = pool.map(&works::double, 0..10).chunk_size(10).collect();
    assert_eq!(out.len(), 10, "no item may go missing");
    for r in out {
        match r {
            Err(Error::Wire(msg)) => assert!(msg.contains("10 items with 1 result"), "{msg}"),
            other => panic!("expected a Wire error, got {other:?}"),
        }
    }
}

/// Encodes one frame as the parent would.
fn raw_frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = ((9 + payload.len()) as u32).to_le_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn a_worker_checks_a_chunks_count_before_any_work() {
    use std::io::Read;
    let names: Vec<String> = works::WORKS.names().iter().map(|n| n.to_string()).collect();
    let unit = names.iter().position(|n| n == "unit").unwrap() as u32;
    let double = names.iter().position(|n| n == "double").unwrap() as u32;
    let hello = hello_payload("aplex-parent", 0, names, 4, 1 << 20);
    let mut input = raw_frame(1, 0, &hello);
    // A chunk of u64::MAX `()` items (no bytes each), and one of u64::MAX `u64` items in 0 bytes.
    for (id, index) in [(1u64, unit), (2, double)] {
        let mut chunk = index.to_le_bytes().to_vec();
        chunk.extend_from_slice(&u64::MAX.to_le_bytes());
        input.extend_from_slice(&raw_frame(4, id, &chunk));
    }
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_WORKER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    stdin.write_all(&input).unwrap();
    let mut out = worker.stdout.take().unwrap();
    let start = Instant::now();
    let mut frame = || {
        let mut head = [0u8; 13];
        out.read_exact(&mut head).unwrap();
        let mut payload = vec![0u8; u32::from_le_bytes(head[..4].try_into().unwrap()) as usize - 9];
        out.read_exact(&mut payload).unwrap();
        (head[4], payload)
    };
    assert_eq!(frame().0, 2, "the worker's hello");
    for _ in 0..2 {
        let (kind, payload) = frame();
        assert_eq!(kind, 6);
        assert_eq!(payload[0], 1, "a whole chunk's error (REMOTE), not items");
        assert!(String::from_utf8_lossy(&payload).contains("bad chunk"));
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(stdin);
    assert!(worker.wait().unwrap().success());
}

/// The role "thread_pool_emfile": builds a 64-thread pool under a small fd limit and prints
/// the error's OS code.
fn role_thread_pool_emfile() {
    match aplex::ThreadPool::builder().workers(64).build() {
        Ok(_) => println!("BUILT"),
        Err(e) => println!("ERR {:?} {e}", e.raw_os_error()),
    }
}

/// The role "fd_shortage": a worker dies while this process has no fd to spare, so its
/// replacement cannot be spawned; the other slot keeps serving; once fds are free again the
/// slot comes back. Prints what it saw, then "RECOVERED".
fn role_fd_shortage() {
    let pool = ProcessPool::builder()
        .workers(2)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
    // Take every fd left.
    let mut hog = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(24), "{e}");
                break;
            }
        }
    }
    // A worker dies now: its replacement cannot be started (no fds for its pipes).
    lost(pool.call(&works::exit_now, 3).wait());
    // Calls go to the live slot meanwhile, and the shortage is not a crash loop.
    let shortage_end = Instant::now() + Duration::from_millis(1500);
    let mut served = 0;
    while Instant::now() < shortage_end {
        assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
        served += 1;
    }
    let states = pool.slot_states();
    println!("DURING {states:?} served {served}");
    assert!(
        !states.iter().all(|s| *s == aplex::SlotState::Broken),
        "a shortage broke the pool: {states:?}"
    );
    drop(hog);
    eventually("the slot to come back", Duration::from_secs(40), || {
        pool.slot_states()
            .iter()
            .all(|s| *s == aplex::SlotState::Ready)
    });
    let outs: Vec<_> = (0..10)
        .map(|i| pool.call(&works::double, i).wait())
        .collect();
    assert_eq!(outs, (0..10).map(|i| Ok(2 * i)).collect::<Vec<_>>());
    println!("RECOVERED");
}

/// Runs this binary in `role` under an fd limit of `limit`, and returns what it printed.
fn run_role_with_fd_limit(role: &str, limit: u32) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {limit} && exec '{}'",
            std::env::current_exe().unwrap().display()
        ))
        .env("APLEX_TEST_ROLE", role)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A 1.5 s fd shortage in the parent while a worker must be replaced: the pool serves on its
/// live slot, and the slot recovers once the shortage ends.
fn an_fd_shortage_passes_and_the_slot_recovers() {
    let out = run_role_with_fd_limit("fd_shortage", 256);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("RECOVERED"),
        "{stdout}\n{stderr}"
    );
}

fn a_thread_pool_out_of_fds_returns_emfile() {
    let out = run_role_with_fd_limit("thread_pool_emfile", 40);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ERR Some(24)"), "{stdout:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn main() {
    // Fake workers first: the pool marks them as workers too.
    match std::env::var("APLEX_TEST_ROLE").as_deref() {
        Ok("hello_then_die") => return role_hello_then_die(),
        Ok("lying_worker") => return role_lying_worker(),
        Ok("half_result_worker") => return batches::role_half_result_worker(),
        Ok("line_buffer") => return hosts::role_line_buffer(),
        Ok("other_build") => return hosts::role_other_build(),
        _ => {}
    }
    if std::env::var_os(aplex::WORKER_ENV).is_some() {
        // Works panic on purpose (`boom`): quietly, the outcome says it.
        std::panic::set_hook(Box::new(|_| {}));
    }
    aplex::serve_if_worker(&works::WORKS);
    match std::env::var("APLEX_TEST_ROLE").as_deref() {
        Ok("parent") => return helper_parent(),
        Ok("parent_sh") => return role_parent_sh(),
        Ok("thread_pool_emfile") => return role_thread_pool_emfile(),
        Ok("fd_shortage") => return role_fd_shortage(),
        Ok("fake_ssh_parent") => return hosts::role_fake_ssh_parent(),
        _ => {}
    }
    let cases: &[(&str, fn())] = &[
        (
            "a_hundred_pools_leave_no_fd_thread_or_child",
            a_hundred_pools_leave_no_fd_thread_or_child,
        ),
        (
            "round_trip_of_every_wire_type",
            round_trip_of_every_wire_type,
        ),
        (
            "a_panic_is_panicked_and_the_worker_lives_on",
            a_panic_is_panicked_and_the_worker_lives_on,
        ),
        (
            "println_in_a_work_does_not_corrupt_the_stream",
            println_in_a_work_does_not_corrupt_the_stream,
        ),
        (
            "kill_9_a_worker_in_the_middle_of_50_works",
            kill_9_a_worker_in_the_middle_of_50_works,
        ),
        (
            "garbage_on_the_protocol_stream_loses_the_worker",
            garbage_on_the_protocol_stream_loses_the_worker,
        ),
        (
            "a_worker_that_exits_0_at_once",
            a_worker_that_exits_0_at_once,
        ),
        (
            "wrong_programs_and_missing_binaries_fail_build",
            wrong_programs_and_missing_binaries_fail_build,
        ),
        ("launching_through_sh_c", launching_through_sh_c),
        (
            "frames_over_the_maximum_are_typed_errors",
            frames_over_the_maximum_are_typed_errors,
        ),
        (
            "a_64_mib_round_trip_does_not_stall_other_workers",
            a_64_mib_round_trip_does_not_stall_other_workers,
        ),
        ("cancel_a_running_async_work", cancel_a_running_async_work),
        (
            "a_running_plain_work_cannot_be_cancelled_without_kill",
            a_running_plain_work_cannot_be_cancelled_without_kill,
        ),
        (
            "kill_on_cancel_escalates_for_a_plain_work",
            kill_on_cancel_escalates_for_a_plain_work,
        ),
        ("map_keeps_order_and_chunks", map_keeps_order_and_chunks),
        (
            "map_awaited_or_iterated_gives_every_item",
            map_awaited_or_iterated_gives_every_item,
        ),
        ("map_timeout_cancels_the_rest", map_timeout_cancels_the_rest),
        (
            "max_works_per_child_recycles_workers",
            max_works_per_child_recycles_workers,
        ),
        (
            "a_crash_loop_breaks_the_pool_but_one_crash_does_not",
            a_crash_loop_breaks_the_pool_but_one_crash_does_not,
        ),
        (
            "calls_after_shutdown_are_shut_down",
            calls_after_shutdown_are_shut_down,
        ),
        (
            "workers_die_with_a_killed_parent",
            workers_die_with_a_killed_parent,
        ),
        (
            "a_worker_that_dies_right_after_its_hello_never_hangs_a_call",
            a_worker_that_dies_right_after_its_hello_never_hangs_a_call,
        ),
        (
            "a_works_child_cannot_read_the_protocol",
            a_works_child_cannot_read_the_protocol,
        ),
        (
            "a_hello_deadline_kills_the_whole_launcher_group",
            a_hello_deadline_kills_the_whole_launcher_group,
        ),
        (
            "a_duration_max_hello_timeout_means_never",
            a_duration_max_hello_timeout_means_never,
        ),
        (
            "kill_on_cancel_stops_a_plain_work_behind_any_launcher",
            kill_on_cancel_stops_a_plain_work_behind_any_launcher,
        ),
        (
            "busy_workers_behind_sh_c_die_with_a_killed_parent",
            busy_workers_behind_sh_c_die_with_a_killed_parent,
        ),
        (
            "shutdown_now_cancels_every_call_not_started",
            shutdown_now_cancels_every_call_not_started,
        ),
        (
            "calls_waiting_for_a_respawn_are_never_shut_down",
            calls_waiting_for_a_respawn_are_never_shut_down,
        ),
        (
            "a_chunk_result_with_the_wrong_count_is_a_wire_error",
            a_chunk_result_with_the_wrong_count_is_a_wire_error,
        ),
        (
            "a_worker_checks_a_chunks_count_before_any_work",
            a_worker_checks_a_chunks_count_before_any_work,
        ),
        (
            "an_fd_shortage_passes_and_the_slot_recovers",
            an_fd_shortage_passes_and_the_slot_recovers,
        ),
        (
            "a_thread_pool_out_of_fds_returns_emfile",
            a_thread_pool_out_of_fds_returns_emfile,
        ),
        (
            "slots_show_each_workers_identity",
            hosts::slots_show_each_workers_identity,
        ),
        (
            "a_launcher_per_slot_and_replacements_on_their_own_slot",
            hosts::a_launcher_per_slot_and_replacements_on_their_own_slot,
        ),
        (
            "min_ready_starts_with_a_host_down_and_it_joins_later",
            hosts::min_ready_starts_with_a_host_down_and_it_joins_later,
        ),
        (
            "a_host_down_mid_map_loses_only_its_works_and_rejoins",
            hosts::a_host_down_mid_map_loses_only_its_works_and_rejoins,
        ),
        (
            "the_worker_marker_as_an_argument",
            hosts::the_worker_marker_as_an_argument,
        ),
        (
            "a_line_buffering_launcher_is_named_in_the_error",
            hosts::a_line_buffering_launcher_is_named_in_the_error,
        ),
        (
            "hosts_runs_the_ssh_template_and_survives_a_host_down",
            hosts::hosts_runs_the_ssh_template_and_survives_a_host_down,
        ),
        (
            "per_slot_capacity_weights_reach_the_balancer",
            hosts::per_slot_capacity_weights_reach_the_balancer,
        ),
        (
            "a_launcher_exit_255_after_the_hello_is_a_lost_connection",
            hosts::a_launcher_exit_255_after_the_hello_is_a_lost_connection,
        ),
        (
            "another_build_on_a_host_is_named_not_mistaken_for_a_non_worker",
            hosts::another_build_on_a_host_is_named_not_mistaken_for_a_non_worker,
        ),
        (
            "a_death_in_the_middle_of_a_map_batch_loses_only_that_workers_chunks",
            batches::a_death_in_the_middle_of_a_map_batch_loses_only_that_workers_chunks,
        ),
        (
            "a_death_in_the_middle_of_a_burst_of_calls_never_hangs_one",
            batches::a_death_in_the_middle_of_a_burst_of_calls_never_hangs_one,
        ),
        (
            "a_burst_larger_than_the_maximum_frame_is_many_frames",
            batches::a_burst_larger_than_the_maximum_frame_is_many_frames,
        ),
        (
            "a_map_batch_larger_than_the_maximum_frame_fails_only_the_chunk_over_it",
            batches::a_map_batch_larger_than_the_maximum_frame_fails_only_the_chunk_over_it,
        ),
        (
            "a_result_batch_cut_short_delivers_the_whole_frames_only",
            batches::a_result_batch_cut_short_delivers_the_whole_frames_only,
        ),
        (
            "shutdown_async_leaves_its_thread_free_and_ends_every_call",
            shutdown::shutdown_async_leaves_its_thread_free_and_ends_every_call,
        ),
        (
            "closed_resolves_after_a_shutdown_on_another_thread",
            shutdown::closed_resolves_after_a_shutdown_on_another_thread,
        ),
        // Last: it starts the global process pool, and shuts it down at its end.
        (
            "in_process_runs_a_registered_work_on_the_global_pool",
            in_process_runs_a_registered_work_on_the_global_pool,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        match catch_unwind(AssertUnwindSafe(case)) {
            Ok(()) => {
                passed += 1;
                println!("ok     {name} ({:?})", start.elapsed());
            }
            Err(_) => {
                failed += 1;
                println!("FAILED {name} ({:?})", start.elapsed());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
