//! Workers that die or lie: a kill, garbage on the stream, an exit, a crash loop, a death
//! right after the hello, a wrong chunk count. Each is contained to the works in flight on
//! that worker, and the pool serves on.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    kill_9_a_worker_in_the_middle_of_50_works,
    a_worker_killed_mid_burst_is_lost_by_its_signal,
    a_signal_behind_a_shell_is_named_as_the_workers,
    garbage_on_the_protocol_stream_loses_the_worker,
    a_worker_that_exits_0_at_once,
    a_crash_loop_breaks_the_pool_but_one_crash_does_not,
    a_worker_that_dies_right_after_its_hello_never_hangs_a_call,
    a_works_child_cannot_read_the_protocol,
    a_chunk_result_with_the_wrong_count_is_a_wire_error,
    a_worker_checks_a_chunks_count_before_any_work,
];

/// 25 works on each worker; one is `SIGKILL`ed. Its works (naps far longer than any test,
/// so none can end before the kill however slow the machine) are lost by the signal; the
/// other's end with their value.
pub(crate) fn kill_9_a_worker_in_the_middle_of_50_works() {
    let pool = ProcessPool::builder()
        .workers(2)
        .balancer(aplex::balance::from_fn(|_, hint| {
            hint.unwrap_or(0) as usize
        }))
        .build(&works::WORKS)
        .unwrap();
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    let handles: Vec<_> = (0..50u64)
        .map(|i| match i % 2 {
            0 => pool.call_with(0, &works::nap, 120_000),
            _ => pool.call_with(1, &works::nap, 300),
        })
        .collect();
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
                assert!(killed.elapsed() < Duration::from_secs(60)); // not the naps' 120 s
                lost_count += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((lost_count, ok_count), (25, 25));
    eventually("a replacement worker", HANG, || {
        pool.worker_pids().len() == 2
    });
    assert!(!pool.worker_pids().contains(&victim));
    let results: Vec<_> = (0..10).map(|i| pool.call(&works::double, i)).collect();
    for (i, h) in results.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as u64));
    }
    assert!(is_gone(victim));
}

/// A worker is `SIGKILL`ed while calls keep coming: the calls written after its death find
/// its pipe closed, and that write's error races the worker's exit status for the reason.
/// Every call lost with it must say what happened to the worker (the signal), not that a write
/// failed. Five rounds, so the race is run often.
pub(crate) fn a_worker_killed_mid_burst_is_lost_by_its_signal() {
    let pool = pool(1);
    for round in 0..5 {
        let victim = pool.worker_pids()[0];
        // Everything behind a plain work that holds the worker is in flight when it dies.
        let mut calls = vec![pool.call(&works::block, 60_000)];
        calls.extend((0..200).map(|i| pool.call(&works::double, i)));
        Command::new("kill")
            .arg("-9")
            .arg(victim.to_string())
            .status()
            .unwrap();
        // Calls go on until well after the death: these are the writes that fail.
        let dead = Instant::now() + HANG;
        let mut after = 0;
        while after < 200 {
            calls.push(pool.call(&works::double, 0));
            if is_gone(victim) {
                after += 1;
            }
            assert!(
                Instant::now() < dead,
                "round {round}: the worker did not die"
            );
        }
        let mut lost_count = 0;
        for (i, mut call) in calls.into_iter().enumerate() {
            match call.wait_timeout(Duration::from_secs(30)) {
                Ok(_) => {}
                Err(Error::WorkerLost(why)) => {
                    assert!(why.contains("signal 9"), "round {round}, call {i}: {why}");
                    lost_count += 1;
                }
                other => panic!("round {round}, call {i}: {other:?}"),
            }
        }
        assert!(
            lost_count > 200,
            "round {round}: the calls in flight were lost"
        );
        eventually("a replacement", HANG, || {
            pool.worker_pids().first().is_some_and(|&p| p != victim)
        });
    }
}

/// Behind `sh -c` without `exec`, a worker's death by a signal reaches the pool as the
/// shell's exit status 128 + n: the reason says which signal that stands for.
pub(crate) fn a_signal_behind_a_shell_is_named_as_the_workers() {
    let mut cmd = Command::new("sh");
    let exe = std::env::current_exe().unwrap();
    cmd.arg("-c").arg(format!("'{}'; exit $?", exe.display()));
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    let victim = pool.worker_pids()[0];
    assert_ne!(
        pool.slots()[0].launcher_pid,
        Some(victim),
        "sh stands between"
    );
    let held = pool.call(&works::nap, 60_000);
    Command::new("kill")
        .arg("-9")
        .arg(victim.to_string())
        .status()
        .unwrap();
    let why = lost(held.wait());
    assert!(
        why.contains("status 137") && why.contains("signal 9"),
        "{why}"
    );
}

pub(crate) fn garbage_on_the_protocol_stream_loses_the_worker() {
    let pool = pool(1);
    let why = lost(pool.call(&works::garbage, ()).wait());
    assert!(why.contains("malformed frame"), "reason: {why}");
    assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
}

pub(crate) fn a_worker_that_exits_0_at_once() {
    let pool = pool(1);
    let other = pool.call(&works::nap, 2000);
    let why = lost(pool.call(&works::exit_now, 0).wait());
    assert!(why.contains("exited with status 0"), "reason: {why}");
    assert!(matches!(other.wait(), Err(Error::WorkerLost(_))));
    assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
}

pub(crate) fn a_crash_loop_breaks_the_pool_but_one_crash_does_not() {
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
    eventually("slot 0 broken, slot 1 ready", HANG, || {
        pool.slot_states() == [Broken, Ready]
    });
    for i in 0..10 {
        assert_eq!(pool.call(&works::double, i).wait(), Ok(2 * i));
    }
    lost(pool.call(&works::exit_now, 3).wait());
    eventually("both slots broken", HANG, || {
        pool.slot_states() == [Broken, Broken]
    });
    let start = Instant::now();
    lost(pool.call(&works::double, 1).wait());
    assert!(start.elapsed() < HANG);
}

/// The role "hello_then_die": a worker that says hello and then its protocol closes. It runs
/// the real worker behind it, passes on its first frame, and exits: the worker is left behind
/// in the launcher's process group, for the pool to kill.
pub(crate) fn role_hello_then_die() {
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

pub(crate) fn a_worker_that_dies_right_after_its_hello_never_hangs_a_call() {
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
            match call.wait_timeout(HANG) {
                Ok(v) => assert_eq!(v, 2 * i as u64),
                Err(Error::WorkerLost(_)) => {}
                other => panic!("round {round}, call {i}: {other:?}"),
            }
        }
        // The slot that lost its worker serves again.
        eventually("both slots ready", HANG, || {
            pool.slot_states() == [aplex::SlotState::Ready, aplex::SlotState::Ready]
        });
        assert_eq!(pool.call(&works::double, 4).wait(), Ok(8));
        drop(pool);
    }
    eventually("no worker left", HANG, || with_token(&token).is_empty());
    eprintln!("    15 rounds, all calls resolved in {:?}", start.elapsed());
}

pub(crate) fn a_works_child_cannot_read_the_protocol() {
    let pool = pool(1);
    // The shell would swallow the frames of the calls queued behind it if it shared fd 0.
    let mut eater = pool.call(
        &works::shell,
        "head -c 64 >/dev/null; echo read >&2".to_string(),
    );
    let queued: Vec<_> = (0..4).map(|i| pool.call(&works::double, i)).collect();
    assert_eq!(eater.wait_timeout(HANG), Ok(0));
    for (i, mut h) in queued.into_iter().enumerate() {
        assert_eq!(h.wait_timeout(HANG), Ok(2 * i as u64));
    }
}

/// The role "lying_worker": a hand-written worker that answers every chunk with one result,
/// whatever the chunk's length, and every call with nothing.
pub(crate) fn role_lying_worker() {
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

pub(crate) fn a_chunk_result_with_the_wrong_count_is_a_wire_error() {
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

pub(crate) fn a_worker_checks_a_chunks_count_before_any_work() {
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
    assert!(start.elapsed() < HANG);
    drop(stdin);
    assert!(worker.wait().unwrap().success());
}
