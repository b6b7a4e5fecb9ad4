//! ProcessPool behaviour, with this test binary as its own worker (`harness = false`: the
//! libtest harness prints to stdout, which a worker's protocol needs).
//!
//! Each case is a plain function; `main` runs them in order and prints `N passed, N failed`
//! last, exiting non-zero on failure. The cases live in the modules under `process_pool/`, by
//! purpose; this file holds the works, the helpers they share, and the roles this binary
//! plays when a case launches it as something other than a test.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aplex::balance::KeyAffinity;
use aplex::{Error, ProcessPool};

#[path = "process_pool/basics.rs"]
mod basics;
#[path = "process_pool/batches.rs"]
mod batches;
#[path = "process_pool/cancel.rs"]
mod cancel;
#[path = "process_pool/deaths.rs"]
mod deaths;
#[path = "process_pool/hosts.rs"]
mod hosts;
#[path = "process_pool/launch.rs"]
mod launch;
#[path = "process_pool/lifecycle.rs"]
mod lifecycle;
#[path = "process_pool/shortages.rs"]
mod shortages;
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
        /// Where this worker's `fd` leads (`/dev/null`, `pipe:[…]`, a file's path).
        pub fn fd_target(fd: i32) -> Option<String> {
            std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().map(|p| p.display().to_string())
        }
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
        /// Marks that it started (creates `flag`), then sleeps `ms` and returns it.
        pub fn flag_then_sleep(arg: (String, u64)) -> u64 {
            let (flag, ms) = arg;
            std::fs::write(flag, b"").unwrap();
            std::thread::sleep(Duration::from_millis(ms));
            ms
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

// ---- helpers the cases share ----------------------------------------------------------------

pub(crate) fn pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(workers)
        .build(&works::WORKS)
        .unwrap()
}

pub(crate) fn is_gone(pid: u32) -> bool {
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

/// The hang catcher of waits that end by an event (a worker starting, dying or being reaped):
/// far longer than any of them takes on a busy 2-core machine, so only a hang reaches it.
pub(crate) const HANG: Duration = Duration::from_secs(30);

pub(crate) fn eventually(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn lost(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::WorkerLost(why)) => why,
        other => panic!("expected WorkerLost, got {other:?}"),
    }
}

/// A fresh directory in the temp dir for one test's scripts and flag files. Dropping it
/// removes the directory and all in it, on a failing test too (a panic unwinds through the
/// drop), so no run leaves anything behind. Declare it before the pools that use it: they
/// are dropped first, and no launcher runs from a removed directory.
pub(crate) struct TempDir(PathBuf);

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh [`TempDir`] named after this process and `name` (what an earlier run of the same
/// pid left there is removed first).
pub(crate) fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("aplex-pp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Writes an executable shell script; `$EXE` in `body` is this test binary.
pub(crate) fn script(dir: &std::path::Path, name: &str, body: &str) -> Command {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let exe = std::env::current_exe().unwrap();
    let text = format!("#!/bin/sh\nEXE='{}'\n{body}\n", exe.display());
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new(path)
}

/// The processes whose environment holds `APLEX_TEST_TOKEN=token`, zombies excluded.
pub(crate) fn with_token(token: &str) -> Vec<u32> {
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

/// Reads one frame: its kind and payload.
pub(crate) fn read_frame(out: &mut impl std::io::Read) -> (u8, Vec<u8>) {
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
pub(crate) fn hello_payload(
    magic: &str,
    pid: u32,
    names: Vec<String>,
    works: u64,
    frame: u64,
) -> Vec<u8> {
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

/// Encodes one frame as the parent would.
pub(crate) fn raw_frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = ((9 + payload.len()) as u32).to_le_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A list of cases: each one's name and function.
pub(crate) type Cases = &'static [(&'static str, fn())];

/// `cases![a, b]` is `[("a", a), ("b", b)]`: a case is named after its function.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        &[$((stringify!($case), $case as fn())),*]
    };
}
use cases;

fn main() {
    // Fake workers first: the pool marks them as workers too.
    match std::env::var("APLEX_TEST_ROLE").as_deref() {
        Ok("hello_then_die") => return deaths::role_hello_then_die(),
        Ok("lying_worker") => return deaths::role_lying_worker(),
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
        Ok("parent") => return lifecycle::helper_parent(),
        Ok("parent_sh") => return lifecycle::role_parent_sh(),
        Ok("thread_pool_emfile") => return shortages::role_thread_pool_emfile(),
        Ok("fd_shortage") => return shortages::role_fd_shortage(),
        Ok("fake_ssh_parent") => return hosts::role_fake_ssh_parent(),
        _ => {}
    }
    // `lifecycle` first: it counts this process's fds and threads before other cases start
    // lazily started globals. `basics` last: its last case starts the global process pool.
    let files = [
        lifecycle::CASES,
        launch::CASES,
        deaths::CASES,
        cancel::CASES,
        shutdown::CASES,
        shortages::CASES,
        hosts::CASES,
        batches::CASES,
        basics::CASES,
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in files.concat() {
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
