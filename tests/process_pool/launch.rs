//! Starting workers: the commands that work, the programs that are not workers, and the
//! hello's deadline.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    wrong_programs_and_missing_binaries_fail_build,
    launching_through_sh_c,
    a_hello_deadline_kills_the_whole_launcher_group,
    a_duration_max_hello_timeout_means_never,
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

pub(crate) fn a_duration_max_hello_timeout_means_never() {
    let pool = ProcessPool::builder()
        .workers(1)
        .hello_timeout(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .build(&works::WORKS)
        .unwrap();
    assert_eq!(pool.call(&works::double, 2).wait(), Ok(4));
}
