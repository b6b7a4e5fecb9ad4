//! A pool across "hosts": each host is simulated by a launcher script that runs this test
//! binary locally with a host label (`HOSTLABEL`, and `APLEX_WORKER_HOST` for its hello), and
//! that exits 255 at once, as `ssh` does when it cannot connect, while a `DOWN` file exists.
//! No real ssh is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aplex::balance::from_fn;
use aplex::{Error, ProcessPool, SlotState};

use super::{cases, eventually, lost, script, temp_dir, works, Cases};

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    slots_show_each_workers_identity,
    a_launcher_per_slot_and_replacements_on_their_own_slot,
    min_ready_starts_with_a_host_down_and_it_joins_later,
    a_host_down_mid_map_loses_only_its_works_and_rejoins,
    the_worker_marker_as_an_argument,
    a_line_buffering_launcher_is_named_in_the_error,
    hosts_runs_the_ssh_template_and_survives_a_host_down,
    per_slot_capacity_weights_reach_the_balancer,
    a_launcher_exit_255_after_the_hello_is_a_lost_connection,
    another_build_on_a_host_is_named_not_mistaken_for_a_non_worker,
];

/// A launcher script for host `label`: exits 255 while `dir/label-down` exists, else runs
/// this binary as a worker labelled `label`.
fn host(dir: &Path, label: &str) -> PathBuf {
    let body = format!(
        "if [ -e '{dir}/{label}-down' ]; then \
         exit 255; fi\nexec env HOSTLABEL={label} APLEX_WORKER_HOST={label} \"$EXE\"",
        dir = dir.display()
    );
    let path = dir.join(format!("host-{label}"));
    script(dir, &format!("host-{label}"), &body);
    path
}

/// A balancer that sends a call with hint `i` to slot `i`, and others to slot 0.
fn by_hint() -> impl aplex::balance::Balancer {
    from_fn(|_, hint| hint.unwrap_or(0) as usize)
}

fn the_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

pub(crate) fn slots_show_each_workers_identity() {
    let pool = ProcessPool::builder()
        .workers(2)
        .balancer(by_hint())
        .build(&works::WORKS)
        .unwrap();
    for i in 0..2 {
        let pid = pool.call_with(i, &works::pid, ()).wait().unwrap();
        let slot = &pool.slots()[i as usize];
        assert_eq!(slot.index, i as usize);
        assert_eq!(slot.pid, Some(pid), "the worker's own pid, from its hello");
        assert_eq!(
            slot.launcher_pid,
            Some(pid),
            "launched directly: the same process"
        );
        assert_eq!(slot.host.as_deref(), Some(the_hostname().as_str()));
        assert_eq!(slot.state, SlotState::Ready);
        assert_eq!((slot.completed, slot.restarts), (1, 0));
        let env = pool.call_with(i, &works::env_var, "APLEX_WORKER_SLOT".to_string());
        assert_eq!(
            env.wait(),
            Ok(Some(i.to_string())),
            "the slot reaches the worker"
        );
    }
    // Each item of a map counts as a completed work.
    let out: Vec<_> = pool.map(&works::double, 0..10).chunk_size(5).collect();
    assert!(out.iter().all(Result::is_ok));
    let completed: u64 = pool.slots().iter().map(|s| s.completed).sum();
    assert_eq!(completed, 2 + 2 + 10);
    // A restart is counted, and the new worker's identity replaces the old one's.
    let old = pool.slots()[1].pid.unwrap();
    let killed = pool.call_with(1, &works::exit_now, 3).wait();
    assert!(lost(killed).contains("slot 1"));
    eventually("slot 1 restarted", Duration::from_secs(20), || {
        let s = &pool.slots()[1];
        s.restarts == 1 && s.state == SlotState::Ready
    });
    let new = pool.call_with(1, &works::pid, ()).wait().unwrap();
    assert_ne!(new, old);
    assert_eq!(pool.slots()[1].pid, Some(new));
    assert_eq!(pool.slots()[0].restarts, 0);
}

pub(crate) fn a_launcher_per_slot_and_replacements_on_their_own_slot() {
    let dir = temp_dir("per-slot");
    let (a, b) = (host(&dir, "a"), host(&dir, "b"));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = calls.clone();
    let pool = ProcessPool::builder()
        .workers(3)
        .balancer(by_hint())
        .launcher(move |slot| {
            record.lock().unwrap().push(slot);
            // Behind `sh` without `exec`: the launcher's pid is not the worker's.
            let script = if slot < 2 { &a } else { &b };
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(format!("'{}'; exit $?", script.display()));
            sh
        })
        .build(&works::WORKS)
        .unwrap();
    let mut seen = calls.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
    let hosts: Vec<_> = pool.slots().into_iter().map(|s| s.host).collect();
    let named = |h: &str| Some(h.to_string());
    assert_eq!(hosts, [named("a"), named("a"), named("b")]);
    for (i, label) in [(0, "a"), (1, "a"), (2, "b")] {
        let got = pool.call_with(i, &works::env_var, "HOSTLABEL".to_string());
        assert_eq!(got.wait(), Ok(Some(label.to_string())));
        let s = &pool.slots()[i as usize];
        assert_ne!(s.pid, s.launcher_pid, "sh stands between");
    }
    // Slot 2's worker dies: its replacement comes from slot 2's launcher, on host b.
    let why = lost(pool.call_with(2, &works::exit_now, 3).wait());
    assert!(why.contains("slot 2 on host b"), "{why}");
    assert!(
        !why.contains("aplex worker?"),
        "a worker death is no wrong command: {why}"
    );
    eventually("slot 2 replaced", Duration::from_secs(20), || {
        pool.slots()[2].restarts == 1 && pool.slots()[2].state == SlotState::Ready
    });
    assert_eq!(calls.lock().unwrap().last(), Some(&2));
    assert_eq!(calls.lock().unwrap().len(), 4);
    let got = pool.call_with(2, &works::env_var, "HOSTLABEL".to_string());
    assert_eq!(got.wait(), Ok(Some("b".to_string())));
}

/// Slots 0 and 1 on host a, 2 and 3 on host b.
fn two_hosts(dir: &Path) -> impl Fn(usize) -> Command + Send + Sync + 'static {
    let (a, b) = (host(dir, "a"), host(dir, "b"));
    move |slot| Command::new(if slot < 2 { &a } else { &b })
}

pub(crate) fn min_ready_starts_with_a_host_down_and_it_joins_later() {
    let dir = temp_dir("min-ready");
    std::fs::write(dir.join("b-down"), b"").unwrap();
    // By default every worker must start: a host down fails build, and says why.
    let all = ProcessPool::builder()
        .workers(4)
        .launcher(two_hosts(&dir))
        .build(&works::WORKS);
    match all {
        Err(Error::Wire(why)) => {
            assert!(
                why.contains("status 255") && why.contains("could not reach"),
                "{why}"
            );
            assert!(why.contains("slot 2") || why.contains("slot 3"), "{why}");
            assert!(!why.contains("aplex worker?"), "{why}");
        }
        other => panic!("expected a Wire error, got {other:?}"),
    }
    for bad in [0, 5] {
        let built = ProcessPool::builder()
            .workers(4)
            .min_ready(bad)
            .launcher(two_hosts(&dir))
            .build(&works::WORKS);
        match built {
            Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
            other => panic!("min_ready({bad}): expected InvalidInput, got {other:?}"),
        }
    }
    let pool = ProcessPool::builder()
        .workers(4)
        .min_ready(2)
        .launcher(two_hosts(&dir))
        .build(&works::WORKS)
        .unwrap();
    let states: Vec<_> = pool.slots().into_iter().map(|s| s.state).collect();
    assert_eq!(states[..2], [SlotState::Ready, SlotState::Ready]);
    assert!(!states[2..].contains(&SlotState::Ready), "{states:?}");
    // Calls go to the live host.
    for _ in 0..20 {
        let got = pool.call(&works::env_var, "HOSTLABEL".to_string()).wait();
        assert_eq!(got, Ok(Some("a".to_string())));
    }
    // The host comes back: its slots rejoin.
    std::fs::remove_file(dir.join("b-down")).unwrap();
    eventually("host b's slots ready", Duration::from_secs(30), || {
        pool.slots().iter().all(|s| s.state == SlotState::Ready)
    });
    let hosts: Vec<_> = pool.slots().into_iter().map(|s| s.host.unwrap()).collect();
    assert_eq!(hosts, ["a", "a", "b", "b"]);
    assert!(pool.slots()[2].restarts >= 1);
}

pub(crate) fn a_host_down_mid_map_loses_only_its_works_and_rejoins() {
    // 100 chunks: more than the map's window (40 of 100 items), so chunks are still being
    // sent after host b goes down.
    const ITEMS: u64 = 10_000;
    let dir = temp_dir("mid-map");
    let (a, b) = (host(&dir, "a"), host(&dir, "b"));
    std::fs::write(dir.join("hold"), b"").unwrap();
    let pool = ProcessPool::builder()
        .workers(2)
        .launcher(move |slot| Command::new(if slot == 0 { &a } else { &b }))
        .build(&works::WORKS)
        .unwrap();
    let d = dir.to_string_lossy().into_owned();
    let items = (0..ITEMS).map(move |i| (d.clone(), i));
    let map = pool.map(&works::record, items).chunk_size(100);
    let results = std::thread::scope(|s| {
        let collector = s.spawn(move || map.collect::<Vec<_>>());
        // Host b is running a chunk (held): take the host down, and kill its worker.
        eventually("a chunk held on b", Duration::from_secs(20), || {
            dir.join("held").exists()
        });
        std::fs::write(dir.join("b-down"), b"").unwrap();
        let victim = pool.slots()[1].pid.unwrap();
        Command::new("kill")
            .arg("-9")
            .arg(victim.to_string())
            .status()
            .unwrap();
        collector.join().unwrap()
    });
    let mut lost_items = 0;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, 2 * i as u64),
            Err(Error::WorkerLost(why)) => {
                assert!(why.contains("slot 1 on host b"), "{why}");
                lost_items += 1;
            }
            Err(e) => panic!("item {i}: {e:?}"),
        }
    }
    assert!(lost_items >= 100, "at least the held chunk is lost");
    assert!(lost_items < ITEMS, "host a did its part");
    // No item ran twice; every item that succeeded ran once.
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    let mut runs = vec![0u32; ITEMS as usize];
    for line in log.lines() {
        runs[line.parse::<usize>().unwrap()] += 1;
    }
    for (i, r) in results.iter().enumerate() {
        assert!(runs[i] <= 1, "item {i} ran {} times", runs[i]);
        if r.is_ok() {
            assert_eq!(runs[i], 1, "item {i}");
        }
    }
    // Host b comes back: its slot rejoins and serves.
    std::fs::remove_file(dir.join("hold")).unwrap();
    assert_ne!(pool.slots()[1].state, SlotState::Ready);
    std::fs::remove_file(dir.join("b-down")).unwrap();
    eventually("host b's slot ready", Duration::from_secs(30), || {
        pool.slots()[1].state == SlotState::Ready
    });
    assert!(pool.slots()[1].restarts >= 1);
    let out: Vec<_> = pool.map(&works::double, 0..100).chunk_size(10).collect();
    assert!(out.iter().all(Result::is_ok));
}

pub(crate) fn the_worker_marker_as_an_argument() {
    // Through the pool, with the environment marker removed on the way.
    let dir = temp_dir("marker-arg");
    let launcher = script(
        &dir,
        "no-env",
        "exec env -u APLEX_WORKER \"$EXE\" --aplex-worker",
    );
    let pool = ProcessPool::builder()
        .workers(1)
        .command(launcher)
        .build(&works::WORKS)
        .unwrap();
    let marker = pool.call(&works::env_var, "APLEX_WORKER".to_string());
    assert_eq!(marker.wait(), Ok(None));
    assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    drop(pool);
    // Without any pool: the bare binary with the argument speaks the protocol.
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .arg(aplex::WORKER_ARG)
        .env_remove(aplex::WORKER_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = worker.stdout.take().unwrap();
    let (kind, _) = super::read_frame(&mut out);
    assert_eq!(kind, 2, "the worker's hello");
    drop(worker.stdin.take());
    assert!(worker.wait().unwrap().success());
}

/// The role "line_buffer": runs the worker and passes its output on line by line, as `srun`
/// without `-u` does.
pub(crate) fn role_line_buffer() {
    use std::io::{BufRead, BufReader, Write};
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_WORKER", "1")
        .env_remove("APLEX_TEST_ROLE")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(worker.stdout.take().unwrap());
    let mut stdout = std::io::stdout().lock();
    let mut line = Vec::new();
    while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        if line.last() == Some(&b'\n') {
            stdout.write_all(&line).unwrap();
            stdout.flush().unwrap();
        }
        line.clear();
    }
    let _ = worker.wait();
}

pub(crate) fn a_line_buffering_launcher_is_named_in_the_error() {
    let mut launcher = Command::new(std::env::current_exe().unwrap());
    launcher.env("APLEX_TEST_ROLE", "line_buffer");
    // The deadline is what ends this build: seconds of slack for the first bytes to pass.
    let built = ProcessPool::builder()
        .workers(1)
        .command(launcher)
        .hello_timeout(Duration::from_secs(6))
        .build(&works::WORKS);
    match built {
        Err(Error::Wire(why)) => {
            assert!(
                why.contains("srun -u") && why.contains("bytes of its hello"),
                "{why}"
            )
        }
        other => panic!("expected a Wire error, got {other:?}"),
    }
}

/// The role "fake_ssh_parent": a pool built with `hosts`, whose `ssh` is a fake one on the
/// `PATH` that runs the remote command locally (as a remote shell would) unless the host's
/// `DOWN` file exists. Prints what the slots say.
pub(crate) fn role_fake_ssh_parent() {
    let pool = ProcessPool::builder()
        .hosts(["a", "b"], 2)
        .min_ready(2)
        .build(&works::WORKS)
        .unwrap();
    let labels: Vec<_> = (0..8)
        .map(|_| pool.call(&works::env_var, "HOSTLABEL".to_string()).wait())
        .collect();
    assert!(labels.iter().all(|l| l == &Ok(Some("a".to_string()))));
    for s in pool.slots() {
        println!("{} {} {:?}", s.index, s.host.unwrap_or_default(), s.state);
    }
}

pub(crate) fn hosts_runs_the_ssh_template_and_survives_a_host_down() {
    let dir = temp_dir("fake-ssh");
    // The fake ssh skips its options, takes the host, and runs the rest through `sh -c`.
    script(
        &dir,
        "ssh",
        "while [ \"${1#-}\" != \"$1\" ]; do [ \"$1\" = -o ] && shift; shift; done\n\
         host=$1; shift\n\
         [ -e \"$(dirname \"$0\")/$host-down\" ] && exit 255\n\
         exec env -u APLEX_WORKER -u APLEX_WORKER_SLOT HOSTLABEL=$host APLEX_WORKER_HOST=$host \
         APLEX_TEST_ROLE= sh -c \"$*\"",
    );
    std::fs::write(dir.join("b-down"), b"").unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new(std::env::current_exe().unwrap())
        .env("APLEX_TEST_ROLE", "fake_ssh_parent")
        .env("PATH", path)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["0 a Ready", "1 a Ready"], "{stdout}");
    for l in &lines[2..] {
        assert!(l.contains(" b ") && !l.ends_with("Ready"), "{stdout}");
    }
}

pub(crate) fn per_slot_capacity_weights_reach_the_balancer() {
    let pool = ProcessPool::builder()
        .workers(3)
        .max_works_for(|slot| [8, 2, 2][slot])
        .balancer(by_hint())
        .build(&works::WORKS)
        .unwrap();
    let capacities: Vec<usize> = pool.detailed_loads().iter().map(|l| l.capacity).collect();
    assert_eq!(capacities, [8, 2, 2]);
    for i in 0..3 {
        assert_eq!(pool.call_with(i, &works::double, i).wait(), Ok(2 * i));
    }
    let refused = ProcessPool::builder()
        .workers(2)
        .max_works_for(|slot| slot)
        .build(&works::WORKS);
    match refused {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

pub(crate) fn a_launcher_exit_255_after_the_hello_is_a_lost_connection() {
    let dir = temp_dir("lost-connection");
    // As ssh does when its connection drops: the worker is gone and the launcher exits 255.
    let launcher = script(
        &dir,
        "relay",
        "env HOSTLABEL=c APLEX_WORKER_HOST=c \"$EXE\"\nexit 255",
    );
    let pool = ProcessPool::builder()
        .workers(1)
        .command(launcher)
        .build(&works::WORKS)
        .unwrap();
    let why = lost(pool.call(&works::exit_now, 3).wait());
    assert!(why.contains("slot 0 on host c"), "{why}");
    assert!(
        why.contains("status 255") && why.contains("connection"),
        "{why}"
    );
    assert!(!why.contains("aplex worker?"), "{why}");
}

aplex::works! {
    /// The works of "another build" of this program.
    pub mod other_build {
        pub fn triple(x: u64) -> u64 { x * 3 }
    }
}

/// The role "other_build": a worker with other works, as another build on a host would be.
pub(crate) fn role_other_build() {
    aplex::serve_if_worker(&other_build::WORKS);
}

pub(crate) fn another_build_on_a_host_is_named_not_mistaken_for_a_non_worker() {
    let mut launcher = Command::new(std::env::current_exe().unwrap());
    launcher.env("APLEX_TEST_ROLE", "other_build");
    let built = ProcessPool::builder()
        .workers(1)
        .command(launcher)
        .build(&works::WORKS);
    match built {
        Err(Error::Wire(why)) => {
            assert!(
                why.contains("works differ") && why.contains("slot 0"),
                "{why}"
            );
            assert!(why.contains("same build"), "{why}");
            assert!(!why.contains("aplex worker?"), "{why}");
        }
        other => panic!("expected a Wire error, got {other:?}"),
    }
}
