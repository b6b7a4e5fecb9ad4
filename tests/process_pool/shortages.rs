//! Running out of fds: a pool whose replacement cannot be spawned serves on its live
//! slots and recovers; a thread pool says `EMFILE`. Each runs in a child under `ulimit -n`.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    an_fd_shortage_passes_and_the_slot_recovers,
    a_thread_pool_out_of_fds_returns_emfile,
];

/// The role "thread_pool_emfile": builds a 64-thread pool under a small fd limit and prints
/// the error's OS code.
pub(crate) fn role_thread_pool_emfile() {
    match aplex::ThreadPool::builder().workers(64).build() {
        Ok(_) => println!("BUILT"),
        Err(e) => println!("ERR {:?} {e}", e.raw_os_error()),
    }
}

/// The role "fd_shortage": a worker dies while this process has no fd to spare, so its
/// replacement cannot be spawned; the other slot keeps serving; once fds are free again the
/// slot comes back. Prints what it saw, then "RECOVERED".
pub(crate) fn role_fd_shortage() {
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
pub(crate) fn run_role_with_fd_limit(role: &str, limit: u32) -> std::process::Output {
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
pub(crate) fn an_fd_shortage_passes_and_the_slot_recovers() {
    let out = run_role_with_fd_limit("fd_shortage", 256);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("RECOVERED"),
        "{stdout}\n{stderr}"
    );
}

pub(crate) fn a_thread_pool_out_of_fds_returns_emfile() {
    let out = run_role_with_fd_limit("thread_pool_emfile", 40);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ERR Some(24)"), "{stdout:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
