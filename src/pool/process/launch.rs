//! Starting one worker process: the command, the pipes, the two threads, the hello.
//!
//! The supervisor thread starts every worker of a pool (see `mod.rs` for why), through
//! [`launch`], then waits for its hello with [`await_hello`].

use std::fs::File;
use std::os::unix::io::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use super::conn::{Conn, HelloResult};
use super::frame::{self, Hello};
use super::Shared;
use crate::wire::Wire;
use crate::Error;

/// A started worker: its connection, its threads, and where its hello will arrive.
pub(crate) struct Launched {
    pub(crate) conn: Arc<Conn>,
    pub(crate) threads: [JoinHandle<()>; 2],
    pub(crate) hello: mpsc::Receiver<HelloResult>,
}

/// Spawns a worker for slot `index` with `command`, sends the parent's hello and starts its
/// reader and writer threads.
///
/// # Errors
///
/// `Error::Io` if the command cannot be spawned (a missing binary fails here, at once), or a
/// thread cannot be started.
pub(crate) fn launch(
    command: &mut Command,
    index: usize,
    load: Arc<AtomicUsize>,
    shared: &Arc<Shared>,
) -> Result<Launched, Error> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Io(std::io::Error::other(
            "the worker's pipes are missing",
        )));
    };
    let stdin = File::from(OwnedFd::from(stdin));
    let conn = Arc::new(Conn::new(index, child, stdin, load, shared.max_frame));

    let hello = Hello {
        magic: frame::PARENT_MAGIC.to_string(),
        version: frame::VERSION,
        pid: std::process::id(),
        names: shared.names.iter().map(|n| n.to_string()).collect(),
        max_works: shared.max_works as u64,
        max_frame: shared.max_frame as u64,
    };
    let mut bytes = Vec::new();
    let start = frame::begin(&mut bytes, frame::HELLO_PARENT, 0);
    hello.encode(&mut bytes);
    let _ = frame::finish(&mut bytes, start, usize::MAX);
    conn.send(&bytes, true);

    let (tx, rx) = mpsc::channel();
    let w = conn.clone();
    let writer = std::thread::Builder::new()
        .name(format!("aplex-proc-{index}-w"))
        .spawn(move || w.write_loop());
    let writer = match writer {
        Ok(t) => t,
        Err(e) => {
            conn.kill("not started: no writer thread".to_string());
            return Err(Error::Io(e));
        }
    };
    let (r, s) = (conn.clone(), shared.clone());
    let reader = std::thread::Builder::new()
        .name(format!("aplex-proc-{index}-r"))
        .spawn(move || r.read_loop(stdout, s, tx));
    match reader {
        Ok(reader) => Ok(Launched {
            conn,
            threads: [reader, writer],
            hello: rx,
        }),
        Err(e) => {
            conn.kill("not started: no reader thread".to_string());
            conn.close();
            let _ = writer.join();
            Err(Error::Io(e))
        }
    }
}

/// Waits for a launched worker's hello until `deadline`; kills the worker if it does not come.
pub(crate) fn await_hello(launched: &Launched, deadline: Instant) -> Result<u32, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    match launched.hello.recv_timeout(left) {
        Ok(result) => result,
        Err(_) => {
            launched
                .conn
                .kill("killed: it sent no hello in time".to_string());
            Err(Error::Wire(format!(
                "worker process {} sent no hello within the deadline: is the command an aplex worker?",
                launched.conn.pid
            )))
        }
    }
}
