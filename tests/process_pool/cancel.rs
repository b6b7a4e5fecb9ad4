//! Cancelling: an async work by a frame, a plain one only by killing its worker
//! (`kill_on_cancel`), behind any launcher; a map's timeout cancels the rest.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    cancel_a_running_async_work,
    a_running_plain_work_cannot_be_cancelled_without_kill,
    kill_on_cancel_escalates_for_a_plain_work,
    map_timeout_cancels_the_rest,
    kill_on_cancel_stops_a_plain_work_behind_any_launcher,
];

pub(crate) fn cancel_a_running_async_work() {
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

pub(crate) fn a_running_plain_work_cannot_be_cancelled_without_kill() {
    let pool = pool(1);
    let dir = temp_dir("plain-running");
    let flag = dir.join("started");
    let h = pool.call(&works::flag_then_sleep, (flag.display().to_string(), 500));
    eventually("the work started", Duration::from_secs(20), || {
        flag.exists()
    });
    assert!(!h.cancel());
    assert_eq!(h.wait(), Ok(500));
}

pub(crate) fn kill_on_cancel_escalates_for_a_plain_work() {
    let pool = ProcessPool::builder()
        .workers(1)
        .kill_on_cancel(true)
        .build(&works::WORKS)
        .unwrap();
    let pid = pool.worker_pids()[0];
    let dir = temp_dir("kill-escalates");
    let flag = dir.join("started");
    let stuck = pool.call(&works::flag_then_block, flag.display().to_string());
    let neighbour = pool.call(&works::nap, 60_000);
    eventually("the work started", Duration::from_secs(20), || {
        flag.exists()
    });
    let start = Instant::now();
    assert!(stuck.cancel());
    assert_eq!(stuck.wait(), Err(Error::Cancelled));
    let why = lost(neighbour.wait());
    assert!(why.contains("killed"), "{why}");
    assert!(start.elapsed() < Duration::from_secs(30)); // not the 60 s the works would take
    assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
    assert!(!pool.worker_pids().contains(&pid));
    eventually("the killed worker is reaped", HANG, || is_gone(pid));
}

/// The quick item is read under a far deadline (a busy machine cannot make it late); then a
/// near one is set while the long naps run, which only its timer can end: no race either way.
pub(crate) fn map_timeout_cancels_the_rest() {
    let pool = pool(1);
    let start = Instant::now();
    let mut out = pool.map(&works::nap, [1, 120_000, 120_000]).timeout(HANG);
    assert_eq!(Iterator::next(&mut out), Some(Ok(1)));
    let mut out = out.timeout(Duration::from_millis(200));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    assert!(start.elapsed() < Duration::from_secs(60)); // not the naps' 120 s
    drop(out);
    assert_eq!(pool.call(&works::nap, 1).wait(), Ok(1));
}

pub(crate) fn kill_on_cancel_stops_a_plain_work_behind_any_launcher() {
    let exe = std::env::current_exe().unwrap();
    for (name, line) in [
        (
            "sh -c without exec",
            format!("'{}'; exit $?", exe.display()),
        ),
        ("setsid -f", format!("setsid -f '{}'", exe.display())),
    ] {
        let token = format!("kill-behind-{}-{}", name.len(), std::process::id());
        let dir = temp_dir(&format!("kill-behind-{}", name.len()));
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
        let flag = dir.join("started");
        let stuck = pool.call(&works::flag_then_block, flag.display().to_string());
        eventually("the work started", HANG, || flag.exists());
        let start = Instant::now();
        assert!(stuck.cancel(), "{name}");
        assert_eq!(stuck.wait(), Err(Error::Cancelled));
        eventually(name, HANG, || is_gone(worker));
        let gone = start.elapsed();
        eventually("a replacement", HANG, || {
            pool.worker_pids().first().is_some_and(|&p| p != worker)
        });
        assert_eq!(pool.call(&works::double, 1).wait(), Ok(2), "{name}");
        drop(pool);
        eventually("no process left", HANG, || with_token(&token).is_empty());
        eprintln!("    {name}: worker gone {gone:?} after cancel");
    }
}
