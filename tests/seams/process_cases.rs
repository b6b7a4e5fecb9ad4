//! The process pool at its seams: works that kill, abort or cripple their worker process, flood
//! its stderr or leave children behind, calls too large for a frame, and pools dropped with
//! calls in flight. Every handle must resolve, and the pool must serve on.
#![cfg(feature = "process")]

use std::time::Duration;

use aplex::{Error, ProcessPool};

use crate::{case, within, Case};

aplex::works! {
    /// The works of this test binary when it runs as a process-pool worker.
    pub mod works {
        pub fn double(x: u64) -> u64 { x * 2 }
        pub fn exit_now(code: i32) -> u8 { std::process::exit(code) }
        pub fn abort_now(_x: ()) -> u8 { std::process::abort() }
        pub fn close_fds(_x: ()) -> u8 { close_all_fds(); 1 }
        pub fn flood_stderr(mib: usize) -> usize {
            use std::io::Write;
            let chunk = vec![b'e'; 1 << 20];
            let mut err = std::io::stderr().lock();
            for _ in 0..mib {
                let _ = err.write_all(&chunk);
            }
            mib
        }
        pub fn leave_a_child(_x: ()) -> u32 {
            std::process::Command::new("sleep").arg("30").spawn().map(|c| c.id()).unwrap_or(0)
        }
        pub fn echo_bytes(v: Vec<u8>) -> usize { v.len() }
        pub async fn nap(ms: u64) -> u64 {
            aplex::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
    }
}

/// Closes every fd from 3 to 1023, the protocol's included, as a careless daemonizing work
/// would.
fn close_all_fds() {
    extern "C" {
        fn close(fd: i32) -> i32;
    }
    for fd in 3..1024 {
        // SAFETY: `close` takes any integer and fails with EBADF on one that is not open; the
        // work means to close every fd of its process, and nothing in it uses them after.
        unsafe { close(fd) };
    }
}

/// Turns this binary into a worker when a pool launched it as one.
pub(crate) fn serve() {
    if std::env::var_os(aplex::WORKER_ENV).is_some() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    aplex::serve_if_worker(&works::WORKS);
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "process_exit_abort_and_closed_fds_are_worker_lost",
            process_exit_abort_and_closed_fds_are_worker_lost,
        ),
        case(
            "process_a_flood_on_stderr_does_not_stall_the_pool",
            process_a_flood_on_stderr_does_not_stall_the_pool,
        ),
        case(
            "process_a_child_left_running_does_not_hold_the_pool",
            process_a_child_left_running_does_not_hold_the_pool,
        ),
        case(
            "process_args_over_max_frame_are_a_typed_error",
            process_args_over_max_frame_are_a_typed_error,
        ),
        case(
            "process_pool_dropped_with_calls_in_flight_resolves_every_handle",
            process_pool_dropped_with_calls_in_flight_resolves_every_handle,
        ),
        case("process_many_pools_at_once", process_many_pools_at_once),
    ]
}

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(workers)
        .build(&works::WORKS)
        .expect("the pool starts")
}

fn process_exit_abort_and_closed_fds_are_worker_lost() {
    let p = pool(1);
    let outcomes = within("works that end their worker", move || {
        let exit = p.call(&works::exit_now, 3).wait();
        let after_exit = p.call(&works::double, 1).wait();
        let abort = p.call(&works::abort_now, ()).wait();
        let after_abort = p.call(&works::double, 2).wait();
        let closed = p.call(&works::close_fds, ()).wait();
        let after_close = p.call(&works::double, 3).wait();
        (exit, after_exit, abort, after_abort, closed, after_close)
    });
    assert!(
        matches!(outcomes.0, Err(Error::WorkerLost(_))),
        "exit: {:?}",
        outcomes.0
    );
    assert_eq!(outcomes.1, Ok(2));
    assert!(
        matches!(outcomes.2, Err(Error::WorkerLost(_))),
        "abort: {:?}",
        outcomes.2
    );
    assert_eq!(outcomes.3, Ok(4));
    // With its protocol fds closed the worker can neither answer nor hear: it is lost.
    assert!(
        matches!(outcomes.4, Err(Error::WorkerLost(_))),
        "closed fds: {:?}",
        outcomes.4
    );
    assert_eq!(outcomes.5, Ok(6));
}

fn process_a_flood_on_stderr_does_not_stall_the_pool() {
    let got = within("a work writing 64 MiB to stderr", move || {
        // Through a shell that points the worker's stderr at /dev/null: the flood must not
        // reach the test's output, only pass through the worker unread.
        let exe = std::env::current_exe().unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg("exec \"$0\" 2>/dev/null").arg(exe);
        let quiet = ProcessPool::builder()
            .workers(1)
            .command(cmd)
            .build(&works::WORKS)
            .unwrap();
        let flood = quiet.call(&works::flood_stderr, 64).wait();
        let next = quiet.call(&works::double, 5).wait();
        (flood, next)
    });
    assert_eq!(got, (Ok(64), Ok(10)));
}

fn process_a_child_left_running_does_not_hold_the_pool() {
    let p = pool(1);
    let (child, after) = within("a worker that left a child behind", move || {
        let child = p.call(&works::leave_a_child, ()).wait();
        // The worker then dies: its child still runs, and must not keep the pool from
        // seeing the death (the protocol fds are close-on-exec).
        let lost = p.call(&works::exit_now, 0).wait();
        assert!(matches!(lost, Err(Error::WorkerLost(_))), "{lost:?}");
        let after = p.call(&works::double, 7).wait();
        drop(p);
        (child, after)
    });
    assert_eq!(after, Ok(14));
    if let Ok(pid) = child {
        if pid != 0 {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

fn process_args_over_max_frame_are_a_typed_error() {
    let p = ProcessPool::builder()
        .workers(1)
        .max_frame(1024)
        .build(&works::WORKS)
        .unwrap();
    let got = within("a call over max_frame", move || {
        let big = p.call(&works::echo_bytes, vec![0u8; 4096]).wait();
        let small = p.call(&works::echo_bytes, vec![0u8; 16]).wait();
        (big, small)
    });
    assert!(matches!(got.0, Err(Error::Wire(_))), "{:?}", got.0);
    assert_eq!(got.1, Ok(16));
}

fn process_pool_dropped_with_calls_in_flight_resolves_every_handle() {
    let p = ProcessPool::builder()
        .workers(2)
        .max_works_per_worker(4)
        .shutdown_timeout(Duration::from_secs(1))
        .build(&works::WORKS)
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|i| p.call(&works::nap, if i % 4 == 0 { 60_000 } else { 1 }))
        .collect();
    within("dropping a process pool with calls in flight", move || {
        drop(p)
    });
    for (i, h) in handles.into_iter().enumerate() {
        let r = within("a handle of a dropped process pool", move || h.wait());
        match r {
            Ok(_)
            | Err(Error::WorkerLost(_))
            | Err(Error::Cancelled)
            | Err(Error::ShutDown)
            | Err(Error::TimedOut) => {}
            other => panic!("call {i}: {other:?}"),
        }
    }
}

fn process_many_pools_at_once() {
    let pools: Vec<ProcessPool> = within("eight pools", || (0..8).map(|_| pool(1)).collect());
    let got = within("a call on each", move || {
        let hs: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| p.call(&works::double, i as u64))
            .collect();
        hs.into_iter().map(|h| h.wait().unwrap()).sum::<u64>()
    });
    assert_eq!(got, (0..8).map(|i| i * 2).sum());
}
