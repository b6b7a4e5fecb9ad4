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
                assert!(killed.elapsed() < Duration::from_secs(1));
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
        let start = Instant::now();
        let err = ProcessPool::builder()
            .workers(1)
            .command(Command::new(program))
            .build(&works::WORKS)
            .unwrap_err();
        assert!(matches!(err, Error::Wire(_)), "{program}: {err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
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
    assert!(start.elapsed() < Duration::from_millis(500));
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
    let mut slowest = Duration::ZERO;
    let mut small_calls = 0;
    while !big.is_finished() && start.elapsed() < Duration::from_secs(20) {
        let t = Instant::now();
        assert_eq!(pool.call_with(small_hint, &works::double, 1).wait(), Ok(2));
        slowest = slowest.max(t.elapsed());
        small_calls += 1;
    }
    assert_eq!(big.wait().map(|s| s == data), Ok(true));
    assert!(small_calls > 0);
    assert!(
        slowest < Duration::from_millis(200),
        "a small call took {slowest:?}"
    );
}

fn cancel_a_running_async_work() {
    let pool = pool(1);
    let h = pool.call(&works::nap, 10_000);
    std::thread::sleep(Duration::from_millis(50));
    assert!(h.cancel());
    assert_eq!(h.wait(), Err(Error::Cancelled));
    // The worker dropped it: its slot is free and it serves the next works at once.
    let start = Instant::now();
    assert_eq!(pool.call(&works::nap, 1).wait(), Ok(1));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(pool.loads()[0].total(), 0);
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
    assert!(start.elapsed() < Duration::from_secs(1));
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

fn map_timeout_cancels_the_rest() {
    let pool = pool(1);
    let start = Instant::now();
    let mut out = pool
        .map(&works::nap, [1, 5_000, 5_000])
        .timeout(Duration::from_millis(200));
    assert_eq!(Iterator::next(&mut out), Some(Ok(1)));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    assert!(start.elapsed() < Duration::from_secs(1));
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
    // That worker completed a work, so its crash starts the count again: three more workers
    // in a row die before completing anything, and the pool stops replacing them.
    let start = Instant::now();
    for _ in 0..4 {
        lost(pool.call(&works::exit_now, 3).wait());
    }
    let why = lost(pool.call(&works::double, 1).wait());
    assert!(why.contains("broken"), "{why}");
    assert!(start.elapsed() < Duration::from_secs(5));
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

fn main() {
    aplex::serve_if_worker(&works::WORKS);
    if std::env::var_os("APLEX_TEST_ROLE").is_some_and(|r| r == "parent") {
        return helper_parent();
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
