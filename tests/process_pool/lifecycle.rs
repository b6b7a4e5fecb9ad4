//! Pools that leave nothing behind: every fd, thread and child of a dropped pool is
//! gone, and workers never outlive a killed parent, behind any launcher.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    a_hundred_pools_leave_no_fd_thread_or_child,
    workers_die_with_a_killed_parent,
    busy_workers_behind_sh_c_die_with_a_killed_parent,
];

pub(crate) fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

pub(crate) fn a_hundred_pools_leave_no_fd_thread_or_child() {
    drop(pool(1)); // warm up lazily started globals
    let (fds, tasks) = (count("/proc/self/fd"), count("/proc/self/task"));
    for i in 0..100 {
        let pool = pool(1);
        if i % 10 == 0 {
            assert_eq!(pool.call(&works::double, i).wait(), Ok(2 * i));
        }
    }
    eventually("threads joined", HANG, || count("/proc/self/task") == tasks);
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

pub(crate) fn workers_die_with_a_killed_parent() {
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
    eventually("the orphaned workers die", HANG, || {
        pids.iter().all(|&p| is_gone(p))
    });
}

/// The helper parent of `workers_die_with_a_killed_parent`: starts a pool, prints its
/// workers' pids, and waits to be killed.
pub(crate) fn helper_parent() {
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

pub(crate) fn busy_workers_behind_sh_c_die_with_a_killed_parent() {
    let token = format!("orphans-{}", std::process::id());
    // The helper parent is killed: the flags go in a directory this process removes.
    let dir = temp_dir("orphans");
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_TEST_ROLE", "parent_sh")
        .env("APLEX_TEST_DIR", &*dir)
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
    eventually("no worker left", HANG, || with_token(&token).is_empty());
    eprintln!(
        "    4 busy workers gone {:?} after the parent",
        killed.elapsed()
    );
}

/// The helper parent of `busy_workers_behind_sh_c_die_with_a_killed_parent`: 4 workers behind
/// `sh -c` (no exec), each in a 10 s plain work; says so, then waits to be killed.
pub(crate) fn role_parent_sh() {
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
    let dir = PathBuf::from(std::env::var_os("APLEX_TEST_DIR").unwrap());
    let flags: Vec<_> = (0..4u64).map(|i| dir.join(format!("busy-{i}"))).collect();
    let _busy: Vec<_> = flags
        .iter()
        .enumerate()
        .map(|(i, f)| pool.call_with(i as u64, &works::flag_then_block, f.display().to_string()))
        .collect();
    for flag in &flags {
        eventually("busy", HANG, || flag.exists());
    }
    println!("BUSY");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
}
