//! Starting one worker process: the command, the pipes, the two threads, the hello.
//!
//! The supervisor thread starts every worker of a pool (see `mod.rs` for why), through
//! [`launch`], then waits for its hello with [`await_hello`].

use std::fs::File;
use std::os::unix::io::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use super::conn::{Conn, HelloResult};
use super::frame::{self, Hello};
use super::slot::SlotState;
use super::Shared;
use crate::runtime::reactor::lock;
use crate::wire::Wire;
use crate::Error;

/// A started worker: its connection, its threads, and where its hello will arrive.
pub(crate) struct Launched {
    pub(crate) conn: Arc<Conn>,
    pub(crate) threads: [JoinHandle<()>; 2],
    pub(crate) hello: mpsc::Receiver<HelloResult>,
}

/// Spawns a worker for slot `index` with `command`, as the leader of a new process group,
/// makes it the slot's starting worker, sends the parent's hello and starts its reader and
/// writer threads.
///
/// # Errors
///
/// `Error::Io` if the command cannot be spawned (a missing binary fails here, at once), or a
/// thread cannot be started.
pub(crate) fn launch(
    command: &mut Command,
    index: usize,
    shared: &Arc<Shared>,
) -> Result<Launched, Error> {
    let load = shared.slots[index].load.clone();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
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

    // The slot knows its starting worker before the reader can see the hello.
    {
        let slot = &shared.slots[index];
        let mut state = lock(&slot.state);
        if state.launched {
            state.restarts += 1;
        }
        state.launched = true;
        state.shortages = 0;
        state.starting = Some(conn.clone());
        slot.set_phase(&state, SlotState::Starting);
    }
    let (tx, rx) = mpsc::channel();
    let w = conn.clone();
    let writer = std::thread::Builder::new()
        .name(format!("aplex-proc-{index}-w"))
        .spawn(move || w.write_loop());
    let writer = match writer {
        Ok(t) => t,
        Err(e) => {
            conn.kill("not started: no writer thread".to_string());
            unset_starting(shared, &conn);
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
            conn.reap_unread();
            unset_starting(shared, &conn);
            Err(Error::Io(e))
        }
    }
}

/// Takes a worker that could not be started out of its slot.
fn unset_starting(shared: &Shared, conn: &Arc<Conn>) {
    let mut state = lock(&shared.slots[conn.index].state);
    if state
        .starting
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, conn))
    {
        state.starting = None;
    }
}

/// Waits for a launched worker's hello until `deadline` (`None`: no limit); kills the worker
/// if it does not come.
pub(crate) fn await_hello(launched: &Launched, deadline: Option<Instant>) -> Result<u32, Error> {
    let received = match deadline {
        None => launched.hello.recv().map_err(|_| ()),
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            launched.hello.recv_timeout(left).map_err(|_| ())
        }
    };
    match received {
        Ok(result) => result,
        Err(()) => {
            launched
                .conn
                .kill("killed: it sent no hello in time".to_string());
            Err(Error::Wire(format!(
                "worker process {} sent no hello within the deadline: is the command an aplex worker?",
                launched.conn.launcher_pid
            )))
        }
    }
}
