//! Starting workers: the commands that work, the programs that are not workers, and the
//! hello's deadline.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    wrong_programs_and_missing_binaries_fail_build,
    launching_through_sh_c,
    a_hello_deadline_kills_the_whole_launcher_group,
    a_duration_max_hello_timeout_means_never,
    a_max_frame_smaller_than_the_hello_caps_only_the_works,
    a_max_frame_too_small_for_any_call_is_refused,
    the_commands_stderr_is_the_workers,
];

pub(crate) fn wrong_programs_and_missing_binaries_fail_build() {
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

pub(crate) fn launching_through_sh_c() {
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

pub(crate) fn a_hello_deadline_kills_the_whole_launcher_group() {
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
        start.elapsed() < Duration::from_secs(20), // not the launcher's 30 s
        "{:?}",
        start.elapsed()
    );
    // The shell and its `sleep` were killed with the launched process's group.
    eventually("no launcher left", HANG, || with_token(&token).is_empty());
    eprintln!("    build failed after {:?}", start.elapsed());
}

pub(crate) fn a_duration_max_hello_timeout_means_never() {
    let pool = ProcessPool::builder()
        .workers(1)
        .hello_timeout(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 2).wait(), Ok(4));
}

/// A small `max_frame` caps what works send, not the protocol: the worker's hello (several
/// hundred bytes: it names every work of this binary) and the error that replaces a result
/// over the maximum cross whatever it is.
pub(crate) fn a_max_frame_smaller_than_the_hello_caps_only_the_works() {
    const MAX: usize = 64;
    let names: usize = works::WORKS.names().iter().map(|n| n.len()).sum();
    assert!(
        names > MAX,
        "the hello must be over the maximum for this case to mean anything"
    );
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(MAX)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    match pool.call(&works::echo_bytes, vec![0; MAX]).wait() {
        Err(Error::Wire(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("an argument over the maximum: {other:?}"),
    }
    match pool.call(&works::make_string, MAX).wait() {
        Err(Error::Remote(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("a result over the maximum: {other:?}"),
    }
    // The same worker serves on: nothing above was a protocol error.
    assert_eq!(pool.slots()[0].restarts, 0);
    assert_eq!(pool.call(&works::make_string, 8).wait(), Ok("x".repeat(8)));
}

/// A `max_frame` that no call fits in (a frame's header and a work's index take 13 bytes)
/// could never run a work: `build` refuses it and names the least it takes.
pub(crate) fn a_max_frame_too_small_for_any_call_is_refused() {
    for max in [0, 12] {
        match ProcessPool::builder().max_frame(max).build(&works::WORKS) {
            Err(Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
                assert!(e.to_string().contains("13 bytes"), "{e}");
            }
            other => panic!("max_frame({max}): expected InvalidInput, got {other:?}"),
        }
    }
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(13)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::unit, ()).wait(), Ok(1));
}

/// The command's stderr is the user's choice: the worker's stderr, and its stdout (which the
/// worker points at its stderr, a work's prints included) go where the command says. Its
/// stdin and stdout are the protocol's, whatever it set.
pub(crate) fn the_commands_stderr_is_the_workers() {
    let dir = temp_dir("stderr");
    let log = dir.join("stderr");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.stderr(std::fs::File::create(&log).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    let said = "a line for the command's stderr".to_string();
    // `shout` prints to stdout and flushes before it returns: the bytes are in the file.
    assert_eq!(
        pool.call(&works::shout, said.clone()).wait(),
        Ok(said.clone())
    );
    let got = std::fs::read_to_string(&log).unwrap();
    assert!(
        got.contains(&said),
        "the worker's stderr went elsewhere: {got:?}"
    );
    drop(pool);
    // Stdio::null() too: nothing of the worker's reaches this process's stderr.
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.stderr(Stdio::null());
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    let target = pool.call(&works::fd_target, 2).wait().unwrap();
    assert_eq!(target.as_deref(), Some("/dev/null"));
}
